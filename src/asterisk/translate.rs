//! Queue-log lines in, ACD link events out: the bookings of `docs/asterisk.md`. No I/O,
//! no wall clock: the same lines always give the same events, so the bridge can number
//! them by their place in the log and replay any stretch by reading the log again.
//!
//! [`Translator::line`] takes one line of the log (and its line number, for the error
//! the caller logs); [`Translator::tick`] lets log time pass without a line (the end
//! of a wrap-up while the log is quiet). Each appends `(ts, EventKind)` pairs in the
//! order they must be sequenced; their `ts` never decreases except at a CLOCK_CHANGE.
//!
//! Where a queue log cannot say exactly what happened (a call or member the log met
//! in the middle, a line out of order, a garbage line, a call cut by an Asterisk
//! restart), the translator emits the *inexact marker*: a CALL_ABANDONED for call id
//! [`MARK_CALL`], which no call ever has, so the collector books `unknown_entity` in
//! the interval where it happens and never calls that interval complete
//! (`docs/data-items.md`, "Call flows outside the model").

use super::mapping::{Mapping, AUTO_AGENT_BASE, AUTO_SKILL_BASE};
use super::parse::{parse_line, CallId, Event, Line, ParseError};
use crate::proto::{
    AgentSnapshot, AgentState, CallPhase, CallSnapshot, EventKind, Frame, ReleasedBy, SkillDef,
    SkillLevel, VdnDef, MAX_AGENT_SKILLS,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The call id of the inexact marker: never given to a call.
pub const MARK_CALL: u32 = u32::MAX;
/// The trunk group every call is offered on (a queue log names no trunk).
pub const TKGRP: u16 = 1;
/// DID lines remembered for calls that have not entered a queue yet, at most.
const MAX_PENDING_DIDS: usize = 100_000;

/// Counters of what the translator met (the bridge logs and reports them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub lines: u64,
    /// Lines that are not queue-log events (skipped, counted, marked inexact).
    pub garbage: u64,
    /// Events with no booking (RINGNOANSWER, CONFIGRELOAD, chan_agent logins, ...).
    pub ignored: u64,
    /// Inexact markers emitted.
    pub inexact: u64,
    /// Lines dated back by up to `clock_step_seconds` (booked at the last time).
    pub out_of_order: u64,
    pub clock_changes: u64,
    pub restarts: u64,
}

