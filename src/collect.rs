//! `cms collect`: link + aggregation + store for every configured ACD, with periodic
//! checkpoints and one shutdown path.
//!
//! [`run`] takes the configuration and one shutdown future (SIGTERM, Ctrl-C and the
//! Windows service Stop event all resolve it). Each ACD gets its own task on the async
//! runtime (the link session, its heartbeats and timers) and its own database thread
//! ([`writer`]: commits, daily summaries, the purge, the link state), so a slow disk
//! under one ACD never delays another's session; on shutdown every task checkpoints what
//! it holds and acknowledges it to the switch before [`run`] returns.
//!
//! Durability rule: closed intervals and the aggregation state are committed in the same
//! transaction, and only then acknowledged, so a crash at any point resumes from a state
//! whose intervals are all stored and replays exactly what came after.
//!
//! The systemd readiness notice ([`notify_ready`]) is written by hand, not with the
//! `sd-notify` crate. Checked against its newest release (0.5.0, January 2025):
//! `sd_notify::notify` connects a `UnixDatagram` to `$NOTIFY_SOCKET` taken as a file path,
//! so an `@name` socket in the abstract namespace (which `sd_notify(3)` specifies and
//! systemd hands to some services) fails with "No such file or directory" and the notice
//! is lost. Tried with a receiver bound to an abstract name. It does the rest
//! (`READY=1`, `STOPPING=1`, `WATCHDOG=1`, path sockets); adopt it if a release reaches
//! abstract sockets. `tests/collector.rs` drives both kinds of socket through the binary.

use crate::agg::{Aggregator, ClosedInterval};
use crate::config::{AcdConfig, Config};
use crate::domain::LinkState;
use crate::link::{self, Backoff, LinkError};
use crate::metrics::{AcdMetrics, Metrics};
use crate::proto::{Frame, Welcome};
use crate::store::intervals::{now_secs, Checkpoint};
use crate::store::Store;
use anyhow::Context;
use futures::{FutureExt, StreamExt};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use step::{Taken, MAX_PENDING_INTERVALS};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};
use writer::{CommitJob, DbWriter};

pub mod step;
pub mod watchdog;
pub mod writer;

/// Frames handled in a row from what is already received, before the timers are checked.
const BATCH: usize = 1024;

/// How long shutdown waits for the ACD tasks to checkpoint and close.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Creates the data directory, private to the service (promise 7).
///
/// # Errors
/// The directory cannot be created or its mode set.
pub fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create data directory", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("{}: cannot set mode 0700", dir.display()))?;
    }
    Ok(())
}

/// The lock a running collector holds on its data directory: a second collector on the
/// same database is refused, and `cms restore --include-local` can tell collection is on.
pub const LOCK_FILE: &str = "collect.lock";

/// Takes the collector lock of `dir`.
///
/// # Errors
/// Another collector holds it, or the file cannot be created.
pub fn lock_data_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    let p = dir.join(LOCK_FILE);
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600); // private (promise 7)
    let f = opts
        .open(&p)
        .with_context(|| format!("{}: cannot create lock file", p.display()))?;
    match f.try_lock() {
        Ok(()) => {
            // A lock file an older release left 0644 is made private too (`mode` above
            // applies only when the file is created).
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let m = f.metadata().map(|m| m.permissions().mode()).unwrap_or(0);
                if m & 0o077 != 0 {
                    f.set_permissions(std::fs::Permissions::from_mode(0o600))
                        .with_context(|| format!("{}: cannot make it private", p.display()))?;
                }
            }
            Ok(f)
        }
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "{}: another cms collect is already running on this data directory",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("{}: cannot lock", p.display()))
        }
    }
}

/// Whether a collector is running on `dir` (holds its lock).
pub fn collection_running(dir: &Path) -> bool {
    let p = dir.join(LOCK_FILE);
    match std::fs::OpenOptions::new().write(true).open(&p) {
        Err(_) => false,
        Ok(f) => matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
    }
}

