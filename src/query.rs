//! The read side of the interval and summary tables: what `cms report`, `cms export` and
//! the console's reports read (docs/reports.md).
//!
//! [`rows`] selects by table family (split, agent, VDN, trunk group), ACD, entity ids,
//! local date range and [`Period`] (intervals, or the daily, weekly and monthly
//! summaries). Each [`Row`] carries its start (UTC, and local with the offset in force,
//! so the repeated hour of a DST day is unambiguous), its status and reasons (from
//! `interval_status` for an interval; for a summary, from its count of incomplete
//! intervals and whether every day of the period is summarized), and every item of
//! `src/items.rs` in order. The derived figures supervisors ask for are [`Figure`]s: each
//! formula is written once, as data ([`figures`]), and is `None` where its denominator
//! is zero. Read-only: nothing here writes.

use crate::domain::{IntervalStatus, PeriodKind};
use crate::interval::{month_of, Grid};
use crate::items::{TableDef, AGENT, SPLIT, TKGRP, VDN};
use crate::store::raw::RawStmt;
use chrono::{Datelike, FixedOffset, NaiveDate, Offset, TimeZone};
use rusqlite::{params, Connection};
use rustc_hash::FxHashMap;
use serde::Serialize;

/// The table family of a report by its command-line name: `split`, `agent`, `vdn`,
/// `trunk` (or the table's own name, `tkgrp`).
pub fn family(name: &str) -> Option<&'static TableDef> {
    match name {
        "split" | "skill" => Some(&SPLIT),
        "agent" => Some(&AGENT),
        "vdn" => Some(&VDN),
        "trunk" | "tkgrp" => Some(&TKGRP),
        _ => None,
    }
}

/// What one row of a report covers: an interval, or a summary's day, week or month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Interval,
    Daily,
    Weekly,
    Monthly,
}

impl Period {
    /// The summary period of the `d*`, `w*` and `m*` tables; `None` for intervals.
    pub const fn summary(self) -> Option<PeriodKind> {
        match self {
            Period::Interval => None,
            Period::Daily => Some(PeriodKind::Day),
            Period::Weekly => Some(PeriodKind::Week),
            Period::Monthly => Some(PeriodKind::Month),
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Period::Interval => "interval",
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
        }
    }
}

/// What to read. Dates are the site's local dates, both inclusive; `None` is unbounded.
#[derive(Debug, Clone)]
pub struct Query {
    pub family: &'static TableDef,
    pub period: Period,
    /// The ACDs, in the order wanted (at least one).
    pub acds: Vec<u16>,
    /// Only these entities (the family's first key: split, agent, vdn, tkgrp); empty: all.
    pub ids: Vec<i64>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// One row of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub acd: u16,
    /// The entity key, in the family's `keys` order (`[agent, split]` for agents).
    pub keys: Vec<i64>,
    /// UTC seconds of the start: the interval start, or the first instant of the
    /// summary's local `row_date` (its day, week or month).
    pub start: i64,
    /// The site's UTC offset at `start`, seconds east of UTC.
    pub offset: i32,
    /// The length in minutes of an interval (short where a DST change that is not a
    /// multiple of the length cuts it); `None` for a summary.
    pub intrvl: Option<u32>,
    /// `complete` only when every interval it is made of is complete (and, for a
    /// summary, every day of its period is summarized).
    pub status: IntervalStatus,
    /// Why not complete: an interval's reasons as stored (`replay_gap,call_across_gap`);
    /// for a summary `incomplete_intervals=N` and/or `days_summarized=D/T`. Empty when
    /// complete.
    pub reasons: String,
    /// For a summary, the number of its intervals that are not complete (missing ones
    /// included); `None` for an interval.
    pub incomplete_intervals: Option<i64>,
    /// Every item of the family, in `items` order.
    pub items: Vec<i64>,
}

impl Row {
    /// The local start, with the offset in force then.
    pub fn local(&self) -> chrono::DateTime<FixedOffset> {
        let off = FixedOffset::east_opt(self.offset).expect("offset in range");
        off.timestamp_opt(self.start, 0).single().expect("in range")
    }

