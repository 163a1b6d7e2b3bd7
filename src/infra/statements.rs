//! Every SQL statement, timed and named. sqlx reports each statement it ran as a `tracing`
//! event (target `sqlx::query`, with its text — placeholders, never bound values — and how long
//! it took); [`Statements`] turns each into `db_query_duration_seconds{statement}` and, when
//! traces are exported and the statement ran inside a traced span, a database span. The pool
//! reports each acquire the same way (`sqlx::pool::acquire`): `db_pool_wait_seconds`.
//!
//! A statement's name is stable and bounded: its verb, its first table and a short hash of its
//! text (`SELECT profiles 3fa9c2`), for the first [`NAMED`] distinct texts; any later text is
//! named by verb and table alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
use opentelemetry_sdk::trace::SdkTracer;
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Distinct statement texts that get a name of their own.
const NAMED: usize = 500;

/// The database the process talks to (`postgresql` or `sqlite`), for spans' `db.system`.
static DB_SYSTEM: OnceLock<&'static str> = OnceLock::new();

/// Notes which database this process uses (the first one connected, in a process that runs
/// several applications: tests).
pub fn set_db_system(system: &'static str) {
    let _ = DB_SYSTEM.set(system);
}

/// The layer that times and names statements (and makes their spans with `tracer`).
pub struct Statements {
    tracer: Option<SdkTracer>,
    names: Mutex<HashMap<u64, Arc<str>>>,
    dispatch: OnceLock<tracing::dispatcher::WeakDispatch>,
}

impl Statements {
    pub fn new(tracer: Option<SdkTracer>) -> Self {
        Statements {
            tracer,
            names: Mutex::new(HashMap::new()),
            dispatch: OnceLock::new(),
        }
    }

    fn name_of(&self, sql: &str) -> Arc<str> {
        let hash = fnv1a(sql);
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(name) = names.get(&hash) {
            return name.clone();
        }
        let (verb, table) = verb_and_table(sql);
        if names.len() >= NAMED {
            return format!("{verb} {table}").into();
        }
        let name: Arc<str> = format!("{verb} {table} {:06x}", hash & 0xff_ffff).into();
        names.insert(hash, name.clone());
        name
    }
}

/// FNV-1a: a stable hash (the same in every process and build) of a statement's text.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The statement's verb (`SELECT`, `INSERT`, …, `WITH`) and the first table it names (after
/// `FROM`, `INTO`, `UPDATE` or `JOIN`), or `-`.
pub fn verb_and_table(sql: &str) -> (String, String) {
    let mut words = sql
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',' || c == ';')
        .filter(|w| !w.is_empty());
    let verb = words
        .next()
        .map(|w| w.to_ascii_uppercase())
        .unwrap_or_else(|| "-".into());
    let mut words = sql.split_whitespace().peekable();
    let mut table = String::from("-");
    while let Some(word) = words.next() {
        let upper = word.to_ascii_uppercase();
        if matches!(upper.as_str(), "FROM" | "INTO" | "UPDATE" | "JOIN")
            && let Some(next) = words.peek()
            // A subquery: its own FROM names the table.
            && !next.starts_with('(')
        {
            let next = next.split('(').next().unwrap_or_default();
            let name: String = next
                .trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '.')
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                table = name;
                break;
            }
        }
    }
    if table == "-" {
        // A call of one of our stored functions (`SELECT pupmatch_notify($1, …)`) is named by
        // the first function it calls.
        if let Some(at) = sql.find("pupmatch_") {
            let name: String = sql[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if sql[at + name.len()..].starts_with('(') {
                table = name;
            }
        }
    }
    (verb, table)
}

/// The fields of sqlx's statement event that matter here.
#[derive(Default)]
struct Reported {
    summary: String,
    text: String,
    elapsed: f64,
    acquired_after: f64,
}