/// Runs the collector until `shutdown` resolves. `ready` is called once every database
/// is open and every checkpoint recovered (systemd `READY=1`).
///
/// # Errors
/// The data directory or a database cannot be opened; errors after start-up are logged
/// and retried, not returned.
pub async fn run(
    cfg: Config,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(),
) -> anyhow::Result<()> {
    ensure_data_dir(&cfg.data_dir)?;
    let _lock = lock_data_dir(&cfg.data_dir)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let metrics = Arc::new(Metrics::new(&cfg.server_id));
    let mut tasks = vec![];
    // The systemd watchdog, when systemd asked for one (WatchdogSec=), probes every
    // database thread. Only then are probes made: each holds its thread's job queue
    // open, so one left unused would keep that thread from closing at shutdown.
    let watchdog = watchdog::period_from_env();
    let mut probes = vec![];
    for acd in cfg.acds.clone() {
        let store = Store::open(&cfg.db_path())?;
        store.set_setting("server_id", &cfg.server_id)?;
        let agg = recover(&store, &cfg, acd.acd)?;
        info!(
            acd = acd.acd,
            switch = %acd.primary,
            epoch = agg.epoch(),
            seq = agg.last_seq(),
            "collector ready"
        );
        let db = DbWriter::start(&cfg, acd.acd, store, metrics.clone())?;
        if watchdog.is_some() {
            probes.extend(db.probe());
        }
        let cfg = cfg.clone();
        let rx = stop_rx.clone();
        let m = metrics.clone();
        tasks.push(tokio::spawn(async move {
            AcdTask::new(cfg, acd, db, agg, rx, m).run().await
        }));
    }
    if cfg.peer.is_some() {
        // Peer sync (proto/peer-sync.md): its own task, stopped with the collectors.
        let peer = crate::peer::service::run(cfg.clone(), stop_rx.clone(), metrics.clone());
        tasks.push(tokio::spawn(async move {
            peer.await;
            Ok(())
        }));
    }
    if let Some(period) = watchdog {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        tasks.push(tokio::spawn(
            watchdog::run(period, probes, socket, stop_rx.clone()).map(Ok),
        ));
    }
    // The HTTP endpoints (crate::web), stopped with the collectors.
    let state = crate::web::WebState {
        config: Arc::new(cfg.clone()),
        metrics: metrics.clone(),
    };
    if let Some(web) = crate::web::serve(state, stop_rx.clone()).await {
        tasks.push(tokio::spawn(async move {
            web.await.context("HTTP server task")
        }));
    }
    ready();
    shutdown.await;
    info!("stopping: checkpointing");
    let _ = stop_tx.send(true);
    let all = futures::future::join_all(tasks);
    match tokio::time::timeout(SHUTDOWN_GRACE, all).await {
        Ok(results) => {
            for r in results {
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => warn!("final checkpoint failed: {e:#}"),
                    Err(e) => warn!("collector task failed: {e}"),
                }
            }
        }
        Err(_) => warn!("collector tasks did not stop within {SHUTDOWN_GRACE:?}"),
    }
    Ok(())
}

/// Loads the checkpoint of `acd`, or starts fresh, saying why: a checkpoint this release
/// does not read (another format version, another grid) is refused with a warning that
/// names the database and the reason, and the fresh start asks the switch for everything
/// it still holds (docs/operations.md, "Rolling upgrade").
fn recover(store: &Store, cfg: &Config, acd: u16) -> anyhow::Result<Aggregator> {
    let grid = cfg.grid();
    match store.load_checkpoint(acd)? {
        None => Ok(Aggregator::new(grid)),
        Some(ck) => match Aggregator::from_checkpoint(grid, &ck.state) {
            Ok(a) => Ok(a),
            Err(e) => {
                warn!(
                    acd,
                    "{}: ACD {acd}: {e} (the switch replays what it still holds, or pumps up)",
                    store.path.display()
                );
                Ok(Aggregator::new(grid))
            }
        },
    }
}

struct AcdTask {
    cfg: Config,
    acd: AcdConfig,
    /// The ACD's database, on a thread of its own ([`writer`]).
    db: DbWriter,
    agg: Aggregator,
    stop: watch::Receiver<bool>,
    /// Intervals closed since the last commit was sent.
    closed: Vec<ClosedInterval>,
    /// Closed intervals the database thread holds because its last commit failed.
    unstored: usize,
    /// Translations changed since the last commit.
    admin_dirty: bool,
    /// Why the last session or connect failed, shown by `cms status` until a session
    /// reaches data transfer again (a switch that repeats a bad frame shows its reason
    /// while the collector reconnects, not only for the moment between two sessions).
    last_error: String,
    /// When the current session was welcomed: the backoff starts again only after a
    /// session that stayed up [`link::HEALTHY_SESSION`].
    welcomed: Option<std::time::Instant>,
    /// Rate limit of identical warnings (a switch that fails the same way every time).
    repeats: Repeats,
    /// The collector's live state and counters, read by the HTTP endpoints.
    metrics: Arc<Metrics>,
    /// This ACD's counters of the hot path (frames, events, reconnects).
    counts: AcdMetrics,
}

