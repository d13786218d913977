//! The collector side of an ACD link session (proto/acd-link.md, "Session").
//!
//! Owns the socket work: connecting to the primary or secondary switch address with
//! bounded exponential backoff and jitter, the HELLO/WELCOME handshake, receiving a
//! pump-up, and checking each frame against the session rules (sequence contiguity,
//! monotonic time, times bounded by this server's clock, frame types valid in the state).
//! It hands frames to the caller and knows nothing about intervals or the database.

use crate::agg::Pumpup;
use crate::proto::codec::{CodecError, LinkCodec};
use crate::proto::{
    Event, EventKind, Frame, Hello, StartMode, Welcome, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN,
};
use futures::{SinkExt, StreamExt};
use rand::Rng;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

pub mod repeats;

/// How long a TCP connect may take before the next address is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the switch may take to answer HELLO.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most snapshot records accepted in one pump-up (bounds memory against a hostile peer).
pub const MAX_PUMPUP_RECORDS: usize = 1_000_000;
/// A time on the wire more than this far ahead of this server's own clock is refused as
/// bad input (proto/acd-link.md, "Time bounds"). There is no limit on the step between
/// two times: a site may be quiet for days.
pub const MAX_CLOCK_AHEAD_MS: i64 = 24 * 3600 * 1000;
/// A session that has run this long without an error counts as healthy: the backoff
/// starts again from [`Backoff::INITIAL_MS`] when it ends (proto/acd-link.md, "Roles and
/// connection").
pub const HEALTHY_SESSION: Duration = Duration::from_secs(30);

pub type Conn = Framed<TcpStream, LinkCodec>;

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{peer}: {source}")]
    Codec {
        peer: SocketAddr,
        #[source]
        source: CodecError,
    },
    #[error("{peer}: connection closed by the switch")]
    Closed { peer: SocketAddr },
    #[error("{peer}: no frame for {0:?} (dead or half-open link)", .waited)]
    Silent { peer: SocketAddr, waited: Duration },
    #[error("{peer}: protocol violation: {what}")]
    Protocol { peer: SocketAddr, what: String },
    #[error("{peer}: switch rejected the session (code {code}): {text}")]
    Rejected {
        peer: SocketAddr,
        code: u16,
        text: String,
    },
}

impl LinkError {
    /// True when the peer sent something invalid (as opposed to going away).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            LinkError::Protocol { .. }
                | LinkError::Codec {
                    source: CodecError::Proto(_),
                    ..
                }
        )
    }
}

/// Bounded exponential backoff with ±20 % jitter, alternating addresses.
pub struct Backoff {
    next_ms: u64,
    max_ms: u64,
    attempt: u64,
}

impl Backoff {
    pub const INITIAL_MS: u64 = 200;

    pub fn new(max_ms: u64) -> Backoff {
        Backoff {
            next_ms: Self::INITIAL_MS,
            max_ms,
            attempt: 0,
        }
    }
    /// The address to try now: primary, then secondary, in turn.
    pub fn address(&self, primary: SocketAddr, secondary: Option<SocketAddr>) -> SocketAddr {
        match secondary {
            Some(s) if !self.attempt.is_multiple_of(2) => s,
            _ => primary,
        }
    }
    /// The delay before the next attempt (grows after each full round of addresses).
    pub fn fail(&mut self, has_secondary: bool) -> Duration {
        self.attempt += 1;
        let base = self.next_ms;
        if !has_secondary || self.attempt.is_multiple_of(2) {
            self.next_ms = (self.next_ms * 2).min(self.max_ms);
        }
        let j = rand::thread_rng().gen_range(0.8..1.2);
        Duration::from_millis(((base as f64) * j) as u64)
    }
    pub fn reset(&mut self) {
        self.next_ms = Self::INITIAL_MS;
        self.attempt = 0;
    }
}