    /// The start in UTC, RFC 3339 (`2026-11-01T05:30:00Z`).
    pub fn start_utc(&self) -> String {
        chrono::DateTime::from_timestamp(self.start, 0)
            .expect("in range")
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    /// The local start, RFC 3339 with its offset (`2026-11-01T01:30:00-04:00`): the same
    /// local time twice on the day DST ends, told apart by the offset.
    pub fn start_local(&self) -> String {
        self.local().format("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }

    /// The local date (`YYYY-MM-DD`): the interval's, or the summary's first day.
    pub fn row_date(&self) -> String {
        self.local().format("%Y-%m-%d").to_string()
    }

    /// The value of item `name` (`None`: not an item of `family`).
    pub fn item(&self, family: &TableDef, name: &str) -> Option<i64> {
        family.index_of(name).map(|i| self.items[i])
    }

    /// The derived figures of this row ([`figures`] of `family`).
    pub fn derived(&self, family: &TableDef) -> Derived {
        Derived::of(family, |n| self.item(family, n).unwrap_or(0))
    }
}

/// A derived figure: `scale × (sum of num) / (signed sum of den)`, `None` when the
/// denominator is zero (or negative: there is nothing to divide by). Written once here;
/// `docs/reports.md` quotes [`Figure::formula`] and a test holds the two together.
#[derive(Debug, Clone, Copy)]
pub struct Figure {
    /// Column name in every format: `service_level_pct`, `asa`, `aht`, `abandon_pct`,
    /// `occupancy_pct`.
    pub name: &'static str,
    pub num: &'static [&'static str],
    /// Terms with their sign (`+1` or `-1`).
    pub den: &'static [(&'static str, i64)],
    /// 100 for a percentage, 1 for seconds.
    pub scale: i64,
}

impl Figure {
    /// The figure from item values (`item(name)`); `None` where the denominator is not
    /// positive. Sums of numerators over sums of denominators: a summary's figure is the
    /// figure of its summed items, never an average of interval figures.
    pub fn eval(&self, item: impl Fn(&str) -> i64) -> Option<f64> {
        let num: i64 = self.num.iter().map(|n| item(n)).sum();
        let den: i64 = self.den.iter().map(|(n, s)| s * item(n)).sum();
        (den > 0).then(|| self.scale as f64 * num as f64 / den as f64)
    }

    /// The formula as written in docs/reports.md: `100 × acceptable / callsoffered`,
    /// `(acdtime + holdtime + acwtime) / acdcalls`.
    pub fn formula(&self) -> String {
        let group = |s: String, n: usize| if n > 1 { format!("({s})") } else { s };
        let num = group(self.num.join(" + "), self.num.len());
        let mut den = String::new();
        for (i, (n, s)) in self.den.iter().enumerate() {
            match (i, *s < 0) {
                (0, _) => den.push_str(n),
                (_, true) => den.push_str(&format!(" − {n}")),
                (_, false) => den.push_str(&format!(" + {n}")),
            }
        }
        let den = group(den, self.den.len());
        if self.scale == 1 {
            format!("{num} / {den}")
        } else {
            format!("{} × {num} / {den}", self.scale)
        }
    }
}

const SL: &str = "service_level_pct";
const ASA: &str = "asa";
const AHT: &str = "aht";
const ABN: &str = "abandon_pct";
const OCC: &str = "occupancy_pct";

/// Occupancy: the share of staffed time not in AUX spent on ACD calls and their ACW.
const OCCUPANCY: Figure = Figure {
    name: OCC,
    num: &["i_acdtime", "i_acwtime"],
    den: &[("i_stafftime", 1), ("i_auxtime", -1)],
    scale: 100,
};

/// Average speed of answer of a skill or VDN: wait (or offer to answer) per ACD call.
const SPEED_OF_ANSWER: Figure = Figure {
    name: ASA,
    num: &["anstime"],
    den: &[("acdcalls", 1)],
    scale: 1,
};

/// Average handle time of a skill or VDN: `acdtime` excludes hold, so handle time is
/// talk + hold + ACW per ACD call.
const HANDLE_TIME: Figure = Figure {
    name: AHT,
    num: &["acdtime", "holdtime", "acwtime"],
    den: &[("acdcalls", 1)],
    scale: 1,
};

