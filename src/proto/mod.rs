//! The ACD link wire protocol: message types and their byte encoding.
//!
//! This module owns the bytes on the wire and nothing else: it never touches a socket,
//! a clock or a database. `proto/acd-link.md` is the specification; every hex example
//! in it is decoded by a test (`tests/spec_examples.rs`), so the two cannot drift.
//!
//! Decoding works on `&[u8]` and answers "incomplete" (wait for more bytes) or
//! "invalid" (close the session) — see [`decode_frame`]. [`codec::LinkCodec`] is the
//! thin tokio-util wrapper used by both the collector and the simulator.

pub mod codec;

use bytes::{Buf, BufMut, BytesMut};
use thiserror::Error;

/// Largest frame body (type byte + payload) either side accepts. Anything longer is
/// garbage or an attack: the session is closed before a byte is allocated for it.
pub const MAX_FRAME_LEN: usize = 4096;
/// Longest string field (names, server id, reject text), in bytes of UTF-8.
pub const MAX_STR_LEN: usize = 64;
/// Most skills one agent may be logged in to (classic: 20 skills per agent).
pub const MAX_AGENT_SKILLS: usize = 20;
/// Most skills one call may be queued to at once (classic: 3 plus the routed skill).
pub const MAX_CALL_SKILLS: usize = 4;
/// Service-level bands: PERIOD1..PERIOD9 bound bands 1..9, band 10 is beyond PERIOD9.
pub const N_PERIODS: usize = 9;
/// Magic at the start of HELLO, so a stray client is rejected on its first frame.
pub const HELLO_MAGIC: [u8; 4] = *b"ACDL";
/// The protocol versions this build speaks.
pub const PROTOCOL_VERSION_MIN: u16 = 1;
pub const PROTOCOL_VERSION_MAX: u16 = 1;

/// Why a byte sequence is not a valid frame. Any of these closes the session.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtoError {
    #[error("frame length {0} exceeds the maximum of {MAX_FRAME_LEN}")]
    FrameTooLong(usize),
    #[error("empty frame (length 0)")]
    EmptyFrame,
    #[error("unknown frame type 0x{0:02x}")]
    UnknownType(u8),
    #[error("frame type 0x{ty:02x}: body ends early (needs {need} more bytes)")]
    Truncated { ty: u8, need: usize },
    #[error("frame type 0x{ty:02x}: {extra} unexpected trailing bytes")]
    Trailing { ty: u8, extra: usize },
    #[error("frame type 0x{ty:02x}: invalid {field} value {value}")]
    InvalidValue {
        ty: u8,
        field: &'static str,
        value: u64,
    },
    #[error("frame type 0x{ty:02x}: {field} length {len} exceeds the maximum of {max}")]
    TooMany {
        ty: u8,
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("frame type 0x{ty:02x}: string is not UTF-8")]
    BadUtf8 { ty: u8 },
    #[error("bad HELLO magic {0:02x?}")]
    BadMagic([u8; 4]),
}

/// Agent work state as reported by the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AgentState {
    /// Available: waiting for an ACD call.
    Avail,
    /// Ringing: an ACD call is alerting at the agent's set.
    Ring,
    /// On an ACD call (talking or holding).
    Acd,
    /// After-call work tied to an ACD call.
    Acw,
    /// Auxiliary work (not ready) with a reason code 0..=9 (0 = system AUX).
    Aux(u8),
    /// Anything else: unknown state after login, dialing, non-ACD work.
    Other,
}

impl AgentState {
    /// Wire encoding: state byte and AUX reason byte.
    pub fn to_wire(self) -> (u8, u8) {
        match self {
            AgentState::Avail => (1, 0),
            AgentState::Ring => (2, 0),
            AgentState::Acd => (3, 0),
            AgentState::Acw => (4, 0),
            AgentState::Aux(r) => (5, r),
            AgentState::Other => (6, 0),
        }
    }
}

/// Who ended a connected call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ReleasedBy {
    Caller,
    Agent,
}

/// Where a call in progress stands, in a pump-up call snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CallPhase {
    /// In vector processing, not yet queued.
    Vector,
    /// Queued to one or more skills.
    Queued,
    /// Alerting at an agent.
    Ringing,
    /// Connected to an agent (talking, held or conferenced).
    Connected,
}

impl CallPhase {
    fn to_wire(self) -> u8 {
        match self {
            CallPhase::Vector => 1,
            CallPhase::Queued => 2,
            CallPhase::Ringing => 3,
            CallPhase::Connected => 4,
        }
    }
    fn from_wire(ty: u8, v: u8) -> Result<Self, ProtoError> {
        Ok(match v {
            1 => CallPhase::Vector,
            2 => CallPhase::Queued,
            3 => CallPhase::Ringing,
            4 => CallPhase::Connected,
            v => {
                return Err(ProtoError::InvalidValue {
                    ty,
                    field: "call phase",
                    value: v as u64,
                })
            }
        })
    }
}

