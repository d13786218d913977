//! A real `cms collect` process against a scripted switch built from the spec's frames:
//! replay, pump-up, link drops inside and beyond the replay buffer, kill -9 and restart,
//! a clock set back, and every class of malformed input. Expected values are worked by
//! hand from `docs/data-items.md` (the worked example, without hold).

mod common;

use cms::proto::{AgentSnapshot, AgentState, EventKind, Frame, SkillLevel, StartMode};
use common::collector::{item, open, status, t, Collector};
use common::*;
use rusqlite::Connection;
use std::time::Duration;

const EPOCH: u64 = 7;

/// The whole stream of the reference scenario: translations and agent 100 logging in at
/// 09:50, the worked-example call offered at 09:58, a heartbeat at 10:15 (seq 14 last).
fn stream() -> Vec<Frame> {
    let mut v = translations(1, t(9, 50, 0));
    v.extend(agent_login(4, t(9, 50, 0), 100, &[SKILL]));
    v.extend(answered_call(6, t(9, 58, 0), &CallSpec::default()));
    assert_contiguous(&v, 1);
    v
}

fn from_seq(frames: &[Frame], first: u64) -> Vec<Frame> {
    seqs(frames, first, u64::MAX)
}

/// The hand-worked values of the reference scenario.
fn assert_reference_intervals(c: &Connection) {
    let a = t(9, 45, 0);
    let b = t(10, 0, 0);
    assert_eq!(status(c, a), Some(("complete".into(), "".into())));
    assert_eq!(status(c, b), Some(("complete".into(), "".into())));
    let ag = "agent = 100 AND split = 1";
    assert_eq!(item(c, "hagent", ag, a, "i_availtime"), 492);
    assert_eq!(item(c, "hagent", ag, a, "i_ringtime"), 4);
    assert_eq!(item(c, "hagent", ag, a, "i_acdtime"), 104);
    assert_eq!(item(c, "hagent", ag, a, "i_stafftime"), 600);
    assert_eq!(item(c, "hsplit", "split = 1", a, "acdcalls"), 0);
    assert_eq!(item(c, "hsplit", "split = 1", a, "i_arrived"), 1);
    for (col, v) in [
        ("callsoffered", 1),
        ("acdcalls", 1),
        ("anstime", 16),
        ("acceptable", 1),
        ("acdcalls3", 1),
        ("acdtime", 360),
        ("acwtime", 60),
        ("i_acdtime", 256),
        ("i_acwtime", 60),
        ("i_stafftime", 900),
    ] {
        assert_eq!(item(c, "hsplit", "split = 1", b, col), v, "hsplit {col}");
    }
    assert_eq!(item(c, "hvdn", "vdn = 1", b, "incalls"), 1);
    assert_eq!(item(c, "hvdn", "vdn = 1", b, "acceptable"), 1);
    assert_eq!(item(c, "htkgrp", "tkgrp = 1", b, "intime"), 376);
    let integrity: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
}

