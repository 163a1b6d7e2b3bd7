//! The admin GraphQL API (`/admin/graphql`): its own schema, not part of the app's contract.
//! The HTTP handler admits staff only; every resolver still takes the [`Actor`] it was given,
//! and role changes check for an admin.

use std::sync::Arc;

use async_graphql::{Context, EmptySubscription, ID, Object, Result, Schema, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ModerationService;
use super::model::{ActionKind, Actor, AuditEntry, Role};
use crate::error::ApiError;
use crate::ids::PlaygroundId;

pub type AdminSchema = Schema<AdminQuery, AdminMutation, EmptySubscription>;

pub fn build_admin_schema(production: bool) -> AdminSchema {
    let builder = Schema::build(AdminQuery, AdminMutation, EmptySubscription)
        .limit_depth(12)
        .limit_complexity(5000);
    if production {
        builder.disable_introspection().finish()
    } else {
        builder.finish()
    }
}

fn service<'a>(ctx: &Context<'a>) -> Result<&'a Arc<ModerationService>, ApiError> {
    ctx.data::<Arc<ModerationService>>()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!(e.message)))
}

fn actor<'a>(ctx: &Context<'a>) -> Result<&'a Actor, ApiError> {
    ctx.data::<Actor>()
        .map_err(|_| ApiError::Forbidden("moderators and admins only".into()))
}

fn person_id(id: &ID) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::bad_input("personId", "not an id"))
}

fn place_id(id: &ID, field: &'static str) -> Result<PlaygroundId, ApiError> {
    Uuid::parse_str(id)
        .map(PlaygroundId::from)
        .map_err(|_| ApiError::bad_input(field, "not an id"))
}

/// A place on the map, as moderators see it.
#[derive(SimpleObject)]
pub struct Place {
    pub id: ID,
    pub name: String,
    pub description: String,
    pub latitude: f64,
    pub longitude: f64,
    /// The account that added it.
    pub created_by: ID,
    pub created_at: DateTime<Utc>,
    /// How many people saved it.
    pub favorites: i32,
}

/// A staff account.
#[derive(SimpleObject)]
pub struct Staff {
    pub id: ID,
    pub email: String,
    pub role: Role,
}

/// Open reports about one person.
#[derive(SimpleObject)]
pub struct Case {
    pub person_id: ID,
    pub name: Option<String>,
    pub reports: i32,
    pub reporters: i32,
    /// Distinct reporters whose reports count towards the automatic hold (a complete profile,
    /// an account old enough, could have met the person, not often dismissed).
    pub counted_reporters: i32,
    pub reasons: Vec<String>,
    pub first_reported_at: DateTime<Utc>,
    pub last_reported_at: DateTime<Utc>,
    /// Hidden from everyone until a decision (many recent reports).
    pub held: bool,
}

/// The person as they are now.
#[derive(SimpleObject)]
pub struct ReportedPerson {
    pub id: ID,
    pub email: String,
    pub name: Option<String>,
    pub bio: Option<String>,
    pub age: Option<i32>,
    pub breed: Option<String>,
    pub photos: Vec<CurrentPhoto>,
    pub suspended_until: Option<DateTime<Utc>>,
    pub banned_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct CurrentPhoto {
    pub id: ID,
    pub url: String,
}

/// One report with its evidence.
#[derive(SimpleObject)]
pub struct ReportView {
    pub id: ID,
    pub reporter_id: Option<ID>,
    pub reporter_name: Option<String>,
    pub reason: String,
    pub details: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// Whether the report counts towards the automatic hold.
    pub counts_towards_hold: bool,
    /// Why it does not (the reporter's account was too new, had no complete profile, was never
    /// near the person nor in touch, or had many reports dismissed).
    pub not_counted_because: Option<String>,
    /// The profile when the report was made.
    pub snapshot_name: Option<String>,
    pub snapshot_bio: Option<String>,
    pub snapshot_photo_urls: Vec<String>,
    /// Only what the reported person sent this reporter.
    pub messages: Vec<EvidenceMessageView>,
}

#[derive(SimpleObject)]
pub struct EvidenceMessageView {
    pub sent_at: DateTime<Utc>,
    pub content: String,
}

#[derive(SimpleObject)]
pub struct CaseView {
    pub person: ReportedPerson,
    pub reports: Vec<ReportView>,
}

#[derive(SimpleObject)]
pub struct AuditEntryView {
    #[graphql(flatten)]
    pub entry: AuditEntry,
    pub kind: ActionKind,
}

pub struct AdminQuery;

#[Object]
impl AdminQuery {
    /// Who is signed in.
    async fn viewer(&self, ctx: &Context<'_>) -> Result<Staff> {
        let actor = actor(ctx)?;
        Ok(Staff {
            id: ID(actor.id.map(|i| i.to_string()).unwrap_or_default()),
            email: actor.email.clone(),
            role: actor.role,
        })
    }

