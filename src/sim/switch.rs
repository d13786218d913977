//! The switch side of the ACD links: listeners, sessions (handshake, replay, pump-up, GAP,
//! heartbeats, ACK trimming), the clock that drives the generator, fault injection, the
//! end-of-run drain and the ground-truth writer thread.
//!
//! Owns everything with a socket or a wall clock in `cms-linksim`. The stream itself comes
//! from the generator (`gen.rs`); the session rules are `proto/acd-link.md` ("The
//! session"). What the operator should see (the ports, faults, overruns, a drain timeout,
//! progress) goes to the caller as [`Notice`]s: the library prints nothing.
//!
//! Design: one shared log of encoded event frames (the stream is identical on every link)
//! holding at most `--buffer` events, a per-link ACK position and a per-session cursor.
//! The generator never waits for a link: a session whose cursor falls more than
//! `--buffer` events behind the head is dropped (an overrun) and must reconnect.

use super::acklag::{AckLag, AckLog, Appended};
use super::faults::{FaultKind, LinkSel, Resolved};
use super::gen::{Counts, Generator, Stop};
use super::profile::Profile;
use super::queuelog::QueueLog;
use super::truth::{TruthMsg, TruthWriter};
use crate::proto::codec::LinkCodec;
use crate::proto::{
    decode_frame, frame_len, Decoded, Frame, Hello, StartMode, Welcome, PROTOCOL_VERSION_MAX,
    PROTOCOL_VERSION_MIN,
};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AO};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How long the switch waits for HELLO (proto/acd-link.md, "Opening", step 2).
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes copied out of the log per write.
const BATCH_BYTES: usize = 256 * 1024;

/// How fast switch time runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// Switch seconds per wall second (1 = real time).
    Factor(f64),
    /// As fast as the generator can go.
    Max,
}

/// A validated run configuration (built by the binary from the command line).
#[derive(Debug, Clone)]
pub struct SwitchConfig {
    pub profile: Profile,
    pub seed: u64,
    /// Switch time at the start, UTC seconds.
    pub start_s: i64,
    pub duration_s: i64,
    pub speed: Speed,
    /// Link names and addresses, in order.
    pub listen: Vec<(String, SocketAddr)>,
    /// Replay buffer per link, events.
    pub buffer: u64,
    pub faults: Vec<Resolved>,
    /// Ground-truth database and interval length.
    pub truth: Option<(PathBuf, u32)>,
    pub port_file: Option<PathBuf>,
    pub wait_links: usize,
    pub wait_timeout: Duration,
    pub drain_timeout: Duration,
    pub heartbeat_ms: u32,
    /// Send a [`Notice::Progress`] about once a second (the binary asks for it when its
    /// stderr is a terminal).
    pub progress: bool,
    /// Also write the workload as an Asterisk queue log (`--queue-log`).
    pub queue_log: Option<QueueLogConfig>,
    /// Record every ACK's lag into this CSV file (`--ack-stats`, [`super::acklag`]).
    pub ack_stats: Option<PathBuf>,
}

/// `--queue-log`: where the queue log goes and when Asterisk restarts in it.
#[derive(Debug, Clone)]
pub struct QueueLogConfig {
    /// The log. Each batch of lines is appended to whatever file the path names then,
    /// so a rename rotation (`mv queue_log queue_log.1`) makes it start a new file.
    pub path: PathBuf,
    /// Asterisk restarts (QUEUESTART, every call cut), UTC seconds.
    pub restarts_s: Vec<i64>,
}

/// What the switch tells its operator as it happens. `cms-linksim` prints each one on
/// stderr after `cms-linksim: `; the demo logs them. Displayed, a notice is that line.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Every link is bound: link name -> port, as JSON (also the port file's content).
    Listening { ports: String },
    /// `--wait-links`: the clock waits for `want` links, at most `secs`.
    WaitingForLinks { secs: u64, want: usize },
    /// A fault starts or ends at switch second `at_s`.
    Fault {
        ending: bool,
        what: String,
        at_s: i64,
    },
    /// A session fell more than `buffer` events behind and was dropped.
    Overrun { link: String, buffer: u64 },
    /// The drain gave up after `secs` with these links not having ACKed the last event.
    DrainTimeout { secs: u64, links: Vec<String> },
    /// A link that came back up could not be bound again; it stays down.
    CannotListenAgain { addr: SocketAddr, error: String },
    /// The progress line (with [`SwitchConfig::progress`]): switch time (local), events,
    /// calls, connected links of all links.
    Progress {
        time: String,
        events: u64,
        calls: u64,
        links: usize,
        of: usize,
    },
    /// The generator is done: the last progress line stays as it is.
    ProgressDone,
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Listening { ports } => write!(f, "listening {ports}"),
            Notice::WaitingForLinks { secs, want } => {
                write!(f, "waiting up to {secs} s for {want} link(s) to connect")
            }
            Notice::Fault { ending, what, at_s } => {
                let when = if *ending { "ends:" } else { "starts:" };
                write!(f, "fault {when} {what} at switch time {at_s}")
            }
            Notice::Overrun { link, buffer } => write!(
                f,
                "link {link}: overrun: more than {buffer} events behind, dropped"
            ),
            Notice::DrainTimeout { secs, links } => write!(
                f,
                "drain timeout after {secs} s: link(s) {} did not ACK the last event",
                links.join(", ")
            ),
            Notice::CannotListenAgain { addr, error } => {
                write!(f, "{addr}: cannot listen again: {error}")
            }
            Notice::Progress {
                time,
                events,
                calls,
                links,
                of,
            } => write!(
                f,
                "{time} {events} events, {calls} calls, {links}/{of} links"
            ),
            Notice::ProgressDone => Ok(()),
        }
    }
}

