//! Test support: a scripted ACD switch and builders for common event streams.
//!
//! [`ScriptedSwitch`] stands in for the switch end of the ACD link
//! (`proto/acd-link.md`) in integration tests of the collector. It listens on
//! `127.0.0.1:0`, and plays one [`Script`] per accepted connection, in order: expect the
//! HELLO, send typed frames or raw (malformed) bytes, answer from the HELLO, sleep, wait
//! for an ACK or the peer's HEARTBEATs, wait for the peer to close, close. It records everything the peer sent.
//!
//! It runs on its own thread with its own tokio runtime and real time, so it works from a
//! `#[tokio::test]` (even with `time::pause()`), from a plain `#[test]`, and without any
//! collector code. Every wait is bounded ([`WAIT`] unless a step says otherwise) and a
//! timeout says what was awaited; nothing here sleeps-and-hopes.
//!
//! A script step that fails (no HELLO, no ACK in time, peer sent garbage...) does not
//! panic on the switch thread: it ends that connection and is recorded in its
//! [`ConnRecord`]. The test sees it through [`ScriptedSwitch::connection`]; a failure
//! the test never looked at fails the test when the switch is dropped.
//!
//! Beside it: [`collector`] (a real `cms collect` process), [`bridge`] (a real
//! `cms-asterisk` following a queue log), [`sim`] (a real
//! `cms-linksim` and a pair of collectors, checked against its ground truth), [`run`] (the
//! simulated run the pair scenarios start from), [`site`]
//! (a configuration in a temp directory and `cms` run with it), [`smallfs`] (a small
//! tmpfs: a disk that fills up), [`wait`]
//! (the bounded poll every test waits with), [`golden`] (whole-output comparison with
//! the one normaliser of what varies between runs) [`pg`] (a throwaway PostgreSQL
//! cluster for the warehouse) and [`http`] (a plain HTTP/1.1 GET of a collector's
//! endpoints).

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod bridge;
pub mod collector;
pub mod golden;
pub mod http;
pub mod pg;
pub mod run;
pub mod sim;
pub mod site;
pub mod smallfs;
pub mod wait;

use cms::proto::codec::{CodecError, LinkCodec};
use cms::proto::{
    AgentState, Event, EventKind, Frame, Hello, ReleasedBy, SkillDef, SkillLevel, StartMode,
    TrunkGroupDef, VdnDef, Welcome, PROTOCOL_VERSION_MAX,
};
use futures::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// Default bound of every wait, on both the switch and the test side.
pub const WAIT: Duration = Duration::from_secs(20);
/// After the switch closes its sending side, how long it keeps reading (and recording)
/// until the peer closes too. Closing with unread bytes would make the kernel send a
/// reset instead of a clean end of stream.
const CLOSE_DRAIN: Duration = Duration::from_secs(2);

/// Builds the frames of a [`Script::respond`] step from the HELLO.
type Responder = Box<dyn FnOnce(&Hello) -> Vec<Frame> + Send>;

/// One thing the switch does on a connection.
enum Step {
    ExpectHello,
    Send(Vec<Frame>),
    Respond(Responder),
    SendRaw(Vec<u8>),
    Sleep(Duration),
    WaitAck { seq: u64, within: Duration },
    WaitHeartbeats { n: usize, within: Duration },
    ExpectClosed { within: Duration },
    Close,
}

/// What the switch does on one connection, step by step. When the steps run out the
/// switch closes the connection.
#[must_use]
#[derive(Default)]
pub struct Script {
    steps: Vec<Step>,
    /// While a step waits (sleep, ACK, close), send HEARTBEAT this often so the peer's
    /// dead-link detection does not fire. The heartbeat repeats the ts and seq of the
    /// last event sent, so it never moves switch time.
    keepalive: Option<Duration>,
}

