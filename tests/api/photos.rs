//! Photo upload (REST), deletion and ordering: sniffed types, size and pixel limits, metadata
//! stripping, the 2–6 rule, ownership, that only valid images are accepted and that photo order
//! is preserved.

use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

use crate::both_backends;
use crate::helpers::images::{self, has_exif};
use crate::helpers::{Backend, Session, TestApp, runtime, spawn_app};

both_backends!(
    the_type_is_sniffed_from_the_bytes_not_the_name,
    bad_uploads_get_a_clear_error_and_store_nothing,
    a_seventh_photo_conflicts,
    gps_exif_is_stripped_and_orientation_applied,
    deleting_keeps_a_complete_profile_complete_and_removes_blobs,
    someone_elses_photo_cannot_be_touched,
    reordering_needs_an_exact_permutation,
    a_photo_link_is_reused_for_minutes_and_lasts_a_quarter_hour,
);

async fn the_type_is_sniffed_from_the_bytes_not_the_name(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    for (bytes, name, mime) in [
        (images::jpeg(50, 40), "a.jpg", "image/jpeg"),
        (images::png(50, 40), "really-a-png.jpg", "image/jpeg"),
        (images::webp(50, 40), "notes.txt", "text/plain"),
    ] {
        let (status, body) = app.upload(user.token(), bytes, name, mime).await;
        assert_eq!(status, 201, "{name}: {body}");
        assert!(body["url"].as_str().is_some() && body["thumbnailUrl"].as_str().is_some());
        // Whatever came in, a JPEG is stored.
        let stored = app
            .client
            .get(body["url"].as_str().expect("url"))
            .send()
            .await
            .expect("get");
        let bytes = stored.bytes().await.expect("bytes");
        assert_eq!(
            image::guess_format(&bytes).expect("format"),
            image::ImageFormat::Jpeg
        );
    }
    assert_eq!(app.count("photos").await, 3);
}

async fn bad_uploads_get_a_clear_error_and_store_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let jpeg = images::jpeg(400, 300);
    let cases: Vec<(&str, Vec<u8>, &str, u16)> = vec![
        (
            "a text file named .jpg",
            b"just some notes, not a picture".to_vec(),
            "dog.jpg",
            400,
        ),
        (
            "a truncated JPEG",
            jpeg[..jpeg.len() / 2].to_vec(),
            "dog.jpg",
            400,
        ),
        (
            "a PNG declaring 20000x20000",
            images::png_declaring(20_000, 20_000),
            "bomb.png",
            400,
        ),
        ("an empty file", Vec::new(), "empty.jpg", 400),
        (
            "10 MB + 1 byte",
            vec![0xFF; 10 * 1024 * 1024 + 1],
            "huge.jpg",
            413,
        ),
    ];
    for (what, bytes, name, status) in cases {
        let (got, body) = app.upload(user.token(), bytes, name, "image/jpeg").await;
        assert_eq!(got, status, "{what}: {body}");
        if status == 400 {
            assert_eq!(body["code"], "BAD_USER_INPUT", "{what}");
            assert!(!body["message"].as_str().unwrap_or("").is_empty());
        } else {
            assert_eq!(body["code"], "PAYLOAD_TOO_LARGE", "{what}");
        }
    }
    let (status, body) = app
        .upload(None, images::jpeg(10, 10), "a.jpg", "image/jpeg")
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    let (status, _) = app
        .upload(
            Some("not-a-token"),
            images::jpeg(10, 10),
            "a.jpg",
            "image/jpeg",
        )
        .await;
    assert_eq!(status, 401);
    // A form without a `file` field.
    let res = app
        .client
        .post(app.url("/v1/photos"))
        .bearer_auth(&user.access_token)
        .multipart(reqwest::multipart::Form::new().text("other", "x"))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 400);
    assert_eq!(app.count("photos").await, 0);
    if backend == Backend::Sqlite {
        let files = walk(&app.config.media_dir);
        assert!(files.is_empty(), "blobs left behind: {files:?}");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                vec![e.path()]
            }
        })
        .collect()
}

async fn a_seventh_photo_conflicts(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    for _ in 0..6 {
        app.upload_jpeg(&user).await;
    }
    let (status, body) = app
        .upload(user.token(), images::jpeg(20, 20), "7.jpg", "image/jpeg")
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "CONFLICT");
    assert_eq!(app.count("photos").await, 6);
}