/// Where [`run`] sends its notices; called from the generator thread and from tasks.
pub type Notices = Arc<dyn Fn(Notice) + Send + Sync>;

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub calls: u64,
    pub blocked: u64,
    pub events: u64,
    pub wall: Duration,
    pub faults_applied: u64,
    pub overruns: u64,
    pub epochs: u64,
    pub truth_intervals: u64,
    /// Links that had not ACKed the last event when the drain timed out.
    pub undrained: Vec<String>,
    /// With `--queue-log`: what the writer did.
    pub queue_log: Option<super::queuelog::Stats>,
    /// With `--ack-stats`: each link's ACK lag.
    pub ack_lag: Vec<AckLag>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.wall.as_secs_f64().max(1e-9);
        write!(
            f,
            "{} calls ({} blocked on all trunks busy), {} events in {:.1} s ({:.0} events/s), \
             {} faults applied, {} overruns, {} epochs, {} truth intervals",
            self.calls,
            self.blocked,
            self.events,
            secs,
            self.events as f64 / secs,
            self.faults_applied,
            self.overruns,
            self.epochs,
            self.truth_intervals
        )?;
        if let Some(q) = &self.queue_log {
            write!(
                f,
                "; queue log: {} lines, {} calls, {} restarts cutting {} calls, {} events it cannot express",
                q.lines, q.calls, q.restarts, q.cut_calls, q.inexpressible
            )?;
        }
        if !self.ack_lag.is_empty() {
            let links: Vec<String> = self.ack_lag.iter().map(|l| l.to_string()).collect();
            write!(f, "; ACK lag: {}", links.join("; "))?;
        }
        Ok(())
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{addr}: cannot listen: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    File { path: PathBuf, what: String },
    #[error("waited {secs} s for {want} link(s) to connect, {got} did; giving up")]
    WaitLinks { secs: u64, want: usize, got: usize },
}

/// One live session on a link.
struct Session {
    id: u64,
    /// Next seq to send.
    cursor: u64,
    cancel: CancellationToken,
    /// Sent the final heartbeat.
    final_sent: bool,
}

/// Per-link switch state.
struct LinkState {
    name: String,
    /// Highest seq of the current epoch this link's collector ACKed.
    acked: u64,
    session: Option<Session>,
    connected_once: bool,
    halfopen: bool,
    slow: Option<u32>,
    /// Bumped by a garbage / truncate fault; a session acts on a change.
    garbage_gen: u64,
    truncate_gen: u64,
}

/// The shared log and the links.
struct State {
    epoch: u64,
    /// The epoch began from an empty switch (the run's start), so its seq 1 is a complete
    /// beginning: a fresh collector may replay from it. After a warm restart calls and
    /// agents carry over, and a fresh collector needs a pump-up.
    epoch_cold: bool,
    /// Seq of `frames[0]`.
    first_seq: u64,
    frames: VecDeque<Bytes>,
    /// Last seq generated (0 = none this epoch).
    head: u64,
    /// Switch time generated through, ms: the heartbeat time of a caught-up session.
    clock_ms: i64,
    finished: bool,
    end_ms: i64,
    links: Vec<LinkState>,
    /// With `--ack-stats`: when each batch of the log was appended (an ACK's lag runs
    /// from there).
    appended: Option<Appended>,
}

/// The source of a link server's stream, as the sessions see it: the pump-up snapshot
/// of the state after the last event appended to the log. The simulator's generator is
/// one; the Asterisk bridge's translator (`crate::asterisk`) is the other.
pub trait Snapshot: Send + 'static {
    fn snapshot(&self) -> Vec<Frame>;
}

impl Snapshot for Generator {
    fn snapshot(&self) -> Vec<Frame> {
        Generator::snapshot(self)
    }
}

struct Hub<G = Generator> {
    state: Mutex<State>,
    /// Lock order: `gen` before `state`.
    gen: Mutex<G>,
    /// Something changed (events appended, a fault, the end).
    notify: Notify,
    /// Sessions waiting for the generator lock (the driver yields to them).
    want_gen: AtomicUsize,
    down: Vec<watch::Sender<bool>>,
    buffer: u64,
    heartbeat_ms: u32,
    acd: u16,
    next_session: AtomicU64,
    overruns: AtomicU64,
    notices: Notices,
    /// `--ack-stats`: the file and the lags. Lock order: after `state`, never both held.
    acks: Option<Mutex<AckLog>>,
}

impl State {
    /// Retention start of link `l`: everything before is trimmed (ACKed, or beyond the
    /// buffer).
    fn retained_from(&self, l: usize, buffer: u64) -> u64 {
        (self.links[l].acked + 1).max((self.head + 1).saturating_sub(buffer))
    }

    fn trim(&mut self, buffer: u64) {
        let keep = (0..self.links.len())
            .map(|l| self.retained_from(l, buffer))
            .min()
            .unwrap_or(self.head + 1)
            .min(self.head + 1);
        while self.first_seq < keep && !self.frames.is_empty() {
            self.frames.pop_front();
            self.first_seq += 1;
        }
        if self.frames.is_empty() {
            self.first_seq = self.head + 1;
        }
        if let Some(a) = &mut self.appended {
            a.trim(self.first_seq);
        }
    }

    /// Moves the generator's encoded frames into the log, one entry per frame.
    fn append(&mut self, mut out: BytesMut) {
        while let Some(n) = frame_len(&out).expect("the generator encodes valid frames") {
            let f = out.split_to(n).freeze();
            if self.frames.is_empty() {
                self.first_seq = self.head + 1;
            }
            self.frames.push_back(f);
            self.head += 1;
        }
        if let Some(a) = &mut self.appended {
            a.push(self.head, Instant::now());
        }
    }
}

/// Runs the switch until the end of the duration and the drain, telling `notices` what
/// the operator should see.
///
/// # Errors
/// A listen address cannot be bound, the port or truth file cannot be written, or
/// `--wait-links` timed out.
pub async fn run(
    cfg: SwitchConfig,
    notices: impl Fn(Notice) + Send + Sync + 'static,
) -> Result<Summary, SimError> {
    let notices: Notices = Arc::new(notices);
    let end_s = cfg.start_s + cfg.duration_s;
    let gen = new_generator(&cfg, end_s);
    let truth_writer = open_truth(&cfg)?;
    let qlog = open_queue_log(&cfg)?;
    let acks = match &cfg.ack_stats {
        None => None,
        Some(p) => {
            let names: Vec<String> = cfg.listen.iter().map(|l| l.0.clone()).collect();
            Some(AckLog::create(p, &names).map_err(|e| SimError::File {
                path: p.clone(),
                what: format!("cannot write the ACK stats: {e}"),
            })?)
        }
    };
    // Bind every link before anything else, so a bad address fails fast.
    let listeners = bind_links(&cfg.listen).await?;
    let ports: serde_json::Map<String, serde_json::Value> = listeners
        .iter()
        .map(|(n, a, _)| (n.clone(), a.port().into()))
        .collect();
    let ports = serde_json::Value::Object(ports).to_string();
    if let Some(p) = &cfg.port_file {
        write_port_file(p, &ports)?;
    }
    notices(Notice::Listening { ports });
    let (hub, down_rx) = Hub::start(&cfg, gen, end_s, notices, acks);
    for (i, ((_, addr, l), rx)) in listeners.into_iter().zip(down_rx).enumerate() {
        tokio::spawn(listen_loop(hub.clone(), i, addr, l, rx));
    }
    wait_for_links(&hub, &cfg).await?;
    let (ttx, writer) = spawn_truth_writer(truth_writer, &cfg);
    // The generator driver: a plain thread, so a busy generator never starves sessions.
    let h2 = hub.clone();
    let c2 = cfg.clone();
    let driver = std::thread::spawn(move || drive(&h2, &c2, end_s, ttx, qlog));
    let (mut summary, wall, qlog_result) = tokio::task::spawn_blocking(move || driver.join())
        .await
        .expect("join")
        .expect("the generator thread panicked");
    qlog_result?;
    summary.undrained = drain(&hub, &cfg).await;
    hub.cancel_sessions();
    summary.wall = wall;
    summary.overruns = hub.overruns.load(AO::Relaxed);
    if let Some(a) = &hub.acks {
        summary.ack_lag = a.lock().unwrap().summary();
    }
    if let Some(w) = writer {
        summary.truth_intervals = tokio::task::spawn_blocking(move || w.join())
            .await
            .expect("join")
            .expect("the truth writer panicked")?;
    }
    Ok(summary)
}

