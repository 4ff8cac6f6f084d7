//! An interval as PostgreSQL keeps one: months, days and microseconds apart, because neither
//! a month nor a day is a fixed number of microseconds (calendar months, days across a DST
//! change). Adding one to a time is the SQL layer's work, done by PostgreSQL itself, so every
//! capability follows PostgreSQL's own interval arithmetic.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

impl Interval {
    /// A literal in these units, which every IntervalStyle reads back the same: a definition
    /// carried in a trigger's arguments may be read in a session with another style than it
    /// was written in.
    pub fn sql(&self) -> String {
        format!(
            "'{} mons {} days {} microseconds'::pg_catalog.interval",
            self.months, self.days, self.micros
        )
    }

    /// No part is negative and one is positive: an interval that always reaches back in time.
    pub fn is_positive(&self) -> bool {
        self.months >= 0
            && self.days >= 0
            && self.micros >= 0
            && (self.months, self.days, self.micros) != (0, 0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_means_every_part_reaches_back() {
        let iv = |months, days, micros| Interval {
            months,
            days,
            micros,
        };
        assert!(iv(12, 0, 0).is_positive());
        assert!(iv(0, 0, 1).is_positive());
        assert!(!iv(0, 0, 0).is_positive());
        // "1 month -40 days" reaches forward in February: not an age.
        assert!(!iv(1, -40, 0).is_positive());
        assert!(!iv(0, 1, -1).is_positive());
    }
}
