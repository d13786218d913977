//! The collector's peer task (docs/peer-sync.md): accepts the peer's sessions on
//! `peer.listen`, and starts its own session after an interval closes here, after a link
//! comes back, after a failed attempt (retried with backoff), and every
//! `peer.interval_seconds` (anti-entropy). What each session did is kept in the store's
//! `peer_state` row for `cms status`.

use super::identity::Identity;
use super::session::{self, Local, Outcome};
use super::{tls, PeerConfig};
use crate::config::Config;
use crate::domain::{GapKind, LinkState};
use crate::link::repeats::{Repeats, Said};
use crate::store::{peer as sp, Store};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{info, warn};

/// How often the task looks for a closed interval or a link that came back.
const POLL: Duration = Duration::from_millis(250);
/// The first retry after a failed session; doubled up to the anti-entropy interval.
const RETRY_FIRST: Duration = Duration::from_secs(1);

/// The shared state of the task and its accepted sessions.
struct Shared {
    cfg: Config,
    pc: PeerConfig,
    local: Local,
    acceptor: tokio_rustls::TlsAcceptor,
    connector: tokio_rustls::TlsConnector,
    state: Mutex<sp::PeerState>,
    /// One restore at a time: sessions this side asks in are serialised.
    asking: tokio::sync::Mutex<()>,
    /// One write of the state row at a time, each taking the state as it is then: a
    /// write cannot land after a newer one with an older copy (the start's "not
    /// connected" after the first session's "last sync").
    persisting: tokio::sync::Mutex<()>,
    /// Failed sessions' warnings, rate-limited.
    repeats: Mutex<Repeats>,
    /// The collector's live state: the peer's reachability for `/readyz`.
    metrics: Arc<crate::metrics::Metrics>,
}

/// Runs until `stop` turns true. Never fails the collector: a broken identity or an
/// unusable listen address is logged and shown in `cms status`.
pub async fn run(
    cfg: Config,
    mut stop: watch::Receiver<bool>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let Some(pc) = cfg.peer.clone() else { return };
    let mut state = sp::PeerState {
        address: pc.address.clone(),
        ..Default::default()
    };
    let dir = super::identity_dir(&cfg);
    let me = match super::identity::load(&dir) {
        Ok(me) => me,
        Err(e) => {
            warn!("peer sync off: {e:#}");
            state.reason = format!("peer sync off: {e:#}");
            metrics.set_peer(false, &state.reason);
            save(&cfg, &state).await;
            return;
        }
    };
    let shared = match setup(&cfg, &pc, &me, state, metrics.clone()) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            warn!("peer sync off: {e:#}");
            metrics.set_peer(false, &format!("peer sync off: {e:#}"));
            return;
        }
    };
    info!(me = %me.fingerprint, peer = %pc.address, listen = ?pc.listen, "peer sync on");
    let listener = match pc.listen {
        None => None,
        Some(addr) => match TcpListener::bind(addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                let why = format!("peer.listen {addr}: cannot listen: {e}");
                warn!("{why}");
                shared.update(|s| s.reason = why.clone());
                None
            }
        },
    };
    shared.persist().await;
    let mut sched = Schedule::new(shared.pc.interval);
    // This side's own session runs as a task of its own, so that the peer's sessions are
    // still accepted meanwhile: two servers that start a session at the same moment
    // would otherwise each wait for the other's TLS handshake until the timeout, and,
    // retrying on the same schedule, could do so again and again.
    let mut own: Option<tokio::task::JoinHandle<bool>> = None;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            a = accept(listener.as_ref()) => {
                if let Some((tcp, addr)) = a {
                    let sh = shared.clone();
                    let st = stop.clone();
                    tokio::spawn(async move { sh.serve(tcp, addr, st).await });
                }
            }
            ok = finished(&mut own) => {
                own = None;
                sched.done(ok);
            }
            _ = sched.due(&shared.cfg), if own.is_none() => {
                own = Some(tokio::spawn(shared.clone().initiate()));
            }
        }
    }
    if let Some(h) = own {
        h.abort();
        let _ = h.await;
    }
    shared.update(|s| {
        s.connected = false;
        s.reason = "the collector stopped".into();
    });
    shared.persist().await;
}