/// The switch side of the links for a stream made outside the simulator: the Asterisk
/// bridge (`cms-asterisk`, `crate::asterisk`). The sessions are `cms-linksim`'s
/// (handshake, replay, pump-up from `G`'s snapshot, GAP, heartbeats, ACK trimming),
/// with no faults, no end of run and no overrun: the log keeps every event some link
/// has not ACKed.
pub struct LinkServer<G: Snapshot> {
    hub: Arc<Hub<G>>,
    ports: String,
}

/// A link of a `--listen NAME=ADDR` option (`cms-linksim`, `cms-asterisk`).
///
/// # Errors
/// No `=`, an empty name or an address that does not parse; the message says which.
pub fn parse_listen(s: &str) -> Result<(String, SocketAddr), String> {
    let (n, addr) = s
        .split_once('=')
        .ok_or_else(|| "expected NAME=ADDR".to_string())?;
    if n.is_empty() {
        return Err("empty link name (expected NAME=ADDR)".to_string());
    }
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr:?}: {e}"))?;
    Ok((n.to_string(), addr))
}

/// Where a [`LinkServer`] listens and where its stream stands.
#[derive(Debug, Clone)]
pub struct LinkServerConfig {
    pub listen: Vec<(String, SocketAddr)>,
    pub acd: u16,
    pub heartbeat_ms: u32,
    /// The stream's epoch (non-zero).
    pub epoch: u64,
    /// The seq the next event gets; an epoch held from 1 is a cold start.
    pub first_seq: u64,
    /// The stream's time now, ms (the heartbeat time while nothing is appended).
    pub clock_ms: i64,
}

impl<G: Snapshot> LinkServer<G> {
    /// Binds every link and starts accepting sessions.
    ///
    /// # Errors
    /// An address cannot be bound.
    pub async fn start(
        cfg: &LinkServerConfig,
        source: G,
        notices: impl Fn(Notice) + Send + Sync + 'static,
    ) -> Result<LinkServer<G>, SimError> {
        let notices: Notices = Arc::new(notices);
        let listeners = bind_links(&cfg.listen).await?;
        let ports: serde_json::Map<String, serde_json::Value> = listeners
            .iter()
            .map(|(n, a, _)| (n.clone(), a.port().into()))
            .collect();
        let ports = serde_json::Value::Object(ports).to_string();
        let start = HubStart {
            epoch: cfg.epoch,
            first_seq: cfg.first_seq.max(1),
            clock_ms: cfg.clock_ms,
            end_ms: i64::MAX,
            buffer: u64::MAX,
            heartbeat_ms: cfg.heartbeat_ms,
            acd: cfg.acd,
        };
        let (hub, down_rx) = Hub::new(&cfg.listen, source, start, notices, None);
        for (i, ((_, addr, l), rx)) in listeners.into_iter().zip(down_rx).enumerate() {
            tokio::spawn(listen_loop(hub.clone(), i, addr, l, rx));
        }
        Ok(LinkServer { hub, ports })
    }

    /// Link name -> bound port, as JSON (`{"A": 40123}`).
    pub fn ports(&self) -> &str {
        &self.ports
    }

    /// Runs `f` with the source locked and the seq its first new event gets; `f`
    /// encodes the events it makes into the buffer and returns the stream's time. The
    /// events join the log and the sessions are woken.
    pub fn feed<T>(&self, f: impl FnOnce(&mut G, u64, &mut BytesMut) -> (i64, T)) -> T {
        let mut gen = self.hub.gen.lock().unwrap();
        let next = self.hub.state.lock().unwrap().head + 1;
        let mut buf = BytesMut::new();
        let (clock_ms, r) = f(&mut gen, next, &mut buf);
        let mut st = self.hub.state.lock().unwrap();
        st.append(buf);
        st.clock_ms = clock_ms;
        st.trim(self.hub.buffer);
        drop(st);
        drop(gen);
        self.hub.notify.notify_waiters();
        r
    }

    /// The last seq appended (0 = none).
    pub fn head(&self) -> u64 {
        self.hub.state.lock().unwrap().head
    }

    /// Each link's name, whether a session is up, and the seq it ACKed.
    pub fn links(&self) -> Vec<(String, bool, u64)> {
        let st = self.hub.state.lock().unwrap();
        st.links
            .iter()
            .map(|l| (l.name.clone(), l.session.is_some(), l.acked))
            .collect()
    }

    /// Ends every session.
    pub fn shutdown(&self) {
        self.hub.cancel_sessions();
    }
}

/// The generator of the run, with the faults scheduled: fault `i` starts at timer
/// `2 i` and ends at `2 i + 1`.
fn new_generator(cfg: &SwitchConfig, end_s: i64) -> Generator {
    let mut gen = Generator::new(
        &cfg.profile,
        cfg.seed,
        cfg.start_s,
        end_s,
        cfg.truth.as_ref().map(|t| t.1),
    );
    for (i, f) in cfg.faults.iter().enumerate() {
        gen.schedule_fault(f.at, 2 * i);
        if let Some(u) = f.until {
            gen.schedule_fault(u, 2 * i + 1);
        }
    }
    gen
}

