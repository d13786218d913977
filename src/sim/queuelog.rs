//! The simulator's workload as the queue log Asterisk would write for it, and the ground
//! truth restricted to what a queue log can express (issue #16, the chain proof:
//! simulator -> queue log -> `cms-asterisk` -> two `cms collect` = this truth).
//!
//! [`QueueLog`] reads the generator's own event stream (the frames it emits for the
//! links) and writes, for each event, the lines Asterisk's `app_queue` logs for it, in
//! the format of Asterisk's "Queue Logs" documentation that `asterisk::parse` decodes.
//! It shares nothing with the bridge's translator: the truth it is compared with is the
//! simulator's own (`truth.rs`), restricted by [`QueueLog::restrict`] to the items
//! docs/asterisk.md calls exact ([`crate::asterisk::exact`]). No I/O.
//!
//! What a queue log cannot express is kept out of the workload: [`check_profile`]
//! refuses a profile that has it (vector delay, overflow, transfers, several trunk
//! groups). What Asterisk does not log is left out of the log and of the compared items:
//! rings that were answered (only the CONNECT's ring time), holds, conferences, ACW
//! (Asterisk's `wrapuptime`: the mapping's `wrapup_seconds`, see [`mapping`]).
//!
//! An Asterisk restart (`QUEUESTART`) at a chosen time ends every call Asterisk has:
//! the log says nothing more of them. The simulated world does not restart (its calls go
//! on, their agents stay busy), so from the restart until the last of those calls is
//! complete in the simulated world the truth describes another world than the log: those
//! intervals are `unknown_entity` in the restricted truth, not compared.

use super::profile::Profile;
use super::truth::ClosedInterval;
use crate::asterisk::exact;
use crate::asterisk::mapping::{Mapping, QueueMap};
use crate::domain::Reason;
use crate::items::TABLES;
use crate::proto::{decode_frame, AgentState, Decoded, Event, EventKind, Frame, ReleasedBy};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;

/// The queue of skill `s`.
pub fn queue_name(skill: u16) -> String {
    format!("q{skill}")
}

/// The member (as `app_queue` names a dynamic PJSIP member) of agent `a`: the bridge's
/// fixed rule makes it agent `a` again.
pub fn member(agent: u32) -> String {
    format!("PJSIP/{agent}")
}

/// The DID of VDN `v` (FreePBX's `DID` line before ENTERQUEUE).
pub fn did(vdn: u16) -> String {
    format!("5550{vdn:03}")
}

/// The pause reason of AUX reason code `r` (0: a pause without a reason).
pub fn pause_reason(r: u8) -> String {
    if r == 0 {
        String::new()
    } else {
        format!("Break{r}")
    }
}

/// Whether agent `a` pauses in all its queues at once (an odd number) or queue by queue
/// (an even one). Asterisk logs both: `QueuePauseMember`/`PauseQueueMember` (AMI, CLI,
/// dialplan) without a queue writes one `PAUSEALL` line (queue `NONE`) and then `PAUSE`
/// in every queue of the member (`apps/app_queue.c`, `set_member_paused`, which logs the
/// ALL line "on the first found entry", before the first queue's PAUSE); with a queue,
/// `PAUSE` in that queue only, so an agent app that pauses each queue by name writes only
/// those. Likewise `UNPAUSEALL` / `UNPAUSE`. The chain exercises both.
pub fn pauses_all_queues(a: u32) -> bool {
    a % 2 == 1
}

/// Why the workload of `p` cannot be written as a queue log, naming the profile field.
///
/// # Errors
/// The profile has something a queue log cannot express.
pub fn check_profile(p: &Profile) -> Result<(), String> {
    let no = |field: &str, why: &str| Err(format!("{field}: must be 0 for a queue log: {why}"));
    if p.vdns.vector_delay != 0 {
        return no(
            "vdns.vector_delay",
            "Asterisk logs a call from ENTERQUEUE, the time before it is not in the log",
        );
    }
    if p.vdns.overflow_after != 0 {
        return no(
            "vdns.overflow_after",
            "an Asterisk caller waits in one queue at a time",
        );
    }
    if p.calls.transfer_share != 0.0 {
        return no(
            "calls.transfer_share",
            "the simulator's transfer queues the same call again, which the bridge books as a new call",
        );
    }
    if p.trunks.groups != 1 {
        return Err("trunks.groups: must be 1 for a queue log: it names no trunk".into());
    }
    if p.vdns.count > 999 {
        return Err("vdns.count: at most 999 for a queue log (DIDs 5550001..5550999)".into());
    }
    Ok(())
}