/// Connects with a bounded wait.
///
/// # Errors
/// The connect failed or took longer than [`CONNECT_TIMEOUT`].
pub async fn connect(addr: SocketAddr) -> std::io::Result<Conn> {
    let s = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    s.set_nodelay(true)?;
    Ok(Framed::new(s, LinkCodec))
}

/// Reads the next frame within `wait`.
pub async fn next_frame(
    conn: &mut Conn,
    peer: SocketAddr,
    wait: Duration,
) -> Result<Frame, LinkError> {
    match tokio::time::timeout(wait, conn.next()).await {
        Err(_) => Err(LinkError::Silent { peer, waited: wait }),
        Ok(None) => Err(LinkError::Closed { peer }),
        Ok(Some(Err(e))) => Err(LinkError::Codec { peer, source: e }),
        Ok(Some(Ok(f))) => Ok(f),
    }
}

pub async fn send(conn: &mut Conn, peer: SocketAddr, f: Frame) -> Result<(), LinkError> {
    conn.send(f)
        .await
        .map_err(|e| LinkError::Codec { peer, source: e })
}

fn violation(peer: SocketAddr, what: impl std::fmt::Display) -> LinkError {
    LinkError::Protocol {
        peer,
        what: what.to_string(),
    }
}

/// A time or sequence number that breaks a session rule ([`check_time`],
/// [`check_event`]); its text is the `what` of [`LinkError::Protocol`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("{what} time {ts} ms is before 1970")]
    BeforeEpoch { what: String, ts: i64 },
    #[error("{what} time {at} is {ahead_s} s ahead of this server's clock (more than {hours} h)")]
    Ahead {
        what: String,
        at: String,
        ahead_s: i64,
        hours: i64,
    },
    #[error("event seq {got} where {expected} was expected")]
    Seq { got: u64, expected: u64 },
    #[error("event seq {seq} time {ts} ms goes back before {last_ts} ms without a clock change")]
    Back { seq: u64, ts: i64, last_ts: i64 },
}

/// What the handshake established.
pub enum Start {
    /// Events continue from `welcome.first_seq`.
    Replay(Welcome),
    /// A pump-up replaced the missing stream; `gap` is the announced lost range, and
    /// `first` a live frame already read while looking for the GAP notice.
    Pumpup {
        welcome: Welcome,
        pumpup: Box<Pumpup>,
        gap: Option<(u64, u64)>,
        first: Option<Frame>,
    },
}

/// Sends HELLO and receives WELCOME (and the pump-up, if one follows).
///
/// # Errors
/// Rejection, a timeout, or a frame that breaks the session rules.
pub async fn handshake(
    conn: &mut Conn,
    peer: SocketAddr,
    acd: u16,
    server_id: &str,
    epoch: u64,
    resume_from: u64,
) -> Result<Start, LinkError> {
    let hello = Hello {
        version_min: PROTOCOL_VERSION_MIN,
        version_max: PROTOCOL_VERSION_MAX,
        acd,
        server_id: server_id.to_string(),
        epoch,
        resume_from,
    };
    send(conn, peer, Frame::Hello(hello)).await?;
    let (welcome, limit) = receive_welcome(conn, peer, acd).await?;
    match welcome.mode {
        StartMode::Replay => {
            check_replay(peer, &welcome, epoch, resume_from)?;
            Ok(Start::Replay(welcome))
        }
        StartMode::Pumpup => receive_pumpup(conn, peer, welcome, epoch, resume_from, limit).await,
    }
}