/// A skill (split) definition: part of the switch translations.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SkillDef {
    pub skill: u16,
    /// Service-level threshold in seconds (the skill's call profile): answers within it
    /// count as ACCEPTABLE.
    pub service_level: u16,
    /// Upper bounds in seconds of the wait bands 1..9 (PERIOD1..PERIOD9), ascending.
    pub periods: [u16; N_PERIODS],
    pub name: String,
}

/// A VDN definition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VdnDef {
    pub vdn: u16,
    /// The VDN's service-level threshold in seconds (its call profile).
    pub service_level: u16,
    pub name: String,
}

/// A trunk group definition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrunkGroupDef {
    pub tkgrp: u16,
    /// How many trunks the group has: all-trunks-busy is "in use == trunks".
    pub trunks: u16,
    pub name: String,
}

/// One skill an agent logs in to, with the agent's level in it (1 = primary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SkillLevel {
    pub skill: u16,
    pub level: u8,
}

/// The events that make up the sequenced data stream (frame types 0x10..=0x3f).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EventKind {
    SkillDef(SkillDef),
    VdnDef(VdnDef),
    TrunkGroupDef(TrunkGroupDef),
    /// A call arrives on a trunk of `tkgrp` and enters `vdn` (trunk seized).
    CallOffered {
        call: u32,
        vdn: u16,
        tkgrp: u16,
    },
    /// The vector queues the call to `skill`. The first skill a call queues to is its
    /// primary skill; later ones are overflow (the call stays queued to all of them).
    CallQueued {
        call: u32,
        skill: u16,
        priority: u8,
    },
    /// The call leaves every queue and alerts at `agent`, delivered by `skill`.
    CallRinging {
        call: u32,
        agent: u32,
        skill: u16,
    },
    CallAnswered {
        call: u32,
        agent: u32,
    },
    CallHeld {
        call: u32,
        agent: u32,
    },
    CallRetrieved {
        call: u32,
        agent: u32,
    },
    /// The agent conferences another party in; the call stays with the agent.
    CallConferenced {
        call: u32,
        agent: u32,
    },
    /// The agent transfers the call away; the agent's part ends (the agent goes on to ACW)
    /// and a `CallQueued` for the new skill follows.
    CallTransferred {
        call: u32,
        agent: u32,
    },
    /// The caller hangs up before being answered (in vector, in queue or while ringing).
    CallAbandoned {
        call: u32,
    },
    /// A connected call ends; the trunk is released.
    CallReleased {
        call: u32,
        by: ReleasedBy,
    },
    /// The vector gave the caller busy (queues full); the call ends.
    CallBusy {
        call: u32,
    },
    /// The vector disconnected the call; the call ends.
    CallDisconnected {
        call: u32,
    },
    AgentLogin {
        agent: u32,
        skills: Vec<SkillLevel>,
    },
    AgentLogout {
        agent: u32,
        reason: u8,
    },
    /// The agent's work state changes. `skill` is the skill the work is for (ACD, ACW,
    /// RING) or 0 when the state is not tied to a skill.
    AgentState {
        agent: u32,
        state: AgentState,
        skill: u16,
    },
    /// The switch clock was changed; the event's timestamp is on the new clock and
    /// `old_ts` is the same instant on the old clock.
    ClockChange {
        old_ts: i64,
    },
}

/// A sequenced data message: everything after the session handshake that the collector
/// aggregates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    /// Switch sequence number, contiguous from 1 within a switch epoch.
    pub seq: u64,
    /// Switch time, milliseconds since the Unix epoch (UTC).
    pub ts: i64,
    pub kind: EventKind,
}

/// An agent's state at pump-up time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AgentSnapshot {
    pub agent: u32,
    pub state: AgentState,
    /// Skill the current work is for, 0 if none.
    pub work_skill: u16,
    pub skills: Vec<SkillLevel>,
}

/// A call in progress at pump-up time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallSnapshot {
    pub call: u32,
    pub vdn: u16,
    pub tkgrp: u16,
    pub phase: CallPhase,
    /// The agent alerted or connected (phase Ringing / Connected), else 0.
    pub agent: u32,
    /// Skills the call is queued to (phase Queued), or the delivering skill
    /// (Ringing / Connected), first = primary.
    pub skills: Vec<u16>,
    /// When the call was offered, switch time in ms.
    pub offered_ts: i64,
}

/// The collector's opening message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hello {
    pub version_min: u16,
    pub version_max: u16,
    pub acd: u16,
    pub server_id: String,
    /// The switch epoch the collector last saw, 0 if none.
    pub epoch: u64,
    /// The next sequence number the collector wants (last checkpointed + 1), 0 if none.
    pub resume_from: u64,
}

