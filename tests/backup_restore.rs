//! `cms backup` on a healthy server and `cms restore` on one that lost part of the
//! stream, both with their collectors running: exactly the missing intervals come back,
//! twice is the same as once, complete data is never overwritten, and bad files change
//! nothing. The two servers are real `cms collect` processes fed by scripted switches
//! with the identical stream.

mod common;

use cms::merge::backup::{self, BackupOptions, SnapshotOptions};
use cms::merge::{restore, Categories, Clock, Selection};
use cms::proto::{AgentSnapshot, AgentState, EventKind, Frame, SkillLevel, StartMode};
use cms::store::Store;
use common::collector::{open, status, t, Collector};
use common::*;
use std::path::Path;

const EPOCH: u64 = 9;

/// The switch's stream: translations and agent 100 at 09:50 (1..5), a tick at 10:05,
/// call 1 at 10:10 (6..14), AUX/AVAIL toggles from 10:25 (15..49, ending in AUX 2), call 2
/// at 10:50 (50..58), a final tick at 11:30.
fn stream() -> Vec<Frame> {
    let mut v = translations(1, t(9, 50, 0));
    v.extend(agent_login(4, t(9, 50, 0), 100, &[SKILL]));
    v.push(tick(t(10, 5, 0), 5));
    v.extend(answered_call(6, t(10, 10, 0), &CallSpec::default()));
    for k in 0..35u64 {
        let state = if k % 2 == 0 {
            AgentState::Aux(2)
        } else {
            AgentState::Avail
        };
        v.push(event(
            15 + k,
            t(10, 25, 0) + k as i64 * 15_000,
            EventKind::AgentState {
                agent: 100,
                state,
                skill: 0,
            },
        ));
    }
    v.extend(answered_call(
        50,
        t(10, 50, 0),
        &CallSpec {
            call: 2,
            ..CallSpec::default()
        },
    ));
    v.push(tick(t(11, 30, 0), 58));
    assert_contiguous(&v, 1);
    v
}

