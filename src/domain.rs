//! The domain values that the database, the JSON output and the backup file spell as
//! words: interval status, the reasons an interval is incomplete, the kinds of gap, link
//! states and summary periods (issue #12 item 2).
//!
//! Each is an enum whose names are the strings stored and printed today, exactly: it
//! converts to and from SQLite text (`ToSql` / `FromSql`), serde strings, `Display` and
//! `FromStr`, all through one table of names per enum (the `names!` macro), so the
//! database and the JSON stay byte-for-byte what they were. A name read from a database
//! or a document that is not one of them is an [`UnknownName`] error naming what was
//! read and what was expected; nothing panics on it.
//!
//! Not here: what the values mean for the merge (that is `merge`) or how an interval
//! becomes incomplete (that is `agg`); the comma-separated `reasons` column stays text,
//! because a backup from a newer release may carry a reason this one does not know, and
//! a restore copies it as it is.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// A word that is not one of an enum's names (from a database, a JSON document or an
/// argument).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown {what} {found:?} (expected {expected})")]
pub struct UnknownName {
    /// What was being read: `interval status`, `link state`, ...
    pub what: &'static str,
    /// The word read.
    pub found: String,
    /// The names it may be, comma-separated.
    pub expected: String,
}

/// Defines a string-named enum: the variants, their names, and every conversion through
/// those names (`as_str`, `ALL`, `Display`, `FromStr`, serde, `ToSql`, `FromSql`).
macro_rules! names {
    (
        $(#[$meta:meta])*
        $what:literal, pub enum $name:ident {
            $( $(#[$vmeta:meta])* $var:ident = $word:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $var, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];

            /// The name stored in the database and printed in reports and JSON.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$var => $word, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `pad`, so a width (`{:<10}` in `cms gaps`) lays the name out as a `&str`.
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $( $word => Ok($name::$var), )+
                    _ => Err(UnknownName {
                        what: $what,
                        found: s.to_owned(),
                        expected: [$($word),+].join(", "),
                    }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                v.as_str()?
                    .parse()
                    .map_err(|e: UnknownName| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

names! {
    /// Whether an interval holds exactly what the switch's stream implies
    /// (`interval_status.status`; DOMAIN.md, promise 1).
    "interval status", pub enum IntervalStatus {
        Complete = "complete",
        Incomplete = "incomplete",
    }
}

impl IntervalStatus {
    /// `Complete` when `complete`, else `Incomplete`.
    pub const fn of(complete: bool) -> IntervalStatus {
        if complete {
            IntervalStatus::Complete
        } else {
            IntervalStatus::Incomplete
        }
    }

    pub const fn is_complete(self) -> bool {
        matches!(self, IntervalStatus::Complete)
    }
}

names! {
    /// Why an interval is incomplete (docs/data-items.md, "Interval status"). Stored
    /// comma-separated in `interval_status.reasons`.
    "incompleteness reason", pub enum Reason {
        /// The collector started with no history inside this interval.
        CollectionStart = "collection_start",
        /// Events of this interval were lost beyond the switch's replay buffer.
        ReplayGap = "replay_gap",
        /// The switch restarted and what was missed could not be replayed.
        EpochChange = "epoch_change",
        /// A call in progress across a gap or a clock change was booked here.
        CallAcrossGap = "call_across_gap",
        /// The switch's clock was set during this interval.
        ClockChange = "clock_change",
        /// An event referred to a call or agent not tracked, or a flow outside the model.
        UnknownEntity = "unknown_entity",
    }
}

impl Reason {
    /// The `interval_status.reasons` text of a set of reasons: their names,
    /// comma-separated, in the order given (empty for a complete interval).
    pub fn join<S: AsRef<str>>(reasons: impl IntoIterator<Item = S>) -> String {
        let mut out = String::new();
        for r in reasons {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(r.as_ref());
        }
        out
    }
}

impl AsRef<str> for Reason {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

names! {
    /// What `cms gaps` says about a run of intervals.
    "gap kind", pub enum GapKind {
        /// No status row: nothing was collected or restored.
        Missing = "missing",
        /// Stored, but not exact (with its reasons).
        Incomplete = "incomplete",
        /// Complete, restored from another server (with the source).
        Restored = "restored",
        /// In a restore's report: the source kept only the day's summary (its intrahour
        /// retention dropped the intervals).
        SummaryOnly = "summary_only",
    }
}

names! {
    /// Where a collector's link to the switch stands (`link_state.state`, `cms status`).
    "link state", pub enum LinkState {
        /// No `link_state` row: no collector has tried this ACD on this database.
        NeverConnected = "never connected",
        /// Opening the TCP connection.
        Connecting = "connecting",
        /// Connected, exchanging the opening and the pump-up.
        Handshake = "handshake",
        /// Live data flowing.
        DataTransfer = "data_transfer",
        /// Not connected; retrying with backoff.
        Down = "down",
        /// Dropped for bad input from the switch; retrying.
        DownBadInput = "down (bad input)",
        /// The collector stopped.
        Stopped = "stopped",
    }
}

names! {
    /// A summary period (`summary_state.period`), each with its tables (`d*`, `w*`, `m*`).
    "summary period", pub enum PeriodKind {
        Day = "day",
        Week = "week",
        Month = "month",
    }
}

impl PeriodKind {
    /// The first letter of the period's summary tables.
    pub const fn prefix(self) -> &'static str {
        match self {
            PeriodKind::Day => "d",
            PeriodKind::Week => "w",
            PeriodKind::Month => "m",
        }
    }

    /// The summary table of this period for the table family `family` (`split` ->
    /// `dsplit`).
    pub fn table(self, family: &str) -> String {
        format!("{}{family}", self.prefix())
    }

    /// The period and the table family of a summary table's name (`wagent` -> week,
    /// `agent`); `None` for a name that starts with no period's letter or has nothing
    /// after it.
    pub fn of_table(name: &str) -> Option<(PeriodKind, &str)> {
        PeriodKind::ALL.iter().find_map(|&p| {
            name.strip_prefix(p.prefix())
                .filter(|f| !f.is_empty())
                .map(|f| (p, f))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// Every variant of `T` against the literal it must stay: through SQLite (written as
    /// a parameter, read as text and back as `T`), serde JSON, `Display` and `FromStr`.
    fn round_trips<T>(want: &[(T, &str)])
    where
        T: Copy
            + PartialEq
            + fmt::Debug
            + fmt::Display
            + FromStr<Err = UnknownName>
            + ToSql
            + FromSql
            + serde::Serialize
            + serde::de::DeserializeOwned,
    {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (v TEXT)").unwrap();
        for &(v, word) in want {
            c.execute("DELETE FROM t", []).unwrap();
            c.execute("INSERT INTO t (v) VALUES (?1)", [&v]).unwrap();
            let text: String = c.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
            assert_eq!(text, word, "{v:?} in the database");
            let back: T = c.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
            assert_eq!(back, v);
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{word}\""), "{v:?} in JSON");
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
            assert_eq!(v.to_string(), word);
            assert_eq!(word.parse::<T>().unwrap(), v);
        }
        // A word that is none of the names: a clear error from each path, not a panic.
        c.execute("DELETE FROM t", []).unwrap();
        c.execute("INSERT INTO t (v) VALUES ('bogus')", []).unwrap();
        let err = c
            .query_row("SELECT v FROM t", [], |r| r.get::<_, T>(0))
            .unwrap_err()
            .to_string();
        let expected = want.iter().map(|w| w.1).collect::<Vec<_>>().join(", ");
        assert!(
            err.contains("\"bogus\"") && err.contains(&expected),
            "{err}"
        );
        let err = serde_json::from_str::<T>("\"bogus\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"bogus\"") && err.contains(&expected),
            "{err}"
        );
        let err = "bogus".parse::<T>().unwrap_err();
        assert_eq!(err.found, "bogus");
        assert_eq!(err.expected, expected);
        // A number where a name belongs is an error too.
        c.execute("DELETE FROM t", []).unwrap();
        c.execute("INSERT INTO t (v) VALUES (7)", []).unwrap();
        assert!(c
            .query_row("SELECT v FROM t", [], |r| r.get::<_, T>(0))
            .is_err());
    }

    #[test]
    fn interval_status_names_are_todays_strings() {
        round_trips(&[
            (IntervalStatus::Complete, "complete"),
            (IntervalStatus::Incomplete, "incomplete"),
        ]);
        assert_eq!(IntervalStatus::ALL.len(), 2);
        assert_eq!(IntervalStatus::of(true), IntervalStatus::Complete);
        assert_eq!(IntervalStatus::of(false), IntervalStatus::Incomplete);
        assert!(IntervalStatus::Complete.is_complete());
        assert!(!IntervalStatus::Incomplete.is_complete());
        let e = "Complete"
            .parse::<IntervalStatus>()
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "unknown interval status \"Complete\" (expected complete, incomplete)"
        );
    }

    #[test]
    fn reason_names_are_todays_strings() {
        round_trips(&[
            (Reason::CollectionStart, "collection_start"),
            (Reason::ReplayGap, "replay_gap"),
            (Reason::EpochChange, "epoch_change"),
            (Reason::CallAcrossGap, "call_across_gap"),
            (Reason::ClockChange, "clock_change"),
            (Reason::UnknownEntity, "unknown_entity"),
        ]);
        assert_eq!(Reason::ALL.len(), 6);
        assert_eq!(
            Reason::join([Reason::CallAcrossGap, Reason::ClockChange]),
            "call_across_gap,clock_change"
        );
        assert_eq!(Reason::join(["replay_gap"]), "replay_gap");
        assert_eq!(Reason::join(Vec::<Reason>::new()), "");
    }

    #[test]
    fn gap_kind_names_are_todays_strings() {
        round_trips(&[
            (GapKind::Missing, "missing"),
            (GapKind::Incomplete, "incomplete"),
            (GapKind::Restored, "restored"),
            (GapKind::SummaryOnly, "summary_only"),
        ]);
        assert_eq!(GapKind::ALL.len(), 4);
    }

    #[test]
    fn link_state_names_are_todays_strings() {
        round_trips(&[
            (LinkState::NeverConnected, "never connected"),
            (LinkState::Connecting, "connecting"),
            (LinkState::Handshake, "handshake"),
            (LinkState::DataTransfer, "data_transfer"),
            (LinkState::Down, "down"),
            (LinkState::DownBadInput, "down (bad input)"),
            (LinkState::Stopped, "stopped"),
        ]);
        assert_eq!(LinkState::ALL.len(), 7);
    }

    #[test]
    fn period_names_and_tables_are_todays_strings() {
        round_trips(&[
            (PeriodKind::Day, "day"),
            (PeriodKind::Week, "week"),
            (PeriodKind::Month, "month"),
        ]);
        assert_eq!(PeriodKind::ALL.len(), 3);
        for (p, table) in [
            (PeriodKind::Day, "dsplit"),
            (PeriodKind::Week, "wsplit"),
            (PeriodKind::Month, "msplit"),
        ] {
            assert_eq!(p.table("split"), table);
            assert_eq!(PeriodKind::of_table(table), Some((p, "split")));
        }
        assert_eq!(
            PeriodKind::of_table("magent"),
            Some((PeriodKind::Month, "agent"))
        );
        assert_eq!(PeriodKind::of_table("hsplit"), None);
        assert_eq!(PeriodKind::of_table("d"), None);
        assert_eq!(PeriodKind::of_table(""), None);
    }
}