/// The queue-log writer and its file, when the run writes one (`--queue-log`): the log
/// begins with Asterisk's QUEUESTART at the start time.
fn open_queue_log(cfg: &SwitchConfig) -> Result<Option<QueueLogOut>, SimError> {
    let Some(q) = &cfg.queue_log else {
        return Ok(None);
    };
    let err = |what: String| SimError::File {
        path: q.path.clone(),
        what,
    };
    let writer = QueueLog::new(&cfg.profile, cfg.start_s, &q.restarts_s)
        .map_err(|e| err(format!("the profile cannot be written as a queue log: {e}")))?;
    let mut out = QueueLogOut {
        writer,
        path: q.path.clone(),
    };
    out.flush()?;
    Ok(Some(out))
}

/// The queue-log writer and where its lines go.
struct QueueLogOut {
    writer: QueueLog,
    path: PathBuf,
}

impl QueueLogOut {
    /// Reads what the generator emitted up to its clock (before the hub takes it).
    fn feed(&mut self, gen: &Generator) {
        self.writer.feed(&gen.out);
        self.writer.advance(gen.now_ms());
    }

    /// Appends the new lines to the file the path names now (a new one after a rename
    /// rotation), as Asterisk does after `logger rotate`.
    fn flush(&mut self) -> Result<(), SimError> {
        use std::io::Write;
        let text = self.writer.take_text();
        if text.is_empty() {
            return Ok(());
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| SimError::File {
                path: self.path.clone(),
                what: format!("cannot write the queue log: {e}"),
            })
    }
}

/// The new truth database, when the run writes one.
fn open_truth(cfg: &SwitchConfig) -> Result<Option<TruthWriter>, SimError> {
    let Some((path, minutes)) = &cfg.truth else {
        return Ok(None);
    };
    TruthWriter::open(path, cfg.profile.tz(), cfg.profile.acd, *minutes)
        .map(Some)
        .map_err(|e| SimError::File {
            path: path.clone(),
            what: format!("cannot create the truth database: {e}"),
        })
}

/// Binds every link's address; returns each link's name, bound address and listener.
async fn bind_links(
    listen: &[(String, SocketAddr)],
) -> Result<Vec<(String, SocketAddr, TcpListener)>, SimError> {
    let mut listeners = Vec::new();
    for (name, addr) in listen {
        let bind = |source| SimError::Bind {
            addr: *addr,
            source,
        };
        let l = TcpListener::bind(addr).await.map_err(bind)?;
        let bound = l.local_addr().map_err(bind)?;
        listeners.push((name.clone(), bound, l));
    }
    Ok(listeners)
}

/// Writes the port file whole then renames it, so a reader never sees half a file.
fn write_port_file(p: &Path, ports: &str) -> Result<(), SimError> {
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, format!("{ports}\n"))
        .and_then(|_| std::fs::rename(&tmp, p))
        .map_err(|e| SimError::File {
            path: p.to_owned(),
            what: format!("cannot write the port file: {e}"),
        })
}

