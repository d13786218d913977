//! The SQLite database: schema and migrations, interval rows and their status,
//! checkpoints, administration data and summaries.
//!
//! Owns the SQL statements that touch the collector's tables, per table family:
//! [`intervals`] (the collector's commits), [`status`] (`interval_status`: its one
//! upsert and the reads of backup and restore), [`summary`] (the summary tables), and
//! [`merge`] (what backup and restore read and write besides: summary rows as a backup
//! carries them, administration and local data, the restore log, a backup's read
//! snapshot and a restore's short write transactions, [`merge::ShortTx`]). `report`
//! still runs its own queries through [`Store::conn`]. It does not decide what an item
//! means (that is `agg`) nor when to write (that is `collect`) nor what a restore takes
//! (that is `merge`): it offers short transactions that the collector and a concurrent
//! restore can interleave.

pub mod intervals;
pub mod merge;
pub mod peer;
pub mod raw;
pub mod status;
pub mod summary;

use crate::items::{TableDef, TABLES};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Schema version 1 (see `schema_v1.sql`).
pub const SCHEMA_V1: &str = include_str!("schema_v1.sql");
/// Schema version 2: the restore log.
pub const SCHEMA_V2: &str = include_str!("schema_v2.sql");

/// The migrations, append-only: entry `i` takes the database from `user_version` `i` to
/// `i + 1`. Never edit a shipped entry; add a new one.
pub const MIGRATIONS: &[&str] = &[SCHEMA_V1, SCHEMA_V2];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a writer waits for another writer's transaction before giving up. Restore and
/// collector interleave short transactions, so a second is plenty; longer means a bug.
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// The busy handler of every [`Store`] connection: waits for a lock another connection
/// holds by polling every millisecond, for at most [`BUSY_TIMEOUT_MS`]. SQLite's own
/// `busy_timeout` sleeps in growing steps of up to 100 ms, so a collector commit waiting
/// behind a restore's short transaction could miss the moment it ended and wait through
/// the next one too (`benches/peer_delay.rs` saw 473 ms). With this handler, and the
/// restore leaving the lock free for [`merge::YIELD`] after each of its commits, a
/// waiting commit gets the lock within one restore transaction.
fn poll_busy(tries: i32) -> bool {
    if u64::try_from(tries).unwrap_or(0) >= BUSY_TIMEOUT_MS {
        return false;
    }
    std::thread::sleep(std::time::Duration::from_millis(1));
    true
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "{path}: database schema version {found} is newer than this release supports ({supported}); \
         upgrade cms or restore the database kept aside before the upgrade"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "{path}: not a cms database (it has tables but no schema version); \
         move it away or point data_dir elsewhere"
    )]
    NotOurs { path: PathBuf },
    #[error(
        "{path}: no database yet: it is being created, or its creation was cut short \
         (the next `cms collect` or `cms restore` creates it)"
    )]
    NotCreated { path: PathBuf },
    /// A summary's `Sum` item over the rows of table family `table` does not fit 64 bits
    /// (as SQL's `SUM` refuses); nothing of that summary's transaction is applied.
    #[error("{path}: {table}: a summary sum overflows 64 bits")]
    SumOverflow { path: PathBuf, table: &'static str },
    #[error("{path}: {what}")]
    Io {
        path: PathBuf,
        what: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// An open database: the connection and the path it came from (for messages).
pub struct Store {
    pub conn: Connection,
    pub path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it to
    /// [`SCHEMA_VERSION`].
    ///
    /// # Errors
    /// The file cannot be opened or created, it is not a database, or its schema is newer
    /// than this build ([`StoreError::TooNew`], nothing is changed).
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sql_err(path, e))?;
        restrict_mode(path)?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
        };
        store.prepare()?;
        store.migrate()?;
        store.match_owner_of_dir();
        Ok(store)
    }

    /// Opens an existing database read-only (reports, backup snapshots). Never migrates.
    ///
    /// # Errors
    /// The file does not exist or is not a database of a version this build can read.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        if !path.exists() {
            return Err(StoreError::Io {
                path: path.to_owned(),
                what: "no database here (has `cms collect` run with this config?)".into(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sql_err(path, e))?;
        let store = Store {
            conn,
            path: path.to_owned(),
        };
        store
            .conn
            .busy_handler(Some(poll_busy))
            .map_err(|e| sql_err(path, e))?;
        let v = store.user_version()?;
        if v > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found: v,
                supported: SCHEMA_VERSION,
            });
        }
        if v == 0 {
            // Creation is one transaction (see `migrate`): version 0 is a database being
            // created right now, or one whose creation was cut short. Either way it holds
            // nothing yet.
            return Err(StoreError::NotCreated {
                path: path.to_owned(),
            });
        }
        Ok(store)
    }

    /// All connection settings in one place.
    fn prepare(&mut self) -> Result<()> {
        let p = self.path.clone();
        // WAL: readers (reports, backup snapshots) never block the collector's writer, and
        // a restore's short write transactions interleave with it.
        self.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| sql_err(&p, e))?;
        // NORMAL is durable across application crashes in WAL mode; a power cut can lose
        // the last transactions. That is safe for everything but the commit the collector
        // acknowledges to the switch next (the switch forgets what is acknowledged), so
        // commits that carry a checkpoint switch to FULL for their duration (see
        // `Store::commit`). Restores stay NORMAL (a restore cut short is run again), all
        // but their last commit, which records that the restore finished and is FULL, so
        // that a restore that reported success is on disk (`merge::restore`).
        self.set_synchronous("NORMAL")?;
        self.conn
            .busy_handler(Some(poll_busy))
            .map_err(|e| sql_err(&p, e))?;
        self.conn.set_prepared_statement_cache_capacity(64);
        Ok(())
    }

    /// Sets `PRAGMA synchronous` (outside a transaction: SQLite ignores it inside one).
    pub(crate) fn set_synchronous(&self, level: &str) -> Result<()> {
        self.conn
            .pragma_update(None, "synchronous", level)
            .map_err(|e| sql_err(&self.path, e))
    }

    pub fn user_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| sql_err(&self.path, e))
    }

    /// Creates or upgrades the schema. `user_version` is read and every missing step
    /// applied inside one immediate transaction: a second process opening the same old
    /// (or new) database at the same time waits for the first and then finds nothing to
    /// do, and a process killed while creating the database leaves `user_version` 0 and
    /// no tables (which readers treat as no database yet), never half a schema.
    fn migrate(&mut self) -> Result<()> {
        let found = self.user_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found == SCHEMA_VERSION {
            return Ok(());
        }
        if (1..SCHEMA_VERSION).contains(&found) {
            self.keep_aside(found)?;
        }
        let p = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| sql_err(&p, e))?;
        // Read again under the write lock: another process may have migrated meanwhile.
        let found: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| sql_err(&p, e))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: p,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found == 0 {
            let tables: i64 = tx
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                .map_err(|e| sql_err(&p, e))?;
            if tables > 0 {
                return Err(StoreError::NotOurs { path: p });
            }
        }
        for sql in MIGRATIONS.iter().skip(found as usize) {
            tx.execute_batch(sql).map_err(|e| sql_err(&p, e))?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(|e| sql_err(&p, e))?;
        tx.commit().map_err(|e| sql_err(&p, e))
    }

    /// Before migrating, keeps a consistent copy of the database as it was
    /// (`cms.db.pre-v{N}`), so a failed upgrade can be rolled back by putting it back.
    ///
    /// The copy is made under a name of its own and linked into place only if no copy is
    /// there yet and it still is of `version` (a second process opening the same old
    /// database at the same time may have upgraded it meanwhile): two processes never
    /// write the same file, and the copy kept aside is always the pre-upgrade one.
    fn keep_aside(&self, version: i64) -> Result<()> {
        let aside = aside_path(&self.path, version);
        if aside.exists() {
            return Ok(());
        }
        // Unique per process and per open, so concurrent openers never share it.
        static OPENS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = OPENS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tmp = aside.as_os_str().to_os_string();
        tmp.push(format!(".tmp-{}-{n}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        self.conn
            .execute("VACUUM INTO ?1", [tmp.to_string_lossy()])
            .map_err(|e| sql_err(&tmp, e))?;
        let copied: i64 = Connection::open_with_flags(&tmp, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
            .map_err(|e| sql_err(&tmp, e))?;
        let placed = if copied == version {
            restrict_mode(&tmp)?;
            match std::fs::hard_link(&tmp, &aside) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(StoreError::Io {
                        path: aside,
                        what: "cannot keep the pre-upgrade copy".into(),
                        source: e,
                    });
                }
            }
        } else {
            false
        };
        let _ = std::fs::remove_file(&tmp);
        if placed {
            tracing::info!(
                from = version,
                to = SCHEMA_VERSION,
                kept = %aside.display(),
                "migrating database; the pre-upgrade copy is kept aside"
            );
        }
        Ok(())
    }

    /// When run as root (an administrator's `cms restore` on an installed system), leaves
    /// the database files owned by the owner of the data directory (the service user), so
    /// the service can still open them.
    pub fn match_owner_of_dir(&self) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } != 0 {
                return;
            }
            let Some(dir) = self.path.parent() else {
                return;
            };
            let Ok(md) = std::fs::metadata(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            }) else {
                return;
            };
            for suffix in ["", "-wal", "-shm"] {
                let mut p = self.path.as_os_str().to_os_string();
                p.push(suffix);
                let p = PathBuf::from(p);
                if p.exists() {
                    if let Err(e) = std::os::unix::fs::chown(&p, Some(md.uid()), Some(md.gid())) {
                        tracing::warn!(
                            "{}: cannot give the file back to its owner: {e}",
                            p.display()
                        );
                    }
                }
            }
        }
    }

    /// Reads a local setting.
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT value FROM local_settings WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| sql_err(&self.path, e))
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO local_settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(|_| ())
            .map_err(|e| sql_err(&self.path, e))
    }
}

