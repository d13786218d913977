//! The collector's metrics and live state (issue #14, docs/metrics.md): one
//! Prometheus registry per running collector, the counters and gauges in it, and the link
//! and peer states `/readyz` reads.
//!
//! One [`Metrics`] per running collector, made by [`crate::collect::run`] and handed to
//! the code that does each thing, which counts it here with one call: the ACD task
//! (frames, events, bad input, reconnects, link state), the database thread (intervals
//! closed), the peer task (syncs, restored intervals, conflicts). What the database
//! already holds (checkpoint age, the last complete interval, its size) is read from it
//! at each scrape ([`Metrics::encode`]). The hot path adds to plain integers the ACD task owns,
//! shared every 256 frames and at each checkpoint; every per-ACD counter is created once,
//! when the ACD task starts ([`AcdMetrics`]).
//! No Unix-only calls: the same endpoints work on Windows.

use crate::agg::ClosedInterval;
use crate::config::Config;
use crate::domain::{IntervalStatus, LinkState};
use crate::link::LinkError;
use crate::proto::codec::CodecError;
use crate::store::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The `Content-Type` of `/metrics`: the Prometheus text format, version 0.0.4.
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The frame types of `proto/acd-link.md` and their names in the `type` label: the
/// protocol's names in lower case.
pub const FRAME_TYPES: &[(u8, &str)] = {
    use crate::proto::*;
    &[
        (T_HELLO, "hello"),
        (T_WELCOME, "welcome"),
        (T_REJECT, "reject"),
        (T_HEARTBEAT, "heartbeat"),
        (T_ACK, "ack"),
        (T_PUMPUP_BEGIN, "pumpup_begin"),
        (T_PUMPUP_END, "pumpup_end"),
        (T_GAP, "gap"),
        (T_SKILL_DEF, "skill_def"),
        (T_VDN_DEF, "vdn_def"),
        (T_TKGRP_DEF, "tkgrp_def"),
        (T_CALL_OFFERED, "call_offered"),
        (T_CALL_QUEUED, "call_queued"),
        (T_CALL_RINGING, "call_ringing"),
        (T_CALL_ANSWERED, "call_answered"),
        (T_CALL_HELD, "call_held"),
        (T_CALL_RETRIEVED, "call_retrieved"),
        (T_CALL_CONFERENCED, "call_conferenced"),
        (T_CALL_TRANSFERRED, "call_transferred"),
        (T_CALL_ABANDONED, "call_abandoned"),
        (T_CALL_RELEASED, "call_released"),
        (T_CALL_BUSY, "call_busy"),
        (T_CALL_DISCONNECTED, "call_disconnected"),
        (T_AGENT_LOGIN, "agent_login"),
        (T_AGENT_LOGOUT, "agent_logout"),
        (T_AGENT_STATE, "agent_state"),
        (T_CLOCK_CHANGE, "clock_change"),
        (T_SNAP_SKILL, "snap_skill"),
        (T_SNAP_VDN, "snap_vdn"),
        (T_SNAP_TKGRP, "snap_tkgrp"),
        (T_SNAP_AGENT, "snap_agent"),
        (T_SNAP_CALL, "snap_call"),
    ]
};

/// The reasons of `cms_bad_input_total`.
pub const BAD_INPUT_REASONS: &[&str] =
    &["malformed_frame", "truncated_frame", "protocol_violation"];