/// The profile's ACW when every call has the same one (`acw_share` 0, or 1 with a
/// constant `acw`): Asterisk's `wrapuptime`, and the configured items are exact.
pub fn fixed_acw(p: &Profile) -> Option<u32> {
    if p.calls.acw_share == 0.0 {
        return Some(0);
    }
    match p.calls.acw {
        super::dist::Dist::Const { value } if p.calls.acw_share == 1.0 => {
            Some(value.round().max(0.0) as u32)
        }
        _ => None,
    }
}

/// The bridge's mapping for the log of `p`: queue `qN` is skill N, DID `5550vvv` VDN v,
/// pause reason `BreakR` AUX R, the wrap-up the profile's ACW when it is fixed (else 0).
pub fn mapping(p: &Profile) -> Mapping {
    let mut m = Mapping {
        acd: p.acd,
        service_level: p.skills.service_level,
        periods: p.skills.periods,
        wrapup_seconds: fixed_acw(p).unwrap_or(0),
        default_vdn: 1,
        vdn_service_level: p.vdns.service_level,
        ..Mapping::default()
    };
    for s in 1..=p.skills.count {
        m.queues.insert(
            queue_name(s),
            QueueMap {
                skill: s,
                service_level: None,
                wrapup_seconds: None,
            },
        );
    }
    for v in 1..=p.vdns.count {
        m.dids.insert(did(v), v);
    }
    for &r in &p.agents.aux_reasons {
        if r > 0 {
            m.aux_codes.insert(pause_reason(r), r);
        }
    }
    m
}

/// The mapping of [`mapping`] as the TOML file `cms-asterisk --mapping` reads.
pub fn mapping_toml(p: &Profile) -> String {
    let m = mapping(p);
    format!(
        "# cms-asterisk mapping for the queue log cms-linksim wrote from profile {:?}\n\
         # (docs/asterisk.md, \"The chain proof\").\n{}",
        p.name,
        toml::to_string(&m).expect("a mapping serialises")
    )
}

/// What the writer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub lines: u64,
    /// Calls that entered a queue.
    pub calls: u64,
    pub restarts: u64,
    /// Calls in progress at a restart: the log says nothing more of them.
    pub cut_calls: u64,
    /// Events a queue log cannot express (a full queue, a transfer, an overflow, a
    /// clock change): none with a profile [`check_profile`] accepts, unless a queue
    /// filled up.
    pub inexpressible: u64,
}

/// A call Asterisk has.
#[derive(Debug)]
struct CallLog {
    uid: String,
    skill: u16,
    enter_s: i64,
    origpos: usize,
    /// The member ringing or connected, and when the ring began.
    ring: Option<(u32, i64)>,
    answer_s: Option<i64>,
}

/// A call cut by a restart, still going on in the simulated world.
#[derive(Debug)]
struct Cut {
    agent: Option<u32>,
    ended: bool,
}

/// The queue-log writer. See the module doc.
#[derive(Debug)]
pub struct QueueLog {
    /// Restarts still to come, ms, ascending.
    restarts: VecDeque<i64>,
    /// Calls offered, not yet queued: their VDN.
    offered: HashMap<u32, u16>,
    calls: HashMap<u32, CallLog>,
    /// Each queue's waiting callers in order (positions).
    waiting: BTreeMap<u16, Vec<u32>>,
    /// Logged-in members: their queues and their pause.
    agents: HashMap<u32, (Vec<u16>, Option<u8>)>,
    cut: HashMap<u32, Cut>,
    /// Log-time ranges [from, until] (ms) the truth cannot be compared on: a restart
    /// until the last call it cut is complete in the simulated world (`None`: not yet).
    affected: Vec<(i64, Option<i64>)>,
    /// The configured items (ACW) are exact: the profile's ACW is fixed.
    configured: bool,
    text: String,
    pub stats: Stats,
}

