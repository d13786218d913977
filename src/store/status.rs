//! The `interval_status` table: one row per ACD interval saying whether it is complete,
//! where its rows came from and what they hash to (docs/data-items.md, "Interval
//! status").
//!
//! Owns the table's one upsert ([`upsert`]: the collector's commits and a restore's
//! interval writes both go through it) and the reads of backup and restore. It does not
//! decide what is complete (that is `agg`) nor what a restore takes (that is
//! `merge::plan`).

use crate::domain::IntervalStatus;
use rusqlite::{params, Connection, OptionalExtension};

/// One `interval_status` row, as written.
#[derive(Debug, Clone)]
pub struct StatusRow<'a> {
    pub acd: u16,
    pub istart: i64,
    pub intrvl: u32,
    pub row_date: &'a str,
    pub starttime: i64,
    pub status: IntervalStatus,
    /// Comma-separated reasons, empty when complete.
    pub reasons: &'a str,
    pub epoch: i64,
    pub first_seq: i64,
    pub last_seq: i64,
    /// `collected` or `restored:<server id>`.
    pub source: &'a str,
    pub row_count: i64,
    /// Blake3 of the interval's rows, hex (`store::interval_checksum`).
    pub checksum: &'a str,
    /// When the row was written, UTC seconds: what an incremental backup selects on.
    pub updated_at: i64,
}

/// Writes `r`, replacing the interval's row if there is one.
///
/// # Errors
/// A database error.
pub fn upsert(conn: &Connection, r: &StatusRow<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO interval_status (acd, istart, intrvl, row_date, starttime,
           status, reasons, epoch, first_seq, last_seq, source, row_count, checksum, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        r.acd,
        r.istart,
        r.intrvl,
        r.row_date,
        r.starttime,
        r.status,
        r.reasons,
        r.epoch,
        r.first_seq,
        r.last_seq,
        r.source,
        r.row_count,
        r.checksum,
        r.updated_at,
    ])?;
    Ok(())
}

/// What a restore compares of an interval: its status, checksum, sequence range and
/// row count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub complete: bool,
    pub checksum: String,
    pub first_seq: i64,
    pub last_seq: i64,
    pub row_count: i64,
}

/// The columns of a [`Summary`], for [`summary_at`].
const SUMMARY_COLUMNS: &str = "status, checksum, first_seq, last_seq, row_count";

/// A [`Summary`] from a row whose columns from `at` on are [`SUMMARY_COLUMNS`].
fn summary_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Summary> {
    Ok(Summary {
        complete: r.get::<_, IntervalStatus>(at)?.is_complete(),
        checksum: r.get(at + 1)?,
        first_seq: r.get(at + 2)?,
        last_seq: r.get(at + 3)?,
        row_count: r.get(at + 4)?,
    })
}

/// The status of one interval (`None`: no row).
///
/// # Errors
/// A database error.
pub fn summary(conn: &Connection, acd: u16, istart: i64) -> rusqlite::Result<Option<Summary>> {
    conn.prepare_cached(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM interval_status WHERE acd = ?1 AND istart = ?2"
    ))?
    .query_row(params![acd, istart], |r| summary_at(r, 0))
    .optional()
}

/// The status of every interval of `acd` starting in `[first, last]`, by start.
///
/// # Errors
/// A database error.
pub fn summaries(
    conn: &Connection,
    acd: u16,
    first: i64,
    last: i64,
) -> rusqlite::Result<Vec<(i64, Summary)>> {
    let mut st = conn.prepare(&format!(
        "SELECT istart, {SUMMARY_COLUMNS} FROM interval_status
         WHERE acd = ?1 AND istart >= ?2 AND istart <= ?3"
    ))?;
    let rows = st.query_map(params![acd, first, last], |r| {
        Ok((r.get(0)?, summary_at(r, 1)?))
    })?;
    rows.collect()
}

