//! The bookings of docs/asterisk.md, each driven through the collector's own
//! aggregation (`agg::Aggregator`) and checked against hand-worked numbers.

use super::*;
use crate::agg::{Aggregator, ClosedInterval};
use crate::interval::Grid;
use crate::items::{TableDef, AGENT, SPLIT, TABLES, TKGRP, VDN};
use crate::proto::Event as WireEvent;

/// Unix seconds of HH:MM:SS on 2026-11-02 UTC.
fn t(h: i64, m: i64, s: i64) -> i64 {
    1_793_577_600 + h * 3600 + m * 60 + s
}

struct Run {
    tr: Translator,
    agg: Aggregator,
    seq: u64,
    events: Vec<(i64, EventKind)>,
    closed: Vec<ClosedInterval>,
    errors: Vec<LineError>,
}

impl Run {
    fn new(map: &str) -> Run {
        let mut agg = Aggregator::new(Grid::new(chrono_tz::UTC, 15));
        agg.start_epoch(1);
        Run {
            tr: Translator::new(Mapping::parse(map).unwrap()),
            agg,
            seq: 0,
            events: vec![],
            closed: vec![],
            errors: vec![],
        }
    }

    fn feed(&mut self, out: Vec<(i64, EventKind)>) {
        for (ts, kind) in out {
            self.seq += 1;
            let ev = WireEvent {
                seq: self.seq,
                ts,
                kind: kind.clone(),
            };
            self.agg.apply(&ev, &mut self.closed);
            self.events.push((ts, kind));
        }
    }

    fn lines(&mut self, text: &str) {
        for (n, l) in text.lines().enumerate() {
            let l = l.trim_start();
            if l.starts_with('#') {
                continue;
            }
            let mut out = vec![];
            if let Err(e) = self.tr.line(n as u64 + 1, l, &mut out) {
                self.errors.push(e);
            }
            self.feed(out);
        }
    }

    /// Lets log time pass to `s` (Unix seconds) and closes every interval before it.
    fn until(&mut self, s: i64) {
        let mut out = vec![];
        self.tr.tick(s * 1000, &mut out);
        self.feed(out);
        self.agg.tick(s * 1000, &mut self.closed);
    }

    fn interval(&self, istart: i64) -> &ClosedInterval {
        self.closed
            .iter()
            .find(|c| c.istart == istart)
            .unwrap_or_else(|| panic!("interval {istart} not closed"))
    }
}

fn item(ci: &ClosedInterval, table: TableDef, key: &[i64], name: &str) -> i64 {
    let t = TABLES.iter().position(|d| d.name == table.name).unwrap();
    let i = table.index_of(name).unwrap();
    ci.rows[t]
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v[i])
        .unwrap_or(0)
}

const WORKED_MAP: &str = r#"
    wrapup_seconds = 60
    periods = [5, 10, 20, 30, 40, 50, 60, 120, 180]
    [queues.support]
    skill = 1
    service_level = 20
"#;

/// docs/asterisk.md, "Worked example": the call of docs/data-items.md's worked example
/// as Asterisk logs it. Hold and ring are not in a queue log: talk is the whole
/// connected time and the ring time is booked as wait and as the agent's AVAIL time.
#[test]
fn worked_example() {
    let mut r = Run::new(WORKED_MAP);
    r.lines(&format!(
        "{}|NONE|support|PJSIP/100|ADDMEMBER|\n\
         {}|1793645880.7|support|NONE|DID|5551234\n\
         {}|1793645880.7|support|NONE|ENTERQUEUE||5550100|1\n\
         {}|1793645880.7|support|PJSIP/100|CONNECT|16|1793645892.8|4\n\
         {}|1793645880.7|support|PJSIP/100|COMPLETECALLER|16|360|1\n",
        t(9, 50, 0),
        t(9, 58, 0),
        t(9, 58, 0),
        t(9, 58, 16),
        t(10, 4, 16),
    ));
    r.until(t(10, 30, 0));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.tr.stats.inexact, 0);
    let a = r.interval(t(9, 45, 0));
    assert!(a.complete(), "{:?}", a.reasons);
    assert_eq!(item(a, SPLIT, &[1], "i_arrived"), 1);
    assert_eq!(item(a, SPLIT, &[1], "acdcalls"), 0);
    assert_eq!(item(a, AGENT, &[100, 1], "i_availtime"), 496);
    assert_eq!(item(a, AGENT, &[100, 1], "i_ringtime"), 0);
    assert_eq!(item(a, AGENT, &[100, 1], "i_acdtime"), 104);
    assert_eq!(item(a, AGENT, &[100, 1], "i_stafftime"), 600);
    let b = r.interval(t(10, 0, 0));
    assert!(b.complete(), "{:?}", b.reasons);
    for (name, v) in [
        ("callsoffered", 1),
        ("acdcalls", 1),
        ("anstime", 16),
        ("acceptable", 1),
        ("acdcalls3", 1),
        ("acdtime", 360),
        ("holdtime", 0),
        ("acwtime", 60),
        ("maxocwtime", 16),
    ] {
        assert_eq!(item(b, SPLIT, &[1], name), v, "hsplit {name}");
    }
    for (name, v) in [
        ("acdcalls", 1),
        ("ringcalls", 1),
        ("ringtime", 0),
        ("acdtime", 360),
        ("acwtime", 60),
        ("i_acdtime", 256),
        ("i_acwtime", 60),
        ("i_availtime", 900 - 256 - 60),
    ] {
        assert_eq!(item(b, AGENT, &[100, 1], name), v, "hagent {name}");
    }
    assert_eq!(item(b, VDN, &[1], "incalls"), 1);
    assert_eq!(item(b, VDN, &[1], "anstime"), 16);
    assert_eq!(item(b, TKGRP, &[1], "incalls"), 1);
    assert_eq!(item(b, TKGRP, &[1], "intime"), 376);
}

