//! Profiles cannot be collected by accounts nobody can see: browsing recommendations needs a
//! complete profile of your own (the app's "give to get").

use serde_json::json;

use crate::both_backends;
use crate::discovery::{BERLIN, dog_at, north_of, place, recs};
use crate::helpers::{Backend, spawn_app};

both_backends!(an_account_nobody_can_see_cannot_browse_others);

async fn an_account_nobody_can_see_cannot_browse_others(backend: Backend) {
    let app = spawn_app(backend).await;
    let someone = dog_at(&app, "Someone", north_of(BERLIN, 1.0)).await;
    // A profile without photos (so never shown to anyone), with a location.
    let collector = app.new_user_with_profile("Collector").await;
    place(&app, &collector, BERLIN).await.data("updateLocation");
    let res = recs(&app, &collector, 10, None).await;
    assert_eq!(res.error_code(), "FORBIDDEN", "{}", res.body);
    assert!(
        res.error_message().contains("complete your profile"),
        "{}",
        res.body
    );
    assert!(!res.body.to_string().contains(&someone.user_id.to_string()));
    // One photo is not enough; two are.
    app.upload_jpeg(&collector).await;
    assert_eq!(
        recs(&app, &collector, 10, None).await.error_code(),
        "FORBIDDEN"
    );
    app.upload_jpeg(&collector).await;
    let res = recs(&app, &collector, 10, None).await;
    assert_eq!(
        res.data("recommendations")["edges"][0]["node"]["profile"]["userId"],
        json!(someone.user_id)
    );
}
