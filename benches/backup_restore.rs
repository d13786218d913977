//! Backup and restore on a generated history of the reference centre (issue #4 targets).
//! Run with `cargo bench --bench backup_restore`; docs/benchmarks.md explains the figures.
//!
//! The history: one simulated day of `profiles/reference.toml` aggregated in process and
//! committed through `Store::commit` exactly as the collector does, then that day's
//! interval rows and status replicated over 62 (and 7) days, checksums recomputed and
//! summaries built. It is cached under `target/bench-data/` (delete the directory to
//! regenerate). Each measurement runs the real release `cms` binary beside its baseline:
//!
//! - `cms backup` vs `sqlite3 .backup` + `zstd -3`: time and size (target: no slower,
//!   smaller file);
//! - full `cms restore` into an empty server vs `zstd -d` + `sqlite3` ATTACH and
//!   `INSERT OR IGNORE ... SELECT` (target: no slower);
//! - restore of a one-hour gap from the 62-day backup (target: under 0.2 s), with its
//!   parts: process start, `cms verify`, the plan (`--dry-run`), the writes;
//! - peak resident memory of backup and restore (target: 100 MB, not growing with the
//!   history: 7 days vs 62 days).

#[path = "common/history.rs"]
mod history;
#[path = "common/procs.rs"]
mod procs;

use cms::interval::Grid;
use cms::items::TABLES;
use cms::store::Store;
use history::{history, reference_day, release_cms, write_config, History, DAY0};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const FULL_DAYS: i64 = 62;
const SMALL_DAYS: i64 = 7;
const GAP_TARGET_S: f64 = 0.2;
const RSS_TARGET_MB: f64 = 100.0;
fn main() {
    for tool in ["sqlite3", "zstd"] {
        let ok = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            println!(
                "backup_restore: the baselines need the `{tool}` command-line tool, which is not \
                 installed. Install it (Debian/Ubuntu: `apt-get install sqlite3 zstd`) and rerun."
            );
            std::process::exit(1);
        }
    }
    let Some(cms) = release_cms() else {
        return;
    };
    let (_, grid, cache, day) = reference_day();
    let full = history(&cache, &day, &grid, FULL_DAYS);
    let small = history(&cache, &day, &grid, SMALL_DAYS);
    let work = tempfile::Builder::new()
        .prefix("work-")
        .tempdir_in(&cache)
        .unwrap();
    let mut mem = Vec::new();
    for h in [&full, &small] {
        mem.push(measure(&cms, h, work.path(), &grid));
    }
    println!();
    println!("peak resident memory (target {RSS_TARGET_MB:.0} MB, independent of history size):");
    for (h, m) in [&full, &small].iter().zip(&mem) {
        println!(
            "  {:>2} days ({} rows): backup {:.1} MB ({:.2} x target), full restore {:.1} MB ({:.2} x), \
             gap restore {:.1} MB ({:.2} x)",
            h.days,
            h.rows,
            m.backup,
            m.backup / RSS_TARGET_MB,
            m.restore,
            m.restore / RSS_TARGET_MB,
            m.gap,
            m.gap / RSS_TARGET_MB
        );
    }
}

/// What one child process took.
struct Run {
    secs: f64,
    /// Peak resident set, MB (wait4's ru_maxrss).
    rss_mb: f64,
    code: i32,
    out: String,
}

/// Runs `cmd` to the end, stdout and stderr into files under `work`, and measures it.
// The child is reaped by wait4 (which also gives its own rusage), not by Child::wait.
#[allow(clippy::zombie_processes)]
fn run(work: &Path, cmd: &mut Command) -> Run {
    let out_path = work.join("out.txt");
    let out = std::fs::File::create(&out_path).unwrap();
    let err = out.try_clone().unwrap();
    let t = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our child's, not yet reaped; the out-pointers are valid.
    let rc = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut ru) };
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(rc, child.id() as libc::pid_t, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Run {
        secs,
        rss_mb: ru.ru_maxrss as f64 / 1024.0,
        code,
        out: std::fs::read_to_string(&out_path).unwrap_or_default(),
    }
}

fn ok(what: &str, r: &Run) {
    assert_eq!(r.code, 0, "{what} failed (exit {}):\n{}", r.code, r.out);
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn verdict(met: bool) -> &'static str {
    if met {
        "target met"
    } else {
        "TARGET MISSED"
    }
}