impl QueueLog {
    /// A writer for the workload of `p` from `start_s`, with Asterisk restarting at each
    /// of `restarts_s`. The log begins with Asterisk's QUEUESTART at `start_s`.
    ///
    /// # Errors
    /// The profile has something a queue log cannot express ([`check_profile`]).
    pub fn new(p: &Profile, start_s: i64, restarts_s: &[i64]) -> Result<QueueLog, String> {
        check_profile(p)?;
        let mut r: Vec<i64> = restarts_s.iter().map(|s| s * 1000).collect();
        r.sort_unstable();
        let mut q = QueueLog {
            restarts: r.into(),
            offered: HashMap::new(),
            calls: HashMap::new(),
            waiting: BTreeMap::new(),
            agents: HashMap::new(),
            cut: HashMap::new(),
            affected: Vec::new(),
            configured: fixed_acw(p).is_some(),
            text: String::new(),
            stats: Stats::default(),
        };
        q.line(start_s, "NONE", "NONE", "NONE", "QUEUESTART", &[""]);
        Ok(q)
    }

    /// Whether the configured items (acwtime, i_acwtime) are compared.
    pub fn configured_exact(&self) -> bool {
        self.configured
    }

    /// The lines written since the last call, each ending in `\n`.
    pub fn take_text(&mut self) -> String {
        std::mem::take(&mut self.text)
    }

    fn line(&mut self, s: i64, callid: &str, queue: &str, member: &str, ev: &str, data: &[&str]) {
        let _ = write!(self.text, "{s}|{callid}|{queue}|{member}|{ev}");
        for d in data {
            self.text.push('|');
            self.text.push_str(d);
        }
        self.text.push('\n');
        self.stats.lines += 1;
    }

    /// Reads the encoded event frames the generator emitted (`gen.out`).
    ///
    /// # Panics
    /// The bytes are not whole frames (the generator only writes whole frames).
    pub fn feed(&mut self, mut frames: &[u8]) {
        while !frames.is_empty() {
            match decode_frame(frames).expect("the generator's frames decode") {
                Decoded::Frame(Frame::Event(e), n) => {
                    self.event(&e);
                    frames = &frames[n..];
                }
                Decoded::Frame(_, n) => frames = &frames[n..],
                Decoded::Incomplete => panic!("a partial frame from the generator"),
            }
        }
    }

    /// Log time has reached `now_ms` (the generator's clock): a restart due by then is
    /// written.
    pub fn advance(&mut self, now_ms: i64) {
        while let Some(&r) = self.restarts.front() {
            if r > now_ms {
                break;
            }
            self.restarts.pop_front();
            self.restart(r);
        }
    }

    /// Asterisk restarts: QUEUESTART, and every call it had is gone from the log.
    fn restart(&mut self, ms: i64) {
        self.stats.restarts += 1;
        self.line(ms / 1000, "NONE", "NONE", "NONE", "QUEUESTART", &[""]);
        self.waiting.clear();
        let calls: Vec<(u32, CallLog)> = self.calls.drain().collect();
        for (id, c) in calls {
            self.cut.insert(
                id,
                Cut {
                    agent: c.ring.map(|r| r.0),
                    ended: false,
                },
            );
            self.stats.cut_calls += 1;
        }
        if !self.cut.is_empty() && !matches!(self.affected.last(), Some((_, None))) {
            self.affected.push((ms, None));
        }
    }

    /// A cut call is over in the simulated world at `ms`.
    fn cut_done(&mut self, call: u32, ms: i64) {
        self.cut.remove(&call);
        if self.cut.is_empty() {
            if let Some((_, until @ None)) = self.affected.last_mut() {
                *until = Some(ms);
            }
        }
    }

    /// A cut call's caller side ended at `ms` (released, abandoned, disconnected): it is
    /// over once its agent, if it had one, is free too. `false`: `call` was not cut.
    fn cut_ended(&mut self, call: u32, ms: i64) -> bool {
        let Some(c) = self.cut.get_mut(&call) else {
            return false;
        };
        c.ended = true;
        if c.agent.is_none() {
            self.cut_done(call, ms);
        }
        true
    }

