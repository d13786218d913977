//! The SQL of backup and restore (`merge`), per table family: the summary tables as a
//! backup reads them and a restore fills them, the administration and local data, the
//! restore log, and the two kinds of transaction merge runs beside a collecting
//! server: a backup's read snapshot and a restore's short write transactions
//! ([`ShortTx`]). `interval_status` is [`super::status`]; interval rows are
//! [`super::interval_row_readers`] and [`super::intervals`]' insert statements.
//!
//! It decides nothing: what goes into a backup and what a restore takes is `merge`.

use crate::domain::PeriodKind;
use crate::items::TABLES;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Transactions

/// Starts a read transaction on `conn` and takes its snapshot now (a deferred
/// transaction takes it at its first read).
///
/// # Errors
/// A database error.
pub fn begin_snapshot(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN")?;
    conn.query_row("SELECT COUNT(*) FROM interval_status WHERE 0", [], |_| {
        Ok(())
    })
}

/// Ends a read transaction of [`begin_snapshot`] that is to be taken again.
///
/// # Errors
/// A database error.
pub fn abort_snapshot(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("ROLLBACK")
}

/// A read-only connection to the database at `path`, for a second reader of a snapshot.
///
/// # Errors
/// A database error.
pub fn open_reader(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(Duration::from_secs(5))?;
    Ok(c)
}

/// Ends a read transaction of [`begin_snapshot`].
///
/// # Errors
/// A database error.
pub fn end_snapshot(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("COMMIT")
}

/// `PRAGMA data_version`: moves on every commit made by another connection.
///
/// # Errors
/// A database error.
pub fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}

/// How long a [`ShortTx`] leaves the write lock free after a commit before it takes it
/// again: twice the poll step of the store's busy handler (`store::poll_busy`), so a
/// writer waiting for the lock gets it. Costs a restore 2 % of its time (2 ms every
/// transaction of `merge::restore::MAX_TX`, 100 ms).
pub const YIELD: Duration = Duration::from_millis(2);

/// A write transaction kept short, so that a collector writing the same database never
/// waits long: [`ShortTx::begin`] opens one when none is open, [`ShortTx::tick`] commits
/// it once `budget` has passed since it began, [`ShortTx::finish`] commits what is left,
/// and dropping the guard rolls back a transaction still open (an error midway leaves
/// every earlier commit and nothing of the current one).
pub struct ShortTx<'c> {
    conn: &'c Connection,
    budget: Duration,
    clock: fn() -> i64,
    /// When the open transaction began (`None`: none open).
    opened: Option<Instant>,
    /// When its last transaction committed.
    committed: Option<Instant>,
    /// The clock's time when the open transaction began: one time for everything it
    /// writes.
    now: i64,
}

impl<'c> ShortTx<'c> {
    /// A guard on `conn` with no transaction open yet; `clock` gives the UTC second each
    /// transaction stamps its rows with.
    pub fn new(conn: &'c Connection, budget: Duration, clock: fn() -> i64) -> ShortTx<'c> {
        ShortTx {
            conn,
            budget,
            clock,
            opened: None,
            committed: None,
            now: clock(),
        }
    }

    /// The connection, for the statements of the transaction.
    pub fn conn(&self) -> &'c Connection {
        self.conn
    }

    /// Opens a transaction (`BEGIN IMMEDIATE`) unless one is open; returns its time.
    ///
    /// # Errors
    /// A database error (busy past the busy timeout).
    pub fn begin(&mut self) -> rusqlite::Result<i64> {
        if self.opened.is_none() {
            // A writer waiting for the lock (the collector's commit, polling every
            // millisecond) gets it before this guard takes it again.
            if let Some(left) = self.committed.and_then(|c| YIELD.checked_sub(c.elapsed())) {
                std::thread::sleep(left);
            }
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            self.opened = Some(Instant::now());
            self.now = (self.clock)();
        }
        Ok(self.now)
    }