async fn gps_exif_is_stripped_and_orientation_applied(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let upload = images::jpeg_with_gps_exif(40, 20);
    assert!(has_exif(&upload));
    let (status, body) = app
        .upload(user.token(), upload, "gps.jpg", "image/jpeg")
        .await;
    assert_eq!(status, 201, "{body}");
    for url in [&body["url"], &body["thumbnailUrl"]] {
        let stored = app
            .client
            .get(url.as_str().expect("url"))
            .send()
            .await
            .expect("get");
        let bytes = stored.bytes().await.expect("bytes").to_vec();
        assert!(!has_exif(&bytes), "EXIF survived");
        assert!(
            !bytes.windows(2).any(|w| w == [0xFF, 0xE1]),
            "an APP1 segment survived"
        );
        let latitude_bytes: Vec<u8> = images::GPS_LATITUDE
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert!(
            !bytes
                .windows(latitude_bytes.len())
                .any(|w| w == latitude_bytes.as_slice())
        );
        // Orientation 6 (90° clockwise) was applied: 40×20 became 20×40.
        let img = image::load_from_memory(&bytes).expect("decodes");
        assert!(
            img.height() > img.width(),
            "{}x{}",
            img.width(),
            img.height()
        );
    }
}

async fn delete_rest(app: &TestApp, user: &Session, id: Uuid) -> u16 {
    app.client
        .delete(app.url(&format!("/v1/photos/{id}")))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .expect("delete")
        .status()
        .as_u16()
}

async fn deleting_keeps_a_complete_profile_complete_and_removes_blobs(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let mut ids = app.complete_profile(&user, "Rex").await;
    ids.push(app.upload_jpeg(&user).await);
    let urls = app
        .gql(
            user.token(),
            "{ me { profile { photos { url thumbnailUrl } } } }",
            json!({}),
        )
        .await;
    let first = urls.data("me")["profile"]["photos"][0].clone();

    assert_eq!(delete_rest(&app, &user, ids[0]).await, 204);
    for url in [&first["url"], &first["thumbnailUrl"]] {
        let res = app
            .client
            .get(url.as_str().expect("url"))
            .send()
            .await
            .expect("get");
        assert_eq!(res.status(), 404, "the blob is gone");
    }
    // Two left: deleting one more would make the profile incomplete.
    assert_eq!(delete_rest(&app, &user, ids[1]).await, 409);
    let res = app
        .gql(
            user.token(),
            "mutation($p: UUID!) { deletePhoto(photoId: $p) }",
            json!({ "p": ids[1] }),
        )
        .await;
    assert_eq!(res.error_code(), "CONFLICT");
    assert_eq!(app.photo_ids(&user, &user).await, vec![ids[1], ids[2]]);

    // During onboarding (fewer than 2) deleting is allowed.
    let newbie = app.new_user().await;
    app.create_profile(&newbie, "Pup")
        .await
        .data("createProfile");
    let only = app.upload_jpeg(&newbie).await;
    let res = app
        .gql(
            newbie.token(),
            "mutation($p: UUID!) { deletePhoto(photoId: $p) }",
            json!({ "p": only }),
        )
        .await;
    assert_eq!(*res.data("deletePhoto"), json!(true));
    assert!(app.photo_ids(&newbie, &newbie).await.is_empty());
}

async fn someone_elses_photo_cannot_be_touched(backend: Backend) {
    let app = spawn_app(backend).await;
    let rex = app.new_user().await;
    let bella = app.new_user().await;
    let rex_photos = app.complete_profile(&rex, "Rex").await;
    let mut bella_photos = app.complete_profile(&bella, "Bella").await;
    bella_photos.push(app.upload_jpeg(&bella).await);

    assert_eq!(delete_rest(&app, &bella, rex_photos[0]).await, 404);
    assert_eq!(delete_rest(&app, &bella, Uuid::now_v7()).await, 404);
    let res = app
        .gql(
            bella.token(),
            "mutation($p: UUID!) { deletePhoto(photoId: $p) }",
            json!({ "p": rex_photos[0] }),
        )
        .await;
    assert_eq!(res.error_code(), "NOT_FOUND");
    let res = app
        .gql(
            bella.token(),
            "mutation($p: [UUID!]!) { reorderPhotos(photoIds: $p) { id } }",
            json!({ "p": [bella_photos[0], bella_photos[1], rex_photos[0]] }),
        )
        .await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    assert_eq!(res.body["errors"][0]["extensions"]["field"], "photoIds");
    assert_eq!(app.photo_ids(&rex, &rex).await, rex_photos);
    assert_eq!(app.photo_ids(&bella, &bella).await, bella_photos);
    let unauth = app
        .client
        .delete(app.url(&format!("/v1/photos/{}", rex_photos[0])))
        .send()
        .await
        .expect("delete");
    assert_eq!(unauth.status(), 401);
}

