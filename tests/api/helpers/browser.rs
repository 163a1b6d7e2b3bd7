//! A real browser: Debian's Chromium driven over WebDriver (chromedriver), both installed by
//! scripts/test.sh.

use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

/// chromedriver on a free loopback port, stopped when dropped.
pub struct Driver {
    _process: tokio::process::Child,
    url: String,
}

pub async fn start_driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let process = tokio::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver runs (scripts/test.sh installs chromium-driver)");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("{url}/status"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Driver {
                _process: process,
                url,
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

pub async fn browser(driver: &Driver) -> Client {
    browser_with(driver, &[]).await
}

/// A browser with Chromium's extra command-line `args`.
pub async fn browser_with(driver: &Driver, args: &[&str]) -> Client {
    pupmatch::infra::tls::install_crypto_provider();
    let mut caps = serde_json::Map::new();
    let args: Vec<&str> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,860",
        "--disable-gpu",
        "--no-first-run",
    ]
    .into_iter()
    .chain(args.iter().copied())
    .collect();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": "/usr/bin/chromium", "args": args }),
    );
    ClientBuilder::rustls()
        .expect("connector")
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}