fn setup(
    cfg: &Config,
    pc: &PeerConfig,
    me: &Identity,
    state: sp::PeerState,
    metrics: Arc<crate::metrics::Metrics>,
) -> anyhow::Result<Shared> {
    let server = tls::server_config(me, pc.peer_id)?;
    let client = tls::client_config(me, pc.peer_id)?;
    Ok(Shared {
        cfg: cfg.clone(),
        pc: pc.clone(),
        local: Local {
            cfg: cfg.clone(),
            key: cfg.site_key().ok().flatten(),
            dry_run: false,
            ask_on_turn: true,
            timeout: pc.timeout,
        },
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
        connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
        state: Mutex::new(state),
        asking: tokio::sync::Mutex::new(()),
        persisting: tokio::sync::Mutex::new(()),
        repeats: Mutex::new(Repeats::default()),
        metrics,
    })
}

/// The result of this side's own session once it ends (false if its task failed);
/// never, while none runs.
async fn finished(own: &mut Option<tokio::task::JoinHandle<bool>>) -> bool {
    match own {
        Some(h) => h.await.unwrap_or(false),
        None => std::future::pending().await,
    }
}

async fn accept(l: Option<&TcpListener>) -> Option<(TcpStream, SocketAddr)> {
    match l {
        None => std::future::pending().await,
        Some(l) => match l.accept().await {
            Ok(x) => Some(x),
            Err(e) => {
                warn!("peer listener: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                None
            }
        },
    }
}

/// When this side starts its next session: at once, then every `interval`
/// (anti-entropy), sooner when an interval closes here or a link comes back, and after a
/// failed session again after a backoff (1 s, doubled up to `interval`). The collector's
/// peer task and `cms sync` both run their sessions by it.
pub struct Schedule {
    interval: Duration,
    next: Instant,
    retry: Duration,
    seen: Triggers,
    poll: tokio::time::Interval,
}

impl Schedule {
    /// The first session is due at once.
    pub fn new(interval: Duration) -> Schedule {
        Schedule {
            interval,
            next: Instant::now(),
            retry: RETRY_FIRST,
            seen: Triggers::default(),
            poll: tokio::time::interval(POLL),
        }
    }

    /// Returns when a session is due, looking every [`POLL`] at this server's database
    /// (`cfg`) for a closed interval or a link that came back. Cancel-safe.
    pub async fn due(&mut self, cfg: &Config) {
        loop {
            self.poll.tick().await;
            let now = self.seen.read(cfg).await;
            if now.fires_after(&self.seen) {
                self.next = self.next.min(Instant::now());
            }
            self.seen = now;
            if Instant::now() >= self.next {
                return;
            }
        }
    }

    /// A session ended (`ok`: it completed): the next is due after the anti-entropy
    /// interval, or after the backoff. Returns how long until then.
    pub fn done(&mut self, ok: bool) -> Duration {
        let wait = if ok {
            self.retry = RETRY_FIRST;
            self.interval
        } else {
            let w = self.retry;
            self.retry = (self.retry * 2).min(self.interval);
            w
        };
        self.next = Instant::now() + wait;
        wait
    }
}

/// What makes the task sync before its anti-entropy time: per ACD, the last closed
/// interval and whether the link is up.
#[derive(Default, PartialEq, Eq)]
struct Triggers {
    last_closed: BTreeMap<u16, i64>,
    link_up: BTreeMap<u16, bool>,
}

impl Triggers {
    async fn read(&self, cfg: &Config) -> Triggers {
        let db = cfg.db_path();
        tokio::task::spawn_blocking(move || -> rusqlite::Result<Triggers> {
            let mut t = Triggers::default();
            let Ok(store) = Store::open_read_only(&db) else {
                return Ok(t);
            };
            let mut st = store
                .conn
                .prepare("SELECT acd, MAX(istart) FROM interval_status GROUP BY acd")?;
            for r in st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
                let (a, i) = r?;
                t.last_closed.insert(a, i);
            }
            let mut st = store.conn.prepare("SELECT acd, state FROM link_state")?;
            for r in st.query_map([], |r| Ok((r.get(0)?, r.get::<_, LinkState>(1)?)))? {
                let (a, s) = r?;
                t.link_up.insert(a, s == LinkState::DataTransfer);
            }
            Ok(t)
        })
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
    }

    /// An interval closed, or a link came up, since `before`.
    fn fires_after(&self, before: &Triggers) -> bool {
        let closed = self
            .last_closed
            .iter()
            .any(|(a, i)| before.last_closed.get(a) != Some(i));
        let up = self
            .link_up
            .iter()
            .any(|(a, u)| *u && before.link_up.get(a) != Some(&true));
        closed || up
    }
}

