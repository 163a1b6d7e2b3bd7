//! The audit log: a page of the newest entries and a CSV export of all of them.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::{Page, column_heads, no_store, when};
use super::session::Console;
use crate::app::AppState;
use crate::moderation::model::ActionKind;

/// Entries the page shows.
const PAGE_ENTRIES: i64 = 500;
/// Entries read at a time for the export.
const EXPORT_BATCH: i64 = 1000;

/// `GET /admin/audit`: the newest entries, with a link to the whole log as CSV.
pub async fn audit(State(state): State<AppState>, console: Console) -> Response {
    let entries = match state.moderation.audit(PAGE_ENTRIES, None).await {
        Ok(e) => e,
        Err(err) => return err.into_response(),
    };
    let body = html! {
        p { a href="/admin/audit.csv" download { "Download the whole log as CSV" } }
        table {
            caption { "Every moderator action and role change, newest first" }
            (column_heads(&["When", "Who", "What", "Whom", "Why", "Detail"]))
            tbody {
                @for e in &entries {
                    @let name = e.subject_name.as_deref().unwrap_or("—");
                    tr {
                        td { (when(e.created_at)) }
                        td { (e.actor_email) }
                        td { (e.kind.label()) }
                        td {
                            // A place's entry names the place (it may be gone); a person's
                            // links to their case.
                            @if matches!(e.kind, ActionKind::RemovePlace | ActionKind::MergePlace) {
                                (name) " " small { "(place " (e.subject_id) ")" }
                            } @else {
                                a href={ "/admin/cases/" (e.subject_id) } { (name) }
                            }
                        }
                        td class="text" { (e.reason) }
                        td { (e.detail.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    };
    Page::ok("Audit log", &console, body).into_response()
}

/// `GET /admin/audit.csv`: the whole audit log, oldest last.
pub async fn audit_csv(State(state): State<AppState>, console: Console) -> Response {
    let mut csv = String::from("at,actor_id,actor,action,subject_id,subject,reason,detail\r\n");
    let mut before = None;
    loop {
        let entries = match state.moderation.audit(EXPORT_BATCH, before).await {
            Ok(e) => e,
            Err(err) => return err.into_response(),
        };
        for e in &entries {
            let fields = [
                e.created_at.to_rfc3339(),
                e.actor_id.map(|i| i.to_string()).unwrap_or_default(),
                e.actor_email.clone(),
                e.kind.as_db().to_string(),
                e.subject_id.to_string(),
                e.subject_name.clone().unwrap_or_default(),
                e.reason.clone(),
                e.detail.clone().unwrap_or_default(),
            ];
            let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            csv.push_str(&row.join(","));
            csv.push_str("\r\n");
        }
        match entries.last() {
            Some(last) if entries.len() as i64 == EXPORT_BATCH => {
                before = Some((last.created_at, last.id))
            }
            _ => break,
        }
    }
    tracing::info!(moderator = ?console.actor.id, "audit log exported");
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"pupmatch-audit-log.csv\"",
            ),
        ],
        csv,
    )
        .into_response();
    no_store(response.headers_mut());
    response
}

/// A CSV field, quoted, with formula-starting text defused for spreadsheets.
fn csv_field(raw: &str) -> String {
    let defused = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{raw}")
    } else {
        raw.to_string()
    };
    format!("\"{}\"", defused.replace('"', "\"\""))
}
