//! Moderation: reports reach people who can act.
//!
//! Open reports are grouped by the reported person into cases, ordered by urgency (distinct
//! reporters, then age). A moderator sees the person as they are now, the snapshot taken with
//! each report, and only the messages the person sent their reporters (copied with the
//! report). Actions — dismiss, warn, remove a photo, suspend, ban, lift — each need a reason
//! and are appended to an audit log that nothing edits. A suspension or ban ends every session
//! and socket of the person on every instance at once, hides them from everyone, and refuses
//! sign-in until it ends; a ban also refuses a new account with the same email (kept as a keyed
//! hash). Roles are granted from the command line (`pupmatch admin grant`) or by an admin.
//!
//! Interfaces: the admin GraphQL API ([`graphql`], at `/admin/graphql`) and the web console
//! (`crate::http::admin`, at `/admin`), both for staff only.

pub mod graphql;
pub mod model;
mod places;
mod roles;
pub use roles::{lift_from_command_line, set_role};
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::AuthService;
use crate::error::{ApiError, ApiResult};
use crate::events::EndedSessions;
use crate::infra::blobs::BlobStore;
use crate::infra::time;
use crate::notifications::{NotificationKind, NotificationService, Notify};
use crate::playgrounds::PlaygroundService;
use crate::playgrounds::store::PlaygroundRecord;
use crate::profiles::ProfileService;
use crate::profiles::images::Fingerprint;
use crate::profiles::model::PhotoFile;
use model::{
    ActionKind, Actor, AuditEntry, CaseSummary, Effect, EvidenceMessage, NewAction, Person,
    ReportRow, Role, Tombstone,
};
use store::ModerationStore;

/// Longest suspension a moderator can give (a ban is for longer).
pub const MAX_SUSPENSION_DAYS: i64 = 365;
/// Why a staff member cannot act on another.
const OUT_OF_REACH: &str = "moderators act on members only, admins on members and moderators; \
                            an admin's account is changed from the command line";
/// Cases shown at most in the queue.
pub const QUEUE_LIMIT: usize = 200;

/// A case as a moderator reads it.
pub struct CaseDetail {
    pub person: Person,
    /// Signed URLs of the current photos, with their ids (for removal).
    pub photos: Vec<(Uuid, String)>,
    pub reports: Vec<ReportEvidence>,
}

/// One report with what was kept with it.
pub struct ReportEvidence {
    pub report: ReportRow,
    /// Signed URLs of the photos the profile had when the report was made.
    pub snapshot_photos: Vec<String>,
    /// What the reported person had sent this reporter, oldest first.
    pub messages: Vec<EvidenceMessage>,
}

/// The moderation service.
pub struct ModerationService {
    /// Places, whose cache a removal or merge drops.
    playgrounds: Arc<PlaygroundService>,
    store: ModerationStore,
    auth: Arc<AuthService>,
    profiles: Arc<ProfileService>,
    notifications: Arc<NotificationService>,
    blobs: Arc<dyn BlobStore>,
}

impl ModerationService {
    pub fn new(
        db: &crate::infra::db::Db,
        auth: Arc<AuthService>,
        profiles: Arc<ProfileService>,
        notifications: Arc<NotificationService>,
        blobs: Arc<dyn BlobStore>,
        playgrounds: Arc<PlaygroundService>,
    ) -> Self {
        ModerationService {
            playgrounds,
            store: ModerationStore::new(db),
            auth,
            profiles,
            notifications,
            blobs,
        }
    }

    pub fn store(&self) -> &ModerationStore {
        &self.store
    }

    /// The signed-in staff member behind an access token's user, or FORBIDDEN.
    pub async fn staff(&self, user_id: Uuid) -> ApiResult<Actor> {
        let role = self.store.role_of(user_id).await?.unwrap_or(Role::Member);
        if !role.is_staff() {
            return Err(ApiError::Forbidden("moderators and admins only".into()));
        }
        let email = self.auth.user(user_id).await.map_err(ApiError::from)?.email;
        Ok(Actor {
            id: Some(user_id),
            email,
            role,
        })
    }

