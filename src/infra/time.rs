//! The clock. Timestamps are UTC with microsecond precision on both backends, so a value read
//! back equals the value written, and SQLite's fixed-width TEXT sorts in time order.

use chrono::{DateTime, SubsecRound, Utc};

/// Now, truncated to microseconds (PostgreSQL's `timestamptz` precision).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The TEXT form SQLite stores: `YYYY-MM-DDTHH:MM:SS.ffffffZ`, always the same width.
pub fn sqlite_ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn sqlite_text_is_fixed_width_and_sorts_like_time() {
        let a = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 5)
            .single()
            .expect("valid");
        let b = a + chrono::Duration::microseconds(500_000);
        let (ta, tb) = (sqlite_ts(a), sqlite_ts(b));
        assert_eq!(ta.len(), tb.len());
        assert!(ta < tb);
        assert_eq!(ta, "2026-01-01T00:00:05.000000Z");
    }
}
