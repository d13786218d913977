//! The workload generator: a deterministic discrete-event simulation of a contact centre
//! that emits the switch's event stream (encoded frames) and feeds the ground truth.
//!
//! Owns the simulated world (calls, queues, agents, trunks) and the order of events
//! (issue #3, "Event emission rules"). It knows nothing of sockets, wall clocks or links:
//! the switch (`switch.rs`) drives it to a target switch time, drains the encoded frames
//! and applies faults when [`Generator::run_until`] stops at one. Same profile + seed +
//! start + duration gives byte-identical output.

use super::dist::{self, NEVER};
use super::profile::{FullAction, Profile};
use super::truth::{CallEnd, CallTimeline, Ring, Segment, Truth, TruthConfig};
use crate::proto::{
    AgentSnapshot, AgentState, CallPhase, CallSnapshot, Event, EventKind, Frame, ReleasedBy,
    SkillDef, SkillLevel, TrunkGroupDef, VdnDef,
};
use bytes::BytesMut;
use chrono::{Offset, TimeZone};
use chrono_tz::Tz;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

/// Why [`Generator::run_until`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Everything up to the target time is generated.
    Reached,
    /// The event budget ran out first; call again.
    Budget,
    /// Fault number `i` is due now (nothing at its instant has been generated after it).
    Fault(usize),
}

/// Something scheduled in the simulation. Call actions carry the call's slot and id (a
/// reused slot makes old timers stale) and the segment they belong to.
#[derive(Debug, Clone, Copy)]
enum Act {
    Arrival,
    VectorDone { slot: u32, id: u32 },
    Overflow { slot: u32, id: u32, seg: u8 },
    Patience { slot: u32, id: u32, seg: u8 },
    Answer { slot: u32, id: u32, seg: u8 },
    Hold { slot: u32 },
    Retrieve { slot: u32 },
    Conference { slot: u32 },
    TalkEnd { slot: u32 },
    AcwEnd { agent: u32, token: u32 },
    Login { agent: u32, token: u32 },
    ShiftEnd { agent: u32, token: u32 },
    BreakStart { agent: u32, token: u32 },
    BreakEnd { agent: u32, token: u32 },
    Fault(u32),
}