/// `--wait-links`: the clock starts once enough links have connected, or the run ends
/// after `--wait-timeout`.
async fn wait_for_links(hub: &Hub, cfg: &SwitchConfig) -> Result<(), SimError> {
    if cfg.wait_links == 0 {
        return Ok(());
    }
    let t0 = Instant::now();
    let mut told = false;
    loop {
        let got = {
            let st = hub.state.lock().unwrap();
            st.links.iter().filter(|l| l.connected_once).count()
        };
        if got >= cfg.wait_links {
            return Ok(());
        }
        if !told {
            (hub.notices)(Notice::WaitingForLinks {
                secs: cfg.wait_timeout.as_secs(),
                want: cfg.wait_links,
            });
            told = true;
        }
        if t0.elapsed() >= cfg.wait_timeout {
            return Err(SimError::WaitLinks {
                secs: cfg.wait_timeout.as_secs(),
                want: cfg.wait_links,
                got,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The truth writer: its own thread, one transaction per interval. Returns the channel
/// the driver sends closed intervals on and, with a truth database, the thread, which
/// answers how many intervals it wrote.
#[allow(clippy::type_complexity)]
fn spawn_truth_writer(
    truth_writer: Option<TruthWriter>,
    cfg: &SwitchConfig,
) -> (
    std::sync::mpsc::Sender<TruthMsg>,
    Option<std::thread::JoinHandle<Result<u64, SimError>>>,
) {
    let (ttx, trx) = std::sync::mpsc::channel::<TruthMsg>();
    let writer = truth_writer.map(|mut w| {
        let path = cfg.truth.as_ref().unwrap().0.clone();
        std::thread::spawn(move || -> Result<u64, SimError> {
            for m in trx {
                match m {
                    TruthMsg::Interval(ci) => w.write(&ci).map_err(|e| SimError::File {
                        path: path.clone(),
                        what: format!("cannot write interval {}: {e}", ci.istart),
                    })?,
                }
            }
            Ok(w.intervals)
        })
    });
    (ttx, writer)
}

/// Waits until every connected collector ACKed the last seq, at most `--drain-timeout`;
/// returns the links that had not.
async fn drain(hub: &Hub, cfg: &SwitchConfig) -> Vec<String> {
    let t0 = Instant::now();
    loop {
        let pending: Vec<String> = {
            let st = hub.state.lock().unwrap();
            st.links
                .iter()
                .filter(|l| l.session.is_some() && l.acked < st.head)
                .map(|l| l.name.clone())
                .collect()
        };
        if pending.is_empty() {
            return pending;
        }
        if t0.elapsed() >= cfg.drain_timeout {
            (hub.notices)(Notice::DrainTimeout {
                secs: cfg.drain_timeout.as_secs(),
                links: pending.clone(),
            });
            return pending;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The generator loop: advance switch time with the wall clock (or flat out), move frames
/// into the log, apply faults, hand closed truth intervals to the writer.
fn drive(
    hub: &Hub,
    cfg: &SwitchConfig,
    end_s: i64,
    truth: std::sync::mpsc::Sender<TruthMsg>,
    mut qlog: Option<QueueLogOut>,
) -> (Summary, Duration, Result<(), SimError>) {
    let mut result = Ok(());
    let t0 = Instant::now();
    let mut summary = Summary {
        epochs: 1,
        ..Default::default()
    };
    let mut last_progress = Instant::now();
    loop {
        let target = match cfg.speed {
            Speed::Max => end_s,
            Speed::Factor(f) => (cfg.start_s + (t0.elapsed().as_secs_f64() * f) as i64).min(end_s),
        };
        let mut gen = hub.gen.lock().unwrap();
        let stop = gen.run_until(target, 20_000);
        if let Some(q) = &mut qlog {
            q.feed(&gen);
            if let Err(e) = q.flush() {
                result = Err(e);
                break;
            }
        }
        let ql = qlog.as_ref().map(|q| &q.writer);
        hub.publish(&mut gen, &truth, ql);
        if let Stop::Fault(i) = stop {
            let f = &cfg.faults[i / 2];
            apply_fault(hub, &mut gen, f, i % 2 == 1, &truth, ql);
            summary.faults_applied += (i % 2 == 0) as u64;
            if f.kind == FaultKind::Restart {
                summary.epochs += 1;
            }
        }
        let done = stop == Stop::Reached && target >= end_s;
        if done {
            gen.finish();
            send_truth(&mut gen, &truth, ql);
            summary.queue_log = ql.map(|q| q.stats);
            summary.calls = gen.counts.calls;
            summary.blocked = gen.counts.blocked;
            summary.events = gen.counts.events;
        }
        let (sim_now, counts) = (gen.now_s(), gen.counts);
        drop(gen);
        hub.notify.notify_waiters();
        if cfg.progress && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            hub.progress(cfg, sim_now, counts);
        }
        if done {
            if cfg.progress {
                (hub.notices)(Notice::ProgressDone);
            }
            break;
        }
        match stop {
            Stop::Reached => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                // Sessions waiting for the generator lock get it now.
                if hub.want_gen.load(AO::Relaxed) > 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    let wall = t0.elapsed();
    hub.state.lock().unwrap().finished = true;
    hub.notify.notify_waiters();
    (summary, wall, result)
}

/// What a hub starts from: its epoch and where in it.
struct HubStart {
    epoch: u64,
    /// The next seq (1 for an epoch that begins here).
    first_seq: u64,
    clock_ms: i64,
    end_ms: i64,
    buffer: u64,
    heartbeat_ms: u32,
    acd: u16,
}

impl<G: Snapshot> Hub<G> {
    /// A hub with no sessions yet, and one "link down" receiver per link for its
    /// listener. An epoch held from its seq 1 is a cold start (a fresh collector may
    /// replay it from there).
    fn new(
        listen: &[(String, SocketAddr)],
        gen: G,
        h: HubStart,
        notices: Notices,
        acks: Option<AckLog>,
    ) -> (Arc<Hub<G>>, Vec<watch::Receiver<bool>>) {
        let state = State {
            epoch: h.epoch,
            epoch_cold: h.first_seq == 1,
            first_seq: h.first_seq,
            frames: VecDeque::new(),
            head: h.first_seq - 1,
            clock_ms: h.clock_ms,
            finished: false,
            end_ms: h.end_ms,
            links: listen
                .iter()
                .map(|(n, _)| LinkState {
                    name: n.clone(),
                    acked: 0,
                    session: None,
                    connected_once: false,
                    halfopen: false,
                    slow: None,
                    garbage_gen: 0,
                    truncate_gen: 0,
                })
                .collect(),
            appended: acks.is_some().then(Appended::default),
        };
        let (down, down_rx): (Vec<_>, Vec<_>) =
            listen.iter().map(|_| watch::channel(false)).unzip();
        let hub = Arc::new(Hub {
            state: Mutex::new(state),
            gen: Mutex::new(gen),
            notify: Notify::new(),
            want_gen: AtomicUsize::new(0),
            down,
            buffer: h.buffer.max(1),
            heartbeat_ms: h.heartbeat_ms,
            acd: h.acd,
            next_session: AtomicU64::new(1),
            overruns: AtomicU64::new(0),
            notices,
            acks: acks.map(Mutex::new),
        });
        (hub, down_rx)
    }
}

impl Hub {
    /// The hub of a run starting with `gen`'s first epoch, and one "link down" receiver
    /// per link for its listener.
    fn start(
        cfg: &SwitchConfig,
        mut gen: Generator,
        end_s: i64,
        notices: Notices,
        acks: Option<AckLog>,
    ) -> (Arc<Hub>, Vec<watch::Receiver<bool>>) {
        let epoch = gen.start_epoch();
        let out = gen.out.split();
        let start = HubStart {
            epoch,
            first_seq: 1,
            clock_ms: gen.now_ms(),
            end_ms: end_s * 1000,
            buffer: cfg.buffer,
            heartbeat_ms: cfg.heartbeat_ms,
            acd: cfg.profile.acd,
        };
        let (hub, down_rx) = Hub::new(&cfg.listen, gen, start, notices, acks);
        hub.state.lock().unwrap().append(out);
        (hub, down_rx)
    }

    /// Moves what the generator made into the log (trimmed to what the links still
    /// need) and its closed truth intervals to the writer, and drops the sessions that
    /// fell behind.
    fn publish(
        &self,
        gen: &mut Generator,
        truth: &std::sync::mpsc::Sender<TruthMsg>,
        qlog: Option<&QueueLog>,
    ) {
        let out = gen.out.split();
        let now_ms = gen.now_ms();
        send_truth(gen, truth, qlog);
        let mut st = self.state.lock().unwrap();
        st.append(out);
        st.clock_ms = now_ms;
        st.trim(self.buffer);
        // A session more than `buffer` events behind is dropped: it must never stall the
        // generator or the other links.
        let behind = (st.head + 1).saturating_sub(self.buffer);
        let head = st.head;
        for l in &mut st.links {
            if let Some(s) = &l.session {
                if s.cursor < behind && !s.cancel.is_cancelled() {
                    warn!(link = %l.name, cursor = s.cursor, head, "overrun: link dropped");
                    (self.notices)(Notice::Overrun {
                        link: l.name.clone(),
                        buffer: self.buffer,
                    });
                    self.overruns.fetch_add(1, AO::Relaxed);
                    s.cancel.cancel();
                }
            }
        }
    }

    /// The progress notice: switch time in the profile's zone, counts, connected links.
    fn progress(&self, cfg: &SwitchConfig, sim_now: i64, counts: Counts) {
        let t = chrono::DateTime::from_timestamp(sim_now, 0)
            .unwrap()
            .with_timezone(&cfg.profile.tz());
        let links = {
            let st = self.state.lock().unwrap();
            st.links.iter().filter(|l| l.session.is_some()).count()
        };
        (self.notices)(Notice::Progress {
            time: t.format("%Y-%m-%d %H:%M:%S").to_string(),
            events: counts.events,
            calls: counts.calls,
            links,
            of: cfg.listen.len(),
        });
    }
}

impl<G: Snapshot> Hub<G> {
    /// Ends every session (the run is over).
    fn cancel_sessions(&self) {
        let st = self.state.lock().unwrap();
        for l in &st.links {
            if let Some(s) = &l.session {
                s.cancel.cancel();
            }
        }
    }
}

/// Hands closed intervals to the writer thread; with a queue log, restricted to what it
/// can express (the writer has read every event up to the generator's clock, so it
/// knows whether a restart touched them).
fn send_truth(
    gen: &mut Generator,
    truth: &std::sync::mpsc::Sender<TruthMsg>,
    qlog: Option<&QueueLog>,
) {
    if let Some(tr) = &mut gen.truth {
        let len_s = i64::from(tr.config().interval_minutes) * 60;
        for mut ci in tr.take_closed() {
            if let Some(q) = qlog {
                q.restrict(&mut ci, len_s);
            }
            let _ = truth.send(TruthMsg::Interval(ci));
        }
    }
}

fn apply_fault(
    hub: &Hub,
    gen: &mut Generator,
    f: &Resolved,
    ending: bool,
    truth: &std::sync::mpsc::Sender<TruthMsg>,
    qlog: Option<&QueueLog>,
) {
    let what = format!("{} on {}", f.kind, f.link);
    info!(fault = %what, ending, "fault");
    (hub.notices)(Notice::Fault {
        ending,
        what,
        at_s: gen.now_ms() / 1000,
    });
    let mut st = hub.state.lock().unwrap();
    let links: Vec<usize> = match &f.link {
        LinkSel::All => (0..st.links.len()).collect(),
        LinkSel::Name(n) => st
            .links
            .iter()
            .position(|l| &l.name == n)
            .into_iter()
            .collect(),
        LinkSel::Switch => vec![],
    };
    match f.kind {
        FaultKind::Down => {
            for &l in &links {
                if !ending {
                    if let Some(s) = st.links[l].session.take() {
                        s.cancel.cancel();
                    }
                }
                let _ = hub.down[l].send(!ending);
            }
        }
        FaultKind::HalfOpen => {
            for &l in &links {
                st.links[l].halfopen = !ending;
            }
        }
        FaultKind::Slow(rate) => {
            for &l in &links {
                st.links[l].slow = (!ending).then_some(rate);
            }
        }
        FaultKind::Garbage => {
            for &l in &links {
                st.links[l].garbage_gen += 1;
            }
        }
        FaultKind::Truncate => {
            for &l in &links {
                st.links[l].truncate_gen += 1;
            }
        }
        FaultKind::Restart => {
            // Warm restart: the world goes on, the stream starts a new epoch.
            for l in &mut st.links {
                if let Some(s) = l.session.take() {
                    s.cancel.cancel();
                }
                l.acked = 0;
            }
            st.frames.clear();
            st.head = 0;
            st.first_seq = 1;
            if let Some(a) = &mut st.appended {
                a.clear();
            }
            st.epoch = gen.start_epoch();
            st.epoch_cold = false;
            let out = gen.out.split();
            st.append(out);
        }
        FaultKind::Clock(d) => {
            gen.change_clock(d);
            let out = gen.out.split();
            st.append(out);
            st.clock_ms = gen.now_ms();
            st.end_ms += d * 1000;
            drop(st);
            send_truth(gen, truth, qlog);
        }
    }
}

/// Accepts connections on one link; drops the listener while the link is down and binds
/// the same port again when it comes back.
async fn listen_loop<G: Snapshot>(
    hub: Arc<Hub<G>>,
    link: usize,
    addr: SocketAddr,
    first: TcpListener,
    mut down: watch::Receiver<bool>,
) {
    let mut listener = Some(first);
    loop {
        if *down.borrow() {
            listener = None;
            if down.changed().await.is_err() {
                return;
            }
            continue;
        }
        let l = match listener.take() {
            Some(l) => l,
            None => {
                let mut tries = 0;
                loop {
                    match TcpListener::bind(addr).await {
                        Ok(l) => break l,
                        Err(e) if tries < 100 => {
                            tries += 1;
                            if tries == 1 {
                                warn!(%addr, error = %e, "re-bind failed, retrying");
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(e) => {
                            warn!(%addr, error = %e, "cannot listen again");
                            (hub.notices)(Notice::CannotListenAgain {
                                addr,
                                error: e.to_string(),
                            });
                            return;
                        }
                    }
                }
            }
        };
        loop {
            tokio::select! {
                r = l.accept() => match r {
                    Ok((s, peer)) => {
                        let _ = s.set_nodelay(true);
                        tokio::spawn(session(hub.clone(), link, s, peer));
                    }
                    Err(e) => warn!(%addr, error = %e, "accept failed"),
                },
                r = down.changed() => {
                    if r.is_err() {
                        return;
                    }
                    if *down.borrow() {
                        break;
                    }
                }
            }
        }
        drop(l);
    }
}

/// One collector session: handshake, catch-up, live stream, heartbeats, ACKs.
async fn session<G: Snapshot>(hub: Arc<Hub<G>>, link: usize, stream: TcpStream, peer: SocketAddr) {
    let (rd, mut wr) = stream.into_split();
    let mut reader = FramedRead::new(rd, LinkCodec);
    let Some(hello) = read_hello(&mut reader, peer).await else {
        return;
    };
    if let Some(reject) = refusal(&hello, hub.acd) {
        let mut buf = BytesMut::new();
        reject.encode(&mut buf);
        // The session ends either way: a collector that is gone needs no REJECT.
        let _ = wr.write_all(&buf).await;
        return;
    }
    let cancel = CancellationToken::new();
    let sid = hub.next_session.fetch_add(1, AO::Relaxed);
    let handshake = hub.open_session(link, &hello, sid, &cancel, peer);
    tokio::spawn(read_loop(
        hub.clone(),
        link,
        sid,
        reader,
        cancel.clone(),
        peer,
    ));
    let r = write_loop(&hub, link, sid, &mut wr, handshake, &cancel).await;
    if let Err(e) = r {
        warn!(%peer, error = %e, "session write failed");
    }
    cancel.cancel();
    let mut st = hub.state.lock().unwrap();
    let l = &mut st.links[link];
    if l.session.as_ref().is_some_and(|s| s.id == sid) {
        l.session = None;
        info!(link = %l.name, %peer, "session ended");
    }
}

/// The collector's HELLO, within [`HELLO_TIMEOUT`]; `None` (logged) when the first frame
/// is something else, broken, or does not come.
async fn read_hello(
    reader: &mut FramedRead<tokio::net::tcp::OwnedReadHalf, LinkCodec>,
    peer: SocketAddr,
) -> Option<Hello> {
    match tokio::time::timeout(HELLO_TIMEOUT, reader.next()).await {
        Ok(Some(Ok(Frame::Hello(h)))) => Some(h),
        Ok(Some(Ok(f))) => {
            warn!(%peer, "first frame is not HELLO (type 0x{:02x}); closing", f.type_code());
            None
        }
        Ok(Some(Err(e))) => {
            warn!(%peer, error = %e, "bad first frame; closing");
            None
        }
        Ok(None) => None,
        Err(_) => {
            warn!(%peer, "no HELLO within 10 s; closing");
            None
        }
    }
}

/// The REJECT a HELLO gets (proto/acd-link.md, "Opening", step 3), if any.
fn refusal(hello: &Hello, acd: u16) -> Option<Frame> {
    if hello.version_min > PROTOCOL_VERSION_MAX || hello.version_max < PROTOCOL_VERSION_MIN {
        return Some(Frame::Reject {
            code: 1,
            text: "no common protocol version".into(),
        });
    }
    (hello.acd != acd).then(|| Frame::Reject {
        code: 2,
        text: format!("this switch is ACD {acd}"),
    })
}

impl<G: Snapshot> Hub<G> {
    /// Makes session `sid` the link's session (replacing the one it had) and returns its
    /// handshake: WELCOME, and for a pump-up the snapshot and the GAP. Replay or pump-up
    /// is decided atomically with the head (proto/acd-link.md, "Opening", step 4).
    fn open_session(
        &self,
        link: usize,
        hello: &Hello,
        sid: u64,
        cancel: &CancellationToken,
        peer: SocketAddr,
    ) -> BytesMut {
        self.want_gen.fetch_add(1, AO::Relaxed);
        let gen = self.gen.lock().unwrap();
        self.want_gen.fetch_sub(1, AO::Relaxed);
        let mut st = self.state.lock().unwrap();
        let (mode, first_seq) = st.start_mode(link, hello, self.buffer);
        let mut buf = BytesMut::new();
        Frame::Welcome(Welcome {
            version: PROTOCOL_VERSION_MAX.min(hello.version_max),
            acd: self.acd,
            epoch: st.epoch,
            mode,
            first_seq,
            switch_ts: st.clock_ms,
            heartbeat_ms: self.heartbeat_ms,
        })
        .encode(&mut buf);
        if mode == StartMode::Pumpup {
            st.encode_pumpup(&*gen, hello, &mut buf);
        }
        let l = &mut st.links[link];
        if let Some(old) = l.session.take() {
            old.cancel.cancel();
        }
        l.session = Some(Session {
            id: sid,
            cursor: first_seq,
            cancel: cancel.clone(),
            final_sent: false,
        });
        l.connected_once = true;
        info!(link = %l.name, %peer, ?mode, first_seq, "session started");
        buf
    }
}

impl State {
    /// How a session on `link` starts after `hello`, and its first seq. The HELLO's
    /// `resume_from - 1` counts as an ACK of the current epoch.
    fn start_mode(&mut self, link: usize, hello: &Hello, buffer: u64) -> (StartMode, u64) {
        let head = self.head;
        if hello.epoch == self.epoch && hello.resume_from >= 1 {
            let l = &mut self.links[link];
            l.acked = l.acked.max((hello.resume_from - 1).min(head));
        }
        let ret = self
            .retained_from(link, buffer)
            .max(self.first_seq.min(head + 1));
        let fresh = hello.epoch == 0 && hello.resume_from == 0;
        if hello.epoch == self.epoch
            && hello.resume_from >= ret
            && hello.resume_from <= head + 1
            && hello.resume_from >= 1
        {
            (StartMode::Replay, hello.resume_from)
        } else if fresh && ret <= 1 && self.epoch_cold {
            (StartMode::Replay, 1)
        } else {
            (StartMode::Pumpup, head + 1)
        }
    }

    /// A pump-up as of the head: PUMPUP_BEGIN, the generator's snapshot, PUMPUP_END, and
    /// the GAP a collector that asked to resume gets.
    fn encode_pumpup(&self, gen: &impl Snapshot, hello: &Hello, buf: &mut BytesMut) {
        let head = self.head;
        Frame::PumpupBegin {
            as_of_seq: head,
            ts: self.clock_ms,
        }
        .encode(buf);
        for f in gen.snapshot() {
            f.encode(buf);
        }
        Frame::PumpupEnd.encode(buf);
        if hello.resume_from >= 1 {
            let from = if hello.epoch == self.epoch {
                hello.resume_from
            } else {
                1
            };
            if from <= head {
                Frame::Gap { from, to: head }.encode(buf);
            }
        }
    }
}

/// What the writer found to do under the lock.
struct Work {
    bytes: BytesMut,
    new_cursor: u64,
    caught_up: bool,
    clock_ms: i64,
    finished: bool,
    end_ms: i64,
    /// The last log frame in `bytes`, if any: its ts is the heartbeat's while catching up.
    last_event: Option<Bytes>,
    halfopen: bool,
    slow: Option<u32>,
    garbage: bool,
    truncate: bool,
}

/// The garbage and truncate fault counters of a link a session has acted on.
#[derive(Clone, Copy)]
struct SeenFaults {
    garbage: u64,
    truncate: u64,
}

/// Sends session `sid` its handshake (`first`), then the log from its cursor, heartbeats
/// and the link's faults, until the session ends.
async fn write_loop<G: Snapshot>(
    hub: &Hub<G>,
    link: usize,
    sid: u64,
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    first: BytesMut,
    cancel: &CancellationToken,
) -> std::io::Result<()> {
    let hb = Duration::from_millis(hub.heartbeat_ms.max(1) as u64);
    let mut pending = first;
    let mut last_hb = Instant::now();
    let mut last_ts = 0i64;
    let mut seen = {
        let st = hub.state.lock().unwrap();
        SeenFaults {
            garbage: st.links[link].garbage_gen,
            truncate: st.links[link].truncate_gen,
        }
    };
    loop {
        let notified = hub.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let Some(w) = hub.take_work(link, sid, cancel, &mut pending, &mut seen) else {
            return Ok(());
        };
        if w.garbage {
            // A length far beyond the maximum: the collector must close at once.
            wr.write_all(&[0xde, 0xad, 0xbe, 0xef, 0x55, 0xaa, 0x00, 0xff])
                .await?;
        }
        if w.truncate {
            // Half a frame, then the end of the stream.
            let b = heartbeat(w.clock_ms, 0);
            wr.write_all(&b[..b.len() / 2]).await?;
            let _ = wr.shutdown().await;
            return Ok(());
        }
        if w.halfopen {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = &mut notified => {},
                _ = tokio::time::sleep(hb) => {},
            }
            last_hb = Instant::now();
            continue;
        }
        let sent_events = !w.bytes.is_empty();
        if sent_events {
            // The ts of the last event written (for a heartbeat while catching up).
            if let Some(ts) = w.last_event.as_deref().and_then(event_ts) {
                last_ts = ts;
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                r = wr.write_all(&w.bytes) => r?,
            }
            hub.with_session(link, sid, |s| s.cursor = w.new_cursor);
        }
        // The final heartbeat (the end of the run's switch time) goes once, when caught up.
        let final_now = w.caught_up
            && w.finished
            && hub
                .with_session(link, sid, |s| !std::mem::replace(&mut s.final_sent, true))
                .unwrap_or(false);
        if final_now || last_hb.elapsed() >= hb {
            let ts = if final_now {
                w.end_ms
            } else if w.caught_up {
                w.clock_ms
            } else {
                last_ts
            };
            wr.write_all(&heartbeat(ts, w.new_cursor.saturating_sub(1)))
                .await?;
            last_hb = Instant::now();
        }
        if w.slow.is_some() {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {},
            }
        } else if w.caught_up || !sent_events {
            let wait = hb.saturating_sub(last_hb.elapsed());
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = &mut notified => {},
                _ = tokio::time::sleep(wait) => {},
            }
        }
    }
}

/// A switch HEARTBEAT, encoded.
fn heartbeat(ts: i64, last_seq: u64) -> BytesMut {
    let mut b = BytesMut::new();
    Frame::Heartbeat { ts, last_seq }.encode(&mut b);
    b
}

impl<G: Snapshot> Hub<G> {
    /// Runs `f` on session `sid` of `link` if it is still the link's session.
    fn with_session<T>(
        &self,
        link: usize,
        sid: u64,
        f: impl FnOnce(&mut Session) -> T,
    ) -> Option<T> {
        let mut st = self.state.lock().unwrap();
        st.links[link]
            .session
            .as_mut()
            .filter(|s| s.id == sid)
            .map(f)
    }

    /// What session `sid` on `link` does next, taken under the lock: the pending
    /// handshake and the log from its cursor (at most [`BATCH_BYTES`], fewer frames on a
    /// slow link), and the link's faults it has not acted on. `None` when the session is
    /// over: replaced, cancelled, or trimmed under it.
    fn take_work(
        &self,
        link: usize,
        sid: u64,
        cancel: &CancellationToken,
        pending: &mut BytesMut,
        seen: &mut SeenFaults,
    ) -> Option<Work> {
        let mut st = self.state.lock().unwrap();
        let (first_seq, head, clock_ms, finished, end_ms) =
            (st.first_seq, st.head, st.clock_ms, st.finished, st.end_ms);
        let l = &mut st.links[link];
        let s = l.session.as_mut().filter(|s| s.id == sid)?;
        if cancel.is_cancelled() {
            return None;
        }
        // While the link is half-open nothing is sent, not even the handshake of a
        // session that connected during the window: it stays pending, so the session
        // starts with its WELCOME when the window ends (issue #10 item 4).
        let mut w = Work {
            bytes: if l.halfopen {
                BytesMut::new()
            } else {
                std::mem::take(pending)
            },
            new_cursor: s.cursor,
            caught_up: false,
            clock_ms,
            finished,
            end_ms,
            last_event: None,
            halfopen: l.halfopen,
            slow: l.slow,
            garbage: l.garbage_gen != seen.garbage,
            truncate: l.truncate_gen != seen.truncate,
        };
        seen.garbage = l.garbage_gen;
        seen.truncate = l.truncate_gen;
        if w.halfopen {
            return Some(w);
        }
        if s.cursor < first_seq && s.cursor <= head {
            // Trimmed under us: the driver drops such sessions as overruns.
            return None;
        }
        let max_frames = match w.slow {
            Some(r) => (r as u64 / 10).max(1),
            None => u64::MAX,
        };
        let mut c = s.cursor;
        let mut n = 0;
        while c <= head && n < max_frames && w.bytes.len() < BATCH_BYTES {
            let f = &st.frames[(c - first_seq) as usize];
            w.bytes.extend_from_slice(f);
            w.last_event = Some(f.clone());
            c += 1;
            n += 1;
        }
        w.new_cursor = c;
        w.caught_up = c > head;
        Some(w)
    }
}

/// The ts of one encoded event frame of the log.
fn event_ts(frame: &[u8]) -> Option<i64> {
    match decode_frame(frame) {
        Ok(Decoded::Frame(Frame::Event(e), _)) => Some(e.ts),
        _ => None,
    }
}

async fn read_loop<G: Snapshot>(
    hub: Arc<Hub<G>>,
    link: usize,
    sid: u64,
    mut reader: FramedRead<tokio::net::tcp::OwnedReadHalf, LinkCodec>,
    cancel: CancellationToken,
    peer: SocketAddr,
) {
    let idle = Duration::from_millis(3 * hub.heartbeat_ms.max(1) as u64);
    loop {
        let r = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tokio::time::timeout(idle, reader.next()) => r,
        };
        let halfopen = hub.state.lock().unwrap().links[link].halfopen;
        match r {
            Err(_) if halfopen => continue,
            Err(_) => {
                warn!(%peer, "no frame for 3 heartbeat periods; closing");
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                warn!(%peer, error = %e, "bad frame from collector; closing");
                break;
            }
            Ok(Some(Ok(Frame::Heartbeat { .. }))) => {}
            Ok(Some(Ok(Frame::Ack { epoch, seq }))) => {
                if halfopen {
                    continue;
                }
                let mut st = hub.state.lock().unwrap();
                if epoch == st.epoch && st.links[link].session.as_ref().is_some_and(|s| s.id == sid)
                {
                    let head = st.head;
                    let seq = seq.min(head);
                    // The lag of an ACK that acknowledges something new (--ack-stats),
                    // taken before the trim forgets when `seq` was appended.
                    let lag = (seq > st.links[link].acked).then(|| {
                        st.appended
                            .as_ref()
                            .and_then(|a| a.when(seq))
                            .map(|t| t.elapsed())
                    });
                    let l = &mut st.links[link];
                    l.acked = l.acked.max(seq);
                    st.trim(hub.buffer);
                    drop(st);
                    if let Some(a) = &hub.acks {
                        a.lock().unwrap().ack(link, seq, lag);
                    }
                }
            }
            Ok(Some(Ok(f))) => {
                warn!(%peer, "unexpected frame type 0x{:02x} from collector; closing", f.type_code());
                break;
            }
        }
    }
    cancel.cancel();
    hub.notify.notify_waiters();
}
