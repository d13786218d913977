//! The booking rules of `docs/data-items.md` that the worked example does not show, each
//! checked on the collector's aggregation ([`Aggregator`]) with the numbers worked by
//! hand in the page's "Examples of the rules" section, and the interval checksum
//! recomputed from its definition against what a real `cms collect` stored.

mod common;

use cms::agg::{reason, Aggregator, ClosedInterval};
use cms::interval::Grid;
use cms::items::TABLES;
use cms::proto::{
    AgentState, Event, EventKind, ReleasedBy, SkillDef, SkillLevel, StartMode, TrunkGroupDef,
    VdnDef,
};

/// 2026-11-02 at `hh:mm:ss` UTC plus `ms`, in ms.
fn at(hh: i64, mm: i64, ss: i64, ms: i64) -> i64 {
    common::collector::t(hh, mm, ss) + ms
}

/// An aggregation on a UTC 15-minute grid fed events with consecutive seqs from 1.
struct Feed {
    agg: Aggregator,
    seq: u64,
    closed: Vec<ClosedInterval>,
}

impl Feed {
    fn new() -> Feed {
        Feed {
            agg: Aggregator::new(Grid::new(chrono_tz::UTC, 15)),
            seq: 0,
            closed: vec![],
        }
    }
    fn ev(&mut self, ts: i64, kind: EventKind) -> &mut Self {
        self.seq += 1;
        let e = Event {
            seq: self.seq,
            ts,
            kind,
        };
        self.agg.apply(&e, &mut self.closed);
        self
    }
    /// Skill 1 (service level 20 s, PERIODs 5..180 s), VDN 1, trunk group 1 (`trunks`).
    fn translations(&mut self, ts: i64, trunks: u16) -> &mut Self {
        self.ev(ts, EventKind::SkillDef(skill(20)))
            .ev(
                ts,
                EventKind::VdnDef(VdnDef {
                    vdn: 1,
                    service_level: 30,
                    name: "Main".into(),
                }),
            )
            .ev(ts, EventKind::TrunkGroupDef(tkgrp(trunks)))
    }
    fn login(&mut self, ts: i64, agent: u32) -> &mut Self {
        self.ev(
            ts,
            EventKind::AgentLogin {
                agent,
                skills: vec![SkillLevel { skill: 1, level: 1 }],
            },
        )
        .state(ts, agent, AgentState::Avail, 0)
    }
    fn state(&mut self, ts: i64, agent: u32, state: AgentState, skill: u16) -> &mut Self {
        self.ev(
            ts,
            EventKind::AgentState {
                agent,
                state,
                skill,
            },
        )
    }
    fn offer(&mut self, ts: i64, call: u32) -> &mut Self {
        self.ev(
            ts,
            EventKind::CallOffered {
                call,
                vdn: 1,
                tkgrp: 1,
            },
        )
    }
    fn queue(&mut self, ts: i64, call: u32) -> &mut Self {
        self.ev(
            ts,
            EventKind::CallQueued {
                call,
                skill: 1,
                priority: 1,
            },
        )
    }
    fn ring(&mut self, ts: i64, call: u32, agent: u32) -> &mut Self {
        self.ev(
            ts,
            EventKind::CallRinging {
                call,
                agent,
                skill: 1,
            },
        )
    }
    fn answer(&mut self, ts: i64, call: u32, agent: u32) -> &mut Self {
        self.ev(ts, EventKind::CallAnswered { call, agent })
    }
    fn release(&mut self, ts: i64, call: u32) -> &mut Self {
        self.ev(
            ts,
            EventKind::CallReleased {
                call,
                by: ReleasedBy::Caller,
            },
        )
    }
    /// The call flow of the page's examples: call 1 offered and queued to skill 1 at
    /// `offered`, rings agent 100 at `rung` and is answered at `answered` (the agent's
    /// state following each), released by the caller at `released`.
    fn answered_call(
        &mut self,
        offered: i64,
        rung: i64,
        answered: i64,
        released: i64,
    ) -> &mut Self {
        self.offer(offered, 1)
            .queue(offered, 1)
            .ring(rung, 1, 100)
            .state(rung, 100, AgentState::Ring, 1)
            .answer(answered, 1, 100)
            .state(answered, 100, AgentState::Acd, 1)
            .release(released, 1)
    }
    fn tick(&mut self, ts: i64) -> &mut Self {
        self.agg.tick(ts, &mut self.closed);
        self
    }
    fn interval(&self, hh: i64, mm: i64) -> &ClosedInterval {
        let istart = at(hh, mm, 0, 0) / 1000;
        self.closed
            .iter()
            .find(|c| c.istart == istart)
            .unwrap_or_else(|| panic!("interval {hh:02}:{mm:02} not closed"))
    }
    /// Item `item` of the row `key` of table `table` ("split", "agent", "vdn", "tkgrp")
    /// in the interval starting at hh:mm; 0 when there is no such row.
    fn item(&self, hh: i64, mm: i64, table: &str, key: &[i64], item: &str) -> i64 {
        let t = TABLES.iter().position(|t| t.name == table).unwrap();
        let col = TABLES[t]
            .items
            .iter()
            .position(|(n, _)| *n == item)
            .unwrap_or_else(|| panic!("no item {item} in {table}"));
        self.interval(hh, mm).rows[t]
            .iter()
            .find(|(k, _)| k == key)
            .map_or(0, |(_, v)| v[col])
    }
}

