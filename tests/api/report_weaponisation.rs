//! Reports cannot be used to silence someone. A report counts towards the automatic hold only
//! from a reporter with a complete profile, an account old enough, who could have met the
//! person (within the reporter's discovery distance, or a like, pass, match or message between
//! them), and whose reports moderators have not dismissed 5 times in 30 days. Reports that do
//! not count still reach moderators, marked so.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::both_backends;
use crate::helpers::people::{BERLIN, all_recs, dog_at, like, north_of};
use crate::helpers::staff::{admin_gql, moderator};
use crate::helpers::{Backend, Session, TestApp, spawn_app, spawn_app_with};

both_backends!(
    throwaway_accounts_made_a_minute_ago_hide_nobody,
    only_reporters_who_could_have_met_the_person_hide_them,
    a_reporter_often_dismissed_stops_counting,
);

async fn report(app: &TestApp, by: &Session, whom: Uuid) {
    let res = app.report(by, &whom, "SPAM", Some("spam")).await;
    assert_eq!(*res.data("report"), json!(true), "{}", res.body);
}

/// The case about `person` as a moderator reads it: the queue's entry and the reports.
async fn case(app: &TestApp, m: &Session, person: Uuid) -> (Value, Vec<Value>) {
    let (_, body) = admin_gql(
        app,
        m.token(),
        "query($p: ID!) { cases { personId reporters countedReporters held }
                          case(personId: $p) { reports { reporterId countsTowardsHold notCountedBecause } } }",
        json!({ "p": person }),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    let entry = body["data"]["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["personId"] == json!(person))
        .cloned()
        .unwrap_or(Value::Null);
    let reports = body["data"]["case"]["reports"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    (entry, reports)
}

fn reasons(reports: &[Value]) -> Vec<String> {
    reports
        .iter()
        .map(|r| {
            r["notCountedBecause"]
                .as_str()
                .unwrap_or("counts")
                .to_string()
        })
        .collect()
}

async fn throwaway_accounts_made_a_minute_ago_hide_nobody(backend: Backend) {
    // The default rule: a reporter's account must be a day old.
    let app = spawn_app(backend).await;
    let m = moderator(&app).await;
    let person = dog_at(&app, "Target", BERLIN).await;
    let viewer = dog_at(&app, "Viewer", north_of(BERLIN, 1.0)).await;
    // Three accounts made a minute ago, without a profile, then three with one, nearby.
    for _ in 0..3 {
        let throwaway = app.new_user().await;
        report(&app, &throwaway, person.user_id).await;
    }
    for i in 0..3 {
        let fresh = dog_at(&app, &format!("Fresh{i}"), BERLIN).await;
        report(&app, &fresh, person.user_id).await;
    }
    assert!(
        all_recs(&app, &viewer).await.contains(&person.user_id),
        "six throwaway reports hid the person"
    );
    let (entry, reports) = case(&app, &m, person.user_id).await;
    assert_eq!(entry["held"], false);
    assert_eq!(
        entry["reporters"], 6,
        "every report still reaches moderators"
    );
    assert_eq!(entry["countedReporters"], 0);
    assert_eq!(reports.len(), 6);
    for r in &reports {
        assert_eq!(r["countsTowardsHold"], false, "{r}");
        assert!(
            r["notCountedBecause"]
                .as_str()
                .is_some_and(|w| w.contains("younger than 24 hours")),
            "{r}"
        );
    }
}

async fn only_reporters_who_could_have_met_the_person_hide_them(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.moderation.reporter_min_age = Duration::ZERO).await;
    let m = moderator(&app).await;
    let person = dog_at(&app, "Target", BERLIN).await;
    let viewer = dog_at(&app, "Viewer", north_of(BERLIN, 1.0)).await;
    // No profile; a complete profile 600 km away who never met her: neither counts.
    for _ in 0..3 {
        let no_profile = app.new_user().await;
        report(&app, &no_profile, person.user_id).await;
    }
    for i in 0..3 {
        let far = dog_at(&app, &format!("Far{i}"), north_of(BERLIN, 600.0)).await;
        report(&app, &far, person.user_id).await;
    }
    assert!(all_recs(&app, &viewer).await.contains(&person.user_id));
    let (entry, reports) = case(&app, &m, person.user_id).await;
    assert_eq!(entry["held"], false);
    assert_eq!(entry["countedReporters"], 0);
    let mut why = reasons(&reports);
    why.sort();
    why.dedup();
    assert_eq!(
        why,
        [
            "the reporter has no complete profile",
            "the reporter was never within their discovery distance of the person, nor in touch with them",
        ],
        "{reports:?}"
    );

    // Two established people nearby and one far away who had liked her: that hides her.
    let mut near = Vec::new();
    for i in 0..2 {
        near.push(dog_at(&app, &format!("Near{i}"), north_of(BERLIN, 2.0)).await);
    }
    let pen_pal = dog_at(&app, "PenPal", north_of(BERLIN, 600.0)).await;
    like(&app, &pen_pal, person.user_id).await.data("like");
    report(&app, &near[0], person.user_id).await;
    report(&app, &near[1], person.user_id).await;
    assert!(all_recs(&app, &viewer).await.contains(&person.user_id));
    report(&app, &pen_pal, person.user_id).await;
    assert!(
        !all_recs(&app, &viewer).await.contains(&person.user_id),
        "three reporters who could have met her hide her"
    );
    let (entry, _) = case(&app, &m, person.user_id).await;
    assert_eq!(entry["held"], true);
    assert_eq!(entry["reporters"], 9);
    assert_eq!(entry["countedReporters"], 3);
}

async fn a_reporter_often_dismissed_stops_counting(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.moderation.reporter_min_age = Duration::ZERO;
        c.moderation.hold_reporters = 1;
    })
    .await;
    let m = moderator(&app).await;
    let reporter = dog_at(&app, "Complainer", BERLIN).await;
    // Five reports of people nearby, each dismissed by a moderator.
    for i in 0..5 {
        let neighbour = dog_at(&app, &format!("Neighbour{i}"), BERLIN).await;
        report(&app, &reporter, neighbour.user_id).await;
        let (entry, _) = case(&app, &m, neighbour.user_id).await;
        assert_eq!(entry["held"], true, "counted before: {entry}");
        let (_, body) = admin_gql(
            &app,
            m.token(),
            "mutation($p: ID!) { dismiss(personId: $p, reason: \"nothing wrong\") }",
            json!({ "p": neighbour.user_id }),
        )
        .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let next = dog_at(&app, "Next", BERLIN).await;
    report(&app, &reporter, next.user_id).await;
    let (entry, reports) = case(&app, &m, next.user_id).await;
    assert_eq!(entry["held"], false, "{entry}");
    assert_eq!(
        reasons(&reports),
        ["moderators dismissed 5 of the reporter's reports in 30 days"]
    );
}