/// Reconnect warnings, rate-limited ([`link::repeats`]).
#[derive(Default)]
struct Repeats(link::repeats::Repeats);

impl Repeats {
    fn warn(&mut self, acd: u16, msg: &str, delay: Duration) {
        match self.0.note(msg, std::time::Instant::now()).suffix() {
            Some(more) => warn!(acd, "{msg}; reconnecting in {delay:?}{more}"),
            None => tracing::debug!(acd, "{msg}; reconnecting in {delay:?}"),
        }
    }
}

enum Ended {
    Stopped,
}

/// What a data-transfer session waits for between frames.
enum Wait {
    Frame(Frame),
    /// A timer fired and was handled.
    Timer,
    Stopped,
}

/// A session's timers: the periodic checkpoint, our heartbeat, and dead-link detection.
struct Timers {
    /// The switch is dead after this long without a frame (3 x its heartbeat).
    silence: Duration,
    ck_every: Duration,
    hb_every: Duration,
    next_ck: Instant,
    next_hb: Instant,
    /// Moves only when a frame arrives, never when one of our own timers fires.
    last_rx: Instant,
}

impl Timers {
    fn new(cfg: &Config, welcome: &Welcome) -> Timers {
        let ck_every = Duration::from_millis(cfg.checkpoint_ms);
        // Our own heartbeats at least as often as the switch's, so that its dead-link
        // detection (3 x its heartbeat_ms) never fires on a healthy collector.
        let hb_every = Duration::from_millis(cfg.heartbeat_ms.min(link::heartbeat_ms(welcome)));
        let now = Instant::now();
        Timers {
            silence: link::silence_limit(welcome),
            ck_every,
            hb_every,
            next_ck: now + ck_every,
            next_hb: now + hb_every,
            last_rx: now,
        }
    }
}

/// Our HEARTBEAT: the collector's clock, no sequence number.
async fn heartbeat(conn: &mut link::Conn, peer: SocketAddr) -> Result<(), LinkError> {
    let ts = now_secs() * 1000;
    link::send(conn, peer, Frame::Heartbeat { ts, last_seq: 0 }).await
}

impl AcdTask {
    fn new(
        cfg: Config,
        acd: AcdConfig,
        db: DbWriter,
        agg: Aggregator,
        stop: watch::Receiver<bool>,
        metrics: Arc<Metrics>,
    ) -> AcdTask {
        let counts = metrics.acd(acd.acd);
        AcdTask {
            cfg,
            acd,
            db,
            agg,
            stop,
            closed: vec![],
            unstored: 0,
            admin_dirty: false,
            last_error: String::new(),
            welcomed: None,
            repeats: Repeats::default(),
            counts,
            metrics,
        }
    }

