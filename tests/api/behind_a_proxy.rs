//! Behind a real reverse proxy (nginx, started here) in front of two API instances on one
//! Redis: each client is limited on its own address, a spoofed `X-Forwarded-For` changes
//! nothing (also from a proxy that appends ports or writes `unknown`), and GraphQL, photo
//! upload and `/ws` all work through it.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, DEFAULT_PASSWORD, client_from, images, spawn_app_with};

/// nginx connects to the API from this address, the one the API trusts.
const PROXY_SOURCE: &str = "127.0.0.2";

struct Nginx {
    port: u16,
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|v| v.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

/// nginx in front of `upstreams`, writing `X-Forwarded-For` as `forwarded_for` says (an nginx
/// expression: `$proxy_add_x_forwarded_for` appends the client's address).
async fn start_nginx(upstreams: &[u16], forwarded_for: &str) -> Nginx {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("nginx is installed (scripts/test.sh installs it)");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().display();
    let servers: String = upstreams
        .iter()
        .map(|p| format!("server 127.0.0.1:{p};\n"))
        .collect();
    let user = if running_as_root() { "user root;" } else { "" };
    let conf = format!(
        "{user}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  client_max_body_size 11m;
  upstream api {{ {servers} }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://api;
      proxy_bind {PROXY_SOURCE};
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For \"{forwarded_for}\";
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $http_connection;
      proxy_read_timeout 60s;
    }}
  }}
}}
"
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).expect("conf");
    let child = tokio::process::Command::new(nginx)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .arg("-g")
        .arg("daemon off;")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("nginx starts");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Nginx {
                port,
                child,
                _dir: dir,
            };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "nginx did not listen: {}",
        std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
    );
}

async fn gql(client: &reqwest::Client, base: &str, body: Value, xff: Option<&str>) -> (u16, Value) {
    let mut req = client.post(format!("{base}/graphql")).json(&body);
    if let Some(xff) = xff {
        req = req.header("x-forwarded-for", xff);
    }
    let res = req.send().await.expect("request");
    (res.status().as_u16(), res.json().await.expect("json"))
}

