//! Power cuts, proven (issue #11): real `cms` processes with their data directory on the
//! lazy filesystem (tests/lazyfs, docs/lazyfs.md), real `cms-linksim`, and cuts that lose
//! everything that was not synced. Promise 5 for power: after the cut, a restart (and the
//! documented recovery) gets every interval back exact; nothing acknowledged is lost.
//!
//! Each cut: SIGSTOP the processes on the mount, cut (a seeded mix of the modes: nothing
//! kept, a random prefix of the unsynced writes, or a torn write), SIGKILL them, remount,
//! restart. Sized for CI; `CMS_POWER_CUTS=N` sets the number of cuts of each scenario
//! for a soak run (docs/lazyfs.md).
#![cfg(target_os = "linux")]

mod common;
mod lazyfs;
mod peer_support;

use common::collector::Collector;
use common::run::{at, Run, PROFILE};
use common::sim::{assert_integrity, check_against_truth, profile_tz, wait_switch_time, Sim};
use lazyfs::{Cut, CutReport, LazyFs};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);

/// Cuts per scenario: `CMS_POWER_CUTS`, else `default`.
fn cuts(default: usize) -> usize {
    std::env::var("CMS_POWER_CUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The cut mode of cut number `k` of a run seeded `seed`.
fn mode(seed: u64, k: usize) -> Cut {
    let s = seed * 1000 + k as u64;
    match k % 3 {
        0 => Cut::DropAll,
        1 => Cut::Prefix { seed: s },
        _ => Cut::Torn { seed: s },
    }
}

/// A collector whose data directory (`<dir>/data`) is a lazy mount of `<dir>/backing`.
struct LazyCollector {
    c: Collector,
    fs: LazyFs,
}

impl LazyCollector {
    fn new(server_id: &str, sim: &Sim, link: &str) -> LazyCollector {
        let c = Collector::configure_full(server_id, sim.addr(link), &profile_tz(PROFILE), "");
        let fs = lazy_data_dir(&c);
        LazyCollector { c, fs }
    }

    /// Stops every given process, cuts, kills them, remounts.
    fn power_cut(&mut self, mode: Cut, others: &mut [&mut std::process::Child]) -> CutReport {
        power_cut(&mut self.c, &mut self.fs, mode, others)
    }
}

/// Mounts a lazy filesystem over `c`'s data directory (`<dir>/data`, backed by
/// `<dir>/backing`), before the collector first starts.
fn lazy_data_dir(c: &Collector) -> LazyFs {
    let backing = c.dir.path().join("backing");
    let data = c.dir.path().join("data");
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&data).unwrap();
    LazyFs::mount(&backing, &data).unwrap()
}

/// The power cut of `c`'s server: stops `c` and every given process, cuts `fs`, kills
/// them, remounts.
fn power_cut(
    c: &mut Collector,
    fs: &mut LazyFs,
    mode: Cut,
    others: &mut [&mut std::process::Child],
) -> CutReport {
    if let Some(c) = c.child.as_ref() {
        signal(c.id(), "-STOP");
    }
    for o in others.iter_mut() {
        // One that has already exited (and been reaped) is not stopped.
        if o.try_wait().unwrap().is_none() {
            signal(o.id(), "-STOP");
        }
    }
    let rep = fs.cut(mode);
    if c.child.is_some() {
        c.kill9();
    }
    for o in others.iter_mut() {
        let _ = o.kill();
        let _ = o.wait();
    }
    fs.remount();
    rep
}

impl Drop for LazyCollector {
    fn drop(&mut self) {
        // The processes go before the mount.
        if let Some(mut c) = self.c.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success(), "kill {sig} {pid}");
}

/// The collector's checkpoint switch time (ms), if it has one.
fn checkpoint_ts(db: &Path) -> Option<i64> {
    let c = common::collector::open(db).ok()?;
    c.query_row("SELECT ts FROM checkpoint WHERE acd = 1", [], |r| r.get(0))
        .ok()
}

/// Waits (bounded) until the checkpoint is past `ts` (ms): the restarted collector has
/// committed again.
fn wait_checkpoint_past(lc: &LazyCollector, ts: i64) {
    let deadline = Instant::now() + LIMIT;
    loop {
        if checkpoint_ts(&lc.c.db_path()).is_some_and(|t| t > ts) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}: no checkpoint past {ts} within {LIMIT:?} after the restart\n{}",
            lc.c.db_path().display(),
            lc.c.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pumpups(log: &str) -> usize {
    log.matches("pump-up: intervals from our last event")
        .count()
}

/// Scenario 1: the collector's power cut at random moments during ingestion at the
/// reference load (commits, interval closes, the day's summaries at midnight, retention),
/// the replay buffer large enough to hold the whole run: after every cut the database is
/// sound, the collector resumes inside the buffer (the switch never needed anything it
/// had been told was stored), and at the end every interval is complete and equals the
/// truth.
#[test]
fn p1_collector_power_cut_during_ingestion_loses_nothing_acknowledged() {
    if !lazyfs::run_or_skip("p1_collector_power_cut_during_ingestion_loses_nothing_acknowledged") {
        return;
    }
    let n = cuts(8);
    let seed = 31;
    // At least 6 hours across midnight at 1200x (18 s of wall time); half an hour more
    // per cut beyond 12, so that a soak's cuts all fall while the switch runs.
    let hours = 6.max(n.div_ceil(2));
    let mut sim = Run::morning(seed)
        .from("21:00")
        .hours(hours as u32)
        .buffer(400000)
        .links(1)
        .sim();
    let mut a = LazyCollector::new("srv-a", &sim, "A");
    a.c.spawn();
    wait_switch_time(&a.c, at("21:05"), LIMIT);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut lost = vec![];
    for k in 0..n {
        // A random moment: 0.1 to 1.6 s of wall time (2 to 32 minutes of switch time).
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..1600)));
        let before = pumpups(&a.c.log());
        let m = mode(seed, k);
        let rep = a.power_cut(m, &mut []);
        let durable = checkpoint_ts(&a.c.db_path()).unwrap_or(0);
        a.c.spawn();
        wait_checkpoint_past(&a, durable);
        assert_integrity(&a.c.db_path());
        let log = a.c.log();
        if pumpups(&log) > before {
            lost.push(format!("cut {k} ({m:?}, {rep:?})"));
        }
        println!("cut {k}: {m:?} {rep:?}");
    }
    sim.wait(Duration::from_secs(240));
    a.c.stop();
    assert_integrity(&a.c.db_path());
    let v = check_against_truth(&a.c.db_path(), &sim.truth());
    assert!(
        lost.is_empty(),
        "after {} of {n} cuts the collector had to take a pump-up: the switch had dropped \
         events it had acknowledged (intervals incomplete: {:?})\n{}",
        lost.len(),
        v.incomplete,
        lost.join("\n")
    );
    assert!(
        v.incomplete.is_empty() && v.missing.is_empty(),
        "incomplete {:?} missing {:?}",
        v.incomplete,
        v.missing
    );
    assert_eq!(v.complete, hours * 4);
    println!(
        "p1: {n} power cuts survived, {} intervals equal the truth",
        v.complete
    );
}

