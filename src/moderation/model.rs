//! What moderation works with: roles, cases, evidence, actions and the audit log.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::infra::stored::stored_enum;

/// What an account may do beyond using the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum Role {
    Member,
    /// Handles cases.
    Moderator,
    /// Handles cases and grants roles.
    Admin,
}

stored_enum!(Role { Member => "MEMBER", Moderator => "MODERATOR", Admin => "ADMIN" });

impl Role {
    /// A role as someone typed it (any case).
    pub fn parse(s: &str) -> Option<Role> {
        Role::from_db(&s.to_ascii_uppercase()).ok()
    }

    pub fn is_staff(self) -> bool {
        self != Role::Member
    }

    /// Whether someone with this role may act on an account with role `subject`: moderators on
    /// members, admins on members and moderators, nobody on an admin (only the command line).
    pub fn may_act_on(self, subject: Role) -> bool {
        match self {
            Role::Admin => subject != Role::Admin,
            Role::Moderator => subject == Role::Member,
            Role::Member => false,
        }
    }

    /// Whether someone with this role sees cases about an account with role `subject`:
    /// moderators see members' cases; admins see everyone's (an admin's case is decided from
    /// the command line).
    pub fn sees_cases_of(self, subject: Role) -> bool {
        match self {
            Role::Admin => true,
            Role::Moderator => subject == Role::Member,
            Role::Member => false,
        }
    }
}

stored_enum!(ActionKind {
    Dismiss => "DISMISS",
    Warn => "WARN",
    RemovePhoto => "REMOVE_PHOTO",
    Suspend => "SUSPEND",
    Ban => "BAN",
    Lift => "LIFT",
    GrantRole => "GRANT_ROLE",
    RevokeRole => "REVOKE_ROLE",
    RemovePlace => "REMOVE_PLACE",
    MergePlace => "MERGE_PLACE",
});

/// What a moderator (or the command line) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum ActionKind {
    Dismiss,
    Warn,
    RemovePhoto,
    Suspend,
    Ban,
    Lift,
    GrantRole,
    RevokeRole,
    /// Takes a place (spam, a private spot) off the map.
    RemovePlace,
    /// Folds a duplicate place into another: its favourites and shares move there.
    MergePlace,
}

impl ActionKind {
    pub const ALL: [ActionKind; 10] = [
        ActionKind::Dismiss,
        ActionKind::Warn,
        ActionKind::RemovePhoto,
        ActionKind::Suspend,
        ActionKind::Ban,
        ActionKind::Lift,
        ActionKind::GrantRole,
        ActionKind::RevokeRole,
        ActionKind::RemovePlace,
        ActionKind::MergePlace,
    ];

    pub fn parse(s: &str) -> Option<ActionKind> {
        ActionKind::from_db(s).ok()
    }

    /// Whether the action decides the person's open reports (closes their case). Removing a
    /// photo does not: the moderator decides the case after it.
    pub fn closes_case(self) -> bool {
        matches!(
            self,
            ActionKind::Dismiss | ActionKind::Warn | ActionKind::Suspend | ActionKind::Ban
        )
    }

    /// Words for the console and logs.
    pub fn label(self) -> &'static str {
        match self {
            ActionKind::Dismiss => "dismiss",
            ActionKind::Warn => "warn",
            ActionKind::RemovePhoto => "remove photo",
            ActionKind::Suspend => "suspend",
            ActionKind::Ban => "ban",
            ActionKind::Lift => "lift restriction",
            ActionKind::GrantRole => "grant role",
            ActionKind::RevokeRole => "revoke role",
            ActionKind::RemovePlace => "remove place",
            ActionKind::MergePlace => "merge place",
        }
    }
}

/// Who acts: a signed-in staff member, or the operator at the command line.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Option<Uuid>,
    pub email: String,
    pub role: Role,
}

impl Actor {
    /// Whether this actor may act on `subject`: the operator at the command line on anyone
    /// (recovery), staff as their role allows and never on themselves.
    pub fn may_act_on(&self, subject_id: Uuid, subject: Role) -> bool {
        match self.id {
            None => true,
            Some(me) => me != subject_id && self.role.may_act_on(subject),
        }
    }

    pub fn command_line() -> Actor {
        Actor {
            id: None,
            email: "command line".into(),
            role: Role::Admin,
        }
    }
}

/// A row of the audit log, as written.
#[derive(Debug, Clone)]
pub struct NewAction {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_email: String,
    pub kind: ActionKind,
    pub subject_id: Uuid,
    pub subject_name: Option<String>,
    pub reason: String,
    pub detail: Option<String>,
}

