//! The HA scenarios of issue #5, each with real `cms collect`, `cms backup`,
//! `cms restore` and `cms-linksim` processes, compared with the simulator's ground truth.
//! Promise 5: after any single failure and the documented recovery (docs/operations.md),
//! both servers hold the same complete intervals for every interval that either of them
//! collected completely.
//!
//! Switch time runs at 1200x (six hours in 18 s of wall time) so that backups, restores,
//! kills and restarts happen while the collectors are ingesting.

mod common;

use common::collector::{open, Collector};
use common::run::{at, Run, PROFILE};
use common::sim::{
    assert_identical, assert_integrity, assert_pair_true, check_against_truth, cms_expect,
    local_ts, wait_switch_time, wait_truth_time, Pair,
};
use common::smallfs::SmallFs;
use common::wait::until;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

/// The morning run (`common::run::Run::morning`) with `faults` and a replay buffer of
/// `buffer` events (3000 is about six minutes of the reference centre's traffic).
fn morning(seed: u64, buffer: u32, faults: &str) -> Pair {
    Run::morning(seed).buffer(buffer).faults(faults).pair()
}

/// Six hours from 20:00 at 1200x: the first day is over on the servers when they stop
/// (a restore summarizes only days that are over), the second is not.
fn night(seed: u64) -> Pair {
    Run::morning(seed).from("20:00").buffer(400000).pair()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// Backup on `from`, restore on `to`, both with collection on; returns the restore report.
fn recover(from: &Collector, to: &Collector, name: &str) -> serde_json::Value {
    let bak = from.dir.path().join(name);
    cms_expect(
        from,
        &["backup", "--out", path(&bak), "--data", "history,admin"],
        0,
    );
    let rep = json(&cms_expect(to, &["restore", path(&bak), "--json"], 0));
    println!(
        "{name}: filled {} replaced {} kept {} conflicts {} in {:.2} s",
        rep["filled"],
        rep["replaced"],
        rep["kept"],
        rep["conflicts"].as_array().unwrap().len(),
        rep["seconds"].as_f64().unwrap()
    );
    rep
}

fn all_complete_and_true(p: &Pair) {
    assert_pair_true(&p.a, &p.b, &p.sim.truth(), 24);
}

/// 1 (and 5, maintenance under load): link A down 45 minutes, beyond its replay buffer.
#[test]
fn s1_link_failure_backup_on_b_restore_on_a_while_collecting() {
    let mut p = morning(21, 3000, "A:down@07:00-07:45");
    // Restore once the calls that were in progress across the gap have finished (their
    // intervals are `call_across_gap` until then): the procedure says the same.
    wait_switch_time(&p.a, at("09:30"), LIMIT);
    let gaps = json(&cms_expect(&p.a, &["gaps", "--json"], 0));
    assert!(!gaps.as_array().unwrap().is_empty(), "A shows the gap");
    let rep = recover(&p.b, &p.a, "b.cmsbak");
    assert!(rep["replaced"].as_u64().unwrap() + rep["filled"].as_u64().unwrap() >= 3);
    assert!(rep["conflicts"].as_array().unwrap().is_empty());
    // Maintenance did not hold the collector up: its checkpoint is fresh.
    let st = json(&cms_expect(&p.a, &["status", "--json"], 0));
    let age = st["acds"][0]["checkpoint_age_seconds"].as_i64().unwrap();
    assert!(age <= 3, "checkpoint lag {age} s during maintenance");
    p.finish();
    all_complete_and_true(&p);
}

/// 2: A's data directory destroyed mid-day; A set up fresh, collects, restores from B.
#[test]
fn s2_hardware_failure_fresh_server_restored_from_b() {
    let mut p = morning(22, 3000, "");
    wait_switch_time(&p.a, at("08:00"), LIMIT);
    p.a.kill9();
    std::fs::remove_dir_all(p.a.dir.path().join("data")).unwrap();
    p.a.spawn();
    wait_switch_time(&p.a, at("10:00"), LIMIT);
    let gaps = cms_expect(&p.a, &["gaps"], 0);
    assert!(gaps.contains("collection_start"), "{gaps}");
    let rep = recover(&p.b, &p.a, "full.cmsbak");
    assert!(
        rep["filled"].as_u64().unwrap() >= 8,
        "the morning came back"
    );
    p.finish();
    all_complete_and_true(&p);
}

/// 3: the collector killed with SIGKILL again and again, restarted inside the replay
/// window: nothing is lost at all, and the database is sound after every kill.
#[test]
fn s3_software_failure_kill9_inside_the_replay_window_loses_nothing() {
    let mut p = morning(23, 400000, "");
    for hhmm in ["07:00", "07:40", "08:20", "09:00", "10:10"] {
        wait_switch_time(&p.a, at(hhmm), LIMIT);
        p.a.kill9();
        assert_integrity(&p.a.db_path());
        p.a.spawn();
    }
    p.finish();
    all_complete_and_true(&p);
}

/// 3 and 4: a long outage of A (killed, with a backup on B killed with it), restarted
/// beyond the replay window; the restore from B closes the gap.
#[test]
fn s4_power_failure_of_one_server_with_a_backup_running() {
    let mut p = morning(24, 3000, "");
    wait_switch_time(&p.a, at("08:00"), LIMIT);
    let bak = p.a.dir.path().join("a.cmsbak");
    let mut backup = Command::new(env!("CARGO_BIN_EXE_cms"))
        .arg("--config")
        .arg(p.a.dir.path().join("cms.toml"))
        .args(["backup", "--out", path(&bak)])
        .spawn()
        .unwrap();
    p.a.kill9();
    let _ = backup.kill();
    let _ = backup.wait();
    if bak.exists() {
        // Finished before the kill: then it must be whole.
        cms_expect(&p.a, &["verify", path(&bak)], 0);
    }
    assert_integrity(&p.a.db_path());
    wait_switch_time(&p.b, at("09:00"), LIMIT);
    p.a.spawn();
    wait_switch_time(&p.a, at("10:30"), LIMIT);
    recover(&p.b, &p.a, "b.cmsbak");
    p.finish();
    all_complete_and_true(&p);
}

/// 4: both servers lose power at once: what both missed is reported missing on both,
/// restores in both directions cannot invent it, and everything else agrees.
#[test]
fn s4_power_failure_of_both_servers() {
    let mut p = morning(25, 3000, "");
    wait_switch_time(&p.a, at("08:00"), LIMIT);
    p.a.kill9();
    p.b.kill9();
    // Down for 50 minutes of switch time, far beyond the replay buffer (about six).
    wait_truth_time(&p.sim, at("08:50"), LIMIT);
    p.a.spawn();
    p.b.spawn();
    wait_switch_time(&p.a, at("10:00"), LIMIT);
    wait_switch_time(&p.b, at("10:00"), LIMIT);
    let ra = recover(&p.b, &p.a, "b.cmsbak");
    let rb = recover(&p.a, &p.b, "a.cmsbak");
    p.finish();
    for (who, c, r) in [("A", &p.a, &ra), ("B", &p.b, &rb)] {
        let v = check_against_truth(&c.db_path(), &p.sim.truth());
        assert!(!v.incomplete.is_empty(), "{who}: the outage shows");
        assert!(
            !r["still_missing"].as_array().unwrap().is_empty(),
            "{who}: the restore says what is still missing"
        );
        let gaps = json(&cms_expect(c, &["gaps", "--json"], 0));
        let n: u64 = gaps
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["kind"] != "restored")
            .map(|g| g["intervals"].as_u64().unwrap())
            .sum();
        assert_eq!(n as usize, v.incomplete.len() + v.missing.len(), "{who}");
    }
    // Promise 5: every interval either server has complete, both have, identically.
    assert_identical(&p.a.db_path(), &p.b.db_path());
}