fn skill(service_level: u16) -> SkillDef {
    SkillDef {
        skill: 1,
        service_level,
        periods: [5, 10, 20, 30, 40, 60, 90, 120, 180],
        name: "Sales".into(),
    }
}

fn tkgrp(trunks: u16) -> TrunkGroupDef {
    TrunkGroupDef {
        tkgrp: 1,
        trunks,
        name: "PRI-1".into(),
    }
}

/// "Examples of the rules", 1: released 10:14:59, agent stays ACD until AVAIL at 10:15:05.
#[test]
fn acw_is_decided_by_the_agents_next_state_event() {
    let mut f = Feed::new();
    f.translations(at(10, 0, 0, 0), 24)
        .login(at(10, 0, 0, 0), 100);
    f.answered_call(
        at(10, 14, 0, 0),
        at(10, 14, 10, 0),
        at(10, 14, 14, 0),
        at(10, 14, 59, 0),
    )
    .state(at(10, 15, 5, 0), 100, AgentState::Avail, 0)
    .tick(at(10, 30, 0, 0));
    assert_eq!(
        f.item(10, 0, "split", &[1], "acdcalls"),
        0,
        "not booked at 10:00"
    );
    assert_eq!(f.item(10, 15, "split", &[1], "acdcalls"), 1);
    assert_eq!(f.item(10, 15, "split", &[1], "acwtime"), 0);
    assert_eq!(f.item(10, 15, "split", &[1], "acdtime"), 45);
    assert_eq!(f.item(10, 15, "agent", &[100, 1], "i_acdtime"), 5);
    assert!(f.interval(10, 0).complete() && f.interval(10, 15).complete());
}

/// "Examples of the rules", 2: two agents AVAIL 1.5 s each.
#[test]
fn skill_interval_items_are_rounded_once_per_row() {
    let mut f = Feed::new();
    f.translations(at(10, 0, 0, 0), 24)
        .login(at(10, 14, 58, 500), 100)
        .login(at(10, 14, 58, 500), 101)
        .tick(at(10, 15, 0, 0));
    assert_eq!(f.item(10, 0, "agent", &[100, 1], "i_availtime"), 1);
    assert_eq!(f.item(10, 0, "agent", &[101, 1], "i_availtime"), 1);
    assert_eq!(f.item(10, 0, "split", &[1], "i_availtime"), 3);
    assert_eq!(f.item(10, 0, "split", &[1], "i_stafftime"), 3);
}

/// "Examples of the rules", 3: a SKILL_DEF in the millisecond of the completion.
#[test]
fn the_translation_in_force_is_the_one_before_the_completing_event() {
    for before in [true, false] {
        let mut f = Feed::new();
        f.translations(at(10, 0, 0, 0), 24)
            .login(at(10, 0, 0, 0), 100);
        f.answered_call(
            at(10, 1, 0, 0),
            at(10, 1, 21, 0),
            at(10, 1, 25, 0),
            at(10, 2, 0, 0),
        );
        // Wait 25 s: not acceptable at service level 20, acceptable at 30.
        if before {
            f.ev(at(10, 2, 0, 0), EventKind::SkillDef(skill(30)));
        }
        f.state(at(10, 2, 0, 0), 100, AgentState::Avail, 0);
        if !before {
            f.ev(at(10, 2, 0, 0), EventKind::SkillDef(skill(30)));
        }
        f.tick(at(10, 15, 0, 0));
        assert_eq!(
            f.item(10, 0, "split", &[1], "acceptable"),
            before as i64,
            "SKILL_DEF {} the completing AGENT_STATE",
            if before { "before" } else { "after" }
        );
    }
}

