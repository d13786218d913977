//! The report of a month for 50 skills (issue #15: under 100 ms). Run with
//! `cargo bench --bench report`; docs/benchmarks.md explains the figures.
//!
//! A database with 30 days of 15-minute intervals for 50 skills (144,000 `hsplit` rows of
//! pseudo-random items, every interval's status, the daily summaries) is written once;
//! then `query::rows` and the CSV, JSON and table renderings are timed, best of 9: the
//! month's intervals, and the month's daily rows. Beside them, the baseline: a plain
//! `SELECT *` of the same rows through rusqlite, each column read as it comes, which is
//! what any reader of the table pays at least.

use cms::domain::IntervalStatus;
use cms::interval::Grid;
use cms::items::SPLIT;
use cms::query::{Period, Query};
use cms::render::{render, Format};
use cms::store::Store;
use rusqlite::params;
use std::hint::black_box;
use std::time::{Duration, Instant};

const SKILLS: i64 = 50;
const DAYS: i64 = 30;
const ROUNDS: usize = 9;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("report.db");
    let grid = Grid::new(chrono_tz::Europe::Paris, 15);
    let first = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let t0 = Instant::now();
    let mut store = Store::open(&path).expect("new database");
    fill(&mut store, &grid, first);
    println!(
        "report benchmark: {} days x {SKILLS} skills of 15-minute intervals written in {:.1} s",
        DAYS,
        t0.elapsed().as_secs_f64()
    );
    let store = Store::open_read_only(&path).expect("database reads");
    let last = first + chrono::Duration::days(DAYS - 1);
    let month = |period| Query {
        family: &SPLIT,
        period,
        acds: vec![1],
        ids: vec![],
        from: Some(first),
        to: Some(last),
    };
    let iq = month(Period::Interval);
    let rows = cms::query::rows(&store.conn, &grid, &iq).expect("rows");
    assert_eq!(rows.len() as i64, DAYS * 96 * SKILLS);
    let read = best(|| {
        black_box(cms::query::rows(&store.conn, &grid, &iq).expect("rows"));
    });
    let baseline = best(|| {
        let mut st = store
            .conn
            .prepare_cached("SELECT * FROM hsplit WHERE acd = 1 AND istart >= ?1 AND istart < ?2")
            .unwrap();
        let n = st.column_count();
        let mut q = st
            .query(params![
                grid.day_start(first),
                grid.day_start(last.succ_opt().unwrap())
            ])
            .unwrap();
        let mut sum = 0i64;
        while let Some(r) = q.next().unwrap() {
            for i in 0..n {
                if let Ok(v) = r.get::<_, i64>(i) {
                    sum = sum.wrapping_add(v);
                }
            }
        }
        black_box(sum);
    });
    let csv = best(|| {
        black_box(render(Format::Csv, &SPLIT, Period::Interval, &rows));
    });
    let json = best(|| {
        black_box(render(Format::Json, &SPLIT, Period::Interval, &rows));
    });
    println!(
        "month of intervals ({} rows): query::rows {:.1} ms (baseline SELECT * through \
         rusqlite {:.1} ms); rendering CSV {:.1} ms, JSON {:.1} ms; best of {ROUNDS}",
        rows.len(),
        ms(read),
        ms(baseline),
        ms(csv),
        ms(json)
    );
    let dq = month(Period::Daily);
    let days = cms::query::rows(&store.conn, &grid, &dq).expect("rows");
    assert_eq!(days.len() as i64, DAYS * SKILLS);
    let daily = best(|| {
        let rows = cms::query::rows(&store.conn, &grid, &dq).expect("rows");
        black_box(render(Format::Table, &SPLIT, Period::Daily, &rows));
    });
    println!(
        "month of daily rows ({} rows): query::rows and the table {:.2} ms, best of {ROUNDS} \
         (target: under 100 ms)",
        days.len(),
        ms(daily)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn best(mut f: impl FnMut()) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

/// Writes DAYS days of intervals for SKILLS skills from `first` (every item a small
/// pseudo-random number, one interval in 50 incomplete), their statuses and the daily
/// rows (sums only: what the bench reads, not a faithful summary).
fn fill(store: &mut Store, grid: &Grid, first: chrono::NaiveDate) {
    let tx = store.conn.transaction().unwrap();
    let items: Vec<&str> = SPLIT.items.iter().map(|(n, _)| *n).collect();
    let marks = vec!["?"; items.len()].join(", ");
    {
        let mut ins = tx
            .prepare(&format!(
                "INSERT INTO hsplit (acd, split, istart, row_date, starttime, intrvl, {}) \
                 VALUES (1, ?, ?, ?, ?, 15, {marks})",
                items.join(", ")
            ))
            .unwrap();
        let mut st = tx
            .prepare(
                "INSERT INTO interval_status (acd, istart, intrvl, row_date, starttime, status,
                   reasons, source, row_count, checksum, updated_at)
                 VALUES (1, ?1, 15, ?2, ?3, ?4, ?5, 'collected', ?6, '', 0)",
            )
            .unwrap();
        let mut day = tx
            .prepare(&format!(
                "INSERT INTO dsplit (acd, split, row_date, incomplete, {}) VALUES (1, ?, ?, ?, {marks})",
                items.join(", ")
            ))
            .unwrap();
        let mut state = tx
            .prepare(
                "INSERT INTO summary_state (acd, period, row_date, built_at) VALUES (1, 'day', ?1, 0)",
            )
            .unwrap();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 200) as i64
        };
        for d in 0..DAYS {
            let date = first + chrono::Duration::days(d);
            let (mut t, end) = (
                grid.day_start(date),
                grid.day_start(date.succ_opt().unwrap()),
            );
            let mut sums = vec![vec![0i64; items.len()]; SKILLS as usize];
            let mut bad = 0;
            while t < end {
                let (rd, hhmm) = grid.labels(t);
                let complete = rnd() % 50 != 0;
                bad += i64::from(!complete);
                st.execute(params![
                    t,
                    rd,
                    hhmm,
                    IntervalStatus::of(complete),
                    if complete { "" } else { "replay_gap" },
                    SKILLS
                ])
                .unwrap();
                for s in 0..SKILLS {
                    let vals: Vec<i64> = (0..items.len()).map(|_| rnd()).collect();
                    for (a, v) in sums[s as usize].iter_mut().zip(&vals) {
                        *a += v;
                    }
                    let mut p: Vec<rusqlite::types::Value> =
                        vec![(s + 1).into(), t.into(), rd.clone().into(), hhmm.into()];
                    p.extend(vals.into_iter().map(rusqlite::types::Value::from));
                    ins.execute(rusqlite::params_from_iter(p)).unwrap();
                }
                t = grid.next(t);
            }
            let rd = date.format("%Y-%m-%d").to_string();
            for (s, v) in sums.into_iter().enumerate() {
                let mut p: Vec<rusqlite::types::Value> =
                    vec![(s as i64 + 1).into(), rd.clone().into(), bad.into()];
                p.extend(v.into_iter().map(rusqlite::types::Value::from));
                day.execute(rusqlite::params_from_iter(p)).unwrap();
            }
            state.execute([&rd]).unwrap();
        }
    }
    tx.commit().unwrap();
}
