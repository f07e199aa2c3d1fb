//! Calendar dates from Unix time, in UTC, without a time-zone database: what a reply shows a
//! person (003 RPL_CREATED). Pure arithmetic, valid for every `i64` day count a `u64` of
//! seconds gives.

use std::fmt;

/// A moment in UTC, split into calendar fields.
///
/// ```
/// use chatnode::proto::time::Utc;
/// let t = Utc::from_unix(1_796_052_701);
/// assert_eq!(t.to_string(), "Mon Nov 30 2026 at 15:31:41 UTC");
/// assert_eq!((t.year, t.month, t.day), (2026, 11, 30));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    /// The year, e.g. 2026.
    pub year: i64,
    /// 1-12.
    pub month: u32,
    /// 1-31.
    pub day: u32,
    /// 0 = Sunday ... 6 = Saturday.
    pub weekday: u32,
    /// 0-23.
    pub hour: u32,
    /// 0-59.
    pub minute: u32,
    /// 0-59.
    pub second: u32,
}

impl Utc {
    /// The calendar fields of `secs` seconds after 1970-01-01 00:00:00 UTC.
    pub fn from_unix(secs: u64) -> Utc {
        let days = (secs / 86_400) as i64;
        let in_day = (secs % 86_400) as u32;
        // Howard Hinnant's days-to-civil algorithm, on eras of 400 years (146,097 days).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        Utc {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            weekday: ((days + 4).rem_euclid(7)) as u32, // 1970-01-01 was a Thursday
            hour: in_day / 3_600,
            minute: in_day / 60 % 60,
            second: in_day % 60,
        }
    }
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Mon Nov 30 2026 at 15:31:41 UTC`.
impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} at {:02}:{:02}:{:02} UTC",
            WEEKDAYS[self.weekday as usize],
            MONTHS[(self.month - 1) as usize],
            self.day,
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(
            Utc::from_unix(0).to_string(),
            "Thu Jan 1 1970 at 00:00:00 UTC"
        );
        assert_eq!(
            Utc::from_unix(951_782_400).to_string(), // a leap day in a year divisible by 400
            "Tue Feb 29 2000 at 00:00:00 UTC"
        );
        assert_eq!(
            Utc::from_unix(1_709_251_199).to_string(),
            "Thu Feb 29 2024 at 23:59:59 UTC"
        );
        assert_eq!(
            Utc::from_unix(4_102_444_800).to_string(), // 2100 is not a leap year
            "Fri Jan 1 2100 at 00:00:00 UTC"
        );
        // The day after February: the first day of a year as the algorithm counts them (late
        // in a 400-year era, where its century terms count), and the first of an era.
        assert_eq!(
            Utc::from_unix(5_097_600).to_string(),
            "Sun Mar 1 1970 at 00:00:00 UTC"
        );
        assert_eq!(
            Utc::from_unix(951_868_800).to_string(),
            "Wed Mar 1 2000 at 00:00:00 UTC"
        );
        let far = Utc::from_unix(u64::MAX);
        assert!(far.year > 500_000_000_000, "{far:?}");
    }
}