    /// Commits the open transaction if its time budget is spent.
    ///
    /// # Errors
    /// The commit fails (the transaction is rolled back when the guard drops).
    pub fn tick(&mut self) -> rusqlite::Result<()> {
        if self.opened.is_some_and(|o| o.elapsed() >= self.budget) {
            self.commit()?;
        }
        Ok(())
    }

    /// Commits the open transaction, if any.
    ///
    /// # Errors
    /// The commit fails (the transaction is rolled back when the guard drops).
    pub fn finish(mut self) -> rusqlite::Result<()> {
        self.commit()
    }

    fn commit(&mut self) -> rusqlite::Result<()> {
        if self.opened.is_some() {
            self.conn.execute_batch("COMMIT")?;
            self.opened = None;
            self.committed = Some(Instant::now());
        }
        Ok(())
    }
}

impl Drop for ShortTx<'_> {
    fn drop(&mut self) {
        if self.opened.is_some() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The database as a whole, and interval rows

/// `PRAGMA user_version`: the schema version of the database (0: none set up yet).
///
/// # Errors
/// A database error (the file is not a database).
pub fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Deletes the rows of one ACD interval from the interval table `table`.
///
/// # Errors
/// A database error.
pub fn delete_interval_rows(
    conn: &Connection,
    table: &str,
    acd: u16,
    istart: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "DELETE FROM {table} WHERE acd = ?1 AND istart = ?2"
    ))?
    .execute(params![acd, istart])?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Summary tables (`d*`, `w*`, `m*`)

/// The columns of a summary table of `t` as a backup carries them: `acd, keys...,
/// row_date, items..., incomplete`.
fn summary_columns(t: &crate::items::TableDef) -> Vec<&'static str> {
    let mut cols: Vec<&str> = vec!["acd"];
    cols.extend(t.keys);
    cols.push("row_date");
    cols.extend(t.items.iter().map(|(n, _)| *n));
    cols.push("incomplete");
    cols
}