async fn reordering_needs_an_exact_permutation(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let mut ids = app.complete_profile(&user, "Rex").await;
    ids.push(app.upload_jpeg(&user).await);
    let reorder = |order: Vec<Uuid>| {
        let (app, user) = (&app, &user);
        async move {
            app.gql(
                user.token(),
                "mutation($p: [UUID!]!) { reorderPhotos(photoIds: $p) { id order } }",
                json!({ "p": order }),
            )
            .await
        }
    };
    for bad in [
        vec![ids[0], ids[1]],
        vec![ids[0], ids[1], ids[1]],
        vec![ids[0], ids[1], ids[2], ids[2]],
        vec![ids[0], ids[1], Uuid::now_v7()],
        vec![],
    ] {
        assert_eq!(reorder(bad).await.error_code(), "BAD_USER_INPUT");
    }
    assert_eq!(app.photo_ids(&user, &user).await, ids);
    let res = reorder(vec![ids[2], ids[0], ids[1]]).await;
    let got = res.data("reorderPhotos").as_array().expect("list").clone();
    assert_eq!(got[0]["id"], ids[2].to_string());
    assert_eq!(got[0]["order"], 0);
    assert_eq!(
        app.photo_ids(&user, &user).await,
        vec![ids[2], ids[0], ids[1]]
    );
}

// --- Properties ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum PhotoOp {
    Upload,
    Delete(prop::sample::Index),
    Reorder(prop::sample::Index),
}

fn photo_op() -> impl Strategy<Value = PhotoOp> {
    prop_oneof![
        3 => Just(PhotoOp::Upload),
        2 => any::<prop::sample::Index>().prop_map(PhotoOp::Delete),
        1 => any::<prop::sample::Index>().prop_map(PhotoOp::Reorder),
    ]
}

fn photo_count_stays_within_2_to_6(backend: Backend) {
    let rt = runtime();
    let app = rt.block_on(spawn_app(backend));
    let config = ProptestConfig {
        cases: 100,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in prop::collection::vec(photo_op(), 1..12))| {
        rt.block_on(async {
            let user = app.new_user_with_profile("Rex").await;
            let mut reached_complete = false;
            for op in ops {
                let ids = app.photo_ids(&user, &user).await;
                match op {
                    PhotoOp::Upload => {
                        let (status, _) = app.upload(user.token(), images::jpeg(16, 16), "p.jpg", "image/jpeg").await;
                        prop_assert_eq!(status, if ids.len() < 6 { 201 } else { 409 });
                    }
                    PhotoOp::Delete(i) if !ids.is_empty() => {
                        let status = delete_rest(&app, &user, ids[i.index(ids.len())]).await;
                        prop_assert_eq!(status, if ids.len() == 2 { 409 } else { 204 });
                    }
                    PhotoOp::Reorder(i) if ids.len() > 1 => {
                        let mut order = ids.clone();
                        order.rotate_left(i.index(ids.len()));
                        let res = app.gql(user.token(), "mutation($p: [UUID!]!) { reorderPhotos(photoIds: $p) { id } }", json!({ "p": order })).await;
                        res.data("reorderPhotos");
                    }
                    _ => {}
                }
                let after = app.photo_ids(&user, &user).await.len();
                prop_assert!(after <= 6, "more than 6 photos");
                reached_complete |= after >= 2;
                prop_assert!(!reached_complete || after >= 2, "a complete profile fell below 2 photos");
            }
            Ok(())
        })?;
    });
}

both_backends!(blocking: photo_count_stays_within_2_to_6, only_valid_images_are_accepted, photo_order_is_preserved);
fn not_an_image() -> impl Strategy<Value = Vec<u8>> {
    let jpeg = images::jpeg(120, 90);
    let png = images::png(120, 90);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..4096),
        (0usize..jpeg.len() / 2).prop_map(move |n| jpeg[..n].to_vec()),
        (0usize..png.len() / 2).prop_map(move |n| png[..n].to_vec()),
        "[ -~]{0,300}".prop_map(String::into_bytes),
    ]
}