    /// The open cases `viewer` sees, most urgent first: most distinct reporters whose reports
    /// count, then most reporters, then the oldest first report.
    pub async fn cases(&self, viewer: &Actor) -> ApiResult<Vec<CaseSummary>> {
        let all = self.store.open_reports().await?;
        metrics::gauge!("moderation_open_cases").set(
            all.iter()
                .map(|r| r.reported_id)
                .collect::<std::collections::HashSet<_>>()
                .len() as f64,
        );
        let reports = all.into_iter().filter(|r| {
            viewer.id != Some(r.reported_id) && viewer.role.sees_cases_of(r.reported_role)
        });
        let mut by_person: HashMap<Uuid, CaseSummary> = HashMap::new();
        // Per person: each reporter, and whether any of their reports counts.
        let mut reporters: HashMap<Uuid, Vec<(Option<Uuid>, bool)>> = HashMap::new();
        let mut reasons: HashMap<Uuid, HashMap<String, usize>> = HashMap::new();
        for r in reports {
            let case = by_person
                .entry(r.reported_id)
                .or_insert_with(|| CaseSummary {
                    person_id: r.reported_id,
                    name: None,
                    reports: 0,
                    reporters: 0,
                    counted_reporters: 0,
                    reasons: Vec::new(),
                    first_reported_at: r.created_at,
                    last_reported_at: r.created_at,
                    held: false,
                });
            case.reports += 1;
            case.first_reported_at = case.first_reported_at.min(r.created_at);
            case.last_reported_at = case.last_reported_at.max(r.created_at);
            let seen = reporters.entry(r.reported_id).or_default();
            // A deleted reporter still counts once per report.
            if r.reporter_id.is_none() || !seen.iter().any(|(id, _)| *id == r.reporter_id) {
                seen.push((r.reporter_id, r.counts_towards_hold));
            } else if r.counts_towards_hold
                && let Some(entry) = seen.iter_mut().find(|(id, _)| *id == r.reporter_id)
            {
                entry.1 = true;
            }
            *reasons
                .entry(r.reported_id)
                .or_default()
                .entry(r.reason)
                .or_default() += 1;
        }
        let mut cases: Vec<CaseSummary> = by_person
            .into_values()
            .map(|mut c| {
                let seen = reporters.get(&c.person_id).map_or(&[][..], Vec::as_slice);
                c.reporters = seen.len();
                c.counted_reporters = seen.iter().filter(|(_, counts)| *counts).count();
                let mut counted: Vec<(String, usize)> = reasons
                    .remove(&c.person_id)
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                counted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                c.reasons = counted.into_iter().map(|(r, _)| r).collect();
                c
            })
            .collect();
        // Reporters who could have met the person come first: a crowd of throwaway accounts
        // does not bury a real case.
        cases.sort_by(|a, b| {
            b.counted_reporters
                .cmp(&a.counted_reporters)
                .then_with(|| b.reporters.cmp(&a.reporters))
                .then_with(|| a.first_reported_at.cmp(&b.first_reported_at))
                .then_with(|| a.person_id.cmp(&b.person_id))
        });
        cases.truncate(QUEUE_LIMIT);
        let now = time::now();
        for case in &mut cases {
            if let Some(person) = self.store.person(case.person_id).await? {
                case.name = person.name;
                case.held = person.hidden_until.is_some_and(|t| t > now);
            }
        }
        Ok(cases)
    }

    /// Everything a moderator needs to decide about one person (`None` for someone whose
    /// cases `viewer` does not see: themselves, or staff out of their reach).
    pub async fn case(&self, viewer: &Actor, person_id: Uuid) -> ApiResult<Option<CaseDetail>> {
        let person = match self.store.person(person_id).await? {
            Some(person) => person,
            None => match self.store.tombstone(person_id).await? {
                Some(tombstone) => Person::deleted(&tombstone),
                None => return Ok(None),
            },
        };
        if viewer.id == Some(person_id) || !viewer.role.sees_cases_of(person.role) {
            return Ok(None);
        }
        let mut photos = Vec::new();
        for photo in self.profiles.photo_files(person_id).await? {
            photos.push((photo.id, self.url(&photo.storage_key).await?));
        }
        let mut messages: HashMap<Uuid, Vec<EvidenceMessage>> = HashMap::new();
        for m in self.store.evidence_messages(person_id).await? {
            messages.entry(m.report_id).or_default().push(m);
        }
        let mut reports = Vec::new();
        for report in self.store.reports_about(person_id).await? {
            let keys: Vec<String> =
                serde_json::from_str(&report.reported_photo_keys).unwrap_or_default();
            let mut snapshot_photos = Vec::with_capacity(keys.len());
            for key in &keys {
                snapshot_photos.push(self.url(key).await?);
            }
            reports.push(ReportEvidence {
                messages: messages.remove(&report.id).unwrap_or_default(),
                snapshot_photos,
                report,
            });
        }
        Ok(Some(CaseDetail {
            person,
            photos,
            reports,
        }))
    }

    /// The person `actor` is about to act on, or why not: NOT_FOUND, yourself, or an account
    /// whose role puts it out of the actor's reach (FORBIDDEN).
    async fn subject(&self, actor: &Actor, person_id: Uuid) -> ApiResult<Person> {
        let person = self
            .store
            .person(person_id)
            .await?
            .ok_or_else(|| ApiError::NotFound("no such person".into()))?;
        self.within_reach(actor, person)
    }

