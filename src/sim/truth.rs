//! Ground truth: the exact interval rows a perfect collector must produce, computed from
//! the simulator's own call and agent timelines (a second, independent implementation of
//! `docs/data-items.md`), and written into a database with the collector's schema.
//!
//! Owns the counting rules on the simulator side. It shares no aggregation code with the
//! collector (`agg`, `interval`): interval boundaries are computed here from the formula
//! in data-items.md. It is fed by the generator (`gen.rs`) as the simulated world changes,
//! never by the event stream, and it does not decide what happens in the world.
//!
//! How it is fed: call-based items are booked from a call's [`CallTimeline`] at the
//! instants data-items.md names (a segment at its completion, the trunk row at the call's
//! end, the VDN row at the call's completion); interval-based items accrue from level
//! changes (calls in queue, trunks in use, agents staffed) and agent state changes. Only
//! one interval is ever open: everything is booked "now", and the generator calls
//! [`Truth::advance`] before it acts at a later instant.

use crate::domain::{IntervalStatus, Reason};
use crate::items::{TableDef, AGENT, SPLIT, TKGRP, VDN};
use crate::proto::{AgentState, SkillDef, N_PERIODS};
use chrono::{Offset, TimeZone};
use chrono_tz::Tz;
use std::collections::HashMap;

/// Column index of `name` in `t.items`, resolved at compile time (a typo fails the build).
const fn idx(t: &TableDef, name: &str) -> usize {
    let mut i = 0;
    while i < t.items.len() {
        let a = t.items[i].0.as_bytes();
        let b = name.as_bytes();
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("no such item")
}

const NS: usize = SPLIT.items.len();
const NA: usize = AGENT.items.len();
const NV: usize = VDN.items.len();
const NT: usize = TKGRP.items.len();

mod s {
    use super::*;
    pub const CALLSOFFERED: usize = idx(&SPLIT, "callsoffered");
    pub const ACDCALLS: usize = idx(&SPLIT, "acdcalls");
    pub const ABNCALLS: usize = idx(&SPLIT, "abncalls");
    pub const ABNTIME: usize = idx(&SPLIT, "abntime");
    pub const ANSTIME: usize = idx(&SPLIT, "anstime");
    pub const MAXOCWTIME: usize = idx(&SPLIT, "maxocwtime");
    pub const ACCEPTABLE: usize = idx(&SPLIT, "acceptable");
    pub const SLVLABNS: usize = idx(&SPLIT, "slvlabns");
    pub const ACDCALLS1: usize = idx(&SPLIT, "acdcalls1");
    pub const ABNCALLS1: usize = idx(&SPLIT, "abncalls1");
    pub const ACDTIME: usize = idx(&SPLIT, "acdtime");
    pub const ACWTIME: usize = idx(&SPLIT, "acwtime");
    pub const HOLDTIME: usize = idx(&SPLIT, "holdtime");
    pub const HOLDCALLS: usize = idx(&SPLIT, "holdcalls");
    pub const TRANSFERRED: usize = idx(&SPLIT, "transferred");
    pub const CONFERENCE: usize = idx(&SPLIT, "conference");
    pub const OUTFLOWCALLS: usize = idx(&SPLIT, "outflowcalls");
    pub const INFLOWCALLS: usize = idx(&SPLIT, "inflowcalls");
    pub const DEQUECALLS: usize = idx(&SPLIT, "dequecalls");
    pub const I_ARRIVED: usize = idx(&SPLIT, "i_arrived");
    pub const MAXINQUEUE: usize = idx(&SPLIT, "maxinqueue");
    pub const I_STAFFTIME: usize = idx(&SPLIT, "i_stafftime");
    pub const MAXSTAFFED: usize = idx(&SPLIT, "maxstaffed");
}
mod a {
    use super::*;
    pub const ACDCALLS: usize = idx(&AGENT, "acdcalls");
    pub const ACDTIME: usize = idx(&AGENT, "acdtime");
    pub const ACWTIME: usize = idx(&AGENT, "acwtime");
    pub const RINGCALLS: usize = idx(&AGENT, "ringcalls");
    pub const RINGTIME: usize = idx(&AGENT, "ringtime");
    pub const ABNCALLS: usize = idx(&AGENT, "abncalls");
    pub const HOLDCALLS: usize = idx(&AGENT, "holdcalls");
    pub const HOLDACDTIME: usize = idx(&AGENT, "holdacdtime");
    pub const TRANSFERRED: usize = idx(&AGENT, "transferred");
    pub const CONFERENCE: usize = idx(&AGENT, "conference");
    pub const I_STAFFTIME: usize = idx(&AGENT, "i_stafftime");
    pub const I_AVAILTIME: usize = idx(&AGENT, "i_availtime");
    pub const I_ACDTIME: usize = idx(&AGENT, "i_acdtime");
    pub const I_ACWTIME: usize = idx(&AGENT, "i_acwtime");
    pub const I_RINGTIME: usize = idx(&AGENT, "i_ringtime");
    pub const I_OTHERTIME: usize = idx(&AGENT, "i_othertime");
    pub const I_AUXTIME: usize = idx(&AGENT, "i_auxtime");
    pub const I_AUXTIME0: usize = idx(&AGENT, "i_auxtime0");
}
mod v {
    use super::*;
    pub const INCALLS: usize = idx(&VDN, "incalls");
    pub const ACDCALLS: usize = idx(&VDN, "acdcalls");
    pub const ABNCALLS: usize = idx(&VDN, "abncalls");
    pub const ABNTIME: usize = idx(&VDN, "abntime");
    pub const ANSTIME: usize = idx(&VDN, "anstime");
    pub const ACCEPTABLE: usize = idx(&VDN, "acceptable");
    pub const ACDTIME: usize = idx(&VDN, "acdtime");
    pub const ACWTIME: usize = idx(&VDN, "acwtime");
    pub const HOLDTIME: usize = idx(&VDN, "holdtime");
    pub const TRANSFERRED: usize = idx(&VDN, "transferred");
    pub const BUSYCALLS: usize = idx(&VDN, "busycalls");
    pub const DISCCALLS: usize = idx(&VDN, "disccalls");
    pub const MAXOCWTIME: usize = idx(&VDN, "maxocwtime");
}
mod t {
    use super::*;
    pub const INCALLS: usize = idx(&TKGRP, "incalls");
    pub const INTIME: usize = idx(&TKGRP, "intime");
    pub const ABNCALLS: usize = idx(&TKGRP, "abncalls");
    pub const I_INOCC: usize = idx(&TKGRP, "i_inocc");
    pub const ALLINUSETIME: usize = idx(&TKGRP, "allinusetime");
}

/// The split row's interval-based agent items, in the same order as in the agent row
/// (i_stafftime .. i_auxtime9): the split row is their sum over agents.
const N_IAGENT: usize = 17;
const _: () = assert!(a::I_AUXTIME0 + 10 == a::I_STAFFTIME + N_IAGENT);
const _: () = assert!(idx(&SPLIT, "i_auxtime9") == s::I_STAFFTIME + N_IAGENT - 1);

/// Whether an item is stored in seconds (accrued here in milliseconds). `i_inocc` is
/// trunk-seconds although its name does not end in "time".
fn is_ms(item: &str) -> bool {
    crate::items::is_seconds(item) || item == "i_inocc"
}

/// Who rang (and maybe answered) a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ring {
    pub agent: u32,
    /// The delivering skill.
    pub skill: u16,
    pub ts: i64,
}