fn only_valid_images_are_accepted(backend: Backend) {
    let rt = runtime();
    let app = rt.block_on(spawn_app(backend));
    let user = rt.block_on(app.new_user());
    let config = ProptestConfig {
        cases: 100,
        ..ProptestConfig::default()
    };
    proptest!(config, |(bytes in not_an_image(), name in "[a-z]{1,8}\\.(jpg|png|webp)")| {
        rt.block_on(async {
            let (status, body) = app.upload(user.token(), bytes, &name, "image/jpeg").await;
            prop_assert_eq!(status, 400, "{}", body);
            prop_assert_eq!(app.count("photos").await, 0);
            Ok(())
        })?;
    });
}

fn photo_order_is_preserved(backend: Backend) {
    let rt = runtime();
    let app = rt.block_on(spawn_app(backend));
    let (user, ids) = rt.block_on(async {
        let user = app.new_user().await;
        let mut ids = app.complete_profile(&user, "Rex").await;
        for _ in 0..4 {
            ids.push(app.upload_jpeg(&user).await);
        }
        (user, ids)
    });
    let config = ProptestConfig {
        cases: 100,
        ..ProptestConfig::default()
    };
    proptest!(config, |(order in Just(ids.clone()).prop_shuffle())| {
        rt.block_on(async {
            let res = app.gql(user.token(), "mutation($p: [UUID!]!) { reorderPhotos(photoIds: $p) { id } }", json!({ "p": order })).await;
            res.data("reorderPhotos");
            prop_assert_eq!(app.photo_ids(&user, &user).await, order.clone());
            Ok(())
        })?;
    });
}

/// Until when a signed media link works (unix seconds): local links carry `exp`, S3 links their
/// signing time and lifetime.
fn link_valid_until(link: &str) -> i64 {
    let url = url::Url::parse(link).expect("a URL");
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(exp) = param("exp") {
        return exp.parse().expect("exp");
    }
    let signed = param("X-Amz-Date").expect("an expiry or a signing time");
    let signed = chrono::NaiveDateTime::parse_from_str(&signed, "%Y%m%dT%H%M%SZ")
        .expect("X-Amz-Date")
        .and_utc()
        .timestamp();
    let lifetime: i64 = param("X-Amz-Expires")
        .expect("X-Amz-Expires")
        .parse()
        .expect("secs");
    signed + lifetime
}

/// A page of profiles hands out the same photo links for a few minutes (so they are not signed
/// again on every request, and the app's image cache can keep the photos); every link handed
/// out works for at least 10 minutes and at most 15, so a block, a hold or a removal stops a
/// copied link soon after.
async fn a_photo_link_is_reused_for_minutes_and_lasts_a_quarter_hour(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.new_user().await;
    app.complete_profile(&owner, "Rex").await;
    let viewer = app.new_user_with_profile("Bella").await;
    app.introduce(&viewer, &owner).await;
    let links = || async {
        let res = app
            .gql(
                viewer.token(),
                "query($u: UUID!) { profile(userId: $u) { photos { url thumbnailUrl } } }",
                json!({ "u": owner.user_id }),
            )
            .await;
        let photos = res.data("profile")["photos"].clone();
        let mut links = Vec::new();
        for photo in photos.as_array().expect("photos") {
            for field in ["url", "thumbnailUrl"] {
                links.push(photo[field].as_str().expect("a link").to_string());
            }
        }
        links
    };
    // Links are reused within a five-minute window: retry if the two reads straddle its end.
    let window = || chrono::Utc::now().timestamp().div_euclid(300);
    let (first, second) = loop {
        let started = window();
        let first = links().await;
        // Past the second in which the first links were signed.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let second = links().await;
        if window() == started {
            break (first, second);
        }
    };
    assert_eq!(first.len(), 4);
    assert_eq!(first, second, "the same links, not signed again");
    let now = chrono::Utc::now().timestamp();
    for link in &first {
        let until = link_valid_until(link);
        assert!(until >= now + 600 - 5, "{link} expires too soon");
        assert!(
            until <= now + 900 + 5,
            "{link} lives longer than 15 minutes"
        );
        app.get_ok(link.as_str()).await;
    }
}