/// How the switch will bring the collector up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StartMode {
    /// Events from `resume_from` follow, replayed from the buffer: nothing is lost.
    Replay,
    /// A pump-up (snapshot) follows, then a GAP notice, then live events.
    Pumpup,
}

/// The switch's answer to HELLO.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Welcome {
    pub version: u16,
    pub acd: u16,
    pub epoch: u64,
    pub mode: StartMode,
    /// The sequence number of the first event that will follow.
    pub first_seq: u64,
    /// Switch time now, ms.
    pub switch_ts: i64,
    /// How often the switch sends HEARTBEAT when idle, ms.
    pub heartbeat_ms: u32,
}

/// Every frame either side sends.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Frame {
    Hello(Hello),
    Welcome(Welcome),
    /// The switch refuses the session (wrong ACD, no common version, ...) and closes.
    Reject {
        code: u16,
        text: String,
    },
    /// Liveness and time tick. From the switch: its clock and the last sequence sent;
    /// every later event has `ts >= heartbeat ts` unless a clock change intervenes.
    /// From the collector: its wall clock and 0.
    Heartbeat {
        ts: i64,
        last_seq: u64,
    },
    /// The collector has durably checkpointed every event up to `seq` of `epoch`.
    Ack {
        epoch: u64,
        seq: u64,
    },
    /// A snapshot follows describing the switch after event `as_of_seq` (0 = before any).
    PumpupBegin {
        as_of_seq: u64,
        ts: i64,
    },
    SnapSkill(SkillDef),
    SnapVdn(VdnDef),
    SnapTrunkGroup(TrunkGroupDef),
    SnapAgent(AgentSnapshot),
    SnapCall(CallSnapshot),
    PumpupEnd,
    /// Events `from..=to` of the current epoch will never be delivered. Sent after a
    /// pump-up when the collector asked to resume and the buffer could not cover it.
    Gap {
        from: u64,
        to: u64,
    },
    Event(Event),
}

// Frame type codes (proto/acd-link.md, "Frame types").
pub const T_HELLO: u8 = 0x01;
pub const T_WELCOME: u8 = 0x02;
pub const T_REJECT: u8 = 0x03;
pub const T_HEARTBEAT: u8 = 0x04;
pub const T_ACK: u8 = 0x05;
pub const T_PUMPUP_BEGIN: u8 = 0x06;
pub const T_PUMPUP_END: u8 = 0x07;
pub const T_GAP: u8 = 0x08;
pub const T_SKILL_DEF: u8 = 0x10;
pub const T_VDN_DEF: u8 = 0x11;
pub const T_TKGRP_DEF: u8 = 0x12;
pub const T_CALL_OFFERED: u8 = 0x20;
pub const T_CALL_QUEUED: u8 = 0x21;
pub const T_CALL_RINGING: u8 = 0x22;
pub const T_CALL_ANSWERED: u8 = 0x23;
pub const T_CALL_HELD: u8 = 0x24;
pub const T_CALL_RETRIEVED: u8 = 0x25;
pub const T_CALL_CONFERENCED: u8 = 0x26;
pub const T_CALL_TRANSFERRED: u8 = 0x27;
pub const T_CALL_ABANDONED: u8 = 0x28;
pub const T_CALL_RELEASED: u8 = 0x29;
pub const T_CALL_BUSY: u8 = 0x2a;
pub const T_CALL_DISCONNECTED: u8 = 0x2b;
pub const T_AGENT_LOGIN: u8 = 0x30;
pub const T_AGENT_LOGOUT: u8 = 0x31;
pub const T_AGENT_STATE: u8 = 0x32;
pub const T_CLOCK_CHANGE: u8 = 0x3f;
pub const T_SNAP_SKILL: u8 = 0x40;
pub const T_SNAP_VDN: u8 = 0x41;
pub const T_SNAP_TKGRP: u8 = 0x42;
pub const T_SNAP_AGENT: u8 = 0x43;
pub const T_SNAP_CALL: u8 = 0x44;

impl Frame {
    /// The frame type byte.
    pub fn type_code(&self) -> u8 {
        match self {
            Frame::Hello(_) => T_HELLO,
            Frame::Welcome(_) => T_WELCOME,
            Frame::Reject { .. } => T_REJECT,
            Frame::Heartbeat { .. } => T_HEARTBEAT,
            Frame::Ack { .. } => T_ACK,
            Frame::PumpupBegin { .. } => T_PUMPUP_BEGIN,
            Frame::PumpupEnd => T_PUMPUP_END,
            Frame::Gap { .. } => T_GAP,
            Frame::SnapSkill(_) => T_SNAP_SKILL,
            Frame::SnapVdn(_) => T_SNAP_VDN,
            Frame::SnapTrunkGroup(_) => T_SNAP_TKGRP,
            Frame::SnapAgent(_) => T_SNAP_AGENT,
            Frame::SnapCall(_) => T_SNAP_CALL,
            Frame::Event(e) => e.kind.type_code(),
        }
    }

