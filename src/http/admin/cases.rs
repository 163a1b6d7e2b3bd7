//! The queue of open cases, one case with its evidence, and acting on it.

use std::collections::BTreeSet;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::layout::{
    Page, column_heads, done_status, forbidden_page, hidden, not_done, origin_of, redirect, when,
    with_done,
};
use super::session::{Console, ConsoleForm, filled};
use crate::app::AppState;
use crate::error::ApiError;
use crate::moderation::model::ActionKind;
use crate::moderation::{CaseDetail, MAX_SUSPENSION_DAYS, ReportEvidence};

#[derive(Deserialize)]
pub struct QueueQuery {
    done: Option<String>,
}

/// `GET /admin`: open cases, most urgent first.
pub async fn queue(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<QueueQuery>,
) -> Response {
    let cases = match state.moderation.cases(&console.actor).await {
        Ok(cases) => cases,
        Err(err) => return err.into_response(),
    };
    let body = html! {
        (done_status(q.done.as_deref()))
        @if cases.is_empty() {
            p { "No open cases. Good dogs all round." }
        } @else {
            table {
                caption { "Open cases: most reporters who could have met the person first, then most reporters, then oldest" }
                (column_heads(&["Person", "Reporters (counted)", "Reports", "Reasons", "First report", "Last report", "State"]))
                tbody {
                    @for c in &cases {
                        tr {
                            td { a href={ "/admin/cases/" (c.person_id) } { (c.name.as_deref().unwrap_or("(no profile)")) } }
                            td { (c.reporters) " (" (c.counted_reporters) ")" }
                            td { (c.reports) }
                            td { (reason_text(&c.reasons.join(", "))) }
                            td { (when(c.first_reported_at)) }
                            td { (when(c.last_reported_at)) }
                            td { @if c.held { "hidden until decided" } @else { "visible" } }
                        }
                    }
                }
            }
        }
    };
    Page::ok("Queue", &console, body).into_response()
}

/// A report reason (or a list of them) as words.
fn reason_text(reasons: &str) -> String {
    reasons.to_lowercase().replace('_', " ")
}

/// `GET /admin/cases/{id}`: the person now, each report with its snapshot and messages, and
/// the actions.
pub async fn case(
    State(state): State<AppState>,
    console: Console,
    Path(person_id): Path<Uuid>,
) -> Response {
    let detail = match state.moderation.case(&console.actor, person_id).await {
        Ok(Some(detail)) => detail,
        Ok(None) => return ApiError::NotFound("no such person".into()).into_response(),
        Err(err) => return err.into_response(),
    };
    let name = detail
        .person
        .name
        .clone()
        .unwrap_or_else(|| "(no profile)".into());
    let mut images = BTreeSet::new();
    images.extend(detail.photos.iter().filter_map(|(_, url)| origin_of(url)));
    for r in &detail.reports {
        images.extend(r.snapshot_photos.iter().filter_map(|url| origin_of(url)));
    }
    let title = format!("Case: {name}");
    let body = html! {
        (person_now(&console, person_id, &name, &detail))
        (decisions(&console, person_id))
        section aria-labelledby="reports" {
            h2 id="reports" { "Reports (" (detail.reports.len()) ")" }
            @for r in &detail.reports { (report(&name, r)) }
        }
    };
    Page {
        images,
        ..Page::ok(&title, &console, body)
    }
    .into_response()
}

