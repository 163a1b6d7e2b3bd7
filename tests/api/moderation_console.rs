//! The moderators' console in a real browser: Debian's Chromium driven over WebDriver
//! (chromedriver, both installed by scripts/test.sh). A moderator signs in, opens the top case,
//! sees the snapshot and the reported messages, suspends the harasser after a confirmation, and
//! the harasser's socket on another instance closes and their next request is refused.
//!
//! The queue's screenshot is written to `target/screenshots/moderation-queue.png` (the README's
//! picture comes from it).

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::json;

use crate::helpers::browser::{browser, start_driver};
use crate::helpers::chat::matched_pair;
use crate::helpers::people::{BERLIN, dog_at};
use crate::helpers::staff::grant;
use crate::helpers::{Backend, DEFAULT_PASSWORD, Session, TestApp, spawn_app_with};
use pupmatch::moderation::model::Role;

async fn text_of(page: &Client) -> String {
    page.find(Locator::Css("main"))
        .await
        .expect("main")
        .text()
        .await
        .expect("text")
}

/// Every visible form control on the page has a label that names it.
async fn assert_labelled(page: &Client) {
    let html = page.source().await.expect("source");
    for input in page
        .find_all(Locator::Css("input:not([type=hidden]), select"))
        .await
        .expect("inputs")
    {
        let id = input.attr("id").await.expect("attr").unwrap_or_default();
        assert!(!id.is_empty(), "a control without an id on {html}");
        assert!(
            html.contains(&format!("<label for=\"{id}\">")),
            "no label for #{id}"
        );
    }
}

async fn sign_in(page: &Client, app: &TestApp, who: &Session) {
    page.goto(&app.url("/admin/login"))
        .await
        .expect("login page");
    assert_labelled(page).await;
    page.find(Locator::Id("email"))
        .await
        .expect("email")
        .send_keys(&who.email)
        .await
        .expect("type");
    page.find(Locator::Id("password"))
        .await
        .expect("password")
        .send_keys(DEFAULT_PASSWORD)
        .await
        .expect("type");
    page.find(Locator::Css("button[type=submit]"))
        .await
        .expect("button")
        .click()
        .await
        .expect("submit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_handles_a_harassment_case_in_the_browser() {
    // Reporters made a moment ago count towards the hold here (by default, a day old).
    let app = spawn_app_with(Backend::Postgres, |c| {
        c.moderation.reporter_min_age = std::time::Duration::ZERO;
    })
    .await;
    let elsewhere = app.spawn_sibling().await;
    let moderator = app.new_user().await;
    grant(&app, &moderator.email, Role::Moderator).await;

    // Rex harasses Bella, then two more people report him; a spammer has one report.
    let (harasser, bella, conversation) = matched_pair(&app).await;
    for (from, text) in [
        (&harasser, "you are ugly"),
        (&bella, "please stop"),
        (&harasser, "I know where your park is"),
    ] {
        let res = app
            .gql(
                from.token(),
                "mutation($c: UUID!, $t: String!) { sendMessage(conversationId: $c, content: $t) { id } }",
                json!({ "c": conversation, "t": text }),
            )
            .await;
        assert!(res.errors().is_empty(), "{}", res.body);
    }
    let spammer = dog_at(&app, "Kibble Seller", BERLIN).await;
    let reports = [
        (&bella, &harasser, "HARASSMENT", "He threatens me"),
        (
            &dog_at(&app, "Luna", BERLIN).await,
            &spammer,
            "SPAM",
            "sells kibble",
        ),
        (
            &dog_at(&app, "Max", BERLIN).await,
            &harasser,
            "HARASSMENT",
            "insults",
        ),
        (
            &dog_at(&app, "Daisy", BERLIN).await,
            &harasser,
            "HARASSMENT",
            "rude",
        ),
    ];
    for (by, whom, reason, details) in reports {
        let res = app.report(by, &whom.user_id, reason, Some(details)).await;
        assert!(res.errors().is_empty(), "{}", res.body);
    }
    // Rex edits his profile after being reported: the case still shows what was reported.
    app.gql(
        harasser.token(),
        "mutation { updateProfile(input: { name: \"Angel\" }) { id } }",
        json!({}),
    )
    .await
    .data("updateProfile");
    let mut rex_socket = elsewhere.ws(&harasser).await;

    let driver = start_driver().await;
    let page = browser(&driver).await;
    sign_in(&page, &app, &moderator).await;

    // The queue: Rex first (three reporters), hidden until decided.
    page.wait()
        .for_element(Locator::Css("table"))
        .await
        .expect("queue");
    let queue = text_of(&page).await;
    let angel = queue.find("Angel").expect("Rex's case in the queue");
    let kibble = queue.find("Kibble Seller").expect("the spam case");
    assert!(angel < kibble, "most reporters first: {queue}");
    assert!(queue.contains("hidden until decided"), "{queue}");
    let shot = page.screenshot().await.expect("screenshot");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("moderation-queue.png"), shot).expect("write screenshot");

    // The top case: the snapshot, and only what Rex sent his reporter.
    page.find(Locator::Css("tbody tr:first-child a"))
        .await
        .expect("top case")
        .click()
        .await
        .expect("open");
    page.wait()
        .for_element(Locator::Id("reports"))
        .await
        .expect("case page");
    assert_labelled(&page).await;
    let case = text_of(&page).await;
    assert!(case.contains("Angel now"), "{case}");
    assert!(
        case.contains("Rex"),
        "the snapshot keeps the reported name: {case}"
    );
    assert!(case.contains("you are ugly") && case.contains("I know where your park is"));
    assert!(
        !case.contains("please stop"),
        "no message of the reporter's: {case}"
    );
    assert!(case.contains("He threatens me"));
    let photos = page.find_all(Locator::Css("img")).await.expect("images");
    assert!(photos.len() >= 4, "current and snapshot photos are shown");

    // Suspend, with a reason, after a confirmation.
    page.find(Locator::Id("reason-suspend"))
        .await
        .expect("reason")
        .send_keys("threats against another member")
        .await
        .expect("type");
    page.find(Locator::Id("do-suspend"))
        .await
        .expect("button")
        .click()
        .await
        .expect("ask");
    let confirm = page
        .wait()
        .for_element(Locator::Id("confirm"))
        .await
        .expect("confirmation");
    assert!(text_of(&page).await.contains("Suspend Angel for 7 days?"));
    confirm.click().await.expect("confirm");
    page.wait()
        .for_element(Locator::Css("[role=status]"))
        .await
        .expect("done");
    assert!(text_of(&page).await.contains("Done: suspend Angel"));

    // Out everywhere at once: the socket on the other instance, the next request, sign-in.
    let (closed, _) = rex_socket.expect_closed(Duration::from_secs(2)).await;
    assert_eq!(closed, Some(4001));
    assert_eq!(
        app.me(harasser.token()).await.error_code(),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        elsewhere.me(harasser.token()).await.error_code(),
        "UNAUTHENTICATED"
    );
    let login = app.login(&harasser.email, DEFAULT_PASSWORD).await;
    assert_eq!(login.error_code(), "FORBIDDEN");

    // The audit log shows it.
    page.goto(&app.url("/admin/audit")).await.expect("audit");
    let log = text_of(&page).await;
    assert!(
        log.contains("suspend") && log.contains("threats against another member"),
        "{log}"
    );
    page.close().await.expect("close");
}