fn login(email: &str, password: &str) -> Value {
    json!({
        "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
        "variables": { "e": email, "p": password },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_has_its_own_limits_behind_a_proxy() {
    let app = spawn_app_with(Backend::Postgres, |c| {
        c.rate_limits.auth_per_min = 3;
        c.trusted_proxies = vec![format!("{PROXY_SOURCE}/32").parse().expect("cidr")];
    })
    .await;
    let sibling = app.spawn_sibling().await;
    let ports: Vec<u16> = [&app.address, &sibling.address]
        .iter()
        .map(|a| a.rsplit(':').next().expect("port").parse().expect("port"))
        .collect();
    let nginx = start_nginx(&ports, "$proxy_add_x_forwarded_for").await;
    let base = format!("http://127.0.0.1:{}", nginx.port);

    // Registered directly (its own address's budget), used through the proxy.
    let user = app.new_user().await;
    let alice = client_from("127.0.0.3");
    let bob = client_from("127.0.0.4");

    // Alice fails three times (the requests alternate between the two instances; the budget is
    // shared through Redis), spoofing a different address each time: she is locked out.
    for i in 0..3 {
        let spoof = format!("10.9.9.{i}");
        let (status, body) = gql(
            &alice,
            &base,
            login(&user.email, "wrong password"),
            Some(&spoof),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }
    let (status, body) = gql(
        &alice,
        &base,
        login(&user.email, DEFAULT_PASSWORD),
        Some("10.9.9.9"),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    // Bob, behind the same proxy, is not locked out — even claiming to be Alice.
    let (status, body) = gql(
        &bob,
        &base,
        login(&user.email, DEFAULT_PASSWORD),
        Some("127.0.0.3"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["data"]["login"]["accessToken"]
        .as_str()
        .expect("token")
        .to_string();

    // Straight to an instance (not through the trusted proxy), the header is ignored: a client
    // cannot reset its budget by naming another address.
    let direct = client_from("127.0.0.5");
    for i in 0..3 {
        let (status, _) = gql(
            &direct,
            &app.address,
            login(&user.email, "wrong"),
            Some(&format!("10.8.8.{i}")),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (status, _) = gql(
        &direct,
        &app.address,
        login(&user.email, "wrong"),
        Some("10.8.8.200"),
    )
    .await;
    assert_eq!(status, 429);

    // GraphQL, photo upload and the WebSocket work through the proxy.
    let me = bob
        .post(format!("{base}/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), 200);
    bob.post(format!("{base}/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": "mutation { createProfile(input: { name: \"Rex\", age: 3, bio: \"\", activityLevel: HIGH }) { id } }" }))
        .send()
        .await
        .expect("profile");
    let part = reqwest::multipart::Part::bytes(images::jpeg(64, 48))
        .file_name("dog.jpg")
        .mime_str("image/jpeg")
        .expect("mime");
    let upload = bob
        .post(format!("{base}/v1/photos"))
        .bearer_auth(&token)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .expect("upload");
    assert_eq!(upload.status(), 201);
    {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://127.0.0.1:{}/ws", nginx.port)
            .into_client_request()
            .expect("request");
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket through the proxy");
        let ready = ws.next().await.expect("frame").expect("frame");
        assert!(
            ready.to_text().expect("text").contains("ready"),
            "{ready:?}"
        );
    }
}

/// Three wrong passwords from `client`, each claiming another address on the left of what the
/// proxy appends; then the right one, whose status is returned.
async fn fourth_login_after_spoofed_failures(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    spoof_prefix: &str,
) -> u16 {
    for i in 0..3 {
        let (status, body) = gql(
            client,
            base,
            login(email, "wrong password"),
            Some(&format!("{spoof_prefix}.{i}")),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    gql(
        client,
        base,
        login(email, DEFAULT_PASSWORD),
        Some(&format!("{spoof_prefix}.9")),
    )
    .await
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_appends_ports_or_unknown_does_not_let_clients_pick_their_address() {
    let app = spawn_app_with(Backend::Postgres, |c| {
        c.rate_limits.auth_per_min = 3;
        c.trusted_proxies = vec![format!("{PROXY_SOURCE}/32").parse().expect("cidr")];
    })
    .await;
    let port: u16 = app
        .address
        .rsplit(':')
        .next()
        .expect("port")
        .parse()
        .expect("port");
    let user = app.new_user().await;

    // The proxy appends `address:port`: each client is still limited on its own address.
    let with_ports = start_nginx(&[port], "$http_x_forwarded_for, $remote_addr:$remote_port").await;
    let base = format!("http://127.0.0.1:{}", with_ports.port);
    let (alice, bob) = (client_from("127.0.0.3"), client_from("127.0.0.4"));
    assert_eq!(
        fourth_login_after_spoofed_failures(&alice, &base, &user.email, "10.9.9").await,
        429,
        "spoofed addresses left of `ip:port` are not believed"
    );
    let (status, body) = gql(&bob, &base, login(&user.email, DEFAULT_PASSWORD), None).await;
    assert_eq!(status, 200, "another client is not limited: {body}");

    // The proxy appends `unknown`: nothing left of it is believed, so its clients share the
    // proxy's own budget.
    let unknown = start_nginx(&[port], "$http_x_forwarded_for, unknown").await;
    let base = format!("http://127.0.0.1:{}", unknown.port);
    let (carol, dave) = (client_from("127.0.0.6"), client_from("127.0.0.7"));
    assert_eq!(
        fourth_login_after_spoofed_failures(&carol, &base, &user.email, "10.7.7").await,
        429,
        "spoofed addresses left of `unknown` are not believed"
    );
    let (status, _) = gql(
        &dave,
        &base,
        login(&user.email, DEFAULT_PASSWORD),
        Some("10.7.7.200"),
    )
    .await;
    assert_eq!(status, 429, "keyed by the proxy that wrote `unknown`");
}