/// The switch's answer to HELLO: WELCOME of a version we offered, for our ACD, with a
/// switch time within bounds; and the time limit ([`time_limit_ms`]) the rest of the
/// opening is checked against.
async fn receive_welcome(
    conn: &mut Conn,
    peer: SocketAddr,
    acd: u16,
) -> Result<(Welcome, i64), LinkError> {
    let welcome = match next_frame(conn, peer, HANDSHAKE_TIMEOUT).await? {
        Frame::Welcome(w) => w,
        Frame::Reject { code, text } => return Err(LinkError::Rejected { peer, code, text }),
        other => {
            return Err(violation(
                peer,
                format!(
                    "expected WELCOME, got frame type 0x{:02x}",
                    other.type_code()
                ),
            ))
        }
    };
    if !(PROTOCOL_VERSION_MIN..=PROTOCOL_VERSION_MAX).contains(&welcome.version) {
        return Err(violation(
            peer,
            format!("WELCOME version {} not offered", welcome.version),
        ));
    }
    if welcome.acd != acd {
        return Err(violation(
            peer,
            format!("WELCOME for ACD {}, we asked for {acd}", welcome.acd),
        ));
    }
    let limit = time_limit_ms();
    check_time("WELCOME switch_ts", welcome.switch_ts, limit).map_err(|w| violation(peer, w))?;
    Ok((welcome, limit))
}

/// A replay must continue exactly where we stand: our epoch from `resume_from`, or a
/// fresh collector's first event.
fn check_replay(
    peer: SocketAddr,
    welcome: &Welcome,
    epoch: u64,
    resume_from: u64,
) -> Result<(), LinkError> {
    let ok = if epoch == welcome.epoch && resume_from > 0 {
        welcome.first_seq == resume_from
    } else {
        epoch == 0 && resume_from == 0 && welcome.first_seq == 1
    };
    if !ok {
        return Err(violation(
            peer,
            format!(
                "replay from epoch {} seq {} does not continue our epoch {epoch} seq {resume_from}",
                welcome.epoch, welcome.first_seq
            ),
        ));
    }
    Ok(())
}

/// PUMPUP_BEGIN, the snapshot records up to PUMPUP_END, and the GAP notice that is due
/// after them (or the first live frame, when none is).
async fn receive_pumpup(
    conn: &mut Conn,
    peer: SocketAddr,
    welcome: Welcome,
    epoch: u64,
    resume_from: u64,
    limit: i64,
) -> Result<Start, LinkError> {
    // A pump-up of our own epoch must not start before what we already hold: the live
    // events after it would be booked a second time (proto/acd-link.md, "Collector-side
    // checks").
    if epoch == welcome.epoch && resume_from > 0 && welcome.first_seq < resume_from {
        return Err(violation(
            peer,
            format!(
                "pump-up from seq {} of our epoch {epoch} is before our resume point {resume_from}",
                welcome.first_seq
            ),
        ));
    }
    let wait = silence_limit(&welcome);
    let (as_of_seq, ts) = match next_frame(conn, peer, wait).await? {
        Frame::PumpupBegin { as_of_seq, ts } => (as_of_seq, ts),
        other => {
            return Err(violation(
                peer,
                format!("expected PUMPUP_BEGIN, got 0x{:02x}", other.type_code()),
            ))
        }
    };
    check_time("PUMPUP_BEGIN", ts, limit).map_err(|w| violation(peer, w))?;
    // checked: as_of_seq = 2^64 - 1 must not wrap to a first_seq of 0 (issue #17).
    if as_of_seq.checked_add(1) != Some(welcome.first_seq) {
        return Err(violation(
            peer,
            "PUMPUP_BEGIN as_of_seq does not precede first_seq",
        ));
    }
    let mut p = Pumpup {
        epoch: welcome.epoch,
        as_of_seq,
        ts,
        ..Default::default()
    };
    receive_snapshots(conn, peer, wait, limit, &mut p).await?;
    let (gap, first) = match next_frame(conn, peer, wait).await? {
        Frame::Gap { from, to } => (Some((from, to)), None),
        f => (None, Some(f)),
    };
    check_gap(peer, gap, epoch, resume_from, welcome.epoch, as_of_seq)?;
    Ok(Start::Pumpup {
        welcome,
        pumpup: Box::new(p),
        gap,
        first,
    })
}

