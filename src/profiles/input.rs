//! Profile inputs parsed into valid values (the limits of `schema.graphql`). Each refusal is a
//! BAD_USER_INPUT naming the input field.

use super::model::{ActivityLevel, DistanceUnit, DogSize};
use crate::error::ApiError;

use crate::text::{Kind, clean};

pub fn name(raw: &str) -> Result<String, ApiError> {
    clean("name", raw, Kind::Name, 1, 50)
}

pub fn age(raw: i32) -> Result<i32, ApiError> {
    if (0..=30).contains(&raw) {
        Ok(raw)
    } else {
        Err(ApiError::bad_input(
            "age",
            "age must be between 0 and 30 years",
        ))
    }
}

pub fn bio(raw: &str) -> Result<String, ApiError> {
    clean("bio", raw, Kind::Multiline, 0, 500)
}

/// An empty breed means "not given".
pub fn breed(raw: &str) -> Result<Option<String>, ApiError> {
    let b = clean("breed", raw, Kind::Line, 0, 60)?;
    Ok((!b.is_empty()).then_some(b))
}

pub fn prompt_answer(raw: &str) -> Result<String, ApiError> {
    clean("answer", raw, Kind::Multiline, 1, 300)
}

/// A new profile, valid.
#[derive(Debug, Clone)]
pub struct NewProfile {
    pub name: String,
    pub age: i32,
    pub bio: String,
    pub breed: Option<String>,
    pub size: Option<DogSize>,
    pub activity_level: ActivityLevel,
}

/// Changes to a profile, valid; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProfileChanges {
    pub name: Option<String>,
    pub age: Option<i32>,
    pub bio: Option<String>,
    /// `Some(None)` clears the breed.
    pub breed: Option<Option<String>>,
    pub size: Option<DogSize>,
    pub activity_level: Option<ActivityLevel>,
}

/// Discovery preferences after merging an update over the current values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreferencesValue {
    pub min_age: i32,
    pub max_age: i32,
    pub max_distance: f64,
    pub activity_level: ActivityLevel,
    pub distance_unit: DistanceUnit,
}

impl Default for PreferencesValue {
    fn default() -> Self {
        PreferencesValue {
            min_age: 0,
            max_age: 30,
            max_distance: 50.0,
            activity_level: ActivityLevel::Medium,
            distance_unit: DistanceUnit::Kilometers,
        }
    }
}

pub const KM_PER_MILE: f64 = 1.609_344;

impl DistanceUnit {
    /// The largest `maxDistance` in this unit.
    pub fn max_distance(self) -> f64 {
        match self {
            DistanceUnit::Kilometers => 500.0,
            DistanceUnit::Miles => 310.0,
        }
    }

    pub fn to_km(self, value: f64) -> f64 {
        match self {
            DistanceUnit::Kilometers => value,
            DistanceUnit::Miles => value * KM_PER_MILE,
        }
    }

    pub fn from_km(self, km: f64) -> f64 {
        match self {
            DistanceUnit::Kilometers => km,
            DistanceUnit::Miles => km / KM_PER_MILE,
        }
    }
}

/// A partial update of preferences, as received.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreferencesUpdate {
    pub min_age: Option<i32>,
    pub max_age: Option<i32>,
    pub max_distance: Option<f64>,
    pub activity_level: Option<ActivityLevel>,
    pub distance_unit: Option<DistanceUnit>,
}

impl PreferencesUpdate {
    /// Merges over `current`. Changing only the unit keeps the same real distance (capped at
    /// the new unit's maximum).
    pub fn apply(self, current: PreferencesValue) -> Result<PreferencesValue, ApiError> {
        let unit = self.distance_unit.unwrap_or(current.distance_unit);
        let max_distance = match self.max_distance {
            Some(d) => d,
            None => {
                let km = current.distance_unit.to_km(current.max_distance);
                let converted = unit.from_km(km).min(unit.max_distance());
                (converted * 100.0).round() / 100.0
            }
        };
        if !max_distance.is_finite() || max_distance <= 0.0 {
            return Err(ApiError::bad_input(
                "maxDistance",
                "maxDistance must be greater than 0",
            ));
        }
        if max_distance > unit.max_distance() {
            let unit_name = match unit {
                DistanceUnit::Kilometers => "km",
                DistanceUnit::Miles => "mi",
            };
            return Err(ApiError::bad_input(
                "maxDistance",
                format!(
                    "maxDistance must be at most {} {unit_name}",
                    unit.max_distance()
                ),
            ));
        }
        let min_age = self.min_age.unwrap_or(current.min_age);
        let max_age = self.max_age.unwrap_or(current.max_age);
        if !(0..=30).contains(&min_age) {
            return Err(ApiError::bad_input(
                "minAge",
                "minAge must be between 0 and 30",
            ));
        }
        if !(0..=30).contains(&max_age) {
            return Err(ApiError::bad_input(
                "maxAge",
                "maxAge must be between 0 and 30",
            ));
        }
        if min_age > max_age {
            let field = if self.min_age.is_some() {
                "minAge"
            } else {
                "maxAge"
            };
            return Err(ApiError::bad_input(
                field,
                "minAge must not be greater than maxAge",
            ));
        }
        Ok(PreferencesValue {
            min_age,
            max_age,
            max_distance,
            activity_level: self.activity_level.unwrap_or(current.activity_level),
            distance_unit: unit,
        })
    }
}

