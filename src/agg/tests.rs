use super::*;
use crate::items::{AGENT, SPLIT, TKGRP, VDN};
use crate::proto::{ReleasedBy, SkillLevel};

fn grid() -> Grid {
    Grid::new(chrono_tz::UTC, 15)
}

/// ms timestamp of HH:MM:SS on 2026-11-02 UTC.
fn t(h: i64, m: i64, s: i64) -> i64 {
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 2)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp();
    (day + h * 3600 + m * 60 + s) * 1000
}

struct Run {
    agg: Aggregator,
    seq: u64,
    out: Vec<ClosedInterval>,
}

impl Run {
    fn new() -> Run {
        let mut agg = Aggregator::new(grid());
        agg.start_epoch(1);
        Run {
            agg,
            seq: 0,
            out: vec![],
        }
    }
    fn ev(&mut self, ts: i64, kind: EventKind) {
        self.seq += 1;
        let ev = Event {
            seq: self.seq,
            ts,
            kind,
        };
        self.agg.apply(&ev, &mut self.out);
    }
    fn interval(&self, istart_ms: i64) -> &ClosedInterval {
        self.out
            .iter()
            .find(|c| c.istart * 1000 == istart_ms)
            .unwrap_or_else(|| panic!("interval {istart_ms} not closed"))
    }
}

fn item(ci: &ClosedInterval, table: usize, key: &[i64], name: &str) -> i64 {
    let def = TABLES[table];
    let i = def.index_of(name).unwrap();
    ci.rows[table]
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v[i])
        .unwrap_or(0)
}

fn defs(r: &mut Run, ts: i64) {
    r.ev(
        ts,
        EventKind::SkillDef(SkillDef {
            skill: 1,
            service_level: 20,
            periods: [5, 10, 20, 30, 40, 50, 60, 120, 180],
            name: "sales".into(),
        }),
    );
    r.ev(
        ts,
        EventKind::VdnDef(VdnDef {
            vdn: 1,
            service_level: 20,
            name: "main".into(),
        }),
    );
    r.ev(
        ts,
        EventKind::TrunkGroupDef(TrunkGroupDef {
            tkgrp: 1,
            trunks: 1,
            name: "pri".into(),
        }),
    );
}

/// docs/data-items.md, "Worked example: a call across an interval boundary".
#[test]
fn worked_example() {
    let mut r = Run::new();
    defs(&mut r, t(9, 50, 0));
    r.ev(
        t(9, 50, 0),
        EventKind::AgentLogin {
            agent: 100,
            skills: vec![SkillLevel { skill: 1, level: 1 }],
        },
    );
    let st = |state, skill| EventKind::AgentState {
        agent: 100,
        state,
        skill,
    };
    r.ev(t(9, 50, 0), st(AgentState::Avail, 0));
    r.ev(
        t(9, 58, 0),
        EventKind::CallOffered {
            call: 7,
            vdn: 1,
            tkgrp: 1,
        },
    );
    r.ev(
        t(9, 58, 0),
        EventKind::CallQueued {
            call: 7,
            skill: 1,
            priority: 0,
        },
    );
    r.ev(
        t(9, 58, 12),
        EventKind::CallRinging {
            call: 7,
            agent: 100,
            skill: 1,
        },
    );
    r.ev(t(9, 58, 12), st(AgentState::Ring, 1));
    r.ev(
        t(9, 58, 16),
        EventKind::CallAnswered {
            call: 7,
            agent: 100,
        },
    );
    r.ev(t(9, 58, 16), st(AgentState::Acd, 1));
    r.ev(
        t(10, 1, 0),
        EventKind::CallHeld {
            call: 7,
            agent: 100,
        },
    );
    r.ev(
        t(10, 1, 30),
        EventKind::CallRetrieved {
            call: 7,
            agent: 100,
        },
    );
    r.ev(
        t(10, 4, 16),
        EventKind::CallReleased {
            call: 7,
            by: ReleasedBy::Caller,
        },
    );
    r.ev(t(10, 4, 16), st(AgentState::Acw, 1));
    r.ev(t(10, 5, 16), st(AgentState::Avail, 0));
    r.agg.tick(t(10, 15, 0), &mut r.out);

    let a = r.interval(t(9, 45, 0)).clone();
    assert!(a.complete());
    assert_eq!(item(&a, 0, &[1], "acdcalls"), 0);
    assert_eq!(item(&a, 0, &[1], "callsoffered"), 0);
    assert_eq!(item(&a, 0, &[1], "i_arrived"), 1);
    assert_eq!(item(&a, 1, &[100, 1], "i_availtime"), 492);
    assert_eq!(item(&a, 1, &[100, 1], "i_ringtime"), 4);
    assert_eq!(item(&a, 1, &[100, 1], "i_acdtime"), 104);
    assert_eq!(item(&a, 1, &[100, 1], "i_stafftime"), 600);
    assert_eq!(item(&a, 0, &[1], "i_stafftime"), 600);
    assert_eq!(item(&a, 0, &[1], "maxstaffed"), 1);
    assert_eq!(item(&a, 3, &[1], "i_inocc"), 120);
    assert_eq!(item(&a, 3, &[1], "allinusetime"), 120);
    assert_eq!(item(&a, 3, &[1], "incalls"), 0);

    let b = r.interval(t(10, 0, 0)).clone();
    for (name, v) in [
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
        ("i_acdtime", 256),
        ("i_acwtime", 60),
    ] {
        assert_eq!(item(&b, 0, &[1], name), v, "hsplit {name}");
    }
    for (name, v) in [
        ("acdcalls", 1),
        ("ringcalls", 1),
        ("ringtime", 4),
        ("acdtime", 330),
        ("acwtime", 60),
        ("holdacdtime", 30),
        ("i_acdtime", 256),
        ("i_acwtime", 60),
        ("i_availtime", 900 - 256 - 60),
        ("i_stafftime", 900),
    ] {
        assert_eq!(item(&b, 1, &[100, 1], name), v, "hagent {name}");
    }
    assert_eq!(item(&b, 2, &[1], "incalls"), 1);
    assert_eq!(item(&b, 2, &[1], "acdcalls"), 1);
    assert_eq!(item(&b, 2, &[1], "anstime"), 16);
    assert_eq!(item(&b, 3, &[1], "incalls"), 1);
    assert_eq!(item(&b, 3, &[1], "intime"), 376);
    assert_eq!(item(&b, 3, &[1], "i_inocc"), 256);
}

