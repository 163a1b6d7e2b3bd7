//! Roles: who is a moderator or an admin, granted by an admin in the console or API, or by the operator from the command line.

use super::*;

impl ModerationService {
    /// Gives the account with `email` a role (`Member` takes any role away). Admins only, or
    /// the command line.
    pub async fn set_role(
        &self,
        actor: &Actor,
        email: &str,
        role: Role,
        reason: &str,
    ) -> ApiResult<Uuid> {
        set_role(&self.store, actor, email, role, reason).await
    }

    /// Accounts with a role, admins first. Admins only.
    pub async fn staff_list(&self, viewer: &Actor) -> ApiResult<Vec<model::StaffRow>> {
        if viewer.role != Role::Admin {
            return Err(ApiError::Forbidden("only admins see the staff list".into()));
        }
        Ok(self.store.staff().await?)
    }
}

/// Grants or takes away a role, logged. Shared by the service and the command line (which
/// runs without the rest of the application).
pub async fn set_role(
    store: &ModerationStore,
    actor: &Actor,
    email: &str,
    role: Role,
    reason: &str,
) -> ApiResult<Uuid> {
    if actor.role != Role::Admin {
        return Err(ApiError::Forbidden("only admins grant roles".into()));
    }
    let reason = clean_reason(reason)?;
    let email = email.trim().to_lowercase();
    let (user_id, current) = store
        .account_by_email(&email)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no account with the email {email}")))?;
    if actor.id.is_some() && Some(user_id) == actor.id {
        return Err(ApiError::bad_input(
            "email",
            "an admin cannot change their own role",
        ));
    }
    if !actor.may_act_on(user_id, current) {
        return Err(ApiError::Forbidden(OUT_OF_REACH.into()));
    }
    let now = time::now();
    let (kind, detail) = if role == Role::Member {
        (ActionKind::RevokeRole, None)
    } else {
        (ActionKind::GrantRole, Some(role.as_db().to_string()))
    };
    let action = NewAction {
        id: Uuid::now_v7(),
        created_at: now,
        actor_id: actor.id,
        actor_email: actor.email.clone(),
        kind,
        subject_id: user_id,
        subject_name: Some(email),
        reason,
        detail,
    };
    store.set_role(user_id, role, &action).await?;
    record_metrics(kind, None, now);
    Ok(user_id)
}

/// Lifts the suspension, ban or hold of the account with `email`, logged like every action:
/// the operator's way back in when the console is out of reach (every admin locked out).
pub async fn lift_from_command_line(
    store: &ModerationStore,
    email: &str,
    reason: &str,
) -> ApiResult<Uuid> {
    let reason = clean_reason(reason)?;
    let email = email.trim().to_lowercase();
    let no_account = || ApiError::NotFound(format!("no account with the email {email}"));
    let (user_id, _) = store
        .account_by_email(&email)
        .await?
        .ok_or_else(no_account)?;
    let person = store.person(user_id).await?.ok_or_else(no_account)?;
    let now = time::now();
    let action = new_action(
        &Actor::command_line(),
        ActionKind::Lift,
        &person,
        reason,
        None,
        now,
    );
    store.apply(&action, &Effect::Lift, now).await?;
    record_metrics(ActionKind::Lift, None, now);
    Ok(user_id)
}
