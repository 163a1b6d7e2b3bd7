//! Enums stored as text: [`stored_enum!`] gives an enum its stored words and makes it a value
//! sqlx binds and reads on both backends (as `TEXT`), and serde writes as the same word. A
//! word the enum does not know is an error when read, never a silent default.

/// `stored_enum!(Kind { A => "A", B => "B" })`: `as_db`/`from_db`, `FromStr`, sqlx `Type`,
/// `Encode` and `Decode` for every database whose strings they are, and serde as the word.
macro_rules! stored_enum {
    ($ty:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            /// The stored word.
            pub fn as_db(self) -> &'static str {
                match self { $($ty::$variant => $text),* }
            }

            /// The value of a stored word.
            pub fn from_db(s: &str) -> anyhow::Result<Self> {
                match s {
                    $($text => Ok($ty::$variant),)*
                    other => anyhow::bail!("unknown {} in the database: {other:?}", stringify!($ty)),
                }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = anyhow::Error;
            fn from_str(s: &str) -> anyhow::Result<Self> {
                $ty::from_db(s)
            }
        }

        impl<DB: sqlx::Database> sqlx::Type<DB> for $ty
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $ty
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let word = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
                Ok($ty::from_db(word)?)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $ty
        where
            &'static str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&'static str as sqlx::Encode<'q, DB>>::encode(self.as_db(), buf)
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_db())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let word = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                $ty::from_db(&word).map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use stored_enum;

#[cfg(test)]
mod tests {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Mood {
        Calm,
        Zoomies,
    }
    stored_enum!(Mood { Calm => "CALM", Zoomies => "ZOOMIES" });

    #[test]
    fn a_stored_enum_round_trips_through_its_word_and_refuses_others() {
        for mood in [Mood::Calm, Mood::Zoomies] {
            assert_eq!(Mood::from_db(mood.as_db()).expect("known"), mood);
            let json = serde_json::to_string(&mood).expect("serialises");
            assert_eq!(json, format!("\"{}\"", mood.as_db()));
            assert_eq!(serde_json::from_str::<Mood>(&json).expect("reads"), mood);
        }
        assert!(Mood::from_db("calm").is_err(), "words are exact");
        assert!(serde_json::from_str::<Mood>("\"SLEEPY\"").is_err());
    }

    #[tokio::test]
    async fn a_stored_enum_is_bound_and_read_as_text_by_sqlite() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:")
            .await
            .expect("sqlite");
        let read: Mood = sqlx::query_scalar("SELECT ?1")
            .bind(Mood::Zoomies)
            .fetch_one(&pool)
            .await
            .expect("round trip");
        assert_eq!(read, Mood::Zoomies);
        let unknown = sqlx::query_scalar::<_, Mood>("SELECT 'SLEEPY'")
            .fetch_one(&pool)
            .await;
        assert!(unknown.is_err(), "an unknown word is an error");
    }
}