/// Runs `f` on this server's database on a blocking thread; a failure is logged as
/// `what`, never fatal (the peer task's own bookkeeping).
async fn write_db(
    cfg: &Config,
    what: &'static str,
    f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<()> + Send + 'static,
) {
    let db = cfg.db_path();
    let shown = db.display().to_string();
    let r = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let store = Store::open(&db)?;
        f(&store.conn)?;
        Ok(())
    })
    .await;
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!("{what}: {shown}: cannot write: {e:#}"),
        Err(e) => warn!("{what}: {shown}: the writer failed: {e}"),
    }
}

/// Writes the state row (logged, never fatal).
async fn save(cfg: &Config, s: &sp::PeerState) {
    let s = s.clone();
    write_db(cfg, "peer state", move |c| sp::save_state(c, &s)).await;
}

/// Writes what a sync saw of the peer's intervals (logged, never fatal).
pub async fn save_views(cfg: &Config, views: Vec<sp::PeerView>) {
    if !views.is_empty() {
        write_db(cfg, "peer view", move |c| sp::save_views(c, &views)).await;
    }
}

impl Shared {
    /// Changes the state row's copy in memory, and the peer's reachability that
    /// `/readyz` reads.
    fn update(&self, f: impl FnOnce(&mut sp::PeerState)) {
        let mut s = self.state.lock().expect("peer state lock");
        f(&mut s);
        self.metrics.set_peer(s.connected, &s.reason);
    }

    async fn persist(&self) {
        let _one = self.persisting.lock().await;
        let s = self.state.lock().expect("peer state lock").clone();
        save(&self.cfg, &s).await;
    }

    /// One session this side starts; true when it completed.
    async fn initiate(self: Arc<Self>) -> bool {
        let _one = self.asking.lock().await;
        let addr = self.pc.address.clone();
        self.update(|s| s.last_attempt = crate::store::intervals::now_secs());
        let r = connect(&self.connector, &addr, self.pc.timeout).await;
        let r = match r {
            Ok(tls) => session::run(tls, &addr, self.local.clone(), true).await,
            Err(e) => Err(e),
        };
        self.finish(&addr, r).await
    }

    /// A session the peer started.
    async fn serve(
        self: Arc<Self>,
        tcp: TcpStream,
        addr: SocketAddr,
        mut stop: watch::Receiver<bool>,
    ) {
        let hs = tokio::time::timeout(self.pc.timeout, self.acceptor.accept(tcp)).await;
        let tls = match hs {
            Err(_) => {
                warn!(peer = %addr, "peer refused: no TLS handshake within {:?}", self.pc.timeout);
                return;
            }
            Ok(Err(e)) => {
                warn!(peer = %addr, "peer refused: {}", tls::refusal(&e));
                return;
            }
            Ok(Ok(t)) => t,
        };
        info!(peer = %addr, "peer connected");
        // Ask in the peer's session only when this side is not asking already (its own
        // session to the peer): never two restores at once, and two sessions crossing
        // each other never wait for each other.
        let one = self.asking.try_lock().ok();
        let mut local = self.local.clone();
        local.ask_on_turn = one.is_some();
        let peer = addr.to_string();
        let r = tokio::select! {
            r = session::run(tls, &peer, local, false) => r,
            _ = stop.changed() => Err(anyhow::anyhow!("the collector is stopping")),
        };
        drop(one);
        self.finish(&peer, r).await;
    }