/// Rows (the sum of `row_count`) and intervals of `acd` starting in `[lo, hi)`.
///
/// # Errors
/// A database error.
pub fn totals(conn: &Connection, acd: u16, lo: i64, hi: i64) -> rusqlite::Result<(u64, u64)> {
    let (rows, n): (i64, i64) = conn.query_row(
        "SELECT COALESCE(SUM(row_count), 0), COUNT(*) FROM interval_status
         WHERE acd = ?1 AND istart >= ?2 AND istart < ?3",
        params![acd, lo, hi],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((rows.max(0) as u64, n.max(0) as u64))
}

/// Complete intervals of `acd` starting in `[lo, hi)`.
///
/// # Errors
/// A database error.
pub fn complete_count(conn: &Connection, acd: u16, lo: i64, hi: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT COUNT(*) FROM interval_status WHERE acd = ?1 AND istart >= ?2
           AND istart < ?3 AND status = ?4",
    )?
    .query_row(params![acd, lo, hi, IntervalStatus::Complete], |r| r.get(0))
}

/// Whether `acd` has any interval starting in `[lo, hi)`.
///
/// # Errors
/// A database error.
pub fn any_in(conn: &Connection, acd: u16, lo: i64, hi: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS(SELECT 1 FROM interval_status
         WHERE acd = ?1 AND istart >= ?2 AND istart < ?3)",
    )?
    .query_row(params![acd, lo, hi], |r| r.get(0))
}

/// The first interval of `acd` stored here.
///
/// # Errors
/// A database error.
pub fn first_istart(conn: &Connection, acd: u16) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT MIN(istart) FROM interval_status WHERE acd = ?1",
        [acd],
        |r| r.get(0),
    )
}

/// One stored row as a backup reads it (every column).
#[derive(Debug, Clone)]
pub struct StoredRow {
    pub istart: i64,
    pub intrvl: u32,
    pub row_date: String,
    pub starttime: u32,
    pub status: IntervalStatus,
    pub reasons: String,
    pub source: String,
    pub epoch: i64,
    pub first_seq: i64,
    pub last_seq: i64,
    pub updated_at: i64,
    pub row_count: u64,
    pub checksum: String,
}

/// The statement of [`for_each_changed`], prepared once per reader.
///
/// # Errors
/// A database error.
pub fn changed_rows_stmt(conn: &Connection) -> rusqlite::Result<rusqlite::Statement<'_>> {
    conn.prepare(
        "SELECT istart, intrvl, row_date, starttime, status, reasons, source, epoch,
                first_seq, last_seq, updated_at, row_count, checksum
         FROM interval_status WHERE acd = ?1 AND istart >= ?2 AND istart < ?3
           AND updated_at >= ?4
         ORDER BY istart",
    )
}

/// Calls `f` with every row of `acd` starting in `[lo, hi)` written at or after `since`,
/// in order, through `st` ([`changed_rows_stmt`]); stops when `f` returns `false`.
///
/// # Errors
/// A database error, or `f`'s.
pub fn for_each_changed<E: From<rusqlite::Error>>(
    st: &mut rusqlite::Statement<'_>,
    acd: u16,
    (lo, hi, since): (i64, i64, i64),
    mut f: impl FnMut(StoredRow) -> Result<bool, E>,
) -> Result<(), E> {
    let mut q = st.query(params![acd, lo, hi, since])?;
    while let Some(r) = q.next()? {
        let row = StoredRow {
            istart: r.get(0)?,
            intrvl: r.get::<_, i64>(1)? as u32,
            row_date: r.get(2)?,
            starttime: r.get::<_, i64>(3)? as u32,
            status: r.get(4)?,
            reasons: r.get(5)?,
            source: r.get(6)?,
            epoch: r.get(7)?,
            first_seq: r.get(8)?,
            last_seq: r.get(9)?,
            updated_at: r.get(10)?,
            row_count: r.get::<_, i64>(11)? as u64,
            checksum: r.get(12)?,
        };
        if !f(row)? {
            break;
        }
    }
    Ok(())
}
