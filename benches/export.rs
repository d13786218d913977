//! `cms export` of the reference centre's 62-day history (the backup bench's, cached
//! under `target/bench-data/`) into a throwaway PostgreSQL cluster with default
//! durability (issue #15 target: at least 100,000 rows/s), beside the same history
//! exported as generic CSV files (the read side alone, the baseline). Run with
//! `cargo bench --bench export`; needs PostgreSQL (tests/pg/ci-setup.sh), else it says
//! so and skips. docs/benchmarks.md explains the figures.

#[path = "common/history.rs"]
mod history;
#[allow(dead_code)]
#[path = "../tests/common/pg.rs"]
mod pg;
#[path = "common/procs.rs"]
mod procs;
#[allow(dead_code)]
#[path = "../tests/common/wait.rs"]
mod wait;

use history::{history, reference_day, release_cms};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const DAYS: i64 = 62;
const TARGET_ROWS_PER_S: f64 = 100_000.0;

/// Copies the history's configuration and database into `to` (the export writes its
/// bookkeeping into the database; the cache stays as it was).
fn copy_history(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("data")).unwrap();
    std::fs::copy(from.join("cms.toml"), to.join("cms.toml")).unwrap();
    std::fs::copy(from.join("data/cms.db"), to.join("data/cms.db")).unwrap();
}

/// Runs `cms export ARGS --json` with the copy's configuration; (seconds, rows).
fn export(cms: &Path, dir: &Path, args: &[&str]) -> (f64, u64) {
    let t = Instant::now();
    let out = Command::new(cms)
        .arg("--config")
        .arg(dir.join("cms.toml"))
        .arg("export")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "cms export {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (secs, v[0]["rows"].as_u64().unwrap())
}

fn main() {
    let Some(cms) = release_cms() else {
        return;
    };
    let Some(cluster) = pg::Cluster::start_with(true) else {
        println!("export: SKIPPED: no PostgreSQL (run tests/pg/ci-setup.sh)");
        return;
    };
    let (_, grid, cache, day) = reference_day();
    let h = history(&cache, &day, &grid, DAYS);
    let work = tempfile::Builder::new()
        .prefix("export-")
        .tempdir_in(&cache)
        .unwrap();

    let wh = work.path().join("wh");
    copy_history(&h.dir, &wh);
    let url = cluster.url();
    let (secs, rows) = export(&cms, &wh, &["--warehouse", &url, "--site", "bench"]);
    let rate = rows as f64 / secs;
    // Again: nothing changed, nothing to send (the position is in the database).
    let (again, none) = export(&cms, &wh, &["--warehouse", &url, "--site", "bench"]);

    let files = work.path().join("files");
    copy_history(&h.dir, &files);
    let out = work.path().join("out");
    let (fsecs, frows) = export(&cms, &files, &["--out", out.to_str().unwrap()]);
    let frate = frows as f64 / fsecs;

    println!();
    println!(
        "export of {DAYS} days of the reference centre ({} intervals, {rows} rows):",
        h.intervals
    );
    println!(
        "  into PostgreSQL (durable, one batch of 100000 rows per transaction): {secs:.1} s, \
         {rate:.0} rows/s ({:.2} x the {TARGET_ROWS_PER_S:.0} rows/s target, {})",
        rate / TARGET_ROWS_PER_S,
        if rate >= TARGET_ROWS_PER_S {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  baseline, generic CSV files (the read side alone): {fsecs:.1} s, {frate:.0} rows/s"
    );
    println!("  rerun with nothing changed: {again:.2} s, {none} rows");
}
