//! The peer section of `cms status` and `cms status --json` (docs/peer-sync.md, "What
//! the status says"), from the `peer_state` row the peer task keeps.

use crate::store::peer::{load_state, PeerState};
use serde::Serialize;

/// The peer as `cms status --json` shows it (`"peer"`).
#[derive(Debug, Serialize)]
pub struct PeerStatus {
    /// The configured address.
    pub address: String,
    /// `connected`, `not connected`, or `never tried` (no collector has run with the
    /// peer configured).
    pub state: String,
    #[serde(flatten)]
    pub stored: PeerState,
    /// Seconds since the last completed sync, if any.
    pub last_sync_age_seconds: Option<i64>,
}

/// The peer status of the database behind `conn`, for the peer at `address`.
///
/// # Errors
/// A database error.
pub fn peer_status(conn: &rusqlite::Connection, address: &str) -> rusqlite::Result<PeerStatus> {
    let stored = load_state(conn)?;
    let now = crate::store::intervals::now_secs();
    Ok(match stored {
        None => PeerStatus {
            address: address.to_string(),
            state: "never tried".into(),
            stored: PeerState::default(),
            last_sync_age_seconds: None,
        },
        Some(s) => PeerStatus {
            address: address.to_string(),
            state: if s.connected {
                "connected"
            } else {
                "not connected"
            }
            .into(),
            last_sync_age_seconds: (s.last_sync > 0).then(|| now - s.last_sync),
            stored: s,
        },
    })
}

/// The text `cms status` prints for the peer.
pub fn render(p: &PeerStatus) -> String {
    let n = |c: u64, w: &str| crate::report::plural(c, w);
    let who = if p.stored.peer_server.is_empty() {
        String::new()
    } else {
        format!(" ({})", p.stored.peer_server)
    };
    let mut o = format!("peer {}{who}: {}", p.address, p.state);
    if !p.stored.reason.is_empty() {
        o += &format!(": {}", p.stored.reason);
    }
    o += "\n";
    match p.last_sync_age_seconds {
        Some(age) => {
            let at = chrono::DateTime::from_timestamp(p.stored.last_sync, 0)
                .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_default();
            o += &format!("  last sync {at} ({age} s ago)\n");
        }
        None => o += "  no sync completed yet\n",
    }
    o += &format!(
        "  {} healed, {} pending (the peer has them not complete either), {}\n",
        n(p.stored.healed, "interval"),
        n(p.stored.pending, "interval"),
        n(p.stored.conflicts, "conflict"),
    );
    if p.stored.conflicts > 0 {
        o += "  conflicts are intervals complete on both servers with different contents: \
              kept on both, never resolved; see `cms compare` and docs/peer-sync.md\n";
    }
    if p.stored.peer_lacks > 0 {
        o += &format!(
            "  the peer lacks {} complete here (from {}): its next sync takes them\n",
            n(p.stored.peer_lacks, "interval"),
            p.stored.peer_lacks_from
        );
    }
    o
}

/// The retention guard (issue #13, docs/peer-sync.md): the `today` the retention purge of
/// intrahour intervals may use. While the peer is reachable (its last session completed)
/// and lacks complete some intervals of this server from date `L` on, the purge keeps
/// every day from `L` (it purges as if today were `L + intrahour_days`) and logs that it
/// does; when the peer is not reachable, the purge goes ahead and the log says clearly
/// that it removes intervals the peer lacks.
pub fn purge_today(
    store: &crate::store::Store,
    cfg: &crate::config::Config,
    today: chrono::NaiveDate,
) -> chrono::NaiveDate {
    if cfg.peer.is_none() {
        return today;
    }
    let Ok(Some(s)) = load_state(&store.conn) else {
        return today;
    };
    let Ok(lacks) = chrono::NaiveDate::parse_from_str(&s.peer_lacks_from, "%Y-%m-%d") else {
        return today;
    };
    let days = chrono::Days::new(cfg.retention.intrahour_days.into());
    let cutoff = today - days;
    if lacks >= cutoff {
        return today;
    }
    if s.connected {
        tracing::warn!(
            peer = %s.address,
            "retention: keeping the intervals from {lacks} on (due to be purged before {cutoff}): \
             the peer lacks {} complete here and is reachable",
            s.peer_lacks
        );
        lacks + days
    } else {
        tracing::warn!(
            peer = %s.address,
            "retention: purging intervals before {cutoff} that the peer lacks complete (from \
             {lacks}): the peer is not reachable ({})",
            s.reason
        );
        today
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn the_purge_keeps_what_a_reachable_peer_lacks_and_only_that() {
        let d = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&d.path().join("cms.db")).unwrap();
        let id = "AB".repeat(32);
        let text = format!(
            "[retention]\nintrahour_days = 10\n[peer]\naddress = \"b:7\"\npeer_id = \"{id}\"\n"
        );
        let cfg = crate::config::Config::parse_str(&text, None).unwrap();
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let today = day("2026-11-20");
        assert_eq!(purge_today(&store, &cfg, today), today, "no state yet");
        let mut s = PeerState {
            connected: true,
            peer_lacks: 5,
            peer_lacks_from: "2026-11-03".into(),
            ..Default::default()
        };
        crate::store::peer::save_state(&store.conn, &s).unwrap();
        // Due to purge before 11-10; the peer lacks from 11-03: keep from 11-03.
        assert_eq!(purge_today(&store, &cfg, today), day("2026-11-13"));
        // Lacking only from 11-12: nothing due to be purged is lacking.
        s.peer_lacks_from = "2026-11-12".into();
        crate::store::peer::save_state(&store.conn, &s).unwrap();
        assert_eq!(purge_today(&store, &cfg, today), today);
        // Not reachable: the purge goes ahead (and says so).
        s.peer_lacks_from = "2026-11-03".into();
        s.connected = false;
        crate::store::peer::save_state(&store.conn, &s).unwrap();
        assert_eq!(purge_today(&store, &cfg, today), today);
        // No peer configured: the guard is off.
        let plain =
            crate::config::Config::parse_str("[retention]\nintrahour_days = 10\n", None).unwrap();
        assert_eq!(purge_today(&store, &plain, today), today);
    }
}