/// A timer: ordered by time, then by scheduling order (deterministic FIFO at equal times).
#[derive(Debug, Clone, Copy)]
struct Timer {
    t: i64,
    n: u64,
    a: Act,
}
impl PartialEq for Timer {
    fn eq(&self, o: &Self) -> bool {
        self.t == o.t && self.n == o.n
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Timer {
    // Reversed: BinaryHeap is a max-heap, we want the earliest first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.t, o.n).cmp(&(self.t, self.n))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Vector,
    Queued,
    Ringing,
    Connected,
    /// The call ended (trunk released); answered segments may still be in ACW.
    Ended,
    /// The slot is free.
    Free,
}

/// A call in the simulated world, with its timeline for the truth.
#[derive(Debug)]
struct CallRt {
    id: u32,
    phase: Phase,
    vdn: u16,
    tkgrp: u16,
    /// Index of the current segment (0 also while in vector before the first queue).
    seg: u8,
    /// Skills the current segment is queued to.
    queued: [u16; 2],
    nq: u8,
    /// Agent index ringing/connected, and the delivering skill.
    agent: u32,
    skill: u16,
    /// Answered segments whose completion (end of ACW) is still to come.
    pending: u8,
    transferred: bool,
    /// In progress when the switch clock changed: its bookings land in incomplete
    /// intervals.
    across_clock: bool,
    tl: CallTimeline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ast {
    Out,
    Avail,
    Ring,
    Acd,
    Acw,
    Aux(u8),
}

#[derive(Debug)]
struct AgentRt {
    id: u32,
    skills: Vec<SkillLevel>,
    st: Ast,
    work_skill: u16,
    /// Call slot and segment whose ACW this agent is in.
    acw_of: (u32, u8),
    /// When the agent last became available (longest-idle agent gets the call).
    idle_since: i64,
    pending_break: Option<u8>,
    pending_logout: bool,
    /// Bumped at logout so the timers of the finished shift go stale.
    token: u32,
    /// Index into the profile's shifts, or None = logged in all run.
    shift: Option<usize>,
    /// When the current shift ends (switch seconds).
    shift_end: i64,
}

#[derive(Debug)]
struct SkillRt {
    def: SkillDef,
    /// (queued at, slot, id, seg); entries go stale lazily when the call leaves.
    queue: VecDeque<(i64, u32, u32, u8)>,
    /// Live calls queued (the stale entries not counted).
    count: u32,
    /// Agent indices and their level in this skill.
    members: Vec<(u32, u8)>,
}

#[derive(Debug)]
struct VdnRt {
    def: VdnDef,
    primary: u16,
    backup: u16,
    tkgrp: u16,
}

/// Counters for the summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub calls: u64,
    pub blocked: u64,
    pub events: u64,
}

/// The simulation. See the module doc.
pub struct Generator {
    prof: Profile,
    tz: Tz,
    rng: SmallRng,
    /// Switch time reached, seconds (on the simulator's own, never-changed clock).
    now: i64,
    start: i64,
    end: i64,
    /// Added to every emitted timestamp (clock-change faults), seconds.
    pub clock_shift: i64,
    heap: BinaryHeap<Timer>,
    order: u64,
    calls: Vec<CallRt>,
    free: Vec<u32>,
    next_call: u32,
    agents: Vec<AgentRt>,
    skills: Vec<SkillRt>,
    vdns: Vec<VdnRt>,
    trunks: Vec<(TrunkGroupDef, u16)>,
    /// Arrival process: fractional seconds since start of the next candidate.
    arr_clock: f64,
    rate_max: f64,
    max_factor: f64,
    /// Cached time-of-day factor and the UTC second it is valid until.
    factor: f64,
    factor_until: i64,
    epoch: u64,
    seq: u64,
    /// Encoded event frames not yet taken by the switch.
    pub out: BytesMut,
    pub counts: Counts,
    pub truth: Option<Truth>,
}

/// The profile's skills, numbered from 1, with no members yet.
fn build_skills(prof: &Profile) -> Vec<SkillRt> {
    let sk = &prof.skills;
    (1..=sk.count)
        .map(|i| SkillRt {
            def: SkillDef {
                skill: i,
                service_level: sk.service_level,
                periods: sk.periods,
                name: format!("skill {i}"),
            },
            queue: VecDeque::new(),
            count: 0,
            members: Vec::new(),
        })
        .collect()
}

/// The VDNs: VDN `v` routes to skill `v` (cycling), backs up to the next skill and
/// takes its calls on trunk group `v` (cycling).
fn build_vdns(prof: &Profile) -> Vec<VdnRt> {
    let ns = prof.skills.count;
    let ng = prof.trunks.groups;
    (1..=prof.vdns.count)
        .map(|v| VdnRt {
            def: VdnDef {
                vdn: v,
                service_level: prof.vdns.service_level,
                name: format!("vdn {v}"),
            },
            primary: (v - 1) % ns + 1,
            backup: if ns > 1 { v % ns + 1 } else { 0 },
            tkgrp: (v - 1) % ng + 1,
        })
        .collect()
}

/// The trunk groups, each with no trunk in use.
fn build_trunks(prof: &Profile) -> Vec<(TrunkGroupDef, u16)> {
    (1..=prof.trunks.groups)
        .map(|g| {
            (
                TrunkGroupDef {
                    tkgrp: g,
                    trunks: prof.trunks.trunks_per_group,
                    name: format!("trunk group {g}"),
                },
                0,
            )
        })
        .collect()
}

/// The agents, logged out: agent `i` has primary skill `i` (cycling) at level 1 and
/// further skills drawn at level 2, and joins each skill's members.
fn build_agents(prof: &Profile, rng: &mut SmallRng, skills: &mut [SkillRt]) -> Vec<AgentRt> {
    let ag = &prof.agents;
    let ns = prof.skills.count;
    let mut agents = Vec::with_capacity(ag.count as usize);
    for i in 0..ag.count {
        let primary = (i % ns as u32) as u16 + 1;
        let mut sks = vec![SkillLevel {
            skill: primary,
            level: 1,
        }];
        while sks.len() < ag.skills_per_agent as usize {
            let s = rng.gen_range(1..=ns);
            if !sks.iter().any(|x| x.skill == s) {
                sks.push(SkillLevel { skill: s, level: 2 });
            }
        }
        for s in &sks {
            skills[s.skill as usize - 1].members.push((i, s.level));
        }
        agents.push(AgentRt {
            id: ag.first_id + i,
            skills: sks,
            st: Ast::Out,
            work_skill: 0,
            acw_of: (0, 0),
            idle_since: 0,
            pending_break: None,
            pending_logout: false,
            token: 0,
            shift: shift_of(prof, i),
            shift_end: NEVER,
        });
    }
    agents
}

/// The shift of agent `i`: the agents are spread over the shifts by their shares, in
/// order (None when the profile has no shifts: logged in all run).
fn shift_of(prof: &Profile, i: u32) -> Option<usize> {
    let ag = &prof.agents;
    if ag.shifts.is_empty() {
        return None;
    }
    let total_share: f64 = ag.shifts.iter().map(|s| s.share).sum();
    let x = (i as f64 + 0.5) / ag.count as f64 * total_share;
    let mut acc = 0.0;
    for (j, s) in ag.shifts.iter().enumerate() {
        acc += s.share;
        if x < acc {
            return Some(j);
        }
    }
    Some(ag.shifts.len() - 1)
}

/// The ground truth of a run, with the translations it books against.
fn new_truth(prof: &Profile, tz: Tz, minutes: u32, skills: &[SkillRt], start_s: i64) -> Truth {
    Truth::new(
        TruthConfig {
            tz,
            interval_minutes: minutes,
            acd: prof.acd,
            skills: skills.iter().map(|s| s.def.clone()).collect(),
            vdn_service_level: (1..=prof.vdns.count)
                .map(|v| (v, prof.vdns.service_level))
                .collect(),
            trunks: (1..=prof.trunks.groups)
                .map(|g| (g, prof.trunks.trunks_per_group))
                .collect(),
        },
        start_s * 1000,
    )
}

impl Generator {
    /// Builds the world and schedules the first actions; emits nothing yet (call
    /// [`start_epoch`](Self::start_epoch)).
    pub fn new(
        prof: &Profile,
        seed: u64,
        start_s: i64,
        end_s: i64,
        truth_minutes: Option<u32>,
    ) -> Generator {
        let tz = prof.tz();
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut skills = build_skills(prof);
        let vdns = build_vdns(prof);
        let trunks = build_trunks(prof);
        // The only draws before the first timer: each agent's further skills, in order.
        let agents = build_agents(prof, &mut rng, &mut skills);
        let max_factor = (0..24)
            .map(|h| prof.hourly_factor(h))
            .fold(0.0f64, f64::max)
            .max(1e-9);
        let truth = truth_minutes.map(|m| new_truth(prof, tz, m, &skills, start_s));
        let mut g = Generator {
            prof: prof.clone(),
            tz,
            rng,
            now: start_s,
            start: start_s,
            end: end_s,
            clock_shift: 0,
            heap: BinaryHeap::new(),
            order: 0,
            calls: Vec::new(),
            free: Vec::new(),
            next_call: 1,
            agents,
            skills,
            vdns,
            trunks,
            arr_clock: 0.0,
            rate_max: prof.calls.per_hour * max_factor / 3600.0,
            max_factor,
            factor: 0.0,
            factor_until: i64::MIN,
            epoch: 0,
            seq: 0,
            out: BytesMut::with_capacity(1 << 16),
            counts: Counts::default(),
            truth,
        };
        g.schedule_first_logins();
        g.next_arrival();
        g
    }

    /// Agents log in at the start if their shift covers it, else at their next shift.
    fn schedule_first_logins(&mut self) {
        let start_s = self.start;
        for i in 0..self.agents.len() as u32 {
            match self.agents[i as usize].shift {
                None => self.at(start_s, Act::Login { agent: i, token: 0 }),
                Some(k) => {
                    let (s, e) = self.shift_window(k, start_s);
                    let t = if s <= start_s && start_s < e {
                        start_s
                    } else {
                        s + self.jitter()
                    };
                    self.at(t, Act::Login { agent: i, token: 0 });
                }
            }
        }
    }

    /// The first epoch id is drawn from the seed, so runs are reproducible.
    pub fn new_epoch_id(&mut self) -> u64 {
        loop {
            let e: u64 = self.rng.gen();
            if e != 0 {
                return e;
            }
        }
    }

    /// Starts a new switch epoch: new epoch id, seq back to 1, the translations as the
    /// first events (SkillDef, VdnDef, TrunkGroupDef). Returns the epoch id.
    pub fn start_epoch(&mut self) -> u64 {
        self.epoch = self.new_epoch_id();
        self.seq = 0;
        for i in 0..self.skills.len() {
            let d = self.skills[i].def.clone();
            self.emit(EventKind::SkillDef(d));
        }
        for i in 0..self.vdns.len() {
            let d = self.vdns[i].def.clone();
            self.emit(EventKind::VdnDef(d));
        }
        for i in 0..self.trunks.len() {
            let d = self.trunks[i].0.clone();
            self.emit(EventKind::TrunkGroupDef(d));
        }
        self.epoch
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    /// Last sequence number generated in this epoch (0 = none).
    pub fn last_seq(&self) -> u64 {
        self.seq
    }
    /// Switch time reached, ms, as the switch shows it (clock shifts included).
    pub fn now_ms(&self) -> i64 {
        (self.now + self.clock_shift) * 1000
    }
    /// Switch time reached on the simulator's own clock, seconds.
    pub fn now_s(&self) -> i64 {
        self.now
    }
    pub fn end_s(&self) -> i64 {
        self.end
    }

    /// Schedules fault `i` at switch second `t` (own clock).
    pub fn schedule_fault(&mut self, t: i64, i: usize) {
        self.at(t, Act::Fault(i as u32));
    }

    fn at(&mut self, t: i64, a: Act) {
        if t >= NEVER {
            return;
        }
        self.order += 1;
        self.heap.push(Timer {
            t,
            n: self.order,
            a,
        });
    }

    #[inline]
    fn emit(&mut self, kind: EventKind) {
        self.seq += 1;
        self.counts.events += 1;
        let f = Frame::Event(Event {
            seq: self.seq,
            ts: (self.now + self.clock_shift) * 1000,
            kind,
        });
        f.encode(&mut self.out);
    }

    /// Switch time now in ms as emitted (clock shifts included): every timeline instant
    /// and every truth booking uses it, so the truth is keyed like the stream.
    #[inline]
    fn ms(&self) -> i64 {
        (self.now + self.clock_shift) * 1000
    }

    /// Sets the switch clock forward (`d` > 0) or back by `d` seconds: emits CLOCK_CHANGE
    /// (ts on the new clock, old_ts on the old) and shifts every later timestamp. The
    /// simulation itself runs on, unshifted; calls in progress are flagged so the truth
    /// marks the intervals they complete in.
    pub fn change_clock(&mut self, d: i64) {
        let old = self.ms();
        self.clock_shift += d;
        let new = self.ms();
        self.emit(EventKind::ClockChange { old_ts: old });
        for c in &mut self.calls {
            if c.phase != Phase::Free {
                c.across_clock = true;
            }
        }
        if let Some(tr) = &mut self.truth {
            tr.clock_change(old, new);
        }
    }

    /// Generates everything scheduled up to and including switch second `target`, or
    /// until `budget` more events were generated, or until a fault is due.
    pub fn run_until(&mut self, target: i64, budget: u64) -> Stop {
        let limit = self.counts.events.saturating_add(budget);
        loop {
            let t = match self.heap.peek() {
                Some(tm) if tm.t <= target => tm.t,
                _ => {
                    self.now = self.now.max(target);
                    self.truth_advance(target);
                    return Stop::Reached;
                }
            };
            if self.counts.events >= limit {
                return Stop::Budget;
            }
            let tm = self.heap.pop().expect("peeked");
            self.now = t;
            self.truth_advance(t);
            if let Act::Fault(i) = tm.a {
                return Stop::Fault(i as usize);
            }
            self.handle(tm.a);
        }
    }

    #[inline]
    fn truth_advance(&mut self, t: i64) {
        if let Some(tr) = &mut self.truth {
            let t = (t + self.clock_shift) * 1000;
            if t >= tr.next_close() {
                tr.advance(t);
            }
        }
    }

    /// Carries out one scheduled action. A call action whose call has moved on (another
    /// segment, another phase, a reused slot) and an agent action of a finished shift
    /// (another token) are stale and do nothing.
    fn handle(&mut self, a: Act) {
        match a {
            Act::Arrival => self.arrival(),
            Act::VectorDone { slot, id } => {
                if self.live(slot, id) && self.calls[slot as usize].phase == Phase::Vector {
                    self.vector_done(slot);
                }
            }
            Act::Overflow { slot, id, seg } => self.overflow(slot, id, seg),
            Act::Patience { slot, id, seg } => {
                let c = &self.calls[slot as usize];
                if self.live(slot, id)
                    && c.seg == seg
                    && matches!(c.phase, Phase::Vector | Phase::Queued | Phase::Ringing)
                {
                    self.abandon(slot);
                }
            }
            Act::Answer { slot, id, seg } => {
                let c = &self.calls[slot as usize];
                if self.live(slot, id) && c.seg == seg && c.phase == Phase::Ringing {
                    self.answer(slot);
                }
            }
            Act::Hold { slot } => self.hold(slot),
            Act::Retrieve { slot } => self.retrieve(slot),
            Act::Conference { slot } => self.conference(slot),
            Act::TalkEnd { slot } => self.talk_end(slot),
            Act::AcwEnd { agent, token } => self.acw_end(agent, token),
            Act::Login { agent, token } => {
                if self.agents[agent as usize].token == token
                    && self.agents[agent as usize].st == Ast::Out
                {
                    self.login(agent);
                }
            }
            Act::ShiftEnd { agent, token } => self.shift_end(agent, token),
            Act::BreakStart { agent, token } => self.break_start(agent, token),
            Act::BreakEnd { agent, token } => self.break_end(agent, token),
            Act::Fault(_) => unreachable!("handled in run_until"),
        }
    }

    /// The overflow timer: a call still queued to its first skill only is queued to the
    /// VDN's backup skill too, if that has room.
    fn overflow(&mut self, slot: u32, id: u32, seg: u8) {
        let c = &self.calls[slot as usize];
        if self.live(slot, id) && c.phase == Phase::Queued && c.seg == seg && c.nq == 1 {
            let b = self.vdns[c.vdn as usize - 1].backup;
            if b != 0 && b != c.queued[0] && self.room(b) {
                self.queue_to(slot, b);
            }
        }
    }

    fn hold(&mut self, slot: u32) {
        let t = self.ms();
        let c = &mut self.calls[slot as usize];
        let (call, agent) = (c.id, self.agents[c.agent as usize].id);
        c.tl.segments[c.seg as usize].holds.push((t, t));
        self.emit(EventKind::CallHeld { call, agent });
    }

    fn retrieve(&mut self, slot: u32) {
        let t = self.ms();
        let c = &mut self.calls[slot as usize];
        let (call, agent) = (c.id, self.agents[c.agent as usize].id);
        if let Some(h) = c.tl.segments[c.seg as usize].holds.last_mut() {
            h.1 = t;
        }
        self.emit(EventKind::CallRetrieved { call, agent });
    }

    fn conference(&mut self, slot: u32) {
        let c = &mut self.calls[slot as usize];
        let (call, agent) = (c.id, self.agents[c.agent as usize].id);
        c.tl.segments[c.seg as usize].conferenced = true;
        self.emit(EventKind::CallConferenced { call, agent });
    }

    /// The agent's after-call work ends: the segment is complete, the agent goes idle.
    fn acw_end(&mut self, agent: u32, token: u32) {
        let ag = &self.agents[agent as usize];
        if ag.token == token && ag.st == Ast::Acw {
            let (slot, seg) = ag.acw_of;
            let t = self.ms();
            self.calls[slot as usize].tl.segments[seg as usize].acw_end = Some(t);
            self.seg_completed(slot, seg);
            self.agent_idle(agent);
        }
    }

    /// The shift is over: an idle agent logs out now, a busy one when the work is done.
    fn shift_end(&mut self, agent: u32, token: u32) {
        let ag = &mut self.agents[agent as usize];
        if ag.token == token && ag.st != Ast::Out {
            if matches!(ag.st, Ast::Avail | Ast::Aux(_)) {
                self.logout(agent);
            } else {
                ag.pending_logout = true;
            }
        }
    }

    /// A break is due: an available agent goes to AUX with a drawn reason now, a busy
    /// one when the work is done.
    fn break_start(&mut self, agent: u32, token: u32) {
        let ag = &mut self.agents[agent as usize];
        if ag.token == token && ag.st != Ast::Out {
            let reasons = &self.prof.agents.aux_reasons;
            let r = reasons[self.rng.gen_range(0..reasons.len())];
            if ag.st == Ast::Avail {
                self.go_aux(agent, r);
            } else if !matches!(ag.st, Ast::Aux(_)) {
                ag.pending_break = Some(r);
            }
        }
    }

    /// The break is over: the next one is scheduled, and the agent logs out if the shift
    /// ended meanwhile, else becomes available.
    fn break_end(&mut self, agent: u32, token: u32) {
        let ag = &self.agents[agent as usize];
        if ag.token == token && matches!(ag.st, Ast::Aux(_)) {
            let pending_logout = ag.pending_logout;
            self.schedule_break(agent);
            if pending_logout {
                self.logout(agent);
            } else {
                self.go_avail(agent);
            }
        }
    }

    #[inline]
    fn live(&self, slot: u32, id: u32) -> bool {
        let c = &self.calls[slot as usize];
        c.id == id && c.phase != Phase::Free
    }

    #[inline]
    fn room(&self, skill: u16) -> bool {
        self.skills[skill as usize - 1].count < self.prof.skills.queue_limit
    }

    // ---- arrivals -----------------------------------------------------------------

    fn hour_factor(&mut self, t: i64) -> f64 {
        if t >= self.factor_until || t < self.factor_until - 3600 {
            let off = self.offset(t);
            let local = t + off;
            let hour = local.div_euclid(3600).rem_euclid(24) as u32;
            self.factor = self.prof.hourly_factor(hour);
            self.factor_until = t - local.rem_euclid(3600) + 3600;
        }
        self.factor
    }

    fn offset(&self, t: i64) -> i64 {
        let dt = chrono::DateTime::from_timestamp(t, 0).expect("in range");
        self.tz
            .offset_from_utc_datetime(&dt.naive_utc())
            .fix()
            .local_minus_utc() as i64
    }

    /// Schedules the next arrival: a Poisson process at the peak rate, thinned by the
    /// time-of-day factor (exact for a piecewise-constant rate).
    fn next_arrival(&mut self) {
        loop {
            self.arr_clock += dist::exp(&mut self.rng, 1.0 / self.rate_max);
            let t = self.start + self.arr_clock.floor() as i64;
            if t > self.end {
                return;
            }
            let f = self.hour_factor(t);
            if self.rng.gen::<f64>() * self.max_factor < f {
                self.at(t, Act::Arrival);
                return;
            }
        }
    }

    fn arrival(&mut self) {
        self.next_arrival();
        let v = self.rng.gen_range(0..self.vdns.len());
        let (vdn, tkgrp) = (self.vdns[v].def.vdn, self.vdns[v].tkgrp);
        let tg = &mut self.trunks[tkgrp as usize - 1];
        if tg.1 >= tg.0.trunks {
            // All trunks busy: the call never reaches the switch's call processing.
            self.counts.blocked += 1;
            return;
        }
        tg.1 += 1;
        self.counts.calls += 1;
        let id = self.next_call;
        self.next_call = self.next_call.checked_add(1).unwrap_or(1);
        let offered = self.ms();
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.calls.push(CallRt {
                    id: 0,
                    phase: Phase::Free,
                    vdn: 0,
                    tkgrp: 0,
                    seg: 0,
                    queued: [0; 2],
                    nq: 0,
                    agent: 0,
                    skill: 0,
                    pending: 0,
                    transferred: false,
                    across_clock: false,
                    tl: CallTimeline {
                        vdn: 0,
                        tkgrp: 0,
                        offered: 0,
                        end: None,
                        segments: Vec::new(),
                    },
                });
                self.calls.len() as u32 - 1
            }
        };
        let c = &mut self.calls[slot as usize];
        c.id = id;
        c.phase = Phase::Vector;
        c.vdn = vdn;
        c.tkgrp = tkgrp;
        c.seg = 0;
        c.nq = 0;
        c.pending = 0;
        c.transferred = false;
        c.across_clock = false;
        c.tl.vdn = vdn;
        c.tl.tkgrp = tkgrp;
        c.tl.offered = offered;
        c.tl.end = None;
        c.tl.segments.clear();
        if let Some(tr) = &mut self.truth {
            tr.trunk(tkgrp, offered, 1);
        }
        self.emit(EventKind::CallOffered {
            call: id,
            vdn,
            tkgrp,
        });
        let p = self.prof.calls.patience.sample(&mut self.rng);
        self.at(
            self.now.saturating_add(p),
            Act::Patience { slot, id, seg: 0 },
        );
        let d = self.prof.vdns.vector_delay as i64;
        if d == 0 {
            self.vector_done(slot);
        } else {
            self.at(self.now + d, Act::VectorDone { slot, id });
        }
    }

    fn vector_done(&mut self, slot: u32) {
        let c = &self.calls[slot as usize];
        let primary = self.vdns[c.vdn as usize - 1].primary;
        if !self.room(primary) {
            let how = match self.prof.vdns.full_action {
                FullAction::Busy => CallEnd::Busy,
                FullAction::Disconnect => CallEnd::Disconnected,
            };
            self.end_call(slot, how);
            return;
        }
        self.calls[slot as usize]
            .tl
            .segments
            .push(Segment::default());
        self.queue_to(slot, primary);
        let c = &self.calls[slot as usize];
        let ov = self.prof.vdns.overflow_after as i64;
        if ov > 0 && c.phase == Phase::Queued {
            let (id, seg) = (c.id, c.seg);
            self.at(self.now + ov, Act::Overflow { slot, id, seg });
        }
    }

    // ---- queues and delivery ------------------------------------------------------

    /// CALL_QUEUED to `skill`; delivers at once if an agent of the skill is available.
    fn queue_to(&mut self, slot: u32, skill: u16) {
        let t = self.ms();
        let c = &mut self.calls[slot as usize];
        c.phase = Phase::Queued;
        c.queued[c.nq as usize] = skill;
        c.nq += 1;
        let (id, seg) = (c.id, c.seg);
        c.tl.segments[seg as usize].queued.push((skill, t));
        let priority = c.nq;
        if let Some(tr) = &mut self.truth {
            tr.queued(skill, t);
        }
        self.emit(EventKind::CallQueued {
            call: id,
            skill,
            priority,
        });
        let sk = &mut self.skills[skill as usize - 1];
        sk.count += 1;
        sk.queue.push_back((self.now, slot, id, seg));
        if let Some(agent) = self.find_agent(skill) {
            self.deliver(slot, agent, skill);
        }
    }

    /// The available agent of `skill` to take a call: best level, then longest idle.
    fn find_agent(&self, skill: u16) -> Option<u32> {
        let mut best: Option<(u8, i64, u32)> = None;
        for &(a, lvl) in &self.skills[skill as usize - 1].members {
            let ag = &self.agents[a as usize];
            if ag.st == Ast::Avail {
                let k = (lvl, ag.idle_since, a);
                if best.is_none_or(|b| k < b) {
                    best = Some(k);
                }
            }
        }
        best.map(|b| b.2)
    }

    /// The queued call an agent that just became available takes: the oldest head of its
    /// skills' queues, ties to the skill with the better level.
    fn find_call(&mut self, agent: u32) -> Option<(u32, u16)> {
        let mut best: Option<((i64, u8, u64), u32, u16)> = None;
        for i in 0..self.agents[agent as usize].skills.len() {
            let sl = self.agents[agent as usize].skills[i];
            let sk = &mut self.skills[sl.skill as usize - 1];
            if sk.count == 0 {
                continue;
            }
            while let Some(&(tq, slot, id, seg)) = sk.queue.front() {
                let c = &self.calls[slot as usize];
                if c.id == id && c.seg == seg && c.phase == Phase::Queued {
                    let k = (tq, sl.level, id as u64);
                    if best.is_none_or(|b| k < b.0) {
                        best = Some((k, slot, sl.skill));
                    }
                    break;
                }
                sk.queue.pop_front();
            }
        }
        best.map(|b| (b.1, b.2))
    }

    fn leave_queues(&mut self, slot: u32) {
        let t = self.ms();
        let c = &mut self.calls[slot as usize];
        for i in 0..c.nq as usize {
            let s = c.queued[i];
            self.skills[s as usize - 1].count -= 1;
            if let Some(tr) = &mut self.truth {
                tr.dequeued(s, t);
            }
        }
        c.nq = 0;
    }

    fn deliver(&mut self, slot: u32, agent: u32, skill: u16) {
        self.leave_queues(slot);
        let t = self.ms();
        let aid = self.agents[agent as usize].id;
        let c = &mut self.calls[slot as usize];
        c.phase = Phase::Ringing;
        c.agent = agent;
        c.skill = skill;
        let (id, seg) = (c.id, c.seg);
        c.tl.segments[seg as usize].ring = Some(Ring {
            agent: aid,
            skill,
            ts: t,
        });
        self.emit(EventKind::CallRinging {
            call: id,
            agent: aid,
            skill,
        });
        self.set_state(agent, Ast::Ring, skill);
        let r = self.prof.calls.ring.sample(&mut self.rng);
        if r == 0 {
            self.answer(slot);
        } else {
            self.at(self.now + r, Act::Answer { slot, id, seg });
        }
    }

    fn set_state(&mut self, agent: u32, st: Ast, skill: u16) {
        let ag = &mut self.agents[agent as usize];
        ag.st = st;
        ag.work_skill = skill;
        let state = match st {
            Ast::Avail => AgentState::Avail,
            Ast::Ring => AgentState::Ring,
            Ast::Acd => AgentState::Acd,
            Ast::Acw => AgentState::Acw,
            Ast::Aux(r) => AgentState::Aux(r),
            Ast::Out => unreachable!("logout is not a state"),
        };
        let id = ag.id;
        if let Some(tr) = &mut self.truth {
            tr.agent_state(id, state, skill, (self.now + self.clock_shift) * 1000);
        }
        self.emit(EventKind::AgentState {
            agent: id,
            state,
            skill,
        });
    }

    fn answer(&mut self, slot: u32) {
        let t = self.ms();
        let c = &mut self.calls[slot as usize];
        c.phase = Phase::Connected;
        c.pending += 1;
        let (id, seg, agent, skill) = (c.id, c.seg as usize, c.agent, c.skill);
        c.tl.segments[seg].answer = Some(t);
        let aid = self.agents[agent as usize].id;
        self.emit(EventKind::CallAnswered {
            call: id,
            agent: aid,
        });
        self.set_state(agent, Ast::Acd, skill);
        let cp = &self.prof.calls;
        let (talk_d, hold_d, hold_share, conf_share) =
            (cp.talk, cp.hold, cp.hold_share, cp.conference_share);
        let talk = talk_d.sample(&mut self.rng);
        let mut extra = 0;
        if self.rng.gen::<f64>() < hold_share {
            let h = hold_d.sample(&mut self.rng).max(1);
            let at = self.now + (talk as f64 * self.rng.gen::<f64>()) as i64;
            self.at(at, Act::Hold { slot });
            self.at(at + h, Act::Retrieve { slot });
            extra = h;
        }
        if self.rng.gen::<f64>() < conf_share {
            let at = self.now + ((talk + extra) as f64 * self.rng.gen::<f64>()) as i64;
            self.at(at, Act::Conference { slot });
        }
        self.at(self.now + talk + extra, Act::TalkEnd { slot });
    }

    fn talk_end(&mut self, slot: u32) {
        let t = self.ms();
        let c = &self.calls[slot as usize];
        let (id, seg, agent, skill) = (c.id, c.seg as usize, c.agent, c.skill);
        let aid = self.agents[agent as usize].id;
        let mut target = 0;
        if !c.transferred
            && self.skills.len() > 1
            && self.rng.gen::<f64>() < self.prof.calls.transfer_share
        {
            let s = self.rng.gen_range(1..=self.skills.len() as u16);
            if s != skill && self.room(s) {
                target = s;
            }
        }
        let c = &mut self.calls[slot as usize];
        c.tl.segments[seg].talk_end = Some(t);
        if target != 0 {
            c.transferred = true;
            c.tl.segments[seg].transferred = true;
            self.emit(EventKind::CallTransferred {
                call: id,
                agent: aid,
            });
            let idle = self.wrap_up(agent, slot, seg as u8, skill);
            let c = &mut self.calls[slot as usize];
            c.seg += 1;
            c.nq = 0;
            c.tl.segments.push(Segment::default());
            let nseg = c.seg;
            let p = self.prof.calls.patience.sample(&mut self.rng);
            self.at(
                self.now.saturating_add(p),
                Act::Patience {
                    slot,
                    id,
                    seg: nseg,
                },
            );
            self.queue_to(slot, target);
            if idle {
                self.agent_idle(agent);
            }
        } else {
            let by = if self.rng.gen::<f64>() < self.prof.calls.caller_release_share {
                ReleasedBy::Caller
            } else {
                ReleasedBy::Agent
            };
            self.emit(EventKind::CallReleased { call: id, by });
            self.release_trunk(slot, CallEnd::Released);
            if self.wrap_up(agent, slot, seg as u8, skill) {
                self.agent_idle(agent);
            }
            self.maybe_done(slot);
        }
    }

    /// End of talk for the agent: ACW (AgentState Acw) or, returning true, nothing
    /// (the segment completes now and the caller makes the agent idle).
    fn wrap_up(&mut self, agent: u32, slot: u32, seg: u8, skill: u16) -> bool {
        if self.rng.gen::<f64>() < self.prof.calls.acw_share {
            let d = self.prof.calls.acw.sample(&mut self.rng);
            self.agents[agent as usize].acw_of = (slot, seg);
            self.set_state(agent, Ast::Acw, skill);
            let token = self.agents[agent as usize].token;
            self.at(self.now + d, Act::AcwEnd { agent, token });
            false
        } else {
            self.seg_completed(slot, seg);
            true
        }
    }

    fn seg_completed(&mut self, slot: u32, seg: u8) {
        let c = &mut self.calls[slot as usize];
        if let Some(tr) = &mut self.truth {
            tr.book_segment(&c.tl, seg as usize);
            if c.across_clock {
                tr.mark_call_across_gap();
            }
        }
        if c.tl.segments[seg as usize].answer.is_some() {
            c.pending -= 1;
        }
        self.maybe_done(slot);
    }

    /// Books the VDN and frees the slot once the call ended and every segment completed.
    fn maybe_done(&mut self, slot: u32) {
        let c = &mut self.calls[slot as usize];
        if c.phase == Phase::Ended && c.pending == 0 {
            if let Some(tr) = &mut self.truth {
                tr.book_vdn(&c.tl);
                if c.across_clock {
                    tr.mark_call_across_gap();
                }
            }
            c.phase = Phase::Free;
            self.free.push(slot);
        }
    }

    fn release_trunk(&mut self, slot: u32, how: CallEnd) {
        let t = self.ms();
        let c = &mut self.calls[slot as usize];
        c.phase = Phase::Ended;
        c.tl.end = Some((t, how));
        self.trunks[c.tkgrp as usize - 1].1 -= 1;
        if let Some(tr) = &mut self.truth {
            tr.trunk(c.tkgrp, t, -1);
            tr.book_trunk(&c.tl);
            if c.across_clock {
                tr.mark_call_across_gap();
            }
        }
    }

    /// Busy or disconnect from the vector (never queued): the call ends now.
    fn end_call(&mut self, slot: u32, how: CallEnd) {
        let id = self.calls[slot as usize].id;
        self.emit(match how {
            CallEnd::Busy => EventKind::CallBusy { call: id },
            _ => EventKind::CallDisconnected { call: id },
        });
        self.release_trunk(slot, how);
        self.maybe_done(slot);
    }

    fn abandon(&mut self, slot: u32) {
        let t = self.ms();
        let c = &self.calls[slot as usize];
        let (id, phase, seg, agent) = (c.id, c.phase, c.seg as usize, c.agent);
        self.emit(EventKind::CallAbandoned { call: id });
        match phase {
            Phase::Queued => self.leave_queues(slot),
            Phase::Ringing => {}
            _ => {}
        }
        let c = &mut self.calls[slot as usize];
        if let Some(s) = c.tl.segments.get_mut(seg) {
            s.abandon = Some(t);
        }
        let has_seg = phase != Phase::Vector;
        if phase == Phase::Ringing {
            self.agent_idle(agent);
        }
        self.release_trunk(slot, CallEnd::Abandoned);
        if has_seg {
            self.seg_completed(slot, seg as u8);
        } else {
            self.maybe_done(slot);
        }
    }

    // ---- agents -------------------------------------------------------------------

    fn jitter(&mut self) -> i64 {
        let j = self.prof.agents.login_jitter;
        if j == 0 {
            0
        } else {
            self.rng.gen_range(0..=j as i64)
        }
    }

    /// The (start, end) in switch seconds of shift `k` that ends after `t`.
    fn shift_window(&self, k: usize, t: i64) -> (i64, i64) {
        let sh = &self.prof.agents.shifts[k];
        let secs = super::profile::parse_hhmm(&sh.start).expect("validated") as i64;
        let len = (sh.hours * 3600.0) as i64;
        let local_day = chrono::DateTime::from_timestamp(t + self.offset(t), 0)
            .expect("in range")
            .date_naive();
        for d in -1..=2 {
            let day = local_day + chrono::Duration::days(d);
            let naive =
                day.and_hms_opt(0, 0, 0).expect("midnight") + chrono::Duration::seconds(secs);
            let s = match self.tz.from_local_datetime(&naive).earliest() {
                Some(x) => x.timestamp(),
                // Inside a spring-forward gap: an hour later exists.
                None => naive.and_utc().timestamp() - self.offset(t) + 3600,
            };
            if s + len > t {
                return (s, s + len);
            }
        }
        unreachable!("a daily shift always ends within three days")
    }

    fn login(&mut self, agent: u32) {
        let ag = &self.agents[agent as usize];
        let (id, skills, shift, token) = (ag.id, ag.skills.clone(), ag.shift, ag.token);
        if let Some(k) = shift {
            let (_, e) = self.shift_window(k, self.now);
            self.agents[agent as usize].shift_end = e;
            self.at(e, Act::ShiftEnd { agent, token });
        }
        if let Some(tr) = &mut self.truth {
            let sk: Vec<u16> = skills.iter().map(|s| s.skill).collect();
            tr.agent_login(id, &sk, (self.now + self.clock_shift) * 1000);
        }
        self.emit(EventKind::AgentLogin { agent: id, skills });
        let ag = &mut self.agents[agent as usize];
        ag.pending_break = None;
        ag.pending_logout = false;
        self.schedule_break(agent);
        self.go_avail(agent);
    }

    fn logout(&mut self, agent: u32) {
        let ag = &mut self.agents[agent as usize];
        ag.st = Ast::Out;
        ag.token += 1;
        ag.pending_logout = false;
        ag.pending_break = None;
        let (id, shift, token) = (ag.id, ag.shift, ag.token);
        if let Some(tr) = &mut self.truth {
            tr.agent_logout(id, (self.now + self.clock_shift) * 1000);
        }
        self.emit(EventKind::AgentLogout {
            agent: id,
            reason: 0,
        });
        if let Some(k) = shift {
            let (s, _) = self.shift_window(k, self.now + 60);
            let s = s.max(self.now + 60) + self.jitter();
            self.at(s, Act::Login { agent, token });
        }
    }

    fn schedule_break(&mut self, agent: u32) {
        let every = self.prof.agents.break_every;
        if every > 0.0 {
            let d = dist::exp(&mut self.rng, every).round() as i64;
            let token = self.agents[agent as usize].token;
            self.at(self.now + d.max(1), Act::BreakStart { agent, token });
        }
    }

    fn go_aux(&mut self, agent: u32, r: u8) {
        self.agents[agent as usize].pending_break = None;
        self.set_state(agent, Ast::Aux(r), 0);
        let d = self.prof.agents.break_duration.sample(&mut self.rng).max(1);
        let token = self.agents[agent as usize].token;
        self.at(self.now + d, Act::BreakEnd { agent, token });
    }

    fn go_avail(&mut self, agent: u32) {
        self.agents[agent as usize].idle_since = self.now;
        self.set_state(agent, Ast::Avail, 0);
        if let Some((slot, skill)) = self.find_call(agent) {
            self.deliver(slot, agent, skill);
        }
    }

    /// The agent's call work is over: logout, a pending break, or available.
    fn agent_idle(&mut self, agent: u32) {
        let ag = &self.agents[agent as usize];
        if ag.pending_logout {
            self.logout(agent);
        } else if let Some(r) = ag.pending_break {
            self.go_aux(agent, r);
        } else {
            self.go_avail(agent);
        }
    }

    // ---- pump-up ------------------------------------------------------------------

    /// The switch's state as pump-up records (proto/acd-link.md, "Opening", step 4):
    /// translations, logged-in agents, calls in progress.
    pub fn snapshot(&self) -> Vec<Frame> {
        let mut v = Vec::new();
        v.extend(self.skills.iter().map(|s| Frame::SnapSkill(s.def.clone())));
        v.extend(self.vdns.iter().map(|d| Frame::SnapVdn(d.def.clone())));
        v.extend(
            self.trunks
                .iter()
                .map(|t| Frame::SnapTrunkGroup(t.0.clone())),
        );
        for ag in &self.agents {
            let state = match ag.st {
                Ast::Out => continue,
                Ast::Avail => AgentState::Avail,
                Ast::Ring => AgentState::Ring,
                Ast::Acd => AgentState::Acd,
                Ast::Acw => AgentState::Acw,
                Ast::Aux(r) => AgentState::Aux(r),
            };
            v.push(Frame::SnapAgent(AgentSnapshot {
                agent: ag.id,
                state,
                work_skill: ag.work_skill,
                skills: ag.skills.clone(),
            }));
        }
        for c in &self.calls {
            let (phase, agent, skills) = match c.phase {
                Phase::Vector => (CallPhase::Vector, 0, vec![]),
                Phase::Queued => (CallPhase::Queued, 0, c.queued[..c.nq as usize].to_vec()),
                Phase::Ringing => (
                    CallPhase::Ringing,
                    self.agents[c.agent as usize].id,
                    vec![c.skill],
                ),
                Phase::Connected => (
                    CallPhase::Connected,
                    self.agents[c.agent as usize].id,
                    vec![c.skill],
                ),
                Phase::Ended | Phase::Free => continue,
            };
            v.push(Frame::SnapCall(CallSnapshot {
                call: c.id,
                vdn: c.vdn,
                tkgrp: c.tkgrp,
                phase,
                agent,
                skills,
                offered_ts: c.tl.offered,
            }));
        }
        v
    }

    /// Finishes the run: closes every interval that ends at or before the end time.
    pub fn finish(&mut self) {
        let end = self.end;
        self.truth_advance(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{decode_frame, Decoded};

    fn tiny() -> Profile {
        Profile::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/tiny.toml"))
            .unwrap()
    }

    fn run(seed: u64) -> (Vec<Event>, BytesMut) {
        let p = tiny();
        let start = 1_705_300_000;
        let mut g = Generator::new(&p, seed, start, start + 4 * 3600, Some(15));
        g.start_epoch();
        assert_eq!(g.run_until(start + 4 * 3600, u64::MAX), Stop::Reached);
        g.finish();
        let bytes = g.out.clone();
        let mut evs = Vec::new();
        let mut b = &bytes[..];
        while !b.is_empty() {
            match decode_frame(b).unwrap() {
                Decoded::Frame(Frame::Event(e), n) => {
                    evs.push(e);
                    b = &b[n..];
                }
                other => panic!("{other:?}"),
            }
        }
        (evs, bytes)
    }

    #[test]
    fn deterministic_and_well_formed() {
        let (a, ab) = run(42);
        let (_, bb) = run(42);
        assert_eq!(ab, bb);
        let (_, cb) = run(43);
        assert_ne!(ab, cb);
        let mut ts = 0;
        for (i, e) in a.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1);
            assert!(e.ts >= ts && e.ts % 1000 == 0);
            ts = e.ts;
        }
        let kinds = |f: fn(&EventKind) -> bool| a.iter().filter(|e| f(&e.kind)).count();
        assert!(kinds(|k| matches!(k, EventKind::CallAnswered { .. })) > 100);
        assert!(kinds(|k| matches!(k, EventKind::CallAbandoned { .. })) > 0);
        assert!(kinds(|k| matches!(k, EventKind::CallTransferred { .. })) > 0);
        assert!(kinds(|k| matches!(k, EventKind::CallHeld { .. })) > 0);
        assert_eq!(
            kinds(|k| matches!(k, EventKind::CallHeld { .. })),
            kinds(|k| matches!(k, EventKind::CallRetrieved { .. }))
        );
        assert!(
            kinds(|k| matches!(
                k,
                EventKind::AgentState {
                    state: AgentState::Aux(_),
                    ..
                }
            )) > 0
        );
    }
}
