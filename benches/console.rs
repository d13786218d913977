//! The time to render the console's coverage page over 62 days (issue #14: under
//! 200 ms). Run with `cargo bench --bench console`; docs/benchmarks.md explains it.
//!
//! A database of 62 days of 15-minute intervals of one ACD in New York (5,952 status
//! rows, a day of 100 intervals among them: the range ends on 2026-11-01, when DST
//! ends), with a gap of every kind every few days: incomplete runs with reasons, missing
//! runs and restored intervals. Timed: `console::coverage::render` (the database
//! opened read-only beforehand, as each request does), best of 9, beside the baseline
//! of `cms gaps`'s own query over the same range (`report::gaps`), which the page
//! calls. Printed side by side with the target.

use cms::config::Config;
use cms::console::{coverage, Params};
use cms::domain::IntervalStatus;
use cms::store::status::{upsert, StatusRow};
use cms::store::Store;
use std::hint::black_box;
use std::time::{Duration, Instant};

const ROUNDS: usize = 9;
const TARGET_MS: f64 = 200.0;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        "server_id = \"bench\"\ndata_dir = \"{}\"\ntime_zone = \"America/New_York\"\n\
         [[acd]]\nid = 1\nswitch = \"127.0.0.1:5001\"\n",
        dir.path().display()
    );
    let cfg = Config::parse_str(&text, None).expect("bench config");
    let grid = cfg.grid();
    let from = chrono::NaiveDate::from_ymd_opt(2026, 9, 1).expect("date");
    let to = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
    let (lo, hi) = (
        grid.day_start(from),
        grid.day_start(to.succ_opt().expect("date")),
    );
    {
        let mut store = Store::open(&cfg.db_path()).expect("bench database");
        let tx = store.conn.transaction().expect("transaction");
        let (mut t, mut i) = (lo, 0u64);
        while t < hi {
            let (date, hhmm) = grid.labels(t);
            // Every 97th interval starts a run of 5 not complete, of a kind by turns.
            let gap = i % 97 < 5;
            let kind = (i / 97) % 3;
            if !(gap && kind == 1) {
                let (status, reasons, source) = match (gap, kind) {
                    (true, 0) => (
                        IntervalStatus::Incomplete,
                        "replay_gap,call_across_gap",
                        "collected",
                    ),
                    (true, _) => (IntervalStatus::Complete, "", "restored:srv-b"),
                    _ => (IntervalStatus::Complete, "", "collected"),
                };
                upsert(
                    &tx,
                    &StatusRow {
                        acd: 1,
                        istart: t,
                        intrvl: 15,
                        row_date: &date,
                        starttime: hhmm,
                        status,
                        reasons,
                        epoch: 1,
                        first_seq: i as i64,
                        last_seq: i as i64,
                        source,
                        row_count: 40,
                        checksum: "00",
                        updated_at: t,
                    },
                )
                .expect("status row");
            }
            t = grid.next(t);
            i += 1;
        }
        tx.commit().expect("commit");
        println!(
            "console benchmark: 62 days ({from} to {to}), {i} intervals of ACD 1 in {}",
            grid.tz.name()
        );
    }
    let store = Store::open_read_only(&cfg.db_path()).expect("read-only open");
    let p = Params::of([
        ("acd", "1".to_string()),
        ("from", from.to_string()),
        ("to", to.to_string()),
    ]);
    let now = hi + 86_400;
    let page = coverage::render(&cfg, &store, &p, now).expect("coverage page");
    let cells = page.matches("data-kind=").count();
    let base = best(|| {
        black_box(cms::report::gaps(&store.conn, &grid, 1, lo, hi).expect("gaps"));
    });
    let render = best(|| {
        black_box(coverage::render(&cfg, &store, &p, now).expect("coverage page"));
    });
    let ms = render.as_secs_f64() * 1e3;
    println!(
        "coverage page, 62 days: {ms:.1} ms ({cells} cells, {:.0} kB of HTML), best of \
         {ROUNDS}; baseline `cms gaps` query over the range: {:.1} ms; target < {TARGET_MS} \
         ms: {}",
        page.len() as f64 / 1e3,
        base.as_secs_f64() * 1e3,
        if ms < TARGET_MS { "met" } else { "NOT MET" }
    );
}

/// The best of [`ROUNDS`] timings of `f`.
fn best(mut f: impl FnMut()) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .expect("rounds")
}