    async fn run(mut self) -> anyhow::Result<()> {
        let mut backoff = Backoff::new(self.cfg.backoff_max_ms);
        let id = self.acd.acd;
        // Whether a session or a connect failed since the last connection: the next
        // connection is a reconnect.
        let mut failed = false;
        loop {
            if *self.stop.borrow() {
                break;
            }
            let addr = backoff.address(self.acd.primary, self.acd.secondary);
            self.link_state(LinkState::Connecting, &addr.to_string(), &self.last_error);
            let conn = tokio::select! {
                c = link::connect(addr) => c,
                _ = self.stop.changed() => break,
            };
            let mut conn = match conn {
                Ok(c) => c,
                Err(e) => {
                    let delay = backoff.fail(self.acd.secondary.is_some());
                    failed = true;
                    let msg = format!("{addr}: cannot connect: {e}");
                    self.repeats.warn(id, &msg, delay);
                    self.last_error = format!("connect: {e}");
                    self.link_state(LinkState::Down, &addr.to_string(), &self.last_error);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => continue,
                        _ = self.stop.changed() => break,
                    }
                }
            };
            info!(acd = id, peer = %addr, "connected");
            if std::mem::take(&mut failed) {
                self.counts.reconnected();
            }
            let mut stop = self.stop.clone();
            let result = tokio::select! {
                r = self.session(&mut conn, addr) => r,
                _ = stop.changed() => Ok(Ended::Stopped),
            };
            // Whatever happened, make what we have durable before anything else.
            self.counts.flush();
            let ack = self.commit(true).await;
            match result {
                Ok(Ended::Stopped) => {
                    if let Ok(Some((epoch, seq))) = ack {
                        let _ = link::send(&mut conn, addr, Frame::Ack { epoch, seq }).await;
                    }
                    ack?;
                    break;
                }
                Err(e) => {
                    failed = true;
                    self.metrics.session_failed(id, &e);
                    if let Err(ce) = ack {
                        warn!(acd = id, "{ce:#}");
                    }
                    // A session that ended soon after its WELCOME (a switch that sends
                    // garbage, a replayed bad frame) does not earn a fresh backoff.
                    if self
                        .welcomed
                        .take()
                        .is_some_and(|t| t.elapsed() >= link::HEALTHY_SESSION)
                    {
                        backoff.reset();
                    }
                    let delay = backoff.fail(self.acd.secondary.is_some());
                    self.repeats.warn(id, &format!("session ended: {e}"), delay);
                    let state = if e.is_bad_input() {
                        LinkState::DownBadInput
                    } else {
                        LinkState::Down
                    };
                    self.last_error = e.to_string();
                    self.link_state(state, &addr.to_string(), &self.last_error);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.stop.changed() => break,
                    }
                }
            }
        }
        let last = self.commit(true).await;
        if last.is_ok() {
            self.link_state(LinkState::Stopped, "", "");
        }
        self.db.close().await;
        last.map(|_| ())
    }

    fn link_state(&self, state: LinkState, peer: &str, detail: &str) {
        self.metrics.set_link(self.acd.acd, state, detail);
        self.db.link_state(state, peer, detail);
    }

    /// Commits closed intervals, translations and the checkpoint together, on the
    /// database thread; returns what may now be acknowledged. Only a `synced` commit may
    /// be acknowledged (it is on disk when this returns); an unsynced one only bounds
    /// memory.
    async fn commit(&mut self, synced: bool) -> anyhow::Result<Option<(u64, u64)>> {
        if !self.agg.started() {
            return Ok(None);
        }
        // The database thread keeps translations it could not store for the next commit.
        let admin = std::mem::take(&mut self.admin_dirty).then(|| {
            (
                self.agg.skills().cloned().collect(),
                self.agg.vdns().cloned().collect(),
                self.agg.tkgrps().cloned().collect(),
            )
        });
        let checkpoint = Checkpoint {
            epoch: self.agg.epoch(),
            seq: self.agg.last_seq(),
            ts: self.agg.switch_time().unwrap_or(0),
            open_istart: self.agg.open_interval().unwrap_or(0),
            state: self.agg.checkpoint(),
            saved_at: now_secs(),
        };
        let job = CommitJob {
            synced,
            closed: std::mem::take(&mut self.closed),
            admin,
            checkpoint,
        };
        match self.db.commit(job).await {
            Ok(ack) => {
                self.unstored = 0;
                Ok(Some(ack))
            }
            Err((e, unstored)) => {
                self.unstored = unstored;
                Err(e)
            }
        }
    }

    async fn session(
        &mut self,
        conn: &mut link::Conn,
        peer: SocketAddr,
    ) -> Result<Ended, LinkError> {
        let (welcome, mut first) = self.start_session(conn, peer).await?;
        let mut t = Timers::new(&self.cfg, &welcome);
        let mut stop = self.stop.clone();
        let mut frames: u64 = 0;
        loop {
            // The latest switch time accepted, read from our clock once per turn.
            let limit = link::time_limit_ms();
            let frame = match first.take() {
                Some(f) => f,
                None => match self.wait_frame(conn, peer, &mut t, &mut stop).await? {
                    Wait::Frame(f) => f,
                    Wait::Timer => continue,
                    Wait::Stopped => return Ok(Ended::Stopped),
                },
            };
            if self.take_frame(conn, peer, frame, limit).await? {
                return Ok(Ended::Stopped);
            }
            // Frames already received are handled without going back through the select
            // (which arms its timers on every turn): up to a batch, then the timers.
            for _ in 0..BATCH {
                match conn.next().now_or_never() {
                    Some(Some(Ok(f))) => {
                        if self.take_frame(conn, peer, f, limit).await? {
                            return Ok(Ended::Stopped);
                        }
                        frames += 1;
                    }
                    Some(Some(Err(e))) => return Err(LinkError::Codec { peer, source: e }),
                    Some(None) => return Err(LinkError::Closed { peer }),
                    None => break,
                }
            }
            t.last_rx = Instant::now();
            // Under a steady stream the frame branch above is always ready and the timer
            // branches never win: check the timers here too (every 256 frames), so
            // checkpoints, acknowledgements and heartbeats keep their period at any load.
            frames += 1;
            self.flush_if_many().await;
            if frames >= 256 {
                frames = 0;
                self.counts.flush();
                self.run_due_timers(conn, peer, &mut t).await?;
            }
        }
    }

    /// The handshake and what it starts from: a replay of our epoch, or a pump-up (the
    /// intervals from our last event to now marked incomplete, with the reason). Returns
    /// the WELCOME and the first data-transfer frame the handshake already read.
    async fn start_session(
        &mut self,
        conn: &mut link::Conn,
        peer: SocketAddr,
    ) -> Result<(Welcome, Option<Frame>), LinkError> {
        let id = self.acd.acd;
        let epoch = self.agg.epoch();
        let resume_from = step::resume_from(&self.agg, peer)?;
        self.link_state(LinkState::Handshake, &peer.to_string(), &self.last_error);
        let start =
            link::handshake(conn, peer, id, &self.cfg.server_id, epoch, resume_from).await?;
        self.counts.handshake(&start);
        let begun = step::begin(&mut self.agg, start, &mut self.closed);
        let welcome = begun.welcome;
        match begun.pumpup {
            None => {
                info!(acd = id, peer = %peer, epoch = welcome.epoch, from = welcome.first_seq, "replay");
            }
            Some(p) => {
                warn!(
                    acd = id, peer = %peer, epoch = welcome.epoch, as_of = p.as_of_seq,
                    gap = ?p.gap, reason = p.reason,
                    "pump-up: intervals from our last event to now are incomplete"
                );
                self.admin_dirty = true;
            }
        }
        let first = begun.first;
        self.last_error.clear();
        self.link_state(LinkState::DataTransfer, &peer.to_string(), "");
        self.welcomed = Some(std::time::Instant::now());
        Ok((welcome, first))
    }

    /// Waits for the next frame, or for a timer (checkpoint, heartbeat: run here), the
    /// switch's silence limit (an error) or the stop signal, whichever comes first.
    async fn wait_frame(
        &mut self,
        conn: &mut link::Conn,
        peer: SocketAddr,
        t: &mut Timers,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Wait, LinkError> {
        tokio::select! {
            biased;
            f = conn.next() => match f {
                None => Err(LinkError::Closed { peer }),
                Some(Err(e)) => Err(LinkError::Codec { peer, source: e }),
                Some(Ok(f)) => Ok(Wait::Frame(f)),
            },
            _ = tokio::time::sleep_until(t.last_rx + t.silence) => {
                Err(LinkError::Silent { peer, waited: t.silence })
            }
            _ = tokio::time::sleep_until(t.next_ck) => {
                t.next_ck = Instant::now() + t.ck_every;
                self.checkpoint(conn, peer).await?;
                Ok(Wait::Timer)
            }
            _ = tokio::time::sleep_until(t.next_hb) => {
                t.next_hb = Instant::now() + t.hb_every;
                heartbeat(conn, peer).await?;
                Ok(Wait::Timer)
            }
            _ = stop.changed() => Ok(Wait::Stopped),
        }
    }

    /// Handles one frame, and catches up a frame far ahead of our clock in steps.
    /// `true`: the collector is stopping.
    async fn take_frame(
        &mut self,
        conn: &mut link::Conn,
        peer: SocketAddr,
        frame: Frame,
        limit: i64,
    ) -> Result<bool, LinkError> {
        self.counts.frame(frame.type_code());
        match self.handle(frame, peer, limit)? {
            Some(f) => Ok(self.catch_up(conn, peer, f, limit).await?.is_some()),
            None => Ok(false),
        }
    }

    /// Closed intervals wait in memory for the next commit: when a fast replay closes
    /// many, commit early so memory stays bounded at any speed. That commit is not synced
    /// and not acknowledged (the periodic checkpoint is both), so a fast replay costs one
    /// fsync per checkpoint period, not one per flush.
    async fn flush_if_many(&mut self) {
        if self.closed.len() + self.unstored >= MAX_PENDING_INTERVALS {
            if let Err(e) = self.commit(false).await {
                warn!(acd = self.acd.acd, "flush failed, will retry: {e:#}");
            }
        }
    }

    /// The checkpoint and heartbeat that are due, under a steady stream where the
    /// select's timer branches never win.
    async fn run_due_timers(
        &mut self,
        conn: &mut link::Conn,
        peer: SocketAddr,
        t: &mut Timers,
    ) -> Result<(), LinkError> {
        let now = Instant::now();
        if now >= t.next_ck {
            t.next_ck = now + t.ck_every;
            self.checkpoint(conn, peer).await?;
        }
        if now >= t.next_hb {
            t.next_hb = now + t.hb_every;
            heartbeat(conn, peer).await?;
        }
        Ok(())
    }

    /// Applies one frame received during data transfer ([`step::take`]). A frame that
    /// would close [`MAX_PENDING_INTERVALS`] or more intervals is checked but not
    /// applied: it comes back for [`AcdTask::catch_up`].
    fn handle(
        &mut self,
        frame: Frame,
        peer: SocketAddr,
        limit: i64,
    ) -> Result<Option<Taken>, LinkError> {
        let event = match &frame {
            Frame::Event(ev) => Some(ev.kind.type_code()),
            _ => None,
        };
        match step::take(&mut self.agg, frame, peer, limit, &mut self.closed)? {
            Taken::Applied { admin } => {
                self.admin_dirty |= admin;
                if let Some(code) = event {
                    self.counts.event(code);
                }
                Ok(None)
            }
            far => Ok(Some(far)),
        }
    }

    /// Moves switch time to a checked frame far ahead (a quiet weekend replayed, a
    /// collector that was down for days) [`MAX_PENDING_INTERVALS`] intervals at a time,
    /// committing and acknowledging after each step and stopping in between on shutdown,
    /// then applies the frame. Memory stays bounded and shutdown is honoured however far
    /// the frame is (proto/acd-link.md, "Time bounds"). Returns `Some` when it stopped.
    async fn catch_up(
        &mut self,
        conn: &mut link::Conn,
        peer: SocketAddr,
        far: Taken,
        limit: i64,
    ) -> Result<Option<Ended>, LinkError> {
        let Taken::FarAhead {
            frame,
            ts,
            clock_old_ts: old,
        } = far
        else {
            return Ok(None);
        };
        while self
            .agg
            .catch_up_step(ts, old, MAX_PENDING_INTERVALS, &mut self.closed)
        {
            self.checkpoint(conn, peer).await?;
            // Let the shutdown signal (and the other ACDs) in between steps.
            tokio::task::yield_now().await;
            if *self.stop.borrow() {
                return Ok(Some(Ended::Stopped));
            }
        }
        match self.handle(frame, peer, limit)? {
            None => Ok(None),
            Some(_) => unreachable!("caught up to the frame"),
        }
    }

    /// Commits and acknowledges what the commit made durable. A failed commit is logged
    /// and retried at the next period (nothing is acknowledged that is not durable).
    async fn checkpoint(
        &mut self,
        conn: &mut link::Conn,
        peer: SocketAddr,
    ) -> Result<(), LinkError> {
        self.counts.flush();
        match self.commit(true).await {
            Ok(Some((epoch, seq))) => link::send(conn, peer, Frame::Ack { epoch, seq }).await,
            Ok(None) => Ok(()),
            Err(e) => {
                warn!(acd = self.acd.acd, "checkpoint failed, will retry: {e:#}");
                Ok(())
            }
        }
    }
}

