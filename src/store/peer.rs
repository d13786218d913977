//! Peer sync's SQL (proto/peer-sync.md, docs/peer-sync.md): the closed intervals' status
//! rows as the digests need them, the `peer_state` row that `cms status` shows, and the
//! peer's interval statuses as the last sync saw them (`peer_view_days`,
//! `peer_view_intervals`), which the console's coverage picture draws beside this
//! server's.
//!
//! These tables are created when first written (`CREATE TABLE IF NOT EXISTS`), not by a
//! schema migration: it is this server's own bookkeeping, never in a backup, and a new
//! schema version would make every backup of this release refused by the previous
//! release's restore, which a rolling upgrade needs.
//!
//! The digests' row reader is its own statement, not `store::status`'s backup reader
//! (`for_each_changed`): it reads four columns of one local date, where the backup reads
//! all thirteen of a UTC range, and an idle sync of 62 days reads every row of each ACD.

use crate::domain::IntervalStatus;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// One closed interval's status row, as the digests read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRow {
    pub istart: i64,
    /// `row_date`, the local date `YYYY-MM-DD`.
    pub date: String,
    pub complete: bool,
    /// The content checksum, hex.
    pub checksum: String,
}

/// Every closed interval of `acd` (optionally only of local date `date`), in time order.
///
/// # Errors
/// A database error.
pub fn status_rows(
    conn: &Connection,
    acd: u16,
    date: Option<&str>,
) -> rusqlite::Result<Vec<StatusRow>> {
    let mut st = conn.prepare_cached(
        "SELECT istart, row_date, status, checksum FROM interval_status
         WHERE acd = ?1 AND (?2 IS NULL OR row_date = ?2) ORDER BY istart",
    )?;
    let rows = st.query_map(params![acd, date], |r| {
        Ok(StatusRow {
            istart: r.get(0)?,
            date: r.get(1)?,
            complete: r.get::<_, IntervalStatus>(2)? == IntervalStatus::Complete,
            checksum: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// The peer state as stored and shown by `cms status`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PeerState {
    /// The peer's address as configured.
    pub address: String,
    /// The peer's `server_id` from its last HELLO.
    pub peer_server: String,
    pub connected: bool,
    /// Why not connected (or what the last session ended with); empty when all is well.
    pub reason: String,
    /// UTC seconds of the last attempt to reach the peer, and of the last sync that
    /// completed.
    pub last_attempt: i64,
    pub last_sync: i64,
    /// Intervals this server healed from the peer, in total.
    pub healed: u64,
    /// Intervals missing or incomplete here that the peer does not have complete either.
    pub pending: u64,
    /// Intervals complete on both with different contents (reported, never resolved).
    pub conflicts: u64,
    /// Intervals complete here that the peer lacks complete (its next sync takes them).
    pub peer_lacks: u64,
    /// The earliest local date of those (`YYYY-MM-DD`), or empty: the retention guard.
    pub peer_lacks_from: String,
}

const CREATE: &str = "CREATE TABLE IF NOT EXISTS peer_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    address TEXT NOT NULL, peer_server TEXT NOT NULL, connected INTEGER NOT NULL,
    reason TEXT NOT NULL, last_attempt INTEGER NOT NULL, last_sync INTEGER NOT NULL,
    healed INTEGER NOT NULL, pending INTEGER NOT NULL, conflicts INTEGER NOT NULL,
    peer_lacks INTEGER NOT NULL, peer_lacks_from TEXT NOT NULL)";

/// Whether `name` exists yet (these tables are created by their first write).
fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get(0),
    )
}

/// Writes the peer state (creating the table the first time).
///
/// # Errors
/// A database error.
pub fn save_state(conn: &Connection, s: &PeerState) -> rusqlite::Result<()> {
    conn.execute_batch(CREATE)?;
    conn.execute(
        "INSERT OR REPLACE INTO peer_state (id, address, peer_server, connected, reason,
           last_attempt, last_sync, healed, pending, conflicts, peer_lacks, peer_lacks_from)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            s.address,
            s.peer_server,
            s.connected,
            s.reason,
            s.last_attempt,
            s.last_sync,
            s.healed as i64,
            s.pending as i64,
            s.conflicts as i64,
            s.peer_lacks as i64,
            s.peer_lacks_from
        ],
    )?;
    Ok(())
}