impl Script {
    pub fn new() -> Self {
        Self::default()
    }
    /// Read the first frame; it must be HELLO. The test gets it from
    /// [`ScriptedSwitch::next_hello`].
    pub fn expect_hello(mut self) -> Self {
        self.steps.push(Step::ExpectHello);
        self
    }
    /// Send typed frames, in order.
    pub fn send(mut self, frames: Vec<Frame>) -> Self {
        self.steps.push(Step::Send(frames));
        self
    }
    /// Send frames computed from the HELLO received earlier (resume points, epochs).
    pub fn respond(mut self, f: impl FnOnce(&Hello) -> Vec<Frame> + Send + 'static) -> Self {
        self.steps.push(Step::Respond(Box::new(f)));
        self
    }
    /// Send bytes as they are: malformed frames, half frames, garbage.
    pub fn send_raw(mut self, bytes: Vec<u8>) -> Self {
        self.steps.push(Step::SendRaw(bytes));
        self
    }
    pub fn sleep(mut self, d: Duration) -> Self {
        self.steps.push(Step::Sleep(d));
        self
    }
    /// Read (and record) until an ACK with `seq >=` this arrives, at most [`WAIT`].
    pub fn wait_ack(self, seq: u64) -> Self {
        self.wait_ack_within(seq, WAIT)
    }
    pub fn wait_ack_within(mut self, seq: u64, within: Duration) -> Self {
        self.steps.push(Step::WaitAck { seq, within });
        self
    }
    /// Read (and record) until the peer has sent `n` HEARTBEATs after this step began, at
    /// most [`WAIT`].
    pub fn wait_heartbeats(mut self, n: usize) -> Self {
        self.steps.push(Step::WaitHeartbeats { n, within: WAIT });
        self
    }
    /// Read (and record) until the peer closes the connection, at most [`WAIT`]: for
    /// "the collector must drop the session on this input".
    pub fn expect_closed(self) -> Self {
        self.expect_closed_within(WAIT)
    }
    pub fn expect_closed_within(mut self, within: Duration) -> Self {
        self.steps.push(Step::ExpectClosed { within });
        self
    }
    /// Close the connection (end of stream for the peer). Later steps are not run.
    pub fn close(mut self) -> Self {
        self.steps.push(Step::Close);
        self
    }
    pub fn keepalive(mut self, every: Duration) -> Self {
        self.keepalive = Some(every);
        self
    }
}

/// How a connection's script ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnOutcome {
    /// Every step ran.
    Ok,
    /// A step failed; the message names the connection, the step and what was awaited.
    Failed(String),
}

/// Everything about one accepted connection, available once its script has ended.
#[must_use]
#[derive(Debug, Clone)]
pub struct ConnRecord {
    /// 0-based, in accept order.
    pub index: usize,
    pub peer: SocketAddr,
    pub hello: Option<Hello>,
    /// Every frame the peer sent, HELLO included, in order.
    pub received: Vec<Frame>,
    pub outcome: ConnOutcome,
    /// No script was queued for this connection within [`WAIT`]: it was closed unplayed.
    pub unscripted: bool,
    /// When the switch accepted the connection (for reconnect timing).
    pub accepted_at: Instant,
}

impl ConnRecord {
    /// # Panics
    /// If the script failed, with the failure message.
    pub fn assert_ok(&self) {
        if let ConnOutcome::Failed(m) = &self.outcome {
            panic!("{m}");
        }
    }
    /// The ACKs the peer sent, as (epoch, seq).
    pub fn acks(&self) -> Vec<(u64, u64)> {
        self.received
            .iter()
            .filter_map(|f| match f {
                Frame::Ack { epoch, seq } => Some((*epoch, *seq)),
                _ => None,
            })
            .collect()
    }
}

#[derive(Default)]
struct Inner {
    scripts: VecDeque<Script>,
    hellos: VecDeque<Hello>,
    hellos_seen: usize,
    accepted: usize,
    conns: Vec<ConnRecord>,
    /// Records the test has been handed (it is then responsible for their outcome).
    consumed: Vec<bool>,
}

struct Shared {
    inner: Mutex<Inner>,
    /// Wakes blocking test-side waits.
    cv: Condvar,
    /// Wakes async test-side waits and the switch waiting for a script.
    notify: tokio::sync::Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not hide the switch's state from Drop.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn update(&self, f: impl FnOnce(&mut Inner)) {
        f(&mut self.lock());
        self.cv.notify_all();
        self.notify.notify_waiters();
    }
}