/// The first and last `row_date` of `acd`'s daily summaries in `[dlo, dhi)`, over every
/// table family.
///
/// # Errors
/// A database error.
pub fn daily_summary_dates(
    conn: &Connection,
    acd: u16,
    (dlo, dhi): (&str, &str),
) -> rusqlite::Result<(Option<String>, Option<String>)> {
    let (mut lo, mut hi): (Option<String>, Option<String>) = (None, None);
    for t in TABLES {
        let (a, b): (Option<String>, Option<String>) = conn.query_row(
            &format!(
                "SELECT MIN(row_date), MAX(row_date) FROM {} WHERE acd = ?1
                 AND row_date >= ?2 AND row_date < ?3",
                PeriodKind::Day.table(t.name)
            ),
            params![acd, dlo, dhi],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        lo = [lo, a].into_iter().flatten().min();
        hi = [hi, b].into_iter().flatten().max();
    }
    Ok((lo, hi))
}

/// Calls `f(table, date_col, row_date, values)` for every summary row of `acd` dated in
/// `[dlo, dhi)`, daily, weekly then monthly tables, in `TABLES` order; `values` are the
/// columns in the backup's order with 0 in place of the date (at `date_col`).
///
/// # Errors
/// A database error, or `f`'s.
pub fn for_each_summary_row<E: From<rusqlite::Error>>(
    conn: &Connection,
    acd: u16,
    (dlo, dhi): (&str, &str),
    mut f: impl FnMut(&str, usize, &str, &[i64]) -> Result<(), E>,
) -> Result<(), E> {
    for period in PeriodKind::ALL {
        for t in TABLES {
            let cols = summary_columns(t);
            let table = period.table(t.name);
            let mut st = conn.prepare(&format!(
                "SELECT {} FROM {table} WHERE acd = ?1 AND row_date >= ?2 AND row_date < ?3",
                cols.join(", "),
            ))?;
            let date_col = 1 + t.keys.len();
            let mut q = st.query(params![acd, dlo, dhi])?;
            let mut vals = vec![0i64; cols.len()];
            while let Some(row) = q.next()? {
                let date: String = row.get(date_col)?;
                for (i, v) in vals.iter_mut().enumerate() {
                    *v = if i == date_col { 0 } else { row.get(i)? };
                }
                f(&table, date_col, &date, &vals)?;
            }
        }
    }
    Ok(())
}

/// Inserts one summary row of `table` (a summary table of `t`) unless one with its key
/// is there; `vals` in the backup's column order, the date as `row_date`. Returns the
/// rows inserted (0 or 1).
///
/// # Errors
/// A database error.
pub fn insert_summary_row(
    conn: &Connection,
    table: &str,
    t: &crate::items::TableDef,
    row_date: &str,
    vals: &[i64],
) -> rusqlite::Result<usize> {
    let cols = summary_columns(t);
    let marks = vec!["?"; cols.len()].join(", ");
    let date_col = 1 + t.keys.len();
    let vs = vals.iter().enumerate().map(|(i, v)| {
        if i == date_col {
            Value::Text(row_date.to_string())
        } else {
            Value::Integer(*v)
        }
    });
    conn.prepare_cached(&format!(
        "INSERT OR IGNORE INTO {table} ({}) VALUES ({marks})",
        cols.join(", ")
    ))?
    .execute(params_from_iter(vs))
}

// ---------------------------------------------------------------------------------------
// ACD administration data and local settings

/// The administration tables and their columns, `acd` first.
pub const ADMIN_TABLES: [(&str, &str); 3] = [
    ("skill_def", "acd, skill, service_level, periods, name"),
    ("vdn_def", "acd, vdn, service_level, name"),
    ("tkgrp_def", "acd, tkgrp, trunks, name"),
];

/// The administration rows of `acd`, per table of [`ADMIN_TABLES`], every column.
///
/// # Errors
/// A database error.
pub fn admin_rows(
    conn: &Connection,
    acd: u16,
) -> rusqlite::Result<Vec<(&'static str, Vec<Value>)>> {
    let mut out = vec![];
    for (table, cols) in ADMIN_TABLES {
        let mut st = conn.prepare(&format!("SELECT {cols} FROM {table} WHERE acd = ?1"))?;
        let n = st.column_count();
        let mut q = st.query([acd])?;
        while let Some(r) = q.next()? {
            let vals = (0..n).map(|i| r.get(i)).collect::<rusqlite::Result<_>>()?;
            out.push((table, vals));
        }
    }
    Ok(out)
}

/// Replaces the administration data of `acds` with `rows` (`(table, values)`, values in
/// the order of [`ADMIN_TABLES`]; rows of other tables or ACDs are left out), in one
/// transaction. Returns the rows written.
///
/// # Errors
/// A database error; nothing is changed then.
pub fn replace_admin(
    conn: &mut Connection,
    acds: &[u16],
    rows: &[(String, Vec<Value>)],
) -> rusqlite::Result<u64> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for (table, _) in ADMIN_TABLES {
        for a in acds {
            tx.execute(&format!("DELETE FROM {table} WHERE acd = ?1"), [a])?;
        }
    }
    let mut n = 0;
    for (table, values) in rows {
        let Some(Value::Integer(acd)) = values.first() else {
            continue;
        };
        if !acds.contains(&(*acd as u16)) {
            continue;
        }
        let Some((_, cols)) = ADMIN_TABLES.iter().find(|(t, _)| t == table) else {
            continue;
        };
        let marks = vec!["?"; values.len()].join(", ");
        n += tx.execute(
            &format!("INSERT OR REPLACE INTO {table} ({cols}) VALUES ({marks})"),
            params_from_iter(values),
        )? as u64;
    }
    tx.commit()?;
    Ok(n)
}