    /// Appends the whole frame (length prefix included) to `dst`.
    ///
    /// # Panics
    /// If a string or list is longer than the protocol allows: encoding is only ever
    /// asked of values the program built itself, so that is a bug, not bad input.
    pub fn encode(&self, dst: &mut BytesMut) {
        let start = dst.len();
        dst.put_u32(0);
        dst.put_u8(self.type_code());
        match self {
            Frame::Hello(h) => {
                dst.put_slice(&HELLO_MAGIC);
                dst.put_u16(h.version_min);
                dst.put_u16(h.version_max);
                dst.put_u16(h.acd);
                put_str(dst, &h.server_id);
                dst.put_u64(h.epoch);
                dst.put_u64(h.resume_from);
            }
            Frame::Welcome(w) => {
                dst.put_u16(w.version);
                dst.put_u16(w.acd);
                dst.put_u64(w.epoch);
                dst.put_u8(match w.mode {
                    StartMode::Replay => 1,
                    StartMode::Pumpup => 2,
                });
                dst.put_u64(w.first_seq);
                dst.put_i64(w.switch_ts);
                dst.put_u32(w.heartbeat_ms);
            }
            Frame::Reject { code, text } => {
                dst.put_u16(*code);
                put_str(dst, text);
            }
            Frame::Heartbeat { ts, last_seq } => {
                dst.put_i64(*ts);
                dst.put_u64(*last_seq);
            }
            Frame::Ack { epoch, seq } => {
                dst.put_u64(*epoch);
                dst.put_u64(*seq);
            }
            Frame::PumpupBegin { as_of_seq, ts } => {
                dst.put_u64(*as_of_seq);
                dst.put_i64(*ts);
            }
            Frame::PumpupEnd => {}
            Frame::Gap { from, to } => {
                dst.put_u64(*from);
                dst.put_u64(*to);
            }
            Frame::SnapSkill(s) => put_skill(dst, s),
            Frame::SnapVdn(v) => put_vdn(dst, v),
            Frame::SnapTrunkGroup(t) => put_tkgrp(dst, t),
            Frame::SnapAgent(a) => {
                dst.put_u32(a.agent);
                let (s, r) = a.state.to_wire();
                dst.put_u8(s);
                dst.put_u8(r);
                dst.put_u16(a.work_skill);
                put_skill_levels(dst, &a.skills);
            }
            Frame::SnapCall(c) => {
                dst.put_u32(c.call);
                dst.put_u16(c.vdn);
                dst.put_u16(c.tkgrp);
                dst.put_u8(c.phase.to_wire());
                dst.put_u32(c.agent);
                assert!(c.skills.len() <= MAX_CALL_SKILLS, "too many call skills");
                dst.put_u8(c.skills.len() as u8);
                for s in &c.skills {
                    dst.put_u16(*s);
                }
                dst.put_i64(c.offered_ts);
            }
            Frame::Event(e) => {
                dst.put_u64(e.seq);
                dst.put_i64(e.ts);
                e.kind.encode_body(dst);
            }
        }
        let len = dst.len() - start - 4;
        assert!(len <= MAX_FRAME_LEN, "frame too long to encode");
        dst[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    }

    /// Encodes into a fresh buffer (tests, spec examples).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = BytesMut::new();
        self.encode(&mut b);
        b.to_vec()
    }
}

impl EventKind {
    pub fn type_code(&self) -> u8 {
        match self {
            EventKind::SkillDef(_) => T_SKILL_DEF,
            EventKind::VdnDef(_) => T_VDN_DEF,
            EventKind::TrunkGroupDef(_) => T_TKGRP_DEF,
            EventKind::CallOffered { .. } => T_CALL_OFFERED,
            EventKind::CallQueued { .. } => T_CALL_QUEUED,
            EventKind::CallRinging { .. } => T_CALL_RINGING,
            EventKind::CallAnswered { .. } => T_CALL_ANSWERED,
            EventKind::CallHeld { .. } => T_CALL_HELD,
            EventKind::CallRetrieved { .. } => T_CALL_RETRIEVED,
            EventKind::CallConferenced { .. } => T_CALL_CONFERENCED,
            EventKind::CallTransferred { .. } => T_CALL_TRANSFERRED,
            EventKind::CallAbandoned { .. } => T_CALL_ABANDONED,
            EventKind::CallReleased { .. } => T_CALL_RELEASED,
            EventKind::CallBusy { .. } => T_CALL_BUSY,
            EventKind::CallDisconnected { .. } => T_CALL_DISCONNECTED,
            EventKind::AgentLogin { .. } => T_AGENT_LOGIN,
            EventKind::AgentLogout { .. } => T_AGENT_LOGOUT,
            EventKind::AgentState { .. } => T_AGENT_STATE,
            EventKind::ClockChange { .. } => T_CLOCK_CHANGE,
        }
    }