/// Why a line was skipped: the caller logs it with the line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct LineError {
    pub line: u64,
    pub error: ParseError,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Phase {
    Queued,
    /// Left its queue by a timeout, an empty queue or a key (EXIT*): it ends unless it
    /// enters another queue within the mapping's `move_window_seconds` (`token` names
    /// the pending end).
    Exited {
        token: u64,
    },
    /// Connected to `member`, delivered by `skill`, from queue `queue`.
    Connected {
        member: String,
        skill: u16,
        queue: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Call {
    wire: u32,
    vdn: u16,
    offered_ts: i64,
    skills: Vec<u16>,
    phase: Phase,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Agent {
    id: u32,
    /// The skills Asterisk has the member in now.
    want: BTreeSet<u16>,
    /// The skills of its login on the wire (empty = logged out).
    wire: BTreeSet<u16>,
    paused: Option<u8>,
    /// On a call: (wire call, skill).
    busy: Option<(u32, u16)>,
    /// In ACW; `token` names the pending end.
    acw: Option<u64>,
    /// The skill of its last call (the ACW's skill).
    last_skill: u16,
}

impl Agent {
    fn idle_state(&self) -> AgentState {
        match self.paused {
            Some(r) => AgentState::Aux(r),
            None => AgentState::Avail,
        }
    }
    fn idle(&self) -> bool {
        self.busy.is_none() && self.acw.is_none()
    }
}

/// The translator's whole state; serialisable, so the bridge can keep it in its index
/// and go on from a file's start after a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Translator {
    map: Mapping,
    started: bool,
    last_ts: i64,
    calls: HashMap<String, Call>,
    dids: HashMap<String, u16>,
    agents: HashMap<String, Agent>,
    skills: HashMap<String, u16>,
    skill_defs: BTreeMap<u16, SkillDef>,
    vdn_defs: BTreeMap<u16, VdnDef>,
    next_auto_skill: u16,
    next_auto_agent: u32,
    next_call: u32,
    /// Ends due later: (due ms, kind, member or call id, token); kind 0 is the end of
    /// a member's ACW, 1 the end of a call that left its queue.
    pending: BTreeSet<(i64, u8, String, u64)>,
    next_token: u64,
    pub stats: Stats,
}

type Out = Vec<(i64, EventKind)>;

impl Translator {
    pub fn new(map: Mapping) -> Translator {
        Translator {
            map,
            started: false,
            last_ts: i64::MIN,
            calls: HashMap::new(),
            dids: HashMap::new(),
            agents: HashMap::new(),
            skills: HashMap::new(),
            skill_defs: BTreeMap::new(),
            vdn_defs: BTreeMap::new(),
            next_auto_skill: AUTO_SKILL_BASE,
            next_auto_agent: AUTO_AGENT_BASE,
            next_call: 1,
            pending: BTreeSet::new(),
            next_token: 1,
            stats: Stats::default(),
        }
    }

    pub fn mapping(&self) -> &Mapping {
        &self.map
    }

    /// Log time reached so far (ms), `None` before the first line.
    pub fn log_time(&self) -> Option<i64> {
        self.started.then_some(self.last_ts)
    }

    /// Calls in progress now.
    pub fn calls_in_progress(&self) -> usize {
        self.calls.len()
    }

    /// Members logged in on the wire now.
    pub fn agents_logged_in(&self) -> usize {
        self.agents.values().filter(|a| !a.wire.is_empty()).count()
    }

    /// Translates line number `line_no` of the log.
    ///
    /// # Errors
    /// The line is not a queue-log event; it was counted, marked inexact (once the log
    /// has a time) and skipped.
    pub fn line(&mut self, line_no: u64, text: &str, out: &mut Out) -> Result<(), LineError> {
        self.stats.lines += 1;
        if text.trim().is_empty() {
            return Ok(());
        }
        match parse_line(text) {
            Ok(l) => {
                self.apply(&l, out);
                Ok(())
            }
            Err(error) => {
                self.stats.garbage += 1;
                if self.started {
                    self.mark(self.last_ts, out);
                }
                Err(LineError {
                    line: line_no,
                    error,
                })
            }
        }
    }

    /// Lets log time pass to `now_ms` with no line: ends the wrap-ups due by then.
    pub fn tick(&mut self, now_ms: i64, out: &mut Out) {
        if self.started && now_ms > self.last_ts {
            self.flush_pending(now_ms, out);
        }
    }

    fn mark(&mut self, ts: i64, out: &mut Out) {
        self.stats.inexact += 1;
        out.push((ts, EventKind::CallAbandoned { call: MARK_CALL }));
    }

    /// The line's time on the log's running clock: a clock change, a line out of
    /// order (booked at the last time, marked), or the next time.
    fn clock(&mut self, ts: i64, out: &mut Out) -> i64 {
        if !self.started {
            self.started = true;
            self.last_ts = ts;
            self.define_all(ts, out);
            return ts;
        }
        if ts >= self.last_ts {
            self.flush_pending(ts, out);
            self.last_ts = ts;
            return ts;
        }
        let back = self.last_ts - ts;
        if back > i64::from(self.map.clock_step_seconds) * 1000 {
            self.stats.clock_changes += 1;
            out.push((
                ts,
                EventKind::ClockChange {
                    old_ts: self.last_ts,
                },
            ));
            // Wrap-ups end on the new clock as long after the change as they would have.
            let pending = std::mem::take(&mut self.pending);
            self.pending = pending
                .into_iter()
                .map(|(due, k, m, t)| (due - back, k, m, t))
                .collect();
            self.last_ts = ts;
            return ts;
        }
        self.stats.out_of_order += 1;
        self.mark(self.last_ts, out);
        self.last_ts
    }

    fn flush_pending(&mut self, upto: i64, out: &mut Out) {
        while let Some((due, ..)) = self.pending.first() {
            if *due > upto {
                break;
            }
            let (due, kind, key, token) = self.pending.pop_first().expect("there");
            if kind == 0 {
                let Some(a) = self.agents.get_mut(&key) else {
                    continue;
                };
                if a.acw == Some(token) {
                    a.acw = None;
                    self.last_ts = self.last_ts.max(due);
                    self.go_idle(&key, due, out);
                }
            } else if let Some(c) = self.calls.get(&key) {
                if matches!(c.phase, Phase::Exited { token: t } if t == token) {
                    let wire = c.wire;
                    self.calls.remove(&key);
                    self.last_ts = self.last_ts.max(due);
                    out.push((due, EventKind::CallDisconnected { call: wire }));
                }
            }
        }
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// The translations of the mapping, at the first line's time.
    fn define_all(&mut self, ts: i64, out: &mut Out) {
        let queues: Vec<(String, u16)> = self
            .map
            .queues
            .iter()
            .map(|(n, q)| (n.clone(), q.skill))
            .collect();
        for (name, skill) in queues {
            self.define_skill(&name, skill, ts, out);
        }
        let mut vdns: BTreeSet<u16> = self.map.dids.values().copied().collect();
        vdns.insert(self.map.default_vdn);
        for v in vdns {
            self.define_vdn(v, ts, out);
        }
    }

    fn define_skill(&mut self, queue: &str, skill: u16, ts: i64, out: &mut Out) {
        self.skills.insert(queue.to_string(), skill);
        if !self.skill_defs.contains_key(&skill) {
            let def = SkillDef {
                skill,
                service_level: self.map.service_level(queue),
                periods: self.map.periods,
                name: truncate(queue),
            };
            self.skill_defs.insert(skill, def.clone());
            out.push((ts, EventKind::SkillDef(def)));
        }
    }

    fn define_vdn(&mut self, vdn: u16, ts: i64, out: &mut Out) {
        if !self.vdn_defs.contains_key(&vdn) {
            let name = self
                .map
                .dids
                .iter()
                .find(|(_, v)| **v == vdn)
                .map_or_else(|| format!("VDN {vdn}"), |(d, _)| truncate(d));
            let def = VdnDef {
                vdn,
                service_level: self.map.vdn_service_level,
                name,
            };
            self.vdn_defs.insert(vdn, def.clone());
            out.push((ts, EventKind::VdnDef(def)));
        }
    }

    /// The skill of `queue`, defined on first sight.
    fn skill(&mut self, queue: &str, ts: i64, out: &mut Out) -> u16 {
        if let Some(s) = self.skills.get(queue) {
            return *s;
        }
        let s = self.map.fixed_skill(queue).unwrap_or_else(|| {
            while self.skill_defs.contains_key(&self.next_auto_skill) {
                self.next_auto_skill = self.next_auto_skill.wrapping_add(1).max(1);
            }
            self.next_auto_skill
        });
        self.define_skill(queue, s, ts, out);
        s
    }

    /// The member's record, made on first sight.
    fn agent(&mut self, member: &str) -> &mut Agent {
        if !self.agents.contains_key(member) {
            let id = self.map.fixed_agent(member).unwrap_or_else(|| {
                let a = self.next_auto_agent;
                self.next_auto_agent += 1;
                a
            });
            self.agents.insert(
                member.to_string(),
                Agent {
                    id,
                    want: BTreeSet::new(),
                    wire: BTreeSet::new(),
                    paused: None,
                    busy: None,
                    acw: None,
                    last_skill: 0,
                },
            );
        }
        self.agents.get_mut(member).expect("inserted")
    }

    /// Brings the member's wire login in line with its queues, when it is idle: a
    /// login, a logout, or a new login with the new skills (the collector logs the old
    /// one out at the same instant), then its idle state.
    fn sync_login(&mut self, member: &str, ts: i64, out: &mut Out) {
        let a = self.agent(member);
        if !a.idle() || a.want == a.wire {
            return;
        }
        let id = a.id;
        a.wire = a.want.clone();
        if a.wire.is_empty() {
            out.push((
                ts,
                EventKind::AgentLogout {
                    agent: id,
                    reason: 0,
                },
            ));
            return;
        }
        let skills = a
            .wire
            .iter()
            .take(MAX_AGENT_SKILLS)
            .map(|&skill| SkillLevel { skill, level: 1 })
            .collect();
        let state = a.idle_state();
        out.push((ts, EventKind::AgentLogin { agent: id, skills }));
        out.push((
            ts,
            EventKind::AgentState {
                agent: id,
                state,
                skill: 0,
            },
        ));
    }

    /// The member is done with its call and wrap-up.
    fn go_idle(&mut self, member: &str, ts: i64, out: &mut Out) {
        let a = self.agent(member);
        let (id, state, changed) = (a.id, a.idle_state(), a.want != a.wire);
        if changed {
            self.sync_login(member, ts, out);
        } else if !a.wire.is_empty() {
            out.push((
                ts,
                EventKind::AgentState {
                    agent: id,
                    state,
                    skill: 0,
                },
            ));
        }
    }

    /// The member's call ended at `ts`: ACW for the queue's wrap-up time, or idle now.
    fn after_call(&mut self, member: &str, queue: &str, skill: u16, ts: i64, out: &mut Out) {
        let wrapup = self.map.wrapup_ms(queue);
        let token = self.token();
        let a = self.agent(member);
        a.busy = None;
        a.last_skill = skill;
        if wrapup > 0 {
            let id = a.id;
            a.acw = Some(token);
            out.push((
                ts,
                EventKind::AgentState {
                    agent: id,
                    state: AgentState::Acw,
                    skill,
                },
            ));
            self.pending
                .insert((ts + wrapup, 0, member.to_string(), token));
        } else {
            self.go_idle(member, ts, out);
        }
    }

    fn new_wire_call(&mut self) -> u32 {
        let c = self.next_call;
        self.next_call = if c >= MARK_CALL - 1 { 1 } else { c + 1 };
        c
    }

    /// The state the log implies now, as pump-up snapshot records (proto/acd-link.md,
    /// "Opening", step 4): every skill and VDN, every member logged in, every call in
    /// progress.
    pub fn snapshot(&self) -> Vec<Frame> {
        let mut v: Vec<Frame> = self
            .skill_defs
            .values()
            .cloned()
            .map(Frame::SnapSkill)
            .collect();
        v.extend(self.vdn_defs.values().cloned().map(Frame::SnapVdn));
        let mut agents: Vec<&Agent> = self
            .agents
            .values()
            .filter(|a| !a.wire.is_empty())
            .collect();
        agents.sort_by_key(|a| a.id);
        for a in agents {
            let (state, work_skill) = match (a.busy, a.acw) {
                (Some((_, s)), _) => (AgentState::Acd, s),
                (None, Some(_)) => (AgentState::Acw, a.last_skill),
                (None, None) => (a.idle_state(), 0),
            };
            v.push(Frame::SnapAgent(AgentSnapshot {
                agent: a.id,
                state,
                work_skill,
                skills: a
                    .wire
                    .iter()
                    .take(MAX_AGENT_SKILLS)
                    .map(|&skill| SkillLevel { skill, level: 1 })
                    .collect(),
            }));
        }
        let mut calls: Vec<&Call> = self.calls.values().collect();
        calls.sort_by_key(|c| c.wire);
        for c in calls {
            let (phase, agent, skills) = match &c.phase {
                Phase::Queued | Phase::Exited { .. } => (CallPhase::Queued, 0, c.skills.clone()),
                Phase::Connected { member, skill, .. } => (
                    CallPhase::Connected,
                    self.agents.get(member).map_or(0, |a| a.id),
                    vec![*skill],
                ),
            };
            v.push(Frame::SnapCall(CallSnapshot {
                call: c.wire,
                vdn: c.vdn,
                tkgrp: TKGRP,
                phase,
                agent,
                skills,
                offered_ts: c.offered_ts,
            }));
        }
        v
    }

    fn apply(&mut self, l: &Line<'_>, out: &mut Out) {
        let ts = self.clock(l.ts, out);
        let uid = match l.callid {
            CallId::Uid(u) => Some(u),
            _ => None,
        };
        match l.event {
            Event::Did { did } => {
                if let Some(u) = uid {
                    if self.dids.len() >= MAX_PENDING_DIDS {
                        self.dids.clear();
                    }
                    let vdn = self.map.vdn(Some(did));
                    self.dids.insert(u.to_string(), vdn);
                } else {
                    self.stats.ignored += 1;
                }
            }
            Event::EnterQueue { .. } => {
                let (Some(u), Some(q)) = (uid, l.queue) else {
                    return self.mark(ts, out);
                };
                let skill = self.skill(q, ts, out);
                match self.calls.get_mut(u) {
                    None => {
                        let vdn = self.dids.remove(u).unwrap_or(self.map.default_vdn);
                        self.define_vdn(vdn, ts, out);
                        let wire = self.new_wire_call();
                        out.push((
                            ts,
                            EventKind::CallOffered {
                                call: wire,
                                vdn,
                                tkgrp: TKGRP,
                            },
                        ));
                        out.push((
                            ts,
                            EventKind::CallQueued {
                                call: wire,
                                skill,
                                priority: 1,
                            },
                        ));
                        self.calls.insert(
                            u.to_string(),
                            Call {
                                wire,
                                vdn,
                                offered_ts: ts,
                                skills: vec![skill],
                                phase: Phase::Queued,
                            },
                        );
                    }
                    Some(c) if matches!(c.phase, Phase::Queued | Phase::Exited { .. }) => {
                        // A second queue for a waiting call, or for one that just left
                        // its queue: an overflow (its pending end is void).
                        c.phase = Phase::Queued;
                        if !c.skills.contains(&skill) && c.skills.len() < 4 {
                            c.skills.push(skill);
                            out.push((
                                ts,
                                EventKind::CallQueued {
                                    call: c.wire,
                                    skill,
                                    priority: 2,
                                },
                            ));
                        }
                    }
                    Some(_) => self.mark(ts, out),
                }
            }
            Event::Connect { .. } => {
                let (Some(u), Some(q), Some(m)) = (uid, l.queue, l.member) else {
                    return self.mark(ts, out);
                };
                let Some(c) = self.calls.get(u) else {
                    return self.mark(ts, out);
                };
                if !matches!(c.phase, Phase::Queued) {
                    return self.mark(ts, out);
                }
                let wire = c.wire;
                let skill = self.skill(q, ts, out);
                // A member met on a call it was never added for (a static member, or
                // one added before the log began): logged in now, its past unknown.
                let a = self.agent(m);
                if !a.want.contains(&skill) || a.busy.is_some() {
                    a.want.insert(skill);
                    a.busy = None;
                    self.mark(ts, out);
                }
                // A new call ends a wrap-up early.
                self.agent(m).acw = None;
                self.sync_login(m, ts, out);
                let a = self.agent(m);
                let id = a.id;
                a.busy = Some((wire, skill));
                for kind in [
                    EventKind::CallRinging {
                        call: wire,
                        agent: id,
                        skill,
                    },
                    EventKind::AgentState {
                        agent: id,
                        state: AgentState::Ring,
                        skill,
                    },
                    EventKind::CallAnswered {
                        call: wire,
                        agent: id,
                    },
                    EventKind::AgentState {
                        agent: id,
                        state: AgentState::Acd,
                        skill,
                    },
                ] {
                    out.push((ts, kind));
                }
                let c = self.calls.get_mut(u).expect("checked");
                c.phase = Phase::Connected {
                    member: m.to_string(),
                    skill,
                    queue: q.to_string(),
                };
            }
            Event::CompleteCaller { .. }
            | Event::CompleteAgent { .. }
            | Event::AgentDump
            | Event::Transfer { .. } => {
                let Some(u) = uid else {
                    return self.mark(ts, out);
                };
                let Some(c) = self.calls.remove(u) else {
                    return self.mark(ts, out);
                };
                match c.phase {
                    Phase::Queued | Phase::Exited { .. } => {
                        // Completed without a CONNECT line: the log lost one.
                        self.mark(ts, out);
                        out.push((ts, EventKind::CallDisconnected { call: c.wire }));
                    }
                    Phase::Connected {
                        member,
                        skill,
                        queue,
                    } => {
                        let id = self.agent(&member).id;
                        if matches!(l.event, Event::Transfer { .. }) {
                            out.push((
                                ts,
                                EventKind::CallTransferred {
                                    call: c.wire,
                                    agent: id,
                                },
                            ));
                        }
                        let by = match l.event {
                            Event::CompleteCaller { .. } => ReleasedBy::Caller,
                            _ => ReleasedBy::Agent,
                        };
                        out.push((ts, EventKind::CallReleased { call: c.wire, by }));
                        self.after_call(&member, &queue, skill, ts, out);
                    }
                }
            }
            Event::Abandon { .. }
            | Event::ExitWithTimeout { .. }
            | Event::ExitEmpty { .. }
            | Event::ExitWithKey { .. } => {
                let Some(u) = uid else {
                    return self.mark(ts, out);
                };
                let Some(c) = self.calls.remove(u) else {
                    return self.mark(ts, out);
                };
                match c.phase {
                    Phase::Queued | Phase::Exited { .. }
                        if matches!(l.event, Event::Abandon { .. }) =>
                    {
                        out.push((ts, EventKind::CallAbandoned { call: c.wire }));
                    }
                    Phase::Queued => {
                        // It may go on to another queue: its end waits.
                        let token = self.token();
                        let due = ts + i64::from(self.map.move_window_seconds) * 1000;
                        self.pending.insert((due, 1, u.to_string(), token));
                        self.calls.insert(
                            u.to_string(),
                            Call {
                                phase: Phase::Exited { token },
                                ..c
                            },
                        );
                    }
                    Phase::Exited { .. } => {
                        self.calls.insert(u.to_string(), c);
                    }
                    Phase::Connected {
                        member,
                        skill,
                        queue,
                    } => {
                        self.mark(ts, out);
                        out.push((
                            ts,
                            EventKind::CallReleased {
                                call: c.wire,
                                by: ReleasedBy::Caller,
                            },
                        ));
                        self.after_call(&member, &queue, skill, ts, out);
                    }
                }
            }
            Event::RingNoAnswer { .. } | Event::RingCanceled | Event::Other(_) => {
                self.stats.ignored += 1;
            }
            Event::AddMember { paused } => {
                let (Some(q), Some(m)) = (l.queue, l.member) else {
                    return self.mark(ts, out);
                };
                let skill = self.skill(q, ts, out);
                let a = self.agent(m);
                a.want.insert(skill);
                if paused {
                    a.paused = Some(0);
                }
                self.sync_login(m, ts, out);
            }
            Event::RemoveMember => {
                let (Some(q), Some(m)) = (l.queue, l.member) else {
                    return self.mark(ts, out);
                };
                let skill = self.skill(q, ts, out);
                let a = self.agent(m);
                a.want.remove(&skill);
                if a.want.is_empty() {
                    // Removed from its last queue, the member is gone from Asterisk and
                    // its pause with it: added again, it starts unpaused (or PAUSED).
                    a.paused = None;
                }
                self.sync_login(m, ts, out);
            }
            Event::Pause { reason, .. } => {
                let Some(m) = l.member else {
                    return self.mark(ts, out);
                };
                let code = self.map.aux(reason);
                let a = self.agent(m);
                if a.paused != Some(code) {
                    a.paused = Some(code);
                    if a.idle() && !a.wire.is_empty() {
                        let id = a.id;
                        out.push((
                            ts,
                            EventKind::AgentState {
                                agent: id,
                                state: AgentState::Aux(code),
                                skill: 0,
                            },
                        ));
                    }
                }
            }
            Event::Unpause { .. } => {
                let Some(m) = l.member else {
                    return self.mark(ts, out);
                };
                let a = self.agent(m);
                if a.paused.is_some() {
                    a.paused = None;
                    if a.idle() && !a.wire.is_empty() {
                        let id = a.id;
                        out.push((
                            ts,
                            EventKind::AgentState {
                                agent: id,
                                state: AgentState::Avail,
                                skill: 0,
                            },
                        ));
                    }
                }
            }
            Event::QueueStart => {
                self.stats.restarts += 1;
                // Asterisk restarted: every call it had is gone, and the log will never
                // say how each ended. They end now, and the interval is not exact.
                let mut cut: Vec<Call> = self.calls.drain().map(|(_, c)| c).collect();
                cut.sort_by_key(|c| c.wire);
                self.dids.clear();
                if cut.iter().any(|c| !matches!(c.phase, Phase::Exited { .. })) {
                    self.mark(ts, out);
                }
                for c in cut {
                    match c.phase {
                        Phase::Queued | Phase::Exited { .. } => {
                            out.push((ts, EventKind::CallDisconnected { call: c.wire }));
                        }
                        Phase::Connected { member, .. } => {
                            out.push((
                                ts,
                                EventKind::CallReleased {
                                    call: c.wire,
                                    by: ReleasedBy::Agent,
                                },
                            ));
                            self.agent(&member).busy = None;
                            self.go_idle(&member, ts, out);
                        }
                    }
                }
            }
        }
    }
}

/// A name cut to the wire's 64 bytes, at a character boundary.
fn truncate(s: &str) -> String {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

impl crate::sim::Snapshot for Translator {
    fn snapshot(&self) -> Vec<Frame> {
        Translator::snapshot(self)
    }
}

#[cfg(test)]
#[path = "translate_tests.rs"]
mod tests;
