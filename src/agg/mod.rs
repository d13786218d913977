//! The collector's aggregation: switch events in, closed interval rows and interval
//! status out.
//!
//! Streaming and event by event: it follows every call and agent through the stream and
//! books items as `docs/data-items.md` defines them. It is pure and deterministic: no
//! I/O, no clock but the switch's timestamps, so the same events always give the same
//! intervals — on both servers of a pair, and after a restart from a checkpoint
//! ([`Aggregator::checkpoint`] serialises the whole state).
//!
//! It is also the judge of completeness: an interval is `complete` only if every event
//! that contributes to it was observed; gaps, pump-ups, epoch and clock changes mark the
//! intervals they touch `incomplete` with a reason. It does not validate the session
//! (sequence contiguity is the link's job) and does not write anything.

pub mod checkpoint;
pub mod idx;

use crate::interval::Grid;
use crate::items::{self, TABLES};
use crate::proto::{
    AgentSnapshot, AgentState, CallPhase, CallSnapshot, Event, EventKind, SkillDef, SkillLevel,
    TrunkGroupDef, VdnDef,
};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Why an interval is incomplete (docs/data-items.md, "Interval status"): the names of
/// [`crate::domain::Reason`], as the aggregation's state holds them.
pub mod reason {
    use crate::domain::Reason;
    pub const COLLECTION_START: &str = Reason::CollectionStart.as_str();
    pub const REPLAY_GAP: &str = Reason::ReplayGap.as_str();
    pub const EPOCH_CHANGE: &str = Reason::EpochChange.as_str();
    pub const CALL_ACROSS_GAP: &str = Reason::CallAcrossGap.as_str();
    pub const CLOCK_CHANGE: &str = Reason::ClockChange.as_str();
    /// An event referred to a call or agent the collector was not tracking, or made a call
    /// flow the call model does not describe (docs/data-items.md).
    pub const UNKNOWN_ENTITY: &str = Reason::UnknownEntity.as_str();
}

/// One closed interval, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedInterval {
    pub istart: i64,
    pub intrvl: u32,
    /// Rows per table, in [`TABLES`] order: (entity keys, item values). Only rows with a
    /// non-zero item; seconds items already rounded down from milliseconds.
    pub rows: [Vec<(Vec<i64>, Vec<i64>)>; 4],
    /// Empty when complete.
    pub reasons: BTreeSet<String>,
    pub epoch: u64,
    pub first_seq: u64,
    pub last_seq: u64,
}

impl ClosedInterval {
    pub fn complete(&self) -> bool {
        self.reasons.is_empty()
    }
    pub fn row_count(&self) -> usize {
        self.rows.iter().map(Vec::len).sum()
    }
}

