//! Daily, weekly and monthly summaries built from the interval rows, and retention.
//!
//! A summary is always rebuilt whole from what it is made of (a day from its intervals, a
//! week or month from its days), so building twice, or after a restore changed some
//! intervals, gives the same rows. `Sum` items add, `Max` items take the largest value,
//! `incomplete` counts the intervals of the period that are not complete (missing ones
//! included).

use super::raw::RawStmt;
use super::{sql_err, Result, Store, StoreError};
use crate::config::Retention;
use crate::domain::{IntervalStatus, PeriodKind};
use crate::interval::{month_of, week_of, Grid};
use crate::items::{Combine, TableDef, TABLES};
use chrono::{Datelike, NaiveDate, Weekday};
use rusqlite::{params, OptionalExtension, Transaction};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use thiserror::Error;

/// What building a summary can fail with inside its transaction: the database, or a sum
/// that does not fit 64 bits ([`StoreError::SumOverflow`] once it names the database).
#[derive(Debug, Error)]
pub enum SumError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    /// A `Sum` item of a row of table family `table` overflows 64 bits, as SQL's `SUM`
    /// refuses to.
    #[error("{table}: a summary sum overflows 64 bits")]
    Overflow { table: &'static str },
}

impl SumError {
    /// The store's error for the database at `path`.
    fn at(self, path: &Path) -> StoreError {
        match self {
            SumError::Sql(e) => sql_err(path, e),
            SumError::Overflow { table } => StoreError::SumOverflow {
                path: path.to_owned(),
                table,
            },
        }
    }
}