/// A fake switch: see the module doc.
pub struct ScriptedSwitch {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ScriptedSwitch {
    /// Listens on `127.0.0.1:0` and starts serving on its own thread.
    ///
    /// # Panics
    /// If the port cannot be bound or the runtime cannot start.
    pub fn bind() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("set_nonblocking");
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            cv: Condvar::new(),
            notify: tokio::sync::Notify::new(),
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("scripted-switch-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("scripted switch runtime");
                rt.block_on(serve(listener, sh, stop_rx));
            })
            .expect("spawn scripted switch thread");
        ScriptedSwitch {
            addr,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues the script for the next connection that has none. Push before the peer
    /// connects, or within [`WAIT`] after: an accepted connection waits for its script.
    pub fn push(&self, script: Script) {
        self.shared.update(|i| i.scripts.push_back(script));
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.lock().accepted
    }

    /// HELLOs received so far, over all connections.
    pub fn hellos_seen(&self) -> usize {
        self.shared.lock().hellos_seen
    }

    /// The next HELLO not yet returned, in arrival order.
    ///
    /// # Panics
    /// If none arrives within [`WAIT`].
    pub async fn next_hello(&self) -> Hello {
        self.wait_async("a HELLO", |i| i.hellos.pop_front()).await
    }
    pub fn next_hello_blocking(&self) -> Hello {
        self.wait_blocking("a HELLO", |i| i.hellos.pop_front())
    }

    /// The record of connection `index` (0-based) once its script has ended.
    ///
    /// # Panics
    /// If that connection has not ended within [`WAIT`].
    pub async fn connection(&self, index: usize) -> ConnRecord {
        let what = format!("connection #{index} to finish its script");
        self.wait_async(&what, |i| take_record(i, index)).await
    }
    pub fn connection_blocking(&self, index: usize) -> ConnRecord {
        let what = format!("connection #{index} to finish its script");
        self.wait_blocking(&what, |i| take_record(i, index))
    }

    /// Every failed connection so far, as (index, message); marks them all as seen so
    /// that dropping the switch does not fail the test.
    pub fn take_failures(&self) -> Vec<(usize, String)> {
        let mut g = self.shared.lock();
        let inner = &mut *g;
        let mut out = Vec::new();
        for (k, r) in inner.conns.iter().enumerate() {
            inner.consumed[k] = true;
            if let ConnOutcome::Failed(m) = &r.outcome {
                out.push((r.index, m.clone()));
            }
        }
        out
    }

    fn wait_blocking<T>(&self, what: &str, mut f: impl FnMut(&mut Inner) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        let mut g = self.shared.lock();
        loop {
            if let Some(v) = f(&mut g) {
                return v;
            }
            let now = Instant::now();
            if now >= deadline {
                panic!("scripted switch {}: waited {WAIT:?} for {what}", self.addr);
            }
            g = self
                .shared
                .cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    async fn wait_async<T>(&self, what: &str, mut f: impl FnMut(&mut Inner) -> Option<T>) -> T {
        // The deadline is wall-clock time, so a test with tokio's clock paused cannot
        // time out early; the short sleep only re-checks it.
        let deadline = Instant::now() + WAIT;
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = f(&mut self.shared.lock()) {
                return v;
            }
            if Instant::now() >= deadline {
                panic!("scripted switch {}: waited {WAIT:?} for {what}", self.addr);
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }
}

fn take_record(i: &mut Inner, index: usize) -> Option<ConnRecord> {
    let pos = i.conns.iter().position(|r| r.index == index)?;
    i.consumed[pos] = true;
    Some(i.conns[pos].clone())
}

impl Drop for ScriptedSwitch {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if std::thread::panicking() {
            return;
        }
        let g = self.shared.lock();
        let unseen: Vec<&str> = g
            .conns
            .iter()
            .zip(&g.consumed)
            .filter(|(_, seen)| !**seen)
            .filter_map(|(r, _)| match &r.outcome {
                ConnOutcome::Failed(m) => Some(m.as_str()),
                ConnOutcome::Ok => None,
            })
            .collect();
        if !unseen.is_empty() {
            panic!(
                "scripted switch {}: script failures the test never checked:\n{}",
                self.addr,
                unseen.join("\n")
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The switch thread
// ---------------------------------------------------------------------------------------

async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stop => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => continue,
            },
        };
        let index = {
            let mut g = shared.lock();
            g.accepted += 1;
            g.accepted - 1
        };
        let accepted_at = Instant::now();
        let rec = tokio::select! {
            _ = &mut stop => return,
            rec = run_connection(index, stream, peer, &shared, accepted_at) => rec,
        };
        shared.update(|i| {
            i.conns.push(rec);
            i.consumed.push(false);
        });
    }
}

/// Waits (bounded) for the script of the next connection.
async fn next_script(shared: &Shared) -> Option<Script> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let notified = shared.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(s) = shared.lock().scripts.pop_front() {
            return Some(s);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return None;
        }
    }
}

struct Conn<'a> {
    index: usize,
    framed: Framed<TcpStream, LinkCodec>,
    shared: &'a Shared,
    hello: Option<Hello>,
    received: Vec<Frame>,
    keepalive: Option<Duration>,
    /// ts and seq of the last event sent, repeated by keepalive heartbeats.
    last_ts: i64,
    last_seq: u64,
}