/// Where the pre-upgrade copy of a schema-`version` database is kept.
pub fn aside_path(db: &Path, version: i64) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".pre-v{version}"));
    db.with_file_name(name)
}

pub(crate) fn sql_err(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

/// Database files are readable only by the service (promise 7).
#[cfg_attr(not(unix), allow(unused_variables))]
fn restrict_mode(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            StoreError::Io {
                path: path.to_owned(),
                what: "cannot restrict file mode to 0600".into(),
                source: e,
            }
        })?;
    }
    Ok(())
}

/// The `SELECT` list of an interval table in canonical order: keys then items.
pub fn select_columns(t: &TableDef) -> String {
    let mut cols: Vec<&str> = vec!["acd"];
    cols.extend(t.keys);
    cols.push("istart");
    cols.extend(t.items.iter().map(|(n, _)| *n));
    cols.join(", ")
}

/// Where collection of `acd` stands: the start of the interval being collected, from the
/// last checkpoint (`None` before the first). Nothing at or after it is closed yet.
///
/// # Errors
/// A database error.
pub fn open_interval(conn: &Connection, acd: u16) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT open_istart FROM checkpoint WHERE acd = ?1 AND open_istart > 0",
        [acd],
        |r| r.get(0),
    )
    .optional()
}

/// One statement per table family (`TABLES` order) reading an interval's rows as
/// `keys..., items...`, in key order, with parameters `acd, istart`.
///
/// # Errors
/// A database error.
pub fn interval_row_readers(conn: &Connection) -> rusqlite::Result<Vec<raw::RawStmt<'_>>> {
    TABLES
        .iter()
        .map(|t| {
            let mut cols: Vec<&str> = t.keys.to_vec();
            cols.extend(t.items.iter().map(|(n, _)| *n));
            raw::RawStmt::new(
                conn,
                &format!(
                    "SELECT {} FROM h{} WHERE acd = ?1 AND istart = ?2",
                    cols.join(", "),
                    t.name
                ),
            )
        })
        .collect()
}