/// The person as they are now: status, account, profile and photos (each removable).
fn person_now(console: &Console, person_id: Uuid, name: &str, detail: &CaseDetail) -> Markup {
    let p = &detail.person;
    let now = chrono::Utc::now();
    let status = match (p.banned_at, p.suspended_until) {
        (Some(at), _) => format!("Banned since {}", when(at)),
        (None, Some(until)) if until > now => format!("Suspended until {}", when(until)),
        _ if p.hidden_until.is_some_and(|t| t > now) => {
            "Hidden from everyone until a decision (many recent reports)".into()
        }
        _ => "Active".into(),
    };
    html! {
        section aria-labelledby="now" {
            h2 id="now" { (name) " now" }
            dl {
                dt { "Status" } dd { (status) }
                dt { "Account" } dd { (p.email) ", since " (when(p.created_at)) }
                dt { "Age" } dd { @if let Some(age) = p.age { (age) } @else { "—" } }
                dt { "Breed" } dd { (p.breed.as_deref().unwrap_or("—")) }
                dt { "Bio" } dd class="text" { (p.bio.as_deref().unwrap_or("")) }
            }
            ul class="photos" {
                @for (i, (photo_id, url)) in detail.photos.iter().enumerate() {
                    @let n = i + 1;
                    li {
                        img src=(url) alt={ "Current photo " (n) " of " (name) } width="160";
                        form method="post" action={ "/admin/cases/" (person_id) "/actions" } {
                            (console.csrf_field())
                            (hidden("action", ActionKind::RemovePhoto.as_db()))
                            (hidden("photo_id", &photo_id.to_string()))
                            label for={ "reason-photo-" (n) } { "Reason" }
                            " "
                            input id={ "reason-photo-" (n) } name="reason" required maxlength="1000";
                            button type="submit" { "Remove photo " (n) }
                        }
                    }
                }
            }
        }
    }
}

/// The forms that decide a case.
fn decisions(console: &Console, person_id: Uuid) -> Markup {
    const DECISIONS: [(ActionKind, &str, bool); 5] = [
        (ActionKind::Dismiss, "Dismiss the reports", false),
        (ActionKind::Warn, "Warn", false),
        (ActionKind::Suspend, "Suspend", true),
        (ActionKind::Ban, "Ban", false),
        (ActionKind::Lift, "Lift suspension or ban", false),
    ];
    html! {
        section aria-labelledby="actions" {
            h2 id="actions" { "Decide" }
            @for (action, label, asks_days) in DECISIONS {
                @let id = action.as_db().to_lowercase();
                form method="post" action={ "/admin/cases/" (person_id) "/actions" } class="action" {
                    (console.csrf_field())
                    (hidden("action", action.as_db()))
                    fieldset {
                        legend { (label) }
                        @if asks_days {
                            label for={ "days-" (id) } { "Days" }
                            " "
                            input id={ "days-" (id) } name="days" type="number" min="1"
                                max=(MAX_SUSPENSION_DAYS) value="7" required;
                        }
                        label for={ "reason-" (id) } { "Reason" }
                        " "
                        input id={ "reason-" (id) } name="reason" required maxlength="1000";
                        button type="submit" id={ "do-" (id) } { (label) "…" }
                    }
                }
            }
        }
    }
}

