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
