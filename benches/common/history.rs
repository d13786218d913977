//! The benches' shared history of a centre (the reference one, or the large one of
//! `maxima.rs`): one simulated day aggregated in process and committed through
//! `Store::commit` exactly as the collector does, then replicated over N days (checksums
//! recomputed, summaries built), cached under `target/bench-data/` (delete the directory
//! to regenerate); and the release `cms` binary the benches run. Used by
//! `backup_restore.rs`, `export.rs` and `maxima.rs` (`#[path]` module, beside
//! `common/procs.rs`).

#![allow(dead_code)] // each bench uses a different part

use cms::agg::{Aggregator, ClosedInterval};
use cms::interval::Grid;
use cms::items::TABLES;
use cms::proto::{decode_frame, Decoded, Frame};
use cms::sim::gen::{Generator, Stop};
use cms::sim::profile::Profile;
use cms::store::intervals::Commit;
use cms::store::{interval_checksum, summary, Store};
use rusqlite::params;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// 2024-01-01T05:00:00Z: local midnight in New York. 62 days from here end on
/// 2024-03-02, before the DST change of 2024-03-10, so every day has 96 intervals.
pub const DAY0: i64 = 1_704_085_200;
pub const DAY0_DATE: (i32, u32, u32) = (2024, 1, 1);
/// Bump when the generated history changes shape, so stale caches are not reused.
pub const CACHE_VERSION: &str = "v1";

/// The centre a history is of: its profile, its zone, and the local midnight of its first
/// day. The history replicates that day as it is, so it must not cross a DST change.
pub struct Centre {
    /// Profile file, relative to the crate root.
    pub profile: &'static str,
    pub zone: &'static str,
    pub day0: i64,
    pub date0: (i32, u32, u32),
    /// Cache directory under `target/bench-data/` (with [`CACHE_VERSION`] appended).
    pub cache: &'static str,
    /// The last day the history may reach without a DST change.
    pub max_days: i64,
}

/// The reference centre from 2024-01-01 in New York (DST begins on 2024-03-10).
pub const REFERENCE: Centre = Centre {
    profile: "profiles/reference.toml",
    zone: "America/New_York",
    day0: DAY0,
    date0: DAY0_DATE,
    cache: "backup-restore",
    max_days: 69,
};

/// The large centre (`profiles/large.toml`, 5,000 agents) from 2024-01-15 in Paris
/// (2024-01-14T23:00:00Z; DST begins on 2024-03-31).
pub const LARGE: Centre = Centre {
    profile: "profiles/large.toml",
    zone: "Europe/Paris",
    day0: 1_705_273_200,
    date0: (2024, 1, 15),
    cache: "large",
    max_days: 76,
};

pub use super::procs::root;

/// `target/release/cms`, built first with `cargo build --release --bins`.
pub fn release_cms() -> Option<PathBuf> {
    super::procs::release_bins("this bench").map(|(cms, _)| cms)
}

/// One day of the reference centre, through the aggregation and `Store::commit` as the
/// collector does (one commit per closed interval, admin data with the first).
pub fn generate_day(c: &Centre, profile: &Profile, grid: &Grid, db: &Path) {
    let _ = std::fs::remove_file(db);
    let mut store = Store::open(db).expect("create day database");
    let end = c.day0 + 86_400;
    let mut g = Generator::new(profile, 1, c.day0, end, None);
    let epoch = g.start_epoch();
    let mut agg = Aggregator::new(*grid);
    agg.start_epoch(epoch);
    let mut closed: Vec<ClosedInterval> = Vec::new();
    let mut admin_done = false;
    let mut commit = |agg: &Aggregator, closed: &mut Vec<ClosedInterval>, store: &mut Store| {
        let admin = (!admin_done).then(|| {
            (
                agg.skills().cloned().collect(),
                agg.vdns().cloned().collect(),
                agg.tkgrps().cloned().collect(),
            )
        });
        admin_done = true;
        store
            .commit(Commit {
                acd: 1,
                grid,
                closed: &closed[..],
                checkpoint: None,
                admin,
            })
            .expect("commit");
        closed.clear();
    };
    loop {
        let stop = g.run_until(end, 100_000);
        let buf = g.out.split();
        let mut pos = 0;
        while pos < buf.len() {
            let Ok(Decoded::Frame(f, n)) = decode_frame(&buf[pos..]) else {
                panic!("generated frame does not decode");
            };
            pos += n;
            if let Frame::Event(ev) = f {
                agg.apply(&ev, &mut closed);
            }
        }
        if !closed.is_empty() {
            commit(&agg, &mut closed, &mut store);
        }
        if stop == Stop::Reached {
            break;
        }
    }
    agg.tick(end * 1000, &mut closed);
    commit(&agg, &mut closed, &mut store);
    store
        .conn
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
}

pub struct History {
    pub days: i64,
    /// Directory holding `cms.toml` and `data/cms.db`.
    pub dir: PathBuf,
    pub rows: i64,
    pub intervals: i64,
}

impl History {
    pub fn db(&self) -> PathBuf {
        self.dir.join("data/cms.db")
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("cms.toml")
    }
}

/// A server of the reference centre (New York).
pub fn write_config(dir: &Path, server_id: &str) {
    write_config_in(dir, server_id, REFERENCE.zone, "");
}

/// `dir/cms.toml` for a server in `zone`, `extra` appended (a `[peer]` section, say).
pub fn write_config_in(dir: &Path, server_id: &str, zone: &str, extra: &str) {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(
        dir.join("cms.toml"),
        format!(
            "server_id = \"{server_id}\"\ndata_dir = \"data\"\ntime_zone = \"{zone}\"\n\n\
             [[acd]]\nid = 1\nswitch = \"127.0.0.1:5001\"\n{extra}"
        ),
    )
    .unwrap();
}