/// One report: who, why, the profile when reported, and what the person sent the reporter.
fn report(name: &str, r: &ReportEvidence) -> Markup {
    let rep = &r.report;
    let status = rep.status.as_db().to_lowercase();
    let reporter = rep
        .reporter_name
        .as_deref()
        .unwrap_or(if rep.reporter_id.is_some() {
            "someone without a profile"
        } else {
            "a deleted account"
        });
    html! {
        article class={ "report " (status) } {
            h3 { (reason_text(&rep.reason)) " — " (when(rep.created_at)) " — " (status) }
            p { "By " (reporter) "." }
            @if !rep.counts_towards_hold {
                p class="uncounted" {
                    "Does not count towards the automatic hold: "
                    (rep.not_counted_because.as_deref().unwrap_or("the reporter did not qualify"))
                    "."
                }
            }
            p class="text" { (rep.details.as_deref().unwrap_or("(no details)")) }
            h4 { "Profile when reported" }
            dl {
                dt { "Name" } dd { (rep.reported_name.as_deref().unwrap_or("(no profile)")) }
                dt { "Bio" } dd class="text" { (rep.reported_bio.as_deref().unwrap_or("")) }
            }
            ul class="photos" {
                @for (i, url) in r.snapshot_photos.iter().enumerate() {
                    li { img src=(url) alt={ "Photo " (i + 1) " when reported" } width="120"; }
                }
            }
            @if r.messages.is_empty() {
                p { "No messages from them to this reporter." }
            } @else {
                h4 { "What " (name) " sent this reporter" }
                ol class="messages" {
                    @for m in &r.messages {
                        li { time { (when(m.sent_at)) } " " span class="text" { (m.content) } }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct ActionForm {
    action: String,
    reason: String,
    days: Option<String>,
    /// Empty when the action is not about a photo.
    photo_id: Option<String>,
    confirmed: Option<String>,
}

/// `POST /admin/cases/{id}/actions`: first a confirmation page, then (confirmed) the action.
pub async fn act(
    State(state): State<AppState>,
    Path(person_id): Path<Uuid>,
    ConsoleForm(console, form): ConsoleForm<ActionForm>,
) -> Response {
    let Some(kind) = ActionKind::parse(&form.action)
        .filter(|k| !matches!(k, ActionKind::GrantRole | ActionKind::RevokeRole))
    else {
        return ApiError::bad_input("action", "unknown action").into_response();
    };
    let days = match filled(&form.days) {
        None => None,
        Some(d) => match d.parse::<i64>() {
            Ok(d) => Some(d),
            Err(_) => return ApiError::bad_input("days", "a whole number of days").into_response(),
        },
    };
    let photo_id = match filled(&form.photo_id) {
        None => None,
        Some(p) => match Uuid::parse_str(p) {
            Ok(id) => Some(id),
            Err(_) => return ApiError::bad_input("photo_id", "not a photo id").into_response(),
        },
    };
    // Only someone whose case this staff member sees: staff out of reach stay unnamed.
    let name = match state.moderation.case(&console.actor, person_id).await {
        Ok(Some(case)) => case.person.name.unwrap_or_else(|| "(no profile)".into()),
        Ok(None) => return ApiError::NotFound("no such person".into()).into_response(),
        Err(err) => return err.into_response(),
    };
    if form.confirmed.as_deref() != Some("yes") {
        let what = match (kind, days) {
            (ActionKind::Suspend, Some(d)) => format!("Suspend {name} for {d} days"),
            (ActionKind::RemovePhoto, _) => format!("Remove this photo from {name}'s profile"),
            (ActionKind::Dismiss, _) => format!("Dismiss the open reports about {name}"),
            (ActionKind::Warn, _) => format!("Warn {name}"),
            (ActionKind::Ban, _) => format!("Ban {name}"),
            (ActionKind::Lift, _) => format!("Lift {name}'s suspension or ban"),
            _ => format!("{} {name}", kind.label()),
        };
        let consequence = match kind {
            ActionKind::Suspend | ActionKind::Ban => {
                "Every session and open connection of this person ends now, on every server; \
                 they are hidden from everyone and cannot sign in."
            }
            ActionKind::Warn => "They get an in-app warning with your reason.",
            _ => "",
        };
        let body = html! {
            p { (what) "?" }
            p { (consequence) }
            p { "Reason: " q { (form.reason) } }
            form method="post" action={ "/admin/cases/" (person_id) "/actions" } {
                (console.csrf_field())
                (hidden("action", kind.as_db()))
                (hidden("reason", &form.reason))
                (hidden("days", &days.map(|d| d.to_string()).unwrap_or_default()))
                (hidden("photo_id", &photo_id.map(|p| p.to_string()).unwrap_or_default()))
                (hidden("confirmed", "yes"))
                button type="submit" id="confirm" { "Confirm: " (what) }
                " "
                a href={ "/admin/cases/" (person_id) } { "Cancel" }
            }
        };
        return Page::ok("Confirm", &console, body).into_response();
    }
    let result = match kind {
        ActionKind::RemovePhoto => match photo_id {
            Some(photo) => {
                state
                    .moderation
                    .remove_photo(&console.actor, person_id, photo, &form.reason)
                    .await
            }
            None => Err(ApiError::bad_input("photo_id", "which photo?")),
        },
        _ => {
            state
                .moderation
                .act(&console.actor, kind, person_id, &form.reason, days)
                .await
        }
    };
    let case_page = format!("/admin/cases/{person_id}");
    match result {
        Ok(()) if kind == ActionKind::RemovePhoto => redirect(&case_page),
        Ok(()) => redirect(&with_done("/admin", &format!("{} {name}", kind.label()))),
        Err(ApiError::BadUserInput { message, .. }) => {
            not_done(&console, &message, &case_page, "Back to the case")
        }
        Err(ApiError::Forbidden(message)) => forbidden_page(&message),
        Err(err) => err.into_response(),
    }
}