/// Server B receives everything; server A loses 6..=49 beyond the replay buffer.
fn two_servers() -> (Collector, Collector, ScriptedSwitch, ScriptedSwitch) {
    let all = stream();
    let sb = ScriptedSwitch::bind();
    sb.push(
        Script::new()
            .expect_hello()
            .send(vec![welcome(EPOCH, StartMode::Replay, 1, t(9, 50, 0))])
            .send(all.clone())
            .wait_ack(58),
    );
    let sa = ScriptedSwitch::bind();
    let mut first = seqs(&all, 1, 5);
    first.push(tick(t(10, 5, 0), 5));
    sa.push(
        Script::new()
            .expect_hello()
            .send(vec![welcome(EPOCH, StartMode::Replay, 1, t(9, 50, 0))])
            .send(first)
            .wait_ack(5)
            .close(),
    );
    let mut live = seqs(&all, 50, 58);
    live.push(tick(t(11, 30, 0), 58));
    sa.push(
        Script::new()
            .expect_hello()
            .respond(move |h| {
                assert_eq!(h.resume_from, 6);
                let mut v = vec![welcome(EPOCH, StartMode::Pumpup, 50, t(10, 40, 0))];
                v.extend(pumpup(
                    49,
                    t(10, 40, 0),
                    vec![Frame::SnapAgent(AgentSnapshot {
                        agent: 100,
                        state: AgentState::Aux(2),
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
    let b = Collector::start_as("srv-b", sb.addr());
    let a = Collector::start_as("srv-a", sa.addr());
    sb.connection_blocking(0).assert_ok();
    sa.connection_blocking(0).assert_ok();
    sa.connection_blocking(1).assert_ok();
    (a, b, sa, sb)
}

fn count(db: &Path, sql: &str) -> i64 {
    open(db).unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn ok(c: &Collector, args: &[&str]) -> String {
    let (code, out) = c.cms(args);
    assert_eq!(code, 0, "cms {args:?}:\n{out}");
    out
}

#[test]
fn backup_on_b_and_restore_on_a_merge_exactly_the_gap() {
    let (mut a, mut b, _sa, _sb) = two_servers();
    // A is missing 10:00..10:30 (replay gap); B has every interval complete.
    let gaps = ok(&a, &["gaps", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&gaps).unwrap();
    assert_eq!(v[0]["intervals"], 3, "{gaps}");

    // Backup on B while its collector runs.
    let bak = b.dir.path().join("b.cmsbak");
    let out = ok(&b, &["backup", "--out", bak.to_str().unwrap()]);
    assert!(out.contains("7 intervals"), "{out}");
    let verify = ok(&b, &["verify", bak.to_str().unwrap(), "--json"]);
    let vj: serde_json::Value = serde_json::from_str(&verify).unwrap();
    assert_eq!(vj["intervals"], 7);
    assert_eq!(vj["server_id"], "srv-b");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&bak).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // Dry run on A: the plan, nothing written.
    let before = count(
        &a.db_path(),
        "SELECT COUNT(*) FROM interval_status WHERE status = 'complete'",
    );
    let plan = ok(
        &a,
        &["restore", bak.to_str().unwrap(), "--dry-run", "--json"],
    );
    let pj: serde_json::Value = serde_json::from_str(&plan).unwrap();
    assert_eq!(pj["replaced"], 3, "{plan}");
    assert_eq!(pj["filled"], 0, "{plan}");
    assert_eq!(
        count(
            &a.db_path(),
            "SELECT COUNT(*) FROM interval_status WHERE status = 'complete'"
        ),
        before
    );

    // Restore on A while its collector runs.
    let rep = ok(&a, &["restore", bak.to_str().unwrap(), "--json"]);
    let rj: serde_json::Value = serde_json::from_str(&rep).unwrap();
    assert_eq!(rj["replaced"], 3, "{rep}");
    assert_eq!(rj["kept"], 4, "{rep}");
    assert_eq!(rj["conflicts"].as_array().unwrap().len(), 0);
    assert_eq!(rj["still_missing"].as_array().unwrap().len(), 0, "{rep}");
    let db = open(&a.db_path()).unwrap();
    for m in [0, 15, 30] {
        assert_eq!(status(&db, t(10, m, 0)).unwrap().0, "complete");
    }
    let src: String = db
        .query_row(
            "SELECT source FROM interval_status WHERE istart = ?1",
            [t(10, 15, 0) / 1000],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(src, "restored:srv-b");
    drop(db);

    // Both servers now hold the same complete intervals.
    let cmp = ok(&a, &["compare", b.db_path().to_str().unwrap(), "--strict"]);
    assert!(cmp.contains("agree"), "{cmp}");
    // gaps shows the restored intervals with their source, and nothing missing.
    let gaps = ok(&a, &["gaps"]);
    assert!(
        gaps.contains("no missing or incomplete intervals"),
        "{gaps}"
    );
    assert!(gaps.contains("restored:srv-b"), "{gaps}");

    // Twice is the same as once.
    let again = ok(&a, &["restore", bak.to_str().unwrap(), "--json"]);
    let aj: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(
        (aj["filled"].as_u64(), aj["replaced"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(aj["kept"], 7);
    assert_eq!(
        count(
            &a.db_path(),
            "SELECT COUNT(*) FROM restore_log WHERE finished_at > 0"
        ),
        2
    );
    // The day is not over on A (its collector is in it): its daily summary is the
    // collector's to build when the day ends, as on B; the restore wrote none.
    for db in [a.db_path(), b.db_path()] {
        assert_eq!(count(&db, "SELECT COUNT(*) FROM dsplit"), 0, "{db:?}");
    }
    a.stop();
    b.stop();
    let integrity: String = open(&a.db_path())
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
}

#[test]
fn conflicts_are_reported_and_bad_files_change_nothing() {
    let (mut a, mut b, _sa, _sb) = two_servers();
    let bak = b.dir.path().join("b.cmsbak");
    ok(&b, &["backup", "--out", bak.to_str().unwrap()]);
    a.stop();
    b.stop();
    // A holds a different complete copy of 11:00 (as if a bug had changed it).
    {
        let c = rusqlite::Connection::open(a.db_path()).unwrap();
        c.execute(
            "UPDATE interval_status SET checksum = ?2 WHERE acd = 1 AND istart = ?1",
            rusqlite::params![t(11, 0, 0) / 1000, "00".repeat(32)],
        )
        .unwrap();
    }
    let snapshot = |db: &Path| -> Vec<(i64, String, String)> {
        let c = open(db).unwrap();
        let mut st = c
            .prepare("SELECT istart, status, checksum FROM interval_status ORDER BY istart")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };

    // Corrupt and truncated copies are refused before anything is written.
    let before = snapshot(&a.db_path());
    let bytes = std::fs::read(&bak).unwrap();
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    let bad = a.dir.path().join("flipped.cmsbak");
    std::fs::write(&bad, &flipped).unwrap();
    let short = a.dir.path().join("short.cmsbak");
    std::fs::write(&short, &bytes[..bytes.len() - 100]).unwrap();
    for f in [&bad, &short] {
        let (code, out) = a.cms(&["restore", f.to_str().unwrap()]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(f.to_str().unwrap()), "names the file: {out}");
        assert_eq!(snapshot(&a.db_path()), before, "nothing changed");
        let (code, out) = a.cms(&["verify", f.to_str().unwrap()]);
        assert_eq!(code, 1, "{out}");
    }
    // Local data: refused without --include-local, and from another server.
    let (code, out) = a.cms(&["restore", bak.to_str().unwrap(), "--data", "local"]);
    assert_eq!(code, 1);
    assert!(out.contains("--include-local"), "{out}");
    let (code, out) = a.cms(&[
        "restore",
        bak.to_str().unwrap(),
        "--data",
        "local",
        "--include-local",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("srv-b") && out.contains("srv-a"), "{out}");
    assert_eq!(snapshot(&a.db_path()), before);

    // The real restore: the gap is filled, the conflict reported (exit 3) and untouched.
    let (code, out) = a.cms(&["restore", bak.to_str().unwrap()]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("CONFLICT"), "{out}");
    let after = snapshot(&a.db_path());
    let conflicted = after.iter().find(|r| r.0 == t(11, 0, 0) / 1000).unwrap();
    assert_eq!(
        conflicted.2,
        "00".repeat(32),
        "complete data is never overwritten"
    );
    assert_eq!(
        after.iter().filter(|r| r.1 == "complete").count(),
        7,
        "the three gap intervals were still filled"
    );
}

#[test]
fn backup_to_an_unwritable_place_fails_fast_and_leaves_nothing() {
    let (mut a, _b, _sa, _sb) = two_servers();
    let blocker = a.dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let target = blocker.join("x.cmsbak");
    let started = std::time::Instant::now();
    let (code, out) = a.cms(&["backup", "--out", target.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(blocker.to_str().unwrap()) && out.contains("cannot create"),
        "names the path and the reason: {out}"
    );
    assert!(started.elapsed().as_secs() < 5);
    let leftovers: Vec<_> = std::fs::read_dir(a.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    a.stop();
}

/// The configuration `c` runs with.
fn config(c: &Collector) -> cms::config::Config {
    cms::config::Config::load(Some(&c.dir.path().join("cms.toml"))).unwrap()
}

/// `cms backup --out OUT [--since SINCE]` of `c` as the library runs it, taken at the
/// time `clock` says.
fn backup_at(c: &Collector, out: &Path, since: Option<i64>, clock: Clock) -> String {
    let cfg = config(c);
    let mut store = Store::open_read_only(&cfg.db_path()).unwrap();
    let sel = Selection {
        acds: vec![1],
        from: None,
        to: None,
        grid: cfg.grid(),
        categories: Categories::parse("history,admin,local").unwrap(),
    };
    let opts = BackupOptions {
        out: out.to_owned(),
        snapshot: SnapshotOptions {
            since,
            clock,
            ..SnapshotOptions::new(sel, &cfg.server_id, cfg.time_zone.name())
        },
    };
    backup::backup(&mut store, &opts).unwrap().render()
}

/// `cms restore FILE` onto `c` as the library runs it, every row stamped with `clock`.
fn restore_at(c: &Collector, file: &Path, clock: Clock) -> String {
    let cfg = config(c);
    let grid = cfg.grid();
    let opts = restore::RestoreOptions {
        file: file.to_owned(),
        sel: Selection {
            acds: vec![],
            from: None,
            to: None,
            grid,
            categories: Categories::parse("history,admin").unwrap(),
        },
        configured_acds: vec![1],
        dry_run: false,
        include_local: false,
        key: None,
        server_id: cfg.server_id.clone(),
        collection_running: cms::collect::collection_running(&cfg.data_dir),
        progress: false,
        week_start: cfg.week_start,
    };
    let db = cfg.db_path();
    restore::restore_at_with_clock(&db, &grid, &opts, || Ok(Store::open(&db)?), clock)
        .unwrap()
        .render()
}

/// The time the backups and restores of the incremental test are taken at: later than
/// anything the collectors wrote (time is passed in, so the test needs no sleep past
/// the one-second resolution of `updated_at`).
const LATER: i64 = 4_000_000_000;

#[test]
fn incremental_backups_take_only_what_changed() {
    let (mut a, mut b, _sa, _sb) = two_servers();
    // Incremental backups work at one-second resolution (an interval written in the
    // second a backup was taken is taken again, never missed): the full backup is taken
    // at a time later than everything B's collector wrote.
    let full = b.dir.path().join("full.cmsbak");
    backup_at(&b, &full, None, || LATER);
    let created_at = |f: &Path| {
        cms::archive::ArchiveReader::open(f, None)
            .unwrap()
            .header()
            .created_at
    };
    assert_eq!(created_at(&full), LATER);
    // Nothing changed on B since: the incremental backup is empty but valid.
    let inc = b.dir.path().join("inc.cmsbak");
    let out = backup_at(&b, &inc, Some(created_at(&full)), || LATER + 5);
    assert!(out.contains(" 0 intervals"), "{out}");
    // On A, the restore (a second after the full backup) changes three intervals: A's
    // next incremental since then holds exactly them.
    restore_at(&a, &full, || LATER + 1);
    let a_inc = a.dir.path().join("a-inc.cmsbak");
    let out = backup_at(&a, &a_inc, Some(created_at(&full) + 1), || LATER + 5);
    assert!(out.contains(" 3 intervals"), "{out}");
    a.stop();
    b.stop();
}

/// Rendered output made comparable from run to run, in one place: each of `dirs` (a
/// test's temporary directories) becomes its name, and the figures that vary with the
/// time a command runs become placeholders: durations (`0.02 s` -> `<S> s`), and a
/// backup's size and compression ratio (`1234 bytes (5.6x smaller than raw)` -> `<N>
/// bytes (<R>x smaller than raw)`: the manifest carries each interval's `updated_at`,
/// which compresses differently every run).
fn normalized(out: &str, dirs: &[(&Path, &str)]) -> String {
    let mut out = out.to_string();
    for (d, name) in dirs {
        out = out.replace(d.to_str().unwrap(), name);
    }
    let line = |l: &str| {
        let mut w: Vec<String> = l.split(' ').map(str::to_string).collect();
        for i in 0..w.len() {
            let next = w.get(i + 1).cloned().unwrap_or_default();
            if (next == "s" || next.starts_with("s,")) && w[i].parse::<f64>().is_ok() {
                w[i] = "<S>".into();
            }
            if next.starts_with("bytes") && w[i].parse::<u64>().is_ok() {
                w[i] = "<N>".into();
            }
            if w[i].starts_with('(')
                && w[i].ends_with('x')
                && w[i][1..w[i].len() - 1].parse::<f64>().is_ok()
            {
                w[i] = "(<R>x".into();
            }
        }
        w.join(" ")
    };
    out.split('\n').map(line).collect::<Vec<_>>().join("\n")
}

#[test]
fn normalized_output_keeps_everything_but_paths_times_and_sizes() {
    let d = Path::new("/tmp/x1");
    assert_eq!(
        normalized(
            "backup /tmp/x1/b.cmsbak: 7 intervals, 1 row, 1234 bytes (5.6x smaller than raw), 0.02 s\n  0 days, 0.10 s\n",
            &[(d, "<B>")]
        ),
        "backup <B>/b.cmsbak: 7 intervals, 1 row, <N> bytes (<R>x smaller than raw), <S> s\n  0 days, <S> s\n"
    );
}

/// Issue #12 item 8: the whole backup summary and restore report, dry run and real,
/// through the real binary, against golden text.
#[test]
fn backup_summary_and_restore_report_read_whole() {
    let (mut a, mut b, _sa, _sb) = two_servers();
    let dirs = [(a.dir.path(), "<A>"), (b.dir.path(), "<B>")];
    let bak = b.dir.path().join("b.cmsbak");
    let bak = bak.to_str().unwrap();
    let got = [
        ok(&b, &["backup", "--out", bak]),
        ok(&a, &["restore", bak, "--dry-run"]),
        ok(&a, &["restore", bak]),
        // Twice is the same as once: nothing left to do.
        ok(&a, &["restore", bak]),
    ]
    .map(|out| normalized(&out, &dirs));
    assert_eq!(
        got,
        [
            GOLDEN_BACKUP,
            GOLDEN_DRY_RUN,
            GOLDEN_RESTORE,
            GOLDEN_RESTORE_AGAIN
        ]
    );
    a.stop();
    b.stop();
}

const GOLDEN_BACKUP: &str =
    "backup <B>/b.cmsbak: 7 intervals, 23 rows, <N> bytes (<R>x smaller than raw), <S> s\n";

const GOLDEN_DRY_RUN: &str = "\
plan for <B>/b.cmsbak (dry run: nothing written)
  ACD 1 2025-11-02 10:00 .. 2025-11-02 10:45  3 intervals  replace      here: incomplete  backup: complete
restore from <B>/b.cmsbak (server srv-b, history,admin): 0 filled, 3 replaced, 0 improved, 4 kept, 0 conflicting, 0 skipped as current
";

const GOLDEN_RESTORE: &str = "\
restore from <B>/b.cmsbak (server srv-b, history,admin): 0 filled, 3 replaced, 0 improved, 4 kept, 0 conflicting, 0 skipped as current
  0 days re-summarized, 0 summary rows taken from the backup, 3 admin rows, 0 local rows, <S> s
  nothing is missing or incomplete any more
";

const GOLDEN_RESTORE_AGAIN: &str = "\
restore from <B>/b.cmsbak (server srv-b, history,admin): 0 filled, 0 replaced, 0 improved, 7 kept, 0 conflicting, 0 skipped as current
  0 days re-summarized, 0 summary rows taken from the backup, 3 admin rows, 0 local rows, <S> s
  nothing is missing or incomplete any more
";

/// Gives `c` a site key: a private `site.key` beside its `cms.toml`, named there.
fn with_key(c: &Collector, key: &[u8]) {
    let kf = c.dir.path().join("site.key");
    std::fs::write(&kf, key).unwrap();
    #[cfg(unix)] // a site key open to group or others is refused
    std::fs::set_permissions(
        &kf,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
    )
    .unwrap();
    let cfg = c.dir.path().join("cms.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let line = format!("site_key_file = {:?}\n", kf.to_str().unwrap());
    std::fs::write(&cfg, format!("{line}{text}")).unwrap();
}

#[test]
fn authenticated_backups_refuse_another_sites_key() {
    let (mut a, mut b, _sa, _sb) = two_servers();
    with_key(&b, b"3f9a0c5e1b7d2468ace013579bdf2468a1c3e5f7092b4d6f");
    let bak = b.dir.path().join("signed.cmsbak");
    ok(&b, &["backup", "--out", bak.to_str().unwrap()]);
    let v = ok(&b, &["verify", bak.to_str().unwrap()]);
    assert!(v.contains("authenticated (MAC verified)"), "{v}");
    // A has another site's key: refused before anything is written.
    with_key(&a, b"0000aaaa1111bbbb2222cccc3333dddd4444eeee5555ffff");
    let before = count(
        &a.db_path(),
        "SELECT COUNT(*) FROM interval_status WHERE status = 'complete'",
    );
    let (code, out) = a.cms(&["restore", bak.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(bak.to_str().unwrap()) && out.to_lowercase().contains("mac"),
        "{out}"
    );
    assert_eq!(
        count(
            &a.db_path(),
            "SELECT COUNT(*) FROM interval_status WHERE status = 'complete'"
        ),
        before
    );
    // The same key: accepted.
    std::fs::write(
        a.dir.path().join("site.key"),
        b"3f9a0c5e1b7d2468ace013579bdf2468a1c3e5f7092b4d6f\n",
    )
    .unwrap();
    ok(&a, &["restore", bak.to_str().unwrap()]);
    a.stop();
    b.stop();
}

/// Every file under `dir` (recursively) with the blake3 hash of its bytes: a restore that
/// changes nothing leaves this exactly as it was.
fn tree(dir: &Path) -> Vec<(String, String)> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.push((p.display().to_string(), "dir".into()));
                out.extend(tree(&p));
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((
                    p.display().to_string(),
                    blake3::hash(&bytes).to_hex().to_string(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Issue #10 item 7: a dry run and every refused restore change nothing, byte for
/// byte, and on a server with no database a dry run creates none.
#[test]
fn refused_restores_and_dry_runs_change_nothing_byte_for_byte() {
    let (mut a, mut b, _sa, _sb) = two_servers();
    let bak = b.dir.path().join("b.cmsbak");
    ok(&b, &["backup", "--out", bak.to_str().unwrap()]);
    a.stop();
    b.stop();
    let data = a.dir.path().join("data");
    let before = tree(&data);
    assert!(
        before.iter().any(|(p, _)| p.ends_with("cms.db")),
        "{before:?}"
    );
    let mut flipped = std::fs::read(&bak).unwrap();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    let bad = a.dir.path().join("flipped.cmsbak");
    std::fs::write(&bad, &flipped).unwrap();
    let (b_s, bad_s) = (bak.to_str().unwrap(), bad.to_str().unwrap());
    for (args, code) in [
        (vec!["restore", b_s, "--dry-run"], 0),
        (vec!["restore", b_s, "--dry-run", "--json"], 0),
        (vec!["restore", bad_s], 1),
        (vec!["restore", b_s, "--data", "local"], 1),
        (vec!["restore", b_s, "--acd", "2"], 1),
    ] {
        let (got, out) = a.cms(&args);
        assert_eq!(got, code, "cms {args:?}:\n{out}");
        assert_eq!(
            tree(&data),
            before,
            "cms {args:?} changed the data directory"
        );
    }
    // A server set up but never started: a dry run plans a fill of everything and
    // creates nothing (no data directory, no database).
    let fresh = Collector::configure("srv-c", "127.0.0.1:9".parse().unwrap());
    let (code, out) = fresh.cms(&["restore", b_s, "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("7 filled"), "{out}");
    assert!(!fresh.dir.path().join("data").exists(), "{out}");
}

/// Issue #10 item 8: a backup of another interval length is refused, naming both.
#[test]
fn a_backup_of_another_interval_length_is_refused() {
    let (mut a, mut b, _sa, _sb) = two_servers();
    let bak = b.dir.path().join("b.cmsbak");
    ok(&b, &["backup", "--out", bak.to_str().unwrap()]);
    a.stop();
    b.stop();
    let c = Collector::configure_full(
        "srv-c",
        "127.0.0.1:9".parse().unwrap(),
        "UTC",
        "interval_minutes = 30",
    );
    for args in [
        vec!["restore", bak.to_str().unwrap()],
        vec!["restore", bak.to_str().unwrap(), "--dry-run"],
    ] {
        let (code, out) = c.cms(&args);
        assert_eq!(code, 1, "{out}");
        assert_eq!(
            out,
            format!(
                "cms: {}: the backup has 15-minute intervals, this server is configured for \
                 30-minute intervals (interval_minutes): both servers of a pair must use the \
                 same length\n",
                bak.display()
            )
        );
        assert!(!c.dir.path().join("data").exists());
    }
}

/// Runs `cms ARGS` and waits for it at most `limit`, killing it (and failing) if it
/// does not end by then.
fn cms_within(c: &Collector, args: &[&str], limit: std::time::Duration) -> (i32, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cms"))
        .arg("--config")
        .arg(c.dir.path().join("cms.toml"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cms {args:?} still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Issue #10 items 9 and 17: a FIFO (or a directory) given as a backup is refused at
/// once with one clear reason, by verify and restore alike.
#[test]
fn a_fifo_or_a_directory_is_not_a_backup() {
    let c = Collector::configure("srv-c", "127.0.0.1:9".parse().unwrap());
    let fifo = c.dir.path().join("pipe.cmsbak");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let dir = c.dir.path().join("dir.cmsbak");
    std::fs::create_dir(&dir).unwrap();
    for (f, kind) in [(&fifo, "a FIFO"), (&dir, "a directory")] {
        for cmd in ["verify", "restore"] {
            let (code, out) = cms_within(
                &c,
                &[cmd, f.to_str().unwrap()],
                std::time::Duration::from_secs(10),
            );
            assert_eq!(code, 1, "{out}");
            assert_eq!(
                out,
                format!(
                    "cms: {}: {kind}, not a backup file (a backup is a regular file written by `cms backup`)\n",
                    f.display()
                )
            );
        }
    }
    assert!(!c.dir.path().join("data").exists());
}

/// Issue #10 item 11: without a site key, a file with a MAC is not called merely "not
/// authenticated": verify says it carries a MAC this server cannot check.
#[test]
fn verify_without_a_key_says_the_mac_was_not_checked() {
    let (mut a, mut b, _sa, _sb) = two_servers();
    let plain = b.dir.path().join("plain.cmsbak");
    ok(&b, &["backup", "--out", plain.to_str().unwrap()]);
    with_key(&b, b"3f9a0c5e1b7d2468ace013579bdf2468a1c3e5f7092b4d6f");
    let signed = b.dir.path().join("signed.cmsbak");
    ok(&b, &["backup", "--out", signed.to_str().unwrap()]);
    a.stop();
    b.stop();
    let v = ok(&a, &["verify", signed.to_str().unwrap()]);
    assert!(
        v.contains(", carries a MAC this server cannot check (no site_key_file configured): its origin is not verified\n"),
        "{v}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&ok(&a, &["verify", signed.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!(
        (j["authenticated"].as_bool(), j["mac"].as_str()),
        (Some(false), Some("not_checked"))
    );
    let v = ok(&a, &["verify", plain.to_str().unwrap()]);
    assert!(v.contains(", not authenticated (no MAC)\n"), "{v}");
    let v = ok(&b, &["verify", signed.to_str().unwrap()]);
    assert!(v.contains(", authenticated (MAC verified)\n"), "{v}");
}

/// Issue #10 items 16 and 20: `cms gaps --to` the day being collected stops at the
/// interval being collected; gaps, the dry-run plan and `compare --strict` speak in
/// words, group ranges, and list restored intervals under their own heading.
#[test]
fn gaps_plan_and_compare_read_as_words() {
    let (mut a, mut b, _sa, _sb) = two_servers();
    // B collected everything and is in 11:30: nothing is missing up to there.
    let (code, out) = b.cms(&["gaps", "--to", "2025-11-02", "--fail-on-gaps"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "ACD 1: no missing or incomplete intervals\n")
    );
    let bak = b.dir.path().join("b.cmsbak");
    ok(&b, &["backup", "--out", bak.to_str().unwrap()]);
    let cmp = a.cms(&["compare", b.db_path().to_str().unwrap(), "--strict"]);
    assert_eq!(
        cmp,
        (
            3,
            "ACD 1 2025-11-02 10:00 interval: incomplete here, complete there\n\
             ACD 1 2025-11-02 10:15 interval: incomplete here, complete there\n\
             ACD 1 2025-11-02 10:30 interval: incomplete here, complete there\n\
             3 differences\n"
                .to_string()
        )
    );
    let gaps = ok(&a, &["gaps", "--to", "2025-11-02"]);
    assert_eq!(
        gaps,
        "ACD 1: 3 intervals missing or incomplete\n  \
         2025-11-02 10:00 UTC .. 2025-11-02 10:45 UTC     3 intervals  incomplete replay_gap\n"
    );
    let plan = ok(&a, &["restore", bak.to_str().unwrap(), "--dry-run"]);
    assert_eq!(
        plan,
        format!(
            "plan for {0} (dry run: nothing written)\n  \
             ACD 1 2025-11-02 10:00 .. 2025-11-02 10:45  3 intervals  replace      here: incomplete  backup: complete\n\
             restore from {0} (server srv-b, history,admin): 0 filled, 3 replaced, 0 improved, 4 kept, 0 conflicting, 0 skipped as current\n",
            bak.display()
        )
    );
    ok(&a, &["restore", bak.to_str().unwrap()]);
    let gaps = ok(&a, &["gaps"]);
    assert_eq!(
        gaps,
        "ACD 1: no missing or incomplete intervals\n\
         ACD 1: 3 intervals restored from another server\n  \
         2025-11-02 10:00 UTC .. 2025-11-02 10:45 UTC     3 intervals  restored   restored:srv-b\n"
    );
    a.stop();
    b.stop();
    // A fresh server that is not collecting: the whole backup in one line of the plan,
    // and no summary rows for the source's unfinished day (B is in 11:30 of it).
    let c = Collector::configure("srv-c", "127.0.0.1:9".parse().unwrap());
    let plan = ok(&c, &["restore", bak.to_str().unwrap(), "--dry-run"]);
    assert!(
        plan.contains(
            "\n  ACD 1 2025-11-02 09:45 .. 2025-11-02 11:30  7 intervals  fill         here: missing  backup: complete\n"
        ),
        "{plan}"
    );
    let rep = ok(&c, &["restore", bak.to_str().unwrap()]);
    assert!(rep.contains("\n  0 days re-summarized, "), "{rep}");
    for t in ["dsplit", "dagent", "wsplit", "msplit"] {
        assert_eq!(
            count(&c.db_path(), &format!("SELECT COUNT(*) FROM {t}")),
            0,
            "{t}"
        );
    }
}