    /// [`Self::subject`], or the tombstone of an account deleted while its case was open.
    async fn subject_or_deleted(
        &self,
        actor: &Actor,
        person_id: Uuid,
    ) -> ApiResult<(Person, Option<Tombstone>)> {
        if let Some(person) = self.store.person(person_id).await? {
            return Ok((self.within_reach(actor, person)?, None));
        }
        let tombstone = self
            .store
            .tombstone(person_id)
            .await?
            .ok_or_else(|| ApiError::NotFound("no such person".into()))?;
        Ok((Person::deleted(&tombstone), Some(tombstone)))
    }

    fn within_reach(&self, actor: &Actor, person: Person) -> ApiResult<Person> {
        let person_id = person.id;
        if Some(person_id) == actor.id {
            return Err(ApiError::bad_input(
                "personId",
                "you cannot act on yourself",
            ));
        }
        if !actor.may_act_on(person_id, person.role) {
            return Err(ApiError::Forbidden(OUT_OF_REACH.into()));
        }
        Ok(person)
    }

    /// How these photos look, to remember once they are removed: each photo's fingerprint
    /// (worked out from the stored picture for photos stored before fingerprints were kept),
    /// leaving out pictures too plain to recognise.
    async fn fingerprints(&self, photos: &[PhotoFile]) -> ApiResult<Vec<Fingerprint>> {
        let mut out = Vec::with_capacity(photos.len());
        for photo in photos {
            let fingerprint = match &photo.fingerprint {
                Some(stored) => Some(Fingerprint::from_stored(stored.clone())),
                None => {
                    self.profiles
                        .fingerprint_of_stored(&photo.storage_key)
                        .await?
                }
            };
            out.extend(fingerprint.filter(|f| f.is_distinctive()));
        }
        Ok(out)
    }

    async fn url(&self, key: &str) -> ApiResult<String> {
        self.blobs.url(key).await.map_err(ApiError::Internal)
    }