/// Tells systemd the service is ready, when run under it with `Type=notify`.
pub fn notify_ready() {
    notify_systemd(std::env::var_os("NOTIFY_SOCKET").as_deref(), "READY=1\n");
}

/// Sends `msg` to the service manager's notify socket (`$NOTIFY_SOCKET`: a path, or
/// `@name` in the abstract namespace), if there is one: the one place that speaks
/// sd_notify, for `READY=1` and the watchdog's `WATCHDOG=1` ([`watchdog`]). The
/// `sd-notify` crate would do it but cannot reach an abstract-namespace socket, which
/// this does.
#[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
fn notify_systemd(socket: Option<&std::ffi::OsStr>, msg: &str) {
    #[cfg(target_os = "linux")]
    if let Some(path) = socket {
        use std::os::unix::net::UnixDatagram;
        let p = path.to_string_lossy().to_string();
        let sock = UnixDatagram::unbound();
        let res = sock.and_then(|s| {
            if let Some(abs) = p.strip_prefix('@') {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(abs.as_bytes())?;
                s.send_to_addr(msg.as_bytes(), &addr)
            } else {
                s.send_to(msg.as_bytes(), &p)
            }
        });
        if let Err(e) = res {
            warn!("{p}: cannot notify systemd: {e}");
        }
    }
}