/// The snapshot records of a pump-up into `p`, up to PUMPUP_END, at most
/// [`MAX_PUMPUP_RECORDS`].
async fn receive_snapshots(
    conn: &mut Conn,
    peer: SocketAddr,
    wait: Duration,
    limit: i64,
    p: &mut Pumpup,
) -> Result<(), LinkError> {
    let mut n = 0usize;
    loop {
        n += 1;
        if n > MAX_PUMPUP_RECORDS {
            return Err(violation(peer, "pump-up exceeds the record limit"));
        }
        match next_frame(conn, peer, wait).await? {
            Frame::SnapSkill(s) => p.skills.push(s),
            Frame::SnapVdn(v) => p.vdns.push(v),
            Frame::SnapTrunkGroup(t) => p.tkgrps.push(t),
            Frame::SnapAgent(a) => p.agents.push(a),
            Frame::SnapCall(c) => {
                check_time("SNAP_CALL offered_ts", c.offered_ts, limit)
                    .map_err(|w| violation(peer, w))?;
                p.calls.push(c)
            }
            Frame::Heartbeat { .. } => {}
            Frame::PumpupEnd => return Ok(()),
            other => {
                return Err(violation(
                    peer,
                    format!("frame type 0x{:02x} inside a pump-up", other.type_code()),
                ))
            }
        }
    }
}

/// The GAP notice after a pump-up must be exactly the one [`gap_due`].
fn check_gap(
    peer: SocketAddr,
    gap: Option<(u64, u64)>,
    epoch: u64,
    resume_from: u64,
    welcome_epoch: u64,
    as_of_seq: u64,
) -> Result<(), LinkError> {
    let due = gap_due(epoch, resume_from, welcome_epoch, as_of_seq);
    if gap == due {
        return Ok(());
    }
    let show = |g: Option<(u64, u64)>| match g {
        Some((f, t)) => format!("GAP {f}..={t}"),
        None => "no GAP".to_string(),
    };
    Err(violation(
        peer,
        format!(
            "{} after the pump-up where {} was due (our epoch {epoch} resume_from {resume_from}, as_of_seq {as_of_seq})",
            show(gap),
            show(due)
        ),
    ))
}

/// The GAP the switch owes right after PUMPUP_END (proto/acd-link.md, "Opening"): none
/// for a fresh collector; else from our `resume_from` (same epoch) or 1 (a new epoch) to
/// `as_of_seq`, when that range is not empty.
pub fn gap_due(
    epoch: u64,
    resume_from: u64,
    welcome_epoch: u64,
    as_of_seq: u64,
) -> Option<(u64, u64)> {
    if resume_from == 0 {
        return None;
    }
    let from = if epoch == welcome_epoch {
        resume_from
    } else {
        1
    };
    (from <= as_of_seq).then_some((from, as_of_seq))
}

/// The switch's heartbeat period as the collector uses it: WELCOME's `heartbeat_ms`
/// clamped to 100..=60 000 ms (proto/acd-link.md, "Heartbeats").
pub fn heartbeat_ms(w: &Welcome) -> u64 {
    w.heartbeat_ms.clamp(100, 60_000) as u64
}

/// No frame for this long means the link is dead (3 × the switch's heartbeat).
pub fn silence_limit(w: &Welcome) -> Duration {
    Duration::from_millis(3 * heartbeat_ms(w))
}

/// The latest switch time this server accepts now: its own clock plus
/// [`MAX_CLOCK_AHEAD_MS`]. Taken once per batch of frames, not per frame: a day of
/// tolerance makes a few milliseconds of staleness irrelevant.
pub fn time_limit_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    now.saturating_add(MAX_CLOCK_AHEAD_MS)
}

/// Checks one time that arrived on the wire (`what` names the field for the log):
/// it must be in `0..=limit_ms` ([`time_limit_ms`]).
///
/// # Errors
/// The violation, described for the log.
pub fn check_time(what: &str, ts: i64, limit_ms: i64) -> Result<(), RuleError> {
    if ts < 0 {
        return Err(RuleError::BeforeEpoch {
            what: what.to_string(),
            ts,
        });
    }
    if ts > limit_ms {
        return Err(RuleError::Ahead {
            what: what.to_string(),
            at: fmt_ts(ts),
            ahead_s: (ts - (limit_ms - MAX_CLOCK_AHEAD_MS)) / 1000,
            hours: MAX_CLOCK_AHEAD_MS / 3_600_000,
        });
    }
    Ok(())
}