struct Memory {
    backup: f64,
    restore: f64,
    gap: f64,
}

fn measure(cms: &Path, h: &History, work: &Path, grid: &Grid) -> Memory {
    println!();
    println!(
        "== {} days of history: {} intervals, {} interval rows ==",
        h.days, h.intervals, h.rows
    );
    let w = work.join(format!("{}d", h.days));
    std::fs::create_dir_all(&w).unwrap();
    let cms_cmd = |config: &Path| {
        let mut c = Command::new(cms);
        c.arg("--config").arg(config);
        c
    };

    // Backup.
    let bak = w.join("history.cmsbak");
    let b = run(
        &w,
        cms_cmd(&h.config()).arg("backup").arg("--out").arg(&bak),
    );
    ok("cms backup", &b);
    let base_db = w.join("base.db");
    let base_zst = w.join("base.db.zst");
    let s1 = run(
        &w,
        Command::new("sqlite3")
            .arg(h.db())
            .arg(format!(".backup '{}'", base_db.display())),
    );
    ok("sqlite3 .backup", &s1);
    let s2 = run(
        &w,
        Command::new("zstd")
            .args(["-3", "-q", "-f"])
            .arg(&base_db)
            .arg("-o")
            .arg(&base_zst),
    );
    ok("zstd -3", &s2);
    let base_secs = s1.secs + s2.secs;
    let (bs, zs) = (size(&bak), size(&base_zst));
    println!(
        "backup:  cms backup {:.2} s, {:.1} MB, peak RSS {:.1} MB | baseline sqlite3 .backup {:.2} s + zstd -3 {:.2} s = {:.2} s, {:.1} MB",
        b.secs,
        bs as f64 / 1e6,
        b.rss_mb,
        s1.secs,
        s2.secs,
        base_secs,
        zs as f64 / 1e6
    );
    println!(
        "         time {:.2} x baseline ({}), size {:.2} x baseline ({})",
        b.secs / base_secs,
        verdict(b.secs <= base_secs),
        bs as f64 / zs as f64,
        verdict(bs < zs)
    );

    // Full restore into an empty server.
    let fresh = w.join("fresh");
    write_config(&fresh, "bench-target");
    let r = run(
        &w,
        cms_cmd(&fresh.join("cms.toml")).arg("restore").arg(&bak),
    );
    ok("cms restore (full)", &r);
    let filled = r
        .out
        .lines()
        .find(|l| l.contains("filled"))
        .unwrap_or("")
        .trim()
        .to_string();
    let target_db = w.join("baseline-target.db");
    drop(Store::open(&target_db).expect("empty baseline target"));
    let src_db = w.join("src.db");
    let d1 = run(
        &w,
        Command::new("zstd")
            .args(["-d", "-q", "-f"])
            .arg(&base_zst)
            .arg("-o")
            .arg(&src_db),
    );
    ok("zstd -d", &d1);
    let mut sql = format!("ATTACH '{}' AS src; BEGIN;", src_db.display());
    for t in TABLES {
        let t = t.interval_table();
        sql += &format!(" INSERT OR IGNORE INTO {t} SELECT * FROM src.{t};");
    }
    sql += " INSERT OR IGNORE INTO interval_status SELECT * FROM src.interval_status; COMMIT;";
    let d2 = run(&w, Command::new("sqlite3").arg(&target_db).arg(&sql));
    ok("sqlite3 ATTACH + INSERT", &d2);
    let base_restore = d1.secs + d2.secs;
    println!(
        "restore: cms restore (empty server) {:.2} s, peak RSS {:.1} MB | baseline zstd -d {:.2} s + sqlite3 INSERT {:.2} s = {:.2} s",
        r.secs, r.rss_mb, d1.secs, d2.secs, base_restore
    );
    println!(
        "         time {:.2} x baseline ({}); cms: {filled}",
        r.secs / base_restore,
        verdict(r.secs <= base_restore)
    );
    // The same INSERT with one column written as an expression: SQLite can no longer
    // copy records between the identical tables without decoding them (its transfer
    // optimization), so this is its own cost of inserting decoded rows, for reference.
    let decoded_db = w.join("baseline-decoded.db");
    drop(Store::open(&decoded_db).expect("empty baseline target"));
    let mut sql = format!("ATTACH '{}' AS src; BEGIN;", src_db.display());
    for t in TABLES {
        let mut cols: Vec<String> = vec!["acd + 0".into()];
        cols.extend(t.keys.iter().map(|k| k.to_string()));
        cols.extend(["istart", "row_date", "starttime", "intrvl"].map(String::from));
        cols.extend(t.items.iter().map(|(n, _)| n.to_string()));
        let name = t.interval_table();
        sql += &format!(
            " INSERT OR IGNORE INTO {name} SELECT {} FROM src.{name};",
            cols.join(", ")
        );
    }
    sql += " COMMIT;";
    let d3 = run(&w, Command::new("sqlite3").arg(&decoded_db).arg(&sql));
    ok("sqlite3 ATTACH + decoded INSERT", &d3);
    let rows = h.rows as f64;
    println!(
        "         per interval row: cms restore {:.2} us | sqlite3 INSERT (transfer optimization) {:.2} us | \
         sqlite3 INSERT of decoded rows {:.2} us (no verification, plan or summaries)",
        r.secs / rows * 1e6,
        d2.secs / rows * 1e6,
        d3.secs / rows * 1e6
    );

    // A one-hour gap in the middle, restored from the whole backup.
    let gap = w.join("gap");
    write_config(&gap, "bench-target");
    std::fs::copy(h.db(), gap.join("data/cms.db")).unwrap();
    let mid = DAY0 + (h.days / 2) * 86_400 + 12 * 3600;
    let hole: Vec<i64> = (0..4).map(|i| mid + i * 900).collect();
    {
        let conn = rusqlite::Connection::open(gap.join("data/cms.db")).unwrap();
        let mut tables: Vec<String> = TABLES.iter().map(|t| t.interval_table()).collect();
        tables.push("interval_status".into());
        for t in tables {
            for i in &hole {
                conn.execute(
                    &format!("DELETE FROM {t} WHERE acd = 1 AND istart = ?1"),
                    [i],
                )
                .unwrap();
            }
        }
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let gcfg = gap.join("cms.toml");
    let start = run(&w, cms_cmd(&gcfg).arg("check-config"));
    ok("cms check-config", &start);
    let verify = run(&w, cms_cmd(&gcfg).arg("verify").arg(&bak));
    ok("cms verify", &verify);
    let dry = run(&w, cms_cmd(&gcfg).args(["restore", "--dry-run"]).arg(&bak));
    ok("cms restore --dry-run", &dry);
    let g = run(&w, cms_cmd(&gcfg).arg("restore").arg(&bak));
    ok("cms restore (gap)", &g);
    let line = g
        .out
        .lines()
        .find(|l| l.contains("filled"))
        .unwrap_or("")
        .trim()
        .to_string();
    assert!(
        line.contains(" 4 filled"),
        "the gap restore should fill 4 intervals:\n{}",
        g.out
    );
    println!(
        "gap:     restore of one hour ({} local, 4 intervals) from the {}-day backup: {:.3} s ({:.1} x the {GAP_TARGET_S} s target, {}), peak RSS {:.1} MB",
        grid.local(mid).format("%Y-%m-%d %H:%M"),
        h.days,
        g.secs,
        g.secs / GAP_TARGET_S,
        verdict(g.secs < GAP_TARGET_S),
        g.rss_mb
    );
    println!(
        "         parts: process start + config {:.3} s; cms verify (whole file) {:.3} s, peak RSS {:.1} MB; \
         restore --dry-run (verify + plan) {:.3} s, peak RSS {:.1} MB; so plan ~{:.3} s, writes + summaries ~{:.3} s",
        start.secs,
        verify.secs,
        verify.rss_mb,
        dry.secs,
        dry.rss_mb,
        (dry.secs - verify.secs).max(0.0),
        (g.secs - dry.secs).max(0.0)
    );
    println!("         cms: {line}");
    for f in [&bak, &base_db, &base_zst, &src_db, &target_db, &decoded_db] {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_dir_all(&w);
    Memory {
        backup: b.rss_mb,
        restore: r.rss_mb,
        gap: g.rss_mb,
    }
}