    /// Open cases, most urgent first (distinct reporters, then age).
    async fn cases(&self, ctx: &Context<'_>) -> Result<Vec<Case>> {
        let cases = service(ctx)?.cases(actor(ctx)?).await?;
        Ok(cases
            .into_iter()
            .map(|c| Case {
                person_id: ID(c.person_id.to_string()),
                name: c.name,
                reports: i32::try_from(c.reports).unwrap_or(i32::MAX),
                reporters: i32::try_from(c.reporters).unwrap_or(i32::MAX),
                counted_reporters: i32::try_from(c.counted_reporters).unwrap_or(i32::MAX),
                reasons: c.reasons,
                first_reported_at: c.first_reported_at,
                last_reported_at: c.last_reported_at,
                held: c.held,
            })
            .collect())
    }

    /// Everything about one reported person.
    async fn case(&self, ctx: &Context<'_>, person_id: ID) -> Result<Option<CaseView>> {
        let id = self::person_id(&person_id)?;
        let Some(detail) = service(ctx)?.case(actor(ctx)?, id).await? else {
            return Ok(None);
        };
        let p = detail.person;
        Ok(Some(CaseView {
            person: ReportedPerson {
                id: ID(p.id.to_string()),
                email: p.email,
                name: p.name,
                bio: p.bio,
                age: p.age,
                breed: p.breed,
                photos: detail
                    .photos
                    .into_iter()
                    .map(|(id, url)| CurrentPhoto {
                        id: ID(id.to_string()),
                        url,
                    })
                    .collect(),
                suspended_until: p.suspended_until,
                banned_at: p.banned_at,
                created_at: p.created_at,
            },
            reports: detail
                .reports
                .into_iter()
                .map(|r| ReportView {
                    id: ID(r.report.id.to_string()),
                    reporter_id: r.report.reporter_id.map(|i| ID(i.to_string())),
                    reporter_name: r.report.reporter_name,
                    reason: r.report.reason,
                    details: r.report.details,
                    status: r.report.status.as_db().to_string(),
                    created_at: r.report.created_at,
                    counts_towards_hold: r.report.counts_towards_hold,
                    not_counted_because: r.report.not_counted_because,
                    snapshot_name: r.report.reported_name,
                    snapshot_bio: r.report.reported_bio,
                    snapshot_photo_urls: r.snapshot_photos,
                    messages: r
                        .messages
                        .into_iter()
                        .map(|m| EvidenceMessageView {
                            sent_at: m.sent_at,
                            content: m.content,
                        })
                        .collect(),
                })
                .collect(),
        }))
    }

    /// The audit log, newest first.
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
    ) -> Result<Vec<AuditEntryView>> {
        actor(ctx)?;
        let entries = service(ctx)?.audit(i64::from(first), None).await?;
        Ok(entries
            .into_iter()
            .map(|entry| AuditEntryView {
                kind: entry.kind,
                entry,
            })
            .collect())
    }

    /// Places, newest first (100); with `search`, those whose name contains it.
    async fn places(&self, ctx: &Context<'_>, search: Option<String>) -> Result<Vec<Place>> {
        actor(ctx)?;
        let rows = service(ctx)?.places(search.as_deref()).await?;
        Ok(rows
            .into_iter()
            .map(|p| Place {
                id: ID(p.id.to_string()),
                name: p.name,
                description: p.description,
                latitude: p.latitude,
                longitude: p.longitude,
                created_by: ID(p.created_by.to_string()),
                created_at: p.created_at,
                favorites: i32::try_from(p.favorite_count).unwrap_or(i32::MAX),
            })
            .collect())
    }