/// One pass of a call through the queues (docs/data-items.md, "The call model").
/// All instants are switch time in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Segment {
    /// Skills queued to, in order, with the instant; the first is the primary.
    pub queued: Vec<(u16, i64)>,
    pub ring: Option<Ring>,
    pub answer: Option<i64>,
    /// Hold periods (start, retrieve) within the talk.
    pub holds: Vec<(i64, i64)>,
    pub conferenced: bool,
    pub transferred: bool,
    /// End of talk: the transfer or the release.
    pub talk_end: Option<i64>,
    /// When the answering agent left ACW, if it went to ACW at the end of talk.
    pub acw_end: Option<i64>,
    /// When the caller hung up in queue or while ringing.
    pub abandon: Option<i64>,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    Released,
    Abandoned,
    Busy,
    Disconnected,
}

/// Everything that happened to one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTimeline {
    pub vdn: u16,
    pub tkgrp: u16,
    pub offered: i64,
    /// The call's end (trunk released) and how.
    pub end: Option<(i64, CallEnd)>,
    pub segments: Vec<Segment>,
}

impl Segment {
    /// Completion of the segment (data-items.md): the abandon, or for an answered segment
    /// the end of its ACW (or the end of talk when there was none). None while open.
    pub fn completion(&self) -> Option<i64> {
        if let Some(t) = self.abandon {
            return Some(t);
        }
        self.answer?;
        let te = self.talk_end?;
        Some(self.acw_end.unwrap_or(te))
    }
    fn first_queued(&self) -> i64 {
        self.queued.first().map(|q| q.1).unwrap_or(0)
    }
    fn hold_ms(&self) -> i64 {
        self.holds.iter().map(|(a, b)| b - a).sum()
    }
}

impl CallTimeline {
    /// The call's completion: the latest of its end and its segments' completions.
    pub fn completion(&self) -> Option<i64> {
        let mut c = self.end?.0;
        for s in &self.segments {
            c = c.max(s.completion()?);
        }
        Some(c)
    }
    fn first_answer(&self) -> Option<i64> {
        self.segments.iter().find_map(|s| s.answer)
    }
}

/// The translations the truth needs: service levels, bands, trunk counts.
#[derive(Debug, Clone)]
pub struct TruthConfig {
    pub tz: Tz,
    pub interval_minutes: u32,
    pub acd: u16,
    pub skills: Vec<SkillDef>,
    /// VDN -> service level, seconds.
    pub vdn_service_level: HashMap<u16, u16>,
    /// Trunk group -> number of trunks.
    pub trunks: HashMap<u16, u16>,
}

