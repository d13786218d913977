//! Change tracking for `cms export` (docs/exports.md, "What is exported"): which
//! intervals changed since a target's previous export, and what each target was sent.
//!
//! Every writer of `interval_status` (the collector's commits, `cms restore`, the peer
//! sync, and any future one) is seen by two SQLite triggers on that table, so no writer
//! has to remember to tell the export: a write that changes an interval's status or
//! checksum appends `(acd, istart)` to `export_change` under a new, never reused
//! sequence number. A target's position is the last sequence number it has exported.
//!
//! The tables and triggers are created by the first `cms export` (`IF NOT EXISTS`), not
//! by a schema migration: they are this server's own bookkeeping, never in a backup,
//! and a new schema version would make every backup of this release refused by the
//! previous release's restore, which a rolling upgrade needs (the same reasoning as the
//! peer sync's `peer_state`, `store::peer`). A previous release that opens the database
//! keeps firing the triggers (they are in the database file), so nothing is missed
//! while it runs either. Before the first export nothing is tracked: a target that has
//! never exported takes every stored interval.
//!
//! It does not read interval rows (that is [`super::rows`]) nor decide how a target
//! writes them (`super::files`, `super::warehouse`).

use crate::domain::IntervalStatus;
use rusqlite::{params, Connection, OptionalExtension};

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS export_change (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    acd INTEGER NOT NULL,
    istart INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS export_change_on_insert BEFORE INSERT ON interval_status
WHEN NOT EXISTS (SELECT 1 FROM interval_status s WHERE s.acd = NEW.acd
    AND s.istart = NEW.istart AND s.status = NEW.status AND s.checksum = NEW.checksum)
BEGIN
    INSERT INTO export_change (acd, istart) VALUES (NEW.acd, NEW.istart);
END;
CREATE TRIGGER IF NOT EXISTS export_change_on_update AFTER UPDATE OF status, checksum
ON interval_status
WHEN OLD.status IS NOT NEW.status OR OLD.checksum IS NOT NEW.checksum
BEGIN
    INSERT INTO export_change (acd, istart) VALUES (NEW.acd, NEW.istart);
END;
CREATE TABLE IF NOT EXISTS export_target (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    last_run INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS export_sent (
    target TEXT NOT NULL,
    acd INTEGER NOT NULL,
    istart INTEGER NOT NULL,
    status TEXT NOT NULL,
    checksum TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (target, acd, istart)
) WITHOUT ROWID;
";

/// Creates the tracking tables and triggers if they are not there yet (one immediate
/// transaction, so two first exports at once create them once).
///
/// # Errors
/// A database error.
pub fn ensure(conn: &Connection) -> rusqlite::Result<()> {
    let present: bool = conn.query_row(
        "SELECT COUNT(*) = 3 FROM sqlite_master WHERE name IN
           ('export_change_on_insert', 'export_change_on_update', 'export_sent')",
        [],
        |r| r.get(0),
    )?;
    if present {
        return Ok(());
    }
    conn.execute_batch(&format!("BEGIN IMMEDIATE; {CREATE} COMMIT;"))
        .inspect_err(|_| {
            let _ = conn.execute_batch("ROLLBACK");
        })
}

/// Whether an interval goes to a target for the first time or again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// The target has never been sent this interval.
    New,
    /// The target was sent another status or content of it before (a restore, a peer
    /// sync or a replacement changed it since).
    Correction,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::New => "new",
            Change::Correction => "correction",
        }
    }
}

/// One interval to export: its `interval_status` row and what it is to the target.
#[derive(Debug, Clone)]
pub struct Interval {
    pub acd: u16,
    pub istart: i64,
    pub intrvl: u32,
    /// Local date `YYYY-MM-DD` and start `HHMM`, as stored.
    pub row_date: String,
    pub starttime: i64,
    pub status: IntervalStatus,
    pub reasons: String,
    pub source: String,
    pub row_count: i64,
    pub checksum: String,
    pub change: Change,
}

