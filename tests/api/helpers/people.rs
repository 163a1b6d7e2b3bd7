//! Making people and moving them through discovery: dogs at a place, likes and passes,
//! recommendation pages.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{GqlResponse, Session, TestApp};

/// Berlin, Alexanderplatz.
pub const BERLIN: (f64, f64) = (52.5219, 13.4132);

pub async fn act(app: &TestApp, user: &Session, op: &str, target: Uuid) -> GqlResponse {
    app.gql(
        user.token(),
        &format!("mutation($u: UUID!) {{ {op}(userId: $u) }}"),
        json!({ "u": target }),
    )
    .await
}

/// The user ids of every recommendation, following all pages.
pub async fn all_recs(app: &TestApp, user: &Session) -> Vec<Uuid> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let res = recs(app, user, 10, after.as_deref()).await;
        out.extend(user_ids(&res));
        let conn = res.data("recommendations");
        if conn["pageInfo"]["hasNextPage"] != true {
            return out;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(String::from);
    }
}

/// A user with a complete profile at `at`.
pub async fn dog_at(app: &TestApp, name: &str, at: (f64, f64)) -> Session {
    let user = app.new_user().await;
    app.complete_profile(&user, name).await;
    place(app, &user, at).await.data("updateLocation");
    user
}

/// `n` people with complete profiles named `name 0`, `name 1`, …, placed 1 km apart going north
/// from `from_km` north of Berlin.
pub async fn dogs_north(app: &TestApp, name: &str, n: u32, from_km: f64) -> Vec<Session> {
    let mut dogs = Vec::new();
    for i in 0..n {
        let at = north_of(BERLIN, from_km + f64::from(i));
        dogs.push(dog_at(app, &format!("{name} {i}"), at).await);
    }
    dogs
}

pub async fn like(app: &TestApp, user: &Session, target: Uuid) -> GqlResponse {
    app.gql(
        user.token(),
        "mutation($u: UUID!) { like(userId: $u) { isMatch match { id conversationId createdAt profile { userId } } } }",
        json!({ "u": target }),
    )
    .await
}

/// A point `km` kilometres north of `from`.
pub fn north_of(from: (f64, f64), km: f64) -> (f64, f64) {
    (from.0 + km / 111.195, from.1)
}

pub async fn place(app: &TestApp, user: &Session, at: (f64, f64)) -> GqlResponse {
    app.gql(
        user.token(),
        "mutation($a: Float!, $o: Float!) { updateLocation(latitude: $a, longitude: $o) }",
        json!({ "a": at.0, "o": at.1 }),
    )
    .await
}

pub async fn recs(app: &TestApp, user: &Session, first: i32, after: Option<&str>) -> GqlResponse {
    app.gql(
        user.token(),
        "query($f: Int!, $a: String) { recommendations(first: $f, after: $a) {
            edges { cursor node { profile { userId name } score distance distanceUnit likedYou } }
            pageInfo { hasNextPage endCursor } } }",
        json!({ "f": first, "a": after }),
    )
    .await
}

/// The people of one page of recommendations, in order.
pub fn user_ids(res: &GqlResponse) -> Vec<Uuid> {
    res.data("recommendations")["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            e["node"]["profile"]["userId"]
                .as_str()
                .expect("id")
                .parse()
                .expect("uuid")
        })
        .collect()
}

/// `viewer` opens `user`'s profile, `user` having been served to them (again).
pub async fn profile_query(
    app: &TestApp,
    viewer: &Session,
    user: &Session,
) -> crate::helpers::GqlResponse {
    app.introduce(viewer, user).await;
    app.gql(
        viewer.token(),
        "query($u: UUID!) { profile(userId: $u) { userId name photos { url } } }",
        json!({ "u": user.user_id }),
    )
    .await
}

/// The `name` of each place in a list.
pub fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("list")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect()
}
