//! Interval boundaries on the site's local clock.
//!
//! Owns the arithmetic that maps a switch instant to the interval it belongs to, for a
//! given IANA zone and interval length, and the local date/time labels of an interval.
//! Intervals are keyed by their UTC start, so the hour repeated when DST ends yields
//! distinct intervals (docs/data-items.md, "Time and intervals").

use chrono::{Datelike, NaiveDate, Offset, TimeZone, Timelike};
use chrono_tz::Tz;

/// The interval grid of one site: zone and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub tz: Tz,
    /// Interval length in minutes: 15, 30 or 60.
    pub minutes: u32,
}

impl Grid {
    pub fn new(tz: Tz, minutes: u32) -> Grid {
        assert!(
            matches!(minutes, 15 | 30 | 60),
            "interval must be 15, 30 or 60"
        );
        Grid { tz, minutes }
    }

    pub fn len_secs(&self) -> i64 {
        self.minutes as i64 * 60
    }

    /// The zone's UTC offset at UTC instant `t` (seconds).
    fn offset_at(&self, t: i64) -> i64 {
        let utc = chrono::DateTime::from_timestamp(t, 0).expect("timestamp in range");
        self.tz
            .offset_from_utc_datetime(&utc.naive_utc())
            .fix()
            .local_minus_utc() as i64
    }

    /// UTC start (seconds) of the interval containing UTC instant `t` (seconds): the last
    /// local multiple of the length, `t - ((t + off(t)) mod L)`, unless the zone's offset
    /// changed after it, up to `t` (a DST step that is not a multiple of `L`, such as
    /// Lord Howe's 30 minutes with 60-minute intervals): then the change starts the
    /// interval (docs/data-items.md, "Time and intervals").
    pub fn start_of(&self, t: i64) -> i64 {
        let l = self.len_secs();
        let s = t - (t + self.offset_at(t)).rem_euclid(l);
        if self.offset_at(s) == self.offset_at(t) {
            s
        } else {
            self.change_after(s, t)
        }
    }

