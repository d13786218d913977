//! `cms restore` of a fuzzed backup (`cms::merge::restore::restore`) into a real database.
//!
//! Input: the unpacked backup form of the `archive` target (`cms_fuzz::backup::pack`), so
//! every file has its hashes right and reaches the restore's own checks.
//!
//! Properties: no panic; a refused backup leaves the target database unchanged (every
//! table's rows and the schema, compared as a digest, and no new file in the data
//! directory); a restore that succeeds, run again on the result, writes no interval row
//! or status differently (promise 3: idempotent).
#![no_main]

use cms::interval::Grid;
use cms::merge::restore::{restore_at, RestoreOptions};
use cms::merge::{Categories, Selection};
use cms::store::Store;
use cms_fuzz::backup::{pack, FUZZ_KEY};
use libfuzzer_sys::fuzz_target;
use rusqlite::{types::ValueRef, Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

struct Harness {
    dir: tempfile::TempDir,
    /// A freshly created database, copied for every input.
    template: PathBuf,
    digest: blake3::Hash,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let template = dir.path().join("template.db");
        drop(Store::open(&template).unwrap());
        let digest = digest(&template, |_| true);
        Harness {
            dir,
            template,
            digest,
        }
    })
}

/// Every row of every table that `keep` selects, and the schema.
fn digest(db: &Path, keep: impl Fn(&str) -> bool) -> blake3::Hash {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut h = blake3::Hasher::new();
    let tables: Vec<(String, String)> = c
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (t, sql) in tables {
        if !keep(&t) {
            continue;
        }
        h.update(sql.as_bytes());
        let mut st = c.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = st.column_count();
        let mut q = st.query([]).unwrap();
        // Rows in a canonical order: a rewrite in another order is no change.
        let mut rows: Vec<Vec<u8>> = Vec::new();
        while let Some(r) = q.next().unwrap() {
            let mut b = Vec::new();
            for i in 0..n {
                match r.get_ref(i).unwrap() {
                    ValueRef::Null => b.push(b'N'),
                    ValueRef::Integer(v) => b.extend_from_slice(&v.to_le_bytes()),
                    ValueRef::Real(v) => b.extend_from_slice(&v.to_le_bytes()),
                    ValueRef::Text(s) | ValueRef::Blob(s) => {
                        b.extend_from_slice(s);
                        b.push(0);
                    }
                }
            }
            rows.push(b);
        }
        rows.sort();
        for r in rows {
            h.update(&(r.len() as u64).to_le_bytes());
            h.update(&r);
        }
    }
    h.finalize()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A restore as `cms restore` runs it: the file checked and the plan made before the
/// database is opened for writing.
fn run(db: &Path, file: &Path, grid: Grid, key: Option<[u8; 32]>) -> anyhow::Result<()> {
    let opts = RestoreOptions {
        file: file.to_owned(),
        sel: Selection {
            acds: vec![],
            from: None,
            to: None,
            grid,
            categories: Categories::HISTORY | Categories::ADMIN,
        },
        configured_acds: (1..=8).collect(),
        dry_run: false,
        include_local: false,
        key,
        server_id: "fuzz".into(),
        collection_running: false,
        progress: false,
        week_start: chrono::Weekday::Mon,
    };
    restore_at(db, &grid, &opts, || Ok(Store::open(db)?))?;
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((file, mode)) = pack(data) else {
        return;
    };
    let h = harness();
    let work = h.dir.path().join("work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir(&work).unwrap();
    let db = work.join("cms.db");
    std::fs::copy(&h.template, &db).unwrap();
    let input = h.dir.path().join("in.cmsbak");
    std::fs::write(&input, &file).unwrap();
    let before = listing(&work);
    let grid = Grid::new(chrono_tz::UTC, 15);
    let key = mode.mac.then_some(FUZZ_KEY);
    match run(&db, &input, grid, key) {
        Err(e) => {
            let msg = format!("{e:#}");
            assert_eq!(
                listing(&work),
                before,
                "a refused restore left files: {msg}"
            );
            assert_eq!(
                digest(&db, |_| true),
                h.digest,
                "a refused restore changed the database: {msg}"
            );
        }
        Ok(()) => {
            let rows = |t: &str| t.starts_with('h') || t == "interval_status";
            let once = digest(&db, rows);
            run(&db, &input, grid, key).expect("the same restore again");
            assert_eq!(
                digest(&db, rows),
                once,
                "a second restore changed intervals"
            );
        }
    }
});
