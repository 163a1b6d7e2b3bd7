//! Test harness: `spawn_app(Backend)` starts the real application on port 0 with a fresh
//! database of its own (PostgreSQL: cloned from a migrated template; SQLite: a temp file), and
//! typed helpers keep each test a short story.

pub mod browser;
pub mod chat;
pub mod db;
pub mod fcm;
pub mod images;
pub mod inbox;
pub mod otlp;
pub mod people;
pub mod process;
pub mod proxy;
pub mod smtp;
pub mod staff;
pub mod ws;

use std::sync::Arc;

use pupmatch::Config;
use pupmatch::infra::db::Db;
use serde_json::{Value, json};
use sqlx::Connection;
use uuid::Uuid;

/// Which database (and mode) a test runs against. PostgreSQL tests run in scale-out mode with
/// Redis; SQLite tests run in embedded mode (everything in-process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Generates one `#[tokio::test]` per backend for each listed `async fn name(backend)`.
#[macro_export]
macro_rules! both_backends {
    // Plain `fn(Backend)` tests that drive their own runtime (proptest properties).
    (blocking: $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn postgres() {
                    super::$name($crate::helpers::Backend::Postgres)
                }
                #[test]
                fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite)
                }
            }
        )*
    };
    (worker_threads = $threads:literal: $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
                async fn postgres() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            }
        )*
    };
    ($($name:ident),* $(,)?) => {
        $crate::both_backends!(worker_threads = 2: $($name),*);
    };
}

pub fn pg_admin_url() -> String {
    std::env::var("TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The S3-compatible server scripts/test.sh starts (moto), used by PostgreSQL-backend tests.
pub fn s3_endpoint() -> String {
    std::env::var("TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9100".into())
}

pub const TEST_JWT_SECRET: &str = "integration-test-secret-0123456789abcdefghijklmnop";

/// The primary of the PostgreSQL pair with a streaming replica (scripts/test.sh starts both).
pub fn pg_primary_url() -> String {
    std::env::var("TEST_PRIMARY_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5434/postgres".into())
}

/// The streaming replica of [`pg_primary_url`].
pub fn pg_replica_url() -> String {
    std::env::var("TEST_REPLICA_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5435/postgres".into())
}

/// `pg_ctlcluster <version> <cluster> <args…>` (through sudo unless root): stops, starts or
/// restarts one of the test clusters.
pub fn pg_ctlcluster(cluster: &str, args: &[&str]) {
    let version = std::env::var("TEST_PG_VERSION").unwrap_or_else(|_| "15".into());
    let mut command = if rustix::process::geteuid().is_root() {
        std::process::Command::new("pg_ctlcluster")
    } else {
        let mut sudo = std::process::Command::new("sudo");
        sudo.arg("pg_ctlcluster");
        sudo
    };
    let status = command
        .args(["--skip-systemctl-redirect", &version, cluster])
        .args(args)
        .status()
        .expect("pg_ctlcluster runs");
    assert!(
        status.success(),
        "pg_ctlcluster {cluster} {args:?}: {status}"
    );
}

/// `server_url` (`…/postgres`) with the database `name` instead.
pub fn pg_database_url(server_url: &str, name: &str) -> String {
    format!(
        "{}/{}",
        server_url.rsplit_once('/').expect("url has a path").0,
        name
    )
}

/// A fresh database on the primary of the replica pair, and its URL on the streaming replica,
/// once it has reached it (`CREATE DATABASE` travels through the WAL like everything else).
pub async fn primary_db_with_replica() -> (TestDb, String) {
    let db = TestDb::create_on(&pg_primary_url()).await;
    let name = db.url().rsplit_once('/').expect("path").1.to_string();
    let replica = pg_database_url(&pg_replica_url(), &name);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sqlx::PgConnection::connect(&replica).await.is_err() {
        assert!(
            std::time::Instant::now() < until,
            "the test database never reached the replica"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    (db, replica)
}

/// A database created for one test, removed when the last app using it is dropped.
pub enum TestDb {
    Postgres {
        name: String,
        url: String,
        /// The server's administrative URL (where it is dropped from).
        admin: String,
    },
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
}

impl TestDb {
    pub async fn create(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/pupmatch.db", dir.path().display());
                TestDb::Sqlite { _dir: dir, url }
            }
            Backend::Postgres => TestDb::create_on(&pg_admin_url()).await,
        }
    }

    /// A fresh PostgreSQL database on the server at `admin` (a superuser's URL).
    pub async fn create_on(admin: &str) -> TestDb {
        let name = format!("pupmatch_test_{}", Uuid::new_v4().simple());
        create_pg_database(admin, &name).await;
        TestDb::Postgres {
            url: pg_database_url(admin, &name),
            name,
            admin: admin.to_string(),
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Postgres { url, .. } | TestDb::Sqlite { url, .. } => url,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { name, admin, .. } = self {
            let name = name.clone();
            let admin = admin.clone();
            // Drop runs inside the test's runtime: use a thread with a runtime of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    if let Ok(mut admin) = sqlx::PgConnection::connect(&admin).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        )))
                        .execute(&mut admin)
                        .await;
                    }
                });
            })
            .join();
        }
    }
}