/// The curated prompt catalogue: `setPrompts` accepts these questions only.
pub const PROMPT_QUESTIONS: &[&str] = &[
    "My favourite toy is…",
    "The best walk we ever took was…",
    "I will steal your heart by…",
    "My humans say I'm the best at…",
    "My ideal Sunday at the park…",
    "The snack I would do anything for…",
    "My most impressive trick is…",
    "You'll know I like you when…",
    "My biggest fear is…",
    "The squirrel that got away…",
    "My zoomies happen when…",
    "I'm looking for a buddy who…",
    "My nap spot of choice is…",
    "The way to my heart is…",
    "Bath time makes me…",
    "My secret talent is…",
    "The mailman and I…",
    "At the dog park I'm usually…",
    "My dream adventure is…",
    "Don't be fooled by my size, I…",
];

pub fn prompt_question(raw: &str) -> Result<&'static str, ApiError> {
    PROMPT_QUESTIONS
        .iter()
        .find(|q| **q == raw.trim())
        .copied()
        .ok_or_else(|| ApiError::bad_input("question", "question must be one of promptQuestions"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_trimmed_and_counted_in_characters() {
        assert_eq!(name("  Rex ").expect("valid"), "Rex");
        assert!(name("   ").is_err());
        assert!(name(&"ü".repeat(50)).is_ok());
        assert!(name(&"ü".repeat(51)).is_err());
        assert_eq!(breed("").expect("valid"), None);
        assert!(bio(&"b".repeat(501)).is_err());
    }

    #[test]
    fn switching_units_keeps_the_real_distance() {
        let km = PreferencesValue {
            max_distance: 16.09344,
            ..Default::default()
        };
        let update = PreferencesUpdate {
            distance_unit: Some(DistanceUnit::Miles),
            ..Default::default()
        };
        let miles = update.apply(km).expect("valid");
        assert_eq!(miles.max_distance, 10.0);
        let far = PreferencesValue {
            max_distance: 500.0,
            ..Default::default()
        };
        assert_eq!(update.apply(far).expect("valid").max_distance, 310.0);
    }

    #[test]
    fn preference_limits_name_their_field() {
        let cur = PreferencesValue::default();
        let field = |u: PreferencesUpdate| match u.apply(cur) {
            Err(ApiError::BadUserInput { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(PreferencesUpdate {
                min_age: Some(-1),
                ..Default::default()
            })
            .as_deref(),
            Some("minAge")
        );
        assert_eq!(
            field(PreferencesUpdate {
                max_age: Some(31),
                ..Default::default()
            })
            .as_deref(),
            Some("maxAge")
        );
        assert_eq!(
            field(PreferencesUpdate {
                min_age: Some(10),
                max_age: Some(5),
                ..Default::default()
            })
            .as_deref(),
            Some("minAge")
        );
        assert_eq!(
            field(PreferencesUpdate {
                max_distance: Some(0.0),
                ..Default::default()
            })
            .as_deref(),
            Some("maxDistance")
        );
        assert_eq!(
            field(PreferencesUpdate {
                max_distance: Some(f64::NAN),
                ..Default::default()
            })
            .as_deref(),
            Some("maxDistance")
        );
        assert_eq!(
            field(PreferencesUpdate {
                max_distance: Some(311.0),
                distance_unit: Some(DistanceUnit::Miles),
                ..Default::default()
            })
            .as_deref(),
            Some("maxDistance")
        );
        assert_eq!(PROMPT_QUESTIONS.len(), 20);
    }
}