    /// The cut call whose agent is `agent`, if any.
    fn cut_of_agent(&self, agent: u32) -> Option<u32> {
        self.cut
            .iter()
            .find(|(_, c)| c.agent == Some(agent))
            .map(|(id, _)| *id)
    }

    fn position(&self, call: u32, skill: u16) -> usize {
        self.waiting
            .get(&skill)
            .and_then(|w| w.iter().position(|&c| c == call))
            .map_or(1, |i| i + 1)
    }

    fn leave_queue(&mut self, call: u32, skill: u16) {
        if let Some(w) = self.waiting.get_mut(&skill) {
            w.retain(|&c| c != call);
        }
    }

    /// One event of the simulated switch, at its time.
    pub fn event(&mut self, e: &Event) {
        self.advance(e.ts);
        let (ms, s) = (e.ts, e.ts.div_euclid(1000));
        match &e.kind {
            EventKind::CallOffered { call, vdn, .. } => {
                self.offered.insert(*call, *vdn);
            }
            EventKind::CallQueued {
                call,
                skill,
                priority,
            } => {
                let Some(vdn) = self.offered.remove(call) else {
                    // Queued again (overflow, transfer): not one queue at a time.
                    self.stats.inexpressible += 1;
                    return;
                };
                if *priority != 1 {
                    self.stats.inexpressible += 1;
                }
                let uid = format!("{s}.{}", u64::from(*call) * 2);
                let (q, pos) = (queue_name(*skill), {
                    let w = self.waiting.entry(*skill).or_default();
                    w.push(*call);
                    w.len()
                });
                self.line(s, &uid, &q, "NONE", "DID", &[&did(vdn)]);
                let callerid = format!("0700{:06}", call % 1_000_000);
                self.line(
                    s,
                    &uid,
                    &q,
                    "NONE",
                    "ENTERQUEUE",
                    &["", &callerid, &pos.to_string()],
                );
                self.stats.calls += 1;
                self.calls.insert(
                    *call,
                    CallLog {
                        uid,
                        skill: *skill,
                        enter_s: s,
                        origpos: pos,
                        ring: None,
                        answer_s: None,
                    },
                );
            }
            EventKind::CallRinging { call, agent, skill } => {
                if let Some(c) = self.cut.get_mut(call) {
                    c.agent = Some(*agent);
                } else if let Some(c) = self.calls.get_mut(call) {
                    if c.skill != *skill {
                        self.stats.inexpressible += 1;
                    }
                    c.ring = Some((*agent, s));
                }
            }
            EventKind::CallAnswered { call, .. } => {
                let Some(c) = self.calls.get_mut(call) else {
                    return;
                };
                let Some((agent, ring_s)) = c.ring else {
                    self.stats.inexpressible += 1;
                    return;
                };
                c.answer_s = Some(s);
                let (uid, skill, hold) = (c.uid.clone(), c.skill, s - c.enter_s);
                self.leave_queue(*call, skill);
                // The member's channel: the next unique id after the caller's.
                let chan = format!("{s}.{}", u64::from(*call) * 2 + 1);
                self.line(
                    s,
                    &uid,
                    &queue_name(skill),
                    &member(agent),
                    "CONNECT",
                    &[&hold.to_string(), &chan, &(s - ring_s).to_string()],
                );
            }
            EventKind::CallReleased { call, by } => {
                if self.cut_ended(*call, ms) {
                    return;
                }
                let Some(c) = self.calls.remove(call) else {
                    return;
                };
                let (Some((agent, _)), Some(ans)) = (c.ring, c.answer_s) else {
                    self.stats.inexpressible += 1;
                    return;
                };
                let ev = match by {
                    ReleasedBy::Caller => "COMPLETECALLER",
                    _ => "COMPLETEAGENT",
                };
                self.line(
                    s,
                    &c.uid,
                    &queue_name(c.skill),
                    &member(agent),
                    ev,
                    &[
                        &(ans - c.enter_s).to_string(),
                        &(s - ans).to_string(),
                        &c.origpos.to_string(),
                    ],
                );
            }
            EventKind::CallAbandoned { call } => {
                if self.cut_ended(*call, ms) {
                    return;
                }
                let Some(c) = self.calls.remove(call) else {
                    self.offered.remove(call);
                    self.stats.inexpressible += 1;
                    return;
                };
                let q = queue_name(c.skill);
                if let Some((agent, ring_s)) = c.ring {
                    // The caller hung up while the member's phone rang.
                    let ring_ms = (s - ring_s) * 1000;
                    self.line(
                        s,
                        &c.uid,
                        &q,
                        &member(agent),
                        "RINGCANCELED",
                        &[&ring_ms.to_string()],
                    );
                }
                let pos = self.position(*call, c.skill);
                self.leave_queue(*call, c.skill);
                self.line(
                    s,
                    &c.uid,
                    &q,
                    "NONE",
                    "ABANDON",
                    &[
                        &pos.to_string(),
                        &c.origpos.to_string(),
                        &(s - c.enter_s).to_string(),
                    ],
                );
            }
            EventKind::CallBusy { call } | EventKind::CallDisconnected { call } => {
                // A call that never entered a queue (its queue was full).
                self.offered.remove(call);
                if !self.cut_ended(*call, ms) {
                    self.stats.inexpressible += 1;
                }
            }
            EventKind::CallTransferred { .. } | EventKind::ClockChange { .. } => {
                self.stats.inexpressible += 1;
            }
            // Asterisk logs neither holds nor conferences.
            EventKind::CallHeld { .. }
            | EventKind::CallRetrieved { .. }
            | EventKind::CallConferenced { .. } => {}
            EventKind::AgentLogin { agent, skills } => {
                let queues: Vec<u16> = skills.iter().map(|l| l.skill).collect();
                for &q in &queues {
                    self.line(
                        s,
                        "NONE",
                        &queue_name(q),
                        &member(*agent),
                        "ADDMEMBER",
                        &[""],
                    );
                }
                self.agents.insert(*agent, (queues, None));
            }
            EventKind::AgentLogout { agent, .. } => {
                if let Some(c) = self.cut_of_agent(*agent) {
                    if self.cut[&c].ended {
                        self.cut_done(c, ms);
                    }
                }
                if let Some((queues, _)) = self.agents.remove(agent) {
                    for q in queues {
                        self.line(
                            s,
                            "NONE",
                            &queue_name(q),
                            &member(*agent),
                            "REMOVEMEMBER",
                            &[""],
                        );
                    }
                }
            }
            EventKind::AgentState { agent, state, .. } => {
                if matches!(state, AgentState::Avail | AgentState::Aux(_)) {
                    if let Some(c) = self.cut_of_agent(*agent) {
                        if self.cut[&c].ended {
                            self.cut_done(c, ms);
                        }
                    }
                }
                let Some((queues, paused)) = self.agents.get(agent).cloned() else {
                    return;
                };
                let (ev, reason, now) = match *state {
                    AgentState::Aux(r) if paused != Some(r) => ("PAUSE", pause_reason(r), Some(r)),
                    AgentState::Avail if paused.is_some() => ("UNPAUSE", String::new(), None),
                    // Ring, ACD and ACW are not logged; an agent that leaves ACW for
                    // AVAIL was never paused.
                    _ => return,
                };
                if pauses_all_queues(*agent) {
                    // app_queue's set_member_paused without a queue: one PAUSEALL (queue
                    // NONE) before the member's first queue, then PAUSE in each queue.
                    let all = if now.is_some() {
                        "PAUSEALL"
                    } else {
                        "UNPAUSEALL"
                    };
                    self.line(s, "NONE", "NONE", &member(*agent), all, &[&reason]);
                }
                for q in queues {
                    self.line(s, "NONE", &queue_name(q), &member(*agent), ev, &[&reason]);
                }
                if let Some(a) = self.agents.get_mut(agent) {
                    a.1 = now;
                }
            }
            EventKind::SkillDef(_) | EventKind::VdnDef(_) | EventKind::TrunkGroupDef(_) => {}
        }
    }