    /// Records a session's end: what it healed, or why it failed.
    async fn finish(&self, addr: &str, r: anyhow::Result<Outcome>) -> bool {
        let ok = r.is_ok();
        self.metrics.peer_sync(r.as_ref().ok());
        match r {
            Ok(o) => {
                let healed = o.healed();
                let pending = pending(&self.cfg).await;
                for rep in &o.restores {
                    info!(peer = %addr, "{}", rep.render().trim_end());
                }
                if !o.conflicts.is_empty() {
                    warn!(peer = %addr, conflicts = o.conflicts.len(), "intervals complete on both servers with different contents (kept, never resolved): see `cms compare`");
                }
                info!(peer = %addr, server = %o.peer_server, healed, pending, sent = o.streams_sent, "peer sync done");
                save_views(&self.cfg, o.views.clone()).await;
                self.update(|s| {
                    s.connected = true;
                    s.reason.clear();
                    s.peer_server = o.peer_server.clone();
                    if o.asked {
                        s.last_sync = crate::store::intervals::now_secs();
                        s.healed += healed;
                        s.pending = pending;
                        s.conflicts = o.conflicts.len() as u64;
                        s.peer_lacks = o.peer_lacks;
                        s.peer_lacks_from =
                            o.peer_lacks_from.map(|d| d.to_string()).unwrap_or_default();
                    }
                });
            }
            Err(e) => {
                let why = format!("{e:#}");
                let said = self
                    .repeats
                    .lock()
                    .expect("repeats lock")
                    .note(&why, Instant::now());
                warn_failed(addr, &why, said);
                self.update(|s| {
                    s.connected = false;
                    s.reason = why.clone();
                });
            }
        }
        self.persist().await;
        ok
    }
}

/// Intervals still missing or incomplete here (up to the interval being collected).
pub async fn pending(cfg: &Config) -> u64 {
    let cfg = cfg.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let store = Store::open_read_only(&cfg.db_path())?;
        let grid = cfg.grid();
        let mut n = 0u64;
        for a in &cfg.acds {
            if let Some((f, t)) = crate::report::gap_range(&store.conn, &grid, a.acd, None, None)? {
                n += crate::report::gaps(&store.conn, &grid, a.acd, f, t)?
                    .iter()
                    .filter(|g| g.kind != GapKind::Restored)
                    .map(|g| u64::from(g.intervals))
                    .sum::<u64>();
            }
        }
        Ok(n)
    })
    .await
    .ok()
    .and_then(Result::ok)
    .unwrap_or(0)
}

/// The warning of a failed session, rate-limited as the collector's reconnect warnings
/// are: the same reason again within a minute only at DEBUG, then with the count.
pub fn warn_failed(addr: &str, why: &str, said: Said) {
    match said.suffix() {
        Some(more) => warn!(peer = %addr, "peer sync failed: {why}{more}"),
        None => tracing::debug!(peer = %addr, "peer sync failed: {why}"),
    }
}

/// Connects to the peer and completes the TLS handshake, both within `timeout`.
///
/// # Errors
/// Cannot connect, or the handshake failed; the message names the address and why.
pub async fn connect(
    connector: &tokio_rustls::TlsConnector,
    addr: &str,
    timeout: Duration,
) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => anyhow::bail!("{addr}: cannot connect within {timeout:?}"),
        Ok(Err(e)) => anyhow::bail!("{addr}: cannot connect: {e}"),
        Ok(Ok(t)) => t,
    };
    let _ = tcp.set_nodelay(true);
    let name = rustls::pki_types::ServerName::try_from(tls::SERVER_NAME).expect("valid name");
    match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Err(_) => anyhow::bail!("{addr}: no TLS handshake within {timeout:?}"),
        Ok(Err(e)) => anyhow::bail!("{addr}: refused: {}", tls::refusal(&e)),
        Ok(Ok(t)) => Ok(t),
    }
}