    /// The first instant in `(lo, hi]` whose offset differs from `lo`'s, given that
    /// `hi`'s does (an interval holds at most one change, so there is exactly one).
    fn change_after(&self, lo: i64, hi: i64) -> i64 {
        let off = self.offset_at(lo);
        let (mut lo, mut hi) = (lo, hi);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.offset_at(mid) == off {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    }

    /// UTC start of the interval containing the switch timestamp `ts_ms`.
    pub fn start_of_ms(&self, ts_ms: i64) -> i64 {
        self.start_of(ts_ms.div_euclid(1000))
    }

    /// The start of the interval after the one starting at `istart`: `istart + L`
    /// wherever the offset changes by multiples of `L` (the repeated or skipped hour
    /// simply shows up as extra or missing local labels), earlier where a change that is
    /// not cuts the interval short.
    pub fn next(&self, istart: i64) -> i64 {
        let e = self.start_of(istart + self.len_secs());
        if self.offset_at(e - 1) == self.offset_at(istart) {
            e
        } else {
            self.change_after(istart, e - 1)
        }
    }

    /// Local date (YYYY-MM-DD) and HHMM of the interval starting at `istart`.
    pub fn labels(&self, istart: i64) -> (String, i64) {
        let local = self.local(istart);
        (
            local.format("%Y-%m-%d").to_string(),
            (local.hour() * 100 + local.minute()) as i64,
        )
    }

    pub fn local(&self, t: i64) -> chrono::DateTime<Tz> {
        let utc = chrono::DateTime::from_timestamp(t, 0).expect("timestamp in range");
        utc.with_timezone(&self.tz)
    }

    /// Local date of the interval starting at `istart`.
    pub fn local_date(&self, istart: i64) -> NaiveDate {
        self.local(istart).date_naive()
    }

    /// UTC instant of local midnight starting `date` (the first instant of that day).
    pub fn day_start(&self, date: NaiveDate) -> i64 {
        let mut t = date.and_hms_opt(0, 0, 0).unwrap();
        // Some zones skip midnight on DST days; step forward until a local time exists.
        loop {
            match self.tz.from_local_datetime(&t) {
                chrono::LocalResult::Single(d) => return d.timestamp(),
                chrono::LocalResult::Ambiguous(a, _) => return a.timestamp(),
                chrono::LocalResult::None => t += chrono::Duration::minutes(15),
            }
        }
    }

    /// Number of intervals in the local day `date` (96 for 15-minute intervals on an
    /// ordinary day, 92 or 100 on DST days).
    pub fn intervals_in_day(&self, date: NaiveDate) -> i64 {
        let end = self.day_start(date.succ_opt().unwrap());
        let (mut t, mut n) = (self.day_start(date), 0);
        while t < end {
            t = self.next(t);
            n += 1;
        }
        n
    }
}

/// First day of the week containing `d`, weeks starting on `week_start`.
pub fn week_of(d: NaiveDate, week_start: chrono::Weekday) -> NaiveDate {
    let back = (d.weekday().num_days_from_monday() + 7 - week_start.num_days_from_monday()) % 7;
    d - chrono::Duration::days(back as i64)
}

/// First day of the month containing `d`.
pub fn month_of(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    #[test]
    fn quarter_hours_in_new_york() {
        let g = Grid::new(chrono_tz::America::New_York, 15);
        let t = ts("2026-03-02T10:07:31-05:00");
        assert_eq!(g.start_of(t), ts("2026-03-02T10:00:00-05:00"));
        assert_eq!(g.labels(g.start_of(t)), ("2026-03-02".to_string(), 1000));
    }

    #[test]
    fn dst_days_have_92_and_100_quarter_hours() {
        let g = Grid::new(chrono_tz::America::New_York, 15);
        let spring = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap();
        let fall = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let normal = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        assert_eq!(g.intervals_in_day(spring), 92);
        assert_eq!(g.intervals_in_day(fall), 100);
        assert_eq!(g.intervals_in_day(normal), 96);
        // the repeated 01:00-02:00 gives distinct UTC starts with the same local label
        let first = ts("2026-11-01T01:15:00-04:00");
        let second = ts("2026-11-01T01:15:00-05:00");
        assert_ne!(g.start_of(first), g.start_of(second));
        assert_eq!(g.labels(g.start_of(first)), g.labels(g.start_of(second)));
    }

    #[test]
    fn half_hour_dst_step_cuts_an_hourly_interval_at_the_change() {
        let g = Grid::new(chrono_tz::Australia::Lord_Howe, 60);
        // 2026-04-05 02:00 +11:00 becomes 01:30 +10:30 (15:00 UTC on the 4th).
        let change = ts("2026-04-04T15:00:00Z");
        assert_eq!(g.start_of(change - 1), ts("2026-04-04T14:00:00Z"));
        assert_eq!(g.next(ts("2026-04-04T14:00:00Z")), change);
        assert_eq!(g.start_of(change), change);
        assert_eq!(g.start_of(change + 1799), change);
        assert_eq!(
            g.next(change),
            change + 1800,
            "01:30-02:00 +10:30 is half an hour"
        );
        assert_eq!(g.labels(change).1, 130);
        // 2026-10-04 02:00 +10:30 becomes 02:30 +11:00 (15:30 UTC on the 3rd).
        let change = ts("2026-10-03T15:30:00Z");
        assert_eq!(g.next(ts("2026-10-03T14:30:00Z")), change);
        assert_eq!(g.start_of(change + 1799), change);
        assert_eq!(
            g.next(change),
            change + 1800,
            "02:30-03:00 +11 is half an hour"
        );
        let day = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(g.intervals_in_day(day("2026-04-05")), 25);
        assert_eq!(g.intervals_in_day(day("2026-10-04")), 24);
        assert_eq!(g.intervals_in_day(day("2026-06-01")), 24);
        let q = Grid::new(chrono_tz::Australia::Lord_Howe, 15);
        assert_eq!(q.intervals_in_day(day("2026-04-05")), 98);
        assert_eq!(q.intervals_in_day(day("2026-10-04")), 94);
    }

    #[test]
    fn half_hour_offset_zone_aligns_locally() {
        let g = Grid::new(chrono_tz::Asia::Kolkata, 60);
        let t = ts("2026-05-01T10:40:00+05:30");
        assert_eq!(g.start_of(t), ts("2026-05-01T10:00:00+05:30"));
    }

    #[test]
    fn weeks_and_months() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(); // a Sunday
        assert_eq!(
            week_of(d, chrono::Weekday::Mon),
            NaiveDate::from_ymd_opt(2026, 11, 16).unwrap()
        );
        assert_eq!(week_of(d, chrono::Weekday::Sun), d);
        assert_eq!(month_of(d), NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
    }
}
