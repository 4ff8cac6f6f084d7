//! The proleptic Gregorian calendar in integers, and the two epochs pg_collect counts from:
//! entries' timestamps count from the Unix epoch (1970-01-01), Postgres' own from 2000-01-01.

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days from the Unix epoch to Postgres' (2000-01-01).
pub const POSTGRES_EPOCH_DAYS: i64 = 10_957;

/// Microseconds from the Unix epoch to Postgres'.
pub const POSTGRES_EPOCH_US: i64 = POSTGRES_EPOCH_DAYS * 86_400_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_count_from_1970_across_eras_and_leap_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 1, 1), POSTGRES_EPOCH_DAYS);
        assert_eq!(POSTGRES_EPOCH_US, 946_684_800_000_000);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(
            days_from_civil(2024, 3, 1) - days_from_civil(2024, 2, 28),
            2
        );
        assert_eq!(
            days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28),
            1
        );
        assert_eq!(
            days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28),
            2
        );
        // Before year 0: 400 years are always 146,097 days.
        assert_eq!(
            days_from_civil(-400, 1, 1),
            days_from_civil(0, 1, 1) - 146_097
        );
        assert_eq!(days_from_civil(1, 1, 1), -719_162);
    }
}
