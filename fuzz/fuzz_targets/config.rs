//! The configuration loader (`cms::config::Config::parse_str`, `packaging/cms.toml`).
//!
//! Properties, for every input:
//! - no panic; text that is refused gets an error naming the file;
//! - a configuration that is accepted can be used: what `cms collect` does with it at
//!   start-up and at each day's end (the interval grid, the backoff schedule, a daily
//!   summary and the retention purge on a real database) runs without a panic, so a
//!   value the loader lets through cannot stop the collector later.
#![no_main]

use cms::config::Config;
use cms::store::{summary, Store};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::Mutex;

/// One database for the whole run: purging an empty database is enough to evaluate the
/// retention arithmetic, and opening one per input would dominate the run.
static STORE: Mutex<Option<(tempfile::TempDir, Store)>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Path::new("/fuzz/cms.toml");
    let cfg = match Config::parse_str(text, Some(origin)) {
        Ok(c) => c,
        Err(e) => {
            assert!(e.to_string().starts_with("/fuzz/cms.toml: "), "{e}");
            return;
        }
    };
    let grid = cfg.grid();
    let mut b = cms::link::Backoff::new(cfg.backoff_max_ms);
    for _ in 0..12 {
        let d = b.fail(cfg.acds[0].secondary.is_some());
        assert!(d.as_millis() as u64 <= cfg.backoff_max_ms.max(200) * 6 / 5 + 1);
    }
    let mut guard = STORE.lock().unwrap();
    let (_, store) = guard.get_or_insert_with(|| {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("cms.db")).unwrap();
        (dir, s)
    });
    // A DST day in Europe and America, and the last day chrono can name the retention
    // back from: the days a collector meets.
    for day in ["2026-03-08", "2026-03-29", "2026-11-01"] {
        let today: chrono::NaiveDate = day.parse().unwrap();
        for acd in &cfg.acds {
            summary::build_day(store, acd.acd, &grid, cfg.week_start, today).unwrap();
            summary::purge(store, acd.acd, &grid, &cfg.retention, today).unwrap();
        }
    }
});