#[test]
fn indices_match_catalogue() {
    assert_eq!(SPLIT.n_items(), idx::split::N);
    assert_eq!(AGENT.n_items(), idx::agent::N);
    assert_eq!(VDN.n_items(), idx::vdn::N);
    assert_eq!(TKGRP.n_items(), idx::tkgrp::N);
    assert_eq!(SPLIT.index_of("acdcalls3"), Some(idx::split::ACDCALLS1 + 2));
    assert_eq!(SPLIT.index_of("maxstaffed"), Some(idx::split::MAXSTAFFED));
    assert_eq!(
        SPLIT.index_of("i_auxtime9"),
        Some(idx::split::I_AUXTIME0 + 9)
    );
    assert_eq!(
        AGENT.index_of("i_auxtime9"),
        Some(idx::agent::I_AUXTIME0 + 9)
    );
    assert_eq!(VDN.index_of("maxocwtime"), Some(idx::vdn::MAXOCWTIME));
    assert_eq!(
        TKGRP.index_of("allinusetime"),
        Some(idx::tkgrp::ALLINUSETIME)
    );
}

/// Every constant of `idx.rs` is the catalogue's index of the item of its name (lower
/// case) in its family, and `N` the family's item count.
#[test]
fn every_index_matches_the_catalogue() {
    let mut family = None;
    let mut checked = 0;
    for line in include_str!("idx.rs").lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("pub mod ") {
            let name = name.trim_end_matches(" {");
            family = Some(
                *crate::items::TABLES
                    .iter()
                    .find(|t| t.name == name)
                    .unwrap_or_else(|| panic!("idx.rs: no item family {name}")),
            );
        }
        let Some(rest) = line.strip_prefix("pub const ") else {
            continue;
        };
        let (name, value) = rest.split_once(": usize = ").expect(rest);
        let value: usize = value.trim_end_matches(';').parse().expect(rest);
        let t = family.expect("a constant inside a family module");
        if name == "N" {
            assert_eq!(value, t.n_items(), "{}::N", t.name);
        } else {
            let item = name.to_lowercase();
            assert_eq!(t.index_of(&item), Some(value), "{}::{name}", t.name);
        }
        checked += 1;
    }
    assert!(checked > 100, "only {checked} constants read from idx.rs");
}