/// The migrations' fingerprint: a changed migration gets a new template.
fn migrations_fingerprint() -> String {
    use sha2::{Digest, Sha256};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("migrations folder")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    let mut hasher = Sha256::new();
    for f in files {
        hasher.update(std::fs::read(&f).expect("migration file"));
    }
    hex::encode(&hasher.finalize()[..6])
}

/// Creates `name` as a copy of a migrated template database, building the template once (under
/// an advisory lock, so parallel test processes wait for the first one).
async fn create_pg_database(admin_url: &str, name: &str) {
    let template = format!("pupmatch_tpl_{}", migrations_fingerprint());
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("PostgreSQL must be running (scripts/test.sh starts it)");
    sqlx::query("SELECT pg_advisory_lock(72657)")
        .execute(&mut admin)
        .await
        .expect("advisory lock");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&template)
            .fetch_one(&mut admin)
            .await
            .expect("query pg_database");
    if !exists {
        let building = format!("{template}_building");
        exec(
            &mut admin,
            &format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"),
        )
        .await;
        exec(&mut admin, &format!("CREATE DATABASE \"{building}\"")).await;
        let url = pg_database_url(admin_url, &building);
        let db = Db::connect(&url, 1, None)
            .await
            .expect("connect to template");
        db.migrate().await.expect("migrate template");
        db.close().await;
        exec(
            &mut admin,
            &format!("ALTER DATABASE \"{building}\" RENAME TO \"{template}\""),
        )
        .await;
    }
    exec(
        &mut admin,
        &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
    )
    .await;
    sqlx::query("SELECT pg_advisory_unlock(72657)")
        .execute(&mut admin)
        .await
        .expect("advisory unlock");
}