/// The database as the previous release (schema 1) left it: schema 2 only added the
/// restore log.
fn make_schema_v1(db: &Path) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch("DROP TABLE restore_log; PRAGMA user_version = 1;")
        .unwrap();
}

fn aside(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_os_string();
    s.push(".pre-v1");
    PathBuf::from(s)
}

/// 6: rolling upgrade: A stopped and restarted as the new release (database migrated on
/// start, the old one kept aside) while B collects, then the same for B, then restores
/// B -> A and A -> B.
#[test]
fn s6_rolling_upgrade() {
    let mut p = morning(26, 3000, "");
    for (me, when) in [("A", "07:30"), ("B", "09:30")] {
        let (c, o) = if me == "A" {
            (&mut p.a, &p.b)
        } else {
            (&mut p.b, &p.a)
        };
        wait_switch_time(c, at(when), LIMIT);
        c.stop();
        make_schema_v1(&c.db_path());
        let down_until = at(when) + 30 * 60;
        wait_switch_time(o, down_until, LIMIT);
        c.spawn();
        wait_switch_time(c, down_until + 15 * 60, LIMIT);
        let old = aside(&c.db_path());
        assert!(old.exists(), "{me}: the pre-upgrade database is kept aside");
        let v: i64 = open(&old)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 1, "{me}");
        let now: i64 = open(&c.db_path())
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(now, 2, "{me} migrated on start");
    }
    wait_switch_time(&p.a, at("11:15"), LIMIT);
    recover(&p.b, &p.a, "b.cmsbak");
    recover(&p.a, &p.b, "a.cmsbak");
    p.finish();
    all_complete_and_true(&p);
}