/// A real excerpt (tests/fixtures/asterisk/tail-queue-log.queue_log): restarts, a CLI
/// ADDMEMBER with a member that has no extension number, a call that abandons after
/// 68 s, and a call still waiting when Asterisk restarts.
#[test]
fn real_excerpt_with_a_restart() {
    let mut r = Run::new("");
    r.lines(super::super::fixtures::ALL[1].1);
    r.until(1_596_515_400);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    // "sales" is named first (ADDMEMBER), then "support": automatic skills in that order.
    let (sales, support) = (60001, 60002);
    let agent = 900_000_001;
    // 1596513009 = 03:50:09 UTC: the abandon, in the 03:45 interval.
    let i = r.interval(1_596_512_700);
    assert!(i.complete(), "{:?}", i.reasons);
    assert_eq!(item(i, SPLIT, &[support], "callsoffered"), 1);
    assert_eq!(item(i, SPLIT, &[support], "abncalls"), 1);
    assert_eq!(item(i, SPLIT, &[support], "abntime"), 68);
    assert_eq!(item(i, VDN, &[1], "abncalls"), 1);
    assert_eq!(item(i, AGENT, &[agent, sales], "i_availtime"), 900);
    // 1596513628 = 04:00:28: QUEUESTART cuts the waiting call: not exact.
    let j = r.interval(1_596_513_600);
    assert!(!j.complete());
    assert!(j.reasons.contains("unknown_entity"), "{:?}", j.reasons);
    assert_eq!(item(j, VDN, &[1], "disccalls"), 1);
    assert_eq!(r.tr.stats.restarts, 6);
    assert_eq!(r.tr.calls_in_progress(), 0);
    // The member stays logged in across the restart (Asterisk's persistent members).
    let k = r.interval(1_596_514_500);
    assert!(k.complete(), "{:?}", k.reasons);
    assert_eq!(item(k, AGENT, &[agent, sales], "i_availtime"), 900);
}

/// A real excerpt (tests/fixtures/asterisk/logchart-tests.queue_log): members never
/// added by an ADDMEMBER (static members) are logged in at their first call, and the
/// interval is not exact; the calls themselves are booked from their lines.
#[test]
fn real_excerpt_with_static_members() {
    let mut r = Run::new("");
    r.lines(super::super::fixtures::ALL[3].1);
    r.until(1800);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let i = r.interval(0);
    assert!(i.reasons.contains("unknown_entity"), "{:?}", i.reasons);
    assert_eq!(r.tr.stats.inexact, 1);
    assert_eq!(r.tr.stats.ignored, 10);
    // Call 1: queued 0, connected 20, agent hangs up 30. Call 2: 40, 60, caller 100.
    assert_eq!(item(i, SPLIT, &[9000], "acdcalls"), 2);
    assert_eq!(item(i, SPLIT, &[9000], "anstime"), 20 + 20);
    assert_eq!(item(i, SPLIT, &[9000], "acdtime"), 10 + 40);
    assert_eq!(item(i, AGENT, &[2004, 9000], "acdcalls"), 2);
    assert_eq!(item(i, VDN, &[1], "incalls"), 2);
}