/// Overflow: queued to 1 then 2, answered in 2 → outflow in 1, inflow in 2.
#[test]
fn overflow_books_outflow_and_inflow() {
    let mut r = Run::new();
    defs(&mut r, t(8, 0, 0));
    let login = |agent, skill| EventKind::AgentLogin {
        agent,
        skills: vec![SkillLevel { skill, level: 1 }],
    };
    r.ev(t(8, 0, 0), login(5, 2));
    r.ev(
        t(8, 1, 0),
        EventKind::CallOffered {
            call: 1,
            vdn: 1,
            tkgrp: 1,
        },
    );
    for skill in [1, 2, 3] {
        r.ev(
            t(8, 1, 0),
            EventKind::CallQueued {
                call: 1,
                skill,
                priority: 0,
            },
        );
    }
    r.ev(
        t(8, 1, 30),
        EventKind::CallRinging {
            call: 1,
            agent: 5,
            skill: 2,
        },
    );
    r.ev(t(8, 1, 31), EventKind::CallAnswered { call: 1, agent: 5 });
    r.ev(
        t(8, 2, 0),
        EventKind::CallReleased {
            call: 1,
            by: ReleasedBy::Agent,
        },
    );
    r.ev(
        t(8, 2, 0),
        EventKind::AgentState {
            agent: 5,
            state: AgentState::Avail,
            skill: 0,
        },
    );
    r.agg.tick(t(8, 15, 0), &mut r.out);
    let c = r.interval(t(8, 0, 0));
    assert_eq!(item(c, 0, &[1], "outflowcalls"), 1);
    assert_eq!(item(c, 0, &[1], "callsoffered"), 1);
    assert_eq!(item(c, 0, &[2], "inflowcalls"), 1);
    assert_eq!(item(c, 0, &[2], "acdcalls"), 1);
    assert_eq!(item(c, 0, &[2], "anstime"), 31);
    assert_eq!(item(c, 0, &[3], "dequecalls"), 1);
    assert_eq!(item(c, 0, &[1], "maxinqueue"), 1);
    assert_eq!(item(c, 0, &[1], "acdcalls"), 0);
}

#[test]
fn checkpoint_round_trip_gives_identical_results() {
    let mut a = Run::new();
    defs(&mut a, t(9, 0, 0));
    a.ev(
        t(9, 0, 0),
        EventKind::AgentLogin {
            agent: 1,
            skills: vec![SkillLevel { skill: 1, level: 1 }],
        },
    );
    a.ev(
        t(9, 1, 0),
        EventKind::CallOffered {
            call: 3,
            vdn: 1,
            tkgrp: 1,
        },
    );
    let bytes = a.agg.checkpoint();
    let mut b = Run {
        agg: Aggregator::from_checkpoint(grid(), &bytes).unwrap(),
        seq: a.seq,
        out: vec![],
    };
    for r in [&mut a, &mut b] {
        r.ev(t(9, 2, 0), EventKind::CallAbandoned { call: 3 });
        r.agg.tick(t(9, 30, 0), &mut r.out);
    }
    assert_eq!(a.out, b.out);
    assert_eq!(item(&a.out[0], 2, &[1], "abncalls"), 1);
    let other = Grid::new(chrono_tz::UTC, 30);
    assert!(Aggregator::from_checkpoint(other, &bytes).is_err());
}

/// A gap: the open interval and every interval up to the resume are incomplete; a call
/// in progress across it taints the interval it completes in, and no other.
#[test]
fn pumpup_after_gap_marks_exactly_the_touched_intervals() {
    let mut r = Run::new();
    defs(&mut r, t(9, 0, 0));
    r.ev(
        t(9, 20, 0),
        EventKind::AgentLogin {
            agent: 1,
            skills: vec![SkillLevel { skill: 1, level: 1 }],
        },
    );
    // gap from 09:20 to 10:05; call 9 in progress, released at 10:40
    let p = Pumpup {
        epoch: 1,
        as_of_seq: 100,
        ts: t(10, 5, 0),
        agents: vec![AgentSnapshot {
            agent: 1,
            state: AgentState::Acd,
            work_skill: 1,
            skills: vec![SkillLevel { skill: 1, level: 1 }],
        }],
        calls: vec![CallSnapshot {
            call: 9,
            vdn: 1,
            tkgrp: 1,
            phase: CallPhase::Connected,
            agent: 1,
            skills: vec![1],
            offered_ts: t(10, 0, 0),
        }],
        ..Default::default()
    };
    r.agg.pumpup(p, reason::REPLAY_GAP, &mut r.out);
    r.seq = 100;
    r.ev(
        t(10, 40, 0),
        EventKind::CallReleased {
            call: 9,
            by: ReleasedBy::Caller,
        },
    );
    r.ev(
        t(10, 40, 0),
        EventKind::AgentState {
            agent: 1,
            state: AgentState::Avail,
            skill: 0,
        },
    );
    r.agg.tick(t(11, 0, 0), &mut r.out);
    let status: Vec<(i64, bool)> = r
        .out
        .iter()
        .map(|c| (c.istart * 1000, c.complete()))
        .collect();
    assert_eq!(
        status,
        vec![
            (t(9, 0, 0), true),
            (t(9, 15, 0), false),
            (t(9, 30, 0), false),
            (t(9, 45, 0), false),
            (t(10, 0, 0), false),
            (t(10, 15, 0), true),
            (t(10, 30, 0), false),
            (t(10, 45, 0), true),
        ]
    );
    assert!(r.out[6].reasons.contains(reason::CALL_ACROSS_GAP));
    // interval-based time after the pump-up is exact
    assert_eq!(item(&r.out[5], 1, &[1, 1], "i_acdtime"), 900);
    assert_eq!(item(&r.out[7], 1, &[1, 1], "i_availtime"), 900);
}