/// What a read with a deadline produced.
enum Read {
    Frame(Frame),
    Closed,
    TimedOut,
}

impl Conn<'_> {
    fn fail(&self, msg: impl std::fmt::Display) -> String {
        format!("scripted switch, connection #{}: {msg}", self.index)
    }

    async fn send_frames(&mut self, frames: &[Frame]) -> Result<(), String> {
        for f in frames {
            if let Frame::Event(Event { seq, ts, .. }) = f {
                self.last_seq = *seq;
                self.last_ts = *ts;
            }
            self.framed
                .feed(f.clone())
                .await
                .map_err(|e| self.fail(format!("sending {f:?}: {e}")))?;
        }
        SinkExt::<Frame>::flush(&mut self.framed)
            .await
            .map_err(|e| self.fail(format!("sending frames: {e}")))
    }

    /// Reads one frame (recording it), sending keepalive heartbeats meanwhile.
    async fn read(&mut self, deadline: tokio::time::Instant) -> Result<Read, String> {
        let mut tick = self.keepalive.map(|d| {
            let mut t = tokio::time::interval_at(tokio::time::Instant::now() + d, d);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        loop {
            let r = tokio::select! {
                r = tokio::time::timeout_at(deadline, self.framed.next()) => r,
                _ = async { tick.as_mut().unwrap().tick().await }, if tick.is_some() => {
                    self.heartbeat().await?;
                    continue;
                }
            };
            return match r {
                Err(_) => Ok(Read::TimedOut),
                Ok(None) => Ok(Read::Closed),
                Ok(Some(Ok(f))) => {
                    self.received.push(f.clone());
                    Ok(Read::Frame(f))
                }
                Ok(Some(Err(CodecError::Io(e))))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                    ) =>
                {
                    Ok(Read::Closed)
                }
                Ok(Some(Err(e))) => Err(self.fail(format!("the peer sent bad input: {e}"))),
            };
        }
    }

    async fn heartbeat(&mut self) -> Result<(), String> {
        let hb = Frame::Heartbeat {
            ts: self.last_ts,
            last_seq: self.last_seq,
        };
        self.framed
            .send(hb)
            .await
            .map_err(|e| self.fail(format!("sending keepalive HEARTBEAT: {e}")))
    }

    async fn sleep(&mut self, d: Duration) -> Result<(), String> {
        let Some(every) = self.keepalive else {
            tokio::time::sleep(d).await;
            return Ok(());
        };
        let end = tokio::time::Instant::now() + d;
        loop {
            let next = tokio::time::Instant::now() + every;
            if next >= end {
                tokio::time::sleep_until(end).await;
                return Ok(());
            }
            tokio::time::sleep_until(next).await;
            self.heartbeat().await?;
        }
    }

    /// The failure of a wait for `what` that ended in `r` (closed or timed out).
    fn not_received(&self, r: &Read, within: Duration, what: &str) -> String {
        let why = if matches!(r, Read::Closed) {
            "the peer closed while the switch waited".to_owned()
        } else {
            format!("waited {within:?}")
        };
        self.fail(format!("{why} for {what}; {}", self.received_summary()))
    }

    fn received_summary(&self) -> String {
        let mut s = format!("{} frames received", self.received.len());
        if let Some(f) = self.received.last() {
            let _ = write!(s, ", the last {f:?}");
        }
        s
    }

    async fn step(&mut self, step: Step) -> Result<bool, String> {
        match step {
            Step::ExpectHello => {
                let deadline = tokio::time::Instant::now() + WAIT;
                match self.read(deadline).await? {
                    Read::Frame(Frame::Hello(h)) => {
                        self.hello = Some(h.clone());
                        self.shared.update(|i| {
                            i.hellos.push_back(h);
                            i.hellos_seen += 1;
                        });
                    }
                    Read::Frame(f) => {
                        return Err(self.fail(format!("expected HELLO first, got {f:?}")))
                    }
                    Read::Closed => return Err(self.fail("the peer closed before sending HELLO")),
                    Read::TimedOut => return Err(self.fail(format!("waited {WAIT:?} for HELLO"))),
                }
            }
            Step::Send(frames) => self.send_frames(&frames).await?,
            Step::Respond(f) => {
                let Some(h) = self.hello.clone() else {
                    return Err(self.fail("respond: no HELLO received before this step"));
                };
                let frames = f(&h);
                self.send_frames(&frames).await?;
            }
            Step::SendRaw(bytes) => {
                let r = async {
                    SinkExt::<Frame>::flush(&mut self.framed)
                        .await
                        .map_err(|e| e.to_string())?;
                    let s = self.framed.get_mut();
                    s.write_all(&bytes).await.map_err(|e| e.to_string())?;
                    s.flush().await.map_err(|e| e.to_string())
                }
                .await;
                r.map_err(|e| self.fail(format!("sending {} raw bytes: {e}", bytes.len())))?;
            }
            Step::Sleep(d) => self.sleep(d).await?,
            Step::WaitAck { seq, within } => {
                let deadline = tokio::time::Instant::now() + within;
                let mut last_ack = None;
                loop {
                    match self.read(deadline).await? {
                        Read::Frame(Frame::Ack { seq: s, .. }) if s >= seq => break,
                        Read::Frame(Frame::Ack { seq: s, .. }) => last_ack = Some(s),
                        Read::Frame(_) => {}
                        r => {
                            let last = match last_ack {
                                Some(s) => format!("last ACK seq {s}"),
                                None => "no ACK at all".to_owned(),
                            };
                            let what = format!("an ACK with seq >= {seq}; {last}");
                            return Err(self.not_received(&r, within, &what));
                        }
                    }
                }
            }
            Step::WaitHeartbeats { n, within } => {
                let deadline = tokio::time::Instant::now() + within;
                let mut seen = 0;
                while seen < n {
                    match self.read(deadline).await? {
                        Read::Frame(Frame::Heartbeat { .. }) => seen += 1,
                        Read::Frame(_) => {}
                        r => {
                            let what = format!("{n} HEARTBEATs, got {seen}");
                            return Err(self.not_received(&r, within, &what));
                        }
                    }
                }
            }
            Step::ExpectClosed { within } => {
                let deadline = tokio::time::Instant::now() + within;
                loop {
                    match self.read(deadline).await? {
                        Read::Frame(_) => {}
                        Read::Closed => return Ok(false),
                        Read::TimedOut => {
                            return Err(self.fail(format!(
                                "waited {within:?} for the peer to close the connection; {}",
                                self.received_summary()
                            )))
                        }
                    }
                }
            }
            Step::Close => {
                self.close().await;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Sends end-of-stream, then records what the peer still sends until it closes too
    /// (bounded by [`CLOSE_DRAIN`]).
    async fn close(&mut self) {
        let _ = SinkExt::<Frame>::flush(&mut self.framed).await;
        let _ = self.framed.get_mut().shutdown().await;
        let deadline = tokio::time::Instant::now() + CLOSE_DRAIN;
        self.keepalive = None;
        while let Ok(Read::Frame(_)) = self.read(deadline).await {}
    }
}

async fn run_connection(
    index: usize,
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    accepted_at: Instant,
) -> ConnRecord {
    let _ = stream.set_nodelay(true);
    let Some(script) = next_script(shared).await else {
        return ConnRecord {
            index,
            peer,
            hello: None,
            received: Vec::new(),
            outcome: ConnOutcome::Ok,
            unscripted: true,
            accepted_at,
        };
    };
    let mut c = Conn {
        index,
        framed: Framed::new(stream, LinkCodec),
        shared,
        hello: None,
        received: Vec::new(),
        keepalive: script.keepalive,
        last_ts: 0,
        last_seq: 0,
    };
    let mut outcome = ConnOutcome::Ok;
    let mut open = true;
    for step in script.steps {
        match c.step(step).await {
            Ok(true) => {}
            Ok(false) => {
                open = false;
                break;
            }
            Err(m) => {
                outcome = ConnOutcome::Failed(m);
                open = false;
                break;
            }
        }
    }
    if open {
        c.close().await;
    }
    ConnRecord {
        index,
        peer,
        hello: c.hello,
        received: c.received,
        outcome,
        unscripted: false,
        accepted_at,
    }
}

// ---------------------------------------------------------------------------------------
// Stream builders
// ---------------------------------------------------------------------------------------

/// The skill, VDN and trunk group of [`translations`].
pub const SKILL: u16 = 1;
pub const VDN: u16 = 1;
pub const TKGRP: u16 = 1;
/// Heartbeat period [`welcome`] announces: long, so that a slow CI machine does not trip
/// the collector's dead-link detection (3 x this) in the middle of a test.
pub const TEST_HEARTBEAT_MS: u32 = 10_000;

/// Skill 1 "Sales": service level 20 s, PERIOD1..9 = 5, 10, 20, 30, 40, 60, 90, 120, 180 s
/// (the worked example of `docs/data-items.md`).
pub fn skill_def() -> SkillDef {
    SkillDef {
        skill: SKILL,
        service_level: 20,
        periods: [5, 10, 20, 30, 40, 60, 90, 120, 180],
        name: "Sales".into(),
    }
}

/// VDN 1 "Main": service level 30 s.
pub fn vdn_def() -> VdnDef {
    VdnDef {
        vdn: VDN,
        service_level: 30,
        name: "Main".into(),
    }
}

/// Trunk group 1 "PRI-1": 24 trunks.
pub fn tkgrp_def() -> TrunkGroupDef {
    TrunkGroupDef {
        tkgrp: TKGRP,
        trunks: 24,
        name: "PRI-1".into(),
    }
}

pub fn event(seq: u64, ts: i64, kind: EventKind) -> Frame {
    Frame::Event(Event { seq, ts, kind })
}

/// WELCOME for ACD 1 at the highest version this build speaks.
pub fn welcome(epoch: u64, mode: StartMode, first_seq: u64, switch_ts: i64) -> Frame {
    Frame::Welcome(Welcome {
        version: PROTOCOL_VERSION_MAX,
        acd: 1,
        epoch,
        mode,
        first_seq,
        switch_ts,
        heartbeat_ms: TEST_HEARTBEAT_MS,
    })
}

/// SKILL_DEF, VDN_DEF, TKGRP_DEF of [`skill_def`], [`vdn_def`], [`tkgrp_def`]: seqs
/// `seq..seq + 3`, all at `ts`.
pub fn translations(seq: u64, ts: i64) -> Vec<Frame> {
    vec![
        event(seq, ts, EventKind::SkillDef(skill_def())),
        event(seq + 1, ts, EventKind::VdnDef(vdn_def())),
        event(seq + 2, ts, EventKind::TrunkGroupDef(tkgrp_def())),
    ]
}

/// A complete pump-up: PUMPUP_BEGIN, the three translations as snapshot records,
/// `extra` (SNAP_AGENT, SNAP_CALL ...), PUMPUP_END.
pub fn pumpup(as_of_seq: u64, ts: i64, extra: Vec<Frame>) -> Vec<Frame> {
    let mut v = vec![
        Frame::PumpupBegin { as_of_seq, ts },
        Frame::SnapSkill(skill_def()),
        Frame::SnapVdn(vdn_def()),
        Frame::SnapTrunkGroup(tkgrp_def()),
    ];
    v.extend(extra);
    v.push(Frame::PumpupEnd);
    v
}

/// `agent` logs in to `skills` (level 1 each) and becomes AVAIL: seqs `seq, seq + 1`,
/// both at `ts`.
pub fn agent_login(seq: u64, ts: i64, agent: u32, skills: &[u16]) -> Vec<Frame> {
    let skills = skills
        .iter()
        .map(|&skill| SkillLevel { skill, level: 1 })
        .collect();
    vec![
        event(seq, ts, EventKind::AgentLogin { agent, skills }),
        event(
            seq + 1,
            ts,
            EventKind::AgentState {
                agent,
                state: AgentState::Avail,
                skill: 0,
            },
        ),
    ]
}

/// One call answered by an AVAIL agent, with its timing.
#[derive(Debug, Clone)]
pub struct CallSpec {
    pub call: u32,
    pub vdn: u16,
    pub tkgrp: u16,
    pub skill: u16,
    pub agent: u32,
    /// CALL_QUEUED to CALL_RINGING.
    pub queue_ms: i64,
    /// CALL_RINGING to CALL_ANSWERED.
    pub ring_ms: i64,
    /// CALL_ANSWERED to CALL_RELEASED.
    pub talk_ms: i64,
    /// CALL_RELEASED (agent in ACW) to the agent's AVAIL.
    pub acw_ms: i64,
}

impl Default for CallSpec {
    /// Call 1 to VDN 1 on trunk group 1, skill 1, agent 100; 12 s in queue, 4 s ringing,
    /// 6 min talk, 1 min ACW (the worked example of `docs/data-items.md`, without hold).
    fn default() -> Self {
        CallSpec {
            call: 1,
            vdn: VDN,
            tkgrp: TKGRP,
            skill: SKILL,
            agent: 100,
            queue_ms: 12_000,
            ring_ms: 4_000,
            talk_ms: 360_000,
            acw_ms: 60_000,
        }
    }
}

/// The nine events of an answered call, seqs `seq..seq + 9`, offered at `ts`:
/// CALL_OFFERED, CALL_QUEUED; CALL_RINGING, AGENT_STATE RING; CALL_ANSWERED, AGENT_STATE
/// ACD; CALL_RELEASED by the caller, AGENT_STATE ACW; AGENT_STATE AVAIL.
pub fn answered_call(seq: u64, ts: i64, c: &CallSpec) -> Vec<Frame> {
    use EventKind as K;
    let rung = ts + c.queue_ms;
    let answered = rung + c.ring_ms;
    let released = answered + c.talk_ms;
    let avail = released + c.acw_ms;
    let state = |state, skill| K::AgentState {
        agent: c.agent,
        state,
        skill,
    };
    let kinds = [
        (
            ts,
            K::CallOffered {
                call: c.call,
                vdn: c.vdn,
                tkgrp: c.tkgrp,
            },
        ),
        (
            ts,
            K::CallQueued {
                call: c.call,
                skill: c.skill,
                priority: 0,
            },
        ),
        (
            rung,
            K::CallRinging {
                call: c.call,
                agent: c.agent,
                skill: c.skill,
            },
        ),
        (rung, state(AgentState::Ring, c.skill)),
        (
            answered,
            K::CallAnswered {
                call: c.call,
                agent: c.agent,
            },
        ),
        (answered, state(AgentState::Acd, c.skill)),
        (
            released,
            K::CallReleased {
                call: c.call,
                by: ReleasedBy::Caller,
            },
        ),
        (released, state(AgentState::Acw, c.skill)),
        (avail, state(AgentState::Avail, 0)),
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, (t, k))| event(seq + i as u64, t, k))
        .collect()
}

/// The highest event seq in `frames`, 0 if there is no event.
pub fn last_seq(frames: &[Frame]) -> u64 {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Event(e) => Some(e.seq),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// # Panics
/// Unless the events in `frames` have seqs `first, first + 1, ...` and non-decreasing ts:
/// a builder mistake would otherwise show up as a confusing collector failure.
pub fn assert_contiguous(frames: &[Frame], first: u64) {
    let mut want = first;
    let mut ts = i64::MIN;
    for f in frames {
        if let Frame::Event(e) = f {
            assert_eq!(e.seq, want, "event stream: seq gap or repeat at {e:?}");
            assert!(e.ts >= ts, "event stream: ts goes backwards at {e:?}");
            want += 1;
            ts = e.ts;
        }
    }
}

/// A switch HEARTBEAT: the time tick that closes intervals when no event flows.
pub fn tick(ts: i64, last_seq: u64) -> Frame {
    Frame::Heartbeat { ts, last_seq }
}

/// The events of `frames` with `lo <= seq <= hi`.
pub fn seqs(frames: &[Frame], lo: u64, hi: u64) -> Vec<Frame> {
    frames
        .iter()
        .filter(|f| matches!(f, Frame::Event(e) if e.seq >= lo && e.seq <= hi))
        .cloned()
        .collect()
}
