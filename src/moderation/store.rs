//! Moderation's SQL, written once for both backends (see [`crate::infra::sql`]).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{
    Applied, AuditEntry, Effect, EvidenceMessage, NewAction, OpenReport, Person, ReportRow, Role,
    StaffRow, Tombstone,
};
use crate::auth::store::AuthStore;
use crate::chat::store::ChatStore;
use crate::error::StoreError;
use crate::ids::PlaygroundId;
use crate::infra::db::Db;
use crate::infra::sql::{
    Backend, Ts, execute, execute_in, fetch, fetch_scalar, in_both_transactions, with_db,
};
use crate::playgrounds::store::PlaygroundStore;
use crate::profiles::images::Fingerprint;
use crate::profiles::store::{LOCK_ACCOUNT, PhotosTx};

/// What the moderation store writes inside its write transactions, on either backend.
trait AuditTx {
    /// Appends `action` to the audit log.
    fn insert_action(
        &mut self,
        action: &NewAction,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;

    /// Remembers how a photo that `action` removed looked (kept once per fingerprint).
    fn remember_fingerprint(
        &mut self,
        fingerprint: &Fingerprint,
        action: &NewAction,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
}

in_both_transactions!(impl AuditTx {
    async fn insert_action(&mut self, action: &NewAction) -> Result<(), StoreError> {
        let tx = &mut **self;
        execute_in!(
            tx,
            INSERT_ACTION,
            action.id,
            Ts(action.created_at),
            action.actor_id,
            &action.actor_email,
            action.kind,
            action.subject_id,
            &action.subject_name,
            &action.reason,
            &action.detail
        );
        Ok(())
    }

    async fn remember_fingerprint(
        &mut self,
        fingerprint: &Fingerprint,
        action: &NewAction,
    ) -> Result<(), StoreError> {
        let tx = &mut **self;
        execute_in!(
            tx,
            REMEMBER_FINGERPRINT,
            fingerprint.as_bytes(),
            Ts(action.created_at),
            action.id
        );
        Ok(())
    }
});

/// Remembers how a removed photo looked (`$1`, at `$2`) for the action `$3` that removed it.
const REMEMBER_FINGERPRINT: &str = "INSERT INTO removed_photo_fingerprints
        (fingerprint, removed_at, action_id)
     VALUES ($1, $2, $3) ON CONFLICT (fingerprint) DO NOTHING";

const INSERT_ACTION: &str = "INSERT INTO moderation_actions
        (id, created_at, actor_id, actor_email, kind, subject_id, subject_name, reason, detail)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

const PERSON: &str = "SELECT u.id, u.email, u.role, u.created_at, u.suspended_until, u.banned_at,
        u.hidden_until, p.name, p.bio, p.age, p.breed
   FROM users u LEFT JOIN profiles p ON p.user_id = u.id WHERE u.id = $1";

/// Moderation's reads and writes.
#[derive(Clone)]
pub struct ModerationStore {
    db: Db,
}

impl ModerationStore {
    pub fn new(db: &Db) -> Self {
        ModerationStore { db: db.clone() }
    }

    /// Whether the database pool was closed (the application stopped).
    pub fn is_closed(&self) -> bool {
        self.db.is_closed()
    }

    /// The account with this (normalised) email: its id and role.
    pub async fn account_by_email(&self, email: &str) -> Result<Option<(Uuid, Role)>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_optional,
            "SELECT id, role FROM users WHERE email = $1",
            email
        ))
    }

    /// The account's role (`None`: no such account).
    pub async fn role_of(&self, user_id: Uuid) -> Result<Option<Role>, StoreError> {
        Ok(fetch_scalar!(
            &self.db,
            fetch_optional,
            "SELECT role FROM users WHERE id = $1",
            user_id
        ))
    }

    /// Sets a role and logs the change, in one transaction.
    pub async fn set_role(
        &self,
        user_id: Uuid,
        role: Role,
        action: &NewAction,
    ) -> Result<(), StoreError> {
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            execute_in!(
                tx,
                "UPDATE users SET role = $2 WHERE id = $1",
                user_id,
                role
            );
            tx.insert_action(action).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Every open report, oldest first (the queue groups them by person).
    pub async fn open_reports(&self) -> Result<Vec<OpenReport>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT r.reported_id, r.reporter_id, r.reason, r.created_at, r.counts_towards_hold,
                    COALESCE(u.role, 'MEMBER') AS reported_role
               FROM reports r LEFT JOIN users u ON u.id = r.reported_id
              WHERE r.status = 'OPEN' ORDER BY r.created_at"
        ))
    }

    /// How many people have open reports.
    /// How many people have open reports, and when the oldest open report was made.
    pub async fn open_case_stats(&self) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_one,
            "SELECT COUNT(DISTINCT reported_id), MIN(created_at) FROM reports WHERE status = 'OPEN'"
        ))
    }

    pub async fn person(&self, user_id: Uuid) -> Result<Option<Person>, StoreError> {
        Ok(fetch!(&self.db, fetch_optional, PERSON, user_id))
    }

    /// Removes place `action.subject_id` (messages that shared it keep their text), with the
    /// action in the audit log. False when there is no such place.
    pub async fn remove_place(&self, action: &NewAction) -> Result<bool, StoreError> {
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            let removed = execute_in!(tx, PlaygroundStore::DELETE, action.subject_id);
            if removed == 0 {
                return Ok(false);
            }
            tx.insert_action(action).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Folds place `action.subject_id` into `into`: its favourites (where the person has not
    /// saved `into` already) and the messages that shared it move there, then it goes; with the
    /// action in the audit log. False when either place does not exist.
    pub async fn merge_places(
        &self,
        action: &NewAction,
        into: PlaygroundId,
    ) -> Result<bool, StoreError> {
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            let found: Vec<Uuid> = sqlx::query_scalar(pool.pick(PlaygroundStore::LOCK_TWO))
                .bind(action.subject_id)
                .bind(into)
                .fetch_all(&mut *tx)
                .await?;
            if found.len() < 2 {
                return Ok(false);
            }
            execute_in!(tx, PlaygroundStore::MOVE_FAVORITES, action.subject_id, into);
            execute_in!(tx, ChatStore::MOVE_SHARES, action.subject_id, into);
            execute_in!(tx, PlaygroundStore::DELETE, action.subject_id);
            tx.insert_action(action).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// The tombstone of an account deleted while its case was open.
    pub async fn tombstone(&self, user_id: Uuid) -> Result<Option<Tombstone>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_optional,
            "SELECT user_id, email_hash, deleted_at, successor_id FROM tombstones WHERE user_id = $1",
            user_id
        ))
    }

    /// Forgets a tombstone whose case is closed without a ban.
    pub async fn forget_tombstone(&self, user_id: Uuid) -> Result<(), StoreError> {
        execute!(
            &self.db,
            "DELETE FROM tombstones WHERE user_id = $1",
            user_id
        );
        Ok(())
    }

    /// Reports about the person, open ones first, newest first within each group.
    pub async fn reports_about(&self, user_id: Uuid) -> Result<Vec<ReportRow>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT r.id, r.reporter_id, p.name AS reporter_name, r.reason, r.details, r.status,
                        r.created_at, r.counts_towards_hold, r.not_counted_because,
                        r.reported_name, r.reported_bio, r.reported_photo_keys
                   FROM reports r LEFT JOIN profiles p ON p.user_id = r.reporter_id
                  WHERE r.reported_id = $1
                  ORDER BY CASE WHEN r.status = 'OPEN' THEN 0 ELSE 1 END, r.created_at DESC
                  LIMIT 200",
            user_id
        ))
    }

    /// The messages copied with the reports about the person (only what they sent reporters).
    pub async fn evidence_messages(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<EvidenceMessage>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT rm.report_id, rm.sent_at, rm.content
                   FROM report_messages rm JOIN reports r ON r.id = rm.report_id
                  WHERE r.reported_id = $1
                  ORDER BY rm.report_id, rm.sent_at",
            user_id
        ))
    }

    /// Logs `action` and applies `effect` to its subject, in one transaction. Actions that
    /// decide a case close the person's open reports.
    pub async fn apply(
        &self,
        action: &NewAction,
        effect: &Effect,
        now: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let person = action.subject_id;
        let forever = crate::discovery::store::forever();
        let applied = with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            tx.insert_action(action).await?;
            let mut applied = Applied::default();
            if action.kind.closes_case() {
                let status = if matches!(effect, Effect::Dismiss) {
                    "DISMISSED"
                } else {
                    "ACTIONED"
                };
                let first: Option<DateTime<Utc>> = sqlx::query_scalar(
                    "SELECT MIN(created_at) FROM reports WHERE reported_id = $1 AND status = 'OPEN'",
                )
                .bind(person)
                .fetch_one(&mut *tx)
                .await?;
                applied.first_report_at = first;
                applied.closed = sqlx::query(
                    "UPDATE reports SET status = $2, resolved_at = $3, action_id = $4
                      WHERE reported_id = $1 AND status = 'OPEN'",
                )
                .bind(person)
                .bind(status)
                .bind(Ts(now))
                .bind(action.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            match effect {
                Effect::Dismiss | Effect::Actioned => {
                    // A hold ends with the decision; a running suspension or ban stays.
                    execute_in!(
                        tx,
                        "UPDATE users SET hidden_until = NULL
                          WHERE id = $1 AND banned_at IS NULL
                            AND (suspended_until IS NULL OR suspended_until <= $2)",
                        person,
                        Ts(now)
                    );
                }
                Effect::Suspend { until } => {
                    execute_in!(tx, "UPDATE users SET suspended_until = $2,
                                hidden_until = CASE WHEN banned_at IS NULL THEN $2 ELSE hidden_until END
                          WHERE id = $1", person, Ts(*until));
                    execute_in!(tx, AuthStore::END_SESSIONS, person, Ts(now));
                }
                Effect::Ban {
                    email_hash,
                    fingerprints,
                } => {
                    for fingerprint in fingerprints {
                        tx.remember_fingerprint(fingerprint, action).await?;
                    }
                    execute_in!(
                        tx,
                        "UPDATE users SET banned_at = $2, hidden_until = $3 WHERE id = $1",
                        person,
                        Ts(now),
                        Ts(forever)
                    );
                    execute_in!(tx, "INSERT INTO banned_emails (email_hash, banned_at, user_id) VALUES ($1, $2, $3)
                         ON CONFLICT (email_hash) DO NOTHING", &email_hash[..], Ts(now), person);
                    execute_in!(tx, AuthStore::END_SESSIONS, person, Ts(now));
                }
                Effect::Lift => {
                    execute_in!(tx, "UPDATE users SET suspended_until = NULL, banned_at = NULL, hidden_until = NULL
                          WHERE id = $1", person);
                    execute_in!(tx, "DELETE FROM banned_emails WHERE user_id = $1", person);
                }
            }
            tx.commit().await?;
            applied
        });
        Ok(applied)
    }

    /// Takes a photo off its owner's profile (even below the two a complete profile needs) and
    /// logs it, in one transaction. The files stay while an open report keeps them as evidence.
    /// False when the photo is not the subject's.
    pub async fn remove_photo(
        &self,
        photo_id: Uuid,
        action: &NewAction,
        remember: Option<&Fingerprint>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let person = action.subject_id;
        Ok(with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            execute_in!(tx, pool.pick(LOCK_ACCOUNT), person);
            if tx.remove_photo(person, photo_id, now).await?.is_some() {
                tx.insert_action(action).await?;
                if let Some(fingerprint) = remember {
                    tx.remember_fingerprint(fingerprint, action).await?;
                }
                tx.commit().await?;
                true
            } else {
                false
            }
        }))
    }

    /// The audit log, newest first, before `before` when given.
    pub async fn audit(
        &self,
        limit: i64,
        before: Option<(DateTime<Utc>, Uuid)>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let (at, id) = before.unwrap_or((crate::discovery::store::forever(), Uuid::max()));
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT id, created_at, actor_id, actor_email, kind, subject_id, subject_name,
                        reason, detail
                   FROM moderation_actions
                  WHERE created_at < $1 OR (created_at = $1 AND id < $2)
                  ORDER BY created_at DESC, id DESC LIMIT $3",
            Ts(at),
            id,
            limit
        ))
    }

    /// Accounts with a role, admins first.
    pub async fn staff(&self) -> Result<Vec<StaffRow>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT id, email, role FROM users WHERE role <> 'MEMBER' ORDER BY role, email"
        ))
    }
}