/// Catching up to a far frame in steps of `n` intervals (`catch_up_step` until it says
/// done, then the frame) gives exactly what applying the frame at once gives: levels held
/// across the jump, agent and trunk time, a call queued across it, a clock set back
/// 30 hours after the last event (the old clock reached `old_ts` first), and a forward
/// change whose jumped-over intervals carry `clock_change`.
#[test]
fn catching_up_in_steps_equals_applying_at_once() {
    let start = |r: &mut Run| {
        defs(r, t(9, 0, 0));
        r.ev(
            t(9, 0, 0),
            EventKind::AgentLogin {
                agent: 1,
                skills: vec![SkillLevel { skill: 1, level: 1 }],
            },
        );
        r.ev(
            t(9, 0, 0),
            EventKind::AgentState {
                agent: 1,
                state: AgentState::Aux(2),
                skill: 0,
            },
        );
        r.ev(
            t(9, 1, 0),
            EventKind::CallOffered {
                call: 3,
                vdn: 1,
                tkgrp: 1,
            },
        );
        r.ev(
            t(9, 1, 0),
            EventKind::CallQueued {
                call: 3,
                skill: 1,
                priority: 1,
            },
        );
    };
    let far = [
        (t(39, 2, 7), EventKind::CallAbandoned { call: 3 }),
        // Set back 10 minutes, 30 hours later on the old clock.
        (
            t(69, 0, 0),
            EventKind::ClockChange {
                old_ts: t(69, 10, 0),
            },
        ),
        // Set forward 3 days.
        (
            t(141, 2, 7),
            EventKind::ClockChange {
                old_ts: t(69, 20, 0),
            },
        ),
    ];
    let hb = t(165, 40, 0);
    let old_of = |k: &EventKind| match k {
        EventKind::ClockChange { old_ts } => Some(*old_ts),
        _ => None,
    };
    let mut once = Run::new();
    start(&mut once);
    for (ts, k) in far.clone() {
        once.ev(ts, k);
    }
    once.agg.tick(hb, &mut once.out);
    for n in [1, 3, 8] {
        let mut steps = Run::new();
        start(&mut steps);
        let mut batches = 0;
        for (ts, k) in far
            .clone()
            .into_iter()
            .map(|(ts, k)| (ts, Some(k)))
            .chain([(hb, None)])
        {
            let old = k.as_ref().and_then(old_of);
            assert!(steps.agg.needs_catch_up(ts, old, n), "{ts} is far");
            loop {
                let before = steps.out.len();
                if !steps.agg.catch_up_step(ts, old, n, &mut steps.out) {
                    break;
                }
                assert!(steps.out.len() - before <= n, "a step closes at most n");
                batches += 1;
            }
            assert!(!steps.agg.needs_catch_up(ts, old, n));
            match k {
                Some(k) => steps.ev(ts, k),
                None => steps.agg.tick(ts, &mut steps.out),
            }
        }
        assert!(batches > 0);
        assert_eq!(once.out, steps.out, "steps of {n}");
    }
    let marked = |istart: i64| {
        once.out
            .iter()
            .find(|c| c.istart * 1000 == istart)
            .unwrap()
            .reasons
            .contains(reason::CLOCK_CHANGE)
    };
    // Closed as usual up to the set back at old 69:10; the open interval then is marked,
    // the jumped-over ones of the forward change too, nothing after it.
    assert!(!marked(t(20, 0, 0)));
    assert!(!marked(t(68, 45, 0)));
    assert!(marked(t(69, 0, 0)));
    assert!(marked(t(100, 0, 0)));
    assert!(!marked(t(150, 0, 0)));
}