const SPLIT_FIGURES: &[Figure] = &[
    // % within service level: abandons, outflows and dequeued calls count against it.
    Figure {
        name: SL,
        num: &["acceptable"],
        den: &[("callsoffered", 1)],
        scale: 100,
    },
    SPEED_OF_ANSWER,
    HANDLE_TIME,
    Figure {
        name: ABN,
        num: &["abncalls"],
        den: &[("callsoffered", 1)],
        scale: 100,
    },
    OCCUPANCY,
];

const AGENT_FIGURES: &[Figure] = &[
    Figure {
        name: AHT,
        num: &["acdtime", "holdacdtime", "acwtime"],
        den: &[("acdcalls", 1)],
        scale: 1,
    },
    OCCUPANCY,
];

const VDN_FIGURES: &[Figure] = &[
    Figure {
        name: SL,
        num: &["acceptable"],
        den: &[("incalls", 1)],
        scale: 100,
    },
    SPEED_OF_ANSWER,
    HANDLE_TIME,
    Figure {
        name: ABN,
        num: &["abncalls"],
        den: &[("incalls", 1)],
        scale: 100,
    },
];

const TKGRP_FIGURES: &[Figure] = &[Figure {
    name: ABN,
    num: &["abncalls"],
    den: &[("incalls", 1)],
    scale: 100,
}];

/// The derived figures of a table family, in column order.
pub fn figures(family: &TableDef) -> &'static [Figure] {
    match family.name {
        "split" => SPLIT_FIGURES,
        "agent" => AGENT_FIGURES,
        "vdn" => VDN_FIGURES,
        "tkgrp" => TKGRP_FIGURES,
        other => unreachable!("no table family {other}"),
    }
}

/// The derived figures of one row: each `None` where the family has no such figure or
/// its denominator is zero. Seconds for `asa` and `aht`, percent for the `_pct`s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Derived {
    pub service_level_pct: Option<f64>,
    pub asa: Option<f64>,
    pub aht: Option<f64>,
    pub abandon_pct: Option<f64>,
    pub occupancy_pct: Option<f64>,
}

impl Derived {
    /// Every figure of `family` from item values.
    pub fn of(family: &TableDef, item: impl Fn(&str) -> i64) -> Derived {
        let mut d = Derived::default();
        for f in figures(family) {
            *d.slot(f.name) = f.eval(&item);
        }
        d
    }

    fn slot(&mut self, name: &str) -> &mut Option<f64> {
        match name {
            SL => &mut self.service_level_pct,
            ASA => &mut self.asa,
            AHT => &mut self.aht,
            ABN => &mut self.abandon_pct,
            OCC => &mut self.occupancy_pct,
            other => unreachable!("no figure {other}"),
        }
    }

    /// The figure named `name` (a [`Figure::name`]).
    pub fn get(&self, name: &str) -> Option<f64> {
        let mut d = *self;
        *d.slot(name)
    }
}

/// The rows `q` selects, ordered by ACD (as given), start, then entity key.
///
/// # Errors
/// A database error.
pub fn rows(conn: &Connection, grid: &Grid, q: &Query) -> rusqlite::Result<Vec<Row>> {
    let mut out = vec![];
    for &acd in &q.acds {
        match q.period.summary() {
            None => interval_rows(conn, grid, q, acd, &mut out)?,
            Some(p) => summary_rows(conn, grid, q, p, acd, &mut out)?,
        }
    }
    Ok(out)
}

/// The UTC offset in force at `t`.
fn offset_at(grid: &Grid, t: i64) -> i32 {
    grid.local(t).offset().fix().local_minus_utc()
}

/// `AND {col} IN (?k, ...)` for `n` ids bound from parameter `first` on; empty for none.
fn ids_clause(col: &str, n: usize, first: usize) -> String {
    if n == 0 {
        return String::new();
    }
    let ps: Vec<String> = (first..first + n).map(|i| format!("?{i}")).collect();
    format!(" AND {col} IN ({})", ps.join(", "))
}