/// The peer state, or `None` when none was ever written (no peer task has run here).
///
/// # Errors
/// A database error other than the table not existing yet.
pub fn load_state(conn: &Connection) -> rusqlite::Result<Option<PeerState>> {
    if !table_exists(conn, "peer_state")? {
        return Ok(None);
    }
    conn.query_row(
        "SELECT address, peer_server, connected, reason, last_attempt, last_sync, healed,
                pending, conflicts, peer_lacks, peer_lacks_from FROM peer_state WHERE id = 1",
        [],
        |r| {
            Ok(PeerState {
                address: r.get(0)?,
                peer_server: r.get(1)?,
                connected: r.get(2)?,
                reason: r.get(3)?,
                last_attempt: r.get(4)?,
                last_sync: r.get(5)?,
                healed: r.get::<_, i64>(6)? as u64,
                pending: r.get::<_, i64>(7)? as u64,
                conflicts: r.get::<_, i64>(8)? as u64,
                peer_lacks: r.get::<_, i64>(9)? as u64,
                peer_lacks_from: r.get(10)?,
            })
        },
    )
    .optional()
}

/// What the last sync learnt of one local day of the peer's intervals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerDay {
    /// The peer's closed intervals of the day were this server's, status and contents:
    /// equal digests, or a day only the peer had, fetched whole.
    Same,
    /// The peer's closed intervals of the day, `(istart, complete)` in time order (the
    /// days whose digests differed).
    Listed(Vec<(i64, bool)>),
    /// A day only the peer holds and this server did not fetch (older than its own
    /// retention): only the counts are known.
    Held { intervals: u16, complete: u16 },
}

/// The peer's intervals of one ACD as a sync saw them. A day not in `days` has no
/// closed interval on the peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerView {
    pub acd: u16,
    /// UTC seconds of the sync.
    pub at: i64,
    /// By local day number (days since 1970-01-01).
    pub days: std::collections::BTreeMap<u32, PeerDay>,
}

const CREATE_VIEW: &str = "CREATE TABLE IF NOT EXISTS peer_view (
    acd INTEGER PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS peer_view_days (
    acd INTEGER NOT NULL, day INTEGER NOT NULL, state INTEGER NOT NULL,
    intervals INTEGER NOT NULL, complete INTEGER NOT NULL, PRIMARY KEY (acd, day));
CREATE TABLE IF NOT EXISTS peer_view_intervals (
    acd INTEGER NOT NULL, day INTEGER NOT NULL, istart INTEGER NOT NULL,
    complete INTEGER NOT NULL, PRIMARY KEY (acd, istart))";

/// `peer_view_days.state`.
const SAME: i64 = 0;
const LISTED: i64 = 1;
const HELD: i64 = 2;

/// Replaces the stored view of each ACD in `views` (one transaction; creating the tables
/// the first time).
///
/// # Errors
/// A database error (nothing is changed then).
pub fn save_views(conn: &Connection, views: &[PeerView]) -> rusqlite::Result<()> {
    if views.is_empty() {
        return Ok(());
    }
    conn.execute_batch(CREATE_VIEW)?;
    let tx = conn.unchecked_transaction()?;
    for v in views {
        tx.execute("DELETE FROM peer_view_days WHERE acd = ?1", [v.acd])?;
        tx.execute("DELETE FROM peer_view_intervals WHERE acd = ?1", [v.acd])?;
        tx.execute(
            "INSERT OR REPLACE INTO peer_view (acd, at) VALUES (?1, ?2)",
            params![v.acd, v.at],
        )?;
        let mut day = tx.prepare_cached(
            "INSERT INTO peer_view_days (acd, day, state, intervals, complete)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut iv = tx.prepare_cached(
            "INSERT INTO peer_view_intervals (acd, day, istart, complete) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (d, pd) in &v.days {
            let (state, n, c) = match pd {
                PeerDay::Same => (SAME, 0, 0),
                PeerDay::Listed(rows) => {
                    for (istart, complete) in rows {
                        iv.execute(params![v.acd, d, istart, complete])?;
                    }
                    let c = rows.iter().filter(|r| r.1).count();
                    (LISTED, rows.len(), c)
                }
                PeerDay::Held {
                    intervals,
                    complete,
                } => (HELD, usize::from(*intervals), usize::from(*complete)),
            };
            day.execute(params![v.acd, d, state, n, c])?;
        }
    }
    tx.commit()
}

