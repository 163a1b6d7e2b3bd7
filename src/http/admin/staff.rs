//! Admins only: who has a role, and granting or taking one away.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::layout::{Page, column_heads, forbidden_page, redirect};
use super::session::{Console, ConsoleForm};
use crate::app::AppState;
use crate::error::ApiError;
use crate::moderation::model::Role;

/// `GET /admin/staff`.
pub async fn staff(State(state): State<AppState>, console: Console) -> Response {
    let rows = match state.moderation.staff_list(&console.actor).await {
        Ok(rows) => rows,
        Err(ApiError::Forbidden(_)) => return forbidden_page("Only admins manage roles."),
        Err(err) => return err.into_response(),
    };
    let body = html! {
        table {
            caption { "Accounts with a role" }
            (column_heads(&["Email", "Role"]))
            tbody {
                @for s in &rows {
                    tr { td { (s.email) } td { (s.role.as_db().to_lowercase()) } }
                }
            }
        }
        form method="post" action="/admin/staff" {
            fieldset {
                legend { "Grant or take away a role" }
                (console.csrf_field())
                p {
                    label for="staff-email" { "Email" }
                    " "
                    input id="staff-email" name="email" type="email" required;
                }
                p {
                    label for="staff-role" { "Role" }
                    " "
                    select id="staff-role" name="role" {
                        option value=(Role::Moderator.as_db()) { "moderator" }
                        option value=(Role::Admin.as_db()) { "admin" }
                        option value=(Role::Member.as_db()) { "none (take the role away)" }
                    }
                }
                p {
                    label for="staff-reason" { "Reason" }
                    " "
                    input id="staff-reason" name="reason" required maxlength="1000";
                }
                p { button type="submit" { "Save" } }
            }
        }
    };
    Page::ok("Staff", &console, body).into_response()
}

#[derive(Deserialize)]
pub struct RoleForm {
    email: String,
    role: String,
    reason: String,
}

/// `POST /admin/staff`: grants or takes away a role.
pub async fn set_role(
    State(state): State<AppState>,
    ConsoleForm(console, form): ConsoleForm<RoleForm>,
) -> Response {
    let Some(role) = Role::parse(&form.role) else {
        return ApiError::bad_input("role", "unknown role").into_response();
    };
    match state
        .moderation
        .set_role(&console.actor, &form.email, role, &form.reason)
        .await
    {
        Ok(_) => redirect("/admin/staff"),
        Err(ApiError::Forbidden(m)) => forbidden_page(&m),
        Err(err) => err.into_response(),
    }
}