    fn encode_body(&self, dst: &mut BytesMut) {
        match self {
            EventKind::SkillDef(s) => put_skill(dst, s),
            EventKind::VdnDef(v) => put_vdn(dst, v),
            EventKind::TrunkGroupDef(t) => put_tkgrp(dst, t),
            EventKind::CallOffered { call, vdn, tkgrp } => {
                dst.put_u32(*call);
                dst.put_u16(*vdn);
                dst.put_u16(*tkgrp);
            }
            EventKind::CallQueued {
                call,
                skill,
                priority,
            } => {
                dst.put_u32(*call);
                dst.put_u16(*skill);
                dst.put_u8(*priority);
            }
            EventKind::CallRinging { call, agent, skill } => {
                dst.put_u32(*call);
                dst.put_u32(*agent);
                dst.put_u16(*skill);
            }
            EventKind::CallAnswered { call, agent }
            | EventKind::CallHeld { call, agent }
            | EventKind::CallRetrieved { call, agent }
            | EventKind::CallConferenced { call, agent }
            | EventKind::CallTransferred { call, agent } => {
                dst.put_u32(*call);
                dst.put_u32(*agent);
            }
            EventKind::CallAbandoned { call }
            | EventKind::CallBusy { call }
            | EventKind::CallDisconnected { call } => dst.put_u32(*call),
            EventKind::CallReleased { call, by } => {
                dst.put_u32(*call);
                dst.put_u8(match by {
                    ReleasedBy::Caller => 1,
                    ReleasedBy::Agent => 2,
                });
            }
            EventKind::AgentLogin { agent, skills } => {
                dst.put_u32(*agent);
                put_skill_levels(dst, skills);
            }
            EventKind::AgentLogout { agent, reason } => {
                dst.put_u32(*agent);
                dst.put_u8(*reason);
            }
            EventKind::AgentState {
                agent,
                state,
                skill,
            } => {
                dst.put_u32(*agent);
                let (s, r) = state.to_wire();
                dst.put_u8(s);
                dst.put_u8(r);
                dst.put_u16(*skill);
            }
            EventKind::ClockChange { old_ts } => dst.put_i64(*old_ts),
        }
    }
}

fn put_str(dst: &mut BytesMut, s: &str) {
    assert!(s.len() <= MAX_STR_LEN, "string too long to encode");
    dst.put_u8(s.len() as u8);
    dst.put_slice(s.as_bytes());
}

fn put_skill(dst: &mut BytesMut, s: &SkillDef) {
    dst.put_u16(s.skill);
    dst.put_u16(s.service_level);
    for p in s.periods {
        dst.put_u16(p);
    }
    put_str(dst, &s.name);
}

fn put_vdn(dst: &mut BytesMut, v: &VdnDef) {
    dst.put_u16(v.vdn);
    dst.put_u16(v.service_level);
    put_str(dst, &v.name);
}

fn put_tkgrp(dst: &mut BytesMut, t: &TrunkGroupDef) {
    dst.put_u16(t.tkgrp);
    dst.put_u16(t.trunks);
    put_str(dst, &t.name);
}

fn put_skill_levels(dst: &mut BytesMut, skills: &[SkillLevel]) {
    assert!(skills.len() <= MAX_AGENT_SKILLS, "too many agent skills");
    dst.put_u8(skills.len() as u8);
    for s in skills {
        dst.put_u16(s.skill);
        dst.put_u8(s.level);
    }
}

/// Outcome of looking at the front of a receive buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Not a whole frame yet: read more bytes.
    Incomplete,
    /// A frame, and how many bytes of the buffer it used.
    Frame(Frame, usize),
}

/// Decodes one frame from the front of `buf` without consuming it.
///
/// # Errors
/// [`ProtoError`] when the bytes can never become a valid frame (the caller closes
/// the session). The length is checked against [`MAX_FRAME_LEN`] before anything else,
/// so a hostile length allocates nothing.
pub fn decode_frame(buf: &[u8]) -> Result<Decoded, ProtoError> {
    let Some(used) = frame_len(buf)? else {
        return Ok(Decoded::Incomplete);
    };
    let body = &buf[4..used];
    let frame = decode_body(body[0], &body[1..])?;
    Ok(Decoded::Frame(frame, used))
}

/// The length of the whole frame at the front of `buf`, its length prefix included, or
/// `None` while it is incomplete: the framing of [`decode_frame`] without decoding the
/// body, for a caller that moves frames without looking inside them (the simulator's
/// replay log cuts the generator's output into frames with it).
///
/// # Errors
/// [`ProtoError::FrameTooLong`] or [`ProtoError::EmptyFrame`], checked before the body
/// is waited for.
#[inline]
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, ProtoError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_FRAME_LEN {
        return Err(ProtoError::FrameTooLong(len));
    }
    if len == 0 {
        return Err(ProtoError::EmptyFrame);
    }
    Ok((buf.len() >= 4 + len).then_some(4 + len))
}