/// 6: the migration path with files from the older versions kept in tests/fixtures: a
/// schema-1 database is upgraded (and kept aside) and the format-1 backup is restored.
#[test]
fn s6_old_database_and_old_backup_are_read_by_this_release() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let c = Collector::configure_full("cms-fixture-a", "127.0.0.1:9".parse().unwrap(), "UTC", "");
    std::fs::create_dir_all(c.dir.path().join("data")).unwrap();
    std::fs::copy(fixtures.join("cms-schema-v1.db"), c.db_path()).unwrap();
    // Read-only commands work on the old database without changing it.
    cms_expect(&c, &["gaps"], 0);
    let rep = json(&cms_expect(
        &c,
        &[
            "restore",
            path(&fixtures.join("backup-v1.cmsbak")),
            "--json",
        ],
        0,
    ));
    assert_eq!(rep["kept"], 2, "{rep}");
    assert!(aside(&c.db_path()).exists());
    // And into an empty server: the two intervals of the format-1 file come in.
    let fresh = Collector::configure_full("x", "127.0.0.1:9".parse().unwrap(), "UTC", "");
    let rep = json(&cms_expect(
        &fresh,
        &[
            "restore",
            path(&fixtures.join("backup-v1.cmsbak")),
            "--json",
        ],
        0,
    ));
    assert_eq!(rep["filled"], 2, "{rep}");
    assert_identical(&fresh.db_path(), &c.db_path());
}

/// Regenerates tests/fixtures/cms-schema-v1.db: the format-1 backup restored into a
/// database, then brought back to schema 1. Run with `--ignored` only when adding a
/// schema version; the committed file is kept forever.
#[test]
#[ignore]
fn regenerate_schema_v1_fixture() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let c = Collector::configure_full("cms-fixture-a", "127.0.0.1:9".parse().unwrap(), "UTC", "");
    cms_expect(
        &c,
        &["restore", path(&fixtures.join("backup-v1.cmsbak"))],
        0,
    );
    make_schema_v1(&c.db_path());
    let c2 = rusqlite::Connection::open(c.db_path()).unwrap();
    c2.execute_batch("PRAGMA journal_mode = DELETE; VACUUM;")
        .unwrap();
    drop(c2);
    std::fs::copy(c.db_path(), fixtures.join("cms-schema-v1.db")).unwrap();
}

