//! Typed ids: a person, a dog's profile, a conversation, a message and a place are each a type
//! of their own, so that one cannot be passed where another is meant without the compiler
//! saying so. Each is a UUID (v7 for new rows, so ids sort by creation), stored, bound and read
//! as one on both databases (`#[sqlx(transparent)]`), and shown as one.
//!
//! The GraphQL schema keeps its `UUID` scalar: resolvers turn arguments into typed ids as they
//! read them (`PlaygroundId::from(uuid)`) and typed ids back into UUIDs as they answer.

use std::fmt;

use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            sqlx::Type,
            serde::Serialize,
            serde::Deserialize,
        )]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new id (UUIDv7: it sorts after every id made before it).
            pub fn new() -> Self {
                $name(Uuid::now_v7())
            }

            /// The UUID it is.
            pub fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                $name(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

typed_id!(
    /// A person: their account, and everything that is theirs.
    UserId
);
typed_id!(
    /// A dog's profile.
    ProfileId
);
typed_id!(
    /// A conversation between two people who matched.
    ConversationId
);
typed_id!(
    /// A message in a conversation.
    MessageId
);
typed_id!(
    /// A place on the map (a dog playground, park or field).
    PlaygroundId
);

/// The UUIDs of `ids`, for statements that take a list.
pub fn uuids<T: Copy + Into<Uuid>>(ids: &[T]) -> Vec<Uuid> {
    ids.iter().map(|&id| id.into()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_typed_id_is_stored_and_read_as_its_uuid_on_sqlite() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:")
            .await
            .expect("memory");
        sqlx::query("CREATE TABLE t (id BLOB)")
            .execute(&pool)
            .await
            .expect("table");
        let id = PlaygroundId::new();
        sqlx::query("INSERT INTO t (id) VALUES ($1)")
            .bind(id)
            .execute(&pool)
            .await
            .expect("insert");
        let as_uuid: Uuid = sqlx::query_scalar("SELECT id FROM t")
            .fetch_one(&pool)
            .await
            .expect("read");
        assert_eq!(as_uuid, id.uuid());
        let typed: PlaygroundId = sqlx::query_scalar("SELECT id FROM t WHERE id = $1")
            .bind(as_uuid)
            .fetch_one(&pool)
            .await
            .expect("read");
        assert_eq!(typed, id);
    }

    #[test]
    fn ids_show_and_serialise_as_their_uuid() {
        let uuid = Uuid::now_v7();
        let id = UserId::from(uuid);
        assert_eq!(id.to_string(), uuid.to_string());
        assert_eq!(
            serde_json::to_string(&id).expect("json"),
            serde_json::to_string(&uuid).expect("json")
        );
        assert!(UserId::new() > id, "later ids sort after");
    }
}