/// A count that changes over time, for `max*` items and occupancy integrals.
#[derive(Debug, Default, Clone, Copy)]
struct Level {
    count: i64,
    since: i64,
}

#[derive(Debug)]
struct AgentTrack {
    skills: Vec<u16>,
    state: AgentState,
    work_skill: u16,
    since: i64,
}

/// The rows of the one open interval, in milliseconds for time items.
#[derive(Debug, Default)]
struct Acc {
    split: HashMap<u16, [i64; NS]>,
    agent: HashMap<(u32, u16), [i64; NA]>,
    vdn: HashMap<u16, [i64; NV]>,
    tkgrp: HashMap<u16, [i64; NT]>,
}

/// One closed interval, ready to store: rows per table in canonical key order, values as
/// stored (seconds), all-zero rows left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedInterval {
    pub istart: i64,
    /// Per table (in `items::TABLES` order): (entity key columns, item values).
    pub rows: [Vec<(Vec<i64>, Vec<i64>)>; 4],
    /// Reasons to mark the interval incomplete, in order (the simulator's only faults
    /// the truth sees are clock changes: `call_across_gap`, `clock_change`).
    pub reasons: Vec<Reason>,
}

/// The ground-truth accumulator.
pub struct Truth {
    cfg: TruthConfig,
    sl: HashMap<u16, (u16, [u16; N_PERIODS])>,
    /// Interval length, seconds.
    len: i64,
    /// The open interval [cur_start, cur_end), UTC ms.
    cur_start: i64,
    cur_end: i64,
    acc: Acc,
    queues: HashMap<u16, Level>,
    staffed: HashMap<u16, Level>,
    trunks_used: HashMap<u16, Level>,
    agents: HashMap<u32, AgentTrack>,
    closed: Vec<ClosedInterval>,
    /// Switch-time ranges [from, until) in ms whose intervals are `clock_change`.
    incomplete: Vec<(i64, i64)>,
    /// The clock changed while the open interval was open: it is `clock_change`.
    open_clock_change: bool,
    /// A call in progress at a clock change was booked in the open interval: it is
    /// `call_across_gap` (docs/data-items.md, "Interval status").
    open_call_across: bool,
}

impl Truth {
    /// Starts the truth with the interval that contains `start_ms`.
    pub fn new(cfg: TruthConfig, start_ms: i64) -> Truth {
        let len = cfg.interval_minutes as i64 * 60;
        let sl = cfg
            .skills
            .iter()
            .map(|s| (s.skill, (s.service_level, s.periods)))
            .collect();
        let cur_start = interval_start(&cfg.tz, len, start_ms.div_euclid(1000)) * 1000;
        Truth {
            sl,
            len,
            cur_start,
            cur_end: next_start(&cfg.tz, len, cur_start / 1000) * 1000,
            cfg,
            acc: Acc::default(),
            queues: HashMap::new(),
            staffed: HashMap::new(),
            trunks_used: HashMap::new(),
            agents: HashMap::new(),
            closed: Vec::new(),
            incomplete: Vec::new(),
            open_clock_change: false,
            open_call_across: false,
        }
    }

    pub fn config(&self) -> &TruthConfig {
        &self.cfg
    }

    /// End of the open interval (UTC ms): call [`advance`](Self::advance) before acting
    /// at or after it.
    #[inline]
    pub fn next_close(&self) -> i64 {
        self.cur_end
    }

    /// Closes every interval that ends at or before `now` (UTC ms).
    pub fn advance(&mut self, now: i64) {
        while now >= self.cur_end {
            self.close_current();
        }
    }

    /// Takes the intervals closed so far.
    pub fn take_closed(&mut self) -> Vec<ClosedInterval> {
        std::mem::take(&mut self.closed)
    }

    /// The switch clock changed from `old` to `new` (ms). The open interval, and for a
    /// set forward every interval up to the one holding `new` (jumped over), become
    /// `clock_change`. After a set back the open interval stays open until the new clock
    /// passes its end: what falls in between is booked there (it is incomplete anyway)
    /// and agent and level time is not counted twice. Intervals closed before the change
    /// are left as they are, even when the new clock reads a time inside them: nothing
    /// is booked into them after it (docs/data-items.md: `clock_change` is an interval
    /// open at a change or jumped over).
    pub fn clock_change(&mut self, old: i64, new: i64) {
        self.open_clock_change = true;
        if new > old {
            self.incomplete.push((old, new + 1));
        } else {
            self.incomplete.push((new, old + 1));
        }
    }

    /// Marks the open interval `call_across_gap` (a call in progress at a clock change was
    /// booked in it).
    pub fn mark_call_across_gap(&mut self) {
        self.open_call_across = true;
    }