fn item_list(t: &TableDef) -> String {
    t.items
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rebuilds the daily rows of `date` and the weekly and monthly rows containing it.
///
/// # Errors
/// Any database error (the transaction is rolled back).
pub fn build_day(
    store: &mut Store,
    acd: u16,
    grid: &Grid,
    week_start: Weekday,
    date: NaiveDate,
) -> Result<()> {
    build_days(
        store,
        grid,
        week_start,
        BTreeMap::new(),
        &BTreeSet::from([(acd, date)]),
    )
}

/// One day's daily rows being summed in memory: per table, the combined items of every
/// entity key seen, and which intervals (start, content checksum) went in.
#[derive(Debug)]
pub struct DaySums {
    /// Per `TABLES` entry.
    tables: Vec<FxHashMap<[i64; 2], Vec<i64>>>,
    included: BTreeMap<i64, String>,
}

impl Default for DaySums {
    fn default() -> Self {
        DaySums {
            tables: vec![FxHashMap::default(); TABLES.len()],
            included: BTreeMap::new(),
        }
    }
}

impl DaySums {
    fn clear(&mut self) {
        self.tables.iter_mut().for_each(FxHashMap::clear);
        self.included.clear();
    }

    /// Adds a row `keys..., items...` of table `TABLES[ti]`.
    fn add(&mut self, ti: usize, keys_items: &[i64]) -> std::result::Result<(), SumError> {
        combine_into(&mut self.tables[ti], TABLES[ti], keys_items)
    }

    /// Adds one interval's rows as a restore wrote them: per table in `TABLES` order,
    /// rows of `acd, keys..., istart, items...`; `checksum` is the content checksum its
    /// status row got.
    pub fn add_interval(
        &mut self,
        istart: i64,
        checksum: String,
        tables: &[&[Vec<i64>]],
    ) -> std::result::Result<(), SumError> {
        for (ti, rows) in tables.iter().enumerate() {
            let nk = TABLES[ti].keys.len();
            let mut buf = Vec::new();
            for r in rows.iter() {
                buf.clear();
                buf.extend_from_slice(&r[1..1 + nk]);
                buf.extend_from_slice(&r[2 + nk..]);
                self.add(ti, &buf)?;
            }
        }
        self.included.insert(istart, checksum);
        Ok(())
    }

    /// Adds the stored rows of interval `istart`.
    fn add_stored(
        &mut self,
        reads: &mut [RawStmt<'_>],
        acd: u16,
        istart: i64,
    ) -> std::result::Result<(), SumError> {
        let mut flat = Vec::new();
        for (ti, q) in reads.iter_mut().enumerate() {
            flat.clear();
            q.append_rows(&[acd as i64, istart], &mut flat)?;
            let n = TABLES[ti].keys.len() + TABLES[ti].items.len();
            for r in flat.chunks_exact(n) {
                self.add(ti, r)?;
            }
        }
        Ok(())
    }
}

/// Combines a row `keys..., items..., extra...` of table family `t` into `acc`, keyed by
/// its keys: items as their [`Combine`] says, trailing extra values (a summary's
/// `incomplete`) summed. Sums that overflow 64 bits are an error, as in SQL's `SUM`.
fn combine_into(
    acc: &mut FxHashMap<[i64; 2], Vec<i64>>,
    t: &TableDef,
    keys_items: &[i64],
) -> std::result::Result<(), SumError> {
    let nk = t.keys.len();
    let mut key = [0i64; 2];
    key[..nk].copy_from_slice(&keys_items[..nk]);
    let vals = &keys_items[nk..];
    let Some(a) = acc.get_mut(&key) else {
        acc.insert(key, vals.to_vec());
        return Ok(());
    };
    for (i, (a, v)) in a.iter_mut().zip(vals).enumerate() {
        *a = match t.items.get(i).map_or(Combine::Sum, |x| x.1) {
            Combine::Sum => a
                .checked_add(*v)
                .ok_or(SumError::Overflow { table: t.name })?,
            Combine::Max => (*a).max(*v),
        };
    }
    Ok(())
}

/// Replaces the rows of `period`'s summary table of `t` for `acd` and `row_date` with
/// `acc`'s: each value `items...` followed by `incomplete` unless `incomplete` is given.
fn write_rows(
    tx: &rusqlite::Connection,
    period: PeriodKind,
    t: &TableDef,
    acd: u16,
    row_date: &str,
    acc: &FxHashMap<[i64; 2], Vec<i64>>,
    incomplete: Option<i64>,
) -> rusqlite::Result<()> {
    tx.execute(
        &format!(
            "DELETE FROM {} WHERE acd = ?1 AND row_date = ?2",
            period.table(t.name)
        ),
        params![acd, row_date],
    )?;
    let nk = t.keys.len();
    let mut ins = RawStmt::new(
        tx,
        &format!(
            "INSERT INTO {table} (acd, {keys}, row_date, {items}, incomplete)
             VALUES (?1, {kmarks}, ?{dpos}, {marks})",
            table = period.table(t.name),
            keys = t.keys.join(", "),
            items = item_list(t),
            kmarks = (0..nk)
                .map(|i| format!("?{}", i + 2))
                .collect::<Vec<_>>()
                .join(", "),
            dpos = nk + 2,
            marks = vec!["?"; t.items.len() + 1].join(", "),
        ),
    )?;
    ins.bind_i64(1, acd as i64)?;
    ins.bind_text(nk + 2, row_date)?;
    if let Some(n) = incomplete {
        ins.bind_i64(nk + 3 + t.items.len(), n)?;
    }
    for (key, vals) in acc {
        for (i, k) in key[..nk].iter().enumerate() {
            ins.bind_i64(2 + i, *k)?;
        }
        for (i, v) in vals.iter().enumerate() {
            ins.bind_i64(nk + 3 + i, *v)?;
        }
        ins.execute()?;
    }
    Ok(())
}

/// Rebuilds the daily rows of the given days and the weekly and monthly rows containing
/// them, each week and month once. `sums` may hold, per day, the rows of intervals a
/// restore just wrote (so they need not be read back): they are used for the intervals
/// whose status row still has the same checksum, and every other interval of the day is
/// read from the database. Gives exactly the rows of SQL's `GROUP BY` over the day's
/// interval rows (a test checks both).
///
/// One transaction per day; the last day of a week (month) among `days` also rolls up
/// that week (month) in its transaction, so a period is never left older than its days.
///
/// # Errors
/// Any database error (that day's transaction is rolled back).
pub fn build_days(
    store: &mut Store,
    grid: &Grid,
    week_start: Weekday,
    mut sums: BTreeMap<(u16, NaiveDate), DaySums>,
    days: &BTreeSet<(u16, NaiveDate)>,
) -> Result<()> {
    let path = store.path.clone();
    let now = super::intervals::now_secs();
    let list: Vec<(u16, NaiveDate)> = days.iter().copied().collect();
    for (i, &(acd, date)) in list.iter().enumerate() {
        let mut s = sums.remove(&(acd, date)).unwrap_or_default();
        let next = list.get(i + 1).filter(|n| n.0 == acd).map(|n| n.1);
        let tx = store
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| sql_err(&path, e))?;
        (|| -> std::result::Result<(), SumError> {
            summarize_day(&tx, acd, grid, date, &mut s, now)?;
            for (i, p) in periods_of(date, week_start).into_iter().enumerate() {
                if next.is_none_or(|n| periods_of(n, week_start)[i] != p) {
                    rollup_period(&tx, acd, p, now)?;
                }
            }
            Ok(())
        })()
        .map_err(|e| e.at(&path))?;
        tx.commit().map_err(|e| sql_err(&path, e))?;
    }
    Ok(())
}

/// Days of `acds` within `range` (per ACD, first and last interval start) whose summaries
/// are out of date: a daily summary missing or built before one of the day's intervals
/// last changed, or a weekly or monthly summary built before one of its days. Days not
/// yet over (at or after the collector's open interval) are left to the collector.
///
/// # Errors
/// Any database error.
pub fn stale_days(
    store: &Store,
    grid: &Grid,
    week_start: Weekday,
    acds: &[u16],
    range: &BTreeMap<u16, (i64, i64)>,
) -> Result<BTreeSet<(u16, NaiveDate)>> {
    let path = store.path.clone();
    let conn = &store.conn;
    let run = || -> rusqlite::Result<BTreeSet<(u16, NaiveDate)>> {
        let mut out = BTreeSet::new();
        let built = |acd: u16, period: PeriodKind, d: NaiveDate| -> rusqlite::Result<Option<i64>> {
            conn.prepare_cached(
                "SELECT built_at FROM summary_state WHERE acd = ?1 AND period = ?2 AND row_date = ?3",
            )?
            .query_row(params![acd, period, d.format("%Y-%m-%d").to_string()], |r| r.get(0))
            .optional()
        };
        for &acd in acds {
            let Some(&(first, last)) = range.get(&acd) else {
                continue;
            };
            let open = super::open_interval(conn, acd)?;
            let mut st = conn.prepare(
                "SELECT istart, updated_at FROM interval_status
                 WHERE acd = ?1 AND istart >= ?2 AND istart <= ?3",
            )?;
            let mut changed: BTreeMap<NaiveDate, i64> = BTreeMap::new();
            let mut q = st.query(params![acd, first, last])?;
            while let Some(r) = q.next()? {
                let (istart, upd): (i64, i64) = (r.get(0)?, r.get(1)?);
                let d = grid.local_date(istart);
                let x = changed.entry(d).or_insert(upd);
                *x = (*x).max(upd);
            }
            for (d, upd) in changed {
                let end = grid.day_start(d.succ_opt().expect("date in range"));
                if open.is_some_and(|o| o < end) {
                    continue;
                }
                let day = built(acd, PeriodKind::Day, d)?;
                let stale = match day {
                    None => true,
                    Some(b) if b < upd => true,
                    Some(b) => {
                        let mut older = false;
                        for (period, from, _) in periods_of(d, week_start) {
                            older |= built(acd, period, from)?.is_none_or(|p| p < b);
                        }
                        older
                    }
                };
                if stale {
                    out.insert((acd, d));
                }
            }
        }
        Ok(out)
    };
    run().map_err(|e| sql_err(&path, e))
}

/// Rolls up the weekly and monthly rows of every week and month containing one of
/// `days`, each once, one transaction per period.
///
/// # Errors
/// Any database error (that period's transaction is rolled back).
pub fn rollup_periods(
    store: &mut Store,
    week_start: Weekday,
    days: &BTreeSet<(u16, NaiveDate)>,
) -> Result<()> {
    let path = store.path.clone();
    let now = super::intervals::now_secs();
    let periods: BTreeSet<(u16, Period)> = days
        .iter()
        .flat_map(|&(acd, d)| periods_of(d, week_start).map(|p| (acd, p)))
        .collect();
    for (acd, p) in periods {
        let tx = store
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| sql_err(&path, e))?;
        rollup_period(&tx, acd, p, now).map_err(|e| e.at(&path))?;
        tx.commit().map_err(|e| sql_err(&path, e))?;
    }
    Ok(())
}