/// A bounds-checked reader over one frame body.
struct Rd<'a> {
    ty: u8,
    b: &'a [u8],
}

impl<'a> Rd<'a> {
    fn need(&self, n: usize) -> Result<(), ProtoError> {
        if self.b.remaining() < n {
            Err(ProtoError::Truncated {
                ty: self.ty,
                need: n - self.b.remaining(),
            })
        } else {
            Ok(())
        }
    }
    fn u8(&mut self) -> Result<u8, ProtoError> {
        self.need(1)?;
        Ok(self.b.get_u8())
    }
    fn u16(&mut self) -> Result<u16, ProtoError> {
        self.need(2)?;
        Ok(self.b.get_u16())
    }
    fn u32(&mut self) -> Result<u32, ProtoError> {
        self.need(4)?;
        Ok(self.b.get_u32())
    }
    fn u64(&mut self) -> Result<u64, ProtoError> {
        self.need(8)?;
        Ok(self.b.get_u64())
    }
    fn i64(&mut self) -> Result<i64, ProtoError> {
        self.need(8)?;
        Ok(self.b.get_i64())
    }
    fn count(&mut self, field: &'static str, max: usize) -> Result<usize, ProtoError> {
        let n = self.u8()? as usize;
        if n > max {
            return Err(ProtoError::TooMany {
                ty: self.ty,
                field,
                len: n,
                max,
            });
        }
        Ok(n)
    }
    fn str(&mut self) -> Result<String, ProtoError> {
        let n = self.count("string", MAX_STR_LEN)?;
        self.need(n)?;
        let s = std::str::from_utf8(&self.b[..n])
            .map_err(|_| ProtoError::BadUtf8 { ty: self.ty })?
            .to_owned();
        self.b.advance(n);
        Ok(s)
    }
    /// A state byte and its AUX reason byte. The state byte is checked as soon as it is
    /// read, before the reason byte is looked for (proto/acd-link.md, "Order of checks"),
    /// the reason with its state.
    fn agent_state(&mut self) -> Result<AgentState, ProtoError> {
        let ty = self.ty;
        let invalid = |field, value: u8| ProtoError::InvalidValue {
            ty,
            field,
            value: value as u64,
        };
        let state = match self.u8()? {
            1 => AgentState::Avail,
            2 => AgentState::Ring,
            3 => AgentState::Acd,
            4 => AgentState::Acw,
            5 => AgentState::Aux(0),
            6 => AgentState::Other,
            v => return Err(invalid("agent state", v)),
        };
        match (state, self.u8()?) {
            (AgentState::Aux(_), r) if r <= 9 => Ok(AgentState::Aux(r)),
            (state, 0) => Ok(state),
            (_, r) => Err(invalid("aux reason", r)),
        }
    }
    fn skill(&mut self) -> Result<SkillDef, ProtoError> {
        let skill = self.u16()?;
        let service_level = self.u16()?;
        let mut periods = [0u16; N_PERIODS];
        for p in periods.iter_mut() {
            *p = self.u16()?;
        }
        if periods.windows(2).any(|w| w[0] > w[1]) {
            return Err(ProtoError::InvalidValue {
                ty: self.ty,
                field: "periods (not ascending)",
                value: 0,
            });
        }
        Ok(SkillDef {
            skill,
            service_level,
            periods,
            name: self.str()?,
        })
    }
    fn vdn(&mut self) -> Result<VdnDef, ProtoError> {
        Ok(VdnDef {
            vdn: self.u16()?,
            service_level: self.u16()?,
            name: self.str()?,
        })
    }
    fn tkgrp(&mut self) -> Result<TrunkGroupDef, ProtoError> {
        Ok(TrunkGroupDef {
            tkgrp: self.u16()?,
            trunks: self.u16()?,
            name: self.str()?,
        })
    }
    fn skill_levels(&mut self) -> Result<Vec<SkillLevel>, ProtoError> {
        let n = self.count("skills", MAX_AGENT_SKILLS)?;
        self.need(3 * n)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(SkillLevel {
                skill: self.u16()?,
                level: self.u8()?,
            });
        }
        Ok(v)
    }
    /// HELLO's payload: magic, versions, ACD, server id and where the collector stands.
    fn hello(&mut self) -> Result<Hello, ProtoError> {
        let ty = self.ty;
        self.need(4)?;
        let magic = [self.b[0], self.b[1], self.b[2], self.b[3]];
        if magic != HELLO_MAGIC {
            return Err(ProtoError::BadMagic(magic));
        }
        self.b.advance(4);
        let version_min = self.u16()?;
        check(version_min >= 1, ty, "version_min", version_min as u64)?;
        let version_max = self.u16()?;
        let acd = self.u16()?;
        let server_id = self.str()?;
        let epoch = self.u64()?;
        let resume_from = self.u64()?;
        // Both zero (no history) or both set: one without the other says nothing.
        check(
            (epoch == 0) == (resume_from == 0),
            ty,
            "resume_from (with epoch)",
            resume_from,
        )?;
        Ok(Hello {
            version_min,
            version_max,
            acd,
            server_id,
            epoch,
            resume_from,
        })
    }
    /// WELCOME's payload, each value checked as it is read.
    fn welcome(&mut self) -> Result<Welcome, ProtoError> {
        let ty = self.ty;
        Ok(Welcome {
            version: self.u16()?,
            acd: self.u16()?,
            epoch: {
                let e = self.u64()?;
                check(e != 0, ty, "epoch", e)?;
                e
            },
            mode: match self.u8()? {
                1 => StartMode::Replay,
                2 => StartMode::Pumpup,
                v => {
                    return Err(ProtoError::InvalidValue {
                        ty,
                        field: "start mode",
                        value: v as u64,
                    })
                }
            },
            first_seq: {
                let f = self.u64()?;
                check(f >= 1, ty, "first_seq", f)?;
                f
            },
            switch_ts: self.i64()?,
            heartbeat_ms: self.u32()?,
        })
    }
    fn gap(&mut self) -> Result<Frame, ProtoError> {
        let from = self.u64()?;
        check(from >= 1, self.ty, "gap from", from)?;
        let to = self.u64()?;
        check(to >= from, self.ty, "gap to (before from)", to)?;
        Ok(Frame::Gap { from, to })
    }
    fn call_snapshot(&mut self) -> Result<CallSnapshot, ProtoError> {
        let call = self.u32()?;
        let vdn = self.u16()?;
        let tkgrp = self.u16()?;
        let phase = CallPhase::from_wire(self.ty, self.u8()?)?;
        let agent = self.u32()?;
        let n = self.count("call skills", MAX_CALL_SKILLS)?;
        self.need(2 * n)?;
        let mut skills = Vec::with_capacity(n);
        for _ in 0..n {
            skills.push(self.u16()?);
        }
        Ok(CallSnapshot {
            call,
            vdn,
            tkgrp,
            phase,
            agent,
            skills,
            offered_ts: self.i64()?,
        })
    }
    fn finish(self) -> Result<(), ProtoError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(ProtoError::Trailing {
                ty: self.ty,
                extra: self.b.len(),
            })
        }
    }
}