    fn close_current(&mut self) {
        let end = self.cur_end;
        let ids: Vec<u32> = self.agents.keys().copied().collect();
        for id in ids {
            self.accrue_agent(id, end);
        }
        let tk = &self.cfg.trunks;
        for (q, lv) in [
            (0u8, &mut self.queues),
            (1, &mut self.staffed),
            (2, &mut self.trunks_used),
        ] {
            for (id, l) in lv.iter_mut() {
                accrue_level(&mut self.acc, tk, q, *id, l, end);
            }
        }
        let acc = std::mem::take(&mut self.acc);
        let mut ci = ClosedInterval {
            istart: self.cur_start / 1000,
            rows: [
                rows(
                    acc.split.into_iter().map(|(k, v)| (vec![k as i64], v)),
                    &SPLIT,
                ),
                rows(
                    acc.agent
                        .into_iter()
                        .map(|((ag, sk), v)| (vec![ag as i64, sk as i64], v)),
                    &AGENT,
                ),
                rows(acc.vdn.into_iter().map(|(k, v)| (vec![k as i64], v)), &VDN),
                rows(
                    acc.tkgrp.into_iter().map(|(k, v)| (vec![k as i64], v)),
                    &TKGRP,
                ),
            ],
            reasons: Vec::new(),
        };
        if self.open_call_across {
            ci.reasons.push(Reason::CallAcrossGap);
        }
        if self.open_clock_change
            || self
                .incomplete
                .iter()
                .any(|&(from, until)| self.cur_start < until && end > from)
        {
            ci.reasons.push(Reason::ClockChange);
        }
        self.open_clock_change = false;
        self.open_call_across = false;
        self.closed.push(ci);
        self.cur_start = end;
        self.cur_end = next_start(&self.cfg.tz, self.len, end / 1000) * 1000;
    }

    // ---- levels -------------------------------------------------------------------

    fn level(&mut self, kind: u8, id: u16, t: i64, delta: i64) {
        let tk = &self.cfg.trunks;
        let map = match kind {
            0 => &mut self.queues,
            1 => &mut self.staffed,
            _ => &mut self.trunks_used,
        };
        let l = map.entry(id).or_insert(Level { count: 0, since: t });
        accrue_level(&mut self.acc, tk, kind, id, l, t);
        l.count += delta;
    }

    /// A call is queued to `skill` (CALL_QUEUED): `i_arrived` and the queue level.
    pub fn queued(&mut self, skill: u16, t: i64) {
        self.split(skill)[s::I_ARRIVED] += 1;
        self.level(0, skill, t, 1);
    }

    /// A call leaves `skill`'s queue (rings, abandons or ends).
    pub fn dequeued(&mut self, skill: u16, t: i64) {
        self.level(0, skill, t, -1);
    }

    /// A trunk of `tkgrp` is seized (+1) or released (-1).
    pub fn trunk(&mut self, tkgrp: u16, t: i64, delta: i64) {
        self.level(2, tkgrp, t, delta);
    }

    // ---- agents -------------------------------------------------------------------

    /// The agent logs in to `skills`; it is in OTHER until its first state change.
    pub fn agent_login(&mut self, agent: u32, skills: &[u16], t: i64) {
        for &sk in skills {
            self.level(1, sk, t, 1);
        }
        self.agents.insert(
            agent,
            AgentTrack {
                skills: skills.to_vec(),
                state: AgentState::Other,
                work_skill: 0,
                since: t,
            },
        );
    }

    pub fn agent_state(&mut self, agent: u32, state: AgentState, work_skill: u16, t: i64) {
        self.accrue_agent(agent, t);
        if let Some(ag) = self.agents.get_mut(&agent) {
            ag.state = state;
            ag.work_skill = work_skill;
        }
    }

    pub fn agent_logout(&mut self, agent: u32, t: i64) {
        self.accrue_agent(agent, t);
        if let Some(ag) = self.agents.remove(&agent) {
            for sk in ag.skills {
                self.level(1, sk, t, -1);
            }
        }
    }

    fn accrue_agent(&mut self, agent: u32, t: i64) {
        let Some(ag) = self.agents.get_mut(&agent) else {
            return;
        };
        let d = t - ag.since;
        if d <= 0 {
            return;
        }
        ag.since = t;
        for &sk in &ag.skills {
            let row = self.acc.agent.entry((agent, sk)).or_insert([0; NA]);
            row[a::I_STAFFTIME] += d;
            let col = match ag.state {
                AgentState::Avail => a::I_AVAILTIME,
                AgentState::Acd if ag.work_skill == sk => a::I_ACDTIME,
                AgentState::Acw if ag.work_skill == sk => a::I_ACWTIME,
                AgentState::Ring if ag.work_skill == sk => a::I_RINGTIME,
                AgentState::Aux(r) => {
                    row[a::I_AUXTIME0 + r as usize] += d;
                    a::I_AUXTIME
                }
                _ => a::I_OTHERTIME,
            };
            row[col] += d;
            let srow = self.acc.split.entry(sk).or_insert([0; NS]);
            srow[s::I_STAFFTIME] += d;
            srow[s::I_STAFFTIME + (col - a::I_STAFFTIME)] += d;
            if let AgentState::Aux(r) = ag.state {
                srow[s::I_STAFFTIME + (a::I_AUXTIME0 - a::I_STAFFTIME) + r as usize] += d;
            }
        }
    }

    // ---- call-based ---------------------------------------------------------------

