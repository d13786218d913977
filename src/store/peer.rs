//! Peer sync's SQL (proto/peer-sync.md, docs/peer-sync.md): the closed intervals' status
//! rows as the digests need them, and the `peer_state` row that `cms status` shows.
//!
//! `peer_state` is created when first written (`CREATE TABLE IF NOT EXISTS`), not by a
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
    let exists: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'peer_state'",
        [],
        |r| r.get(0),
    )?;
    if !exists {
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
}