/// 7: the backup destination fills up: a clear error naming the path at once, no file
/// that looks valid, nothing changed; after freeing space the same command succeeds.
#[test]
fn s7_backup_destination_full_then_freed() {
    let mut p = morning(27, 400000, "");
    wait_switch_time(&p.b, at("09:00"), LIMIT);
    let mnt = p.b.dir.path().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let fs = SmallFs::mount(&mnt, "4m");
    let filler = mnt.join("filler");
    // All but a few pages: less than any backup file.
    std::fs::write(&filler, vec![0u8; (4 << 20) - 16 * 1024]).unwrap();
    let bak = mnt.join("b.cmsbak");
    let t0 = std::time::Instant::now();
    let (code, out) = p.b.cms(&["backup", "--out", path(&bak)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(path(&mnt)), "names the path: {out}");
    assert!(out.contains("space") || out.contains("No space"), "{out}");
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "fails within a second"
    );
    let left: Vec<_> = std::fs::read_dir(&mnt)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 1, "only the filler is left: {left:?}");
    std::fs::remove_file(&filler).unwrap();
    cms_expect(&p.b, &["backup", "--out", path(&bak)], 0);
    cms_expect(&p.b, &["verify", path(&bak)], 0);
    // Issue #10 item 10: the space asked for is what the backup really writes. With
    // room for the file and a quarter megabyte more, the same backup goes through.
    let size = std::fs::metadata(&bak).unwrap().len();
    std::fs::remove_file(&bak).unwrap();
    fs.resize(&format!("{}k", size / 1024 + 256));
    let out = cms_expect(&p.b, &["backup", "--out", path(&bak)], 0);
    assert!(out.contains(path(&bak)), "{out}");
    p.finish();
    all_complete_and_true(&p);
}

/// 7 for restore: the target's disk fills in the middle of a restore: the transaction
/// rolls back, the message names the path, and after freeing space the rerun completes.
#[test]
fn s7_restore_target_disk_full_then_freed() {
    let mut p = morning(28, 400000, "");
    p.finish();
    let bak = p.b.dir.path().join("b.cmsbak");
    cms_expect(&p.b, &["backup", "--out", path(&bak)], 0);
    let target = Collector::configure_full(
        "srv-c",
        "127.0.0.1:9".parse().unwrap(),
        "America/New_York",
        "",
    );
    let data = target.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let fs = SmallFs::mount(&data, "1m");
    let (code, out) = target.cms(&["restore", path(&bak)]);
    assert_eq!(code, 1, "{out}");
    // Issue #10 item 17: said as a full disk, once, not as SQLite's I/O error.
    assert!(
        out.starts_with(&format!("cms: {}: disk full (", data.display()))
            && out.ends_with(
                " KB free): the restore stopped; every interval is either fully restored or \
                 untouched: free space and run the same restore again\n"
            ),
        "{out}"
    );
    assert_integrity(&target.db_path());
    // Each interval went in whole or not at all.
    let c = open(&target.db_path()).unwrap();
    let bad: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM interval_status s WHERE row_count != \
             (SELECT COUNT(*) FROM hsplit h WHERE h.acd = s.acd AND h.istart = s.istart) + \
             (SELECT COUNT(*) FROM hagent h WHERE h.acd = s.acd AND h.istart = s.istart) + \
             (SELECT COUNT(*) FROM hvdn h WHERE h.acd = s.acd AND h.istart = s.istart) + \
             (SELECT COUNT(*) FROM htkgrp h WHERE h.acd = s.acd AND h.istart = s.istart)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0);
    drop(c);
    fs.resize("64m");
    cms_expect(&target, &["restore", path(&bak)], 0);
    assert_identical(&target.db_path(), &p.b.db_path());
}

