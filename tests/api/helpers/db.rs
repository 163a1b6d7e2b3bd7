//! Reading and writing the test database directly.

use chrono::{DateTime, Utc};
use pupmatch::infra::db::Db;
use uuid::Uuid;

use crate::helpers::{Backend, TestApp};

pub fn uuid_lit(app: &TestApp, id: Uuid) -> String {
    match app.backend {
        Backend::Postgres => format!("'{id}'"),
        Backend::Sqlite => format!("X'{}'", id.simple()),
    }
}

/// Runs one statement with one timestamp parameter (`$1`) on either backend.
pub async fn exec_at(app: &TestApp, sql: &str, at: DateTime<Utc>) -> u64 {
    match &app.db {
        Db::Postgres(p) => sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .bind(at)
            .execute(p)
            .await
            .expect("statement")
            .rows_affected(),
        Db::Sqlite(p) => sqlx::query(sqlx::AssertSqlSafe(sql.replace("$1", "?1")))
            .bind(pupmatch::infra::time::sqlite_ts(at))
            .execute(p)
            .await
            .expect("statement")
            .rows_affected(),
    }
}

/// `id` as a SQL literal of the backend's uuid type.
pub fn hex_id(app: &TestApp, id: uuid::Uuid) -> String {
    match app.backend {
        Backend::Postgres => format!("'{id}'::uuid"),
        Backend::Sqlite => format!("X'{}'", id.simple()),
    }
}