async fn exec(conn: &mut sqlx::PgConnection, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The configuration a test app starts from.
pub fn test_config(backend: Backend, db: &TestDb, media_dir: &std::path::Path) -> Config {
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().expect("addr");
    // Tests run the background jobs themselves (tests/api/jobs.rs), never behind their back.
    config.jobs.in_serve = false;
    config.database_url = db.url().to_string();
    config.database_max_connections = 5;
    config.media_dir = media_dir.to_path_buf();
    config.jwt_secret = TEST_JWT_SECRET.into();
    // Generous limits: rate-limit tests set their own.
    config.rate_limits.user_per_min = 100_000;
    config.rate_limits.ip_per_min = 100_000;
    config.rate_limits.auth_per_min = 100_000;
    config.rate_limits.location_per_min = 100_000;
    config.rate_limits.message_per_min = 100_000;
    config.rate_limits.people_per_min = 100_000;
    config.rate_limits.profiles_per_day = 100_000;
    config.rate_limits.likes_per_day = 100_000;
    config.rate_limits.first_messages_per_day = 100_000;
    config.rate_limits.location_changes_per_day = 100_000;
    if backend == Backend::Postgres {
        config.redis_url = Some(redis_url());
        config.redis_prefix = format!("test:{}:", Uuid::new_v4().simple());
        config.s3 = Some(pupmatch::config::S3Config {
            bucket: format!("pm-{}", Uuid::new_v4().simple()),
            endpoint: Some(s3_endpoint()),
            region: "us-east-1".into(),
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
        });
    }
    config
}

/// Production settings a test app needs to start: a mail server (none listens there), the
/// https address people reach it at, and the one web origin it serves.
pub fn in_production(config: &mut Config) {
    config.environment = pupmatch::config::Environment::Production;
    config.smtp_url = Some("smtp://127.0.0.1:1".to_string().into());
    config.public_url = Some("https://pupmatch.test".parse().expect("url"));
    config.allowed_origins = Some(vec![PRODUCTION_ORIGIN.to_string()]);
}

/// A client connecting from its own loopback address (`127.0.0.x`), as a different machine
/// would.
pub fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().expect("ip"))
        .build()
        .expect("client")
}

/// The web origin [`in_production`] allows.
pub const PRODUCTION_ORIGIN: &str = "https://app.pupmatch.test";

/// Creates the test's bucket on the S3-compatible server.
async fn create_bucket(config: &Config) {
    if let Some(s3) = &config.s3 {
        let url = format!(
            "{}/{}",
            s3.endpoint.as_deref().expect("endpoint"),
            s3.bucket
        );
        let res = reqwest::Client::new()
            .put(&url)
            .send()
            .await
            .expect("the S3 server runs (scripts/test.sh starts it)");
        assert!(
            res.status().is_success(),
            "creating bucket: {}",
            res.status()
        );
    }
}

/// A running application and a client for it.
pub struct TestApp {
    pub address: String,
    /// Where `/metrics` is served when it has its own address.
    pub metrics_address: Option<String>,
    pub backend: Backend,
    pub config: Config,
    pub client: reqwest::Client,
    /// Direct database access, for assertions about what is (not) stored.
    pub db: Db,
    /// The running server's own state (for an in-process worker, as embedded `serve` runs).
    pub state: pupmatch::AppState,
    test_db: Arc<TestDb>,
    media: Arc<tempfile::TempDir>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts an app after `configure` adjusts its configuration.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
    init_test_logging();
    let test_db = Arc::new(TestDb::create(backend).await);
    let media = Arc::new(tempfile::tempdir().expect("media dir"));
    let mut config = test_config(backend, &test_db, media.path());
    configure(&mut config);
    create_bucket(&config).await;
    start(backend, config, test_db, media).await
}

/// Starts a PostgreSQL app on `test_db` (made with [`TestDb::create_on`]) after `configure`
/// adjusts its configuration.
pub async fn spawn_app_on(test_db: TestDb, configure: impl FnOnce(&mut Config)) -> TestApp {
    init_test_logging();
    let test_db = Arc::new(test_db);
    let media = Arc::new(tempfile::tempdir().expect("media dir"));
    let mut config = test_config(Backend::Postgres, &test_db, media.path());
    configure(&mut config);
    create_bucket(&config).await;
    start(Backend::Postgres, config, test_db, media).await
}

impl TestApp {
    /// A second instance of the same deployment: same database, same Redis namespace.
    pub async fn spawn_sibling(&self) -> TestApp {
        start(
            self.backend,
            self.config.clone(),
            self.test_db.clone(),
            self.media.clone(),
        )
        .await
    }

    /// A background worker of this deployment, as `pupmatch worker` makes one: its own
    /// connections to the same database and Redis. Failed attempts are retried after 10 ms.
    pub async fn worker(&self) -> pupmatch::jobs::Worker {
        let public_url = self.address.parse().expect("url");
        let state = pupmatch::app::build_state(self.config.clone(), public_url)
            .await
            .expect("worker state");
        pupmatch::jobs::Worker::new(pupmatch::jobs::JobServices::of(&state))
            .with_retry_delay(std::time::Duration::from_millis(10))
    }