fn interval_rows(
    conn: &Connection,
    grid: &Grid,
    q: &Query,
    acd: u16,
    out: &mut Vec<Row>,
) -> rusqlite::Result<()> {
    let t = q.family;
    let lo = q.from.map(|d| grid.day_start(d)).unwrap_or(i64::MIN);
    let hi =
        q.to.and_then(|d| d.succ_opt())
            .map(|d| grid.day_start(d))
            .unwrap_or(i64::MAX);
    // The status of every interval in range first: a month is a few thousand.
    let mut status: FxHashMap<i64, (IntervalStatus, String)> = FxHashMap::default();
    let mut st = conn.prepare_cached(
        "SELECT istart, status, reasons FROM interval_status
         WHERE acd = ?1 AND istart >= ?2 AND istart < ?3",
    )?;
    let mut r = st.query(params![acd, lo, hi])?;
    while let Some(row) = r.next()? {
        status.insert(row.get(0)?, (row.get(1)?, row.get(2)?));
    }
    let keys = t.keys.join(", ");
    let items: Vec<&str> = t.items.iter().map(|(n, _)| *n).collect();
    let sql = format!(
        "SELECT {keys}, istart, intrvl, {} FROM h{} WHERE acd = ?1 AND istart >= ?2 AND istart < ?3{}
         ORDER BY istart, {keys}",
        items.join(", "),
        t.name,
        ids_clause(t.keys[0], q.ids.len(), 4),
    );
    let mut stmt = RawStmt::new(conn, &sql)?;
    stmt.bind_all(&[acd as i64, lo, hi])?;
    for (i, id) in q.ids.iter().enumerate() {
        stmt.bind_i64(4 + i, *id)?;
    }
    let nk = t.keys.len();
    let mut buf = vec![0i64; stmt.columns()];
    let mut offsets: FxHashMap<i64, i32> = FxHashMap::default();
    while stmt.step()? {
        stmt.read(&mut buf);
        let start = buf[nk];
        let offset = *offsets
            .entry(start)
            .or_insert_with(|| offset_at(grid, start));
        let (st, reasons) = match status.get(&start) {
            Some((s, r)) => (*s, r.clone()),
            // Rows are written with their status in one transaction; rows without one
            // are not known to be exact.
            None => (IntervalStatus::Incomplete, "no_status".to_owned()),
        };
        out.push(Row {
            acd,
            keys: buf[..nk].to_vec(),
            start,
            offset,
            intrvl: Some(buf[nk + 1] as u32),
            status: st,
            reasons,
            incomplete_intervals: None,
            items: buf[nk + 2..].to_vec(),
        });
    }
    Ok(())
}

/// The first day of the period after the one starting on `first`.
fn period_end(p: PeriodKind, first: NaiveDate) -> NaiveDate {
    match p {
        PeriodKind::Day => first.succ_opt().expect("date in range"),
        PeriodKind::Week => first + chrono::Duration::days(7),
        PeriodKind::Month => {
            let (y, m) = if first.month() == 12 {
                (first.year() + 1, 1)
            } else {
                (first.year(), first.month() + 1)
            };
            NaiveDate::from_ymd_opt(y, m, 1).expect("valid month")
        }
    }
}