/// Every real excerpt translates without a garbage line, into events the link can
/// carry (each encodes and decodes back to itself).
#[test]
fn real_excerpts_translate_to_valid_frames() {
    use crate::proto::{decode_frame, Decoded, Frame};
    for (name, text) in super::super::fixtures::ALL {
        let mut r = Run::new("");
        r.lines(text);
        assert!(r.errors.is_empty(), "{name}: {:?}", r.errors);
        for (seq, (ts, kind)) in r.events.iter().enumerate() {
            let f = Frame::Event(WireEvent {
                seq: seq as u64 + 1,
                ts: *ts,
                kind: kind.clone(),
            });
            let mut b = bytes::BytesMut::new();
            f.encode(&mut b);
            match decode_frame(&b) {
                Ok(Decoded::Frame(g, n)) => {
                    assert_eq!(n, b.len());
                    assert_eq!(g, f, "{name}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}

/// A call that moves to a second queue while waiting is an overflow: the first
/// queue is its primary, the second delivers it.
#[test]
fn a_call_moving_between_queues_is_an_overflow() {
    let mut r = Run::new("[queues.a]\nskill = 1\n[queues.b]\nskill = 2\n");
    r.lines(&format!(
        "{}|NONE|b|PJSIP/200|ADDMEMBER|\n\
         {}|5.1|a|NONE|ENTERQUEUE||100|1\n\
         {}|5.1|b|NONE|ENTERQUEUE||100|1\n\
         {}|5.1|b|PJSIP/200|CONNECT|35|5.2|2\n\
         {}|5.1|b|PJSIP/200|COMPLETEAGENT|35|100|1\n",
        t(10, 0, 0),
        t(10, 1, 0),
        t(10, 1, 30),
        t(10, 1, 35),
        t(10, 3, 15),
    ));
    r.until(t(10, 30, 0));
    let i = r.interval(t(10, 0, 0));
    assert!(i.complete(), "{:?}", i.reasons);
    assert_eq!(item(i, SPLIT, &[1], "callsoffered"), 1);
    assert_eq!(item(i, SPLIT, &[1], "outflowcalls"), 1);
    assert_eq!(item(i, SPLIT, &[2], "inflowcalls"), 1);
    assert_eq!(item(i, SPLIT, &[2], "acdcalls"), 1);
    // The wait runs from the first queue.
    assert_eq!(item(i, SPLIT, &[2], "anstime"), 35);
    assert_eq!(item(i, VDN, &[1], "incalls"), 1);
}

/// A transfer by the member ends its part: transferred, and the call leaves the ACD.
#[test]
fn a_transfer_is_booked_transferred() {
    let mut r = Run::new("[queues.a]\nskill = 1\n");
    r.lines(&format!(
        "{}|NONE|a|PJSIP/200|ADDMEMBER|\n\
         {}|5.1|a|NONE|ENTERQUEUE||100|1\n\
         {}|5.1|a|PJSIP/200|CONNECT|5|5.2|2\n\
         {}|5.1|a|PJSIP/200|BLINDTRANSFER|2000|from-internal|5|60|1\n",
        t(10, 0, 0),
        t(10, 1, 0),
        t(10, 1, 5),
        t(10, 2, 5),
    ));
    r.until(t(10, 30, 0));
    let i = r.interval(t(10, 0, 0));
    assert!(i.complete(), "{:?}", i.reasons);
    assert_eq!(item(i, SPLIT, &[1], "acdcalls"), 1);
    assert_eq!(item(i, SPLIT, &[1], "transferred"), 1);
    assert_eq!(item(i, SPLIT, &[1], "acdtime"), 60);
    assert_eq!(item(i, VDN, &[1], "transferred"), 1);
}

/// Pause reasons are AUX codes; a pause during a call takes effect after its wrap-up.
#[test]
fn pauses_are_aux_and_wait_for_the_call() {
    let mut r = Run::new("wrapup_seconds = 10\n[queues.a]\nskill = 1\n[aux_codes]\nLunch = 3\n");
    r.lines(&format!(
        "{}|NONE|a|PJSIP/200|ADDMEMBER|\n\
         {}|NONE|a|PJSIP/200|PAUSE|Lunch\n\
         {}|NONE|NONE|PJSIP/200|PAUSEALL|Lunch\n\
         {}|NONE|a|PJSIP/200|UNPAUSE|\n\
         {}|5.1|a|NONE|ENTERQUEUE||100|1\n\
         {}|5.1|a|PJSIP/200|CONNECT|0|5.2|0\n\
         {}|NONE|a|PJSIP/200|PAUSE|\n\
         {}|5.1|a|PJSIP/200|COMPLETECALLER|0|50|1\n",
        t(10, 0, 0),
        t(10, 1, 0),
        t(10, 1, 0),
        t(10, 3, 0),
        t(10, 5, 0),
        t(10, 5, 0),
        t(10, 5, 20),
        t(10, 5, 50),
    ));
    r.until(t(10, 30, 0));
    let i = r.interval(t(10, 0, 0));
    assert!(i.complete(), "{:?}", i.reasons);
    assert_eq!(item(i, AGENT, &[200, 1], "i_auxtime3"), 120);
    assert_eq!(item(i, AGENT, &[200, 1], "i_acdtime"), 50);
    assert_eq!(item(i, AGENT, &[200, 1], "i_acwtime"), 10);
    // AUX 0 (a pause without a listed reason) from 10:06:00 to the end.
    assert_eq!(item(i, AGENT, &[200, 1], "i_auxtime0"), 540);
    assert_eq!(item(i, AGENT, &[200, 1], "i_availtime"), 60 + 120);
}

/// A member removed from its last queue is gone from Asterisk, its pause with it: added
/// again, it is available, unless ADDMEMBER says PAUSED (found by the chain proof's
/// review: the member used to come back in its old AUX).
#[test]
fn a_member_added_again_is_not_paused() {
    let mut r = Run::new("[queues.a]\nskill = 1\n[aux_codes]\nLunch = 3\n");
    r.lines(&format!(
        "{}|NONE|a|PJSIP/200|ADDMEMBER|\n\
         {}|NONE|a|PJSIP/200|PAUSE|Lunch\n\
         {}|NONE|a|PJSIP/200|REMOVEMEMBER|\n\
         {}|NONE|a|PJSIP/200|ADDMEMBER|\n\
         {}|NONE|a|PJSIP/201|ADDMEMBER|PAUSED\n",
        t(10, 0, 0),
        t(10, 1, 0),
        t(10, 2, 0),
        t(10, 5, 0),
        t(10, 5, 0),
    ));
    r.until(t(10, 30, 0));
    let i = r.interval(t(10, 0, 0));
    assert!(i.complete(), "{:?}", i.reasons);
    assert_eq!(item(i, AGENT, &[200, 1], "i_auxtime3"), 60);
    assert_eq!(item(i, AGENT, &[200, 1], "i_availtime"), 60 + 600);
    assert_eq!(item(i, AGENT, &[200, 1], "i_stafftime"), 120 + 600);
    assert_eq!(item(i, AGENT, &[201, 1], "i_auxtime0"), 600);
}

/// An Asterisk restart while a call is connected: the call ends at the restart, the
/// member is available again, and the interval is not exact.
#[test]
fn a_restart_mid_call_ends_the_call_inexactly() {
    let mut r = Run::new("[queues.a]\nskill = 1\n");
    r.lines(&format!(
        "{}|NONE|a|PJSIP/200|ADDMEMBER|\n\
         {}|5.1|a|NONE|ENTERQUEUE||100|1\n\
         {}|5.1|a|PJSIP/200|CONNECT|5|5.2|2\n\
         {}|NONE|NONE|NONE|QUEUESTART|\n\
         {}|5.1|a|PJSIP/200|COMPLETECALLER|5|600|1\n",
        t(10, 0, 0),
        t(10, 1, 0),
        t(10, 1, 5),
        t(10, 20, 0),
        t(10, 31, 5),
    ));
    r.until(t(11, 0, 0));
    let i = r.interval(t(10, 15, 0));
    assert!(i.reasons.contains("unknown_entity"), "{:?}", i.reasons);
    assert_eq!(item(i, AGENT, &[200, 1], "i_availtime"), 600);
    // The COMPLETECALLER of the call that no longer exists is marked where it comes.
    let k = r.interval(t(10, 30, 0));
    assert!(k.reasons.contains("unknown_entity"), "{:?}", k.reasons);
    assert_eq!(r.tr.stats.inexact, 2);
}

/// Garbage lines are counted with their line number and skipped; REALTIME and NONE
/// call ids are member ids, not calls; out-of-order lines are booked at the last time
/// and marked; a large step back is a CLOCK_CHANGE.
#[test]
fn quirks_have_defined_bookings() {
    let mut r = Run::new("[queues.a]\nskill = 1\n");
    r.lines(&format!(
        "{}|REALTIME|a|PJSIP/200|ADDMEMBER|\n\
         this is not a queue log line\n\
         {}|NONE|a|NONE|ENTERQUEUE||100|1\n\
         {}|5.1|a|NONE|ENTERQUEUE||100|1\n\
         {}|5.1|a|NONE|ABANDON|1|1|9\n",
        t(10, 0, 0),
        t(10, 0, 5),
        t(10, 20, 10),
        t(10, 20, 9),
    ));
    assert_eq!(r.errors.len(), 2);
    assert_eq!(r.errors[0].line, 2);
    assert_eq!(r.errors[1].line, 3);
    assert!(
        r.errors[1].to_string().contains("ENTERQUEUE"),
        "{}",
        r.errors[1]
    );
    assert_eq!(r.tr.stats.garbage, 2);
    assert_eq!(r.tr.stats.out_of_order, 1);
    r.lines(&format!("{}|NONE|a|PJSIP/200|PAUSE|\n", t(10, 10, 0)));
    assert_eq!(r.tr.stats.clock_changes, 1);
    assert!(r.events.iter().any(|(ts, k)| *ts == t(10, 10, 0) * 1000
        && *k
            == EventKind::ClockChange {
                old_ts: t(10, 20, 10) * 1000
            }));
    r.until(t(11, 0, 0));
    let i = r.interval(t(10, 0, 0));
    assert!(i.reasons.contains("unknown_entity"), "{:?}", i.reasons);
    // The abandon one second "before" the enter is booked at the enter's time: wait 0.
    let j = r.interval(t(10, 15, 0));
    assert_eq!(item(j, SPLIT, &[1], "abncalls"), 1);
    assert_eq!(item(j, SPLIT, &[1], "abntime"), 0);
    assert!(j.reasons.contains("unknown_entity"), "{:?}", j.reasons);
    assert!(j.reasons.contains("clock_change"), "{:?}", j.reasons);
}

/// The same lines give the same events: the bridge's sequence numbers depend on it.
#[test]
fn translation_is_deterministic() {
    let run = || {
        let mut tr = Translator::new(Mapping::default());
        let mut out = vec![];
        for (_, text) in super::super::fixtures::ALL {
            for (n, l) in super::super::fixtures::lines(text).enumerate() {
                tr.line(n as u64 + 1, l, &mut out).unwrap();
            }
        }
        out
    };
    let a = run();
    assert!(a.len() > 20);
    assert_eq!(a, run());
}

/// The pump-up snapshot is the state the log implies: the translations, the members
/// logged in with their state, the calls in progress; every record encodes to a valid
/// frame.
#[test]
fn the_snapshot_is_the_state_the_log_implies() {
    use crate::proto::{decode_frame, AgentSnapshot, CallPhase, CallSnapshot, Decoded, Frame};
    let mut r = Run::new(WORKED_MAP);
    r.lines(&format!(
        "{}|NONE|support|PJSIP/100|ADDMEMBER|\n\
         {}|NONE|support|PJSIP/101|ADDMEMBER|\n\
         {}|1.7|support|NONE|ENTERQUEUE||5550100|1\n\
         {}|1.7|support|PJSIP/100|CONNECT|16|1.8|4\n\
         {}|1.9|support|NONE|ENTERQUEUE||5550101|1\n\
         {}|NONE|support|PJSIP/101|PAUSE|\n",
        t(9, 50, 0),
        t(9, 50, 0),
        t(9, 58, 0),
        t(9, 58, 16),
        t(9, 59, 0),
        t(9, 59, 30),
    ));
    let snap = r.tr.snapshot();
    for f in &snap {
        let mut b = bytes::BytesMut::new();
        f.encode(&mut b);
        assert!(matches!(decode_frame(&b), Ok(Decoded::Frame(ref g, _)) if g == f));
    }
    let sl = |skill| SkillLevel { skill, level: 1 };
    assert!(matches!(&snap[0], Frame::SnapSkill(d) if d.skill == 1 && d.service_level == 20));
    assert!(matches!(&snap[1], Frame::SnapVdn(d) if d.vdn == 1));
    assert_eq!(
        snap[2..],
        [
            Frame::SnapAgent(AgentSnapshot {
                agent: 100,
                state: AgentState::Acd,
                work_skill: 1,
                skills: vec![sl(1)],
            }),
            Frame::SnapAgent(AgentSnapshot {
                agent: 101,
                state: AgentState::Aux(0),
                work_skill: 0,
                skills: vec![sl(1)],
            }),
            Frame::SnapCall(CallSnapshot {
                call: 1,
                vdn: 1,
                tkgrp: super::TKGRP,
                phase: CallPhase::Connected,
                agent: 100,
                skills: vec![1],
                offered_ts: t(9, 58, 0) * 1000,
            }),
            Frame::SnapCall(CallSnapshot {
                call: 2,
                vdn: 1,
                tkgrp: super::TKGRP,
                phase: CallPhase::Queued,
                agent: 0,
                skills: vec![1],
                offered_ts: t(9, 59, 0) * 1000,
            }),
        ]
    );
}