/// Every local setting, by key.
///
/// # Errors
/// A database error.
pub fn local_settings(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut st = conn.prepare("SELECT key, value FROM local_settings ORDER BY key")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Replaces every local setting with `rows`, in one transaction. Returns the rows
/// written.
///
/// # Errors
/// A database error; nothing is changed then.
pub fn replace_local(conn: &mut Connection, rows: &[(Value, Value)]) -> rusqlite::Result<u64> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute("DELETE FROM local_settings", [])?;
    let mut n = 0;
    for (k, v) in rows {
        n += tx.execute(
            "INSERT OR REPLACE INTO local_settings (key, value) VALUES (?1, ?2)",
            params![k, v],
        )? as u64;
    }
    tx.commit()?;
    Ok(n)
}

// ---------------------------------------------------------------------------------------
// The restore log

/// What a restore did (or, while it runs, plans to do), as `restore_log` records it.
#[derive(Debug, Clone, Default)]
pub struct RestoreCounts {
    pub filled: u64,
    /// Replaced and improved.
    pub replaced: u64,
    pub kept: u64,
    pub conflicts: u64,
    pub skipped_current: u64,
}

/// Records a restore that starts now (`finished_at` 0 until [`finish_restore_log`]);
/// returns its id.
///
/// # Errors
/// A database error.
pub fn start_restore_log(
    conn: &Connection,
    started_at: i64,
    (file, source_server, categories): (&str, &str, &str),
    planned: &RestoreCounts,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO restore_log (started_at, file, source_server, categories, filled, replaced,
           kept, conflicts, skipped_current) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            started_at,
            file,
            source_server,
            categories,
            planned.filled as i64,
            planned.replaced as i64,
            planned.kept as i64,
            planned.conflicts as i64,
            planned.skipped_current as i64,
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Records that the restore `id` finished at `finished_at` with `done`;
/// `conflict_list` is the JSON list of its conflicting intervals.
///
/// # Errors
/// A database error.
pub fn finish_restore_log(
    conn: &Connection,
    id: i64,
    finished_at: i64,
    done: &RestoreCounts,
    conflict_list: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE restore_log SET finished_at = ?2, filled = ?3, replaced = ?4, kept = ?5,
           conflicts = ?6, skipped_current = ?7, conflict_list = ?8 WHERE id = ?1",
        params![
            id,
            finished_at,
            done.filled as i64,
            done.replaced as i64,
            done.kept as i64,
            done.conflicts as i64,
            done.skipped_current as i64,
            conflict_list,
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(c: &Connection) -> i64 {
        c.query_row("SELECT COUNT(*) FROM local_settings", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_short_transaction_commits_when_its_budget_is_spent_and_rolls_back_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cms.db");
        let store = super::super::Store::open(&path).unwrap();
        let other = Connection::open(&path).unwrap();
        // A budget of zero: every tick commits.
        let mut tx = ShortTx::new(&store.conn, Duration::ZERO, || 7);
        assert_eq!(tx.begin().unwrap(), 7);
        tx.conn()
            .execute("INSERT INTO local_settings VALUES ('a', '1')", [])
            .unwrap();
        tx.tick().unwrap();
        assert_eq!(settings(&other), 1, "committed at the tick");
        tx.begin().unwrap();
        tx.conn()
            .execute("INSERT INTO local_settings VALUES ('b', '1')", [])
            .unwrap();
        drop(tx);
        assert_eq!(settings(&other), 1, "rolled back on drop");
        assert!(store.conn.is_autocommit());
        // A long budget: nothing commits before finish.
        let mut tx = ShortTx::new(&store.conn, Duration::from_secs(3600), || 8);
        tx.begin().unwrap();
        tx.conn()
            .execute("INSERT INTO local_settings VALUES ('c', '1')", [])
            .unwrap();
        tx.tick().unwrap();
        assert_eq!(settings(&other), 1, "still open after the tick");
        tx.finish().unwrap();
        assert_eq!(settings(&other), 2, "committed at finish");
    }
}