/// A row of the audit log, as read.
#[derive(Debug, Clone, sqlx::FromRow, async_graphql::SimpleObject)]
pub struct AuditEntry {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_email: String,
    #[graphql(skip)]
    pub kind: ActionKind,
    pub subject_id: Uuid,
    pub subject_name: Option<String>,
    pub reason: String,
    pub detail: Option<String>,
}

/// Open reports about one person, summed up for the queue.
#[derive(Debug, Clone)]
pub struct CaseSummary {
    pub person_id: Uuid,
    pub name: Option<String>,
    pub reports: usize,
    pub reporters: usize,
    /// Distinct reporters whose reports count towards the automatic hold.
    pub counted_reporters: usize,
    /// Distinct reasons, most frequent first.
    pub reasons: Vec<String>,
    pub first_reported_at: DateTime<Utc>,
    pub last_reported_at: DateTime<Utc>,
    /// Hidden from everyone until a moderator decides (many recent reports).
    pub held: bool,
}

/// One open report row, as the queue reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenReport {
    pub reported_id: Uuid,
    pub reporter_id: Option<Uuid>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    /// Whether it counts towards the automatic hold.
    pub counts_towards_hold: bool,
    /// The reported account's role now.
    pub reported_role: Role,
}

/// The reported person as they are now.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Person {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub suspended_until: Option<DateTime<Utc>>,
    pub banned_at: Option<DateTime<Utc>>,
    pub hidden_until: Option<DateTime<Utc>>,
    pub name: Option<String>,
    pub bio: Option<String>,
    pub age: Option<i32>,
    pub breed: Option<String>,
}

/// What is left of an account deleted while its case was open.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Tombstone {
    pub user_id: Uuid,
    pub email_hash: Vec<u8>,
    pub deleted_at: DateTime<Utc>,
    /// An account registered since with the same email.
    pub successor_id: Option<Uuid>,
}

/// How a deleted account appears in its case: nothing but its id.
pub const DELETED_ACCOUNT: &str = "(deleted account)";

impl Person {
    /// The person behind a tombstone, as a case shows them.
    pub fn deleted(tombstone: &Tombstone) -> Person {
        Person {
            id: tombstone.user_id,
            email: DELETED_ACCOUNT.into(),
            role: Role::Member,
            created_at: tombstone.deleted_at,
            suspended_until: None,
            banned_at: None,
            hidden_until: None,
            name: None,
            bio: None,
            age: None,
            breed: None,
        }
    }
}

/// Where a report stands (`reports.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportStatus {
    /// Waiting for a moderator.
    Open,
    Reviewed,
    /// Decided with an action against the person.
    Actioned,
    /// Decided with no action.
    Dismissed,
}
stored_enum!(ReportStatus { Open => "OPEN", Reviewed => "REVIEWED", Actioned => "ACTIONED", Dismissed => "DISMISSED" });

/// A report with the evidence kept with it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReportRow {
    pub id: Uuid,
    pub reporter_id: Option<Uuid>,
    pub reporter_name: Option<String>,
    pub reason: String,
    pub details: Option<String>,
    pub status: ReportStatus,
    pub created_at: DateTime<Utc>,
    pub counts_towards_hold: bool,
    pub not_counted_because: Option<String>,
    pub reported_name: Option<String>,
    pub reported_bio: Option<String>,
    /// JSON array of storage keys.
    pub reported_photo_keys: String,
}

/// A message the reported person sent the reporter, copied with the report.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EvidenceMessage {
    pub report_id: Uuid,
    pub sent_at: DateTime<Utc>,
    pub content: String,
}

/// A staff account.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StaffRow {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
}

/// What an action does besides being logged.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Closes the case: the reports are dismissed, a hold is lifted.
    Dismiss,
    /// Closes the case as actioned; a hold is lifted.
    Actioned,
    /// Suspends until then: ends every session, hides the person.
    Suspend { until: DateTime<Utc> },
    /// Bans: ends every session, hides the person, keeps the email's keyed hash and how each
    /// of their photos looks (an upload that looks the same is refused).
    Ban {
        email_hash: [u8; 32],
        fingerprints: Vec<crate::profiles::images::Fingerprint>,
    },
    /// Lifts a suspension, ban or hold.
    Lift,
}

/// What an action changed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Applied {
    /// Reports it closed.
    pub closed: u64,
    /// When the oldest of them was made (for time-to-action).
    pub first_report_at: Option<DateTime<Utc>>,
}