/// Whether version 1 defines frame type `ty` (proto/acd-link.md, "Frame types").
pub fn is_known_type(ty: u8) -> bool {
    matches!(
        ty,
        T_HELLO..=T_GAP
            | T_SKILL_DEF..=T_TKGRP_DEF
            | T_CALL_OFFERED..=T_CALL_DISCONNECTED
            | T_AGENT_LOGIN..=T_AGENT_STATE
            | T_CLOCK_CHANGE
            | T_SNAP_SKILL..=T_SNAP_CALL
    )
}

/// `InvalidValue` unless `ok`: the value rules of the message tables that are not
/// enumerations (proto/acd-link.md, "Limits").
fn check(ok: bool, ty: u8, field: &'static str, value: u64) -> Result<(), ProtoError> {
    if ok {
        Ok(())
    } else {
        Err(ProtoError::InvalidValue { ty, field, value })
    }
}

/// Decodes the payload of a frame of type `ty`. Checks run in wire order, each as soon
/// as the bytes it looks at are read, so the first broken field is the one reported
/// (proto/acd-link.md, "Order of checks"); the type is checked before any payload byte.
fn decode_body(ty: u8, payload: &[u8]) -> Result<Frame, ProtoError> {
    if !is_known_type(ty) {
        return Err(ProtoError::UnknownType(ty));
    }
    let mut r = Rd { ty, b: payload };
    let frame = match ty {
        T_HELLO => Frame::Hello(r.hello()?),
        T_WELCOME => Frame::Welcome(r.welcome()?),
        T_REJECT => Frame::Reject {
            code: r.u16()?,
            text: r.str()?,
        },
        T_HEARTBEAT => Frame::Heartbeat {
            ts: r.i64()?,
            last_seq: r.u64()?,
        },
        T_ACK => Frame::Ack {
            epoch: r.u64()?,
            seq: r.u64()?,
        },
        T_PUMPUP_BEGIN => Frame::PumpupBegin {
            as_of_seq: r.u64()?,
            ts: r.i64()?,
        },
        T_PUMPUP_END => Frame::PumpupEnd,
        T_GAP => r.gap()?,
        T_SNAP_SKILL => Frame::SnapSkill(r.skill()?),
        T_SNAP_VDN => Frame::SnapVdn(r.vdn()?),
        T_SNAP_TKGRP => Frame::SnapTrunkGroup(r.tkgrp()?),
        T_SNAP_AGENT => Frame::SnapAgent(AgentSnapshot {
            agent: r.u32()?,
            state: r.agent_state()?,
            work_skill: r.u16()?,
            skills: r.skill_levels()?,
        }),
        T_SNAP_CALL => Frame::SnapCall(r.call_snapshot()?),
        0x10..=0x3f => {
            let seq = r.u64()?;
            let ts = r.i64()?;
            let kind = decode_event(ty, &mut r)?;
            Frame::Event(Event { seq, ts, kind })
        }
        other => return Err(ProtoError::UnknownType(other)),
    };
    r.finish()?;
    Ok(frame)
}

