//! The header properties that `cms backup` writes and `cms restore` reads
//! (proto/backup-format.md, "Header"), each with its key, its encoding and its parse side
//! by side, so the writer and the reader cannot drift apart. Properties are free text in
//! the format: a reader that does not know a key ignores it, and what a value that does
//! not parse means is said here for each.

use super::Header;
use chrono::NaiveDate;
use std::collections::BTreeMap;
use thiserror::Error;

/// The date format of `summary_days` (and of every `row_date`).
const DATE: &str = "%Y-%m-%d";

/// A header property value that is not what its key says it holds.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("header property {key}: {value:?} is not {expected}")]
pub struct PropertyError {
    pub key: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl Header {
    /// The value of the header property `key`, if the file has it.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `summary_days`: the first and the last day of the daily summaries in the file. A
/// restore whose target is complete on every one of those days skips the summary blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryDays {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

impl SummaryDays {
    pub const KEY: &'static str = "summary_days";

    /// The property value: `YYYY-MM-DD..YYYY-MM-DD`, or empty for a file with no daily
    /// summaries (`None`).
    pub fn encode(days: Option<SummaryDays>) -> String {
        days.map_or_else(String::new, |d| {
            format!("{}..{}", d.first.format(DATE), d.last.format(DATE))
        })
    }

    /// Parses a value [`SummaryDays::encode`] wrote: `None` for the empty value (no daily
    /// summaries in the file). A first day after the last is an empty range (no days).
    ///
    /// # Errors
    /// Anything else that is not two dates joined by `..` (the restore then reads the
    /// summary blocks, as for a file without the property).
    pub fn parse(v: &str) -> Result<Option<SummaryDays>, PropertyError> {
        if v.is_empty() {
            return Ok(None);
        }
        let bad = || PropertyError {
            key: Self::KEY,
            value: v.to_owned(),
            expected: "YYYY-MM-DD..YYYY-MM-DD",
        };
        let (a, b) = v.split_once("..").ok_or_else(bad)?;
        let date = |s: &str| NaiveDate::parse_from_str(s, DATE).map_err(|_| bad());
        Ok(Some(SummaryDays {
            first: date(a)?,
            last: date(b)?,
        }))
    }

    /// Every day from the first to the last (none if the first is after the last).
    pub fn days(self) -> impl Iterator<Item = NaiveDate> {
        self.first.iter_days().take_while(move |d| *d <= self.last)
    }
}

/// `open_intervals`: per ACD, the start (UTC seconds) of the interval the source was
/// collecting when it took the backup. A restore onto a server that is not collecting
/// writes no summary rows for a day that was not over on the source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenIntervals(pub BTreeMap<u16, i64>);

impl OpenIntervals {
    pub const KEY: &'static str = "open_intervals";

    /// The property value: `ACD:ISTART` pairs, comma-separated, in ACD order; empty if
    /// none.
    pub fn encode(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(a, t)| format!("{a}:{t}")).collect();
        pairs.join(",")
    }

    /// Parses a value [`OpenIntervals::encode`] wrote. Pairs that do not parse are
    /// ignored: the days of their ACD are then taken as over on the source, as for a
    /// file without the property.
    pub fn parse(v: &str) -> OpenIntervals {
        OpenIntervals(
            v.split(',')
                .filter_map(|p| {
                    let (a, t) = p.split_once(':')?;
                    Some((a.trim().parse().ok()?, t.trim().parse().ok()?))
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, DATE).unwrap()
    }

    #[test]
    fn summary_days_is_two_dates_joined_by_two_dots() {
        let d = SummaryDays {
            first: day("2024-03-10"),
            last: day("2024-03-12"),
        };
        assert_eq!(SummaryDays::encode(Some(d)), "2024-03-10..2024-03-12");
        assert_eq!(SummaryDays::parse("2024-03-10..2024-03-12"), Ok(Some(d)));
        let days: Vec<NaiveDate> = d.days().collect();
        assert_eq!(
            days,
            [day("2024-03-10"), day("2024-03-11"), day("2024-03-12")]
        );
        let one = SummaryDays {
            first: day("2024-02-29"),
            last: day("2024-02-29"),
        };
        assert_eq!(
            SummaryDays::parse(&SummaryDays::encode(Some(one))),
            Ok(Some(one))
        );
        assert_eq!(one.days().count(), 1);
        assert_eq!(SummaryDays::encode(None), "");
        assert_eq!(SummaryDays::parse(""), Ok(None));
        let backwards = SummaryDays::parse("2024-03-12..2024-03-10")
            .unwrap()
            .unwrap();
        assert_eq!(backwards.days().count(), 0);
        for bad in [
            "2024-03-10",
            "2024-03-10..",
            "..2024-03-10",
            "2024-03-10..2024-03-11..2024-03-12",
            "2024-13-01..2024-13-02",
            "x..y",
        ] {
            let e = SummaryDays::parse(bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("header property summary_days: {bad:?} is not YYYY-MM-DD..YYYY-MM-DD")
            );
        }
    }

    #[test]
    fn open_intervals_are_acd_colon_istart_pairs() {
        let o = OpenIntervals(BTreeMap::from([(2, 1_700_000_900), (1, 1_700_000_000)]));
        assert_eq!(o.encode(), "1:1700000000,2:1700000900");
        assert_eq!(OpenIntervals::parse(&o.encode()), o);
        assert_eq!(OpenIntervals::default().encode(), "");
        assert_eq!(OpenIntervals::parse(""), OpenIntervals::default());
        // Pairs that do not parse are left out; the others stand.
        assert_eq!(
            OpenIntervals::parse("1:100, x:5,2:y,3,70000:1, 4 : 400"),
            OpenIntervals(BTreeMap::from([(1, 100), (4, 400)]))
        );
    }

    #[test]
    fn a_header_property_is_found_by_its_key() {
        let h = Header {
            schema_version: 2,
            created_at: 0,
            server_id: "a".into(),
            acds: vec![1],
            range_start: 0,
            range_end: 0,
            categories: 1,
            properties: vec![
                (SummaryDays::KEY.into(), "2024-03-10..2024-03-10".into()),
                (OpenIntervals::KEY.into(), "1:900".into()),
            ],
        };
        assert_eq!(h.property("summary_days"), Some("2024-03-10..2024-03-10"));
        assert_eq!(h.property("open_intervals"), Some("1:900"));
        assert_eq!(h.property("since"), None);
    }
}
