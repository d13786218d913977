//! The bodies of `cms peer init` and `cms sync` (the binary only parses and dispatches):
//! `cms sync --once` is one session; without `--once` it runs sessions by the
//! collector's peer schedule until stopped.

use super::session::{self, Local, Outcome};
use crate::config::Config;
use anyhow::Context;

/// `cms peer init [--force] [--identity DIR]`: makes this server's identity (in `dir`,
/// else where the configuration says) and returns what to print:
/// where it is, and the line to paste into the peer's `[peer]` section.
///
/// # Errors
/// An identity is already there (without `force`), or it cannot be written.
pub fn init(cfg: &Config, dir: Option<&std::path::Path>, force: bool) -> anyhow::Result<String> {
    let dir = dir.map_or_else(|| super::identity_dir(cfg), std::path::Path::to_owned);
    let f = super::identity::init(&dir, &cfg.server_id, force)?;
    Ok(format!(
        "peer identity of {} in {} (key.pem mode 0600, cert.pem)\n\
         put this line in the [peer] section of the peer's configuration:\n\
         peer_id = \"{f}\"\n",
        cfg.server_id,
        dir.display()
    ))
}

/// `cms peer id`: the line `cms peer init` printed, again.
///
/// # Errors
/// No identity yet.
pub fn show_id(cfg: &Config) -> anyhow::Result<String> {
    let me = super::identity::load(&super::identity_dir(cfg))?;
    Ok(format!("peer_id = \"{}\"\n", me.fingerprint))
}

/// What `cms sync --once` prints and how it exits.
pub struct SyncResult {
    pub text: String,
    pub json: serde_json::Value,
    /// Conflicts found: exit 3, as `cms restore` does.
    pub conflicts: bool,
}

/// What a sync by hand needs: the peer's section, a TLS connector pinned to it, and this
/// side's part of a session.
struct ByHand {
    pc: super::PeerConfig,
    connector: tokio_rustls::TlsConnector,
    local: Local,
}

impl ByHand {
    fn new(cfg: &Config, dry_run: bool) -> anyhow::Result<ByHand> {
        let pc = cfg.peer.clone().with_context(|| {
            format!("{}: no [peer] section: see docs/peer-sync.md", cfg.origin())
        })?;
        let me = super::identity::load(&super::identity_dir(cfg))?;
        let client = super::tls::client_config(&me, pc.peer_id)?;
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client));
        let local = Local {
            cfg: cfg.clone(),
            key: cfg.site_key()?,
            dry_run,
            ask_on_turn: false,
            timeout: pc.timeout,
        };
        Ok(ByHand {
            pc,
            connector,
            local,
        })
    }

    /// One session, this server asking (and, unless a dry run, the peer asking after
    /// it); what it did is kept in the peer state, as the service does.
    async fn session(&self) -> anyhow::Result<SyncResult> {
        let addr = &self.pc.address;
        let tls = super::service::connect(&self.connector, addr, self.pc.timeout).await?;
        let o = session::run(tls, addr, self.local.clone(), true).await?;
        if !self.local.dry_run {
            record(&self.local.cfg, addr, &o).await;
            super::service::save_views(&self.local.cfg, o.views.clone()).await;
        }
        Ok(render(addr, &o, self.local.dry_run))
    }
}

/// `cms sync --once [--dry-run]`: one session with the peer, this server asking (and,
/// unless a dry run, the peer asking after it).
///
/// # Errors
/// No `[peer]` section, no identity, the peer unreachable or refusing, or a restore
/// failing; the message names the peer and the reason.
pub fn sync_once(cfg: &Config, dry_run: bool) -> anyhow::Result<SyncResult> {
    let h = ByHand::new(cfg, dry_run)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(h.session())
}

