//! Authenticated peer sync (issue #13, proto/peer-sync.md, docs/peer-sync.md): the two
//! servers of a pair find what each lacks complete and heal it from the other, with no
//! operator action.
//!
//! - [`wire`]: the message format, encode/decode. No I/O.
//! - [`identity`]: this server's certificate and key (`cms peer init`), fingerprints.
//! - [`tls`]: mutual TLS 1.3 with both certificates pinned; why a handshake failed.
//! - [`digest`]: per-day digests of the closed intervals and what to fetch (pure over
//!   rows the store reads, `store::peer`).
//! - [`session`]: one sync session over an authenticated stream, both roles (asker and
//!   holder); the data crosses as the backup stream of proto/backup-format.md and is
//!   merged by `merge::restore::restore_at`, so every promise of restore holds.
//! - [`service`]: the collector's peer task: listener, and the scheduler (after an
//!   interval closes, after the link or the peer comes back, every `interval_seconds`).
//! - [`status`]: the peer section of `cms status`, and the peer state kept in the store.
//! - [`cli`]: the bodies of `cms peer init` and `cms sync`.
//!
//! What this module does not do: decide how an interval is merged (that is `merge`), nor
//! read the interval tables itself (that is `store`).

pub mod cli;
pub mod digest;
pub mod identity;
pub mod service;
pub mod session;
pub mod status;
pub mod tls;
pub mod wire;

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The validated `[peer]` section.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The peer's `host:port` (resolved at every connect, so a name may move).
    pub address: String,
    /// Where this server accepts the peer's sessions; `None`: it only connects.
    pub listen: Option<std::net::SocketAddr>,
    /// The peer's pinned certificate fingerprint.
    pub peer_id: identity::Fingerprint,
    /// The directory holding this server's `key.pem` and `cert.pem`; `None`: the data
    /// directory's `peer/`.
    pub identity: Option<PathBuf>,
    /// Anti-entropy: a full comparison at least this often.
    pub interval: Duration,
    /// The bound of every wait for the peer: connect, handshake, each message.
    pub timeout: Duration,
}

/// The `[peer]` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPeer {
    address: Option<String>,
    listen: Option<String>,
    peer_id: Option<String>,
    identity: Option<PathBuf>,
    interval_seconds: Option<u64>,
    timeout_seconds: Option<f64>,
}

/// Default anti-entropy period.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// Default bound of each wait for the peer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl RawPeer {
    /// Checks the section; an error names the key (`peer.address`, ...) and the reason.
    ///
    /// # Errors
    /// A missing or malformed key.
    pub fn validate(self) -> Result<PeerConfig, String> {
        let address = self
            .address
            .ok_or("peer.address is missing: the peer's host:port")?;
        match address.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0) => {}
            _ => {
                return Err(format!(
                    "peer.address = {address:?}: not HOST:PORT with a port other than 0"
                ))
            }
        }
        let listen = self
            .listen
            .map(|l| {
                l.parse::<std::net::SocketAddr>()
                    .map_err(|_| format!("peer.listen = {l:?}: not IP:PORT"))
            })
            .transpose()?;
        let pid = self.peer_id.ok_or(
            "peer.peer_id is missing: the line `cms peer init` printed on the peer".to_string(),
        )?;
        let peer_id =
            identity::Fingerprint::parse(&pid).map_err(|e| format!("peer.peer_id: {e}"))?;
        let interval = Duration::from_secs(self.interval_seconds.unwrap_or(300));
        if !(Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(&interval) {
            return Err(format!(
                "peer.interval_seconds = {}: must be between 1 and 86400",
                interval.as_secs()
            ));
        }
        let t = self.timeout_seconds.unwrap_or(10.0);
        if !(0.2..=600.0).contains(&t) {
            return Err(format!(
                "peer.timeout_seconds = {t}: must be between 0.2 and 600"
            ));
        }
        if self
            .identity
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err("peer.identity = \"\": must name a directory (leave it out for the data directory's peer/)".into());
        }
        Ok(PeerConfig {
            address,
            listen,
            peer_id,
            identity: self.identity,
            interval,
            timeout: Duration::from_secs_f64(t),
        })
    }
}

/// Where this server's identity lives under `cfg`.
pub fn identity_dir(cfg: &crate::config::Config) -> PathBuf {
    cfg.peer
        .as_ref()
        .and_then(|p| p.identity.clone())
        .unwrap_or_else(|| cfg.data_dir.join("peer"))
}