    fn split(&mut self, sk: u16) -> &mut [i64; NS] {
        self.acc.split.entry(sk).or_insert([0; NS])
    }

    fn band(&self, sk: u16, wait: i64) -> (bool, usize) {
        let (sl, periods) = self.sl.get(&sk).copied().unwrap_or((0, [0; N_PERIODS]));
        let band = periods
            .iter()
            .position(|&p| wait <= p as i64 * 1000)
            .unwrap_or(N_PERIODS);
        (wait <= sl as i64 * 1000, band)
    }

    /// Books segment `i` of `c` at its completion (which is now).
    pub fn book_segment(&mut self, c: &CallTimeline, i: usize) {
        let sg = &c.segments[i];
        if sg.queued.is_empty() {
            return;
        }
        let primary = sg.queued[0].0;
        let wait_end = sg.answer.or(sg.abandon).expect("completed segment");
        let wait = wait_end - sg.first_queued();
        // The skill that booked the outcome (acd or abn), if any.
        let outcome_skill = match (sg.answer, sg.ring) {
            (_, Some(r)) => r.skill,
            (None, None) => primary,
            (Some(_), None) => unreachable!("answered without ringing"),
        };
        for &(sk, _) in &sg.queued {
            let row = self.split(sk);
            row[s::CALLSOFFERED] += 1;
            if sk == outcome_skill {
                continue;
            }
            if sk == primary {
                row[s::OUTFLOWCALLS] += 1;
            } else {
                row[s::DEQUECALLS] += 1;
            }
        }
        let (acceptable, band) = self.band(outcome_skill, wait);
        let hold = sg.hold_ms();
        let row = self.split(outcome_skill);
        if outcome_skill != primary {
            row[s::INFLOWCALLS] += 1;
        }
        row[s::MAXOCWTIME] = row[s::MAXOCWTIME].max(wait);
        if let Some(ans) = sg.answer {
            let talk = sg.talk_end.expect("completed") - ans;
            let acw = sg.acw_end.map_or(0, |e| e - sg.talk_end.unwrap());
            row[s::ACDCALLS] += 1;
            row[s::ANSTIME] += wait;
            row[s::ACCEPTABLE] += acceptable as i64;
            row[s::ACDCALLS1 + band] += 1;
            row[s::ACDTIME] += talk - hold;
            row[s::ACWTIME] += acw;
            row[s::HOLDTIME] += hold;
            row[s::HOLDCALLS] += !sg.holds.is_empty() as i64;
            row[s::TRANSFERRED] += sg.transferred as i64;
            row[s::CONFERENCE] += sg.conferenced as i64;
            let r = sg.ring.expect("answered segments rang");
            let ar = self.acc.agent.entry((r.agent, r.skill)).or_insert([0; NA]);
            ar[a::ACDCALLS] += 1;
            ar[a::ACDTIME] += talk - hold;
            ar[a::ACWTIME] += acw;
            ar[a::RINGCALLS] += 1;
            ar[a::RINGTIME] += ans - r.ts;
            ar[a::HOLDCALLS] += !sg.holds.is_empty() as i64;
            ar[a::HOLDACDTIME] += hold;
            ar[a::TRANSFERRED] += sg.transferred as i64;
            ar[a::CONFERENCE] += sg.conferenced as i64;
        } else {
            row[s::ABNCALLS] += 1;
            row[s::ABNTIME] += wait;
            row[s::SLVLABNS] += acceptable as i64;
            row[s::ABNCALLS1 + band] += 1;
            if let Some(r) = sg.ring {
                let ab = sg.abandon.expect("abandoned");
                let ar = self.acc.agent.entry((r.agent, r.skill)).or_insert([0; NA]);
                ar[a::RINGCALLS] += 1;
                ar[a::RINGTIME] += ab - r.ts;
                ar[a::ABNCALLS] += 1;
            }
        }
    }

    /// Books the trunk group row at the call's end (now).
    pub fn book_trunk(&mut self, c: &CallTimeline) {
        let (end, how) = c.end.expect("ended");
        let abandoned = how == CallEnd::Abandoned && c.first_answer().is_none();
        let row = self.acc.tkgrp.entry(c.tkgrp).or_insert([0; NT]);
        row[t::INCALLS] += 1;
        row[t::INTIME] += end - c.offered;
        row[t::ABNCALLS] += abandoned as i64;
    }

