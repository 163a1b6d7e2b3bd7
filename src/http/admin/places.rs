//! Places: the newest, or a search, each with a form to remove it or merge it into another.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::layout::{Page, column_heads, done_status, hidden, not_done, redirect, when, with_done};
use super::session::{Console, ConsoleForm, filled};
use crate::app::AppState;
use crate::error::ApiError;
use crate::moderation::model::ActionKind;

#[derive(Deserialize)]
pub struct PlacesQuery {
    q: Option<String>,
    done: Option<String>,
}

/// `GET /admin/places`: places, newest first (100), or those whose name contains `q`.
pub async fn places(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<PlacesQuery>,
) -> Response {
    let rows = match state.moderation.places(q.q.as_deref()).await {
        Ok(rows) => rows,
        Err(err) => return err.into_response(),
    };
    let body = html! {
        (done_status(q.done.as_deref()))
        form method="get" action="/admin/places" role="search" {
            label for="q" { "Name contains" }
            input id="q" name="q" value=(q.q.as_deref().unwrap_or(""));
            " "
            button type="submit" { "Search" }
        }
        @if rows.is_empty() {
            p { "No places." }
        } @else {
            table {
                caption { "Places, newest first" }
                (column_heads(&["Place", "Where", "Saved by", "Added", "Remove, or merge into another"]))
                tbody {
                    @for p in &rows {
                        tr {
                            td { strong { (p.name) } br; (p.description) br; small { (p.id) } }
                            td { (format!("{:.5}, {:.5}", p.latitude, p.longitude)) }
                            td { (p.favorite_count) }
                            td { (when(p.created_at)) }
                            td {
                                form method="post" action={ "/admin/places/" (p.id) "/actions" } {
                                    (console.csrf_field())
                                    label { "Reason " input name="reason" required maxlength="1000"; }
                                    label { "Merge into (place id) " input name="into"; }
                                    button type="submit" name="action" value=(ActionKind::RemovePlace.as_db()) { "Remove" }
                                    button type="submit" name="action" value=(ActionKind::MergePlace.as_db()) { "Merge" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Page::ok("Places", &console, body).into_response()
}

#[derive(Deserialize)]
pub struct PlaceForm {
    action: String,
    reason: String,
    into: Option<String>,
    confirmed: Option<String>,
}

/// `POST /admin/places/{id}/actions`: a place's removal or merge, first a confirmation page,
/// then (confirmed) the action.
pub async fn act(
    State(state): State<AppState>,
    Path(place_id): Path<Uuid>,
    ConsoleForm(console, form): ConsoleForm<PlaceForm>,
) -> Response {
    let kind = match ActionKind::parse(&form.action) {
        Some(k @ (ActionKind::RemovePlace | ActionKind::MergePlace)) => k,
        _ => return ApiError::bad_input("action", "unknown action").into_response(),
    };
    let into = match filled(&form.into) {
        None if kind == ActionKind::MergePlace => {
            return ApiError::bad_input("into", "merge into which place?").into_response();
        }
        None => None,
        Some(i) => match Uuid::parse_str(i) {
            Ok(id) => Some(id),
            Err(_) => return ApiError::bad_input("into", "not a place id").into_response(),
        },
    };
    if form.confirmed.as_deref() != Some("yes") {
        let what = match into {
            Some(into) if kind == ActionKind::MergePlace => {
                format!("Merge place {place_id} into place {into}")
            }
            _ => format!("Remove place {place_id}"),
        };
        let body = html! {
            p { (what) "?" }
            p { "Reason: " q { (form.reason) } }
            form method="post" action={ "/admin/places/" (place_id) "/actions" } {
                (console.csrf_field())
                (hidden("action", kind.as_db()))
                (hidden("reason", &form.reason))
                (hidden("into", &into.map(|i| i.to_string()).unwrap_or_default()))
                (hidden("confirmed", "yes"))
                button type="submit" id="confirm" { "Confirm: " (what) }
                " "
                a href="/admin/places" { "Cancel" }
            }
        };
        return Page::ok("Confirm", &console, body).into_response();
    }
    let result = match (kind, into) {
        (ActionKind::MergePlace, Some(into)) => {
            state
                .moderation
                .merge_place(&console.actor, place_id.into(), into.into(), &form.reason)
                .await
        }
        _ => {
            state
                .moderation
                .remove_place(&console.actor, place_id.into(), &form.reason)
                .await
        }
    };
    match result {
        Ok(()) => redirect(&with_done(
            "/admin/places",
            &format!("{} {place_id}", kind.label()),
        )),
        Err(ApiError::BadUserInput { message, .. }) => {
            not_done(&console, &message, "/admin/places", "Back to the places")
        }
        Err(err) => err.into_response(),
    }
}
