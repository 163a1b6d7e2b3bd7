//! The compatibility score of a candidate, in [0, 1] (higher is better).
//!
//! ```text
//! score = 0.30 · activity fit      1 same activity level as the searcher prefers, 0.5 one step
//!                                  away, 0 opposite
//!       + 0.25 · distance decay    e^(−d / (radius / 2)), d from the searcher to the candidate's
//!                                  grid point
//!       + 0.10 · shared parks      min(shared favourite playgrounds that at least 5 other
//!                                  people with a complete profile saved, 3) / 3
//!       + 0.15 · recent activity   by calendar day (UTC): active today 1, in the last 7 days
//!                                  0.5, in the last 30 days 0.2, longer ago 0
//!       + 0.10 · liked you         1 when the candidate already liked the searcher
//!       + 0.10 · completeness      0.6 · photos / 6 + 0.3 · prompts / 3 + 0.1 · (has a bio)
//! ```
//! The weights add up to 1, and every term lies in [0, 1].
//!
//! Every input is coarse on purpose: a client can watch the score of a person while it changes
//! its own radius, or rank decoy profiles of its own around that person, and so solve the score
//! for its inputs. What it can learn that way is the day band of the person's last activity
//! (never the hour), and only the places many people save (never a private spot). The order is
//! decided on this score in hundredths; the score is served in tenths.

use chrono::{DateTime, Utc};

use super::store::Candidate;
use crate::profiles::model::ActivityLevel;

pub const W_ACTIVITY: f64 = 0.30;
pub const W_DISTANCE: f64 = 0.25;
pub const W_PARKS: f64 = 0.10;
pub const W_RECENT: f64 = 0.15;
pub const W_LIKED_YOU: f64 = 0.10;
pub const W_COMPLETE: f64 = 0.10;

fn level(a: ActivityLevel) -> i32 {
    match a {
        ActivityLevel::Low => 0,
        ActivityLevel::Medium => 1,
        ActivityLevel::High => 2,
    }
}

pub fn activity_fit(wanted: ActivityLevel, theirs: ActivityLevel) -> f64 {
    match (level(wanted) - level(theirs)).abs() {
        0 => 1.0,
        1 => 0.5,
        _ => 0.0,
    }
}

/// A score as it is ranked: rounded to 0.01.
pub fn rounded(score: f64) -> f64 {
    (score * 100.0).round() / 100.0
}

/// A score as it is served: in steps of 0.1.
pub fn served(score: f64) -> f64 {
    (score * 10.0).round() / 10.0
}

/// The recent-activity term: how many calendar days (UTC) ago the person was last active, in
/// bands: today 1, within 7 days 0.5, within 30 days 0.2, longer 0. A band changes at midnight
/// or when the person comes back, never at an hour of their activity.
pub fn recent_activity(last_active: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    match (now.date_naive() - last_active.date_naive()).num_days() {
        ..=0 => 1.0,
        1..=7 => 0.5,
        8..=30 => 0.2,
        _ => 0.0,
    }
}

pub fn score(c: &Candidate, wanted: ActivityLevel, radius_km: f64, now: DateTime<Utc>) -> f64 {
    let theirs = c.activity_level;
    let distance = (-c.distance_km.max(0.0) / (radius_km / 2.0).max(0.5)).exp();
    let parks = (c.shared_playgrounds.clamp(0, 3) as f64) / 3.0;
    let recent = recent_activity(c.last_active_at, now);
    let liked = if c.liked_you { 1.0 } else { 0.0 };
    let complete = 0.6 * (f64::from(c.photo_count.clamp(0, 6)) / 6.0)
        + 0.3 * ((c.prompt_count.clamp(0, 3) as f64) / 3.0)
        + if c.has_bio { 0.1 } else { 0.0 };
    let s = W_ACTIVITY * activity_fit(wanted, theirs)
        + W_DISTANCE * distance
        + W_PARKS * parks
        + W_RECENT * recent
        + W_LIKED_YOU * liked
        + W_COMPLETE * complete;
    s.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate() -> Candidate {
        Candidate {
            user_id: uuid::Uuid::nil(),
            distance_km: 5.0,
            activity_level: ActivityLevel::High,
            photo_count: 3,
            prompt_count: 1,
            has_bio: true,
            last_active_at: Utc::now(),
            liked_you: false,
            shared_playgrounds: 0,
        }
    }

    #[test]
    fn recent_activity_is_a_day_band() {
        let now: DateTime<Utc> = "2026-12-07T09:30:00Z".parse().expect("time");
        let at = |s: &str| recent_activity(s.parse().expect("time"), now);
        assert_eq!(at("2026-12-07T00:00:01Z"), 1.0);
        assert_eq!(at("2026-12-07T09:29:00Z"), 1.0);
        assert_eq!(at("2026-12-06T23:59:59Z"), 0.5);
        assert_eq!(at("2026-11-30T00:00:00Z"), 0.5);
        assert_eq!(at("2026-11-29T23:59:59Z"), 0.2);
        assert_eq!(at("2026-11-07T00:00:00Z"), 0.2);
        assert_eq!(at("2026-11-06T23:59:59Z"), 0.0);
        // In the future (a clock step): today.
        assert_eq!(at("2026-12-08T01:00:00Z"), 1.0);
    }

    #[test]
    fn scores_are_served_in_tenths() {
        for (score, want) in [
            (0.0, 0.0),
            (0.04, 0.0),
            (0.05, 0.1),
            (0.449, 0.4),
            (0.96, 1.0),
        ] {
            assert_eq!(served(score), want, "{score}");
        }
    }

    #[test]
    fn weights_add_up_to_one() {
        let total = W_ACTIVITY + W_DISTANCE + W_PARKS + W_RECENT + W_LIKED_YOU + W_COMPLETE;
        assert!((total - 1.0).abs() < 1e-12);
    }

    #[test]
    fn each_signal_raises_the_score() {
        let now = Utc::now();
        let base = score(&candidate(), ActivityLevel::Medium, 50.0, now);
        let closer = Candidate {
            distance_km: 1.0,
            ..candidate()
        };
        let fitting = candidate();
        let liked = Candidate {
            liked_you: true,
            ..candidate()
        };
        let parks = Candidate {
            shared_playgrounds: 2,
            ..candidate()
        };
        let fuller = Candidate {
            photo_count: 6,
            prompt_count: 3,
            ..candidate()
        };
        let stale = Candidate {
            last_active_at: now - chrono::Duration::days(10),
            ..candidate()
        };
        assert!(score(&closer, ActivityLevel::Medium, 50.0, now) > base);
        assert!(score(&fitting, ActivityLevel::High, 50.0, now) > base);
        assert!(score(&liked, ActivityLevel::Medium, 50.0, now) > base);
        assert!(score(&parks, ActivityLevel::Medium, 50.0, now) > base);
        assert!(score(&fuller, ActivityLevel::Medium, 50.0, now) > base);
        assert!(score(&stale, ActivityLevel::Medium, 50.0, now) < base);
        let best = Candidate {
            distance_km: 0.0,
            liked_you: true,
            shared_playgrounds: 3,
            photo_count: 6,
            prompt_count: 3,
            ..candidate()
        };
        let s = score(&best, ActivityLevel::High, 50.0, now);
        assert!(s > 0.99 && s <= 1.0, "{s}");
    }
}
