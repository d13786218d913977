//! Peer sync heals the pair (issue #13), with real `cms collect`, `cms sync` and
//! `cms-linksim` processes, compared with the simulator's ground truth, as
//! tests/ha_scenarios.rs does for the manual backup and restore.
//!
//! - `cms sync --once` by hand: a link failure beyond the replay buffer healed, the dry
//!   run changing nothing, the words of `cms restore`.
//! - The collector service with the peer configured, no operator action: the link
//!   failure heals itself; a fresh server backfills its history; both down: the common
//!   gap stays missing on both; the peer unreachable then back; a wrong key; a sender
//!   that cannot produce the stream says so.
//!
//! Switch time runs at 1200x (six hours in 18 s of wall time).

mod common;
mod peer_support;

use common::sim::{
    assert_identical, assert_integrity, check_against_truth, cms_expect, local_ts, wait_switch_time,
};
use peer_support::*;
use std::time::Duration;

const PROFILE: &str = "reference";
const DAY: &str = "2026-11-04";
const LIMIT: Duration = Duration::from_secs(120);

fn at(hhmm: &str) -> i64 {
    local_ts(PROFILE, &format!("{DAY}T{hhmm}"))
}

/// Six hours from 06:00 at 1200x with `faults`, a replay buffer of 3000 events (about
/// six minutes of the reference centre), the pair peers of each other when `peer`.
fn morning(seed: &str, faults: &str, peer: bool) -> PeerPair {
    let start = format!("{DAY}T06:00");
    let mut args = vec![
        "--seed",
        seed,
        "--start",
        &start,
        "--duration",
        "6h",
        "--speed",
        "1200",
        "--buffer",
        "3000",
    ];
    if !faults.is_empty() {
        args.extend(["--faults", faults]);
    }
    PeerPair::start(PROFILE, &args, peer)
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// Missing or incomplete intervals of `c` (not counting restored ones), by `cms gaps`.
fn gap_count(c: &common::collector::Collector) -> u64 {
    let g = json(&cms_expect(c, &["gaps", "--json"], 0));
    g.as_array()
        .unwrap()
        .iter()
        .filter(|g| g["kind"] != "restored")
        .map(|g| g["intervals"].as_u64().unwrap())
        .sum()
}

fn all_complete_and_true(p: &PeerPair) {
    for (who, c) in [("A", &p.a), ("B", &p.b)] {
        let v = check_against_truth(&c.db_path(), &p.sim.truth());
        assert!(
            v.incomplete.is_empty() && v.missing.is_empty(),
            "{who}: incomplete {:?} missing {:?}\n{}",
            v.incomplete,
            v.missing,
            c.log()
        );
        assert_eq!(v.complete, 24, "{who}");
        assert_integrity(&c.db_path());
    }
    assert_identical(&p.a.db_path(), &p.b.db_path());
}

/// A pair where A's collector runs without a peer and B listens for A; A's
/// configuration for `cms sync` by hand.
fn manual(seed: &str, faults: &str) -> (PeerPair, std::path::PathBuf) {
    let p = morning(seed, faults, false);
    let sync = p.manual();
    (p, sync)
}

#[test]
fn sync_once_heals_a_link_failure_beyond_the_buffer() {
    let (mut p, sync) = manual("31", "A:down@07:00-07:45");
    wait_switch_time(&p.a, at("09:30"), LIMIT);
    let before = gap_count(&p.a);
    assert!(before >= 3, "A shows the gap ({before})");
    // The dry run fetches and plans, and changes nothing.
    let (code, plan) = cms_with(&sync, &["sync", "--once", "--dry-run"]);
    assert_eq!(code, 0, "{plan}");
    assert!(plan.contains("(dry run: nothing written)"), "{plan}");
    assert!(plan.contains("fill") || plan.contains("replace"), "{plan}");
    assert!(gap_count(&p.a) >= before, "the dry run wrote nothing");
    // The real one, in the words of `cms restore`.
    let (code, out) = cms_with(&sync, &["sync", "--once", "--json"]);
    assert_eq!(code, 0, "{out}");
    let rep = json(&out);
    assert!(rep["healed"].as_u64().unwrap() >= 3, "{out}");
    assert_eq!(
        rep["restores"][0]["file"],
        format!("peer 127.0.0.1:{} (srv-b)", p.port_b)
    );
    let (code, text) = cms_with(&sync, &["sync", "--once"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("sync with peer"), "{text}");
    // The interval A is collecting was never touched: A keeps collecting it.
    let st = json(&cms_expect(&p.a, &["status", "--json"], 0));
    assert!(st["acds"][0]["checkpoint_age_seconds"].as_i64().unwrap() <= 3);
    p.finish();
    // What closed after the last sync (calls across the gap ending) is healed now.
    let (code, out) = cms_with(&sync, &["sync", "--once"]);
    assert_eq!(code, 1, "B is stopped: {out}");
    assert!(out.contains("cannot connect"), "{out}");
    p.b.spawn();
    wait_for("B listening again", LIMIT, || {
        cms_with(&sync, &["sync", "--once"]).0 == 0
    });
    p.b.stop();
    all_complete_and_true(&p);
}

#[test]
fn the_service_heals_a_link_failure_with_no_operator_action() {
    let mut p = morning("32", "A:down@07:00-07:45", true);
    wait_switch_time(&p.a, at("08:30"), LIMIT);
    // Healed within a bound once the link is back (a sync after every interval close).
    wait_for("A healed by its peer", LIMIT, || {
        let s = peer_status(&p.a);
        s["healed"].as_u64().unwrap_or(0) >= 3
    });
    let s = peer_status(&p.a);
    assert_eq!(s["state"], "connected", "{s}");
    assert_eq!(s["peer_server"], "srv-b", "{s}");
    let (_, text) = p.a.cms(&["status"]);
    assert!(text.contains("healed") && text.contains("srv-b"), "{text}");
    p.finish();
    all_complete_and_true(&p);
}

#[test]
fn a_fresh_server_backfills_its_history_from_the_peer() {
    let mut p = morning("33", "", true);
    wait_switch_time(&p.a, at("08:00"), LIMIT);
    p.a.kill9();
    std::fs::remove_dir_all(p.a.dir.path().join("data")).unwrap();
    p.a.spawn();
    wait_switch_time(&p.a, at("09:00"), LIMIT);
    wait_for("A backfilled", LIMIT, || {
        peer_status(&p.a)["healed"].as_u64().unwrap_or(0) >= 8
    });
    p.finish();
    all_complete_and_true(&p);
}

#[test]
fn both_down_the_common_gap_stays_missing_on_both_and_nothing_is_invented() {
    let mut p = morning("34", "", true);
    wait_switch_time(&p.a, at("08:00"), LIMIT);
    p.a.kill9();
    p.b.kill9();
    std::thread::sleep(Duration::from_millis(2500)); // 50 minutes of switch time
    p.a.spawn();
    p.b.spawn();
    p.finish();
    // One more sync each way after the end, so nothing healable is left.
    let t0 = cms::store::intervals::now_secs();
    for c in [&mut p.a, &mut p.b] {
        c.spawn();
    }
    wait_for("both synced after the run", LIMIT, || {
        [&p.a, &p.b]
            .iter()
            .all(|c| peer_status(c)["last_sync"].as_i64().unwrap_or(0) >= t0)
    });
    for c in [&p.a, &p.b] {
        let s = peer_status(c);
        assert!(
            s["pending"].as_u64().unwrap() > 0,
            "the common gap is pending: {s}"
        );
    }
    p.a.stop();
    p.b.stop();
    for (who, c) in [("A", &p.a), ("B", &p.b)] {
        let v = check_against_truth(&c.db_path(), &p.sim.truth());
        assert!(
            !v.incomplete.is_empty() || !v.missing.is_empty(),
            "{who}: the outage shows"
        );
    }
    assert_identical(&p.a.db_path(), &p.b.db_path());
}

#[test]
fn peer_unreachable_then_back_and_a_wrong_key_are_shown_and_logged() {
    let mut p = morning("35", "", true);
    wait_switch_time(&p.a, at("07:00"), LIMIT);
    wait_for("A connected", LIMIT, || {
        peer_status(&p.a)["state"] == "connected"
    });
    p.b.stop();
    wait_for("A sees B gone", LIMIT, || {
        let s = peer_status(&p.a);
        s["state"] == "not connected" && s["reason"].as_str().unwrap().contains("cannot connect")
    });
    p.b.spawn();
    wait_for("A sees B back", LIMIT, || {
        peer_status(&p.a)["state"] == "connected"
    });
    // B now pins a key that is not A's: both refuse and say why.
    p.b.stop();
    let text = std::fs::read_to_string(config(&p.b)).unwrap();
    let wrong = "00:".repeat(31) + "00";
    std::fs::write(config(&p.b), text.replace(&p.id_a, &wrong)).unwrap();
    p.b.spawn();
    wait_log(&p.b, "wrong identity: its certificate is", LIMIT);
    wait_for("A shows the refusal", LIMIT, || {
        let s = peer_status(&p.a);
        s["state"] == "not connected"
            && s["reason"]
                .as_str()
                .unwrap()
                .contains("refused our certificate")
    });
    p.finish();
}

#[test]
fn a_sender_that_cannot_produce_the_stream_says_so_and_both_log_it() {
    let (mut p, sync) = manual("36", "A:down@07:00-07:45");
    wait_switch_time(&p.a, at("08:30"), LIMIT);
    // B's stored data of the day is inconsistent (a row that no longer matches its
    // interval's checksum): B cannot produce the stream of that day.
    let corrupt = |delta: i64| {
        let c = rusqlite::Connection::open(p.b.db_path()).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        let n = c
            .execute(
                "UPDATE hsplit SET acdcalls = acdcalls + ?1 WHERE acd = 1 AND split = \
                 (SELECT MIN(split) FROM hsplit WHERE acd = 1 AND istart = ?2) AND istart = ?2",
                rusqlite::params![delta, at("06:15")],
            )
            .unwrap();
        assert_eq!(n, 1);
    };
    corrupt(1);
    let started = std::time::Instant::now();
    let (code, out) = cms_with(&sync, &["sync", "--once"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("peer 127.0.0.1:") && out.contains("srv-b") && out.contains("checksum"),
        "the receiver names the peer and the sender's reason: {out}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "said within seconds"
    );
    wait_log(&p.b, "cannot answer the peer", Duration::from_secs(2));
    assert!(
        gap_count(&p.a) >= 3,
        "nothing half-applied: the gap is still there"
    );
    corrupt(-1);
    let (code, out) = cms_with(&sync, &["sync", "--once"]);
    assert_eq!(code, 0, "{out}");
    p.finish();
}