pub fn columns(conn: &rusqlite::Connection, table: &str) -> Vec<String> {
    let mut st = conn
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// The reference day's history replicated over `days` days (cached).
pub fn history(cache: &Path, day: &Path, grid: &Grid, days: i64) -> History {
    history_of(&REFERENCE, cache, day, grid, days)
}

/// `c`'s day replicated over `days` days (cached).
pub fn history_of(c: &Centre, cache: &Path, day: &Path, grid: &Grid, days: i64) -> History {
    assert!(
        days <= c.max_days,
        "{}: a history of {days} days would cross a DST change (at most {})",
        c.profile,
        c.max_days
    );
    let dir = cache.join(format!("history-{days}d"));
    let done = dir.join("done");
    if !done.exists() {
        let t = Instant::now();
        let _ = std::fs::remove_dir_all(&dir);
        write_config_in(&dir, "bench-source", c.zone, "");
        std::fs::copy(day, dir.join("data/cms.db")).unwrap();
        replicate(c, &dir.join("data/cms.db"), grid, days);
        std::fs::write(&done, "").unwrap();
        println!(
            "built the {days}-day history in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let conn = rusqlite::Connection::open(dir.join("data/cms.db")).unwrap();
    let (rows, intervals): (i64, i64) = conn
        .query_row(
            "SELECT SUM(row_count), COUNT(*) FROM interval_status",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let size = std::fs::metadata(dir.join("data/cms.db")).unwrap().len();
    println!(
        "history: {days} days, {intervals} intervals, {rows} interval rows, database {:.1} MB",
        size as f64 / 1e6
    );
    History {
        days,
        dir,
        rows,
        intervals,
    }
}

/// Copies day 0's interval rows and status to days 1..days (istart, row_date and the
/// sequence numbers shifted), recomputes each copy's checksum, builds the summaries.
pub fn replicate(c: &Centre, db: &Path, grid: &Grid, days: i64) {
    let mut store = Store::open(db).unwrap();
    let day0 = chrono::NaiveDate::from_ymd_opt(c.date0.0, c.date0.1, c.date0.2).unwrap();
    let max_seq: i64 = store
        .conn
        .query_row("SELECT MAX(last_seq) FROM interval_status", [], |r| {
            r.get(0)
        })
        .unwrap();
    let mut tables: Vec<String> = TABLES.iter().map(|t| t.interval_table()).collect();
    tables.push("interval_status".into());
    let mut copies = Vec::new();
    for table in &tables {
        let cols = columns(&store.conn, table);
        let exprs: Vec<String> = cols
            .iter()
            .map(|c| match c.as_str() {
                "istart" => "istart + ?1 * 86400".to_string(),
                "row_date" => "date(row_date, '+' || ?1 || ' days')".to_string(),
                "first_seq" | "last_seq" => format!("{c} + ?1 * ?2"),
                _ => c.clone(),
            })
            .collect();
        copies.push(format!(
            "INSERT INTO {table} ({}) SELECT {} FROM {table} WHERE istart >= {} AND istart < {}",
            cols.join(", "),
            exprs.join(", "),
            c.day0,
            c.day0 + 86_400
        ));
    }
    for k in 1..days {
        let tx = store.conn.transaction().unwrap();
        for sql in &copies {
            let mut st = tx.prepare_cached(sql).unwrap();
            if sql.contains("?2") {
                st.execute(params![k, max_seq]).unwrap();
            } else {
                st.execute(params![k]).unwrap();
            }
        }
        // The copies' checksums, computed from the rows as they now are.
        let istarts: Vec<i64> = {
            let mut st = tx
                .prepare("SELECT istart FROM interval_status WHERE istart >= ?1 AND istart < ?2")
                .unwrap();
            let lo = c.day0 + k * 86_400;
            st.query_map(params![lo, lo + 86_400], |r| r.get(0))
                .unwrap()
                .map(|r| r.unwrap())
                .collect()
        };
        for istart in istarts {
            let (rows, sum) = interval_checksum(&tx, 1, istart).unwrap();
            tx.execute(
                "UPDATE interval_status SET row_count = ?3, checksum = ?4 WHERE acd = ?1 AND istart = ?2",
                params![1, istart, rows, sum],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    for k in 0..days {
        let date = day0 + chrono::Duration::days(k);
        summary::build_day(&mut store, 1, grid, chrono::Weekday::Mon, date).unwrap();
    }
    store
        .conn
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
}

/// The reference profile, its 15-minute grid, the cache directory and its simulated day
/// (generated the first time).
pub fn reference_day() -> (Profile, Grid, PathBuf, PathBuf) {
    centre_day(&REFERENCE)
}

/// `c`'s profile, its 15-minute grid, the cache directory and its simulated day
/// (generated the first time).
pub fn centre_day(c: &Centre) -> (Profile, Grid, PathBuf, PathBuf) {
    let profile = Profile::load(&root().join(c.profile)).expect("profile loads");
    assert_eq!(profile.time_zone, c.zone, "{}: time zone", c.profile);
    let grid = Grid::new(profile.tz(), 15);
    let cache = root()
        .join("target/bench-data")
        .join(format!("{}-{CACHE_VERSION}", c.cache));
    std::fs::create_dir_all(&cache).unwrap();
    let day = cache.join("day.db");
    if !cache.join("day.done").exists() {
        let t = Instant::now();
        generate_day(c, &profile, &grid, &day);
        std::fs::write(cache.join("day.done"), "").unwrap();
        println!(
            "generated one simulated day of {} in {:.1} s",
            c.profile,
            t.elapsed().as_secs_f64()
        );
    }
    (profile, grid, cache, day)
}
