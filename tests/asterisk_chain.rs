//! The chain proof of issue #16 through the real binaries: `cms-linksim --queue-log`
//! writes a simulated morning of a small centre (profiles/asterisk.toml) as the queue
//! log Asterisk would write, with its ground truth restricted to what a queue log can
//! express; `cms-asterisk` follows the log and two `cms collect` store the intervals.
//! Faults on the way: collector B down for more than two hours (replayed from the log
//! when it is back), a rename rotation of the log, the bridge killed (-9) and started
//! again on the same ports while the log moves on, and an Asterisk restart (QUEUESTART)
//! with calls connected.
//!
//! The test plays Asterisk: the simulator writes the whole log first (`--speed max`),
//! then the test appends it to the followed `queue_log` stage by stage, by log time, and
//! does each fault between two stages, so the faults fall at the same place in every
//! run however loaded the machine is.
//!
//! The promise checked: every interval both a collector and the restricted truth call
//! complete is equal item by item on the items docs/asterisk.md calls exact (and the
//! configured ACW items: the profile's ACW is the mapping's `wrapup_seconds`); the
//! restart's interval is incomplete (`unknown_entity`) in both collectors and nothing
//! else is; A and B are identical.

mod common;

use common::bridge::{append, Bridge};
use common::collector::{open, Collector};
use common::sim::{assert_identical, profile_path, statuses, wait_switch_time};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// 2026-11-02 08:00 in Europe/London (UTC in November), the run's start.
const START: i64 = 1_793_606_400;
const HOUR: i64 = 3600;
/// Asterisk restarts at 10:40 (the simulator's `--queue-log-restart +2h40m`).
const RESTART: i64 = START + 2 * HOUR + 40 * 60;
const LIMIT: Duration = Duration::from_secs(60);

fn ts(line: &str) -> i64 {
    line.split('|').next().unwrap().parse().unwrap()
}

/// The lines with log time in `[from, to)`.
fn stage<'a>(lines: &[&'a str], from: i64, to: i64) -> Vec<&'a str> {
    lines
        .iter()
        .copied()
        .filter(|l| (from..to).contains(&ts(l)))
        .collect()
}

/// Waits until the collector's stream has reached the last line of `lines`.
fn reach(c: &Collector, lines: &[&str]) {
    wait_switch_time(c, ts(lines.last().unwrap()), LIMIT);
}

/// The differences between a collector's complete intervals and the restricted truth's,
/// on the items a queue log gives exactly, and how many intervals were compared.
fn exact_diffs(db: &Path, truth: &Path) -> (Vec<cms::report::Diff>, usize) {
    let (a, t) = (open(db).unwrap(), open(truth).unwrap());
    let diffs = cms::report::compare(&a, &t, 1, i64::MIN, i64::MAX, false).unwrap();
    let (mine, theirs) = (statuses(db), statuses(truth));
    let compared = mine
        .iter()
        .filter(|(i, (s, _))| s == "complete" && theirs.get(i).is_some_and(|t| t.0 == "complete"))
        .count();
    let exact = diffs
        .into_iter()
        .filter(|d| cms::asterisk::exact::is_exact(&d.table, &d.item, true))
        .collect();
    (exact, compared)
}

/// Two workloads (seeds) through the whole chain; each must equal its truth.
#[test]
fn simulated_queue_log_through_the_bridge_equals_the_truth() {
    let t0 = Instant::now();
    for seed in [3, 8] {
        chain(seed);
    }
    eprintln!("asterisk chain: {:.1} s", t0.elapsed().as_secs_f64());
}

