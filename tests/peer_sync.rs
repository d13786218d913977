//! Peer sync heals the pair (issue #13), with real `cms collect`, `cms sync` and
//! `cms-linksim` processes, compared with the simulator's ground truth, as
//! tests/ha_scenarios.rs does for the manual backup and restore.
//!
//! - `cms sync --once` by hand: a link failure beyond the replay buffer healed, the dry
//!   run changing nothing, the words of `cms restore`.
//! - The collector service with the peer configured, no operator action (issue #13's
//!   HA scenarios): the link failure heals itself; hardware failure (a fresh server
//!   backfills its whole history); software failure (SIGKILL mid-interval); a full disk
//!   (said at once on both sides, nothing half-applied, healed once freed); rolling
//!   upgrade from the release without peer sync; both down: the common gap stays
//!   missing on both; the peer unreachable then back; a wrong key; a sender that cannot
//!   produce the stream says so. The power cut of one server is `power_cut::p6`.
//!
//! The run is `common::run::Run::morning`: switch time at 1200x (six hours in 18 s of
//! wall time).

mod common;
mod peer_support;

use common::run::{at, Run};
use common::sim::{
    assert_identical, assert_integrity, assert_pair_true, check_against_truth, cms_expect, sources,
    wait_switch_time, wait_truth_time,
};
use common::smallfs::SmallFs;
use peer_support::*;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

/// The morning run (`common::run::Run::morning`) with `faults`, the pair peers of each
/// other when `peer`.
fn morning(seed: u64, faults: &str, peer: bool) -> PeerPair {
    PeerPair::start(&Run::morning(seed).faults(faults), peer)
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
    assert_pair_true(&p.a, &p.b, &p.sim.truth(), 24);
}

/// A pair where A's collector runs without a peer and B listens for A; A's
/// configuration for `cms sync` by hand.
fn manual(seed: u64, faults: &str) -> (PeerPair, std::path::PathBuf) {
    let p = morning(seed, faults, false);
    let sync = p.manual();
    (p, sync)
}

#[test]
fn sync_once_heals_a_link_failure_beyond_the_buffer() {
    let (mut p, sync) = manual(31, "A:down@07:00-07:45");
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
    wait_pair(&p, "B listening again", LIMIT, || {
        cms_with(&sync, &["sync", "--once"]).0 == 0
    });
    // One more: nothing is left to heal either way, so what A saw of B is B now.
    let (code, out) = cms_with(&sync, &["sync", "--once"]);
    assert_eq!(code, 0, "{out}");
    p.b.stop();
    all_complete_and_true(&p);
    view_is_the_peers(&p.a.db_path(), &p.b.db_path());
}

/// What A's last sync stored of B's intervals (the console's peer grid) is B's own
/// statuses, interval by interval, read from B's database.
fn view_is_the_peers(a: &std::path::Path, b: &std::path::Path) {
    use cms::store::peer::{load_view, status_rows, PeerDay};
    use std::collections::BTreeMap;
    let (sa, sb) = (
        cms::store::Store::open_read_only(a).unwrap(),
        cms::store::Store::open_read_only(b).unwrap(),
    );
    let by_day = |rows: Vec<cms::store::peer::StatusRow>| {
        let mut m: BTreeMap<u32, Vec<(i64, bool)>> = BTreeMap::new();
        for r in rows {
            let d = cms::peer::digest::day_number(&r.date);
            m.entry(d).or_default().push((r.istart, r.complete));
        }
        m
    };
    let view = load_view(&sa.conn, 1, (0, u32::MAX))
        .unwrap()
        .expect("A stored a view of B");
    let theirs = by_day(status_rows(&sb.conn, 1, None).unwrap());
    let mine = by_day(status_rows(&sa.conn, 1, None).unwrap());
    assert!(!theirs.is_empty());
    assert_eq!(
        view.days.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "the days B has"
    );
    for (day, rows) in &theirs {
        match &view.days[day] {
            PeerDay::Same => assert_eq!(mine.get(day), Some(rows), "day {day}: as A's"),
            PeerDay::Listed(l) => assert_eq!(l, rows, "day {day}: listed"),
            PeerDay::Held { .. } => panic!("day {day}: A keeps every day B has"),
        }
    }
}

