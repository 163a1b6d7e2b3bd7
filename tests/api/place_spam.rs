//! Places cannot be used for spam: adding one needs a complete profile, names and descriptions
//! refuse links, email addresses and phone numbers, and one person adds at most 5 a day — also
//! when a request asks for 60 at once.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::people::{BERLIN, dog_at, north_of};
use crate::helpers::{Backend, Session, TestApp, spawn_app};

both_backends!(
    spam_places_are_refused,
    one_person_adds_at_most_five_places_a_day
);

/// One request adding `names` (one alias each) around Berlin: the response body.
async fn add_many(app: &TestApp, who: &Session, names: &[String], description: &str) -> Value {
    let fields: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let (lat, lon) = north_of(BERLIN, 0.5 * i as f64);
            format!(
                "p{i}: addPlayground(input: {{ name: {}, description: {}, latitude: {lat}, longitude: {lon} }}) {{ id }}",
                json!(name),
                json!(description)
            )
        })
        .collect();
    let res = app
        .gql(
            who.token(),
            &format!("mutation {{ {} }}", fields.join(" ")),
            json!({}),
        )
        .await;
    res.body
}

fn codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn spam_places_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    // No profile: no places.
    let nobody = app.new_user().await;
    let body = add_many(&app, &nobody, &["Dog park".to_string()], "").await;
    assert_eq!(codes(&body), ["FORBIDDEN"], "{body}");
    assert_eq!(app.count("playgrounds").await, 0);

    let spammer = dog_at(&app, "Spammer", BERLIN).await;
    let names: Vec<String> = (0..60)
        .map(|i| match i % 3 {
            0 => format!("Cheap meds evil.example/{i}"),
            1 => format!("Call +49151 {:07}", 1_234_000 + i),
            _ => format!("Write pills{i}@evil.example"),
        })
        .collect();
    let body = add_many(&app, &spammer, &names, "").await;
    let refused = codes(&body);
    assert_eq!(refused.len(), 60, "{body}");
    assert!(refused.iter().all(|c| c == "BAD_USER_INPUT"), "{refused:?}");
    // A clean name with an advert in the description: refused too.
    let body = add_many(
        &app,
        &spammer,
        &["Hundewiese".to_string()],
        "Best park! Puppies for sale: www.evil.example",
    )
    .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"], "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "description",
        "{body}"
    );
    assert_eq!(app.count("playgrounds").await, 0, "nothing stored");
}

async fn one_person_adds_at_most_five_places_a_day(backend: Backend) {
    let app = spawn_app(backend).await;
    let eager = dog_at(&app, "Eager", BERLIN).await;
    let names: Vec<String> = (0..60).map(|i| format!("Park number {i}")).collect();
    let body = add_many(&app, &eager, &names, "").await;
    let refused = codes(&body);
    assert_eq!(refused.len(), 55, "{body}");
    assert!(refused.iter().all(|c| c == "RATE_LIMITED"), "{refused:?}");
    assert_eq!(app.count("playgrounds").await, 5);
    // Saving a place someone else added is not adding one.
    let other = dog_at(&app, "Other", BERLIN).await;
    let body = add_many(&app, &other, &["Park number 0".to_string()], "").await;
    assert!(codes(&body).is_empty(), "{body}");
    assert_eq!(app.count("playgrounds").await, 5, "the same place, saved");
    let body = add_many(&app, &eager, &["Park number 0".to_string()], "").await;
    assert!(codes(&body).is_empty(), "their own place again: {body}");
}