/// Errors that make a checkpoint unusable.
#[derive(Debug, thiserror::Error)]
pub enum AggError {
    #[error("checkpoint does not decode: {0}")]
    BadCheckpoint(String),
    #[error(
        "checkpoint has no format version (written by a release before checkpoints were \
         versioned); starting without it"
    )]
    Unversioned,
    #[error(
        "checkpoint format version {0} is not one this release reads ({v}); starting without it",
        v = checkpoint::VERSION
    )]
    UnknownVersion(u16),
    #[error("checkpoint was taken with a different interval grid ({0}); starting without it")]
    GridChanged(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Segment {
    /// Skills the segment queued to, first = primary.
    skills: Vec<u16>,
    start_ts: i64,
    /// Still counted in the skills' queues.
    in_queue: bool,
    ring: Option<(u32, u16, i64)>,
    answer_ts: Option<i64>,
    held_since: Option<i64>,
    hold_ms: i64,
    held_once: bool,
    conferenced: bool,
    transferred: bool,
}

impl Segment {
    fn new(skill: u16, ts: i64) -> Segment {
        Segment {
            skills: vec![skill],
            start_ts: ts,
            in_queue: true,
            ring: None,
            answer_ts: None,
            held_since: None,
            hold_ms: 0,
            held_once: false,
            conferenced: false,
            transferred: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum EndKind {
    Released,
    Abandoned,
    Busy,
    Disconnected,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CallRec {
    vdn: u16,
    tkgrp: u16,
    offered_ts: i64,
    /// In progress across a gap or clock change: its items cannot be known exactly.
    tainted: bool,
    seg: Option<Segment>,
    first_answer_ts: Option<i64>,
    transferred_any: bool,
    /// Answered segments whose completion (end of ACW) is still to come.
    outstanding: u32,
    ended: Option<(i64, EndKind)>,
    vdn_acd_ms: i64,
    vdn_acw_ms: i64,
    vdn_hold_ms: i64,
}

impl CallRec {
    /// A call just offered at `ts`: in vector, nothing booked yet.
    fn offered(vdn: u16, tkgrp: u16, ts: i64) -> CallRec {
        CallRec {
            vdn,
            tkgrp,
            offered_ts: ts,
            tainted: false,
            seg: None,
            first_answer_ts: None,
            transferred_any: false,
            outstanding: 0,
            ended: None,
            vdn_acd_ms: 0,
            vdn_acw_ms: 0,
            vdn_hold_ms: 0,
        }
    }
}

/// An answered segment whose talk has ended, waiting for the agent's ACW to end.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    call: u32,
    seg: Segment,
    talk_end: i64,
    acw_start: Option<i64>,
    tainted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AgentRec {
    skills: Vec<SkillLevel>,
    state: AgentState,
    work_skill: u16,
    since: i64,
    pending: Option<Pending>,
    /// In ACW at a pump-up for a call we never saw: its completion is unknown.
    acw_unknown: bool,
}

/// Per-skill, per-trunk-group running counts and their interval maxima.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Level {
    now: i64,
    max: i64,
    dirty: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct TrunkLevel {
    in_use: i64,
    since: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Open {
    istart: i64,
    /// Accumulators in milliseconds / counts, keyed by entity.
    split: FxHashMap<u16, Vec<i64>>,
    agent: FxHashMap<(u32, u16), Vec<i64>>,
    vdn: FxHashMap<u16, Vec<i64>>,
    tkgrp: FxHashMap<u16, Vec<i64>>,
    reasons: BTreeSet<String>,
    first_seq: u64,
    last_seq: u64,
}

impl Open {
    fn new(istart: i64) -> Open {
        Open {
            istart,
            split: FxHashMap::default(),
            agent: FxHashMap::default(),
            vdn: FxHashMap::default(),
            tkgrp: FxHashMap::default(),
            reasons: BTreeSet::new(),
            first_seq: 0,
            last_seq: 0,
        }
    }
    fn split(&mut self, s: u16) -> &mut [i64] {
        self.split
            .entry(s)
            .or_insert_with(|| vec![0; idx::split::N])
    }
    fn agent(&mut self, a: u32, s: u16) -> &mut [i64] {
        self.agent
            .entry((a, s))
            .or_insert_with(|| vec![0; idx::agent::N])
    }
    fn vdn(&mut self, v: u16) -> &mut [i64] {
        self.vdn.entry(v).or_insert_with(|| vec![0; idx::vdn::N])
    }
    fn tkgrp(&mut self, t: u16) -> &mut [i64] {
        self.tkgrp
            .entry(t)
            .or_insert_with(|| vec![0; idx::tkgrp::N])
    }
}

/// Everything the aggregation knows; serialised whole into a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    grid_key: String,
    epoch: u64,
    last_seq: u64,
    /// Highest effective switch time seen (ms); time never goes back below it.
    hwm: i64,
    /// Raw timestamp of the last event (ms), for the session's monotonicity check.
    last_raw_ts: i64,
    started: bool,
    skills: BTreeMap<u16, SkillDef>,
    vdns: BTreeMap<u16, VdnDef>,
    tkgrps: BTreeMap<u16, TrunkGroupDef>,
    agents: FxHashMap<u32, AgentRec>,
    calls: FxHashMap<u32, CallRec>,
    queued: FxHashMap<u16, Level>,
    staffed: FxHashMap<u16, Level>,
    trunks: FxHashMap<u16, TrunkLevel>,
    open: Option<Open>,
    /// Intervals starting at or before this UTC second get `.1` as a reason when they open
    /// (the far side of a gap or a forward clock jump).
    carry_reason: Option<(i64, String)>,
}

/// The collector's aggregation for one ACD.
pub struct Aggregator {
    grid: Grid,
    st: State,
}

/// A pump-up as received: the switch's state after event `as_of_seq`.
#[derive(Debug, Clone, Default)]
pub struct Pumpup {
    pub epoch: u64,
    pub as_of_seq: u64,
    pub ts: i64,
    pub skills: Vec<SkillDef>,
    pub vdns: Vec<VdnDef>,
    pub tkgrps: Vec<TrunkGroupDef>,
    pub agents: Vec<AgentSnapshot>,
    pub calls: Vec<CallSnapshot>,
}

fn grid_key(g: &Grid) -> String {
    format!("{}/{}", g.tz.name(), g.minutes)
}

impl Aggregator {
    pub fn new(grid: Grid) -> Aggregator {
        Aggregator {
            grid,
            st: State {
                grid_key: grid_key(&grid),
                epoch: 0,
                last_seq: 0,
                hwm: i64::MIN,
                last_raw_ts: i64::MIN,
                started: false,
                skills: BTreeMap::new(),
                vdns: BTreeMap::new(),
                tkgrps: BTreeMap::new(),
                agents: FxHashMap::default(),
                calls: FxHashMap::default(),
                queued: FxHashMap::default(),
                staffed: FxHashMap::default(),
                trunks: FxHashMap::default(),
                open: None,
                carry_reason: None,
            },
        }
    }

    /// Rebuilds the aggregation from [`Aggregator::checkpoint`] bytes.
    ///
    /// # Errors
    /// The bytes are not a checkpoint version this release reads ([`checkpoint`]), do
    /// not decode, or were written for another interval grid.
    pub fn from_checkpoint(grid: Grid, bytes: &[u8]) -> Result<Aggregator, AggError> {
        let st = checkpoint::decode(bytes)?;
        if st.grid_key != grid_key(&grid) {
            return Err(AggError::GridChanged(st.grid_key));
        }
        Ok(Aggregator { grid, st })
    }

    /// The whole state, to be stored with the rows closed so far, in the versioned
    /// envelope of [`checkpoint`].
    pub fn checkpoint(&self) -> Vec<u8> {
        checkpoint::encode(&self.st)
    }

    pub fn epoch(&self) -> u64 {
        self.st.epoch
    }
    pub fn last_seq(&self) -> u64 {
        self.st.last_seq
    }
    /// Effective switch time of the last event or tick (ms), if any.
    pub fn switch_time(&self) -> Option<i64> {
        self.st.started.then_some(self.st.hwm)
    }
    /// Raw switch timestamp of the last event applied (ms), `i64::MIN` if none.
    pub fn last_raw_ts(&self) -> i64 {
        self.st.last_raw_ts
    }
    pub fn started(&self) -> bool {
        self.st.started
    }
    /// UTC start of the interval being collected.
    pub fn open_interval(&self) -> Option<i64> {
        self.st.open.as_ref().map(|o| o.istart)
    }
    pub fn grid(&self) -> &Grid {
        &self.grid
    }
    pub fn skills(&self) -> impl Iterator<Item = &SkillDef> {
        self.st.skills.values()
    }
    pub fn vdns(&self) -> impl Iterator<Item = &VdnDef> {
        self.st.vdns.values()
    }
    pub fn tkgrps(&self) -> impl Iterator<Item = &TrunkGroupDef> {
        self.st.tkgrps.values()
    }

    /// Starts a fresh epoch replayed from its first event (the switch's stream begins
    /// here: nothing before it can be missing).
    pub fn start_epoch(&mut self, epoch: u64) {
        self.st.epoch = epoch;
        self.st.last_seq = 0;
    }

    /// Applies one sequenced event; closed intervals are appended to `out`.
    /// The caller has checked that `ev.seq` is the next one.
    ///
    /// Two times: the event is booked, and agent and trunk time accrues, at the effective
    /// time (the high-water mark: after a clock set back it stays put until the new clock
    /// catches up), while a call's own durations (wait, ring, talk, hold, ACW, trunk
    /// holding time) come from the events' own timestamps. Both are the same except after
    /// a set back, where a call that starts on the new clock is then timed exactly (calls
    /// in progress at the change are tainted and not booked).
    pub fn apply(&mut self, ev: &Event, out: &mut Vec<ClosedInterval>) {
        if let EventKind::ClockChange { old_ts } = ev.kind {
            self.clock_change(ev.ts, old_ts, out);
        } else {
            self.advance(ev.ts, out);
        }
        self.st.last_seq = ev.seq;
        self.st.last_raw_ts = ev.ts;
        {
            let o = self.st.open.as_mut().expect("open interval");
            if o.first_seq == 0 {
                o.first_seq = ev.seq;
            }
            o.last_seq = ev.seq;
        }
        self.event(ev.ts, &ev.kind);
    }

    /// A heartbeat: switch time has reached `ts` with no event pending before it.
    pub fn tick(&mut self, ts: i64, out: &mut Vec<ClosedInterval>) {
        if self.st.started {
            self.advance(ts, out);
            // Later events may not be older than a tick (proto/acd-link.md, heartbeats).
            self.st.last_raw_ts = self.st.last_raw_ts.max(ts);
        }
    }

    /// Where to stop a catch-up: `Some(b)` when moving switch time to `ts` would close
    /// `n` or more intervals, `b` being the end (ms) of the `n`-th. The caller ticks to
    /// `b` ([`Aggregator::tick`]), stores what closed, and asks again, so that a long
    /// silence (or a long jump) is closed `n` intervals at a time, with bounded memory
    /// and a chance to stop in between. Ticking to `b` and then applying the frame gives
    /// exactly what applying the frame at once gives (`agg::tests`).
    pub fn catch_up_point(&self, ts: i64, n: usize) -> Option<i64> {
        let o = self.st.open.as_ref()?;
        // The common case, on every event: still inside the open interval.
        if ts < self.grid.next(o.istart) * 1000 || !self.st.started || n == 0 {
            return None;
        }
        let mut b = o.istart;
        for _ in 0..n {
            b = self.grid.next(b);
        }
        (ts >= b * 1000).then_some(b * 1000)
    }

    /// One step of a catch-up towards a frame far ahead: an event or heartbeat at `ts`,
    /// or a CLOCK_CHANGE to `ts` made at `clock_old_ts` on the old clock. Closes `n`
    /// intervals (or, for a forward clock change, brings time to the change first) and
    /// returns true; returns false once what is left closes fewer than `n`, and the caller
    /// then applies the frame. Stepping and then applying gives exactly what applying at
    /// once gives (`agg::tests`): intervals jumped over by a forward change carry
    /// `clock_change` either way.
    pub fn catch_up_step(
        &mut self,
        ts: i64,
        clock_old_ts: Option<i64>,
        n: usize,
        out: &mut Vec<ClosedInterval>,
    ) -> bool {
        let Some(old) = clock_old_ts else {
            return match self.catch_up_point(ts, n) {
                Some(b) => {
                    self.tick(b, out);
                    true
                }
                None => false,
            };
        };
        if let Some(b) = self.catch_up_point(old, n) {
            self.tick(b, out);
            return true;
        }
        if ts <= old || self.catch_up_point(ts, n).is_none() {
            return false;
        }
        // A far forward change: reach the change (fewer than n intervals), mark it, then
        // close the jumped-over intervals n at a time.
        if self.st.hwm < old {
            self.tick(old, out);
            self.prepare_clock_change(ts);
            return true;
        }
        self.prepare_clock_change(ts);
        if let Some(b) = self.catch_up_point(ts, n) {
            self.tick(b, out);
        }
        true
    }

    /// Whether applying a frame at `ts` (a CLOCK_CHANGE: also reaching `clock_old_ts`)
    /// would close `n` or more intervals: then the caller catches up first
    /// ([`Aggregator::catch_up_step`]).
    pub fn needs_catch_up(&self, ts: i64, clock_old_ts: Option<i64>, n: usize) -> bool {
        self.catch_up_point(ts.max(clock_old_ts.unwrap_or(i64::MIN)), n)
            .is_some()
    }

    /// What a CLOCK_CHANGE to `ts` (ms, the new clock) makes inexact: the open interval,
    /// the calls and ACW in progress, and for a forward change every interval up to `ts`
    /// (jumped over). Repeating it changes nothing.
    fn prepare_clock_change(&mut self, ts: i64) {
        if !self.st.started {
            return;
        }
        self.mark_open(reason::CLOCK_CHANGE);
        for c in self.st.calls.values_mut() {
            c.tainted = true;
        }
        for a in self.st.agents.values_mut() {
            if let Some(p) = a.pending.as_mut() {
                p.tainted = true;
            }
        }
        if ts > self.st.hwm {
            // Forward: every interval jumped over is not real time.
            self.st.carry_reason =
                Some((self.grid.start_of_ms(ts), reason::CLOCK_CHANGE.to_string()));
        }
    }

    /// A pump-up replaced the stream between our last event and `p.as_of_seq`.
    /// `why` is the reason the intervals in between are incomplete
    /// ([`reason::COLLECTION_START`] for a collector with no history).
    pub fn pumpup(&mut self, p: Pumpup, why: &str, out: &mut Vec<ClosedInterval>) {
        let resume = self.grid.start_of_ms(p.ts);
        if self.st.started {
            self.forget_across_gap(p.ts, resume, why, out);
        } else {
            self.st.started = true;
            self.st.hwm = p.ts;
            let mut o = Open::new(resume);
            o.reasons.insert(why.to_string());
            self.st.open = Some(o);
        }
        let ts = self.st.hwm;
        self.st.last_raw_ts = p.ts;
        self.st.epoch = p.epoch;
        self.st.last_seq = p.as_of_seq;
        for s in p.skills {
            self.st.skills.insert(s.skill, s);
        }
        for v in p.vdns {
            self.st.vdns.insert(v.vdn, v);
        }
        for t in p.tkgrps {
            self.st.tkgrps.insert(t.tkgrp, t);
        }
        for a in p.agents {
            self.snapshot_agent(a, ts);
        }
        for c in p.calls {
            self.snapshot_call(c, ts);
        }
        for t in self.st.trunks.values_mut() {
            t.since = ts;
        }
    }

    /// Before a pump-up after a gap: flushes exact accruals up to the last event we saw,
    /// then forgets the state the gap made unknown, so nothing accrues into the gap, and
    /// moves time to the pump-up's `ts`.
    fn forget_across_gap(
        &mut self,
        ts: i64,
        resume: i64,
        why: &str,
        out: &mut Vec<ClosedInterval>,
    ) {
        let last = self.st.hwm;
        self.flush_accruals(last);
        self.mark_open(why);
        self.st.agents.clear();
        self.st.calls.clear();
        for l in self
            .st
            .queued
            .values_mut()
            .chain(self.st.staffed.values_mut())
        {
            l.now = 0;
            l.dirty = false;
        }
        self.st.trunks.clear();
        self.st.carry_reason = Some((resume, why.to_string()));
        if ts > self.st.hwm {
            self.advance(ts, out);
        }
    }

    /// A logged-in agent from a pump-up, tracked from `ts` on.
    fn snapshot_agent(&mut self, a: AgentSnapshot, ts: i64) {
        for s in &a.skills {
            bump(&mut self.st.staffed, s.skill, 1);
        }
        self.st.agents.insert(
            a.agent,
            AgentRec {
                skills: a.skills,
                state: a.state,
                work_skill: a.work_skill,
                since: ts,
                pending: None,
                acw_unknown: a.state == AgentState::Acw,
            },
        );
    }

    /// A call in progress from a pump-up: tracked from `ts` on, tainted (its start was
    /// not seen), holding a trunk.
    fn snapshot_call(&mut self, c: CallSnapshot, ts: i64) {
        let seg = match c.phase {
            CallPhase::Vector => None,
            CallPhase::Queued => {
                for s in &c.skills {
                    bump(&mut self.st.queued, *s, 1);
                }
                Some(Segment {
                    skills: c.skills.clone(),
                    ..Segment::new(0, ts)
                })
            }
            CallPhase::Ringing | CallPhase::Connected => {
                let skill = c.skills.first().copied().unwrap_or(0);
                let mut seg = Segment::new(skill, ts);
                seg.skills = c.skills.clone();
                seg.in_queue = false;
                seg.ring = Some((c.agent, skill, ts));
                if c.phase == CallPhase::Connected {
                    seg.answer_ts = Some(ts);
                }
                Some(seg)
            }
        };
        let t = self.st.trunks.entry(c.tkgrp).or_default();
        t.in_use += 1;
        t.since = ts;
        let rec = CallRec {
            tainted: true,
            seg,
            ..CallRec::offered(c.vdn, c.tkgrp, c.offered_ts)
        };
        self.st.calls.insert(c.call, rec);
    }

    /// Marks the interval being collected incomplete (e.g. the session broke on bad input
    /// and what follows may not be replayable).
    pub fn mark_open(&mut self, why: &str) {
        if let Some(o) = self.st.open.as_mut() {
            o.reasons.insert(why.to_string());
        }
    }

    /// Moves switch time forward to `ts` (ms), closing every interval that ends at or
    /// before it. Time never moves back: an earlier `ts` is taken as the high-water mark.
    fn advance(&mut self, ts: i64, out: &mut Vec<ClosedInterval>) {
        if !self.st.started {
            self.st.started = true;
            self.st.hwm = ts;
            let start = self.grid.start_of_ms(ts);
            let mut o = Open::new(start);
            self.apply_carry(&mut o);
            self.st.open = Some(o);
            return;
        }
        if ts <= self.st.hwm {
            return;
        }
        // Counts held from the last instant to now over a positive stretch: sample maxima.
        self.commit_levels();
        let mut last_boundary = None;
        loop {
            let istart = self.st.open.as_ref().expect("open").istart;
            let end = self.grid.next(istart);
            if ts < end * 1000 {
                break;
            }
            self.close(end * 1000, out);
            last_boundary = Some(end * 1000);
        }
        // The counts also held from the last boundary crossed to now, inside the new
        // interval: sample them there too before this instant's events change them.
        if last_boundary.is_some_and(|b| ts > b) {
            self.commit_levels();
        }
        self.st.hwm = ts;
    }

    fn apply_carry(&mut self, o: &mut Open) {
        if let Some((until, why)) = &self.st.carry_reason {
            if o.istart <= *until {
                o.reasons.insert(why.clone());
            } else {
                self.st.carry_reason = None;
            }
        }
    }

    fn commit_levels(&mut self) {
        for l in self
            .st
            .queued
            .values_mut()
            .chain(self.st.staffed.values_mut())
        {
            if l.dirty {
                l.max = l.max.max(l.now);
                l.dirty = false;
            }
        }
    }

    /// Accrues every running state up to `t` (ms) into the open interval.
    fn flush_accruals(&mut self, t: i64) {
        let open = self.st.open.as_mut().expect("open");
        for (&a, rec) in self.st.agents.iter_mut() {
            accrue_agent(open, a, rec, t);
        }
        for (&g, tl) in self.st.trunks.iter_mut() {
            let trunks = self.st.tkgrps.get(&g).map(|d| d.trunks as i64);
            accrue_trunk(open, g, tl, trunks, t);
        }
    }

    /// Closes the open interval at `end` (ms) and opens the next.
    fn close(&mut self, end: i64, out: &mut Vec<ClosedInterval>) {
        self.flush_accruals(end);
        let mut o = self.st.open.take().expect("open");
        // Maxima: the final counts held until the end.
        for (&s, l) in self.st.queued.iter_mut() {
            let m = l.max.max(if l.dirty { l.now } else { 0 });
            if m > 0 {
                let r = o.split(s);
                r[idx::split::MAXINQUEUE] = r[idx::split::MAXINQUEUE].max(m);
            }
            l.max = 0;
            l.dirty = l.now > 0;
        }
        for (&s, l) in self.st.staffed.iter_mut() {
            let m = l.max.max(if l.dirty { l.now } else { 0 });
            if m > 0 {
                let r = o.split(s);
                r[idx::split::MAXSTAFFED] = r[idx::split::MAXSTAFFED].max(m);
            }
            l.max = 0;
            l.dirty = l.now > 0;
        }
        out.push(self.finish(o));
        let mut next = Open::new(end / 1000);
        self.apply_carry(&mut next);
        self.st.open = Some(next);
    }

    /// Turns accumulators into stored rows.
    fn finish(&self, mut o: Open) -> ClosedInterval {
        // Skill interval-based items are the sum of the agent rows for that skill.
        let agent_i = [
            (idx::agent::I_STAFFTIME, idx::split::I_STAFFTIME),
            (idx::agent::I_AVAILTIME, idx::split::I_AVAILTIME),
            (idx::agent::I_ACDTIME, idx::split::I_ACDTIME),
            (idx::agent::I_ACWTIME, idx::split::I_ACWTIME),
            (idx::agent::I_RINGTIME, idx::split::I_RINGTIME),
            (idx::agent::I_OTHERTIME, idx::split::I_OTHERTIME),
            (idx::agent::I_AUXTIME, idx::split::I_AUXTIME),
        ];
        let agent_rows: Vec<((u32, u16), Vec<i64>)> = o.agent.drain().collect();
        for ((_, s), v) in &agent_rows {
            let r = o.split(*s);
            for (a, sp) in agent_i {
                r[sp] += v[a];
            }
            for k in 0..10 {
                r[idx::split::I_AUXTIME0 + k] += v[idx::agent::I_AUXTIME0 + k];
            }
        }
        let mut rows: [Vec<(Vec<i64>, Vec<i64>)>; 4] = Default::default();
        let conv = |t: usize, v: &[i64]| -> Option<Vec<i64>> {
            let def = TABLES[t];
            let out: Vec<i64> = v
                .iter()
                .zip(def.items)
                .map(|(x, (name, _))| {
                    if items::is_seconds(name) {
                        x.div_euclid(1000)
                    } else {
                        *x
                    }
                })
                .collect();
            out.iter().any(|x| *x != 0).then_some(out)
        };
        for (s, v) in &o.split {
            if let Some(r) = conv(0, v) {
                rows[0].push((vec![*s as i64], r));
            }
        }
        for ((a, s), v) in &agent_rows {
            if let Some(r) = conv(1, v) {
                rows[1].push((vec![*a as i64, *s as i64], r));
            }
        }
        for (vd, v) in &o.vdn {
            if let Some(r) = conv(2, v) {
                rows[2].push((vec![*vd as i64], r));
            }
        }
        for (g, v) in &o.tkgrp {
            if let Some(r) = conv(3, v) {
                rows[3].push((vec![*g as i64], r));
            }
        }
        for r in rows.iter_mut() {
            r.sort_by(|a, b| a.0.cmp(&b.0));
        }
        ClosedInterval {
            istart: o.istart,
            intrvl: self.grid.minutes,
            rows,
            reasons: o.reasons,
            epoch: self.st.epoch,
            first_seq: o.first_seq,
            last_seq: o.last_seq,
        }
    }

    /// The clock changes at `old_ts` on the old clock to `ts` on the new one. The old
    /// clock reached `old_ts` first (the switch vouches for it), so intervals that end by
    /// then close as usual, and the change happens in the interval holding `old_ts`.
    fn clock_change(&mut self, ts: i64, old_ts: i64, out: &mut Vec<ClosedInterval>) {
        if !self.st.started {
            self.advance(ts, out);
            return;
        }
        self.advance(old_ts, out);
        self.prepare_clock_change(ts);
        if ts > self.st.hwm {
            self.advance(ts, out);
        }
        // Backward: later events are held at the high-water mark until the clock catches
        // up, all inside the interval just marked.
    }

    /// Books one event at `ts` (its own timestamp; see [`Aggregator::apply`]).
    fn event(&mut self, ts: i64, kind: &EventKind) {
        match kind {
            EventKind::SkillDef(s) => {
                self.st.skills.insert(s.skill, s.clone());
            }
            EventKind::VdnDef(v) => {
                self.st.vdns.insert(v.vdn, v.clone());
            }
            EventKind::TrunkGroupDef(t) => self.trunk_group_def(t, ts),
            EventKind::CallOffered { call, vdn, tkgrp } => {
                self.call_offered(*call, *vdn, *tkgrp, ts)
            }
            EventKind::CallQueued { call, skill, .. } => self.call_queued(*call, *skill, ts),
            EventKind::CallRinging { call, agent, skill } => {
                self.call_ringing(*call, *agent, *skill, ts)
            }
            EventKind::CallAnswered { call, agent } => self.call_answered(*call, *agent, ts),
            EventKind::CallHeld { call, .. } => {
                if let Some(seg) = self.st.calls.get_mut(call).and_then(|c| c.seg.as_mut()) {
                    if seg.held_since.is_none() {
                        seg.held_since = Some(ts);
                        seg.held_once = true;
                    }
                } else {
                    self.unknown();
                }
            }
            EventKind::CallRetrieved { call, .. } => {
                if let Some(seg) = self.st.calls.get_mut(call).and_then(|c| c.seg.as_mut()) {
                    if let Some(h) = seg.held_since.take() {
                        seg.hold_ms += ts - h;
                    }
                } else {
                    self.unknown();
                }
            }
            EventKind::CallConferenced { call, .. } => {
                if let Some(seg) = self.st.calls.get_mut(call).and_then(|c| c.seg.as_mut()) {
                    seg.conferenced = true;
                } else {
                    self.unknown();
                }
            }
            EventKind::CallTransferred { call, .. } => self.call_transferred(*call, ts),
            EventKind::CallReleased { call, .. } => self.call_released(*call, ts),
            EventKind::CallAbandoned { call } => self.abandon(*call, ts),
            EventKind::CallBusy { call } => self.end_unqueued(*call, ts, EndKind::Busy),
            EventKind::CallDisconnected { call } => {
                self.end_unqueued(*call, ts, EndKind::Disconnected)
            }
            EventKind::AgentLogin { agent, skills } => self.agent_login(*agent, skills, ts),
            EventKind::AgentLogout { agent, .. } => {
                if !self.st.agents.contains_key(agent) {
                    return self.unknown();
                }
                self.logout(*agent, ts);
            }
            EventKind::AgentState {
                agent,
                state,
                skill,
            } => self.agent_state(*agent, *state, *skill, ts),
            EventKind::ClockChange { .. } => {}
        }
    }

    fn trunk_group_def(&mut self, t: &TrunkGroupDef, ts: i64) {
        // The stretch before the change counts with the old trunk count
        // (docs/data-items.md, allinusetime).
        let old = self.st.tkgrps.get(&t.tkgrp).map(|d| d.trunks as i64);
        if let (Some(open), Some(tl)) = (self.st.open.as_mut(), self.st.trunks.get_mut(&t.tkgrp)) {
            accrue_trunk(open, t.tkgrp, tl, old, ts);
        }
        self.st.tkgrps.insert(t.tkgrp, t.clone());
    }

    fn call_offered(&mut self, call: u32, vdn: u16, tkgrp: u16, ts: i64) {
        self.trunk_change(tkgrp, 1);
        self.st.calls.insert(call, CallRec::offered(vdn, tkgrp, ts));
    }

    fn call_queued(&mut self, call: u32, skill: u16, ts: i64) {
        let Some(c) = self.st.calls.get_mut(&call) else {
            return self.unknown();
        };
        let mut undescribed = false;
        match c.seg.as_mut() {
            Some(seg) if seg.in_queue => {
                if seg.skills.contains(&skill) {
                    return;
                }
                seg.skills.push(skill);
            }
            Some(_) => {
                // Back to queue while ringing (ring-no-answer) or connected without a
                // transfer: outside the call model (docs/data-items.md, "Call flows
                // outside the model").
                undescribed = true;
                c.seg = Some(Segment::new(skill, ts));
            }
            _ => c.seg = Some(Segment::new(skill, ts)),
        }
        if undescribed {
            self.unknown();
        }
        bump(&mut self.st.queued, skill, 1);
        self.open().split(skill)[idx::split::I_ARRIVED] += 1;
    }

    fn call_ringing(&mut self, call: u32, agent: u32, skill: u16, ts: i64) {
        let Some(c) = self.st.calls.get_mut(&call) else {
            return self.unknown();
        };
        let Some(seg) = c.seg.as_mut() else {
            return self.unknown();
        };
        if seg.in_queue {
            seg.in_queue = false;
            for s in seg.skills.clone() {
                bump(&mut self.st.queued, s, -1);
            }
        }
        // A second ring (redirected while ringing) is outside the call model.
        let again = seg.ring.is_some() && seg.answer_ts.is_none();
        seg.ring = Some((agent, skill, ts));
        if again {
            self.unknown();
        }
    }

    fn call_answered(&mut self, call: u32, agent: u32, ts: i64) {
        let Some(c) = self.st.calls.get_mut(&call) else {
            return self.unknown();
        };
        if c.first_answer_ts.is_none() {
            c.first_answer_ts = Some(ts);
        }
        // Answered without ringing is outside the call model: booked as if it had rung
        // here from its primary skill at this instant.
        let mut undescribed = c.seg.is_none();
        if let Some(seg) = c.seg.as_mut() {
            if seg.ring.is_none() {
                undescribed = true;
                if seg.in_queue {
                    seg.in_queue = false;
                    for s in seg.skills.clone() {
                        bump(&mut self.st.queued, s, -1);
                    }
                }
                seg.ring = Some((agent, seg.skills.first().copied().unwrap_or(0), ts));
            }
            seg.answer_ts = Some(ts);
        }
        if undescribed {
            self.unknown();
        }
    }

    fn call_transferred(&mut self, call: u32, ts: i64) {
        let Some(c) = self.st.calls.get_mut(&call) else {
            return self.unknown();
        };
        c.transferred_any = true;
        if let Some(seg) = c.seg.as_mut() {
            seg.transferred = true;
        }
        self.end_talk(call, ts);
    }

    fn call_released(&mut self, call: u32, ts: i64) {
        let Some(c) = self.st.calls.get(&call) else {
            return self.unknown();
        };
        if c.seg.as_ref().is_none_or(|s| s.answer_ts.is_none()) {
            // Released before an answer (in vector, queue or ringing): an abandon by
            // another name (docs/data-items.md, "Call flows outside the model").
            return self.abandon(call, ts);
        }
        self.end_talk(call, ts);
        self.end_call(call, ts, EndKind::Released);
    }

    /// A login; an agent already logged in is logged out first.
    fn agent_login(&mut self, agent: u32, skills: &[SkillLevel], ts: i64) {
        if self.st.agents.contains_key(&agent) {
            self.logout(agent, ts);
        }
        for s in skills {
            bump(&mut self.st.staffed, s.skill, 1);
        }
        self.st.agents.insert(
            agent,
            AgentRec {
                skills: skills.to_vec(),
                state: AgentState::Other,
                work_skill: 0,
                since: self.st.hwm,
                pending: None,
                acw_unknown: false,
            },
        );
    }

    fn open(&mut self) -> &mut Open {
        self.st.open.as_mut().expect("open interval")
    }

    fn unknown(&mut self) {
        self.mark_open(reason::UNKNOWN_ENTITY);
    }

    /// A trunk seized or released now (trunk time accrues at the effective time).
    fn trunk_change(&mut self, g: u16, delta: i64) {
        let trunks = self.st.tkgrps.get(&g).map(|d| d.trunks as i64);
        let now = self.st.hwm;
        let open = self.st.open.as_mut().expect("open");
        let tl = self.st.trunks.entry(g).or_default();
        accrue_trunk(open, g, tl, trunks, now);
        tl.in_use += delta;
    }

    /// Talk ends (release or transfer): the answered segment goes to its agent to wait
    /// for the end of ACW.
    fn end_talk(&mut self, call: u32, ts: i64) {
        let c = self.st.calls.get_mut(&call).expect("checked");
        let Some(mut seg) = c.seg.take() else { return };
        if seg.answer_ts.is_none() {
            return;
        }
        if let Some(h) = seg.held_since.take() {
            seg.hold_ms += ts - h;
        }
        c.outstanding += 1;
        let tainted = c.tainted;
        let agent = seg.ring.map(|r| r.0).unwrap_or(0);
        let p = Pending {
            call,
            seg,
            talk_end: ts,
            acw_start: None,
            tainted,
        };
        match self.st.agents.get_mut(&agent) {
            Some(a) => {
                if let Some(old) = a.pending.replace(p) {
                    // A second call ended before the first one's ACW did: complete it now.
                    self.complete_segment(agent, old, ts);
                }
            }
            None => {
                self.unknown();
                self.complete_segment(agent, p, ts);
            }
        }
    }

    fn agent_state(&mut self, agent: u32, state: AgentState, skill: u16, ts: i64) {
        let now = self.st.hwm;
        let open = self.st.open.as_mut().expect("open");
        let Some(a) = self.st.agents.get_mut(&agent) else {
            return self.unknown();
        };
        accrue_agent(open, agent, a, now);
        a.state = state;
        a.work_skill = skill;
        if state == AgentState::Acw {
            if let Some(p) = a.pending.as_mut() {
                if p.acw_start.is_none() {
                    p.acw_start = Some(ts);
                }
            }
            return;
        }
        if a.acw_unknown {
            a.acw_unknown = false;
            self.mark_open(reason::CALL_ACROSS_GAP);
        }
        let a = self.st.agents.get_mut(&agent).expect("present");
        if let Some(p) = a.pending.take() {
            self.complete_segment(agent, p, ts);
        }
    }

    fn logout(&mut self, agent: u32, ts: i64) {
        let now = self.st.hwm;
        let open = self.st.open.as_mut().expect("open");
        let mut a = self.st.agents.remove(&agent).expect("checked");
        accrue_agent(open, agent, &mut a, now);
        for s in &a.skills {
            bump(&mut self.st.staffed, s.skill, -1);
        }
        if a.acw_unknown {
            self.mark_open(reason::CALL_ACROSS_GAP);
        }
        if let Some(p) = a.pending.take() {
            self.complete_segment(agent, p, ts);
        }
    }

    fn sl(&self, skill: u16) -> (i64, [u16; 9]) {
        match self.st.skills.get(&skill) {
            Some(d) => (d.service_level as i64 * 1000, d.periods),
            None => (0, [0; 9]),
        }
    }

    fn band(periods: &[u16; 9], wait: i64) -> usize {
        periods
            .iter()
            .position(|p| wait <= *p as i64 * 1000)
            .unwrap_or(9)
    }

    /// Books an answered segment at its completion `ts` (end of ACW).
    fn complete_segment(&mut self, agent: u32, p: Pending, ts: i64) {
        use idx::{agent as ai, split as si};
        let seg = &p.seg;
        let (ra, s, ring_ts) = seg.ring.unwrap_or((agent, 0, seg.start_ts));
        let answer = seg.answer_ts.unwrap_or(p.talk_end);
        let acw = p.acw_start.map(|a| ts - a).unwrap_or(0);
        let hold = seg.hold_ms;
        let acd = p.talk_end - answer - hold;
        if p.tainted {
            self.mark_open(reason::CALL_ACROSS_GAP);
        } else {
            let wait = answer - seg.start_ts;
            let ring = answer - ring_ts;
            let (sl, periods) = self.sl(s);
            let primary = seg.skills.first().copied().unwrap_or(s);
            let o = self.st.open.as_mut().expect("open");
            {
                let r = o.split(s);
                r[si::CALLSOFFERED] += 1;
                r[si::ACDCALLS] += 1;
                r[si::ANSTIME] += wait;
                r[si::MAXOCWTIME] = r[si::MAXOCWTIME].max(wait);
                r[si::ACCEPTABLE] += (wait <= sl) as i64;
                r[si::ACDCALLS1 + Self::band(&periods, wait)] += 1;
                r[si::ACDTIME] += acd;
                r[si::ACWTIME] += acw;
                r[si::HOLDTIME] += hold;
                r[si::HOLDCALLS] += seg.held_once as i64;
                r[si::TRANSFERRED] += seg.transferred as i64;
                r[si::CONFERENCE] += seg.conferenced as i64;
                r[si::INFLOWCALLS] += (s != primary) as i64;
            }
            book_others(o, &seg.skills, primary, s);
            let r = o.agent(ra, s);
            r[ai::ACDCALLS] += 1;
            r[ai::ACDTIME] += acd;
            r[ai::ACWTIME] += acw;
            r[ai::RINGCALLS] += 1;
            r[ai::RINGTIME] += ring;
            r[ai::HOLDCALLS] += seg.held_once as i64;
            r[ai::HOLDACDTIME] += hold;
            r[ai::TRANSFERRED] += seg.transferred as i64;
            r[ai::CONFERENCE] += seg.conferenced as i64;
        }
        if let Some(c) = self.st.calls.get_mut(&p.call) {
            c.outstanding -= 1;
            c.vdn_acd_ms += acd;
            c.vdn_acw_ms += acw;
            c.vdn_hold_ms += hold;
            if c.ended.is_some() && c.outstanding == 0 {
                self.book_vdn(p.call);
            }
        }
    }

    fn abandon(&mut self, call: u32, ts: i64) {
        use idx::{agent as ai, split as si};
        let Some(c) = self.st.calls.get_mut(&call) else {
            return self.unknown();
        };
        let tainted = c.tainted;
        if let Some(seg) = c.seg.take() {
            if seg.in_queue {
                for s in &seg.skills {
                    bump(&mut self.st.queued, *s, -1);
                }
            }
            if seg.answer_ts.is_some() {
                // Not an abandon at all: the caller hung up while talking.
                let c = self.st.calls.get_mut(&call).expect("present");
                c.seg = Some(seg);
                self.end_talk(call, ts);
                return self.end_call(call, ts, EndKind::Released);
            }
            if tainted {
                self.mark_open(reason::CALL_ACROSS_GAP);
            } else {
                let primary = seg.skills.first().copied().unwrap_or(0);
                let wait = ts - seg.start_ts;
                let booked = seg.ring.map(|r| r.1).unwrap_or(primary);
                let (sl, periods) = self.sl(booked);
                let o = self.st.open.as_mut().expect("open");
                let r = o.split(booked);
                r[si::CALLSOFFERED] += 1;
                r[si::ABNCALLS] += 1;
                r[si::ABNTIME] += wait;
                r[si::MAXOCWTIME] = r[si::MAXOCWTIME].max(wait);
                r[si::SLVLABNS] += (wait <= sl) as i64;
                r[si::ABNCALLS1 + Self::band(&periods, wait)] += 1;
                r[si::INFLOWCALLS] += (booked != primary) as i64;
                book_others(o, &seg.skills, primary, booked);
                if let Some((agent, s, ring_ts)) = seg.ring {
                    let r = o.agent(agent, s);
                    r[ai::RINGCALLS] += 1;
                    r[ai::RINGTIME] += ts - ring_ts;
                    r[ai::ABNCALLS] += 1;
                }
            }
        }
        self.end_call(call, ts, EndKind::Abandoned);
    }

    fn end_unqueued(&mut self, call: u32, ts: i64, kind: EndKind) {
        let Some(c) = self.st.calls.get_mut(&call) else {
            return self.unknown();
        };
        if let Some(seg) = c.seg.take() {
            if seg.in_queue {
                for s in &seg.skills {
                    bump(&mut self.st.queued, *s, -1);
                }
            }
        }
        self.end_call(call, ts, kind);
    }

    /// The trunk is released: trunk group items now, VDN items once every answered
    /// segment is complete.
    fn end_call(&mut self, call: u32, ts: i64, kind: EndKind) {
        use idx::tkgrp as ti;
        let c = self.st.calls.get_mut(&call).expect("checked");
        if c.ended.is_some() {
            return;
        }
        c.ended = Some((ts, kind));
        let (g, tainted, offered, answered) = (
            c.tkgrp,
            c.tainted,
            c.offered_ts,
            c.first_answer_ts.is_some(),
        );
        let outstanding = c.outstanding;
        self.trunk_change(g, -1);
        if tainted {
            self.mark_open(reason::CALL_ACROSS_GAP);
        } else {
            let r = self.open().tkgrp(g);
            r[ti::INCALLS] += 1;
            r[ti::INTIME] += ts - offered;
            r[ti::ABNCALLS] += (kind == EndKind::Abandoned && !answered) as i64;
        }
        if outstanding == 0 {
            self.book_vdn(call);
        }
    }

    /// Books the call's VDN items at its completion (the current instant).
    fn book_vdn(&mut self, call: u32) {
        use idx::vdn as vi;
        let c = self.st.calls.remove(&call).expect("present");
        if c.tainted {
            return self.mark_open(reason::CALL_ACROSS_GAP);
        }
        let sl = self
            .st
            .vdns
            .get(&c.vdn)
            .map(|d| d.service_level as i64 * 1000)
            .unwrap_or(0);
        let (end_ts, kind) = c.ended.expect("ended");
        let r = self.open().vdn(c.vdn);
        r[vi::INCALLS] += 1;
        if let Some(a) = c.first_answer_ts {
            let w = a - c.offered_ts;
            r[vi::ACDCALLS] += 1;
            r[vi::ANSTIME] += w;
            r[vi::ACCEPTABLE] += (w <= sl) as i64;
            r[vi::MAXOCWTIME] = r[vi::MAXOCWTIME].max(w);
        } else if kind == EndKind::Abandoned {
            let w = end_ts - c.offered_ts;
            r[vi::ABNCALLS] += 1;
            r[vi::ABNTIME] += w;
            r[vi::MAXOCWTIME] = r[vi::MAXOCWTIME].max(w);
        }
        r[vi::ACDTIME] += c.vdn_acd_ms;
        r[vi::ACWTIME] += c.vdn_acw_ms;
        r[vi::HOLDTIME] += c.vdn_hold_ms;
        r[vi::TRANSFERRED] += c.transferred_any as i64;
        r[vi::BUSYCALLS] += (kind == EndKind::Busy) as i64;
        r[vi::DISCCALLS] += (kind == EndKind::Disconnected) as i64;
    }
}

/// Outflow in the primary and deque in the other skills of a segment booked in `booked`.
fn book_others(o: &mut Open, skills: &[u16], primary: u16, booked: u16) {
    use idx::split as si;
    for &q in skills {
        if q == booked {
            continue;
        }
        let r = o.split(q);
        r[si::CALLSOFFERED] += 1;
        if q == primary {
            r[si::OUTFLOWCALLS] += 1;
        } else {
            r[si::DEQUECALLS] += 1;
        }
    }
}

fn bump(levels: &mut FxHashMap<u16, Level>, k: u16, d: i64) {
    let l = levels.entry(k).or_default();
    l.now += d;
    l.dirty = true;
}

/// Accrues the agent's current state from `rec.since` to `t` into every skill row.
fn accrue_agent(open: &mut Open, agent: u32, rec: &mut AgentRec, t: i64) {
    use idx::agent as ai;
    let d = t - rec.since;
    rec.since = t;
    if d <= 0 {
        return;
    }
    for sl in &rec.skills {
        let r = open.agent(agent, sl.skill);
        r[ai::I_STAFFTIME] += d;
        let own = rec.work_skill == sl.skill;
        match rec.state {
            AgentState::Avail => r[ai::I_AVAILTIME] += d,
            AgentState::Acd if own => r[ai::I_ACDTIME] += d,
            AgentState::Acw if own => r[ai::I_ACWTIME] += d,
            AgentState::Ring if own => r[ai::I_RINGTIME] += d,
            AgentState::Aux(rc) => {
                r[ai::I_AUXTIME] += d;
                r[ai::I_AUXTIME0 + rc as usize] += d;
            }
            _ => r[ai::I_OTHERTIME] += d,
        }
    }
}

fn accrue_trunk(open: &mut Open, g: u16, tl: &mut TrunkLevel, trunks: Option<i64>, t: i64) {
    use idx::tkgrp as ti;
    let d = t - tl.since;
    tl.since = t;
    if d <= 0 || tl.in_use == 0 {
        return;
    }
    let r = open.tkgrp(g);
    r[ti::I_INOCC] += d * tl.in_use;
    if trunks.is_some_and(|n| tl.in_use >= n) {
        r[ti::ALLINUSETIME] += d;
    }
}

#[cfg(test)]
mod tests;