impl Visit for Reported {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_string(),
            "db.statement" => self.text = value.trim().to_string(),
            _ => {}
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        match field.name() {
            "elapsed_secs" => self.elapsed = value,
            "acquired_after_secs" => self.acquired_after = value,
            _ => {}
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

impl<S> Layer<S> for Statements
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        match event.metadata().target() {
            "sqlx::query" => {}
            "sqlx::pool::acquire" => {
                let mut reported = Reported::default();
                event.record(&mut reported);
                metrics::histogram!("db_pool_wait_seconds").record(reported.acquired_after);
                return;
            }
            _ => return,
        }
        let mut reported = Reported::default();
        event.record(&mut reported);
        // A short statement is its own summary (sqlx then leaves the text empty).
        let sql = if reported.text.is_empty() {
            reported.summary.as_str()
        } else {
            reported.text.as_str()
        };
        let name = self.name_of(sql);
        metrics::histogram!("db_query_duration_seconds", "statement" => name.to_string())
            .record(reported.elapsed);

        let Some(tracer) = &self.tracer else { return };
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let Some(dispatch) = self.dispatch.get().and_then(|d| d.upgrade()) else {
            return;
        };
        let Some(parent) = tracing_opentelemetry::get_otel_context(&span.id(), &dispatch) else {
            return;
        };
        if !parent.span().span_context().is_sampled() {
            return;
        }
        let end = SystemTime::now();
        let start = end
            .checked_sub(Duration::from_secs_f64(reported.elapsed.max(0.0)))
            .unwrap_or(end);
        let (verb, table) = verb_and_table(sql);
        let mut otel = tracer
            .span_builder(name.to_string())
            .with_kind(SpanKind::Client)
            .with_start_time(start)
            .with_attributes(vec![
                KeyValue::new("db.system", *DB_SYSTEM.get().unwrap_or(&"sql")),
                KeyValue::new("db.operation.name", verb),
                KeyValue::new("db.collection.name", table),
                KeyValue::new("db.query.summary", name.to_string()),
                KeyValue::new("db.query.text", sql.to_string()),
            ])
            .start_with_context(tracer, &parent);
        opentelemetry::trace::Span::end_with_timestamp(&mut otel, end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_named_by_verb_table_and_text() {
        assert_eq!(
            verb_and_table("SELECT p.id FROM profiles p JOIN photos ph ON …"),
            ("SELECT".into(), "profiles".into())
        );
        assert_eq!(
            verb_and_table("INSERT INTO messages (id, body) VALUES ($1, $2)"),
            ("INSERT".into(), "messages".into())
        );
        assert_eq!(
            verb_and_table("update public.users SET x = 1"),
            ("UPDATE".into(), "users".into())
        );
        assert_eq!(
            verb_and_table("WITH x AS (SELECT 1) SELECT * FROM likes"),
            ("WITH".into(), "likes".into())
        );
        assert_eq!(verb_and_table("COMMIT"), ("COMMIT".into(), "-".into()));
        assert_eq!(
            verb_and_table("SELECT n FROM (SELECT count(*) AS n FROM likes) x"),
            ("SELECT".into(), "likes".into()),
            "a subquery's table"
        );
        assert_eq!(
            verb_and_table("SELECT pupmatch_has_written($1, $2)"),
            ("SELECT".into(), "pupmatch_has_written".into()),
            "a stored function's call is named by the function"
        );
        assert_eq!(
            verb_and_table("SELECT * FROM pupmatch_send_message($1, $2)"),
            ("SELECT".into(), "pupmatch_send_message".into())
        );
        assert_eq!(
            verb_and_table("SELECT CASE WHEN $9 IS NULL THEN pupmatch_notify($1) END"),
            ("SELECT".into(), "pupmatch_notify".into())
        );
        assert_eq!(
            verb_and_table("SELECT count(*) FROM users"),
            ("SELECT".into(), "users".into())
        );
        let layer = Statements::new(None);
        let a = layer.name_of("SELECT id FROM users WHERE email = $1");
        assert_eq!(a, layer.name_of("SELECT id FROM users WHERE email = $1"));
        assert!(a.starts_with("SELECT users "), "{a}");
        assert_ne!(a, layer.name_of("SELECT id FROM users WHERE id = $1"));
    }

    #[test]
    fn the_names_are_bounded() {
        let layer = Statements::new(None);
        for i in 0..NAMED + 50 {
            layer.name_of(&format!("INSERT INTO likes VALUES ({i})"));
        }
        assert_eq!(
            &*layer.name_of("INSERT INTO likes VALUES (-1)"),
            "INSERT likes",
            "past the bound, verb and table only"
        );
    }
}
