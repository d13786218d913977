//! Daily, weekly and monthly summaries built from the interval rows, and retention.
//!
//! A summary is always rebuilt whole from what it is made of (a day from its intervals, a
//! week or month from its days), so building twice, or after a restore changed some
//! intervals, gives the same rows. `Sum` items add, `Max` items take the largest value,
//! `incomplete` counts the intervals of the period that are not complete (missing ones
//! included).

use super::{sql_err, Result, Store};
use crate::config::Retention;
use crate::interval::{month_of, week_of, Grid};
use crate::items::{Combine, TableDef, TABLES};
use chrono::{Datelike, NaiveDate, Weekday};
use rusqlite::{params, Transaction};

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
    let path = store.path.clone();
    let tx = store
        .conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| sql_err(&path, e))?;
    build_day_tx(&tx, acd, grid, week_start, date).map_err(|e| sql_err(&path, e))?;
    tx.commit().map_err(|e| sql_err(&path, e))
}

pub(crate) fn build_day_tx(
    tx: &Transaction<'_>,
    acd: u16,
    grid: &Grid,
    week_start: Weekday,
    date: NaiveDate,
) -> rusqlite::Result<()> {
    let from = grid.day_start(date);
    let to = grid.day_start(date.succ_opt().expect("date in range"));
    let complete: i64 = tx.query_row(
        "SELECT COUNT(*) FROM interval_status
         WHERE acd = ?1 AND istart >= ?2 AND istart < ?3 AND status = 'complete'",
        params![acd, from, to],
        |r| r.get(0),
    )?;
    let incomplete = grid.intervals_in_day(date) - complete;
    let d = date.format("%Y-%m-%d").to_string();
    let now = super::intervals::now_secs();
    for t in TABLES {
        let keys = t.keys.join(", ");
        tx.execute(
            &format!("DELETE FROM d{} WHERE acd = ?1 AND row_date = ?2", t.name),
            params![acd, d],
        )?;
        tx.execute(
            &format!(
                "INSERT INTO d{name} (acd, {keys}, row_date, {items}, incomplete)
                 SELECT acd, {keys}, ?4, {aggs}, ?5 FROM h{name}
                 WHERE acd = ?1 AND istart >= ?2 AND istart < ?3 GROUP BY acd, {keys}",
                name = t.name,
                items = item_list(t),
                aggs = agg_list(t),
            ),
            params![acd, from, to, d, incomplete],
        )?;
    }
    mark_built(tx, acd, "day", &d, now)?;
    let week = week_of(date, week_start);
    rollup(tx, acd, "w", &week, &(week + chrono::Duration::days(7)))?;
    mark_built(tx, acd, "week", &week.format("%Y-%m-%d").to_string(), now)?;
    let month = month_of(date);
    let next_month = if month.month() == 12 {
        NaiveDate::from_ymd_opt(month.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(month.year(), month.month() + 1, 1)
    }
    .expect("valid month");
    rollup(tx, acd, "m", &month, &next_month)?;
    mark_built(tx, acd, "month", &month.format("%Y-%m-%d").to_string(), now)?;
    Ok(())
}

fn mark_built(
    tx: &Transaction<'_>,
    acd: u16,
    period: &str,
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

/// Rebuilds the `prefix` (w or m) rows of the period [from, to) from the daily rows.
fn rollup(
    tx: &Transaction<'_>,
    acd: u16,
    prefix: &str,
    from: &NaiveDate,
    to: &NaiveDate,
) -> rusqlite::Result<()> {
    let f = from.format("%Y-%m-%d").to_string();
    let e = to.format("%Y-%m-%d").to_string();
    for t in TABLES {
        let keys = t.keys.join(", ");
        tx.execute(
            &format!(
                "DELETE FROM {prefix}{} WHERE acd = ?1 AND row_date = ?2",
                t.name
            ),
            params![acd, f],
        )?;
        tx.execute(
            &format!(
                "INSERT INTO {prefix}{name} (acd, {keys}, row_date, {items}, incomplete)
                 SELECT acd, {keys}, ?2, {aggs}, SUM(incomplete) FROM d{name}
                 WHERE acd = ?1 AND row_date >= ?2 AND row_date < ?3 GROUP BY acd, {keys}",
                name = t.name,
                items = item_list(t),
                aggs = agg_list(t),
            ),
            params![acd, f, e],
        )?;
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
    let built =
        "row_date IN (SELECT row_date FROM summary_state WHERE acd = ?1 AND period = 'day')";
    for t in TABLES {
        n += run(
            &tx,
            &format!(
                "DELETE FROM h{} WHERE acd = ?1 AND istart < ?2 AND {built}",
                t.name
            ),
            &[&acd, &cutoff_ts],
        )?;
    }
    n += run(
        &tx,
        &format!("DELETE FROM interval_status WHERE acd = ?1 AND istart < ?2 AND {built}"),
        &[&acd, &cutoff_ts],
    )?;
    for (prefix, keep_days) in [
        ("d", r.daily_days as i64),
        ("w", r.weekly_weeks as i64 * 7),
        ("m", r.monthly_months as i64 * 31),
    ] {
        let c = (today - chrono::Duration::days(keep_days))
            .format("%Y-%m-%d")
            .to_string();
        for t in TABLES {
            n += run(
                &tx,
                &format!(
                    "DELETE FROM {prefix}{} WHERE acd = ?1 AND row_date < ?2",
                    t.name
                ),
                &[&acd, &c],
            )?;
        }
    }
    tx.commit().map_err(|e| sql_err(&path, e))?;
    Ok(n)
}