    /// Accounts with a role (admins only).
    async fn staff(&self, ctx: &Context<'_>) -> Result<Vec<Staff>> {
        let rows = service(ctx)?.staff_list(actor(ctx)?).await?;
        Ok(rows
            .into_iter()
            .map(|s| Staff {
                id: ID(s.id.to_string()),
                email: s.email,
                role: s.role,
            })
            .collect())
    }
}

pub struct AdminMutation;

impl AdminMutation {
    async fn act(
        ctx: &Context<'_>,
        kind: ActionKind,
        person_id: &ID,
        reason: &str,
        days: Option<i32>,
    ) -> Result<bool> {
        let actor = actor(ctx)?;
        service(ctx)?
            .act(
                actor,
                kind,
                self::person_id(person_id)?,
                reason,
                days.map(i64::from),
            )
            .await?;
        Ok(true)
    }
}

#[Object]
impl AdminMutation {
    /// Closes the case without action.
    async fn dismiss(&self, ctx: &Context<'_>, person_id: ID, reason: String) -> Result<bool> {
        Self::act(ctx, ActionKind::Dismiss, &person_id, &reason, None).await
    }

    /// Closes the case and sends the person an in-app warning.
    async fn warn(&self, ctx: &Context<'_>, person_id: ID, reason: String) -> Result<bool> {
        Self::act(ctx, ActionKind::Warn, &person_id, &reason, None).await
    }

    /// Takes a photo off the person's profile.
    async fn remove_photo(
        &self,
        ctx: &Context<'_>,
        person_id: ID,
        photo_id: ID,
        reason: String,
    ) -> Result<bool> {
        let actor = actor(ctx)?;
        let photo =
            Uuid::parse_str(&photo_id).map_err(|_| ApiError::bad_input("photoId", "not an id"))?;
        service(ctx)?
            .remove_photo(actor, self::person_id(&person_id)?, photo, &reason)
            .await?;
        Ok(true)
    }

    /// Suspends for `days` (1–365): every session ends, the person is hidden, sign-in refused.
    async fn suspend(
        &self,
        ctx: &Context<'_>,
        person_id: ID,
        days: i32,
        reason: String,
    ) -> Result<bool> {
        Self::act(ctx, ActionKind::Suspend, &person_id, &reason, Some(days)).await
    }

    /// Bans: as a suspension without end, and the email cannot make a new account.
    async fn ban(&self, ctx: &Context<'_>, person_id: ID, reason: String) -> Result<bool> {
        Self::act(ctx, ActionKind::Ban, &person_id, &reason, None).await
    }

    /// Lifts a suspension, ban or hold.
    async fn lift(&self, ctx: &Context<'_>, person_id: ID, reason: String) -> Result<bool> {
        Self::act(ctx, ActionKind::Lift, &person_id, &reason, None).await
    }

    /// Admins only: gives the account a staff role.
    async fn grant_role(
        &self,
        ctx: &Context<'_>,
        email: String,
        role: Role,
        reason: String,
    ) -> Result<bool> {
        if role == Role::Member {
            return Err(ApiError::bad_input("role", "use revokeRole").into());
        }
        let actor = actor(ctx)?;
        service(ctx)?.set_role(actor, &email, role, &reason).await?;
        Ok(true)
    }

    /// Takes a place off the map (spam, or someone's private spot).
    async fn remove_place(&self, ctx: &Context<'_>, place_id: ID, reason: String) -> Result<bool> {
        let actor = actor(ctx)?;
        service(ctx)?
            .remove_place(actor, self::place_id(&place_id, "placeId")?, &reason)
            .await?;
        Ok(true)
    }

    /// Folds a duplicate place into another: its favourites and shares move there.
    async fn merge_place(
        &self,
        ctx: &Context<'_>,
        place_id: ID,
        into_id: ID,
        reason: String,
    ) -> Result<bool> {
        let actor = actor(ctx)?;
        service(ctx)?
            .merge_place(
                actor,
                self::place_id(&place_id, "placeId")?,
                self::place_id(&into_id, "intoId")?,
                &reason,
            )
            .await?;
        Ok(true)
    }

    /// Admins only: takes the account's role away.
    async fn revoke_role(&self, ctx: &Context<'_>, email: String, reason: String) -> Result<bool> {
        let actor = actor(ctx)?;
        service(ctx)?
            .set_role(actor, &email, Role::Member, &reason)
            .await?;
        Ok(true)
    }
}