fn decode_event(ty: u8, r: &mut Rd<'_>) -> Result<EventKind, ProtoError> {
    Ok(match ty {
        T_SKILL_DEF => EventKind::SkillDef(r.skill()?),
        T_VDN_DEF => EventKind::VdnDef(r.vdn()?),
        T_TKGRP_DEF => EventKind::TrunkGroupDef(r.tkgrp()?),
        T_CALL_OFFERED => EventKind::CallOffered {
            call: r.u32()?,
            vdn: r.u16()?,
            tkgrp: r.u16()?,
        },
        T_CALL_QUEUED => EventKind::CallQueued {
            call: r.u32()?,
            skill: r.u16()?,
            priority: r.u8()?,
        },
        T_CALL_RINGING => EventKind::CallRinging {
            call: r.u32()?,
            agent: r.u32()?,
            skill: r.u16()?,
        },
        T_CALL_ANSWERED => EventKind::CallAnswered {
            call: r.u32()?,
            agent: r.u32()?,
        },
        T_CALL_HELD => EventKind::CallHeld {
            call: r.u32()?,
            agent: r.u32()?,
        },
        T_CALL_RETRIEVED => EventKind::CallRetrieved {
            call: r.u32()?,
            agent: r.u32()?,
        },
        T_CALL_CONFERENCED => EventKind::CallConferenced {
            call: r.u32()?,
            agent: r.u32()?,
        },
        T_CALL_TRANSFERRED => EventKind::CallTransferred {
            call: r.u32()?,
            agent: r.u32()?,
        },
        T_CALL_ABANDONED => EventKind::CallAbandoned { call: r.u32()? },
        T_CALL_RELEASED => EventKind::CallReleased {
            call: r.u32()?,
            by: match r.u8()? {
                1 => ReleasedBy::Caller,
                2 => ReleasedBy::Agent,
                v => {
                    return Err(ProtoError::InvalidValue {
                        ty,
                        field: "released by",
                        value: v as u64,
                    })
                }
            },
        },
        T_CALL_BUSY => EventKind::CallBusy { call: r.u32()? },
        T_CALL_DISCONNECTED => EventKind::CallDisconnected { call: r.u32()? },
        T_AGENT_LOGIN => EventKind::AgentLogin {
            agent: r.u32()?,
            skills: r.skill_levels()?,
        },
        T_AGENT_LOGOUT => EventKind::AgentLogout {
            agent: r.u32()?,
            reason: r.u8()?,
        },
        T_AGENT_STATE => EventKind::AgentState {
            agent: r.u32()?,
            state: r.agent_state()?,
            skill: r.u16()?,
        },
        T_CLOCK_CHANGE => EventKind::ClockChange { old_ts: r.i64()? },
        other => return Err(ProtoError::UnknownType(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_long_is_refused_before_allocation() {
        let buf = [0xff, 0xff, 0xff, 0xff, 0x20];
        assert_eq!(
            decode_frame(&buf),
            Err(ProtoError::FrameTooLong(0xffff_ffff))
        );
    }

    #[test]
    fn partial_frames_are_incomplete() {
        let f = Frame::Event(Event {
            seq: 7,
            ts: 1_000,
            kind: EventKind::CallAbandoned { call: 9 },
        });
        let bytes = f.to_bytes();
        for cut in 0..bytes.len() {
            assert_eq!(decode_frame(&bytes[..cut]), Ok(Decoded::Incomplete));
        }
        assert_eq!(decode_frame(&bytes), Ok(Decoded::Frame(f, bytes.len())));
    }

    #[test]
    fn aux_reason_out_of_range_is_invalid() {
        let f = Frame::Event(Event {
            seq: 1,
            ts: 0,
            kind: EventKind::AgentState {
                agent: 1,
                state: AgentState::Aux(3),
                skill: 0,
            },
        });
        let mut bytes = f.to_bytes();
        // state byte is at 4 (len) + 1 (type) + 16 (seq, ts) + 4 (agent) = 25, reason at 26
        bytes[26] = 10;
        assert!(matches!(
            decode_frame(&bytes),
            Err(ProtoError::InvalidValue { .. })
        ));
    }
}