    /// The worker of this deployment's mode: its own process's state in scale-out mode
    /// ([`Self::worker`]), the server's own in embedded mode (where `serve` runs the jobs).
    pub async fn mode_worker(&self) -> pupmatch::jobs::Worker {
        match self.backend {
            Backend::Postgres => self.worker().await,
            Backend::Sqlite => {
                pupmatch::jobs::Worker::new(pupmatch::jobs::JobServices::of(&self.state))
                    .with_retry_delay(std::time::Duration::from_millis(10))
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// POSTs a GraphQL request, with a bearer token when given.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> GqlResponse {
        let mut req = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body: Value = res.json().await.expect("JSON body");
        GqlResponse {
            status,
            retry_after,
            body,
        }
    }

    /// `sendMessage` of `text` from `from` into `conversation` (any id JSON takes).
    pub async fn send_message(
        &self,
        from: &Session,
        conversation: impl serde::Serialize,
        text: &str,
    ) -> GqlResponse {
        self.gql(
            from.token(),
            "mutation($c: UUID!, $t: String!) { sendMessage(conversationId: $c, content: $t) { id } }",
            json!({ "c": conversation, "t": text }),
        )
        .await
    }

    /// `report` of `whom` by `by`, for `reason` (a `ReportReason` name), with `details`.
    pub async fn report(
        &self,
        by: &Session,
        whom: impl serde::Serialize,
        reason: &str,
        details: Option<&str>,
    ) -> GqlResponse {
        self.gql(
            by.token(),
            "mutation($u: UUID!, $r: ReportReason!, $d: String) { report(userId: $u, reason: $r, details: $d) }",
            json!({ "u": whom, "r": reason, "d": details }),
        )
        .await
    }

    /// `unmatch` of `match_id` by `user`.
    pub async fn unmatch(&self, user: &Session, match_id: impl serde::Serialize) -> GqlResponse {
        self.gql(
            user.token(),
            "mutation($m: UUID!) { unmatch(matchId: $m) }",
            json!({ "m": match_id }),
        )
        .await
    }

    /// `deleteAccount` by `user`, with their password.
    pub async fn delete_account(&self, user: &Session) -> GqlResponse {
        self.gql(
            user.token(),
            "mutation($p: String!) { deleteAccount(password: $p) }",
            json!({ "p": DEFAULT_PASSWORD }),
        )
        .await
    }

    pub async fn register(&self, email: &str, password: &str) -> GqlResponse {
        self.gql(
            None,
            "mutation($i: RegisterInput!) { register(input: $i) {
                accessToken refreshToken expiresAt user { id email createdAt } } }",
            json!({ "i": { "email": email, "password": password } }),
        )
        .await
    }

    /// Registers a fresh account and returns its session.
    pub async fn new_user(&self) -> Session {
        let email = format!("owner-{}@example.com", Uuid::new_v4().simple());
        let res = self.register(&email, DEFAULT_PASSWORD).await;
        Session::from_payload(res.data("register"), &email)
    }

