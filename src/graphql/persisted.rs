//! Automatic persisted queries (Apollo's protocol): a client sends a document's SHA-256 instead
//! of the document; if the server does not know it yet, it answers `PERSISTED_QUERY_NOT_FOUND`
//! and the client sends the document with its hash once, which the server keeps.
//!
//! Kept in a bounded in-process cache and, in scale-out mode, in Redis (for a day from its
//! registration), so a hash registered through one instance works through every other. A
//! document is kept only once it has run (so it parsed and validated against this schema,
//! within its depth and complexity limits) and only if it is at most [`MAX_DOCUMENT_BYTES`]
//! long; each is checked against its hash first, so nobody can make a hash stand for another
//! document.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::infra::redis::Redis;

/// Total length of the documents kept in-process.
pub const LOCAL_BYTES: u64 = 4 << 20;
/// How long Redis keeps a document (a client whose hash was forgotten registers it again).
const SHARED_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest document kept: an app's real documents are a few KiB; anything longer runs,
/// but is sent whole every time.
pub const MAX_DOCUMENT_BYTES: usize = 32 * 1024;

/// What a request's `extensions.persistedQuery` asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct PersistedQuery {
    /// Lower-case hex SHA-256 of the document.
    pub sha256: String,
}

impl PersistedQuery {
    /// The persisted-query extension of a request's `extensions`, if it has one; refused when
    /// it is not version 1 with a 64-digit hex `sha256Hash`.
    pub fn from_extensions(
        extensions: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<Option<PersistedQuery>, ApiError> {
        let Some(ext) = extensions.and_then(|e| e.get("persistedQuery")) else {
            return Ok(None);
        };
        let refuse = |why: &str| Err(ApiError::bad_input("extensions.persistedQuery", why));
        if ext.get("version").and_then(serde_json::Value::as_i64) != Some(1) {
            return refuse("only version 1 of persisted queries is supported");
        }
        let Some(hash) = ext.get("sha256Hash").and_then(serde_json::Value::as_str) else {
            return refuse("sha256Hash must be the document's SHA-256, as 64 hex digits");
        };
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return refuse("sha256Hash must be the document's SHA-256, as 64 hex digits");
        }
        Ok(Some(PersistedQuery {
            sha256: hash.to_ascii_lowercase(),
        }))
    }
}

/// The hex SHA-256 of `document`, as clients compute it.
pub fn sha256_hex(document: &str) -> String {
    hex::encode(Sha256::digest(document.as_bytes()))
}

/// The documents registered so far, by hash.
pub struct PersistedQueries {
    local: moka::future::Cache<String, Arc<str>>,
    shared: Option<Redis>,
}

impl PersistedQueries {
    pub fn new(shared: Option<Redis>) -> Self {
        PersistedQueries {
            local: moka::future::Cache::builder()
                .max_capacity(LOCAL_BYTES)
                .weigher(|hash: &String, doc: &Arc<str>| {
                    u32::try_from(hash.len() + doc.len()).unwrap_or(u32::MAX)
                })
                .build(),
            shared,
        }
    }

    fn shared_key(redis: &Redis, sha256: &str) -> String {
        redis.key(&format!("apq:{sha256}"))
    }

    /// The document registered under `sha256`, if any instance kept it.
    pub async fn get(&self, sha256: &str) -> Option<Arc<str>> {
        if let Some(doc) = self.local.get(sha256).await {
            return Some(doc);
        }
        let redis = self.shared.as_ref()?;
        let mut cmd = redis::cmd("GET");
        cmd.arg(Self::shared_key(redis, sha256));
        let doc = redis.query::<Option<String>>(cmd).await.ok().flatten()?;
        // A document stored under a hash it does not have is not served (only this server
        // writes these keys, but a shared Redis is not proof of that).
        if sha256_hex(&doc) != sha256 {
            return None;
        }
        let doc: Arc<str> = doc.into();
        self.local.insert(sha256.to_string(), doc.clone()).await;
        Some(doc)
    }

    /// Keeps `document` under `sha256`, which the caller checked is its hash (unless it is
    /// longer than [`MAX_DOCUMENT_BYTES`]).
    pub async fn register(&self, sha256: &str, document: &str) {
        if document.len() > MAX_DOCUMENT_BYTES || self.local.contains_key(sha256) {
            return;
        }
        self.local.insert(sha256.to_string(), document.into()).await;
        if let Some(redis) = &self.shared {
            let mut cmd = redis::cmd("SET");
            cmd.arg(Self::shared_key(redis, sha256))
                .arg(document)
                .arg("EX")
                .arg(SHARED_TTL.as_secs());
            if let Err(err) = redis.query::<()>(cmd).await {
                tracing::debug!(error = %err, "persisted query kept in-process only");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ext(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().expect("object").clone()
    }

    #[test]
    fn the_hash_is_the_hex_sha256_clients_compute() {
        // `printf '{ __typename }' | sha256sum`
        assert_eq!(
            sha256_hex("{ __typename }"),
            "7f56e67dd21ab3f30d1ff8b7bed08893f0a0db86449836189b361dd1e56ddb4b"
        );
    }

    #[test]
    fn only_a_well_formed_version_1_extension_is_taken() {
        let hash = sha256_hex("{ me { id } }");
        let asked = PersistedQuery::from_extensions(Some(&ext(
            json!({"persistedQuery": {"version": 1, "sha256Hash": hash.to_uppercase()}}),
        )));
        assert_eq!(asked.expect("taken"), Some(PersistedQuery { sha256: hash }));
        assert_eq!(PersistedQuery::from_extensions(None).expect("none"), None);
        assert_eq!(
            PersistedQuery::from_extensions(Some(&ext(json!({"other": 1})))).expect("none"),
            None
        );
        for bad in [
            json!({"persistedQuery": {"version": 2, "sha256Hash": sha256_hex("x")}}),
            json!({"persistedQuery": {"version": 1, "sha256Hash": "abc"}}),
            json!({"persistedQuery": {"version": 1, "sha256Hash": "z".repeat(64)}}),
            json!({"persistedQuery": {"version": 1}}),
            json!({"persistedQuery": "yes"}),
        ] {
            assert!(
                PersistedQuery::from_extensions(Some(&ext(bad.clone()))).is_err(),
                "{bad}"
            );
        }
    }
}