/// A week or a month: its kind, its first day and the day after its last.
type Period = (PeriodKind, NaiveDate, NaiveDate);

/// The week and the month containing `d`.
fn periods_of(d: NaiveDate, week_start: Weekday) -> [Period; 2] {
    let w = week_of(d, week_start);
    let m = month_of(d);
    [
        (PeriodKind::Week, w, w + chrono::Duration::days(7)),
        (PeriodKind::Month, m, next_month(m)),
    ]
}

/// Rolls up one week or month from its daily rows and records when.
fn rollup_period(
    tx: &rusqlite::Connection,
    acd: u16,
    p: Period,
    now: i64,
) -> std::result::Result<(), SumError> {
    let (period, from, to) = p;
    rollup(tx, acd, period, &from, &to)?;
    Ok(mark_built(
        tx,
        acd,
        period,
        &from.format("%Y-%m-%d").to_string(),
        now,
    )?)
}

fn next_month(month: NaiveDate) -> NaiveDate {
    if month.month() == 12 {
        NaiveDate::from_ymd_opt(month.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(month.year(), month.month() + 1, 1)
    }
    .expect("valid month")
}

/// Rebuilds the daily rows of one day inside the caller's write transaction on `tx`
/// (see [`build_days`] for `s`).
///
/// # Errors
/// Any database error.
pub fn summarize_day(
    tx: &rusqlite::Connection,
    acd: u16,
    grid: &Grid,
    date: NaiveDate,
    s: &mut DaySums,
    now: i64,
) -> std::result::Result<(), SumError> {
    let from = grid.day_start(date);
    let to = grid.day_start(date.succ_opt().expect("date in range"));
    let mut stored: Vec<(i64, String, bool)> = Vec::new();
    {
        let mut st = tx.prepare_cached(
            "SELECT istart, checksum, status FROM interval_status
             WHERE acd = ?1 AND istart >= ?2 AND istart < ?3",
        )?;
        let mut q = st.query(params![acd, from, to])?;
        while let Some(r) = q.next()? {
            let status: IntervalStatus = r.get(2)?;
            stored.push((r.get(0)?, r.get(1)?, status.is_complete()));
        }
    }
    // Sums of intervals changed since (or that have no status row) cannot be used.
    let current: BTreeMap<i64, &str> = stored.iter().map(|(i, c, _)| (*i, c.as_str())).collect();
    if s.included
        .iter()
        .any(|(i, c)| current.get(i) != Some(&c.as_str()))
    {
        s.clear();
    }
    let mut reads = super::interval_row_readers(tx)?;
    for (istart, _, _) in &stored {
        if !s.included.contains_key(istart) {
            s.add_stored(&mut reads, acd, *istart)?;
        }
    }
    let complete = stored.iter().filter(|x| x.2).count() as i64;
    let incomplete = grid.intervals_in_day(date) - complete;
    let d = date.format("%Y-%m-%d").to_string();
    for (ti, t) in TABLES.iter().enumerate() {
        write_rows(
            tx,
            PeriodKind::Day,
            t,
            acd,
            &d,
            &s.tables[ti],
            Some(incomplete),
        )?;
    }
    Ok(mark_built(tx, acd, PeriodKind::Day, &d, now)?)
}

fn mark_built(
    tx: &rusqlite::Connection,
    acd: u16,
    period: PeriodKind,
    d: &str,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO summary_state (acd, period, row_date, built_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![acd, period, d, now],
    )?;
    Ok(())
}

/// Rebuilds the rows of `period` (a week or a month) [from, to) from the daily rows.
fn rollup(
    tx: &rusqlite::Connection,
    acd: u16,
    period: PeriodKind,
    from: &NaiveDate,
    to: &NaiveDate,
) -> std::result::Result<(), SumError> {
    let f = from.format("%Y-%m-%d").to_string();
    let e = to.format("%Y-%m-%d").to_string();
    // Row by row into the accumulator: a month of the daily rows of a large centre is
    // over 100 MB, the accumulator one day's worth.
    let mut row = Vec::new();
    for t in TABLES {
        let mut q = RawStmt::new(
            tx,
            &format!(
                "SELECT {keys}, {items}, incomplete FROM {daily}
                 WHERE acd = ?1 AND row_date >= ?2 AND row_date < ?3",
                daily = PeriodKind::Day.table(t.name),
                keys = t.keys.join(", "),
                items = item_list(t),
            ),
        )?;
        q.bind_i64(1, acd as i64)?;
        q.bind_text(2, &f)?;
        q.bind_text(3, &e)?;
        row.resize(q.columns(), 0);
        let mut acc = FxHashMap::default();
        while q.step()? {
            q.read(&mut row);
            combine_into(&mut acc, t, &row)?;
        }
        write_rows(tx, period, t, acd, &f, &acc, None)?;
    }
    Ok(())
}

/// Deletes what is older than the retention. Intervals go only once their day's summary
/// is built.
///
/// # Errors
/// Any database error.
pub fn purge(
    store: &mut Store,
    acd: u16,
    grid: &Grid,
    r: &Retention,
    today: NaiveDate,
) -> Result<u64> {
    let path = store.path.clone();
    let tx = store
        .conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| sql_err(&path, e))?;
    let mut n = 0u64;
    let cutoff = today - chrono::Duration::days(r.intrahour_days as i64);
    let cutoff_ts = grid.day_start(cutoff);
    let run = |tx: &Transaction<'_>, sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<u64> {
        tx.execute(sql, p)
            .map(|x| x as u64)
            .map_err(|e| sql_err(&path, e))
    };
    // ?3: `PeriodKind::Day`.
    let built = "row_date IN (SELECT row_date FROM summary_state WHERE acd = ?1 AND period = ?3)";
    for t in TABLES {
        n += run(
            &tx,
            &format!(
                "DELETE FROM h{} WHERE acd = ?1 AND istart < ?2 AND {built}",
                t.name
            ),
            &[&acd, &cutoff_ts, &PeriodKind::Day],
        )?;
    }
    n += run(
        &tx,
        &format!("DELETE FROM interval_status WHERE acd = ?1 AND istart < ?2 AND {built}"),
        &[&acd, &cutoff_ts, &PeriodKind::Day],
    )?;
    for (period, keep_days) in [
        (PeriodKind::Day, r.daily_days as i64),
        (PeriodKind::Week, r.weekly_weeks as i64 * 7),
        (PeriodKind::Month, r.monthly_months as i64 * 31),
    ] {
        let c = (today - chrono::Duration::days(keep_days))
            .format("%Y-%m-%d")
            .to_string();
        for t in TABLES {
            n += run(
                &tx,
                &format!(
                    "DELETE FROM {} WHERE acd = ?1 AND row_date < ?2",
                    period.table(t.name)
                ),
                &[&acd, &c],
            )?;
        }
    }
    tx.commit().map_err(|e| sql_err(&path, e))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::items::Combine;
    use rand::{Rng, SeedableRng};

    fn agg_list(t: &TableDef) -> String {
        t.items
            .iter()
            .map(|(n, c)| match c {
                Combine::Sum => format!("SUM({n})"),
                Combine::Max => format!("MAX({n})"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The daily rows as SQL's GROUP BY gives them: the oracle `build_days` is held to.
    fn daily_sql(
        conn: &rusqlite::Connection,
        t: &TableDef,
        acd: u16,
        from: i64,
        to: i64,
    ) -> Vec<Vec<i64>> {
        let keys = t.keys.join(", ");
        let sql = format!(
            "SELECT {keys}, {aggs} FROM h{name} WHERE acd = ?1 AND istart >= ?2 AND istart < ?3
             GROUP BY acd, {keys} ORDER BY {keys}",
            name = t.name,
            aggs = agg_list(t),
        );
        rows_of(conn, &sql, params![acd, from, to])
    }

    fn rows_of(conn: &rusqlite::Connection, sql: &str, p: impl rusqlite::Params) -> Vec<Vec<i64>> {
        let mut st = conn.prepare(sql).unwrap();
        let n = st.column_count();
        st.query_map(p, |r| {
            (0..n)
                .map(|i| r.get(i))
                .collect::<rusqlite::Result<Vec<i64>>>()
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
    }

    fn stored_daily(
        conn: &rusqlite::Connection,
        t: &TableDef,
        acd: u16,
        d: &str,
    ) -> (Vec<Vec<i64>>, Vec<i64>) {
        let keys = t.keys.join(", ");
        let sql = format!(
            "SELECT {keys}, {items}, incomplete FROM d{name} WHERE acd = ?1 AND row_date = ?2 ORDER BY {keys}",
            name = t.name,
            items = item_list(t),
        );
        let n = t.keys.len() + t.items.len();
        let rows = rows_of(conn, &sql, params![acd, d]);
        let inc = rows.iter().map(|r| r[n]).collect();
        (
            rows.into_iter()
                .map(|mut r| {
                    r.pop();
                    r
                })
                .collect(),
            inc,
        )
    }

    /// Random interval rows for two days of ACD 1, some intervals complete, some not.
    /// Returns the rows written per interval (for the in-memory path).
    fn fill(
        store: &mut Store,
        grid: &Grid,
        days: &[NaiveDate],
        seed: u64,
    ) -> BTreeMap<i64, Vec<Vec<Vec<i64>>>> {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut written = BTreeMap::new();
        let tx = store.conn.transaction().unwrap();
        for &day in days {
            let mut istart = grid.day_start(day);
            let end = grid.day_start(day.succ_opt().unwrap());
            while istart < end {
                if rng.gen_bool(0.8) {
                    let mut per_table = Vec::new();
                    for t in TABLES {
                        let mut rows = Vec::new();
                        let mut cols: Vec<&str> = vec!["acd"];
                        cols.extend(t.keys);
                        cols.extend(["istart", "row_date", "starttime", "intrvl"]);
                        cols.extend(t.items.iter().map(|(n, _)| *n));
                        let marks = vec!["?"; cols.len()].join(", ");
                        let sql = format!(
                            "INSERT INTO h{} ({}) VALUES ({marks})",
                            t.name,
                            cols.join(", ")
                        );
                        let nkeys = rng.gen_range(0..6);
                        let mut used = BTreeSet::new();
                        for _ in 0..nkeys {
                            let key: Vec<i64> =
                                t.keys.iter().map(|_| rng.gen_range(1..4)).collect();
                            if !used.insert(key.clone()) {
                                continue;
                            }
                            let items: Vec<i64> = t
                                .items
                                .iter()
                                .map(|(_, c)| match c {
                                    Combine::Sum => rng.gen_range(0..1000),
                                    Combine::Max => rng.gen_range(0..50),
                                })
                                .collect();
                            let mut vals: Vec<rusqlite::types::Value> = vec![1i64.into()];
                            vals.extend(key.iter().map(|k| (*k).into()));
                            vals.push(istart.into());
                            vals.push(day.format("%Y-%m-%d").to_string().into());
                            vals.push(0i64.into());
                            vals.push(15i64.into());
                            vals.extend(items.iter().map(|v| (*v).into()));
                            tx.execute(&sql, rusqlite::params_from_iter(vals)).unwrap();
                            let mut row = vec![1];
                            row.extend(&key);
                            row.push(istart);
                            row.extend(&items);
                            rows.push(row);
                        }
                        per_table.push(rows);
                    }
                    let status = if rng.gen_bool(0.7) {
                        "complete"
                    } else {
                        "incomplete"
                    };
                    tx.execute(
                        "INSERT INTO interval_status (acd, istart, intrvl, row_date, starttime, status,
                           reasons, epoch, first_seq, last_seq, source, row_count, checksum, updated_at)
                         VALUES (1, ?1, 15, ?2, 0, ?3, '', 1, 0, 0, 'collected', 0, ?4, 0)",
                        params![istart, day.format("%Y-%m-%d").to_string(), status, format!("sum{istart}")],
                    )
                    .unwrap();
                    written.insert(istart, per_table);
                }
                istart = grid.next(istart);
            }
        }
        tx.commit().unwrap();
        written
    }

    fn check(store: &Store, grid: &Grid, days: &[NaiveDate]) {
        for &day in days {
            let (from, to) = (grid.day_start(day), grid.day_start(day.succ_opt().unwrap()));
            let complete: i64 = store.conn.query_row(
                "SELECT COUNT(*) FROM interval_status WHERE acd = 1 AND istart >= ?1 AND istart < ?2 AND status = 'complete'",
                params![from, to], |r| r.get(0)).unwrap();
            for t in TABLES {
                let (rows, inc) =
                    stored_daily(&store.conn, t, 1, &day.format("%Y-%m-%d").to_string());
                assert_eq!(
                    rows,
                    daily_sql(&store.conn, t, 1, from, to),
                    "d{} {day}",
                    t.name
                );
                assert!(inc
                    .iter()
                    .all(|i| *i == grid.intervals_in_day(day) - complete));
            }
        }
    }

    /// Issue #12 item 7: a daily sum that does not fit 64 bits is the store's own error,
    /// naming the database and the table, and the day's transaction changes nothing.
    #[test]
    fn a_sum_that_overflows_is_an_error_naming_the_database_and_changes_nothing() {
        let grid = Grid::new(chrono_tz::UTC, 15);
        let day = NaiveDate::from_ymd_opt(2024, 3, 11).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cms.db");
        let mut store = Store::open(&db).unwrap();
        let t = TABLES[0];
        let (item, _) = t
            .items
            .iter()
            .find(|(_, c)| matches!(c, Combine::Sum))
            .unwrap();
        let keys = t.keys.join(", ");
        let marks = vec!["1"; t.keys.len()].join(", ");
        for istart in [grid.day_start(day), grid.next(grid.day_start(day))] {
            store
                .conn
                .execute(
                    &format!(
                        "INSERT INTO h{name} (acd, {keys}, istart, row_date, starttime, intrvl, {item})
                         VALUES (1, {marks}, ?1, '2024-03-11', 0, 15, ?2)",
                        name = t.name
                    ),
                    params![istart, i64::MAX],
                )
                .unwrap();
            store
                .conn
                .execute(
                    "INSERT INTO interval_status (acd, istart, intrvl, row_date, starttime, status,
                       reasons, source, row_count, checksum, updated_at)
                     VALUES (1, ?1, 15, '2024-03-11', 0, 'complete', '', 'collected', 1, 'x', 0)",
                    [istart],
                )
                .unwrap();
        }
        let err = build_day(&mut store, 1, &grid, Weekday::Mon, day).unwrap_err();
        assert!(
            matches!(&err, StoreError::SumOverflow { path, table } if *path == db && *table == t.name),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{}: {}: a summary sum overflows 64 bits",
                db.display(),
                t.name
            )
        );
        let rows: i64 = store
            .conn
            .query_row(&format!("SELECT COUNT(*) FROM d{}", t.name), [], |r| {
                r.get(0)
            })
            .unwrap();
        let built: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM summary_state", [], |r| r.get(0))
            .unwrap();
        assert_eq!((rows, built), (0, 0), "the failed day left rows behind");
    }

    #[test]
    fn build_days_equals_sql_group_by_from_the_database_and_from_memory() {
        let grid = Grid::new(chrono_tz::America::New_York, 15);
        // A DST day (92 intervals) and an ordinary one.
        let days = [
            NaiveDate::from_ymd_opt(2024, 3, 10).unwrap(),
            NaiveDate::from_ymd_opt(2024, 3, 11).unwrap(),
        ];
        for seed in 0..4 {
            let dir = tempfile::tempdir().unwrap();
            let mut store = Store::open(&dir.path().join("cms.db")).unwrap();
            let written = fill(&mut store, &grid, &days, seed);
            let set: BTreeSet<(u16, NaiveDate)> = days.iter().map(|d| (1, *d)).collect();
            // From the database alone.
            build_days(&mut store, &grid, Weekday::Mon, BTreeMap::new(), &set).unwrap();
            check(&store, &grid, &days);
            // From memory for most intervals; one of them changed after it was summed
            // (its checksum moved on): that day is read from the database.
            let mut sums: BTreeMap<(u16, NaiveDate), DaySums> = BTreeMap::new();
            for (i, (istart, tables)) in written.iter().enumerate() {
                if i % 3 == 0 {
                    continue;
                }
                let refs: Vec<&[Vec<i64>]> = tables.iter().map(|t| &t[..]).collect();
                let sum = if i == 4 {
                    "stale".to_string()
                } else {
                    format!("sum{istart}")
                };
                sums.entry((1, grid.local_date(*istart)))
                    .or_default()
                    .add_interval(*istart, sum, &refs)
                    .unwrap();
            }
            store
                .conn
                .execute_batch(
                    "DELETE FROM dsplit; DELETE FROM dagent; DELETE FROM dvdn; DELETE FROM dtkgrp",
                )
                .unwrap();
            build_days(&mut store, &grid, Weekday::Mon, sums, &set).unwrap();
            check(&store, &grid, &days);
            // Weekly and monthly rows are SQL's GROUP BY over the daily rows. Sunday the
            // 10th closes the week of Monday the 4th: two weeks, one month.
            for (prefix, from, to) in [
                ("w", "2024-03-04", "2024-03-11"),
                ("w", "2024-03-11", "2024-03-18"),
                ("m", "2024-03-01", "2024-04-01"),
            ] {
                for t in TABLES {
                    let keys = t.keys.join(", ");
                    let sql = format!(
                        "SELECT {keys}, {aggs}, SUM(incomplete) FROM d{name}
                         WHERE acd = 1 AND row_date >= ?1 AND row_date < ?2
                         GROUP BY acd, {keys} ORDER BY {keys}",
                        name = t.name,
                        aggs = agg_list(t),
                    );
                    let all = |sql: &str, p: &[&str]| {
                        rows_of(&store.conn, sql, rusqlite::params_from_iter(p))
                    };
                    let want = all(&sql, &[from, to]);
                    let got = all(
                        &format!(
                            "SELECT {keys}, {items}, incomplete FROM {prefix}{name}
                             WHERE acd = 1 AND row_date = ?1 ORDER BY {keys}",
                            name = t.name,
                            items = item_list(t),
                        ),
                        &[from],
                    );
                    assert!(!want.is_empty());
                    assert_eq!(got, want, "{prefix}{} {from}", t.name);
                }
            }
        }
    }
}