/// A wire time for a message: RFC 3339 UTC when chrono can show it, else the raw ms.
fn fmt_ts(ts: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ts) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => format!("{ts} ms"),
    }
}

/// Checks an event against the session rules: the next sequence number, time that does
/// not go back (except across a clock change), and no time beyond `limit_ms`
/// ([`time_limit_ms`]). The step between two events is not limited: a quiet site may
/// send nothing for days.
///
/// # Errors
/// The violation, described for the log.
pub fn check_event(
    ev: &Event,
    expected_seq: u64,
    last_ts: i64,
    limit_ms: i64,
) -> Result<(), RuleError> {
    if ev.seq != expected_seq {
        return Err(RuleError::Seq {
            got: ev.seq,
            expected: expected_seq,
        });
    }
    // One comparison on the hot path; the message is built only on failure.
    if !(0..=limit_ms).contains(&ev.ts) {
        return check_time(&format!("event seq {}", ev.seq), ev.ts, limit_ms);
    }
    match ev.kind {
        EventKind::ClockChange { old_ts } => {
            check_time(&format!("event seq {} old_ts", ev.seq), old_ts, limit_ms)?
        }
        _ if last_ts != i64::MIN && ev.ts < last_ts => {
            return Err(RuleError::Back {
                seq: ev.seq,
                ts: ev.ts,
                last_ts,
            });
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_alternates() {
        let p: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let s: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let mut b = Backoff::new(1000);
        assert_eq!(b.address(p, Some(s)), p);
        let d1 = b.fail(true);
        assert_eq!(b.address(p, Some(s)), s);
        assert!((160..=240).contains(&d1.as_millis()), "{d1:?}");
        let mut last = d1;
        for _ in 0..20 {
            last = b.fail(true);
        }
        assert!(
            last.as_millis() <= 1200 && last.as_millis() >= 800,
            "{last:?}"
        );
        b.reset();
        assert_eq!(b.address(p, Some(s)), p);
    }

    #[test]
    fn event_checks() {
        let ev = |seq, ts| Event {
            seq,
            ts,
            kind: EventKind::CallAbandoned { call: 1 },
        };
        let lim = 1_000_000_000;
        assert!(check_event(&ev(5, 1000), 5, 1000, lim).is_ok());
        assert!(check_event(&ev(6, 1000), 5, 1000, lim)
            .unwrap_err()
            .to_string()
            .contains("seq 6"));
        assert!(check_event(&ev(5, 999), 5, 1000, lim)
            .unwrap_err()
            .to_string()
            .contains("goes back"));
        // Any step is fine up to the limit, none beyond it.
        assert!(check_event(&ev(5, lim), 5, 1000, lim).is_ok());
        assert!(check_event(&ev(5, lim + 1), 5, 1000, lim)
            .unwrap_err()
            .to_string()
            .contains("ahead of this server's clock"));
        assert!(check_event(&ev(5, -1), 5, i64::MIN, lim)
            .unwrap_err()
            .to_string()
            .contains("before 1970"));
        let cc = |ts, old_ts| Event {
            seq: 5,
            ts,
            kind: EventKind::ClockChange { old_ts },
        };
        assert!(check_event(&cc(0, 1000), 5, 1000, lim).is_ok());
        assert!(check_event(&cc(lim + 1, 1000), 5, 1000, lim).is_err());
        assert!(check_event(&cc(1000, lim + 1), 5, 1000, lim)
            .unwrap_err()
            .to_string()
            .contains("old_ts"));
    }

    #[test]
    fn time_limit_is_our_clock_plus_a_day() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let lim = time_limit_ms();
        assert!(
            (lim - now - MAX_CLOCK_AHEAD_MS).abs() < 60_000,
            "{lim} {now}"
        );
    }
}