/// What a target has to export now.
#[derive(Debug)]
pub struct Pending {
    /// The target's position after this export: the last change sequence number seen.
    pub position: i64,
    /// The intervals whose status or content differ from what the target was sent, by
    /// ACD and start.
    pub intervals: Vec<Interval>,
}

/// The intervals of `acds` that `target` has to export: every stored one for a target
/// that never exported, else those changed since its position; minus those whose
/// status and checksum are what the target was sent. The caller reads inside one
/// transaction (`super::snapshot`), so that the position, the list and the rows it
/// reads next are one state of the database.
///
/// # Errors
/// A database error.
pub fn pending(tx: &Connection, target: &str, acds: &[u16]) -> rusqlite::Result<Pending> {
    let position: Option<i64> = tx
        .query_row(
            "SELECT position FROM export_target WHERE name = ?1",
            [target],
            |r| r.get(0),
        )
        .optional()?;
    let last: i64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM export_change", [], |r| {
        r.get(0)
    })?;
    let candidates = match position {
        None => "SELECT acd, istart FROM interval_status".to_string(),
        Some(_) => "SELECT DISTINCT acd, istart FROM export_change WHERE seq > ?1 AND seq <= ?2"
            .to_string(),
    };
    let sql = format!(
        "SELECT s.acd, s.istart, s.intrvl, s.row_date, s.starttime, s.status, s.reasons,
                s.source, s.row_count, s.checksum, e.status IS NOT NULL
         FROM ({candidates}) c
         JOIN interval_status s ON s.acd = c.acd AND s.istart = c.istart
         LEFT JOIN export_sent e ON e.target = ?3 AND e.acd = s.acd AND e.istart = s.istart
         WHERE e.status IS NULL OR e.status <> s.status OR e.checksum <> s.checksum
         ORDER BY s.acd, s.istart"
    );
    let mut st = tx.prepare(&sql)?;
    let mut q = match position {
        None => st.query(params![target, target, target])?,
        Some(p) => st.query(params![p, last, target])?,
    };
    let mut intervals = Vec::new();
    while let Some(r) = q.next()? {
        let acd: u16 = r.get(0)?;
        if !acds.is_empty() && !acds.contains(&acd) {
            continue;
        }
        intervals.push(Interval {
            acd,
            istart: r.get(1)?,
            intrvl: r.get(2)?,
            row_date: r.get(3)?,
            starttime: r.get(4)?,
            status: r.get(5)?,
            reasons: r.get(6)?,
            source: r.get(7)?,
            row_count: r.get(8)?,
            checksum: r.get(9)?,
            change: if r.get(10)? {
                Change::Correction
            } else {
                Change::New
            },
        });
    }
    Ok(Pending {
        position: last,
        intervals,
    })
}

/// Records that `target` now holds `done` (one short transaction): a rerun after a
/// kill does not send them again.
///
/// # Errors
/// A database error.
pub fn mark_sent(
    conn: &Connection,
    target: &str,
    done: &[Interval],
    now: i64,
) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    {
        let mut st = tx.prepare_cached(
            "INSERT OR REPLACE INTO export_sent (target, acd, istart, status, checksum, sent_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for i in done {
            st.execute(params![target, i.acd, i.istart, i.status, i.checksum, now])?;
        }
    }
    tx.commit()
}

/// Moves `target`'s position to `position` and forgets the changes every target has
/// seen.
///
/// # Errors
/// A database error.
pub fn finish(conn: &Connection, target: &str, position: i64, now: i64) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    tx.execute(
        "INSERT INTO export_target (name, position, last_run) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET position = MAX(position, excluded.position),
           last_run = excluded.last_run",
        params![target, position, now],
    )?;
    tx.execute(
        "DELETE FROM export_change WHERE seq <= (SELECT MIN(position) FROM export_target)",
        [],
    )?;
    tx.commit()
}

/// Every target's name, position and last run (UTC seconds), for `cms export --list`.
///
/// # Errors
/// A database error.
pub fn targets(conn: &Connection) -> rusqlite::Result<Vec<(String, i64, i64)>> {
    let exists: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE name = 'export_target'",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(vec![]);
    }
    let mut st =
        conn.prepare("SELECT name, position, last_run FROM export_target ORDER BY name")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}