#[test]
fn replay_from_the_start_gives_exact_complete_intervals() {
    let sw = ScriptedSwitch::bind();
    let all = stream();
    sw.push(
        Script::new()
            .expect_hello()
            .respond(|h| {
                assert_eq!((h.epoch, h.resume_from), (0, 0), "a fresh collector");
                vec![welcome(EPOCH, StartMode::Replay, 1, t(9, 50, 0))]
            })
            .send(all.clone())
            .send(vec![tick(t(10, 15, 0), 14)])
            .wait_ack(14),
    );
    let mut c = Collector::start(sw.addr());
    sw.connection_blocking(0).assert_ok();
    c.stop();
    assert_reference_intervals(&open(&c.db_path()).unwrap());
    let (code, out) = c.cms(&["gaps"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no missing or incomplete intervals"), "{out}");
    let (code, out) = c.cms(&["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["acds"][0]["last_seq"], 14);
    assert_eq!(v["acds"][0]["epoch"], EPOCH);
}

#[test]
fn link_drop_inside_the_buffer_replays_and_loses_nothing() {
    let sw = ScriptedSwitch::bind();
    let all = stream();
    sw.push(
        Script::new()
            .expect_hello()
            .send(vec![welcome(EPOCH, StartMode::Replay, 1, t(9, 50, 0))])
            .send(from_seq(&all, 1)[..10].to_vec())
            .wait_ack(10)
            .close(),
    );
    let rest = all.clone();
    sw.push(
        Script::new()
            .expect_hello()
            .respond(move |h| {
                assert_eq!((h.epoch, h.resume_from), (EPOCH, 11));
                let mut v = vec![welcome(EPOCH, StartMode::Replay, 11, t(10, 0, 0))];
                v.extend(from_seq(&rest, 11));
                v.push(tick(t(10, 15, 0), 14));
                v
            })
            .wait_ack(14),
    );
    let mut c = Collector::start(sw.addr());
    sw.connection_blocking(0).assert_ok();
    sw.connection_blocking(1).assert_ok();
    c.stop();
    assert_reference_intervals(&open(&c.db_path()).unwrap());
}

#[test]
fn link_drop_beyond_the_buffer_marks_exactly_the_gap_incomplete() {
    let sw = ScriptedSwitch::bind();
    let mut first = translations(1, t(9, 50, 0));
    first.extend(agent_login(4, t(9, 50, 0), 100, &[SKILL]));
    first.push(tick(t(10, 5, 0), 5));
    sw.push(
        Script::new()
            .expect_hello()
            .send(vec![welcome(EPOCH, StartMode::Replay, 1, t(9, 50, 0))])
            .send(first)
            .wait_ack(5)
            .close(),
    );
    // The switch lost seqs 6..=49 (10:05..10:40); agent 100 is AVAIL at the pump-up.
    let mut live = answered_call(
        50,
        t(10, 50, 0),
        &CallSpec {
            call: 2,
            ..CallSpec::default()
        },
    );
    live.push(tick(t(11, 30, 0), 58));
    sw.push(
        Script::new()
            .expect_hello()
            .respond(move |h| {
                assert_eq!((h.epoch, h.resume_from), (EPOCH, 6));
                let mut v = vec![welcome(EPOCH, StartMode::Pumpup, 50, t(10, 40, 0))];
                v.extend(pumpup(
                    49,
                    t(10, 40, 0),
                    vec![Frame::SnapAgent(AgentSnapshot {
                        agent: 100,
                        state: AgentState::Avail,
                        work_skill: 0,
                        skills: vec![SkillLevel { skill: 1, level: 1 }],
                    })],
                ));
                v.push(Frame::Gap { from: 6, to: 49 });
                v.extend(live);
                v
            })
            .wait_ack(58),
    );
    let mut c = Collector::start(sw.addr());
    sw.connection_blocking(0).assert_ok();
    sw.connection_blocking(1).assert_ok();
    c.stop();
    let db = open(&c.db_path()).unwrap();
    assert_eq!(status(&db, t(9, 45, 0)).unwrap().0, "complete");
    for m in [0, 15, 30] {
        let s = status(&db, t(10, m, 0)).unwrap();
        assert_eq!(s, ("incomplete".into(), "replay_gap".into()), "10:{m:02}");
    }
    for (h, m) in [(10, 45), (11, 0), (11, 15)] {
        assert_eq!(status(&db, t(h, m, 0)).unwrap().0, "complete", "{h}:{m:02}");
    }
    // The call after the gap is exact: offered 10:50, released 10:56:16, ACW to 10:57:16.
    assert_eq!(
        item(&db, "hsplit", "split = 1", t(10, 45, 0), "acdcalls"),
        1
    );
    assert_eq!(
        item(&db, "hagent", "agent = 100", t(11, 0, 0), "i_availtime"),
        900
    );
    let (code, out) = c.cms(&["gaps", "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ranges = v.as_array().unwrap();
    assert_eq!(ranges.len(), 1, "{out}");
    assert_eq!(ranges[0]["intervals"], 3);
    assert_eq!(ranges[0]["kind"], "incomplete");
    assert_eq!(ranges[0]["reasons"], "replay_gap");
    assert_eq!(ranges[0]["from"], t(10, 0, 0) / 1000);
    let (code, _) = c.cms(&["gaps", "--fail-on-gaps"]);
    assert_eq!(code, 3);
}

#[test]
fn kill9_and_restart_inside_the_buffer_loses_nothing() {
    let sw = ScriptedSwitch::bind();
    let all = stream();
    sw.push(
        Script::new()
            .expect_hello()
            .send(vec![welcome(EPOCH, StartMode::Replay, 1, t(9, 50, 0))])
            .send(from_seq(&all, 1)[..12].to_vec())
            .wait_ack(12)
            .expect_closed_within(Duration::from_secs(30)),
    );
    let rest = all.clone();
    sw.push(
        Script::new()
            .expect_hello()
            .respond(move |h| {
                assert_eq!(h.epoch, EPOCH);
                assert!(h.resume_from >= 13, "resumes after its checkpoint");
                let mut v = vec![welcome(
                    EPOCH,
                    StartMode::Replay,
                    h.resume_from,
                    t(10, 0, 0),
                )];
                v.extend(from_seq(&rest, h.resume_from));
                v.push(tick(t(10, 15, 0), 14));
                v
            })
            .wait_ack(14),
    );
    let mut c = Collector::start(sw.addr());
    c.wait_checkpoint(12);
    c.kill9();
    sw.connection_blocking(0).assert_ok();
    c.spawn();
    sw.connection_blocking(1).assert_ok();
    c.stop();
    assert_reference_intervals(&open(&c.db_path()).unwrap());
}

/// Runs seqs 1..=12 of the reference stream, stops the collector, replaces its checkpoint
/// with `state(what it wrote)`, and starts it again: it must refuse that checkpoint with a
/// warning naming its database and `reason`, start afresh (HELLO epoch 0), and end, after
/// the switch replays its buffer from seq 1, with the hand-worked reference intervals.
fn restart_with_refused_checkpoint(state: impl FnOnce(Vec<u8>) -> Vec<u8>, reason: &str) {
    let sw = ScriptedSwitch::bind();
    let all = stream();
    sw.push(
        Script::new()
            .expect_hello()
            .send(vec![welcome(EPOCH, StartMode::Replay, 1, t(9, 50, 0))])
            .send(from_seq(&all, 1)[..12].to_vec())
            .wait_ack(12)
            .expect_closed(),
    );
    let rest = all.clone();
    sw.push(
        Script::new()
            .expect_hello()
            .respond(move |h| {
                assert_eq!(
                    (h.epoch, h.resume_from),
                    (0, 0),
                    "starts without the checkpoint"
                );
                let mut v = vec![welcome(EPOCH, StartMode::Replay, 1, t(9, 50, 0))];
                v.extend(rest);
                v.push(tick(t(10, 15, 0), 14));
                v
            })
            .wait_ack(14),
    );
    let mut c = Collector::start(sw.addr());
    c.wait_checkpoint(12);
    c.stop();
    sw.connection_blocking(0).assert_ok();
    {
        let db = Connection::open(c.db_path()).unwrap();
        let ours: Vec<u8> = db
            .query_row("SELECT state FROM checkpoint WHERE acd = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        db.execute(
            "UPDATE checkpoint SET state = ?1 WHERE acd = 1",
            [state(ours)],
        )
        .unwrap();
    }
    c.spawn();
    sw.connection_blocking(1).assert_ok();
    c.stop();
    let log = c.log();
    let warning = format!("{}: ACD 1: {reason}", c.db_path().display());
    assert!(log.contains(&warning), "no {warning:?} in\n{log}");
    assert_reference_intervals(&open(&c.db_path()).unwrap());
}

/// The checkpoint the release before versioned checkpoints wrote (bare bincode 1) is
/// refused, and the switch's replay makes every interval exact again.
/// `tests/fixtures/checkpoint-bincode1.bin` was written by `cms collect` at commit
/// 79cd337: this test's first session (seqs 1..=12 of epoch 7, then SIGTERM), the
/// checkpoint row's `state` column copied out.
#[test]
fn the_previous_releases_checkpoint_is_refused_and_the_replay_makes_it_exact() {
    let old = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/checkpoint-bincode1.bin"),
    )
    .unwrap();
    restart_with_refused_checkpoint(
        |_| old,
        "checkpoint has no format version (written by a release before checkpoints were versioned)",
    );
}

/// A checkpoint of a newer format version (a downgrade) is refused the same way.
#[test]
fn a_checkpoint_of_a_newer_format_version_is_refused_and_the_replay_makes_it_exact() {
    restart_with_refused_checkpoint(
        |mut ours| {
            assert_eq!(ours[..6], *b"CMSK\0\x01", "the envelope of version 1");
            ours[5] = 2;
            ours
        },
        "checkpoint format version 2 is not one this release reads (1)",
    );
}

/// The reference stream for ACD `acd`, ending with an ACK of seq 14 awaited.
fn reference_script(acd: u16) -> Script {
    let mut w = welcome(EPOCH, StartMode::Replay, 1, t(9, 50, 0));
    if let Frame::Welcome(w) = &mut w {
        w.acd = acd;
    }
    let mut v = vec![w];
    v.extend(stream());
    v.push(tick(t(10, 15, 0), 14));
    Script::new().expect_hello().send(v).wait_ack(14)
}

/// Complete intervals of `acd` stored.
fn complete_intervals(db: &Connection, acd: u16) -> i64 {
    db.query_row(
        "SELECT COUNT(*) FROM interval_status WHERE acd = ?1 AND status = 'complete'",
        [acd],
        |r| r.get(0),
    )
    .unwrap()
}

/// A slow disk under two ACDs (their commits held by the `CMS_TEST_COMMIT_GATE` hook)
/// does not stop a third: it keeps answering heartbeats, closing intervals and
/// acknowledging them while the two wait, because database work runs off the async
/// runtime's two worker threads (issue #12 item 6). Then the two go on, losing nothing.
#[test]
fn two_acds_held_in_a_commit_do_not_stop_a_third() {
    let gate = tempfile::tempdir().unwrap();
    for acd in [1, 2] {
        std::fs::write(gate.path().join(format!("hold-acd-{acd}")), b"").unwrap();
    }
    let sw: Vec<ScriptedSwitch> = (0..3).map(|_| ScriptedSwitch::bind()).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = "server_id = \"test-a\"\ndata_dir = \"data\"\ncheckpoint_seconds = 0.1\n\
                   backoff_max_seconds = 0.5\nheartbeat_ms = 100\n"
        .to_string();
    for (k, s) in sw.iter().enumerate() {
        cfg += &format!("[[acd]]\nid = {}\nswitch = \"{}\"\n", k + 1, s.addr());
    }
    std::fs::write(dir.path().join("cms.toml"), cfg).unwrap();
    let mut c = Collector { child: None, dir };
    sw[0].push(reference_script(1));
    sw[1].push(reference_script(2));
    c.spawn_env(&[("CMS_TEST_COMMIT_GATE", gate.path())]);
    let held = |acd: u16| gate.path().join(format!("held-acd-{acd}")).exists();
    let deadline = std::time::Instant::now() + WAIT;
    while !(held(1) && held(2)) {
        assert!(
            std::time::Instant::now() < deadline,
            "ACDs 1 and 2 never reached a held commit\n{}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Only now does ACD 3's switch start its stream.
    sw[2].push(reference_script(3).wait_heartbeats(3));
    sw[2].connection_blocking(0).assert_ok();
    assert!(held(1) && held(2), "the two commits were held throughout");
    {
        let db = open(&c.db_path()).unwrap();
        assert_eq!(
            complete_intervals(&db, 3),
            2,
            "ACD 3 closed and stored both"
        );
        assert_eq!(
            complete_intervals(&db, 1),
            0,
            "ACD 1 has stored nothing yet"
        );
    }
    for acd in [1, 2] {
        std::fs::remove_file(gate.path().join(format!("hold-acd-{acd}"))).unwrap();
    }
    sw[0].connection_blocking(0).assert_ok();
    sw[1].connection_blocking(0).assert_ok();
    c.stop();
    let db = open(&c.db_path()).unwrap();
    assert_reference_intervals(&db);
    for acd in [1, 2, 3] {
        assert_eq!(complete_intervals(&db, acd), 2, "ACD {acd}");
    }
}

#[test]
fn clock_set_back_never_makes_two_rows_for_one_interval() {
    let sw = ScriptedSwitch::bind();
    let mut v = translations(1, t(9, 50, 0));
    v.extend(agent_login(4, t(9, 50, 0), 100, &[SKILL]));
    v.push(tick(t(10, 20, 0), 5));
    // 10:20: the switch clock is set back to 09:58 (across the 10:00 and 10:15 boundaries).
    v.push(event(
        6,
        t(9, 58, 0),
        EventKind::ClockChange {
            old_ts: t(10, 20, 0),
        },
    ));
    v.extend(answered_call(
        7,
        t(9, 59, 0),
        &CallSpec {
            call: 3,
            talk_ms: 60_000,
            ..CallSpec::default()
        },
    ));
    v.push(tick(t(10, 45, 0), 15));
    sw.push(
        Script::new()
            .expect_hello()
            .send(vec![welcome(EPOCH, StartMode::Replay, 1, t(9, 50, 0))])
            .send(v)
            .wait_ack(15),
    );
    let mut c = Collector::start(sw.addr());
    sw.connection_blocking(0).assert_ok();
    c.stop();
    let db = open(&c.db_path()).unwrap();
    // 09:45..10:15 were closed before the change and are left exactly as they were.
    assert_eq!(status(&db, t(9, 45, 0)).unwrap().0, "complete");
    assert_eq!(status(&db, t(10, 0, 0)).unwrap().0, "complete");
    assert_eq!(
        item(&db, "hagent", "agent = 100", t(10, 0, 0), "i_availtime"),
        900
    );
    // Everything after the change went into the open interval, marked.
    let s = status(&db, t(10, 15, 0)).unwrap();
    assert_eq!(s, ("incomplete".into(), "clock_change".into()));
    assert_eq!(
        item(&db, "hsplit", "split = 1", t(10, 15, 0), "acdcalls"),
        1
    );
    let dup: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM (SELECT istart FROM interval_status GROUP BY row_date, starttime HAVING COUNT(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dup, 0, "one status row per local interval");
    assert_eq!(status(&db, t(10, 30, 0)).unwrap().0, "complete");
}

/// Each class of bad input: the session is dropped with a logged reason naming the peer,
/// the collector reconnects and resumes after its last good event, nothing already
/// collected is harmed.
#[test]
fn malformed_input_drops_the_session_and_harms_nothing() {
    let good = stream();
    let bad_event =
        |seq: u64, ts: i64| event(seq, ts, EventKind::CallAbandoned { call: 99 }).to_bytes();
    let mut invalid_enum = event(
        6,
        t(9, 58, 0),
        EventKind::AgentState {
            agent: 100,
            state: AgentState::Avail,
            skill: 0,
        },
    )
    .to_bytes();
    invalid_enum[4 + 1 + 16 + 4] = 9; // state byte
    let mut truncated = good[5].to_bytes();
    truncated.truncate(truncated.len() - 3);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage",
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            "exceeds the maximum",
        ),
        (
            "frame too long",
            vec![0, 1, 0, 0, 0x20, 0, 0],
            "exceeds the maximum",
        ),
        ("unknown type", vec![0, 0, 0, 1, 0x7e], "unknown frame type"),
        ("invalid enum", invalid_enum, "invalid agent state"),
        ("truncated then close", truncated, "closed inside a frame"),
        ("seq backwards", bad_event(3, t(9, 58, 0)), "seq 3 where 6"),
        (
            "time beyond our clock",
            bad_event(6, t(9, 58, 0) + 10 * 365 * 86_400_000),
            "ahead of this server's clock",
        ),
        (
            "snapshot outside pump-up",
            Frame::PumpupEnd.to_bytes(),
            "not valid during data transfer",
        ),
    ];
    for (name, bytes, expect) in cases {
        let sw = ScriptedSwitch::bind();
        sw.push(
            Script::new()
                .expect_hello()
                .send(vec![welcome(EPOCH, StartMode::Replay, 1, t(9, 50, 0))])
                .send(from_seq(&good, 1)[..5].to_vec())
                .wait_ack(5)
                .send_raw(bytes)
                .close(),
        );
        let rest = good.clone();
        sw.push(
            Script::new()
                .expect_hello()
                .respond(move |h| {
                    assert_eq!(
                        (h.epoch, h.resume_from),
                        (EPOCH, 6),
                        "resumes after the last good event"
                    );
                    let mut v = vec![welcome(EPOCH, StartMode::Replay, 6, t(9, 58, 0))];
                    v.extend(from_seq(&rest, 6));
                    v.push(tick(t(10, 15, 0), 14));
                    v
                })
                .wait_ack(14),
        );
        let mut c = Collector::start(sw.addr());
        sw.connection_blocking(0).assert_ok();
        sw.connection_blocking(1).assert_ok();
        c.stop();
        let log = c.log();
        assert!(
            log.contains(expect) && log.contains(&sw.addr().to_string()),
            "{name}: log should name the peer and say {expect:?}:\n{log}"
        );
        assert_reference_intervals(&open(&c.db_path()).unwrap());
    }
}

// ---------------------------------------------------------------------------------------
// Quiet sites (issue #10 item 1): silence of any length is normal operation
// ---------------------------------------------------------------------------------------

/// Friday 2026-10-30 17:00 UTC, `h` hours later.
fn friday(h: i64) -> i64 {
    t(-55 + h, 0, 0)
}

/// Translations and agent 100 logging in on Friday 16:50, one answered call at 16:55
/// (completed 17:02:16): seqs 1..=14.
fn friday_stream() -> Vec<Frame> {
    let mut v = translations(1, friday(0) - 600_000);
    v.extend(agent_login(4, friday(0) - 600_000, 100, &[SKILL]));
    v.extend(answered_call(6, friday(0) - 300_000, &CallSpec::default()));
    assert_contiguous(&v, 1);
    v
}

/// A second call on Monday 08:00: seqs 15..=23, completed 08:07:16.
fn monday_call() -> Vec<Frame> {
    answered_call(
        15,
        t(8, 0, 0),
        &CallSpec {
            call: 2,
            ..CallSpec::default()
        },
    )
}

/// Every interval from Friday 16:45 to Monday 08:15 is stored and complete, the agent's
/// weekend is booked as AVAIL time, and both calls are where they belong.
fn assert_quiet_weekend(c: &Connection, log: &str) {
    let (first, last) = (friday(0) - 900_000, t(8, 0, 0));
    let n: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM interval_status WHERE acd = 1 AND istart BETWEEN ?1 AND ?2 \
             AND status = 'complete'",
            [first / 1000, last / 1000],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        n,
        (last - first) / 900_000 + 1,
        "every interval complete\n{log}"
    );
    let ag = "agent = 100 AND split = 1";
    assert_eq!(item(c, "hsplit", "split = 1", friday(0), "acdcalls"), 1);
    assert_eq!(item(c, "hagent", ag, friday(24), "i_availtime"), 900);
    assert_eq!(item(c, "hagent", ag, t(0, 0, 0), "i_stafftime"), 900);
    assert_eq!(item(c, "hsplit", "split = 1", t(8, 0, 0), "acdcalls"), 1);
    assert!(!log.contains("protocol violation"), "{log}");
}

/// The session on Monday after Friday's 14 events: a Replay from seq 15 (WELCOME at
/// `welcome_ts`), Monday's call, and a heartbeat at `tick_ts` that closes its interval.
fn monday_replay(welcome_ts: i64, tick_ts: i64) -> Script {
    Script::new()
        .expect_hello()
        .respond(move |h| {
            assert_eq!((h.epoch, h.resume_from), (EPOCH, 15));
            let mut v = vec![welcome(EPOCH, StartMode::Replay, 15, welcome_ts)];
            v.extend(monday_call());
            v.push(tick(tick_ts, 23));
            v
        })
        .wait_ack(23)
}

#[test]
fn a_three_day_idle_stretch_is_normal_operation() {
    let sw = ScriptedSwitch::bind();
    let mut v = friday_stream();
    // One heartbeat an hour after the last event, then nothing until Monday (a switch at
    // speed, or one whose heartbeats the collector never saw): 63 hours without a frame
    // time between them.
    v.push(tick(friday(1), 14));
    v.extend(monday_call());
    v.push(tick(t(8, 15, 0), 23));
    sw.push(
        Script::new()
            .expect_hello()
            .send(vec![welcome(EPOCH, StartMode::Replay, 1, friday(0))])
            .send(v)
            .wait_ack(23),
    );
    let mut c = Collector::start(sw.addr());
    sw.connection_blocking(0).assert_ok();
    c.stop();
    assert_quiet_weekend(&open(&c.db_path()).unwrap(), &c.log());
}

#[test]
fn a_weekend_with_the_collector_restarted_in_the_middle() {
    let sw = ScriptedSwitch::bind();
    let mut v = friday_stream();
    v.push(tick(friday(19), 14)); // Saturday 12:00
    sw.push(
        Script::new()
            .expect_hello()
            .send(vec![welcome(EPOCH, StartMode::Replay, 1, friday(0))])
            .send(v)
            .wait_ack(14)
            .keepalive(Duration::from_secs(1))
            .expect_closed(),
    );
    sw.push(monday_replay(t(8, 0, 0), t(8, 15, 0)));
    let mut c = Collector::start(sw.addr());
    c.wait_checkpoint(14);
    // The Saturday tick is in the checkpoint once the collector has closed its interval.
    let deadline = std::time::Instant::now() + WAIT;
    while status(&open(&c.db_path()).unwrap(), friday(19) - 900_000).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "Saturday never closed\n{}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    c.stop();
    sw.connection_blocking(0).assert_ok();
    c.spawn();
    sw.connection_blocking(1).assert_ok();
    c.stop();
    assert_quiet_weekend(&open(&c.db_path()).unwrap(), &c.log());
}

#[test]
fn a_replay_that_starts_after_a_quiet_weekend() {
    let sw = ScriptedSwitch::bind();
    let fri = friday_stream();
    sw.push(
        Script::new()
            .expect_hello()
            .send(vec![welcome(EPOCH, StartMode::Replay, 1, friday(0))])
            .send(fri)
            .wait_ack(14)
            .close(),
    );
    // The link was down all weekend; on Monday the switch replays from its buffer: the
    // first event it replays is Monday's, 63 hours after the last one the collector saw.
    sw.push(monday_replay(t(8, 30, 0), t(8, 30, 0)));
    let mut c = Collector::start(sw.addr());
    sw.connection_blocking(0).assert_ok();
    sw.connection_blocking(1).assert_ok();
    c.stop();
    assert_quiet_weekend(&open(&c.db_path()).unwrap(), &c.log());
}

// ---------------------------------------------------------------------------------------
// Times bounded by this server's clock (issue #10 item 2)
// ---------------------------------------------------------------------------------------

/// A HEARTBEAT 10 or 1000 years ahead of this server's clock is bad input: the session
/// is dropped with the peer and the reason in the log, nothing is closed for it, and the
/// collector still stops within the bound of [`Collector::stop`] on SIGTERM (what `cms
/// status` says: `status_says_bad_input_while_the_switch_repeats_it`).
#[test]
fn a_heartbeat_far_in_the_future_is_bad_input() {
    for years in [10, 1000] {
        let sw = ScriptedSwitch::bind();
        let good = stream();
        let far = t(10, 15, 0) + years * 365 * 86_400_000;
        sw.push(
            Script::new()
                .expect_hello()
                .send(vec![welcome(EPOCH, StartMode::Replay, 1, t(9, 50, 0))])
                .send(good.clone())
                .send(vec![tick(t(10, 15, 0), 14)])
                .wait_ack(14)
                .send(vec![tick(far, 14)])
                .expect_closed(),
        );
        // It comes back and asks to resume where it was; the switch holds it there.
        sw.push(
            Script::new()
                .expect_hello()
                .respond(|h| {
                    assert_eq!((h.epoch, h.resume_from), (EPOCH, 15));
                    vec![welcome(EPOCH, StartMode::Replay, 15, t(10, 15, 0))]
                })
                .keepalive(Duration::from_secs(1))
                .sleep(Duration::from_secs(1)),
        );
        let mut c = Collector::start(sw.addr());
        sw.connection_blocking(0).assert_ok();
        let log = c.log();
        // The line proto/acd-link.md ("Time bounds") shows.
        let line = format!(
            "session ended: {}: protocol violation: HEARTBEAT time ",
            sw.addr()
        );
        assert!(
            log.contains(&line) && log.contains("ahead of this server's clock (more than 24 h)"),
            "{years} years: the log names the peer and the reason:\n{log}"
        );
        sw.connection_blocking(1).assert_ok();
        c.stop();
        let db = open(&c.db_path()).unwrap();
        let (n, last): (i64, i64) = db
            .query_row(
                "SELECT COUNT(*), MAX(istart) FROM interval_status WHERE acd = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            (n, last),
            (2, t(10, 0, 0) / 1000),
            "{years} years: nothing past 10:15"
        );
        let days: i64 = db
            .query_row("SELECT COUNT(*) FROM dsplit", [], |r| r.get(0))
            .unwrap();
        assert_eq!(days, 0, "{years} years: no daily summary");
        assert_reference_intervals(&db);
    }
}

/// While the switch holds a bad frame the collector reports it: `cms status` says the
/// link is down on bad input (not `data_transfer`).
#[test]
fn status_says_bad_input_while_the_switch_repeats_it() {
    let sw = ScriptedSwitch::bind();
    let far = t(10, 15, 0) + 10 * 365 * 86_400_000;
    for _ in 0..2 {
        sw.push(
            Script::new()
                .expect_hello()
                .respond(move |h| {
                    let first = h.resume_from.max(1);
                    let mut v = vec![welcome(EPOCH, StartMode::Replay, first, t(9, 50, 0))];
                    v.extend(seqs(&stream(), first, 14));
                    v.push(tick(far, 14));
                    v
                })
                .expect_closed(),
        );
    }
    let mut c = Collector::start(sw.addr());
    sw.connection_blocking(0).assert_ok();
    sw.connection_blocking(1).assert_ok();
    // From now on the collector backs off, reconnects and waits for a WELCOME that does
    // not come (no third script): whichever it is doing, status names the bad input.
    let (code, out) = c.cms(&["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let acd = &v["acds"][0];
    assert_ne!(acd["link_state"], "data_transfer", "{out}");
    assert!(
        acd["detail"]
            .as_str()
            .is_some_and(|d| d.contains("ahead of this server's clock")),
        "{out}"
    );
    c.stop();
    let _ = sw.take_failures();
}

/// Peak resident memory of a process, in MiB (Linux).
#[cfg(target_os = "linux")]
fn peak_rss_mib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        / 1024
}

/// A legitimate but very long catch-up (a stream that resumes years after its last
/// event, all of it in the past) is closed a few intervals at a time: memory stays
/// bounded, what is stored is a complete prefix, and SIGTERM stops it at once.
#[cfg(target_os = "linux")]
#[test]
fn a_long_catch_up_keeps_memory_bounded_and_honours_shutdown() {
    let sw = ScriptedSwitch::bind();
    let years = 8;
    let t0 = t(9, 50, 0) - years * 365 * 86_400_000;
    let mut v = translations(1, t0);
    v.extend(agent_login(4, t0, 100, &[SKILL]));
    v.push(tick(t(10, 15, 0), 5));
    sw.push(
        Script::new()
            .expect_hello()
            .send(vec![welcome(EPOCH, StartMode::Replay, 1, t0)])
            .send(v)
            .keepalive(Duration::from_secs(1))
            .expect_closed_within(Duration::from_secs(60)),
    );
    let mut c = Collector::start(sw.addr());
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let n: i64 = open(&c.db_path())
            .and_then(|db| db.query_row("SELECT COUNT(*) FROM interval_status", [], |r| r.get(0)))
            .unwrap_or(0);
        if n >= 1000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the catch-up stored only {n} intervals within {WAIT:?}\n{}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let peak = peak_rss_mib(c.child.as_ref().unwrap().id());
    c.stop();
    sw.connection_blocking(0).assert_ok();
    assert!(peak < 150, "peak memory {peak} MiB while catching up");
    let db = open(&c.db_path()).unwrap();
    let (n, first, last, complete): (i64, i64, i64, i64) = db
        .query_row(
            "SELECT COUNT(*), MIN(istart), MAX(istart), SUM(status = 'complete') \
             FROM interval_status WHERE acd = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((last - first) / 900 + 1, n, "a contiguous prefix");
    assert_eq!(complete, n, "all complete (replayed from seq 1)");
    assert!(last < t(10, 0, 0) / 1000, "stopped before the end");
}

// ---------------------------------------------------------------------------------------
// Reconnect storm (issue #10 item 3)
// ---------------------------------------------------------------------------------------

/// A switch that sends WELCOME and then garbage, every time: the session never becomes
/// healthy, so the backoff keeps growing (200 ms, 400 ms, 800 ms, 1.6 s ... with ±20 %
/// jitter) instead of starting again at 200 ms after each WELCOME, and the identical
/// warning is logged once, not once per attempt.
#[test]
fn welcome_then_garbage_backs_off_and_warns_once() {
    let sw = ScriptedSwitch::bind();
    let n = 5;
    for _ in 0..n {
        sw.push(
            Script::new()
                .expect_hello()
                .send(vec![welcome(EPOCH, StartMode::Replay, 1, t(9, 50, 0))])
                .send_raw(vec![0xde, 0xad, 0xbe, 0xef, 0x55, 0xaa, 0x00, 0xff])
                .expect_closed(),
        );
    }
    let mut c = Collector::configure("test-a", sw.addr());
    let cfg = c.dir.path().join("cms.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace("backoff_max_seconds = 0.5", "backoff_max_seconds = 10");
    assert!(text.contains("backoff_max_seconds = 10"));
    std::fs::write(&cfg, text).unwrap();
    c.spawn();
    let conns: Vec<ConnRecord> = (0..n).map(|i| sw.connection_blocking(i)).collect();
    c.stop();
    for r in &conns {
        r.assert_ok();
    }
    let gaps: Vec<f64> = conns
        .windows(2)
        .map(|w| (w[1].accepted_at - w[0].accepted_at).as_secs_f64())
        .collect();
    // Backoff before jitter: 0.2, 0.4, 0.8, 1.6 s; each at least 0.8 x that.
    for (k, g) in gaps.iter().enumerate() {
        let want = 0.2 * 2f64.powi(k as i32) * 0.8;
        assert!(
            *g >= want,
            "reconnect {k}: {g:.3} s after the last, want >= {want:.3} s: {gaps:?}"
        );
    }
    let log = c.log();
    let warned = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("session ended"))
        .count();
    assert_eq!(warned, 1, "one warning for {n} identical failures:\n{log}");
    assert!(log.contains("exceeds the maximum"), "{log}");
}

/// `cms compare` compares statuses, not only the items of intervals complete in both
/// (issue #10 item 5): an interval complete here and incomplete there, with the same
/// values, is a difference (exit 3).
#[test]
fn compare_reports_an_interval_complete_here_and_incomplete_there() {
    let sw = ScriptedSwitch::bind();
    sw.push(
        Script::new()
            .expect_hello()
            .send(vec![welcome(EPOCH, StartMode::Replay, 1, t(9, 50, 0))])
            .send(stream())
            .send(vec![tick(t(10, 15, 0), 14)])
            .wait_ack(14),
    );
    let mut c = Collector::start(sw.addr());
    sw.connection_blocking(0).assert_ok();
    c.stop();
    let (code, out) = c.cms(&["compare", c.db_path().to_str().unwrap()]);
    assert_eq!(code, 0, "a database agrees with itself: {out}");
    // The same rows, but the other side knows 10:00 is not exact.
    let other = c.dir.path().join("other.db");
    std::fs::copy(c.db_path(), &other).unwrap();
    Connection::open(&other)
        .unwrap()
        .execute(
            "UPDATE interval_status SET status = 'incomplete', reasons = 'clock_change' \
             WHERE acd = 1 AND istart = ?1",
            [t(10, 0, 0) / 1000],
        )
        .unwrap();
    let (code, out) = c.cms(&["compare", other.to_str().unwrap()]);
    assert_eq!(code, 3, "{out}");
    assert_eq!(
        out.trim_end(),
        "ACD 1 2025-11-02 10:00 interval: complete here, incomplete there\n1 difference",
        "whole output"
    );
    let (code, out) = c.cms(&["compare", other.to_str().unwrap(), "--json"]);
    assert_eq!(code, 3, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["table"], "status", "{out}");
    assert_eq!(
        (v[0]["left"].clone(), v[0]["right"].clone()),
        (1.into(), 0.into())
    );
}