/// One run of the chain with the simulator's `seed`; see the module doc.
fn chain(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (sim, ast) = (dir.path().join("sim"), dir.path().join("ast"));
    std::fs::create_dir_all(&sim).unwrap();
    std::fs::create_dir_all(&ast).unwrap();
    let truth = sim.join("truth.db");
    let out = Command::new(env!("CARGO_BIN_EXE_cms-linksim"))
        .arg("--profile")
        .arg(profile_path("asterisk"))
        .args([
            "--seed",
            "3",
            "--start",
            "2026-11-02T08:00",
            "--duration",
            "4h",
        ])
        .args(["--speed", "max", "--queue-log-restart", "+2h40m"])
        .arg("--truth")
        .arg(&truth)
        .arg("--queue-log")
        .arg(sim.join("queue_log"))
        .arg("--queue-log-mapping")
        .arg(ast.join("asterisk.toml"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "cms-linksim: {said}");
    assert!(said.contains("0 events it cannot express"), "{said}");
    let text = std::fs::read_to_string(sim.join("queue_log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 1000, "{said}");

    // The workload exercises every line the writer has.
    for want in [
        "|ADDMEMBER|",
        "|REMOVEMEMBER|",
        "|DID|",
        "|ENTERQUEUE|",
        "|CONNECT|",
        "|COMPLETECALLER|",
        "|COMPLETEAGENT|",
        "|RINGCANCELED|",
        "|ABANDON|",
        "|PAUSE|Break",
        "|UNPAUSE|",
    ] {
        assert!(text.contains(want), "no {want} line in the log");
    }
    assert!(
        lines.iter().any(|l| l.ends_with("|PAUSE|")),
        "no pause without a reason (AUX 0)"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("|ADDMEMBER|") && ts(l) > START),
        "no member added after the start"
    );
    // The restart cuts a connected call: one CONNECT before it with no end logged.
    let uid = |l: &str| l.split('|').nth(1).unwrap().to_string();
    let ev = |l: &str| l.split('|').nth(4).unwrap().to_string();
    let connected: std::collections::BTreeSet<String> = lines
        .iter()
        .filter(|l| ev(l) == "CONNECT" && ts(l) < RESTART)
        .map(|l| uid(l))
        .collect();
    let ended: std::collections::BTreeSet<String> = lines
        .iter()
        .filter(|l| ev(l).starts_with("COMPLETE"))
        .map(|l| uid(l))
        .collect();
    assert!(
        connected.difference(&ended).count() >= 1,
        "no call connected at the restart"
    );

    let log = ast.join("queue_log");
    let at = |h: i64, m: i64| START + (h - 8) * HOUR + m * 60;
    // 08:00-08:45: everyone up.
    let s1 = stage(&lines, 0, at(8, 45));
    append(&log, &s1);
    let mut bridge = Bridge::start(&ast, "127.0.0.1:0", "127.0.0.1:0");
    let (pa, pb) = bridge.ports();
    let tz = "Europe/London";
    let mut a = Collector::configure_full("chain-a", pa, tz, "");
    let mut b = Collector::configure_full("chain-b", pb, tz, "");
    a.spawn();
    b.spawn();
    reach(&a, &s1);
    reach(&b, &s1);
    // B goes down for more than two hours of the log.
    b.kill9();
    let s2 = stage(&lines, at(8, 45), at(9, 40));
    append(&log, &s2);
    // logrotate (rename) at 09:40: the old file gets no more lines.
    std::fs::rename(&log, ast.join("queue_log.1")).unwrap();
    let s3 = stage(&lines, at(9, 40), at(10, 20));
    append(&log, &s3);
    reach(&a, &s3);
    // The bridge is killed; the log moves on past Asterisk's restart at 10:40.
    bridge.kill9();
    let s4 = stage(&lines, at(10, 20), at(11, 5));
    append(&log, &s4);
    let bridge = Bridge::start(&ast, &pa.to_string(), &pb.to_string());
    b.spawn();
    let s5 = stage(&lines, at(11, 5), i64::MAX);
    append(&log, &s5);
    assert_eq!(
        s1.len() + s2.len() + s3.len() + s4.len() + s5.len(),
        lines.len()
    );
    reach(&a, &s5);
    reach(&b, &s5);
    a.stop();
    b.stop();

    let restart_interval = RESTART - RESTART % 900;
    for (who, c) in [("A", &a), ("B", &b)] {
        let db = c.db_path();
        let st = statuses(&db);
        let incomplete: Vec<(&i64, &(String, String))> =
            st.iter().filter(|(_, (s, _))| s != "complete").collect();
        assert_eq!(
            incomplete,
            vec![(
                &restart_interval,
                &("incomplete".to_string(), "unknown_entity".to_string())
            )],
            "seed {seed}, {who}: only the restart's interval is incomplete\n{}",
            bridge.log()
        );
        let (diffs, compared) = exact_diffs(&db, &truth);
        let mut by_item = std::collections::BTreeMap::<String, usize>::new();
        for d in &diffs {
            *by_item
                .entry(format!("{}.{}", d.table, d.item))
                .or_default() += 1;
        }
        assert!(
            diffs.is_empty(),
            "seed {seed}, {who}: {} exact items differ from the truth ({by_item:?}), first: {:#?}",
            diffs.len(),
            &diffs[..diffs.len().min(8)]
        );
        // 08:00..11:30 closed (11:45 closes with a line after 12:00), less the restart's.
        assert!(
            compared >= 14,
            "seed {seed}, {who}: only {compared} intervals compared"
        );
    }
    assert_identical(&a.db_path(), &b.db_path());

    // The comparison can fail: one exact item changed in a copy of the truth is found.
    let bad = sim.join("bad-truth.db");
    std::fs::copy(&truth, &bad).unwrap();
    let c = rusqlite::Connection::open(&bad).unwrap();
    let n = c
        .execute(
            "UPDATE hsplit SET acdcalls = acdcalls + 1 WHERE acd = 1 AND split = 1 AND istart = ?1",
            [START],
        )
        .unwrap();
    assert_eq!(n, 1);
    c.execute(
        "UPDATE interval_status SET checksum = 'x' WHERE acd = 1 AND istart = ?1",
        [START],
    )
    .unwrap();
    drop(c);
    let (diffs, _) = exact_diffs(&a.db_path(), &bad);
    assert_eq!(diffs.len(), 1, "{diffs:#?}");
    assert_eq!(
        (diffs[0].table.as_str(), diffs[0].item.as_str()),
        ("hsplit", "acdcalls")
    );
}