/// "Examples of the rules", 4: flows outside the model are never `complete`, and an
/// answer without a ring leaves no call counted in queue.
#[test]
fn call_flows_outside_the_model_are_unknown_entity() {
    type Flow = fn(&mut Feed);
    let flows: [(&str, Flow); 3] = [
        ("rings at a second agent", |f| {
            f.ring(at(10, 1, 10, 0), 1, 100)
                .ring(at(10, 1, 20, 0), 1, 101);
        }),
        ("back to queue after ringing", |f| {
            f.ring(at(10, 1, 10, 0), 1, 100).queue(at(10, 1, 20, 0), 1);
        }),
        ("answered without ringing", |f| {
            f.answer(at(10, 1, 10, 0), 1, 100);
        }),
    ];
    for (name, flow) in flows {
        let mut f = Feed::new();
        f.translations(at(10, 0, 0, 0), 24)
            .login(at(10, 0, 0, 0), 100)
            .login(at(10, 0, 0, 0), 101);
        f.offer(at(10, 1, 0, 0), 1).queue(at(10, 1, 0, 0), 1);
        flow(&mut f);
        f.tick(at(10, 30, 0, 0));
        assert!(
            f.interval(10, 0).reasons.contains(reason::UNKNOWN_ENTITY),
            "{name}: {:?}",
            f.interval(10, 0).reasons
        );
        if name == "answered without ringing" {
            assert_eq!(f.item(10, 15, "split", &[1], "maxinqueue"), 0, "{name}");
        }
    }
}

/// "Examples of the rules", 5: a call released in vector counts as an abandon.
#[test]
fn a_call_released_before_any_answer_is_an_abandon() {
    let mut f = Feed::new();
    f.translations(at(10, 0, 0, 0), 24)
        .offer(at(10, 1, 0, 0), 1)
        .release(at(10, 1, 8, 0), 1)
        .tick(at(10, 15, 0, 0));
    assert_eq!(f.item(10, 0, "vdn", &[1], "abncalls"), 1);
    assert_eq!(f.item(10, 0, "vdn", &[1], "abntime"), 8);
    assert_eq!(f.item(10, 0, "vdn", &[1], "maxocwtime"), 8);
    assert_eq!(f.item(10, 0, "tkgrp", &[1], "abncalls"), 1);
    assert!(f.interval(10, 0).complete());
}

/// "Examples of the rules", 6: one call on a one-trunk group that grows to two trunks.
#[test]
fn allinusetime_counts_with_the_trunk_count_in_force() {
    let mut f = Feed::new();
    f.translations(at(10, 0, 0, 0), 1)
        .offer(at(10, 1, 0, 0), 1)
        .ev(at(10, 6, 0, 0), EventKind::TrunkGroupDef(tkgrp(2)))
        .ev(at(10, 11, 0, 0), EventKind::CallAbandoned { call: 1 })
        .tick(at(10, 15, 0, 0));
    assert_eq!(f.item(10, 0, "tkgrp", &[1], "allinusetime"), 300);
    assert_eq!(f.item(10, 0, "tkgrp", &[1], "i_inocc"), 600);
}

/// "Interval status": the checksum recomputed from its definition, from the rows a real
/// collector stored, equals the one it stored beside them.
#[test]
fn the_interval_checksum_is_what_the_page_defines() {
    use common::*;
    let t = common::collector::t;
    let sw = ScriptedSwitch::bind();
    let mut stream = translations(1, t(9, 50, 0));
    stream.extend(agent_login(4, t(9, 50, 0), 100, &[SKILL]));
    stream.extend(answered_call(6, t(9, 58, 0), &CallSpec::default()));
    stream.push(tick(t(10, 15, 0), 14));
    sw.push(
        Script::new()
            .expect_hello()
            .send(vec![welcome(7, StartMode::Replay, 1, t(9, 50, 0))])
            .send(stream)
            .wait_ack(14),
    );
    let mut c = common::collector::Collector::start(sw.addr());
    sw.connection_blocking(0).assert_ok();
    c.stop();
    let db = common::collector::open(&c.db_path()).unwrap();
    let mut checked = 0;
    for istart in [t(9, 45, 0) / 1000, t(10, 0, 0) / 1000] {
        let mut h = blake3::Hasher::new();
        let mut rows = 0i64;
        for table in TABLES {
            h.update(table.name.as_bytes());
            let keys = table.keys.join(", ");
            let items: Vec<&str> = table.items.iter().map(|(n, _)| *n).collect();
            let sql = format!(
                "SELECT {keys}, {} FROM h{} WHERE acd = 1 AND istart = ?1 ORDER BY {keys}",
                items.join(", "),
                table.name
            );
            let mut stmt = db.prepare(&sql).unwrap();
            let mut q = stmt.query([istart]).unwrap();
            while let Some(r) = q.next().unwrap() {
                rows += 1;
                for i in 0..table.keys.len() + items.len() {
                    h.update(&r.get::<_, i64>(i).unwrap().to_le_bytes());
                }
            }
        }
        let (stored, count): (String, i64) = db
            .query_row(
                "SELECT checksum, row_count FROM interval_status WHERE acd = 1 AND istart = ?1",
                [istart],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert!(rows > 0);
        assert_eq!((h.finalize().to_hex().to_string(), rows), (stored, count));
        checked += 1;
    }
    assert_eq!(checked, 2);
    let empty = blake3::hash(b"splitagentvdntkgrp").to_hex().to_string();
    let mut h = blake3::Hasher::new();
    for table in TABLES {
        h.update(table.name.as_bytes());
    }
    assert_eq!(h.finalize().to_hex().to_string(), empty);
}