    pub async fn login(&self, email: &str, password: &str) -> GqlResponse {
        self.gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) {
                accessToken refreshToken expiresAt user { id email } } }",
            json!({ "e": email, "p": password }),
        )
        .await
    }

    /// Signs in again: a second session of the same account.
    pub async fn sign_in(&self, email: &str) -> Session {
        Session::from_payload(
            self.login(email, DEFAULT_PASSWORD).await.data("login"),
            email,
        )
    }

    pub async fn change_password(&self, user: &Session, current: &str, new: &str) -> GqlResponse {
        self.gql(
            user.token(),
            "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
            json!({ "c": current, "n": new }),
        )
        .await
    }

    /// `POST /v1/photos` with one file.
    pub async fn upload(
        &self,
        token: Option<&str>,
        bytes: Vec<u8>,
        file_name: &str,
        mime: &str,
    ) -> (u16, Value) {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file_name.to_string())
            .mime_str(mime)
            .expect("mime");
        let form = reqwest::multipart::Form::new().part("file", part);
        let mut req = self.client.post(self.url("/v1/photos")).multipart(form);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.expect("upload sent");
        let status = res.status().as_u16();
        let body = res.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Uploads a small JPEG and returns the photo id.
    /// Uploads a photo of its own (every call a different picture, as people's photos are).
    pub async fn upload_jpeg(&self, user: &Session) -> Uuid {
        let seed = u64::from_le_bytes(Uuid::new_v4().as_bytes()[..8].try_into().expect("8 bytes"));
        let (status, body) = self
            .upload(
                user.token(),
                images::photo_jpeg(seed, 64, 48),
                "dog.jpg",
                "image/jpeg",
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().expect("id").parse().expect("uuid")
    }

    pub async fn create_profile(&self, user: &Session, name: &str) -> GqlResponse {
        self.gql(
            user.token(),
            "mutation($i: ProfileInput!) { createProfile(input: $i) { id name isComplete } }",
            json!({ "i": { "name": name, "age": 3, "bio": "Loves the park", "breed": "Beagle",
                           "size": "MEDIUM", "activityLevel": "HIGH" } }),
        )
        .await
    }

    /// A new user with a profile named `name` (no photos yet).
    pub async fn new_user_with_profile(&self, name: &str) -> Session {
        let user = self.new_user().await;
        self.create_profile(&user, name).await.data("createProfile");
        user
    }

    /// A user with a complete profile (two photos). Returns the photo ids.
    pub async fn complete_profile(&self, user: &Session, name: &str) -> Vec<Uuid> {
        self.create_profile(user, name).await.data("createProfile");
        vec![self.upload_jpeg(user).await, self.upload_jpeg(user).await]
    }

    /// The photo ids of `user`'s profile, in order, as `viewer` sees them (once introduced).
    pub async fn photo_ids(&self, viewer: &Session, user: &Session) -> Vec<Uuid> {
        if viewer.user_id != user.user_id {
            self.introduce(viewer, user).await;
        }
        let res = self
            .gql(
                viewer.token(),
                "query($u: UUID!) { profile(userId: $u) { photos { id order } } }",
                json!({ "u": user.user_id }),
            )
            .await;
        res.data("profile")["photos"]
            .as_array()
            .expect("photos")
            .iter()
            .map(|p| p["id"].as_str().expect("id").parse().expect("uuid"))
            .collect()
    }

    pub async fn refresh(&self, refresh_token: &str) -> GqlResponse {
        self.gql(
            None,
            "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken user { id } } }",
            json!({ "t": refresh_token }),
        )
        .await
    }

    /// `/readyz`: its status code and body.
    pub async fn readyz(&self) -> (u16, Value) {
        let res = self
            .client
            .get(self.url("/readyz"))
            .send()
            .await
            .expect("readyz");
        (res.status().as_u16(), res.json().await.expect("JSON"))
    }

    pub async fn me(&self, token: Option<&str>) -> GqlResponse {
        self.gql(token, "{ me { id email } }", json!({})).await
    }

    /// The Prometheus text `/metrics` serves now.
    /// Signing in as `user` works with `password` only (no longer with the default one).
    pub async fn only_password_is(&self, user: &Session, password: &str) {
        assert_eq!(
            self.login(&user.email, DEFAULT_PASSWORD).await.error_code(),
            "UNAUTHENTICATED"
        );
        self.login(&user.email, password).await.data("login");
    }

    /// GETs `url`, which must answer 200.
    pub async fn get_ok(&self, url: impl reqwest::IntoUrl) -> reqwest::Response {
        let res = self.client.get(url).send().await.expect("get");
        assert_eq!(res.status(), 200, "{}", res.url());
        res
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Runs a statement (fixed text from the test, never input) on the test's database.
    pub async fn try_execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        Ok(match &self.db {
            Db::Postgres(pool) => sqlx::query(sql).execute(pool).await?.rows_affected(),
            Db::Sqlite(pool) => sqlx::query(sql).execute(pool).await?.rows_affected(),
        })
    }

    /// Stores that `person` was served to `viewer` in their recommendations, as a page of them
    /// would: what lets the viewer read the person's profile.
    pub async fn introduce(&self, viewer: &Session, person: &Session) {
        let now = chrono::Utc::now();
        let sql =
            "INSERT INTO introductions (viewer_id, person_id, introduced_at) VALUES ($1, $2, $3)
                   ON CONFLICT DO NOTHING";
        match &self.db {
            Db::Postgres(pool) => sqlx::query(sql)
                .bind(viewer.user_id)
                .bind(person.user_id)
                .bind(now)
                .execute(pool)
                .await
                .map(drop),
            Db::Sqlite(pool) => sqlx::query(sql)
                .bind(viewer.user_id)
                .bind(person.user_id)
                .bind(now.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
                .execute(pool)
                .await
                .map(drop),
        }
        .expect("introduction stored");
    }

    /// [`Self::try_execute`], which must succeed.
    pub async fn execute(&self, sql: &str) {
        self.try_execute(sql).await.expect("statement");
    }

    /// Rows in `table` (a fixed name from the test, never input).
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match &self.db {
            Db::Postgres(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(pool)
                .await
                .expect("count"),
            Db::Sqlite(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(pool)
                .await
                .expect("count"),
        }
    }
}

pub const DEFAULT_PASSWORD: &str = "correct horse battery";

/// A signed-in account.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: Uuid,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl Session {
    pub fn from_payload(payload: &Value, email: &str) -> Session {
        Session {
            user_id: payload["user"]["id"]
                .as_str()
                .expect("user id")
                .parse()
                .expect("uuid"),
            email: email.to_string(),
            access_token: payload["accessToken"].as_str().expect("access").into(),
            refresh_token: payload["refreshToken"].as_str().expect("refresh").into(),
        }
    }

    pub fn token(&self) -> Option<&str> {
        Some(&self.access_token)
    }
}

/// A GraphQL answer with its HTTP status and `Retry-After`.
#[derive(Debug)]
pub struct GqlResponse {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: Value,
}

impl GqlResponse {
    /// `data.<field>`, panicking with the errors when there is none.
    #[track_caller]
    pub fn data(&self, field: &str) -> &Value {
        let v = &self.body["data"][field];
        assert!(
            !v.is_null() && self.body["errors"].is_null(),
            "expected data.{field}, got {}",
            self.body
        );
        v
    }

    /// The first error's `extensions.code`, panicking when there is no error.
    #[track_caller]
    pub fn error_code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error, got {}", self.body))
    }

    pub fn error_message(&self) -> &str {
        self.body["errors"][0]["message"].as_str().unwrap_or("")
    }

    pub fn errors(&self) -> &[Value] {
        self.body["errors"].as_array().map_or(&[], Vec::as_slice)
    }
}

async fn start(
    backend: Backend,
    config: Config,
    test_db: Arc<TestDb>,
    media: Arc<tempfile::TempDir>,
) -> TestApp {
    let app = pupmatch::Application::build(config.clone())
        .await
        .expect("the application starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app.metrics_addr().map(|a| format!("http://{a}"));
    let state = app.state();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_with_shutdown(async move {
        let _ = rx.await;
    }));
    let db = Db::connect(test_db.url(), 2, None)
        .await
        .expect("test db handle");
    TestApp {
        address,
        metrics_address,
        backend,
        config,
        client: reqwest::Client::new(),
        db,
        state,
        test_db,
        media,
        _shutdown: tx,
    }
}

fn init_test_logging() {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("TEST_LOG").unwrap_or_default())
            .with_test_writer()
            .try_init();
    }
}

/// A runtime for property tests, which drive the async app from proptest's synchronous cases.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}