/// Starts `cms ARGS` with `c`'s configuration (stdout and stderr to `log`).
fn cms_spawn(c: &Collector, args: &[&str], log: &Path) -> std::process::Child {
    let f = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_cms"))
        .arg("--config")
        .arg(c.dir.path().join("cms.toml"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap()
}

/// Waits (bounded) for a process to exit; its exit code.
fn wait_exit(p: &mut std::process::Child, what: &str, log: &Path) -> i32 {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(st) = p.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not finish within {LIMIT:?}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sync_dir(p: &Path) {
    std::fs::File::open(p).unwrap().sync_all().unwrap();
}

/// Scenario 2: the server's power cut while `cms backup` writes into a directory on the
/// same disk: afterwards the destination has either no file with the final name or a
/// whole one `cms verify` accepts, and nothing else but hidden temporaries.
#[test]
fn p2_backup_power_cut_leaves_no_file_or_a_whole_one() {
    if !lazyfs::run_or_skip("p2_backup_power_cut_leaves_no_file_or_a_whole_one") {
        return;
    }
    let n = cuts(6);
    let seed = 32;
    // Six hours before the first cut, then an hour (3 s of wall time) per cut.
    let mut sim = Run::morning(seed)
        .hours(6 + n as u32)
        .buffer(400000)
        .links(1)
        .sim();
    let mut a = LazyCollector::new("srv-a", &sim, "A");
    a.c.spawn();
    let bak = a.fs.mountpoint().join("bak");
    std::fs::create_dir(&bak).unwrap();
    sync_dir(a.fs.mountpoint());
    wait_switch_time(&a.c, at("12:00"), LIMIT);
    // How long one backup takes here: the cuts fall inside that.
    let log = a.c.dir.path().join("backup.log");
    let t0 = Instant::now();
    let first = bak.join("first.cmsbak");
    let mut p = cms_spawn(&a.c, &["backup", "--out", first.to_str().unwrap()], &log);
    assert_eq!(wait_exit(&mut p, "backup", &log), 0);
    let took = t0.elapsed();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let (mut whole, mut none) = (0, 0);
    for k in 0..n {
        let out = bak.join(format!("b{k}.cmsbak"));
        let mut p = cms_spawn(&a.c, &["backup", "--out", out.to_str().unwrap()], &log);
        let ms = rng.gen_range(0..(took.as_millis() as u64 * 5 / 4).max(2));
        std::thread::sleep(Duration::from_millis(ms));
        let m = mode(seed, k);
        let rep = a.power_cut(m, &mut [&mut p]);
        for e in std::fs::read_dir(&bak).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            assert!(
                name.ends_with(".cmsbak") || (name.starts_with('.') && name.contains(".tmp-")),
                "cut {k}: unexpected leftover {name}"
            );
        }
        if out.exists() {
            let (code, text) = a.c.cms(&["verify", out.to_str().unwrap()]);
            assert_eq!(code, 0, "cut {k} ({m:?} {rep:?}) after {ms} ms: {text}");
            whole += 1;
        } else {
            none += 1;
        }
        println!(
            "cut {k} after {ms} ms: {m:?} {rep:?} final file: {}",
            out.exists()
        );
        a.c.spawn();
        let durable = checkpoint_ts(&a.c.db_path()).unwrap_or(0);
        wait_checkpoint_past(&a, durable);
        assert_integrity(&a.c.db_path());
    }
    assert!(first.exists(), "a finished backup is durable");
    // After all that, a backup to a name a cut left a temporary for still works.
    let out = bak.join(format!("b{}.cmsbak", n - 1));
    let _ = std::fs::remove_file(&out);
    let mut p = cms_spawn(&a.c, &["backup", "--out", out.to_str().unwrap()], &log);
    assert_eq!(wait_exit(&mut p, "backup", &log), 0);
    let (code, text) = a.c.cms(&["verify", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    // A backup that said it finished is durable: the power cut right after it keeps it.
    let done = bak.join("done.cmsbak");
    let mut p = cms_spawn(&a.c, &["backup", "--out", done.to_str().unwrap()], &log);
    assert_eq!(wait_exit(&mut p, "backup", &log), 0);
    let rep = a.power_cut(Cut::DropAll, &mut []);
    let (code, text) = a.c.cms(&["verify", done.to_str().unwrap()]);
    assert_eq!(code, 0, "a finished backup, after a cut ({rep:?}): {text}");
    a.c.spawn();
    sim.wait(Duration::from_secs(240));
    a.c.stop();
    println!(
        "p2: {n} power cuts during backups ({} ms each) survived: {whole} left a whole \
         file, {none} none",
        took.as_millis()
    );
}

/// Every table of a database as sorted rows, without the columns that say when a row
/// was written (`updated_at`, `built_at`) and without the restore log (one entry per
/// run).
fn tables(db: &Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let c = common::collector::open(db).unwrap();
    let names: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('restore_log', 'sqlite_sequence') ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let mut out = std::collections::BTreeMap::new();
    for t in names {
        let cols: Vec<String> = c
            .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .filter(|n: &String| n != "updated_at" && n != "built_at")
            .collect();
        let sel = cols
            .iter()
            .map(|c| format!("quote({c})"))
            .collect::<Vec<_>>()
            .join(" || ',' || ");
        let mut rows: Vec<String> = c
            .prepare(&format!("SELECT {sel} FROM {t}"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        rows.sort();
        out.insert(t, rows);
    }
    out
}

fn assert_same_tables(got: &Path, want: &Path, what: &str) {
    let (g, w) = (tables(got), tables(want));
    for (t, rows) in &w {
        let mine = &g[t];
        if mine != rows {
            let extra: Vec<_> = mine.iter().filter(|r| !rows.contains(r)).take(3).collect();
            let lack: Vec<_> = rows.iter().filter(|r| !mine.contains(r)).take(3).collect();
            panic!(
                "{what}: table {t} differs from the uninterrupted restore ({} rows vs {}): \
                 extra {extra:?}, missing {lack:?}",
                mine.len(),
                rows.len()
            );
        }
    }
}

/// Scenario 3: the power cut while `cms restore` merges a backup into a server with a
/// gap, then the restore run again: every table equals that of an uninterrupted restore
/// of the same backup into the same database.
/// Puts `db` back to the bytes of `start_db`, durably, with no write-ahead log beside it.
/// Runs `sql` on a stopped server's database on the lazy mount without SQLite touching
/// the mount (why: `common::collector::open`): on a copy (WAL checkpointed into it), then
/// written back whole and synced, so the result is durable on the lazy disk.
fn edit_stopped_db(db: &Path, sql: &str, mount: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("edit.db");
    common::collector::copy_out(db, &copy).unwrap();
    {
        let c = rusqlite::Connection::open(&copy).unwrap();
        c.execute_batch(sql).unwrap();
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    }
    reset_db(db, &copy, mount);
}

fn reset_db(db: &Path, start_db: &Path, mount: &Path) {
    for ext in ["-wal", "-shm"] {
        let mut s = db.as_os_str().to_os_string();
        s.push(ext);
        let _ = std::fs::remove_file(PathBuf::from(s));
    }
    let bytes = std::fs::read(start_db).unwrap();
    let mut f = std::fs::File::create(db).unwrap();
    std::io::Write::write_all(&mut f, &bytes).unwrap();
    f.sync_all().unwrap();
    sync_dir(mount);
}

#[test]
fn p3_restore_power_cut_then_rerun_equals_an_uninterrupted_restore() {
    if !lazyfs::run_or_skip("p3_restore_power_cut_then_rerun_equals_an_uninterrupted_restore") {
        return;
    }
    let n = cuts(6);
    let seed = 33;
    // A misses 07:00-07:45, beyond its replay buffer; B has it all.
    let mut sim = Run::morning(seed)
        .hours(4)
        .faults("A:down@07:00-07:45")
        .sim();
    let tz = profile_tz(PROFILE);
    let mut a = LazyCollector::new("srv-a", &sim, "A");
    let mut b = Collector::configure_full("srv-b", sim.addr("B"), &tz, "");
    a.c.spawn();
    b.spawn();
    sim.wait(Duration::from_secs(240));
    a.c.stop();
    b.stop();
    let backup = b.dir.path().join("b.cmsbak");
    common::sim::cms_expect(&b, &["backup", "--out", backup.to_str().unwrap()], 0);
    // A's database, made durable on the lazy disk, and a plain copy of it.
    let db = a.c.db_path();
    edit_stopped_db(&db, "", a.fs.mountpoint());
    let start_db = a.c.dir.path().join("start.db");
    std::fs::copy(&db, &start_db).unwrap();
    // The uninterrupted restore, on a plain disk.
    let r = Collector::configure_full("srv-a", sim.addr("A"), &tz, "");
    std::fs::create_dir(r.dir.path().join("data")).unwrap();
    std::fs::copy(&start_db, r.db_path()).unwrap();
    let t0 = Instant::now();
    common::sim::cms_expect(&r, &["restore", backup.to_str().unwrap()], 0);
    let took = t0.elapsed();
    let want = r.db_path();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let log = a.c.dir.path().join("restore.log");
    let mut in_flight = 0;
    for k in 0..n {
        reset_db(&db, &start_db, a.fs.mountpoint());
        let mut p = cms_spawn(&a.c, &["restore", backup.to_str().unwrap()], &log);
        let ms = rng.gen_range(0..(took.as_millis() as u64).max(2));
        std::thread::sleep(Duration::from_millis(ms));
        let m = mode(seed, k);
        let running = p.try_wait().unwrap().is_none();
        in_flight += usize::from(running);
        let rep = a.power_cut(m, &mut [&mut p]);
        let mut p = cms_spawn(&a.c, &["restore", backup.to_str().unwrap()], &log);
        let code = wait_exit(&mut p, "restore after the cut", &log);
        assert_eq!(
            code,
            0,
            "cut {k}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert_integrity(&db);
        assert_same_tables(
            &db,
            &want,
            &format!("cut {k} after {ms} ms ({m:?} {rep:?})"),
        );
        println!(
            "cut {k} after {ms} ms (restore running: {running}): {m:?} {rep:?}: rerun \
             equals the uninterrupted restore"
        );
    }
    // A restore that has reported success is on disk: cut right after it exits, strictly
    // (every unsynced write dropped), and the database equals the uninterrupted restore
    // without a rerun. Before the restore's last commit was made FULL, the cut took its
    // last transactions back.
    reset_db(&db, &start_db, a.fs.mountpoint());
    // Another connection stays open, as a running collector's would: otherwise the
    // restore's own close checkpoints the write-ahead log (and syncs it) as the last
    // connection, which hides what its commits left unsynced.
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1])\n\
             c.execute('SELECT COUNT(*) FROM interval_status').fetchall()\n\
             print('ready', flush=True)\n\
             time.sleep(600)",
            db.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 holds a connection open");
    {
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready", "the connection holder did not start");
    }
    let mut p = cms_spawn(&a.c, &["restore", backup.to_str().unwrap()], &log);
    let code = wait_exit(&mut p, "restore before the cut", &log);
    assert_eq!(
        code,
        0,
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let rep = a.power_cut(Cut::DropAll, &mut [&mut holder]);
    assert_integrity(&db);
    assert_same_tables(
        &db,
        &want,
        &format!("a cut after the restore reported success ({rep:?})"),
    );
    println!(
        "p3: {n} power cuts ({in_flight} while the restore ran, {} ms uninterrupted) survived; \
         a finished restore survived a cut without a rerun",
        took.as_millis()
    );
}

/// `PRAGMA user_version` and `PRAGMA integrity_check` of a database (opened read-write,
/// as the next start would).
fn version_and_integrity(db: &Path) -> (i64, String) {
    let c = common::collector::open(db).unwrap_or_else(|e| panic!("{}: {e}", db.display()));
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{}: {e}", db.display()));
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{}: {e}", db.display()));
    (v, ok)
}

/// Scenario 5: the power cut while a collector of the new release migrates a database
/// of the previous one (schema 1) on start, the pre-upgrade copy kept aside: afterwards
/// the database is sound and on the old schema or the new one; on the new one the
/// pre-upgrade copy is there and sound; the server then starts and collects.
#[test]
fn p5_schema_upgrade_power_cut_leaves_the_old_or_the_new_schema() {
    if !lazyfs::run_or_skip("p5_schema_upgrade_power_cut_leaves_the_old_or_the_new_schema") {
        return;
    }
    let n = cuts(6);
    let seed = 35;
    // An hour and a half before the first cut, then an hour (3 s of wall time) per cut.
    let mut sim = Run::morning(seed)
        .hours(2 + n as u32)
        .buffer(400000)
        .links(1)
        .sim();
    let mut a = LazyCollector::new("srv-a", &sim, "A");
    a.c.spawn();
    wait_switch_time(&a.c, at("07:30"), LIMIT);
    a.c.stop();
    // The database as the previous release left it, durable, and a plain copy.
    let db = a.c.db_path();
    edit_stopped_db(
        &db,
        "DROP TABLE restore_log; PRAGMA user_version = 1;",
        a.fs.mountpoint(),
    );
    let v1 = a.c.dir.path().join("v1.db");
    std::fs::copy(&db, &v1).unwrap();
    let aside = cms::store::aside_path(&db, 1);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let (mut old, mut new) = (0, 0);
    for k in 0..n {
        for e in std::fs::read_dir(a.fs.mountpoint()).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::remove_file(p).unwrap();
            }
        }
        {
            let bytes = std::fs::read(&v1).unwrap();
            let mut f = std::fs::File::create(&db).unwrap();
            std::io::Write::write_all(&mut f, &bytes).unwrap();
            f.sync_all().unwrap();
        }
        sync_dir(a.fs.mountpoint());
        a.c.spawn();
        let ms = rng.gen_range(0..400);
        std::thread::sleep(Duration::from_millis(ms));
        let m = mode(seed, k);
        let rep = a.power_cut(m, &mut []);
        let (v, ok) = version_and_integrity(&db);
        let what = format!("cut {k} after {ms} ms ({m:?} {rep:?})");
        assert_eq!(ok, "ok", "{what}: the database");
        match v {
            1 => old += 1,
            2 => {
                new += 1;
                assert!(
                    aside.exists(),
                    "{what}: on schema 2 without the pre-upgrade copy"
                );
                let (av, aok) = version_and_integrity(&aside);
                assert_eq!(
                    (av, aok.as_str()),
                    (1, "ok"),
                    "{what}: the pre-upgrade copy"
                );
            }
            v => panic!("{what}: user_version {v}"),
        }
        println!(
            "{what}: schema {v}, pre-upgrade copy kept: {}",
            aside.exists()
        );
        // The server starts, on the new schema, and collects.
        let durable = checkpoint_ts(&db).unwrap_or(0);
        a.c.spawn();
        wait_checkpoint_past(&a, durable);
        assert_eq!(version_and_integrity(&db), (2, "ok".to_string()), "{what}");
        assert_eq!(
            version_and_integrity(&aside),
            (1, "ok".to_string()),
            "{what}: the pre-upgrade copy after the restart"
        );
        a.c.stop();
    }
    sim.wait(Duration::from_secs(240));
    println!(
        "p5: {n} power cuts during the schema upgrade survived ({old} left schema 1, {new} \
         schema 2)"
    );
}

/// Backup on `from` (into its configuration directory, a plain disk), restore on `to`;
/// the restore report.
fn recover(from: &Collector, to: &Collector, name: &str) -> serde_json::Value {
    let bak = from.dir.path().join(name);
    let b = bak.to_str().unwrap();
    common::sim::cms_expect(from, &["backup", "--out", b, "--data", "history,admin"], 0);
    let out = common::sim::cms_expect(to, &["restore", b, "--json"], 0);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Scenario 4: both servers lose power at once in the middle of a link outage on A
/// (beyond A's replay buffer), stay off for about 50 minutes of switch time, and come
/// back; after restores in both directions, what both missed is reported missing on
/// both, nothing is invented (every complete interval equals the truth), and the two
/// agree.
#[test]
fn p4_both_servers_cut_during_a_link_outage_on_a() {
    if !lazyfs::run_or_skip("p4_both_servers_cut_during_a_link_outage_on_a") {
        return;
    }
    let mut sim = Run::morning(34).faults("A:down@07:00-07:45").sim();
    let mut a = LazyCollector::new("srv-a", &sim, "A");
    let mut b = LazyCollector::new("srv-b", &sim, "B");
    a.c.spawn();
    b.c.spawn();
    wait_switch_time(&b.c, at("07:20"), LIMIT);
    // Both at once: stop both, then cut both.
    let pb = b.c.child.as_ref().unwrap().id();
    signal(pb, "-STOP");
    let ra = a.power_cut(Cut::DropAll, &mut []);
    let rb = b.power_cut(Cut::Torn { seed: 34 }, &mut []);
    println!("cut A {ra:?}, B {rb:?}");
    // Off for about 50 minutes of switch time: wall time, as the switch sees it.
    std::thread::sleep(Duration::from_millis(2500));
    a.c.spawn();
    b.c.spawn();
    wait_switch_time(&a.c, at("10:00"), LIMIT);
    wait_switch_time(&b.c, at("10:00"), LIMIT);
    assert_integrity(&a.c.db_path());
    assert_integrity(&b.c.db_path());
    let rep_a = recover(&b.c, &a.c, "b.cmsbak");
    let rep_b = recover(&a.c, &b.c, "a.cmsbak");
    sim.wait(Duration::from_secs(240));
    a.c.stop();
    b.c.stop();
    for (who, c, r) in [("A", &a.c, &rep_a), ("B", &b.c, &rep_b)] {
        let v = check_against_truth(&c.db_path(), &sim.truth());
        assert!(!v.incomplete.is_empty(), "{who}: the outage shows");
        assert!(
            !r["still_missing"].as_array().unwrap().is_empty(),
            "{who}: the restore says what is still missing"
        );
        let gaps = common::sim::cms_expect(c, &["gaps", "--json"], 0);
        let gaps: serde_json::Value = serde_json::from_str(&gaps).unwrap();
        let n: u64 = gaps
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["kind"] != "restored")
            .map(|g| g["intervals"].as_u64().unwrap())
            .sum();
        assert_eq!(n as usize, v.incomplete.len() + v.missing.len(), "{who}");
        println!(
            "{who}: {} complete, {} incomplete, {} missing",
            v.complete,
            v.incomplete.len(),
            v.missing.len()
        );
        assert_integrity(&c.db_path());
    }
    common::sim::assert_identical(&a.c.db_path(), &b.c.db_path());
}

/// The test process reads a database on the lazy mount through a copy (why:
/// `common::collector::open`): the mount is recognised as such, a path beside it is not,
/// and a database written onto the mount with plain writes reads back through `open`.
/// A peer pair whose server A has its data directory on a lazy mount. The pair drops
/// first (its processes go before the mount).
struct LazyPeerPair {
    p: peer_support::PeerPair,
    fs: LazyFs,
}

/// Scenario 6 (issue #13): the power of one server of a peer pair is cut in the middle of
/// an interval (07:10, a torn write), and A stays off for 40 switch minutes, far beyond the
/// switch's replay buffer (about six). After the power comes back A restarts, and with
/// no operator action the pair heals itself: A's outage is fetched from B, and at the end
/// both hold every interval, equal to the truth.
#[test]
fn p6_one_server_of_a_peer_pair_cut_heals_itself() {
    if !lazyfs::run_or_skip("p6_one_server_of_a_peer_pair_cut_heals_itself") {
        return;
    }
    let run = Run::morning(36);
    let p = peer_support::PeerPair::configure(&run, true);
    let fs = lazy_data_dir(&p.a);
    let mut lp = LazyPeerPair { p, fs };
    lp.p.a.spawn();
    lp.p.b.spawn();
    wait_switch_time(&lp.p.a, at("07:10"), LIMIT);
    let rep = power_cut(&mut lp.p.a, &mut lp.fs, Cut::Torn { seed: 36 }, &mut []);
    println!("cut A {rep:?}");
    common::sim::wait_truth_time(&lp.p.sim, at("07:50"), LIMIT);
    lp.p.a.spawn();
    wait_switch_time(&lp.p.a, at("08:30"), LIMIT);
    assert_integrity(&lp.p.a.db_path());
    let p = &lp.p;
    peer_support::wait_pair(p, "A healed its outage from B", LIMIT, || {
        peer_support::peer_status(&p.a)["healed"]
            .as_u64()
            .unwrap_or(0)
            >= 3
    });
    lp.p.finish();
    common::sim::assert_pair_true(&lp.p.a, &lp.p.b, &lp.p.sim.truth(), 24);
}

#[test]
fn databases_on_the_lazy_mount_are_read_through_a_copy() {
    if !lazyfs::run_or_skip("databases_on_the_lazy_mount_are_read_through_a_copy") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (backing, mnt) = (dir.path().join("backing"), dir.path().join("mnt"));
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let fs = LazyFs::mount(&backing, &mnt).unwrap();
    let made = dir.path().join("made.db");
    rusqlite::Connection::open(&made)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (42);")
        .unwrap();
    let db = fs.mountpoint().join("cms.db");
    std::fs::write(&db, std::fs::read(&made).unwrap()).unwrap();
    assert!(common::collector::on_lazy_mount(&db), "{}", db.display());
    assert!(
        !common::collector::on_lazy_mount(&made),
        "{}",
        made.display()
    );
    let c = common::collector::open(&db).unwrap();
    let x: i64 = c.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(x, 42);
    // SQLite never opened the file on the mount: no -shm or -wal appeared beside it.
    assert!(!mnt.join("cms.db-shm").exists() && !mnt.join("cms.db-wal").exists());
}