/// Why a session's error is bad input from the switch, if it is.
pub fn bad_input_reason(e: &LinkError) -> Option<&'static str> {
    match e {
        LinkError::Codec {
            source: CodecError::Proto(_),
            ..
        } => Some("malformed_frame"),
        LinkError::Codec {
            source: CodecError::Io(io),
            ..
        } if io.kind() == std::io::ErrorKind::UnexpectedEof => Some("truncated_frame"),
        LinkError::Protocol { .. } => Some("protocol_violation"),
        _ => None,
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Acd {
    acd: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AcdState {
    acd: u16,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AcdType {
    acd: u16,
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AcdReason {
    acd: u16,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AcdStatus {
    acd: u16,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RestoreState {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Action {
    action: &'static str,
}

/// A running collector's registry and live state.
pub struct Metrics {
    registry: Registry,
    link_state: Family<AcdState, Gauge>,
    frames: Family<AcdType, Counter>,
    events: Family<AcdType, Counter>,
    bad_input: Family<AcdReason, Counter>,
    reconnects: Family<Acd, Counter>,
    checkpoint_age: Family<Acd, Gauge>,
    last_complete_age: Family<Acd, Gauge>,
    intervals_closed: Family<AcdStatus, Counter>,
    incomplete_reasons: Family<AcdReason, Counter>,
    peer_up: Gauge,
    peer_syncs: Family<Outcome, Counter>,
    peer_restored: Family<Action, Counter>,
    peer_conflicts: Gauge,
    database_size: Gauge,
    restores: Family<RestoreState, Gauge>,
    /// Per ACD: its link state and why it is not in data transfer (empty when none).
    links: Mutex<BTreeMap<u16, (LinkState, String)>>,
    /// The peer's reachability at its last session and why not; `None` before any.
    peer: Mutex<Option<(bool, String)>>,
}

impl Metrics {
    /// An empty registry for the collector `server_id`, every metric described.
    pub fn new(server_id: &str) -> Metrics {
        let mut r = Registry::with_prefix("cms");
        let m = Metrics {
            link_state: Family::default(),
            frames: Family::default(),
            events: Family::default(),
            bad_input: Family::default(),
            reconnects: Family::default(),
            checkpoint_age: Family::default(),
            last_complete_age: Family::default(),
            intervals_closed: Family::default(),
            incomplete_reasons: Family::default(),
            peer_up: Gauge::default(),
            peer_syncs: Family::default(),
            peer_restored: Family::default(),
            peer_conflicts: Gauge::default(),
            database_size: Gauge::default(),
            restores: Family::default(),
            links: Mutex::default(),
            peer: Mutex::default(),
            registry: Registry::default(),
        };
        r.register(
            "build",
            "The cms release and this collector's server_id",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION").to_string()),
                ("server_id", server_id.to_string()),
            ]),
        );
        let started = Gauge::<i64>::default();
        started.set(crate::store::intervals::now_secs());
        r.register_with_unit(
            "start_time",
            "When the collector started (Unix time): it changes at every restart",
            Unit::Seconds,
            started,
        );
        r.register(
            "link_state",
            "1 for the ACD link's current state, 0 for the others",
            m.link_state.clone(),
        );
        r.register(
            "frames_received",
            "Frames received from the switch, by protocol type",
            m.frames.clone(),
        );
        r.register(
            "events_received",
            "Sequenced events applied to the interval tables, by type",
            m.events.clone(),
        );
        r.register(
            "bad_input",
            "Sessions dropped for bad input from the switch, by reason",
            m.bad_input.clone(),
        );
        r.register(
            "link_reconnects",
            "Connections made to the switch again after a session ended or a connect failed",
            m.reconnects.clone(),
        );
        r.register_with_unit(
            "checkpoint_age",
            "Time since the ACD's last checkpoint was made durable",
            Unit::Seconds,
            m.checkpoint_age.clone(),
        );
        r.register_with_unit(
            "last_complete_interval_age",
            "Time since the end of the ACD's last complete interval",
            Unit::Seconds,
            m.last_complete_age.clone(),
        );
        r.register(
            "intervals_closed",
            "Intervals closed and stored by this collector, by status",
            m.intervals_closed.clone(),
        );
        r.register(
            "incomplete_interval_reasons",
            "Reasons of the incomplete intervals closed by this collector (an interval may have several)",
            m.incomplete_reasons.clone(),
        );
        r.register(
            "peer_up",
            "1 when the last peer sync session completed, 0 otherwise or before any",
            m.peer_up.clone(),
        );
        r.register(
            "peer_syncs",
            "Peer sync sessions, by outcome",
            m.peer_syncs.clone(),
        );
        r.register(
            "peer_restored_intervals",
            "Intervals merged from the peer by sync, by action (filled missing, replaced or improved incomplete)",
            m.peer_restored.clone(),
        );
        r.register(
            "peer_conflict_intervals",
            "Intervals complete on both servers with different contents, at the last sync",
            m.peer_conflicts.clone(),
        );
        r.register_with_unit(
            "database_size",
            "Size of the database and its write-ahead log",
            Unit::Bytes,
            m.database_size.clone(),
        );
        r.register(
            "restores",
            "Restores recorded in this database's restore log (cms restore and peer sync), by state",
            m.restores.clone(),
        );
        for o in ["ok", "failed"] {
            let _ = m.peer_syncs.get_or_create(&Outcome { outcome: o });
        }
        for a in ["filled", "replaced", "improved"] {
            let _ = m.peer_restored.get_or_create(&Action { action: a });
        }
        Metrics { registry: r, ..m }
    }

    /// The counters of one ACD's hot path, every label created now (so each shows 0
    /// before its first frame).
    pub fn acd(&self, acd: u16) -> AcdMetrics {
        let mut frames: Vec<Option<Counter>> = vec![None; 256];
        let mut events: Vec<Option<Counter>> = vec![None; 256];
        for &(code, name) in FRAME_TYPES {
            let l = AcdType { acd, r#type: name };
            frames[usize::from(code)] = Some(self.frames.get_or_create_owned(&l));
            if (crate::proto::T_SKILL_DEF..crate::proto::T_SNAP_SKILL).contains(&code) {
                events[usize::from(code)] = Some(self.events.get_or_create_owned(&l));
            }
        }
        for r in BAD_INPUT_REASONS {
            let _ = self.bad_input.get_or_create(&AcdReason {
                acd,
                reason: r.to_string(),
            });
        }
        for s in IntervalStatus::ALL {
            let _ = self.intervals_closed.get_or_create(&AcdStatus {
                acd,
                status: s.as_str(),
            });
        }
        self.set_link(acd, LinkState::NeverConnected, "");
        AcdMetrics {
            acd,
            frames,
            events,
            pending_frames: Box::new([0; 256]),
            pending_events: Box::new([0; 256]),
            codes: FRAME_TYPES.iter().map(|&(code, _)| code).collect(),
            reconnects: self.reconnects.get_or_create_owned(&Acd { acd }),
        }
    }

    /// Records the link state of `acd` and its detail (the last error, if any).
    pub fn set_link(&self, acd: u16, state: LinkState, detail: &str) {
        let mut l = self.links.lock().expect("links lock");
        if l.get(&acd).is_some_and(|(s, d)| *s == state && d == detail) {
            return;
        }
        l.insert(acd, (state, detail.to_string()));
        for s in LinkState::ALL {
            let g = self.link_state.get_or_create(&AcdState {
                acd,
                state: s.as_str(),
            });
            g.set(i64::from(*s == state));
        }
    }

    /// The link state of `acd` and its detail; never connected when nothing is known.
    pub fn link(&self, acd: u16) -> (LinkState, String) {
        let l = self.links.lock().expect("links lock");
        l.get(&acd)
            .cloned()
            .unwrap_or((LinkState::NeverConnected, String::new()))
    }

    /// A session of `acd` ended with `e`: counted when it is bad input.
    pub fn session_failed(&self, acd: u16, e: &LinkError) {
        if let Some(reason) = bad_input_reason(e) {
            self.bad_input
                .get_or_create(&AcdReason {
                    acd,
                    reason: reason.to_string(),
                })
                .inc();
        }
    }

    /// An interval of `acd` closed and stored.
    pub fn interval_stored(&self, acd: u16, ci: &ClosedInterval) {
        let status = if ci.complete() {
            IntervalStatus::Complete
        } else {
            IntervalStatus::Incomplete
        };
        self.intervals_closed
            .get_or_create(&AcdStatus {
                acd,
                status: status.as_str(),
            })
            .inc();
        for r in &ci.reasons {
            self.incomplete_reasons
                .get_or_create(&AcdReason {
                    acd,
                    reason: r.clone(),
                })
                .inc();
        }
    }

    /// Records the end of a peer session: reachable or not, and why not.
    pub fn set_peer(&self, connected: bool, reason: &str) {
        self.peer_up.set(i64::from(connected));
        *self.peer.lock().expect("peer lock") = Some((connected, reason.to_string()));
    }

    /// The peer's reachability at its last session; `None` before any.
    pub fn peer(&self) -> Option<(bool, String)> {
        self.peer.lock().expect("peer lock").clone()
    }

    /// A peer sync session ended: failed (`None`), or what it merged here and the
    /// conflicts it found.
    pub fn peer_sync(&self, outcome: Option<&crate::peer::session::Outcome>) {
        let Some(o) = outcome else {
            self.peer_syncs
                .get_or_create(&Outcome { outcome: "failed" })
                .inc();
            return;
        };
        self.peer_syncs
            .get_or_create(&Outcome { outcome: "ok" })
            .inc();
        for r in &o.restores {
            for (action, n) in [
                ("filled", r.filled),
                ("replaced", r.replaced),
                ("improved", r.improved),
            ] {
                self.peer_restored
                    .get_or_create(&Action { action })
                    .inc_by(n);
            }
        }
        if o.asked {
            let n = i64::try_from(o.conflicts.len()).unwrap_or(i64::MAX);
            self.peer_conflicts.set(n);
        }
    }

    /// The registry in the Prometheus text format, after reading from the database what
    /// it holds (checkpoint age, last complete interval, size). A database that cannot
    /// be read leaves those gauges at their last values and says why in the log.
    pub fn encode(&self, cfg: &Config) -> String {
        if let Err(e) = self.read_store(cfg) {
            tracing::warn!("{}: metrics: {e:#}", cfg.db_path().display());
        }
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    fn read_store(&self, cfg: &Config) -> anyhow::Result<()> {
        let store = Store::open_read_only(&cfg.db_path())?;
        let grid = cfg.grid();
        let acds: Vec<u16> = cfg.acds.iter().map(|a| a.acd).collect();
        let st = crate::report::status(&store, &grid, &acds, &cfg.server_id)?;
        self.database_size
            .set(i64::try_from(st.database_bytes).unwrap_or(i64::MAX));
        let finished: i64 = store.conn.query_row(
            "SELECT COUNT(*) FROM restore_log WHERE finished_at > 0",
            [],
            |r| r.get(0),
        )?;
        let unfinished = i64::try_from(st.unfinished_restores.len()).unwrap_or(i64::MAX);
        for (state, n) in [("finished", finished), ("unfinished", unfinished)] {
            self.restores.get_or_create(&RestoreState { state }).set(n);
        }
        let now = crate::store::intervals::now_secs();
        for a in &st.acds {
            if let Some(age) = a.checkpoint_age_seconds {
                self.checkpoint_age
                    .get_or_create(&Acd { acd: a.acd })
                    .set(age);
            }
            if let Some(last) = crate::report::last_complete(&store, a.acd)? {
                let age = now - grid.next(last);
                self.last_complete_age
                    .get_or_create(&Acd { acd: a.acd })
                    .set(age);
            }
        }
        Ok(())
    }
}

/// One ACD's counters of the hot path. The ACD task counts into plain integers it owns
/// (an array index and an add, no atomic, no branch) and adds them to the shared
/// counters at [`AcdMetrics::flush`], which it calls every 256 frames, at each checkpoint
/// and when a session ends: a scrape sees the counts at most one checkpoint period old.
pub struct AcdMetrics {
    pub acd: u16,
    /// By frame type code; `None` for a code the protocol does not define.
    frames: Vec<Option<Counter>>,
    events: Vec<Option<Counter>>,
    /// Counted since the last flush, by type code.
    pending_frames: Box<[u64; 256]>,
    pending_events: Box<[u64; 256]>,
    /// The type codes that have a counter (the ones `flush` visits).
    codes: Vec<u8>,
    reconnects: Counter,
}

impl AcdMetrics {
    /// A frame of type `code` received (shared at the next [`AcdMetrics::flush`]).
    #[inline]
    pub fn frame(&mut self, code: u8) {
        self.pending_frames[usize::from(code)] += 1;
    }

    /// An event of type `code` applied (shared at the next [`AcdMetrics::flush`]).
    #[inline]
    pub fn event(&mut self, code: u8) {
        self.pending_events[usize::from(code)] += 1;
    }

    /// Adds what was counted since the last flush to the shared counters; a code the
    /// protocol does not define (no counter) is dropped.
    pub fn flush(&mut self) {
        for &code in &self.codes {
            let i = usize::from(code);
            for (pending, counters) in [
                (&mut self.pending_frames[i], &self.frames),
                (&mut self.pending_events[i], &self.events),
            ] {
                let n = std::mem::take(pending);
                if n > 0 {
                    if let Some(c) = &counters[i] {
                        c.inc_by(n);
                    }
                }
            }
        }
        self.pending_frames.fill(0);
        self.pending_events.fill(0);
    }

    /// The frames a handshake read: WELCOME, and for a pump-up its records and the GAP
    /// notice (the first live frame it read is counted when it is handled).
    pub fn handshake(&mut self, start: &crate::link::Start) {
        use crate::proto::*;
        self.frame(T_WELCOME);
        if let crate::link::Start::Pumpup { pumpup: p, gap, .. } = start {
            let mut n = |code: u8, k: usize| self.pending_frames[usize::from(code)] += k as u64;
            n(T_PUMPUP_BEGIN, 1);
            n(T_SNAP_SKILL, p.skills.len());
            n(T_SNAP_VDN, p.vdns.len());
            n(T_SNAP_TKGRP, p.tkgrps.len());
            n(T_SNAP_AGENT, p.agents.len());
            n(T_SNAP_CALL, p.calls.len());
            n(T_PUMPUP_END, 1);
            n(T_GAP, usize::from(gap.is_some()));
        }
        self.flush();
    }

    /// A connection made again after a session ended or a connect failed.
    pub fn reconnected(&self) {
        self.reconnects.inc();
    }
}

#[cfg(test)]
mod tests;