/// Row count and content checksum of one ACD interval over every `h*` table:
/// blake3 over the table name, then each row's key and items as little-endian i64, rows
/// ordered by key (docs/data-items.md, "Interval status").
///
/// # Errors
/// A database error.
pub fn interval_checksum(
    conn: &Connection,
    acd: u16,
    istart: i64,
) -> rusqlite::Result<(i64, String)> {
    let mut h = blake3::Hasher::new();
    let mut rows = 0i64;
    for t in TABLES {
        h.update(t.name.as_bytes());
        let keys = t.keys.join(", ");
        let items: Vec<&str> = t.items.iter().map(|(n, _)| *n).collect();
        let sql = format!(
            "SELECT {keys}, {} FROM h{} WHERE acd = ?1 AND istart = ?2 ORDER BY {keys}",
            items.join(", "),
            t.name
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let ncols = t.keys.len() + items.len();
        let mut q = stmt.query(params![acd, istart])?;
        // Hashed in large pieces (same digest as value by value, much faster).
        let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
        while let Some(r) = q.next()? {
            rows += 1;
            for i in 0..ncols {
                let v: i64 = r.get(i)?;
                buf.extend_from_slice(&v.to_le_bytes());
            }
            if buf.len() >= 60 * 1024 {
                h.update(&buf);
                buf.clear();
            }
        }
        h.update(&buf);
    }
    Ok((rows, h.finalize().to_hex().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_matches_item_catalogue() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        for t in TABLES {
            for prefix in ["h", "d", "w", "m"] {
                let table = format!("{prefix}{}", t.name);
                let mut stmt = s
                    .conn
                    .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                    .unwrap();
                let cols: Vec<String> = stmt
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .map(|r| r.unwrap())
                    .collect();
                for (item, _) in t.items {
                    assert!(cols.iter().any(|c| c == item), "{table} lacks {item}");
                }
                let expected_extra = if prefix == "h" { 5 } else { 3 };
                assert_eq!(
                    cols.len(),
                    t.keys.len() + t.items.len() + expected_extra,
                    "{table}: {cols:?}"
                );
            }
        }
    }

    fn schema_of(c: &Connection) -> Vec<(String, String)> {
        let mut st = c
            .prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn upgraded_database_equals_a_fresh_one_and_keeps_the_old_aside() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.db");
        {
            let c = Connection::open(&old).unwrap();
            c.execute_batch(SCHEMA_V1).unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
            c.execute("INSERT INTO local_settings VALUES ('server_id', 'a')", [])
                .unwrap();
        }
        let upgraded = Store::open(&old).unwrap();
        let fresh = Store::open(&dir.path().join("fresh.db")).unwrap();
        assert_eq!(upgraded.user_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(schema_of(&upgraded.conn), schema_of(&fresh.conn));
        assert_eq!(upgraded.setting("server_id").unwrap().as_deref(), Some("a"));
        let aside = Connection::open(aside_path(&old, 1)).unwrap();
        let v: i64 = aside
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 1, "the copy kept aside is the pre-upgrade database");
    }

    /// A VFS that forwards to the default one and counts `xSync` calls per file name,
    /// registered as the default so `Store::open` goes through it: the only way to see
    /// from inside a test whether a commit reached the disk (not just the page cache).
    mod sync_count {
        use rusqlite::ffi;
        use std::collections::HashMap;
        use std::ffi::{c_char, c_int, CStr};
        use std::sync::{Mutex, OnceLock};

        struct Vfs {
            /// The default VFS this one forwards to.
            real: *mut ffi::sqlite3_vfs,
            /// Per io methods table the real VFS sets (it has one for database files
            /// and another for the WAL), the same table with `xSync` counting.
            counting: Mutex<HashMap<usize, Box<ffi::sqlite3_io_methods>>>,
            /// Open file (its `sqlite3_file` address) -> its name and its real methods.
            files: Mutex<HashMap<usize, (String, usize)>>,
            /// File name -> syncs so far.
            syncs: Mutex<HashMap<String, u64>>,
        }
        // SAFETY: the raw pointer is SQLite's default VFS, valid for the process.
        unsafe impl Send for Vfs {}
        unsafe impl Sync for Vfs {}

        static VFS: OnceLock<Vfs> = OnceLock::new();

        unsafe extern "C" fn x_sync(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
            let v = VFS.get().unwrap();
            let (name, real) = v.files.lock().unwrap()[&(f as usize)].clone();
            *v.syncs.lock().unwrap().entry(name).or_default() += 1;
            let real = real as *const ffi::sqlite3_io_methods;
            ((*real).xSync.unwrap())(f, flags)
        }

        unsafe extern "C" fn x_open(
            _vfs: *mut ffi::sqlite3_vfs,
            name: *const c_char,
            f: *mut ffi::sqlite3_file,
            flags: c_int,
            out: *mut c_int,
        ) -> c_int {
            let v = VFS.get().unwrap();
            let rc = ((*v.real).xOpen.unwrap())(v.real, name, f, flags, out);
            if rc != ffi::SQLITE_OK || (*f).pMethods.is_null() || name.is_null() {
                return rc;
            }
            let orig = (*f).pMethods as usize;
            let mut counting = v.counting.lock().unwrap();
            let table = counting.entry(orig).or_insert_with(|| {
                let mut m = *(*f).pMethods;
                m.xSync = Some(x_sync);
                Box::new(m)
            });
            (*f).pMethods = &**table;
            let n = CStr::from_ptr(name).to_string_lossy().into_owned();
            v.files.lock().unwrap().insert(f as usize, (n, orig));
            rc
        }

        /// Makes the counting VFS the default (once per process).
        pub fn install() {
            VFS.get_or_init(|| {
                // SAFETY: sqlite3_vfs_find(NULL) returns the default VFS; the copy
                // registered here lives for the rest of the process.
                unsafe {
                    let real = ffi::sqlite3_vfs_find(std::ptr::null());
                    assert!(!real.is_null());
                    let mut mine = Box::new(*real);
                    mine.zName = c"sync-count".as_ptr();
                    mine.xOpen = Some(x_open);
                    mine.pNext = std::ptr::null_mut();
                    let v = Vfs {
                        real,
                        counting: Mutex::new(HashMap::new()),
                        files: Mutex::new(HashMap::new()),
                        syncs: Mutex::new(HashMap::new()),
                    };
                    assert_eq!(ffi::sqlite3_vfs_register(Box::into_raw(mine), 1), 0);
                    v
                }
            });
        }

        /// Syncs so far of the file named `name`.
        pub fn syncs(name: &std::path::Path) -> u64 {
            let v = VFS.get().unwrap();
            let name = name.to_string_lossy();
            v.syncs
                .lock()
                .unwrap()
                .get(name.as_ref())
                .copied()
                .unwrap_or(0)
        }
    }

    fn one_interval_commit(s: &mut Store, checkpoint: bool, seq: u64) {
        let grid = crate::interval::Grid::new(chrono_tz::UTC, 15);
        s.commit(intervals::Commit {
            acd: 1,
            grid: &grid,
            closed: &[],
            checkpoint: checkpoint.then(|| intervals::Checkpoint {
                epoch: 1,
                seq,
                ts: 1_700_000_000,
                open_istart: 1_700_000_000,
                state: vec![1, 2, 3],
                saved_at: 1_700_000_000,
            }),
            admin: Some((vec![], vec![], vec![])),
        })
        .unwrap();
    }

    /// Issue #10 item 6: the commit the collector acknowledges next is synced to disk
    /// before `commit` returns; commits without a checkpoint (restores) are not.
    #[test]
    fn a_checkpoint_commit_is_synced_before_it_returns() {
        sync_count::install();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let mut s = Store::open(&db).unwrap();
        let mut wal = db.as_os_str().to_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let before = sync_count::syncs(&wal);
        one_interval_commit(&mut s, false, 0);
        assert_eq!(
            sync_count::syncs(&wal),
            before,
            "a commit without a checkpoint keeps synchronous=NORMAL"
        );
        for seq in 1..=3 {
            let before = sync_count::syncs(&wal);
            one_interval_commit(&mut s, true, seq);
            assert!(
                sync_count::syncs(&wal) > before,
                "checkpoint commit {seq} returned before the WAL was synced"
            );
        }
        let level: i64 = s
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            level, 1,
            "the connection is back to NORMAL after the commit"
        );
    }

    /// Issue #10 item 6: two processes (here threads, each with its own connection)
    /// opening the same old database at once both succeed, the schema is migrated once,
    /// and the copy kept aside is the pre-upgrade one.
    #[test]
    fn concurrent_opens_of_an_old_database_migrate_it_once() {
        for round in 0..8 {
            let dir = tempfile::tempdir().unwrap();
            let old = dir.path().join("old.db");
            {
                let c = Connection::open(&old).unwrap();
                c.pragma_update(None, "journal_mode", "WAL").unwrap();
                c.execute_batch(SCHEMA_V1).unwrap();
                c.pragma_update(None, "user_version", 1).unwrap();
            }
            let go = std::sync::Barrier::new(4);
            let results: Vec<Result<i64>> = std::thread::scope(|sc| {
                let hs: Vec<_> = (0..4)
                    .map(|_| {
                        sc.spawn(|| {
                            go.wait();
                            Store::open(&old).and_then(|s| s.user_version())
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for r in results {
                match r {
                    Ok(v) => assert_eq!(v, SCHEMA_VERSION, "round {round}"),
                    Err(e) => panic!("round {round}: a concurrent open failed: {e}"),
                }
            }
            let aside = Connection::open(aside_path(&old, 1)).unwrap();
            let v: i64 = aside
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(
                v, 1,
                "round {round}: the copy kept aside is the old database"
            );
            let left: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".tmp-"))
                .collect();
            assert!(left.is_empty(), "temporary copies left: {left:?}");
        }
    }

    #[test]
    fn newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.db");
        {
            let s = Store::open(&p).unwrap();
            s.conn.pragma_update(None, "user_version", 99).unwrap();
        }
        let err = Store::open(&p).err().unwrap().to_string();
        assert!(
            err.contains("99") && err.contains(&SCHEMA_VERSION.to_string()),
            "{err}"
        );
    }
}