/// The stored view of the peer's intervals of `acd` on local days `[lo, hi]` (day
/// numbers), or `None` when no sync has recorded one.
///
/// # Errors
/// A database error other than the tables not existing yet.
pub fn load_view(
    conn: &Connection,
    acd: u16,
    (lo, hi): (u32, u32),
) -> rusqlite::Result<Option<PeerView>> {
    if !table_exists(conn, "peer_view")? {
        return Ok(None);
    }
    let Some(at) = conn
        .query_row("SELECT at FROM peer_view WHERE acd = ?1", [acd], |r| {
            r.get(0)
        })
        .optional()?
    else {
        return Ok(None);
    };
    let mut v = PeerView {
        acd,
        at,
        days: Default::default(),
    };
    let mut st = conn.prepare_cached(
        "SELECT day, state, intervals, complete FROM peer_view_days
         WHERE acd = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day",
    )?;
    let days = st.query_map(params![acd, lo, hi], |r| {
        Ok((
            r.get::<_, u32>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, u16>(2)?,
            r.get::<_, u16>(3)?,
        ))
    })?;
    let mut listed = false;
    for d in days {
        let (day, state, intervals, complete) = d?;
        let pd = match state {
            SAME => PeerDay::Same,
            LISTED => {
                listed = true;
                PeerDay::Listed(vec![])
            }
            HELD => PeerDay::Held {
                intervals,
                complete,
            },
            // Written by another release: not guessed at.
            other => return Err(rusqlite::Error::IntegralValueOutOfRange(1, other)),
        };
        v.days.insert(day, pd);
    }
    if listed {
        let mut st = conn.prepare_cached(
            "SELECT day, istart, complete FROM peer_view_intervals
             WHERE acd = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY istart",
        )?;
        let rows = st.query_map(params![acd, lo, hi], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })?;
        for r in rows {
            let (day, istart, complete) = r?;
            if let Some(PeerDay::Listed(v)) = v.days.get_mut(&day) {
                v.push((istart, complete));
            }
        }
    }
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_is_absent_before_the_first_write() {
        let d = tempfile::tempdir().unwrap();
        let s = crate::store::Store::open(&d.path().join("cms.db")).unwrap();
        assert_eq!(load_state(&s.conn).unwrap(), None);
        let st = PeerState {
            address: "b:1".into(),
            connected: true,
            healed: 4,
            peer_lacks_from: "2026-11-04".into(),
            ..Default::default()
        };
        save_state(&s.conn, &st).unwrap();
        save_state(&s.conn, &st).unwrap();
        assert_eq!(load_state(&s.conn).unwrap(), Some(st));
    }

    #[test]
    fn the_peer_view_round_trips_by_day_range_and_a_new_sync_replaces_it() {
        let d = tempfile::tempdir().unwrap();
        let s = crate::store::Store::open(&d.path().join("cms.db")).unwrap();
        assert_eq!(load_view(&s.conn, 1, (0, u32::MAX)).unwrap(), None);
        let mut v = PeerView {
            acd: 1,
            at: 1_000,
            days: Default::default(),
        };
        v.days.insert(10, PeerDay::Same);
        v.days
            .insert(11, PeerDay::Listed(vec![(950_400, true), (951_300, false)]));
        v.days.insert(
            12,
            PeerDay::Held {
                intervals: 96,
                complete: 90,
            },
        );
        let other = PeerView {
            acd: 2,
            at: 1_000,
            days: [(11, PeerDay::Listed(vec![(950_400, false)]))].into(),
        };
        save_views(&s.conn, &[v.clone(), other.clone()]).unwrap();
        assert_eq!(load_view(&s.conn, 1, (0, 100)).unwrap(), Some(v.clone()));
        assert_eq!(load_view(&s.conn, 2, (0, 100)).unwrap(), Some(other));
        let part = load_view(&s.conn, 1, (11, 11)).unwrap().unwrap();
        assert_eq!(part.days.keys().copied().collect::<Vec<_>>(), vec![11]);
        assert_eq!(part.days[&11], v.days[&11]);
        // The next sync's view replaces the whole of that ACD's.
        let next = PeerView {
            acd: 1,
            at: 2_000,
            days: [(10, PeerDay::Same)].into(),
        };
        save_views(&s.conn, std::slice::from_ref(&next)).unwrap();
        assert_eq!(load_view(&s.conn, 1, (0, 100)).unwrap(), Some(next));
    }
}
