//! What moderators remove stays removed: a photo a moderator removed, and every photo of a
//! banned person, is remembered as a perceptual fingerprint (never the picture), and an upload
//! that looks the same — scaled, re-compressed, mirrored, from any account — is refused.
//! Unrelated photos are not.

use std::io::Cursor;

use image::DynamicImage;
use image::imageops::FilterType;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::images::{jpeg_of, photo, photo_jpeg};
use crate::helpers::people::{BERLIN, dog_at};
use crate::helpers::staff::{admin_gql, moderator};
use crate::helpers::{Backend, Session, TestApp, spawn_app};
use pupmatch::profiles::images::{Fingerprint, SAME_PICTURE_BITS, fingerprint};

both_backends!(
    a_removed_photo_cannot_come_back_from_another_account,
    a_banned_persons_photos_cannot_come_back,
);

/// The picture of `seed` at 800×600, then at 80 % and re-encoded as JPEG at quality 70.
fn removed_and_disguised(seed: u64) -> (Vec<u8>, Vec<u8>) {
    let original = photo(seed, 800, 600);
    let smaller = DynamicImage::ImageRgb8(original.clone())
        .resize_exact(640, 480, FilterType::Triangle)
        .to_rgb8();
    (jpeg_of(&original, 92), jpeg_of(&smaller, 70))
}

async fn upload(app: &TestApp, user: &Session, bytes: Vec<u8>) -> (u16, Value) {
    app.upload(user.token(), bytes, "dog.jpg", "image/jpeg")
        .await
}

fn refused(status: u16, body: &Value) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "BAD_USER_INPUT", "{body}");
    assert_eq!(body["message"], "this photo cannot be used", "{body}");
}

async fn a_removed_photo_cannot_come_back_from_another_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = moderator(&app).await;
    let person = dog_at(&app, "Poster", BERLIN).await;
    let (original, disguised) = removed_and_disguised(7);
    let (status, body) = upload(&app, &person, original.clone()).await;
    assert_eq!(status, 201, "{body}");
    let photo_id = body["id"].as_str().expect("id").to_string();
    let (_, body) = admin_gql(
        &app,
        m.token(),
        "mutation($p: ID!, $f: ID!) { removePhoto(personId: $p, photoId: $f, reason: \"not a dog\") }",
        json!({ "p": person.user_id, "f": photo_id }),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(app.count("removed_photo_fingerprints").await, 1);

    // Scaled to 80 % and re-encoded at quality 70, from a new account: refused.
    let stranger = app.new_user().await;
    let photos_before = app.count("photos").await;
    let (status, body) = upload(&app, &stranger, disguised).await;
    refused(status, &body);
    // Mirrored left to right as well.
    let mirrored = DynamicImage::ImageRgb8(photo(7, 800, 600))
        .fliph()
        .to_rgb8();
    let (status, body) = upload(&app, &stranger, jpeg_of(&mirrored, 80)).await;
    refused(status, &body);
    // The same file from the person who posted it: refused too.
    let (status, body) = upload(&app, &person, original).await;
    refused(status, &body);
    assert_eq!(app.count("photos").await, photos_before, "nothing stored");

    // Fifty unrelated photos, from several accounts (6 photos each at most), are all accepted.
    let mut owner = stranger;
    for (i, seed) in (1000..1050u64).enumerate() {
        if i > 0 && i % 6 == 0 {
            owner = app.new_user().await;
        }
        let (status, body) = upload(&app, &owner, photo_jpeg(seed, 320, 240)).await;
        assert_eq!(status, 201, "unrelated photo {seed} refused: {body}");
    }
    assert_eq!(app.count("photos").await, photos_before + 50);
}

async fn a_banned_persons_photos_cannot_come_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = moderator(&app).await;
    let person = app.new_user().await;
    app.create_profile(&person, "Scammer")
        .await
        .data("createProfile");
    let mut disguised = Vec::new();
    for seed in [21, 22] {
        let (original, copy) = removed_and_disguised(seed);
        let (status, body) = upload(&app, &person, original).await;
        assert_eq!(status, 201, "{body}");
        disguised.push(copy);
    }
    let (_, body) = admin_gql(
        &app,
        m.token(),
        "mutation($p: ID!) { ban(personId: $p, reason: \"scam\") }",
        json!({ "p": person.user_id }),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    // Only how the photos look is kept, one fingerprint each.
    assert_eq!(app.count("removed_photo_fingerprints").await, 2);
    let new_account = app.new_user().await;
    for copy in disguised {
        let (status, body) = upload(&app, &new_account, copy).await;
        refused(status, &body);
    }
    let (status, body) = upload(&app, &new_account, photo_jpeg(99, 320, 240)).await;
    assert_eq!(status, 201, "{body}");
}

/// The fingerprints of many unrelated pictures lie far apart, and a disguised copy lies close
/// to its original: the margin the refusal works with.
#[test]
fn unrelated_pictures_are_far_apart_and_copies_close() {
    let decode = |bytes: &[u8]| {
        image::ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .expect("format")
            .decode()
            .expect("decodes")
    };
    let prints: Vec<Fingerprint> = (0..200u64)
        .map(|seed| fingerprint(&decode(&photo_jpeg(seed, 320, 240))))
        .collect();
    let mut closest = u32::MAX;
    for (i, a) in prints.iter().enumerate() {
        for b in &prints[i + 1..] {
            closest = closest.min(a.distance(b));
        }
    }
    assert!(
        closest > SAME_PICTURE_BITS,
        "two unrelated pictures only {closest} bits apart"
    );
    for seed in 0..20 {
        let (original, disguised) = removed_and_disguised(seed);
        let d = fingerprint(&decode(&original)).distance(&fingerprint(&decode(&disguised)));
        assert!(
            d <= SAME_PICTURE_BITS / 2,
            "seed {seed}: a copy {d} bits away"
        );
    }
    eprintln!("closest unrelated pair: {closest} bits");
}