    /// Books the VDN row at the call's completion (now).
    pub fn book_vdn(&mut self, c: &CallTimeline) {
        let (end, how) = c.end.expect("ended");
        let sl = self.cfg.vdn_service_level.get(&c.vdn).copied().unwrap_or(0) as i64 * 1000;
        let row = self.acc.vdn.entry(c.vdn).or_insert([0; NV]);
        row[v::INCALLS] += 1;
        match c.first_answer() {
            Some(ans) => {
                let w = ans - c.offered;
                row[v::ACDCALLS] += 1;
                row[v::ANSTIME] += w;
                row[v::ACCEPTABLE] += (w <= sl) as i64;
                row[v::MAXOCWTIME] = row[v::MAXOCWTIME].max(w);
            }
            None if how == CallEnd::Abandoned => {
                let w = end - c.offered;
                row[v::ABNCALLS] += 1;
                row[v::ABNTIME] += w;
                row[v::MAXOCWTIME] = row[v::MAXOCWTIME].max(w);
            }
            None => {}
        }
        for sg in c.segments.iter().filter(|s| s.answer.is_some()) {
            let hold = sg.hold_ms();
            let te = sg.talk_end.expect("completed");
            row[v::ACDTIME] += te - sg.answer.unwrap() - hold;
            row[v::ACWTIME] += sg.acw_end.map_or(0, |e| e - te);
            row[v::HOLDTIME] += hold;
        }
        row[v::TRANSFERRED] += c.segments.iter().any(|s| s.transferred) as i64;
        row[v::BUSYCALLS] += (how == CallEnd::Busy) as i64;
        row[v::DISCCALLS] += (how == CallEnd::Disconnected) as i64;
    }
}

/// Accrues the stretch [l.since, t) of a level into the open interval.
fn accrue_level(
    acc: &mut Acc,
    trunks: &HashMap<u16, u16>,
    kind: u8,
    id: u16,
    l: &mut Level,
    t: i64,
) {
    if t <= l.since {
        return;
    }
    let d = t - l.since;
    l.since = t;
    match kind {
        0 | 1 if l.count > 0 => {
            let col = if kind == 0 {
                s::MAXINQUEUE
            } else {
                s::MAXSTAFFED
            };
            let row = acc.split.entry(id).or_insert([0; NS]);
            row[col] = row[col].max(l.count);
        }
        2 if l.count > 0 => {
            let row = acc.tkgrp.entry(id).or_insert([0; NT]);
            row[t::I_INOCC] += l.count * d;
            if l.count >= trunks.get(&id).copied().unwrap_or(u16::MAX) as i64 {
                row[t::ALLINUSETIME] += d;
            }
        }
        _ => {}
    }
}

/// Converts accumulated rows to stored values: ms to whole seconds (floor), drop all-zero
/// rows, sort by key.
fn rows<const N: usize>(
    it: impl Iterator<Item = (Vec<i64>, [i64; N])>,
    def: &TableDef,
) -> Vec<(Vec<i64>, Vec<i64>)> {
    let mut out: Vec<(Vec<i64>, Vec<i64>)> = it
        .filter(|(_, v)| v.iter().any(|&x| x != 0))
        .map(|(k, v)| {
            let vals = v
                .iter()
                .zip(def.items)
                .map(|(&x, (name, _))| {
                    // Negative only across a clock set back (an incomplete interval).
                    if is_ms(name) {
                        x.div_euclid(1000).max(0)
                    } else {
                        x.max(0)
                    }
                })
                .collect();
            (k, vals)
        })
        .filter(|(_, v): &(Vec<i64>, Vec<i64>)| v.iter().any(|&x| x != 0))
        .collect();
    out.sort();
    out
}

/// UTC offset of `tz` at `t` (UTC seconds), seconds east.
fn offset(tz: &Tz, t: i64) -> i64 {
    tz.offset_from_utc_datetime(
        &chrono::DateTime::from_timestamp(t, 0)
            .expect("in range")
            .naive_utc(),
    )
    .fix()
    .local_minus_utc() as i64
}

/// Start (UTC seconds) of the interval of length `len` s containing `t`:
/// `t - ((t + off(t)) mod L)` (docs/data-items.md, "Time and intervals").
/// An offset change after that start, up to `t`, starts the interval instead (a DST step
/// that is not a multiple of L, e.g. 30 min with 60-min intervals).
pub fn interval_start(tz: &Tz, len: i64, t: i64) -> i64 {
    let s = t - (t + offset(tz, t)).rem_euclid(len);
    if offset(tz, s) == offset(tz, t) {
        s
    } else {
        first_change(tz, s, t)
    }
}