fn summary_rows(
    conn: &Connection,
    grid: &Grid,
    q: &Query,
    p: PeriodKind,
    acd: u16,
    out: &mut Vec<Row>,
) -> rusqlite::Result<()> {
    let t = q.family;
    let fmt = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    // A period overlaps [from, to] when it starts on or before `to` and ends after
    // `from`: a week starting after `from - 7 days`, a month from `from`'s month on.
    let lo = match (q.from, p) {
        (None, _) => "0000-00-00".to_owned(),
        (Some(d), PeriodKind::Day) => fmt(d),
        (Some(d), PeriodKind::Week) => fmt(d - chrono::Duration::days(6)),
        (Some(d), PeriodKind::Month) => fmt(month_of(d)),
    };
    let hi = q.to.map(fmt).unwrap_or_else(|| "9999-99-99".to_owned());
    let keys = t.keys.join(", ");
    let items: Vec<&str> = t.items.iter().map(|(n, _)| *n).collect();
    let sql = format!(
        "SELECT row_date, incomplete, {keys}, {} FROM {} WHERE acd = ?1 AND row_date >= ?2 AND row_date <= ?3{}
         ORDER BY row_date, {keys}",
        items.join(", "),
        p.table(t.name),
        ids_clause(t.keys[0], q.ids.len(), 4),
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(acd), Box::new(lo), Box::new(hi)];
    for id in &q.ids {
        args.push(Box::new(*id));
    }
    let mut days = conn.prepare_cached(
        "SELECT COUNT(*) FROM summary_state
         WHERE acd = ?1 AND period = ?2 AND row_date >= ?3 AND row_date < ?4",
    )?;
    // Per period start: its first instant, offset, and days summarized of all.
    let mut periods: FxHashMap<String, (i64, i32, i64, i64)> = FxHashMap::default();
    let mut r = stmt.query(rusqlite::params_from_iter(args.iter()))?;
    let nk = t.keys.len();
    while let Some(row) = r.next()? {
        let date: String = row.get(0)?;
        let incomplete: i64 = row.get(1)?;
        let (start, offset, built, all) = match periods.get(&date) {
            Some(x) => *x,
            None => {
                let first = NaiveDate::parse_from_str(&date, "%Y-%m-%d").map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        0,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })?;
                let end = period_end(p, first);
                let built: i64 =
                    days.query_row(params![acd, PeriodKind::Day, date, fmt(end)], |r| r.get(0))?;
                let start = grid.day_start(first);
                let x = (
                    start,
                    offset_at(grid, start),
                    built,
                    (end - first).num_days(),
                );
                periods.insert(date.clone(), x);
                x
            }
        };
        let mut why = vec![];
        if incomplete > 0 {
            why.push(format!("incomplete_intervals={incomplete}"));
        }
        if built < all {
            why.push(format!("days_summarized={built}/{all}"));
        }
        let mut vals = Vec::with_capacity(nk + t.n_items());
        for i in 0..nk + t.n_items() {
            vals.push(row.get::<_, i64>(2 + i)?);
        }
        out.push(Row {
            acd,
            keys: vals[..nk].to_vec(),
            start,
            offset,
            intrvl: None,
            status: IntervalStatus::of(why.is_empty()),
            reasons: why.join(","),
            incomplete_intervals: Some(incomplete),
            items: vals[nk..].to_vec(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::items::TABLES;

    #[test]
    fn formulas_read_as_documented() {
        let f =
            |fam: &TableDef, n: &str| figures(fam).iter().find(|f| f.name == n).unwrap().formula();
        assert_eq!(f(&SPLIT, SL), "100 × acceptable / callsoffered");
        assert_eq!(f(&SPLIT, AHT), "(acdtime + holdtime + acwtime) / acdcalls");
        assert_eq!(
            f(&AGENT, OCC),
            "100 × (i_acdtime + i_acwtime) / (i_stafftime − i_auxtime)"
        );
        let doc = include_str!("../docs/reports.md");
        for t in TABLES {
            for fig in figures(t) {
                for n in fig.num.iter().chain(fig.den.iter().map(|(n, _)| n)) {
                    assert!(
                        t.index_of(n).is_some(),
                        "{}: {} has no item {n}",
                        t.name,
                        fig.name
                    );
                }
                let line = format!("| `{}` | `{}` |", fig.name, fig.formula());
                assert!(doc.contains(&line), "docs/reports.md lacks {line}");
            }
        }
    }

    #[test]
    fn figures_are_none_without_a_denominator() {
        let items = |pairs: &'static [(&'static str, i64)]| {
            move |n: &str| pairs.iter().find(|p| p.0 == n).map(|p| p.1).unwrap_or(0)
        };
        let d = Derived::of(
            &SPLIT,
            items(&[
                ("callsoffered", 8),
                ("acceptable", 6),
                ("abncalls", 2),
                ("acdcalls", 0),
                ("i_stafftime", 900),
                ("i_auxtime", 300),
                ("i_acdtime", 240),
                ("i_acwtime", 60),
            ]),
        );
        assert_eq!(d.service_level_pct, Some(75.0));
        assert_eq!(d.abandon_pct, Some(25.0));
        assert_eq!(d.asa, None);
        assert_eq!(d.aht, None);
        assert_eq!(d.occupancy_pct, Some(50.0));
        let t = Derived::of(&TKGRP, items(&[("incalls", 4), ("abncalls", 1)]));
        assert_eq!(t.abandon_pct, Some(25.0));
        assert_eq!(t.service_level_pct, None);
        assert_eq!(Derived::of(&AGENT, items(&[])), Derived::default());
    }

    #[test]
    fn rows_carry_status_offsets_and_summary_coverage() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("q.db")).unwrap();
        let grid = Grid::new(chrono_tz::Europe::Berlin, 15);
        // 2026-10-25: 02:00-03:00 local is repeated; 00:30 UTC is 02:30+02:00, 01:30 UTC is
        // 02:30+01:00.
        let a = 1_792_888_200; // 2026-10-25T00:30:00Z
        let b = a + 3600;
        for (istart, status, reasons, calls) in
            [(a, "complete", "", 3), (b, "incomplete", "replay_gap", 5)]
        {
            let (d, st) = grid.labels(istart);
            store
                .conn
                .execute(
                    "INSERT INTO interval_status (acd, istart, intrvl, row_date, starttime, status,
                       reasons, source, row_count, checksum, updated_at)
                     VALUES (1, ?1, 15, ?2, ?3, ?4, ?5, 'collected', 2, '', 0)",
                    params![istart, d, st, status, reasons],
                )
                .unwrap();
            for split in [7, 9] {
                store
                    .conn
                    .execute(
                        "INSERT INTO hsplit (acd, split, istart, row_date, starttime, intrvl,
                           callsoffered, acceptable) VALUES (1, ?1, ?2, ?3, ?4, 15, ?5, 2)",
                        params![split, istart, d, st, calls],
                    )
                    .unwrap();
            }
        }
        store
            .conn
            .execute_batch(
                "INSERT INTO dsplit (acd, split, row_date, callsoffered, incomplete)
                   VALUES (1, 7, '2026-10-25', 8, 1), (1, 7, '2026-10-26', 4, 0);
                 INSERT INTO wsplit (acd, split, row_date, callsoffered, incomplete)
                   VALUES (1, 7, '2026-10-19', 8, 1), (1, 7, '2026-10-26', 4, 0);
                 INSERT INTO summary_state (acd, period, row_date, built_at)
                   VALUES (1, 'day', '2026-10-25', 0), (1, 'day', '2026-10-26', 0);",
            )
            .unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 10, 25).unwrap();
        let mut q = Query {
            family: &SPLIT,
            period: Period::Interval,
            acds: vec![1],
            ids: vec![7],
            from: Some(day),
            to: Some(day),
        };
        let rows = rows(&store.conn, &grid, &q).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].start_local(), "2026-10-25T02:30:00+02:00");
        assert_eq!(rows[1].start_local(), "2026-10-25T02:30:00+01:00");
        assert_eq!(rows[0].start_utc(), "2026-10-25T00:30:00Z");
        assert_eq!(rows[0].status, IntervalStatus::Complete);
        assert_eq!(
            (rows[1].status, rows[1].reasons.as_str()),
            (IntervalStatus::Incomplete, "replay_gap")
        );
        assert_eq!(rows[1].item(&SPLIT, "callsoffered"), Some(5));
        assert_eq!(rows[1].derived(&SPLIT).service_level_pct, Some(40.0));
        assert!(rows.iter().all(|r| r.keys == [7]));

        q.period = Period::Daily;
        q.to = day.succ_opt();
        q.ids.clear();
        let d = super::rows(&store.conn, &grid, &q).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].reasons, "incomplete_intervals=1");
        assert_eq!(d[1].status, IntervalStatus::Complete);
        assert_eq!(d[1].start_local(), "2026-10-26T00:00:00+01:00");

        q.period = Period::Weekly;
        let w = super::rows(&store.conn, &grid, &q).unwrap();
        assert_eq!(w.len(), 2, "both weeks overlap the 25th and 26th");
        assert_eq!(w[0].reasons, "incomplete_intervals=1,days_summarized=1/7");
        assert_eq!(w[1].reasons, "days_summarized=1/7");
        assert_eq!(w[1].status, IntervalStatus::Incomplete);
    }
}