/// 8: a restore applied twice, and a restore killed halfway then rerun, give exactly the
/// result of one uninterrupted restore.
#[test]
fn s8_restore_twice_and_killed_halfway_is_identical() {
    let mut p = night(29);
    p.finish();
    let bak = p.b.dir.path().join("b.cmsbak");
    cms_expect(&p.b, &["backup", "--out", path(&bak)], 0);
    let clean =
        Collector::configure_full("c0", "127.0.0.1:9".parse().unwrap(), "America/New_York", "");
    cms_expect(&clean, &["restore", path(&bak)], 0);
    let rep = json(&cms_expect(&clean, &["restore", path(&bak), "--json"], 0));
    assert_eq!(
        (rep["filled"].as_u64(), rep["replaced"].as_u64()),
        (Some(0), Some(0))
    );
    for (i, delay) in [20u64, 60, 150].into_iter().enumerate() {
        let c = Collector::configure_full(
            &format!("c{}", i + 1),
            "127.0.0.1:9".parse().unwrap(),
            "America/New_York",
            "",
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_cms"))
            .arg("--config")
            .arg(c.dir.path().join("cms.toml"))
            .args(["restore", path(&bak)])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Not a wait for a condition but the kill point: the result must be the same
        // wherever the restore is killed (before, while or after it writes).
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        // (Killed while the database was being created, the restore can leave a hot
        // rollback journal that only a read-write open rolls back: the rerun's. A store
        // that creates its database all or nothing is issue #10 item 18, second half.)
        cms_expect(&c, &["restore", path(&bak)], 0);
        assert_integrity(&c.db_path());
        assert_identical(&c.db_path(), &clean.db_path());
        assert_same_summaries(&c.db_path(), &clean.db_path());
    }
    // Killed between writing a day's intervals and summarizing it: the summaries are
    // out of date (here: gone, and marked built long ago); the next run rebuilds them
    // although it has no interval left to write.
    let reference =
        Collector::configure_full("c9", "127.0.0.1:9".parse().unwrap(), "America/New_York", "");
    cms_expect(&reference, &["restore", path(&bak)], 0);
    rusqlite::Connection::open(clean.db_path())
        .unwrap()
        .execute_batch(
            "DELETE FROM dagent; DELETE FROM wsplit; UPDATE summary_state SET built_at = 0",
        )
        .unwrap();
    let rep = json(&cms_expect(&clean, &["restore", path(&bak), "--json"], 0));
    assert_eq!(
        (rep["filled"].as_u64(), rep["days_resummarized"].as_u64()),
        (Some(0), Some(1))
    );
    assert_same_summaries(&clean.db_path(), &reference.db_path());
}

/// Every daily, weekly and monthly summary row is the same in both databases.
fn assert_same_summaries(a: &Path, b: &Path) {
    let dump = |db: &Path| -> Vec<String> {
        let c = open(db).unwrap();
        let mut out = vec![];
        for prefix in ["d", "w", "m"] {
            for t in cms::items::TABLES {
                let mut st = c
                    .prepare(&format!(
                        "SELECT * FROM {prefix}{} ORDER BY 1, 2, 3, 4",
                        t.name
                    ))
                    .unwrap();
                let n = st.column_count();
                let rows = st
                    .query_map([], |r| {
                        let vals: Vec<String> = (0..n)
                            .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                            .collect();
                        Ok(format!("{prefix}{} {}", t.name, vals.join(",")))
                    })
                    .unwrap();
                out.extend(rows.map(|r| r.unwrap()));
            }
        }
        out
    };
    let (da, db) = (dump(a), dump(b));
    assert!(!da.is_empty(), "{}: no summary rows", a.display());
    assert!(
        da == db,
        "{} and {} have different summaries",
        a.display(),
        b.display()
    );
}

/// 9: different retention (the Cisco pitfall): B keeps one day of intervals, A loses its
/// data; the restore says exactly which periods B no longer has, and takes B's daily
/// summary for them.
#[test]
fn s9_different_retention_is_reported_not_hidden() {
    let args = [
        "--seed",
        "30",
        "--start",
        "2026-11-04T00:00",
        "--duration",
        "60h",
        "--speed",
        "21600",
        "--buffer",
        "3000",
    ];
    // B runs with one day of intrahour retention (the daily summary stays).
    let mut p = Pair::start_with(PROFILE, &args, "", "[retention]\nintrahour_days = 1\n");
    // A loses everything on day 2.
    wait_switch_time(&p.a, local_ts(PROFILE, "2026-11-05T12:00"), LIMIT);
    p.a.kill9();
    std::fs::remove_dir_all(p.a.dir.path().join("data")).unwrap();
    p.a.spawn();
    p.finish();
    let bak = p.b.dir.path().join("b.cmsbak");
    cms_expect(&p.b, &["backup", "--out", path(&bak)], 0);
    let (code, out) = p.a.cms(&["restore", path(&bak)]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("WARNING: server srv-b no longer has the intervals of ACD 1 2026-11-04"),
        "names the lost day: {out}"
    );
    assert!(out.contains("only its daily summary was restored"), "{out}");
    let rep = json(&cms_expect(&p.a, &["restore", path(&bak), "--json"], 0));
    assert!(!rep["source_lacks"].as_array().unwrap().is_empty());
    let c = open(&p.a.db_path()).unwrap();
    let day1: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM dsplit WHERE row_date = '2026-11-04'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(day1 > 0, "A has B's daily summary of the lost day");
}

/// A restore of `bak` into a fresh server that is not collecting, stopped (SIGSTOP) in
/// its write phase with part of its plan still to write: the target, the stopped
/// process, the intervals planned and those written so far. Tries up to ten fresh
/// targets (a restore can end before it is caught), then fails.
fn restore_caught_mid_write(bak: &Path) -> (Collector, std::process::Child, i64, i64) {
    for attempt in 0..10 {
        let c = Collector::configure_full(
            &format!("caught{attempt}"),
            "127.0.0.1:9".parse().unwrap(),
            "America/New_York",
            "",
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_cms"))
            .arg("--config")
            .arg(c.dir.path().join("cms.toml"))
            .args(["restore", path(bak)])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let planned = |db: &Path| -> Option<i64> {
            open(db)
                .ok()?
                .query_row(
                    "SELECT filled + replaced FROM restore_log WHERE finished_at = 0",
                    [],
                    |r| r.get(0),
                )
                .ok()
        };
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "restore neither started writing nor ended"
            );
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if planned(&c.db_path()).is_none() {
                continue;
            }
            Command::new("kill")
                .args(["-STOP", &child.id().to_string()])
                .status()
                .unwrap();
            let written: i64 = open(&c.db_path())
                .unwrap()
                .query_row("SELECT COUNT(*) FROM interval_status", [], |r| r.get(0))
                .unwrap();
            match planned(&c.db_path()) {
                Some(n) if written < n => return (c, child, n, written),
                _ => {
                    Command::new("kill")
                        .args(["-CONT", &child.id().to_string()])
                        .status()
                        .unwrap();
                    let _ = child.wait();
                    break;
                }
            }
        }
    }
    panic!(
        "{}: no restore caught in its write phase in ten tries",
        bak.display()
    );
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Issue #10 items 18 and 19: a restore that did not finish is reported by `cms gaps`
/// and `cms status` with what of its plan is not written; a restore whose write phase
/// crosses a wall-clock second leaves no summary older than its intervals, so the next
/// restore of the same file has nothing to rebuild.
#[test]
fn s8_a_killed_restore_is_reported_and_a_slow_one_leaves_nothing_out_of_date() {
    let mut p = night(31);
    p.finish();
    let bak = p.b.dir.path().join("b.cmsbak");
    cms_expect(&p.b, &["backup", "--out", path(&bak)], 0);

    // 19: stopped mid-write until the wall clock's whole second (what `updated_at`
    // holds) has moved on, then let go.
    let (c, mut child, _, _) = restore_caught_mid_write(&bak);
    let stopped_at = unix_secs();
    until(
        Duration::from_secs(2),
        || "the wall clock's next second".into(),
        || (unix_secs() > stopped_at).then_some(()),
    );
    Command::new("kill")
        .args(["-CONT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let rep = json(&cms_expect(&c, &["restore", path(&bak), "--json"], 0));
    assert_eq!(
        (rep["filled"].as_u64(), rep["days_resummarized"].as_u64()),
        (Some(0), Some(0)),
        "{rep}"
    );

    // 18: killed mid-write.
    let (c, mut child, planned, written) = restore_caught_mid_write(&bak);
    child.kill().unwrap();
    child.wait().unwrap();
    let started: i64 = open(&c.db_path())
        .unwrap()
        .query_row("SELECT started_at FROM restore_log", [], |r| r.get(0))
        .unwrap();
    let started = chrono::DateTime::from_timestamp(started, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ");
    let left = planned - written;
    let warning = format!(
        "WARNING: the restore of {} (server srv-b) started {started} did not finish: {left} \
         interval{} of its plan of {planned} not written; run `cms restore {}` again\n",
        bak.display(),
        if left == 1 { "" } else { "s" },
        bak.display()
    );
    let gaps = cms_expect(&c, &["gaps"], 0);
    assert!(gaps.starts_with(&warning), "{gaps}");
    let status = cms_expect(&c, &["status"], 0);
    assert!(status.contains(&format!("\n{warning}")), "{status}");
    cms_expect(&c, &["gaps", "--fail-on-gaps"], 3);
    // Run again: done, and nothing more to say.
    cms_expect(&c, &["restore", path(&bak)], 0);
    let gaps = cms_expect(&c, &["gaps", "--fail-on-gaps"], 0);
    assert!(!gaps.contains("WARNING"), "{gaps}");
}