    /// Restricts a truth interval of `len_s` seconds to what a queue log can express:
    /// the items docs/asterisk.md calls exact (and configured, when the ACW is fixed),
    /// every other item 0, rows left all 0 dropped (every `htkgrp` row); an interval a
    /// restart made incomparable is `unknown_entity`.
    pub fn restrict(&self, ci: &mut ClosedInterval, len_s: i64) {
        for (def, rows) in TABLES.iter().zip(ci.rows.iter_mut()) {
            let keep: Vec<bool> = def
                .items
                .iter()
                .map(|(n, _)| exact::is_exact(def.name, n, self.configured))
                .collect();
            for (_, vals) in rows.iter_mut() {
                for (v, k) in vals.iter_mut().zip(&keep) {
                    if !k {
                        *v = 0;
                    }
                }
            }
            rows.retain(|(_, v)| v.iter().any(|&x| x != 0));
        }
        let (from, until) = (ci.istart * 1000, (ci.istart + len_s) * 1000);
        let hit = self
            .affected
            .iter()
            .any(|&(a, b)| a < until && from <= b.unwrap_or(i64::MAX));
        if hit && !ci.reasons.contains(&Reason::UnknownEntity) {
            ci.reasons.push(Reason::UnknownEntity);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::SkillLevel;

    fn profile() -> Profile {
        Profile::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/asterisk.toml"),
        )
        .unwrap()
    }

    fn ev(ts_s: i64, kind: EventKind) -> Event {
        Event {
            seq: 0,
            ts: ts_s * 1000,
            kind,
        }
    }

    const T0: i64 = 1_762_077_000; // 2025-11-02 09:50:00 UTC

    /// A member logs in, a call enters, rings 4 s, is answered after 16 s, the caller
    /// hangs up after 360 s; a break: the exact lines Asterisk writes.
    #[test]
    fn a_call_answered_and_completed() {
        let mut q = QueueLog::new(&profile(), T0, &[]).unwrap();
        let call = 7;
        for e in [
            ev(
                T0,
                EventKind::AgentLogin {
                    agent: 100,
                    skills: vec![SkillLevel { skill: 1, level: 1 }],
                },
            ),
            ev(
                T0,
                EventKind::AgentState {
                    agent: 100,
                    state: AgentState::Avail,
                    skill: 0,
                },
            ),
            ev(
                T0 + 480,
                EventKind::CallOffered {
                    call,
                    vdn: 2,
                    tkgrp: 1,
                },
            ),
            ev(
                T0 + 480,
                EventKind::CallQueued {
                    call,
                    skill: 1,
                    priority: 1,
                },
            ),
            ev(
                T0 + 492,
                EventKind::CallRinging {
                    call,
                    agent: 100,
                    skill: 1,
                },
            ),
            ev(
                T0 + 492,
                EventKind::AgentState {
                    agent: 100,
                    state: AgentState::Ring,
                    skill: 1,
                },
            ),
            ev(T0 + 496, EventKind::CallAnswered { call, agent: 100 }),
            ev(T0 + 500, EventKind::CallHeld { call, agent: 100 }),
            ev(T0 + 510, EventKind::CallRetrieved { call, agent: 100 }),
            ev(
                T0 + 856,
                EventKind::CallReleased {
                    call,
                    by: ReleasedBy::Caller,
                },
            ),
            ev(
                T0 + 856,
                EventKind::AgentState {
                    agent: 100,
                    state: AgentState::Acw,
                    skill: 1,
                },
            ),
            ev(
                T0 + 916,
                EventKind::AgentState {
                    agent: 100,
                    state: AgentState::Aux(1),
                    skill: 0,
                },
            ),
            ev(
                T0 + 1000,
                EventKind::AgentState {
                    agent: 100,
                    state: AgentState::Avail,
                    skill: 0,
                },
            ),
            ev(
                T0 + 1200,
                EventKind::AgentLogout {
                    agent: 100,
                    reason: 0,
                },
            ),
        ] {
            q.event(&e);
        }
        let want = "\
1762077000|NONE|NONE|NONE|QUEUESTART|
1762077000|NONE|q1|PJSIP/100|ADDMEMBER|
1762077480|1762077480.14|q1|NONE|DID|5550002
1762077480|1762077480.14|q1|NONE|ENTERQUEUE||0700000007|1
1762077496|1762077480.14|q1|PJSIP/100|CONNECT|16|1762077496.15|4
1762077856|1762077480.14|q1|PJSIP/100|COMPLETECALLER|16|360|1
1762077916|NONE|q1|PJSIP/100|PAUSE|Break1
1762078000|NONE|q1|PJSIP/100|UNPAUSE|
1762078200|NONE|q1|PJSIP/100|REMOVEMEMBER|
";
        let got = q.take_text();
        assert_eq!(got, want);
        assert_eq!(q.stats.inexpressible, 0);
        // Every line is one the bridge's parser reads.
        for l in got.lines() {
            crate::asterisk::parse::parse_line(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        }
    }

    /// An agent that pauses in all its queues at once: PAUSEALL then PAUSE per queue,
    /// as app_queue writes them; a new reason while paused, then UNPAUSEALL. The
    /// bridge's translator books one AUX state per change, with the reason's code.
    #[test]
    fn a_pause_in_all_queues_is_pauseall() {
        let mut q = QueueLog::new(&profile(), T0, &[]).unwrap();
        let state = |ts, state| {
            ev(
                ts,
                EventKind::AgentState {
                    agent: 101,
                    state,
                    skill: 0,
                },
            )
        };
        let skills = vec![
            SkillLevel { skill: 1, level: 1 },
            SkillLevel { skill: 2, level: 1 },
        ];
        for e in [
            ev(T0, EventKind::AgentLogin { agent: 101, skills }),
            state(T0, AgentState::Avail),
            state(T0 + 60, AgentState::Aux(1)),
            state(T0 + 90, AgentState::Aux(2)),
            state(T0 + 120, AgentState::Avail),
        ] {
            q.event(&e);
        }
        let want = "\
1762077000|NONE|NONE|NONE|QUEUESTART|
1762077000|NONE|q1|PJSIP/101|ADDMEMBER|
1762077000|NONE|q2|PJSIP/101|ADDMEMBER|
1762077060|NONE|NONE|PJSIP/101|PAUSEALL|Break1
1762077060|NONE|q1|PJSIP/101|PAUSE|Break1
1762077060|NONE|q2|PJSIP/101|PAUSE|Break1
1762077090|NONE|NONE|PJSIP/101|PAUSEALL|Break2
1762077090|NONE|q1|PJSIP/101|PAUSE|Break2
1762077090|NONE|q2|PJSIP/101|PAUSE|Break2
1762077120|NONE|NONE|PJSIP/101|UNPAUSEALL|
1762077120|NONE|q1|PJSIP/101|UNPAUSE|
1762077120|NONE|q2|PJSIP/101|UNPAUSE|
";
        let got = q.take_text();
        assert_eq!(got, want);
        let mut tr = crate::asterisk::Translator::new(mapping(&profile()));
        let mut out = Vec::new();
        for (i, l) in got.lines().enumerate() {
            tr.line(i as u64 + 1, l, &mut out).unwrap();
        }
        let states: Vec<(i64, AgentState)> = out
            .iter()
            .filter_map(|(ts, k)| match k {
                EventKind::AgentState {
                    agent: 101, state, ..
                } => Some((ts / 1000 - T0, *state)),
                _ => None,
            })
            .collect();
        assert_eq!(
            states,
            vec![
                // A login per ADDMEMBER (one queue, then both), each with its state.
                (0, AgentState::Avail),
                (0, AgentState::Avail),
                (60, AgentState::Aux(1)),
                (90, AgentState::Aux(2)),
                (120, AgentState::Avail),
            ]
        );
    }

    /// An abandon while ringing, and a restart with a call connected: the call's later
    /// events are not logged, and the truth is incomparable until it is over.
    #[test]
    fn abandon_and_restart() {
        let mut q = QueueLog::new(&profile(), T0, &[T0 + 100]).unwrap();
        let login = |a| EventKind::AgentLogin {
            agent: a,
            skills: vec![SkillLevel { skill: 2, level: 1 }],
        };
        let queued = |call| EventKind::CallQueued {
            call,
            skill: 2,
            priority: 1,
        };
        let offered = |call| EventKind::CallOffered {
            call,
            vdn: 1,
            tkgrp: 1,
        };
        let state = |agent, state| EventKind::AgentState {
            agent,
            state,
            skill: 2,
        };
        for e in [
            ev(T0, login(5)),
            ev(T0 + 10, offered(1)),
            ev(T0 + 10, queued(1)),
            ev(T0 + 11, offered(2)),
            ev(T0 + 11, queued(2)),
            ev(
                T0 + 20,
                EventKind::CallRinging {
                    call: 2,
                    agent: 5,
                    skill: 2,
                },
            ),
            ev(T0 + 23, EventKind::CallAbandoned { call: 2 }),
            ev(T0 + 23, state(5, AgentState::Avail)),
            ev(
                T0 + 24,
                EventKind::CallRinging {
                    call: 1,
                    agent: 5,
                    skill: 2,
                },
            ),
            ev(T0 + 25, EventKind::CallAnswered { call: 1, agent: 5 }),
            // Asterisk restarts at T0 + 100; the call goes on in the simulated world.
            ev(
                T0 + 400,
                EventKind::CallReleased {
                    call: 1,
                    by: ReleasedBy::Agent,
                },
            ),
            ev(T0 + 400, state(5, AgentState::Acw)),
            ev(T0 + 430, state(5, AgentState::Avail)),
        ] {
            q.event(&e);
        }
        let want = "\
1762077000|NONE|NONE|NONE|QUEUESTART|
1762077000|NONE|q2|PJSIP/5|ADDMEMBER|
1762077010|1762077010.2|q2|NONE|DID|5550001
1762077010|1762077010.2|q2|NONE|ENTERQUEUE||0700000001|1
1762077011|1762077011.4|q2|NONE|DID|5550001
1762077011|1762077011.4|q2|NONE|ENTERQUEUE||0700000002|2
1762077023|1762077011.4|q2|PJSIP/5|RINGCANCELED|3000
1762077023|1762077011.4|q2|NONE|ABANDON|2|2|12
1762077025|1762077010.2|q2|PJSIP/5|CONNECT|15|1762077025.3|1
1762077100|NONE|NONE|NONE|QUEUESTART|
";
        assert_eq!(q.take_text(), want);
        assert_eq!(q.stats.cut_calls, 1);
        let ms = |s: i64| s * 1000;
        assert_eq!(q.affected, vec![(ms(T0 + 100), Some(ms(T0 + 430)))]);
        // The truth of an interval the restart touched is not compared; others are,
        // on their exact items only.
        let ci = |istart: i64| ClosedInterval {
            istart,
            rows: [
                vec![(vec![2], vec![1; crate::items::SPLIT.items.len()])],
                vec![],
                vec![],
                vec![(vec![1], vec![1; crate::items::TKGRP.items.len()])],
            ],
            reasons: vec![],
        };
        let mut c = ci(T0 - 600);
        q.restrict(&mut c, 900);
        assert_eq!(c.reasons, vec![Reason::UnknownEntity]);
        let mut c = ci(T0 + 900);
        q.restrict(&mut c, 900);
        assert!(c.reasons.is_empty());
        assert!(c.rows[3].is_empty(), "htkgrp has no exact item");
        let split = &crate::items::SPLIT;
        for ((name, _), v) in split.items.iter().zip(&c.rows[0][0].1) {
            let want = exact::is_exact("split", name, true) as i64;
            assert_eq!(*v, want, "{name}");
        }
    }

    #[test]
    fn what_a_queue_log_cannot_express_is_refused() {
        let tiny = Profile::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/tiny.toml"),
        )
        .unwrap();
        let e = check_profile(&tiny).unwrap_err();
        assert!(e.starts_with("vdns.vector_delay"), "{e}");
        let p = profile();
        check_profile(&p).unwrap();
        assert_eq!(fixed_acw(&p), Some(30));
        // The mapping file round-trips through the bridge's own parser.
        let m = Mapping::parse(&mapping_toml(&p)).unwrap();
        assert_eq!(m, mapping(&p));
        assert_eq!(m.fixed_skill("q2"), Some(2));
        assert_eq!(m.vdn(Some("5550003")), 3);
        assert_eq!(m.aux("Break2"), 2);
        assert_eq!(m.wrapup_seconds, 30);
    }
}