    /// Applies a moderator's decision about `person_id`. `days` is for suspensions only.
    pub async fn act(
        &self,
        actor: &Actor,
        kind: ActionKind,
        person_id: Uuid,
        reason: &str,
        days: Option<i64>,
    ) -> ApiResult<()> {
        if matches!(
            kind,
            ActionKind::RemovePhoto
                | ActionKind::GrantRole
                | ActionKind::RevokeRole
                | ActionKind::RemovePlace
                | ActionKind::MergePlace
        ) {
            return Err(ApiError::bad_input("kind", "use the photo or role action"));
        }
        let reason = clean_reason(reason)?;
        let (person, tombstone) = self.subject_or_deleted(actor, person_id).await?;
        if tombstone.is_some()
            && !matches!(
                kind,
                ActionKind::Dismiss | ActionKind::Ban | ActionKind::Lift
            )
        {
            return Err(ApiError::bad_input(
                "kind",
                "the account was deleted: its case can be dismissed, or its email banned",
            ));
        }
        let now = time::now();
        let (effect, detail) = match kind {
            ActionKind::Dismiss => (Effect::Dismiss, None),
            ActionKind::Warn => (Effect::Actioned, None),
            ActionKind::Suspend => {
                let days = days.ok_or_else(|| ApiError::bad_input("days", "how many days?"))?;
                if !(1..=MAX_SUSPENSION_DAYS).contains(&days) {
                    return Err(ApiError::bad_input(
                        "days",
                        format!("a suspension lasts 1 to {MAX_SUSPENSION_DAYS} days"),
                    ));
                }
                (
                    Effect::Suspend {
                        until: now + chrono::Duration::days(days),
                    },
                    Some(format!("{days} days")),
                )
            }
            ActionKind::Ban => {
                let email_hash = match &tombstone {
                    Some(t) => <[u8; 32]>::try_from(t.email_hash.as_slice()).map_err(|_| {
                        ApiError::Internal(anyhow::anyhow!("a malformed email hash"))
                    })?,
                    None => self.auth.email_hash(&person.email),
                };
                let photos = self.profiles.photo_files(person_id).await?;
                (
                    Effect::Ban {
                        email_hash,
                        fingerprints: self.fingerprints(&photos).await?,
                    },
                    None,
                )
            }
            ActionKind::Lift => (Effect::Lift, None),
            ActionKind::RemovePhoto
            | ActionKind::GrantRole
            | ActionKind::RevokeRole
            | ActionKind::RemovePlace
            | ActionKind::MergePlace => unreachable!("refused above"),
        };
        let action = new_action(actor, kind, &person, reason.clone(), detail, now);
        let applied = self.store.apply(&action, &effect, now).await?;
        record_metrics(kind, applied.first_report_at, now);
        tracing::info!(
            action = kind.as_db(),
            moderator = ?actor.id,
            user.id = %person_id,
            reports_closed = applied.closed,
            "moderation action"
        );
        match kind {
            ActionKind::Warn => {
                self.notifications
                    .notify(Notify {
                        user_id: person_id,
                        kind: NotificationKind::System,
                        title: "A warning from the PupMatch team".into(),
                        body: format!(
                            "People reported your behaviour and a moderator agreed: {reason}. \
                             Please follow the community rules; a next time can suspend your \
                             account."
                        ),
                        data: vec![],
                        conversation: None,
                    })
                    .await;
            }
            ActionKind::Suspend | ActionKind::Ban => {
                self.auth
                    .sessions_ended(person_id, EndedSessions::all())
                    .await;
            }
            _ => {}
        }
        // Every decision can hide or show the person (a warning or a dismissal lifts a hold),
        // and the cached profile says which.
        self.profiles.invalidate(person_id).await;
        if let Some(tombstone) = tombstone {
            match kind {
                ActionKind::Dismiss => self.store.forget_tombstone(person_id).await?,
                // Deleting and registering again with the same email escapes nothing.
                ActionKind::Ban => {
                    if let Some(successor) = tombstone.successor_id {
                        self.ban_successor(actor, successor, person_id).await?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Bans the account registered with the email of a banned deleted account, as any ban.
    async fn ban_successor(&self, actor: &Actor, successor: Uuid, deleted: Uuid) -> ApiResult<()> {
        let reason = format!("the same email as the banned deleted account {deleted}");
        match Box::pin(self.act(actor, ActionKind::Ban, successor, &reason, None)).await {
            // Deleted in the meantime: nothing left to ban.
            Err(ApiError::NotFound(_)) => Ok(()),
            done => done,
        }
    }

    /// Takes a photo off a profile (it stays as evidence while an open report holds it).
    pub async fn remove_photo(
        &self,
        actor: &Actor,
        person_id: Uuid,
        photo_id: Uuid,
        reason: &str,
    ) -> ApiResult<()> {
        let reason = clean_reason(reason)?;
        let person = self.subject(actor, person_id).await?;
        let now = time::now();
        let action = new_action(
            actor,
            ActionKind::RemovePhoto,
            &person,
            reason,
            Some(format!("photo {photo_id}")),
            now,
        );
        let no_such_photo = || ApiError::NotFound("no such photo on this profile".into());
        let photo = self
            .profiles
            .photo_files(person_id)
            .await?
            .into_iter()
            .find(|p| p.id == photo_id)
            .ok_or_else(no_such_photo)?;
        let remember = self.fingerprints(std::slice::from_ref(&photo)).await?;
        if !self
            .store
            .remove_photo(photo_id, &action, remember.first(), now)
            .await?
        {
            return Err(no_such_photo());
        }
        record_metrics(ActionKind::RemovePhoto, None, now);
        self.profiles.invalidate(person_id).await;
        Ok(())
    }

    /// The audit log, newest first.
    pub async fn audit(
        &self,
        limit: i64,
        before: Option<(DateTime<Utc>, Uuid)>,
    ) -> ApiResult<Vec<AuditEntry>> {
        Ok(self.store.audit(limit.clamp(1, 1000), before).await?)
    }
}

/// Keeps the `moderation_open_cases` and `moderation_oldest_open_case_seconds` gauges current
/// (every 30 s) while the store's pool lives.
pub fn spawn_open_case_gauge(store: ModerationStore) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if store.is_closed() {
                break;
            }
            if let Ok((open, oldest)) = store.open_case_stats().await {
                metrics::gauge!("moderation_open_cases").set(open as f64);
                let age = oldest.map_or(0.0, |at| {
                    (time::now() - at).num_milliseconds().max(0) as f64 / 1000.0
                });
                metrics::gauge!("moderation_oldest_open_case_seconds").set(age);
            }
        }
    });
}

fn new_action(
    actor: &Actor,
    kind: ActionKind,
    person: &Person,
    reason: String,
    detail: Option<String>,
    now: DateTime<Utc>,
) -> NewAction {
    NewAction {
        id: Uuid::now_v7(),
        created_at: now,
        actor_id: actor.id,
        actor_email: actor.email.clone(),
        kind,
        subject_id: person.id,
        subject_name: person.name.clone(),
        reason,
        detail,
    }
}

/// A reason is required: 1 to 1000 characters of plain text.
fn clean_reason(raw: &str) -> ApiResult<String> {
    crate::text::clean("reason", raw, crate::text::Kind::Multiline, 1, 1000)
}

fn record_metrics(kind: ActionKind, first_report_at: Option<DateTime<Utc>>, now: DateTime<Utc>) {
    metrics::counter!("moderation_actions_total", "kind" => kind.as_db()).increment(1);
    if let Some(first) = first_report_at {
        let waited = (now - first).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::histogram!("moderation_first_action_seconds").record(waited);
    }
}