/// `cms sync [--dry-run]` without `--once`: sessions with the peer until `stop`
/// resolves (Ctrl-C, SIGTERM), when the collector's peer task would start them
/// ([`super::service::Schedule`]: at once, every `interval_seconds`, sooner when an
/// interval closes here or a link comes back, after a failure again with backoff).
/// `print` gets each session's result; a failed session is logged as the service logs
/// it (rate-limited) and retried. Returns whether any session found conflicts.
///
/// # Errors
/// No `[peer]` section, no identity or no usable site key: nothing to retry.
pub async fn sync_until(
    cfg: &Config,
    dry_run: bool,
    stop: impl std::future::Future<Output = ()>,
    mut print: impl FnMut(&SyncResult) -> anyhow::Result<()>,
) -> anyhow::Result<bool> {
    let h = ByHand::new(cfg, dry_run)?;
    let mut sched = super::service::Schedule::new(h.pc.interval);
    let mut repeats = crate::link::repeats::Repeats::default();
    let mut conflicts = false;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = sched.due(cfg) => {}
        }
        let r = tokio::select! {
            r = h.session() => r,
            _ = &mut stop => break,
        };
        sched.done(r.is_ok());
        match r {
            Ok(r) => {
                conflicts |= r.conflicts;
                print(&r)?;
            }
            Err(e) => {
                let why = format!("{e:#}");
                let said = repeats.note(&why, std::time::Instant::now());
                super::service::warn_failed(&h.pc.address, &why, said);
            }
        }
    }
    Ok(conflicts)
}

/// Keeps what a manual sync did in the peer state, as the service does (never fatal).
async fn record(cfg: &Config, address: &str, o: &Outcome) {
    let pending = super::service::pending(cfg).await;
    let r = (|| -> anyhow::Result<()> {
        let store = crate::store::Store::open(&cfg.db_path())?;
        let mut s = crate::store::peer::load_state(&store.conn)?.unwrap_or_default();
        s.address = address.to_string();
        s.peer_server = o.peer_server.clone();
        s.connected = true;
        s.reason.clear();
        s.last_attempt = crate::store::intervals::now_secs();
        s.last_sync = s.last_attempt;
        s.healed += o.healed();
        s.pending = pending;
        s.conflicts = o.conflicts.len() as u64;
        s.peer_lacks = o.peer_lacks;
        s.peer_lacks_from = o.peer_lacks_from.map(|d| d.to_string()).unwrap_or_default();
        crate::store::peer::save_state(&store.conn, &s)?;
        Ok(())
    })();
    if let Err(e) = r {
        tracing::warn!("peer state: {e:#}");
    }
}

fn render(address: &str, o: &Outcome, dry_run: bool) -> SyncResult {
    let mut text = String::new();
    for r in &o.restores {
        text += &r.render();
    }
    let n = |c: u64, w: &str| crate::report::plural(c, w);
    let what = if dry_run { "sync plan" } else { "sync" };
    if o.restores.is_empty() {
        text += &format!(
            "{what} with peer {address} ({}): nothing to fetch: every interval the peer has \
             complete is complete here\n",
            o.peer_server
        );
    } else {
        text += &format!(
            "{what} with peer {address} ({}): {} in {}, {} healed\n",
            o.peer_server,
            n(o.bytes_received, "byte"),
            n(o.restores.len() as u64, "stream"),
            n(o.healed(), "interval"),
        );
    }
    if !o.conflicts.is_empty() {
        text += &format!(
            "  {} complete on both servers with different contents: kept, never resolved \
             (see `cms compare`)\n",
            n(o.conflicts.len() as u64, "interval")
        );
    }
    if o.peer_lacks > 0 {
        text += &format!(
            "  the peer lacks {} complete here (from {}): its own sync takes them\n",
            n(o.peer_lacks, "interval"),
            o.peer_lacks_from.map(|d| d.to_string()).unwrap_or_default()
        );
    }
    let json = serde_json::json!({
        "peer": address,
        "peer_server": o.peer_server,
        "dry_run": dry_run,
        "healed": o.healed(),
        "bytes_received": o.bytes_received,
        "streams_sent": o.streams_sent,
        "restores": o.restores,
        "conflicts": o.conflicts.iter().map(|(a, i)| serde_json::json!({"acd": a, "istart": i})).collect::<Vec<_>>(),
        "peer_lacks": o.peer_lacks,
    });
    SyncResult {
        text,
        json,
        conflicts: !o.conflicts.is_empty(),
    }
}