#[test]
fn the_service_heals_a_link_failure_with_no_operator_action() {
    let mut p = morning(32, "A:down@07:00-07:45", true);
    wait_switch_time(&p.a, at("08:30"), LIMIT);
    // Healed within a bound once the link is back (a sync after every interval close).
    wait_pair(&p, "A healed by its peer", LIMIT, || {
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

/// Hardware failure (issue #13's scenario, as ha_scenarios' s2 without the restore): A's
/// disk is lost at 08:00 (its data directory deleted; its identity, kept outside, is what
/// an operator reinstalls) and A starts fresh while B collects. With no operator action A
/// backfills its whole history from B: every interval of 06:00..08:00 is complete there
/// (source `restored:srv-b`) and equals the truth before the run ends, and at the end both
/// hold every interval, equal to the truth.
#[test]
fn hardware_failure_a_fresh_server_backfills_its_whole_history_from_b() {
    let mut p = morning(33, "", true);
    wait_switch_time(&p.a, at("08:00"), LIMIT);
    p.a.kill9();
    std::fs::remove_dir_all(p.a.dir.path().join("data")).unwrap();
    p.a.spawn();
    wait_switch_time(&p.a, at("09:00"), LIMIT);
    wait_pair(&p, "A backfilled the morning from B", LIMIT, || {
        peer_status(&p.a)["healed"].as_u64().unwrap_or(0) >= 8
    });
    // The whole history before the loss is back, from B, and true.
    check_against_truth(&p.a.db_path(), &p.sim.truth());
    let back = sources(&p.a.db_path(), at("06:00"), at("08:00"));
    assert_eq!(
        back.len(),
        8,
        "every interval of 06:00..08:00 is on A: {back:?}"
    );
    for (istart, (status, source)) in &back {
        assert_eq!(
            (status.as_str(), source.as_str()),
            ("complete", "restored:srv-b"),
            "interval {istart}"
        );
    }
    p.finish();
    all_complete_and_true(&p);
}

/// Software failure: A's collector killed with SIGKILL in the middle of an interval
/// (07:07) and restarted 35 switch minutes later, far beyond the switch's replay buffer
/// (about six minutes): A's own stream cannot give it 07:00..07:45 back, and with no
/// operator action the pair heals itself.
#[test]
fn software_failure_a_killed_mid_interval_heals_by_itself() {
    let mut p = morning(37, "", true);
    wait_switch_time(&p.a, at("07:07"), LIMIT);
    p.a.kill9();
    assert_integrity(&p.a.db_path());
    wait_truth_time(&p.sim, at("07:45"), LIMIT);
    p.a.spawn();
    wait_switch_time(&p.a, at("08:30"), LIMIT);
    wait_pair(&p, "A healed 07:00..07:45 from B", LIMIT, || {
        peer_status(&p.a)["healed"].as_u64().unwrap_or(0) >= 3
    });
    let healed = sources(&p.a.db_path(), at("07:00"), at("07:45"));
    assert!(
        healed
            .values()
            .all(|(st, src)| st == "complete" && src == "restored:srv-b"),
        "the outage's intervals came from B: {healed:?}"
    );
    p.finish();
    all_complete_and_true(&p);
}

/// The `[peer]` section of `c`'s configuration taken out (what the previous release, which
/// had no peer sync, runs with); returns the whole configuration, to put back at the
/// upgrade.
fn without_peer(c: &common::collector::Collector) -> String {
    let text = std::fs::read_to_string(config(c)).unwrap();
    let old = &text[..text.find("\n[peer]").expect("a [peer] section")];
    std::fs::write(config(c), old).unwrap();
    text
}

/// The backup file format and the database schema a backup file declares (its prefix,
/// proto/backup-format.md).
fn versions(file: &std::path::Path) -> (u16, u32) {
    let b = std::fs::read(file).unwrap();
    (
        u16::from_le_bytes([b[8], b[9]]),
        u32::from_le_bytes([b[16], b[17], b[18], b[19]]),
    )
}

/// Rolling upgrade from the previous release (schema 2, backup format 2, no peer sync):
/// both servers run as before, without a `[peer]` section. A is upgraded first (stopped at
/// 07:30, restarted 30 switch minutes later, beyond the replay buffer, with its peer
/// configured): B, still on the previous release, has no peer listener, so A says so in
/// `cms status` and its outage is healed by the manual procedure, a backup on B restored
/// on A, as docs/peer-sync.md says for an old release. Then B is upgraded the same way
/// (09:30, 30 minutes): now both speak the peer protocol and B's outage heals with no
/// operator action. At the end both hold every interval, equal to the truth; and a backup
/// written after the peer sync ran (its state table created on first write) still
/// declares format 2 and schema 2, which the previous release reads.
#[test]
fn rolling_upgrade_from_the_release_without_peer_sync() {
    let mut p = PeerPair::configure(&Run::morning(38), true);
    let (new_a, new_b) = (without_peer(&p.a), without_peer(&p.b));
    p.a.spawn();
    p.b.spawn();
    // A upgraded while B collects on the previous release.
    wait_switch_time(&p.a, at("07:30"), LIMIT);
    p.a.stop();
    std::fs::write(config(&p.a), &new_a).unwrap();
    wait_switch_time(&p.b, at("08:00"), LIMIT);
    p.a.spawn();
    wait_pair(&p, "A: the old B has no peer listener", LIMIT, || {
        let s = peer_status(&p.a);
        s["state"] == "not connected"
            && s["reason"]
                .as_str()
                .unwrap_or("")
                .contains("cannot connect")
    });
    // The manual procedure between the new A and the old B, once the calls across A's
    // outage have ended.
    wait_switch_time(&p.a, at("08:45"), LIMIT);
    assert!(gap_count(&p.a) >= 2, "A shows its outage");
    let bak = p.b.dir.path().join("b.cmsbak");
    cms_expect(&p.b, &["backup", "--out", bak.to_str().unwrap()], 0);
    let rep = json(&cms_expect(
        &p.a,
        &["restore", bak.to_str().unwrap(), "--json"],
        0,
    ));
    assert!(
        rep["filled"].as_u64().unwrap() + rep["replaced"].as_u64().unwrap() >= 2,
        "{rep}"
    );
    // B upgraded: from now on the pair heals itself.
    wait_switch_time(&p.b, at("09:30"), LIMIT);
    p.b.stop();
    std::fs::write(config(&p.b), &new_b).unwrap();
    wait_switch_time(&p.a, at("10:00"), LIMIT);
    p.b.spawn();
    wait_switch_time(&p.b, at("10:45"), LIMIT);
    wait_pair(&p, "B healed its upgrade's outage from A", LIMIT, || {
        peer_status(&p.b)["healed"].as_u64().unwrap_or(0) >= 2
    });
    assert_eq!(peer_status(&p.a)["state"], "connected");
    // What this release writes after the peer sync ran is what the previous one reads:
    // the format of its fixture, and schema 2 (the peer state is no migration).
    let after = p.a.dir.path().join("a.cmsbak");
    cms_expect(&p.a, &["backup", "--out", after.to_str().unwrap()], 0);
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/backup-v2.cmsbak");
    assert_eq!(versions(&after), (versions(&fixture).0, 2));
    p.finish();
    all_complete_and_true(&p);
}

/// When the first line of `log` that contains `needle` was written (its timestamp).
fn logged_at(log: &str, needle: &str) -> chrono::DateTime<chrono::Utc> {
    let line = log
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the log:\n{log}"));
    let ts = line.split_whitespace().next().unwrap();
    ts.parse()
        .unwrap_or_else(|e| panic!("{e}: no timestamp in {line:?}"))
}

/// Full disks on both sides of a stream (issue #13: seed 001's failure must not exist
/// here). A's link is down 07:00..07:45, beyond its replay buffer: B holds what A lacks.
///
/// - The receiver's disk is full: A's spool directory (`data/peer-spool`, where a
///   fetched stream is written before it is merged) is a small full tmpfs, so A keeps
///   collecting but cannot take a stream. Every sync that would heal A ends at once: A
///   logs why, tells B (ERROR 7, with the reason), B logs A's reason within two seconds
///   of A, and nothing is applied on A (its outage still not complete, no spool file).
/// - The sender's disk is full: B's data directory is a small tmpfs, filled at 08:30,
///   and B's temporary directory (`TMPDIR`, `SQLITE_TMPDIR`) is on it. The sender writes
///   nothing to produce a stream (it goes from a read snapshot of the database straight
///   into the session), so once A's spool is freed A heals its outage from B while B's
///   disk is still full.
/// - Once B's disk is freed, B heals from A what it lost while full. No operator action
///   but freeing the space.
///
/// At the end both hold every interval, equal to the truth, identical.
#[test]
fn full_disks_are_said_at_once_on_both_sides_nothing_half_applied_and_healed_when_freed() {
    let mut p = PeerPair::configure(&Run::morning(39).faults("A:down@07:00-07:45"), true);
    let spool = p.a.dir.path().join("data/peer-spool");
    std::fs::create_dir_all(&spool).unwrap();
    let db = p.b.dir.path().join("data");
    std::fs::create_dir(&db).unwrap();
    let (fa, fb) = (SmallFs::mount(&spool, "1m"), SmallFs::mount(&db, "64m"));
    let filler_a = fa.fill();
    p.a.spawn();
    p.b.spawn_env(&[("TMPDIR", &db), ("SQLITE_TMPDIR", &db)]);
    wait_log(&p.a, "srv-a: cannot take the stream", LIMIT);
    wait_log(
        &p.b,
        "srv-a: cannot take the stream",
        Duration::from_secs(5),
    );
    let (la, lb) = (p.a.log(), p.b.log());
    let said = logged_at(&la, "srv-a: cannot take the stream");
    let heard = logged_at(&lb, "srv-a: cannot take the stream");
    assert!(
        (heard - said).num_milliseconds().abs() <= 2000,
        "A said it at {said}, B logged it at {heard}"
    );
    assert!(la.contains("No space left"), "A names the reason:\n{la}");
    assert!(lb.contains("(error 7)"), "{lb}");
    let outage = sources(&p.a.db_path(), at("07:00"), at("07:45"));
    assert!(
        outage.values().all(|(st, _)| st != "complete"),
        "nothing half-applied: {outage:?}"
    );
    let left = std::fs::read_dir(&spool).unwrap().count();
    assert_eq!(left, 1, "no spool file left beside the filler");
    // The sender's disk full; then the receiver's spool freed.
    wait_switch_time(&p.b, at("08:30"), LIMIT);
    let filler_b = fb.fill();
    std::fs::remove_file(&filler_a).unwrap();
    wait_pair(
        &p,
        "A healed its outage from B, whose disk is full",
        LIMIT,
        || {
            let s = sources(&p.a.db_path(), at("07:00"), at("07:45"));
            s.len() == 3
                && s.values()
                    .all(|(st, src)| st == "complete" && src == "restored:srv-b")
        },
    );
    let free = fs4::available_space(&db).unwrap();
    assert!(free < 4096, "B's disk is still full: {free} bytes free");
    let lb = p.b.log();
    assert!(
        !lb.contains("cannot answer the peer"),
        "B produced its streams:\n{lb}"
    );
    // B's disk freed: B heals what it lost meanwhile, by itself.
    wait_truth_time(&p.sim, at("09:00"), LIMIT);
    std::fs::remove_file(&filler_b).unwrap();
    p.finish();
    // One more sync each way after the end, so nothing healable is left.
    let t0 = cms::store::intervals::now_secs();
    p.a.spawn();
    p.b.spawn();
    wait_pair(&p, "both synced after the run", LIMIT, || {
        [&p.a, &p.b]
            .iter()
            .all(|c| peer_status(c)["last_sync"].as_i64().unwrap_or(0) >= t0)
    });
    p.a.stop();
    p.b.stop();
    all_complete_and_true(&p);
    // The collectors have stopped; the disks go after them.
    drop((fa, fb));
}

#[test]
fn both_down_the_common_gap_stays_missing_on_both_and_nothing_is_invented() {
    let mut p = morning(34, "", true);
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
    wait_pair(&p, "both synced after the run", LIMIT, || {
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
    let mut p = morning(35, "", true);
    wait_switch_time(&p.a, at("07:00"), LIMIT);
    wait_pair(&p, "A connected", LIMIT, || {
        peer_status(&p.a)["state"] == "connected"
    });
    p.b.stop();
    wait_pair(&p, "A sees B gone", LIMIT, || {
        let s = peer_status(&p.a);
        s["state"] == "not connected" && s["reason"].as_str().unwrap().contains("cannot connect")
    });
    p.b.spawn();
    wait_pair(&p, "A sees B back", LIMIT, || {
        peer_status(&p.a)["state"] == "connected"
    });
    // B now pins a key that is not A's: both refuse and say why.
    p.b.stop();
    let text = std::fs::read_to_string(config(&p.b)).unwrap();
    let wrong = "00:".repeat(31) + "00";
    std::fs::write(config(&p.b), text.replace(&p.id_a, &wrong)).unwrap();
    p.b.spawn();
    wait_log(&p.b, "wrong identity: its certificate is", LIMIT);
    wait_pair(&p, "A shows the refusal", LIMIT, || {
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
    let (mut p, sync) = manual(36, "A:down@07:00-07:45");
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