/// The first instant in `(lo, hi]` whose offset is not `lo`'s (`hi`'s is not).
fn first_change(tz: &Tz, mut lo: i64, mut hi: i64) -> i64 {
    let off = offset(tz, lo);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset(tz, mid) == off {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// Start of the interval after the one starting at `start` (the first instant whose
/// interval start differs): the start of `start + L`'s interval, or an offset change
/// before it.
pub fn next_start(tz: &Tz, len: i64, start: i64) -> i64 {
    let e = interval_start(tz, len, start + len);
    if offset(tz, e - 1) == offset(tz, start) {
        e
    } else {
        first_change(tz, start, e - 1)
    }
}

/// Local date (YYYY-MM-DD) and HHMM of an interval start, for `row_date`/`starttime`.
pub fn local_labels(tz: &Tz, istart: i64) -> (String, i64) {
    let dt = tz
        .timestamp_opt(istart, 0)
        .single()
        .expect("unique instant");
    (
        dt.format("%Y-%m-%d").to_string(),
        dt.format("%H%M").to_string().parse().expect("digits"),
    )
}

/// Writes closed intervals into a database with the collector's schema.
pub struct TruthWriter {
    store: crate::store::Store,
    tz: Tz,
    acd: u16,
    minutes: u32,
    /// Intervals written so far.
    pub intervals: u64,
}

impl TruthWriter {
    /// Creates (or opens) the truth database.
    ///
    /// # Errors
    /// The store cannot be opened or created.
    pub fn open(
        path: &std::path::Path,
        tz: Tz,
        acd: u16,
        minutes: u32,
    ) -> Result<TruthWriter, crate::store::StoreError> {
        Ok(TruthWriter {
            store: crate::store::Store::open(path)?,
            tz,
            acd,
            minutes,
            intervals: 0,
        })
    }

    /// Writes one interval and its status row in one transaction.
    ///
    /// # Errors
    /// A database error.
    pub fn write(&mut self, ci: &ClosedInterval) -> rusqlite::Result<()> {
        let (date, hhmm) = local_labels(&self.tz, ci.istart);
        let tx = self.store.conn.transaction()?;
        for (def, rows) in crate::items::TABLES.iter().zip(&ci.rows) {
            if rows.is_empty() {
                continue;
            }
            let mut cols: Vec<&str> = vec!["acd"];
            cols.extend(def.keys);
            cols.extend(["istart", "row_date", "starttime", "intrvl"]);
            cols.extend(def.items.iter().map(|(n, _)| *n));
            let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
            let sql = format!(
                "INSERT OR REPLACE INTO h{} ({}) VALUES ({})",
                def.name,
                cols.join(", "),
                marks.join(", ")
            );
            let mut st = tx.prepare_cached(&sql)?;
            for (key, vals) in rows {
                let mut p: Vec<rusqlite::types::Value> = Vec::with_capacity(cols.len());
                p.push((self.acd as i64).into());
                p.extend(key.iter().map(|&k| k.into()));
                p.push(ci.istart.into());
                p.push(date.clone().into());
                p.push(hhmm.into());
                p.push((self.minutes as i64).into());
                p.extend(vals.iter().map(|&x| x.into()));
                st.execute(rusqlite::params_from_iter(p))?;
            }
        }
        let (n, sum) = crate::store::interval_checksum(&tx, self.acd, ci.istart)?;
        let now = chrono::Utc::now().timestamp();
        let status = IntervalStatus::of(ci.reasons.is_empty());
        let reasons = Reason::join(&ci.reasons);
        tx.execute(
            "INSERT OR REPLACE INTO interval_status (acd, istart, intrvl, row_date, starttime,
                 status, reasons, source, row_count, checksum, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'truth', ?8, ?9, ?10)",
            rusqlite::params![
                self.acd,
                ci.istart,
                self.minutes,
                date,
                hhmm,
                status,
                reasons,
                n,
                sum,
                now
            ],
        )?;
        tx.commit()?;
        self.intervals += 1;
        Ok(())
    }
}

/// What the switch sends the truth writer thread.
#[derive(Debug)]
pub enum TruthMsg {
    Interval(ClosedInterval),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ReleasedBy;

    fn at(hms: &str) -> i64 {
        // 2024-01-15 in Europe/London (UTC+0 in winter).
        let t = chrono::NaiveDateTime::parse_from_str(
            &format!("2024-01-15 {hms}"),
            "%Y-%m-%d %H:%M:%S",
        )
        .unwrap();
        t.and_utc().timestamp() * 1000
    }

    fn get(ci: &ClosedInterval, table: usize, key: &[i64], item: &str) -> i64 {
        let def = crate::items::TABLES[table];
        let i = def.index_of(item).unwrap();
        ci.rows[table]
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v[i])
            .unwrap_or(0)
    }

    /// docs/data-items.md, "Worked example: a call across an interval boundary".
    #[test]
    fn worked_example() {
        let _ = ReleasedBy::Caller;
        let mut periods = [0u16; N_PERIODS];
        let p = [5, 10, 20, 30, 40, 50, 60, 90, 120];
        periods.copy_from_slice(&p);
        let cfg = TruthConfig {
            tz: chrono_tz::Europe::London,
            interval_minutes: 15,
            acd: 1,
            skills: vec![SkillDef {
                skill: 1,
                service_level: 20,
                periods,
                name: "s1".into(),
            }],
            vdn_service_level: [(1, 20)].into_iter().collect(),
            trunks: [(1, 10)].into_iter().collect(),
        };
        let mut tr = Truth::new(cfg, at("09:50:00"));
        // Agent 100 is AVAIL in skill 1 from 09:50:00.
        tr.agent_login(100, &[1], at("09:50:00"));
        tr.agent_state(100, AgentState::Avail, 0, at("09:50:00"));
        let mut c = CallTimeline {
            vdn: 1,
            tkgrp: 1,
            offered: at("09:58:00"),
            end: None,
            segments: vec![],
        };
        tr.advance(at("09:58:00"));
        tr.trunk(1, at("09:58:00"), 1);
        c.segments.push(Segment {
            queued: vec![(1, at("09:58:00"))],
            ..Default::default()
        });
        tr.queued(1, at("09:58:00"));
        tr.advance(at("09:58:12"));
        tr.dequeued(1, at("09:58:12"));
        c.segments[0].ring = Some(Ring {
            agent: 100,
            skill: 1,
            ts: at("09:58:12"),
        });
        tr.agent_state(100, AgentState::Ring, 1, at("09:58:12"));
        tr.advance(at("09:58:16"));
        c.segments[0].answer = Some(at("09:58:16"));
        tr.agent_state(100, AgentState::Acd, 1, at("09:58:16"));
        tr.advance(at("10:01:30"));
        c.segments[0].holds.push((at("10:01:00"), at("10:01:30")));
        tr.advance(at("10:04:16"));
        c.segments[0].talk_end = Some(at("10:04:16"));
        c.end = Some((at("10:04:16"), CallEnd::Released));
        tr.trunk(1, at("10:04:16"), -1);
        tr.book_trunk(&c);
        tr.agent_state(100, AgentState::Acw, 1, at("10:04:16"));
        tr.advance(at("10:05:16"));
        c.segments[0].acw_end = Some(at("10:05:16"));
        tr.agent_state(100, AgentState::Avail, 0, at("10:05:16"));
        assert_eq!(c.segments[0].completion(), Some(at("10:05:16")));
        assert_eq!(c.completion(), Some(at("10:05:16")));
        tr.book_segment(&c, 0);
        tr.book_vdn(&c);
        tr.advance(at("10:15:00"));
        let closed = tr.take_closed();
        assert_eq!(closed.len(), 2);
        let (i0945, i1000) = (&closed[0], &closed[1]);
        assert_eq!(i0945.istart * 1000, at("09:45:00"));
        assert_eq!(i1000.istart * 1000, at("10:00:00"));
        assert!(i0945.reasons.is_empty());
        let (sp, ag, vd, tk) = (0, 1, 2, 3);
        // Interval 09:45: no call-based split items, i_arrived 1, the agent's time.
        for item in ["callsoffered", "acdcalls", "anstime", "acdtime", "acwtime"] {
            assert_eq!(get(i0945, sp, &[1], item), 0, "{item}");
        }
        assert_eq!(get(i0945, sp, &[1], "i_arrived"), 1);
        assert_eq!(get(i0945, ag, &[100, 1], "i_availtime"), 492);
        assert_eq!(get(i0945, ag, &[100, 1], "i_ringtime"), 4);
        assert_eq!(get(i0945, ag, &[100, 1], "i_acdtime"), 104);
        assert_eq!(get(i0945, ag, &[100, 1], "i_stafftime"), 600);
        assert_eq!(get(i0945, sp, &[1], "i_stafftime"), 600);
        assert_eq!(get(i0945, tk, &[1], "i_inocc"), 120);
        assert_eq!(get(i0945, tk, &[1], "incalls"), 0);
        assert!(i0945.rows[vd].is_empty());
        // Interval 10:00.
        for (item, want) in [
            ("callsoffered", 1),
            ("acdcalls", 1),
            ("anstime", 16),
            ("acceptable", 1),
            ("acdcalls3", 1),
            ("acdtime", 330),
            ("holdtime", 30),
            ("holdcalls", 1),
            ("acwtime", 60),
            ("maxocwtime", 16),
            ("abncalls", 0),
            ("i_arrived", 0),
        ] {
            assert_eq!(get(i1000, sp, &[1], item), want, "hsplit {item}");
        }
        for (item, want) in [
            ("acdcalls", 1),
            ("ringcalls", 1),
            ("ringtime", 4),
            ("acdtime", 330),
            ("acwtime", 60),
            ("holdacdtime", 30),
            ("i_acdtime", 256),
            ("i_acwtime", 60),
            // then AVAIL until 10:15:00
            ("i_availtime", 584),
            ("i_stafftime", 900),
        ] {
            assert_eq!(get(i1000, ag, &[100, 1], item), want, "hagent {item}");
        }
        assert_eq!(get(i1000, vd, &[1], "incalls"), 1);
        assert_eq!(get(i1000, vd, &[1], "acdcalls"), 1);
        assert_eq!(get(i1000, vd, &[1], "anstime"), 16);
        assert_eq!(get(i1000, tk, &[1], "incalls"), 1);
        assert_eq!(get(i1000, tk, &[1], "intime"), 376);
        assert_eq!(get(i1000, tk, &[1], "i_inocc"), 256);
    }

    #[test]
    fn dst_day_has_100_quarter_hours() {
        // Europe/London falls back on 2024-10-27.
        let tz = chrono_tz::Europe::London;
        let day0 = chrono::NaiveDate::from_ymd_opt(2024, 10, 27).unwrap();
        let start = tz
            .from_local_datetime(&day0.and_hms_opt(0, 0, 0).unwrap())
            .single()
            .unwrap()
            .timestamp();
        let end = tz
            .from_local_datetime(&day0.succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap())
            .single()
            .unwrap()
            .timestamp();
        let mut n = 0;
        let mut t = start;
        while t < end {
            assert_eq!(interval_start(&tz, 900, t), t);
            t = next_start(&tz, 900, t);
            n += 1;
        }
        assert_eq!(n, 100);
    }
}
