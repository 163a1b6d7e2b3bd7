//! Memory is bounded under hostile bursts: photo decoding and password hashing wait for room in
//! bounded pools (or get 503 with `Retry-After`) instead of growing the process without end.
//! Peak memory is the test process's high-water mark (nextest runs each test in its own
//! process, so it is this server's peak).

use crate::both_backends;
use crate::helpers::process::{Alone, runs_alone_elsewhere};
use crate::helpers::{Backend, DEFAULT_PASSWORD, spawn_app};

both_backends!(
    forty_huge_uploads_at_once_keep_memory_bounded,
    three_hundred_logins_at_once_keep_memory_bounded,
);

/// The process's peak resident memory so far, in MiB.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        / 1024
}

/// A flat 8000 × 5000 RGBA PNG (40 megapixels, 160 MB decoded), written row by row so the
/// test itself never holds the decoded image.
fn flat_40_megapixel_png() -> Vec<u8> {
    let (width, height) = (8000u32, 5000u32);
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().expect("header");
        let mut stream = writer.stream_writer().expect("stream");
        let row = vec![200u8; width as usize * 4];
        for _ in 0..height {
            std::io::Write::write_all(&mut stream, &row).expect("row");
        }
        stream.finish().expect("finish");
    }
    out
}

/// Today's attack: 40 of these at once took a server to 11.6 GiB.
async fn forty_huge_uploads_at_once_keep_memory_bounded(backend: Backend) {
    if runs_alone_elsewhere(Alone::Measures) {
        return;
    }
    let app = spawn_app(backend).await;
    let png = flat_40_megapixel_png();
    assert!(png.len() < 10 * 1024 * 1024, "{} bytes", png.len());
    let mut people = Vec::new();
    for _ in 0..8 {
        let user = app.new_user_with_profile("Rex").await;
        people.push(user);
    }
    let before = peak_rss_mib();
    let uploads = (0..40).map(|i| {
        let (app, user, png) = (&app, &people[i % 8], png.clone());
        async move { app.upload(user.token(), png, "flat.png", "image/png").await }
    });
    let answers = futures::future::join_all(uploads).await;
    let mut stored = 0;
    for (status, body) in &answers {
        match status {
            201 => stored += 1,
            503 => assert_eq!(body["code"], "SERVICE_UNAVAILABLE", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let peak = peak_rss_mib();
    assert!(stored >= 2, "some got through: {stored}");
    assert!(
        peak < 1536,
        "peak {peak} MiB (before the burst {before} MiB)"
    );
    // Still up.
    app.me(people[0].token()).await.data("me");
}

/// Today: 300 logins at once took 574 MiB (19 MiB per argon2id hash, all at once).
async fn three_hundred_logins_at_once_keep_memory_bounded(backend: Backend) {
    if runs_alone_elsewhere(Alone::Measures) {
        return;
    }
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let before = peak_rss_mib();
    let logins = (0..300).map(|i| {
        let app = &app;
        let email = user.email.clone();
        async move {
            // Half right, half wrong passwords for accounts that do not exist (each email
            // its own, so no email's sign-ins pause: every one of the 300 hashes a password).
            if i % 2 == 0 {
                app.login(&email, DEFAULT_PASSWORD).await
            } else {
                app.login(&format!("nobody-{i}@example.com"), "wrong password")
                    .await
            }
        }
    });
    let answers = futures::future::join_all(logins).await;
    let peak = peak_rss_mib();
    let mut signed_in = 0;
    for res in &answers {
        if res.body["data"]["login"]["accessToken"].is_string() {
            signed_in += 1;
        } else {
            let code = res.error_code();
            assert!(
                code == "UNAUTHENTICATED" || code == "SERVICE_UNAVAILABLE",
                "{}",
                res.body
            );
        }
    }
    assert!(signed_in > 0);
    assert!(
        peak < 400,
        "peak {peak} MiB (before the burst {before} MiB)"
    );
}
