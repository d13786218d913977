//! The socket-free steps of a link session: what the handshake's answer starts the
//! aggregation from ([`begin`]), the resume point of the next HELLO ([`resume_from`]),
//! and what one frame received during data transfer does ([`take`]: the session rules
//! checked, then the frame applied, or handed back to be caught up in steps when it is
//! far ahead).
//!
//! `collect`'s session calls these between its socket reads, timers and commits; the
//! fuzz `session` target calls the same functions over its fake switch, so the rules it
//! fuzzes are the collector's own. No I/O, no logging, no clock: the caller passes the
//! latest switch time it accepts ([`link::time_limit_ms`]).

use crate::agg::{reason, Aggregator, ClosedInterval};
use crate::link::{self, LinkError, Start};
use crate::proto::{EventKind, Frame, Welcome};
use std::net::SocketAddr;

/// Closed intervals held before a commit is forced (a replay or catch-up closes many
/// per second; in real time one closes every 15 minutes), and the intervals one
/// catch-up step closes.
pub const MAX_PENDING_INTERVALS: usize = 8;

/// What a handshake's answer started: the WELCOME, the first data-transfer frame the
/// handshake already read, and the pump-up if there was one.
#[derive(Debug)]
pub struct Begun {
    pub welcome: Welcome,
    pub first: Option<Frame>,
    pub pumpup: Option<PumpedUp>,
}

/// A pump-up replaced the stream: why the intervals in between are incomplete, and what
/// the switch announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PumpedUp {
    /// [`reason::COLLECTION_START`], [`reason::EPOCH_CHANGE`] or [`reason::REPLAY_GAP`].
    pub reason: &'static str,
    pub as_of_seq: u64,
    /// The lost range the GAP notice announced.
    pub gap: Option<(u64, u64)>,
}

/// What [`take`] did with a frame.
#[derive(Debug)]
pub enum Taken {
    /// Checked and applied. `admin`: it defined a translation (skill, VDN or trunk
    /// group name), which the next commit stores.
    Applied { admin: bool },
    /// Checked, but applying it would close [`MAX_PENDING_INTERVALS`] or more intervals:
    /// step towards it with [`Aggregator::catch_up_step`]`(ts, clock_old_ts, ..)`,
    /// committing between steps, then [`take`] the frame again.
    FarAhead {
        frame: Frame,
        /// The switch time the frame moves to.
        ts: i64,
        /// For a CLOCK_CHANGE, the old clock's time before it.
        clock_old_ts: Option<i64>,
    },
}

/// The sequence number due after the last one applied. Checked: after a pump-up at
/// `as_of_seq` = 2^64 - 2 the epoch's last number is 2^64 - 1, and a wrap to 0 would
/// read as "no resume point" (proto/acd-link.md, HELLO `resume_from`).
///
/// # Errors
/// The epoch has used its last sequence number.
pub fn next_seq(agg: &Aggregator, peer: SocketAddr) -> Result<u64, LinkError> {
    let last = agg.last_seq();
    last.checked_add(1).ok_or_else(|| LinkError::Protocol {
        peer,
        what: format!(
            "epoch {} has used its last sequence number ({last}): the switch must start a new epoch",
            agg.epoch()
        ),
    })
}

/// HELLO's `resume_from`: 0 (no resume point) before the first epoch, else
/// [`next_seq`].
///
/// # Errors
/// As [`next_seq`].
pub fn resume_from(agg: &Aggregator, peer: SocketAddr) -> Result<u64, LinkError> {
    if agg.epoch() == 0 {
        Ok(0)
    } else {
        next_seq(agg, peer)
    }
}

/// Starts data transfer from the handshake's answer: a replay of our epoch (the first
/// epoch is taken from the WELCOME), or a pump-up, whose intervals from our last event
/// to now close incomplete into `closed` with the reason.
pub fn begin(agg: &mut Aggregator, start: Start, closed: &mut Vec<ClosedInterval>) -> Begun {
    let epoch = agg.epoch();
    match start {
        Start::Replay(welcome) => {
            if epoch == 0 {
                agg.start_epoch(welcome.epoch);
            }
            Begun {
                welcome,
                first: None,
                pumpup: None,
            }
        }
        Start::Pumpup {
            welcome,
            pumpup,
            gap,
            first,
        } => {
            let why = if !agg.started() {
                reason::COLLECTION_START
            } else if welcome.epoch != epoch {
                reason::EPOCH_CHANGE
            } else {
                reason::REPLAY_GAP
            };
            let as_of_seq = pumpup.as_of_seq;
            agg.pumpup(*pumpup, why, closed);
            Begun {
                welcome,
                first,
                pumpup: Some(PumpedUp {
                    reason: why,
                    as_of_seq,
                    gap,
                }),
            }
        }
    }
}

/// One frame received during data transfer: checked against the session rules and
/// `limit` (the latest switch time accepted), then applied into `closed`, or handed
/// back when it is far ahead ([`Taken::FarAhead`]).
///
/// # Errors
/// A frame that breaks the session rules (sequence, time bounds, a frame type not valid
/// during data transfer), naming the peer and the rule.
pub fn take(
    agg: &mut Aggregator,
    frame: Frame,
    peer: SocketAddr,
    limit: i64,
    closed: &mut Vec<ClosedInterval>,
) -> Result<Taken, LinkError> {
    let bad = |what: String| LinkError::Protocol { peer, what };
    match frame {
        Frame::Event(ev) => {
            link::check_event(&ev, next_seq(agg, peer)?, agg.last_raw_ts(), limit)
                .map_err(|what| bad(what.to_string()))?;
            let old = clock_old_ts(&ev);
            if agg.needs_catch_up(ev.ts, old, MAX_PENDING_INTERVALS) {
                return Ok(Taken::FarAhead {
                    ts: ev.ts,
                    clock_old_ts: old,
                    frame: Frame::Event(ev),
                });
            }
            let admin = matches!(
                ev.kind,
                EventKind::SkillDef(_) | EventKind::VdnDef(_) | EventKind::TrunkGroupDef(_)
            );
            agg.apply(&ev, closed);
            Ok(Taken::Applied { admin })
        }
        Frame::Heartbeat { ts, last_seq } => {
            link::check_time("HEARTBEAT", ts, limit).map_err(|what| bad(what.to_string()))?;
            if agg.needs_catch_up(ts, None, MAX_PENDING_INTERVALS) {
                return Ok(Taken::FarAhead {
                    frame: Frame::Heartbeat { ts, last_seq },
                    ts,
                    clock_old_ts: None,
                });
            }
            agg.tick(ts, closed);
            Ok(Taken::Applied { admin: false })
        }
        other => Err(bad(format!(
            "frame type 0x{:02x} is not valid during data transfer",
            other.type_code()
        ))),
    }
}

/// A CLOCK_CHANGE's `old_ts`: the old clock reached it before the change.
fn clock_old_ts(ev: &crate::proto::Event) -> Option<i64> {
    match ev.kind {
        EventKind::ClockChange { old_ts } => Some(old_ts),
        _ => None,
    }
}
