//! `cms backup`: one consistent snapshot of the chosen categories, ACDs and dates,
//! streamed into a backup file (proto/backup-format.md) while collection goes on.
//!
//! The snapshot is a single SQLite read transaction (WAL: the collector keeps writing
//! and never waits for us). The file is written to a temporary name in the destination
//! directory, fsynced, then renamed, so a failed or killed backup never leaves a file
//! that looks valid.
//!
//! The API: [`write_snapshot`] writes the snapshot into any `std::io::Write` (a socket,
//! for the peer sync); [`backup`] is the destination check, a temporary file,
//! [`write_snapshot`], fsync and rename.

use super::Selection;
use crate::archive::{self, ArchiveWriter, Header, ManifestEntry, Status, Value};
use crate::items::TABLES;
use crate::store::{interval_row_readers, Store, SCHEMA_VERSION};
use anyhow::{bail, Context};
use rusqlite::params;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What a finished backup holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupSummary {
    pub file: String,
    pub intervals: u64,
    pub rows: u64,
    pub bytes: u64,
    pub raw_bytes: u64,
    pub seconds: f64,
}

impl BackupSummary {
    pub fn render(&self) -> String {
        format!(
            "backup {}: {}, {}, {} ({:.1}x smaller than raw), {:.2} s\n",
            self.file,
            crate::report::plural(self.intervals, "interval"),
            crate::report::plural(self.rows, "row"),
            crate::report::plural(self.bytes, "byte"),
            self.raw_bytes as f64 / self.bytes.max(1) as f64,
            self.seconds
        )
    }
}

/// Options of `cms backup`.
pub struct BackupOptions {
    pub out: PathBuf,
    pub sel: Selection,
    /// Only intervals whose status changed at or after this UTC second (incremental).
    pub since: Option<i64>,
    pub server_id: String,
    pub time_zone: String,
    pub key: Option<[u8; 32]>,
    pub progress: bool,
}

/// Checks, before anything is written, that `dir` takes a file of `need` bytes: a
/// temporary file can be created there and the filesystem has room.
///
/// # Errors
/// Names the directory and says why not.
pub fn check_destination(dir: &Path, need: u64) -> anyhow::Result<()> {
    let probe = dir.join(format!(".cms-probe-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(e) => bail!("{}: cannot create a temporary file: {e}", dir.display()),
    }
    if let Some(free) = free_bytes(dir) {
        if free < need {
            bail!(
                "{}: not enough space: the backup needs about {} MB, {} MB free",
                dir.display(),
                need.div_ceil(1 << 20),
                free / (1 << 20)
            );
        }
    }
    Ok(())
}

/// Bytes free for this user on the file system holding `dir` (`None` where unknown).
#[cfg(unix)]
pub(crate) fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path and st a valid out-pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(not(unix))]
pub(crate) fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

/// Removes temporary files a killed backup to the same name left behind (never a file
/// that looks like a backup: they carry a hidden `.NAME.tmp-PID` name).
fn remove_stale_temps(dir: &Path, file_name: &str) {
    let prefix = format!(".{file_name}.tmp-");
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix(&prefix) else {
            continue;
        };
        let alive = pid
            .parse::<u32>()
            .ok()
            .is_some_and(|p| p != std::process::id() && Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// What every backup file takes besides its rows: prefix, header, trailer, the
/// manifest's block header, and slack for the admin and local blocks.
const FIXED_BYTES: u64 = 64 << 10;
/// A manifest entry, compressed, with room to spare.
const MANIFEST_BYTES_PER_INTERVAL: u64 = 64;
/// How often (bytes written) a backup projects its size from what it wrote so far.
const SPACE_CHECK_EVERY: u64 = 1 << 20;

/// Fails when the rest of the backup, projected at the bytes per row written so far,
/// cannot fit in the space left on `dir`'s file system (with a tenth to spare).
fn check_projected_space(
    dir: &Path,
    written: u64,
    rows_done: u64,
    rows: u64,
) -> anyhow::Result<()> {
    let (Some(free), true) = (free_bytes(dir), rows_done > 0) else {
        return Ok(());
    };
    let left = rows.saturating_sub(rows_done);
    let more = (written as f64 / rows_done as f64 * left as f64 * 1.1) as u64 + FIXED_BYTES;
    if more > free {
        bail!(
            "{}: not enough space: the backup needs about {} MB more (projected from the {} MB \
             written so far), {} MB free",
            dir.display(),
            more.div_ceil(1 << 20),
            written / (1 << 20),
            free / (1 << 20)
        );
    }
    Ok(())
}

/// A writer that counts the bytes that reached the file.
struct Counted<W> {
    inner: W,
    written: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<W: std::io::Write> std::io::Write for Counted<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(b)?;
        self.written
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A temporary file that is removed unless it was renamed into place.
struct TempOut {
    path: PathBuf,
    done: bool,
}

impl Drop for TempOut {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// Writes the backup file `opts.out`: checks the destination (a temporary file can be
/// created there, and there is room), writes the snapshot into a temporary file beside
/// it ([`write_snapshot`]), makes it durable and renames it into place.
///
/// # Errors
/// The database cannot be read, the destination cannot be written (named), or the
/// stored data is inconsistent (an interval whose rows do not match its checksum).
pub fn backup(store: &mut Store, opts: &BackupOptions) -> anyhow::Result<BackupSummary> {
    let out = &opts.out;
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = out
        .file_name()
        .with_context(|| format!("{}: not a file name", out.display()))?
        .to_string_lossy()
        .to_string();
    // Space, before writing: what the file surely takes (its fixed parts and a manifest
    // entry per interval); while writing, the rest projected from the bytes the rows
    // written so far really took (proto/backup-format.md, "Size").
    let (_, intervals) = estimate(&store.conn, &opts.sel).map_err(|e| in_db(store, e.into()))?;
    check_destination(&dir, FIXED_BYTES + intervals * MANIFEST_BYTES_PER_INTERVAL)?;
    remove_stale_temps(&dir, &file_name);
    let tmp_path = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let mut file = create_private(&tmp_path)
        .with_context(|| format!("{}: cannot create temporary file", tmp_path.display()))?;
    let mut tmp = TempOut {
        path: tmp_path.clone(),
        done: false,
    };
    let sum = write_snapshot_to(store, &opts.snapshot(), &mut file, Some(&dir))?;
    // The snapshot flushed everything into the file; make it durable, then publish.
    file.sync_all()
        .with_context(|| format!("{}: cannot sync", tmp_path.display()))?;
    drop(file);
    std::fs::rename(&tmp_path, out)
        .with_context(|| format!("{}: cannot rename into place", out.display()))?;
    tmp.done = true;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(sum)
}

/// What a snapshot holds and how it is written: everything of [`BackupOptions`] but the
/// destination file.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    /// What the snapshot is written to (a file's path, a peer's address): for messages
    /// and [`BackupSummary::file`].
    pub name: String,
    pub sel: Selection,
    /// Only intervals whose status changed at or after this UTC second (incremental).
    pub since: Option<i64>,
    pub server_id: String,
    pub time_zone: String,
    pub key: Option<[u8; 32]>,
    /// A progress bar on stderr.
    pub progress: bool,
}

impl BackupOptions {
    /// The snapshot this backup writes into its file.
    pub fn snapshot(&self) -> SnapshotOptions {
        SnapshotOptions {
            name: self.out.display().to_string(),
            sel: self.sel.clone(),
            since: self.since,
            server_id: self.server_id.clone(),
            time_zone: self.time_zone.clone(),
            key: self.key,
            progress: self.progress,
        }
    }
}

/// Writes one consistent snapshot of the chosen data as a backup file
/// (proto/backup-format.md) into `out`: a file, a socket (the peer sync), anything that
/// takes bytes. `out` gets the whole file (flushed) or an error; what it received of a
/// failed snapshot is not a valid backup (no trailer).
///
/// # Errors
/// The database cannot be read (the error names it), `out` cannot be written, or the
/// stored data is inconsistent (an interval whose rows do not match its checksum).
pub fn write_snapshot<W: std::io::Write>(
    store: &mut Store,
    opts: &SnapshotOptions,
    out: W,
) -> anyhow::Result<BackupSummary> {
    write_snapshot_to(store, opts, out, None)
}

/// [`write_snapshot`], checking the space left in `space` (the destination directory of
/// a file) as the file grows.
fn write_snapshot_to<W: std::io::Write>(
    store: &mut Store,
    opts: &SnapshotOptions,
    out: W,
    space: Option<&Path>,
) -> anyhow::Result<BackupSummary> {
    let r = snapshot_into(store, opts, out, space);
    if !store.conn.is_autocommit() {
        // Failed with the snapshot open: end it (it only read).
        let _ = store.conn.execute_batch("ROLLBACK");
    }
    r.map_err(|e| in_db(store, e))
}

/// A bare database error, said with the database it came from.
fn in_db(store: &Store, e: anyhow::Error) -> anyhow::Error {
    let bare = e
        .chain()
        .next()
        .is_some_and(|c| c.downcast_ref::<rusqlite::Error>().is_some());
    if bare {
        e.context(format!("{}: reading the database", store.path.display()))
    } else {
        e
    }
}

/// Rows and intervals of `sel` in the database (an estimate of the backup's size).
fn estimate(conn: &rusqlite::Connection, sel: &Selection) -> rusqlite::Result<(u64, u64)> {
    let (lo, hi) = sel.utc_range();
    let (mut rows, mut intervals) = (0u64, 0u64);
    for &acd in &sel.acds {
        let (r, n): (i64, i64) = conn.query_row(
            "SELECT COALESCE(SUM(row_count), 0), COUNT(*) FROM interval_status
             WHERE acd = ?1 AND istart >= ?2 AND istart < ?3",
            params![acd, lo, hi],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        rows += r.max(0) as u64;
        intervals += n.max(0) as u64;
    }
    Ok((rows, intervals))
}

fn snapshot_into<W: std::io::Write>(
    store: &mut Store,
    opts: &SnapshotOptions,
    out: W,
    space: Option<&Path>,
) -> anyhow::Result<BackupSummary> {
    let started = Instant::now();
    let out_name = PathBuf::from(&opts.name);
    // One snapshot for everything below, shared with a second reader connection when
    // one can join it (see `Snapshot`).
    let db = store.path.display().to_string();
    let snap = Snapshot::take(store, opts.sel.categories.history)
        .with_context(|| format!("{db}: cannot start a snapshot"))?;
    let tx = &store.conn;
    let (lo, hi) = opts.sel.utc_range();
    let acds = opts.sel.acds.clone();
    // Compression varies too much with the data (2 to 12 bytes a row) for a fixed rate
    // per row: the space left is projected from what the rows so far took.
    let (est_rows, _) = estimate(tx, &opts.sel)?;
    // The days the daily summaries cover, so a restore can tell without reading the
    // summary blocks whether it needs them (a free header property: older readers ignore
    // it, and a file without it is read in full).
    let summary_days = if opts.sel.categories.history {
        let (dlo, dhi) = opts.sel.date_range_strings();
        let mut lo_d: Option<String> = None;
        let mut hi_d: Option<String> = None;
        for &acd in &acds {
            for t in TABLES {
                let (a, b): (Option<String>, Option<String>) = tx.query_row(
                    &format!(
                        "SELECT MIN(row_date), MAX(row_date) FROM d{} WHERE acd = ?1
                         AND row_date >= ?2 AND row_date < ?3",
                        t.name
                    ),
                    params![acd, dlo, dhi],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                lo_d = match (lo_d, a) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    (x, y) => x.or(y),
                };
                hi_d = match (hi_d, b) {
                    (Some(x), Some(y)) => Some(x.max(y)),
                    (x, y) => x.or(y),
                };
            }
        }
        match (lo_d, hi_d) {
            (Some(a), Some(b)) => format!("{a}..{b}"),
            _ => String::new(),
        }
    } else {
        String::new()
    };
    // Per ACD, the interval this server is collecting: a restore gives a day that is not
    // over here no summary rows (`merge::restore::OPEN_INTERVALS`).
    let mut open_intervals = vec![];
    for &acd in &acds {
        if let Some(o) = crate::store::open_interval(tx, acd)? {
            open_intervals.push(format!("{acd}:{o}"));
        }
    }
    let header = Header {
        schema_version: SCHEMA_VERSION as u32,
        created_at: crate::store::intervals::now_secs(),
        server_id: opts.server_id.clone(),
        acds: acds.clone(),
        range_start: lo,
        range_end: hi,
        categories: opts.sel.categories.bits(),
        properties: vec![
            ("cms_version".into(), env!("CARGO_PKG_VERSION").into()),
            ("time_zone".into(), opts.time_zone.clone()),
            (
                "since".into(),
                opts.since.map(|s| s.to_string()).unwrap_or_default(),
            ),
            ("summary_days".into(), summary_days),
            (
                super::restore::OPEN_INTERVALS.into(),
                open_intervals.join(","),
            ),
        ],
    };
    let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = Counted {
        inner: out,
        written: written.clone(),
    };
    let buf = std::io::BufWriter::with_capacity(1 << 20, counted);
    let mut w = ArchiveWriter::new(buf, out_name, header, opts.key.as_ref())?;
    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new(est_rows);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows {eta} left")
                .expect("valid template"),
        );
        Some(b)
    } else {
        None
    };
    let mut rows_done: u64 = 0;
    let mut next_space_check = SPACE_CHECK_EVERY;
    if opts.sel.categories.history {
        let range = (lo, hi, opts.since.unwrap_or(i64::MIN));
        let readers = 1 + snap.extra.len() as u64;
        let conn = &mut store.conn;
        std::thread::scope(|scope| -> anyhow::Result<()> {
            let mut rxs = Vec::new();
            let (t0, r0) = std::sync::mpsc::sync_channel(4 * CHUNK as usize);
            rxs.push(r0);
            let acds = &acds;
            scope.spawn(move || read_intervals(conn, acds, range, 0, readers, t0));
            for (i, c) in snap.extra.into_iter().enumerate() {
                let (t, r) = std::sync::mpsc::sync_channel(4 * CHUNK as usize);
                rxs.push(r);
                scope.spawn(move || read_intervals(&c, acds, range, 1 + i as u64, readers, t));
            }
            // Intervals come back in order: index i from reader (i / CHUNK) % readers.
            let mut next: u64 = 0;
            loop {
                let from = ((next / CHUNK) % readers) as usize;
                let Ok(got) = rxs[from].recv() else {
                    break;
                };
                let got = got.with_context(|| format!("{db}: reading intervals"))?;
                if got.index != next {
                    bail!(
                        "{db}: the backup's readers disagree (interval {} where {next} was due)",
                        got.index
                    );
                }
                let (acd, istart) = (got.entry.acd, got.entry.istart);
                w.begin_interval(got.entry)?;
                for (t, flat) in TABLES.iter().zip(&got.rows) {
                    w.rows(&t.interval_table(), flat)?;
                    rows_done += (flat.len() / (2 + t.keys.len() + t.items.len())) as u64;
                }
                w.end_interval()
                    .map_err(|e| anyhow::anyhow!("{db}: interval {istart} of ACD {acd}: {e}"))?;
                let on_disk = written.load(std::sync::atomic::Ordering::Relaxed);
                if let Some(dir) = space.filter(|_| on_disk >= next_space_check) {
                    next_space_check = on_disk + SPACE_CHECK_EVERY;
                    check_projected_space(dir, on_disk, rows_done, est_rows)?;
                }
                if let Some(b) = &bar {
                    b.set_position(rows_done);
                }
                next += 1;
            }
            // Every reader is done; one still holding intervals saw another snapshot.
            for rx in &rxs {
                if let Ok(got) = rx.recv() {
                    got?;
                    bail!("{db}: the backup's readers disagree about the intervals");
                }
            }
            Ok(())
        })?;
        let tx = &store.conn;
        for &acd in &acds {
            // Summaries of the chosen dates (the restore takes them only for periods the
            // target no longer has intervals for).
            let (dlo, dhi) = opts.sel.date_range_strings();
            for prefix in ["d", "w", "m"] {
                for t in TABLES {
                    let mut cols: Vec<String> = vec!["acd".into()];
                    cols.extend(t.keys.iter().map(|k| k.to_string()));
                    cols.push("row_date".into());
                    cols.extend(t.items.iter().map(|(n, _)| n.to_string()));
                    cols.push("incomplete".into());
                    let mut st = tx.prepare(&format!(
                        "SELECT {} FROM {prefix}{} WHERE acd = ?1 AND row_date >= ?2 AND row_date < ?3",
                        cols.join(", "),
                        t.name
                    ))?;
                    let date_col = 1 + t.keys.len();
                    let mut q = st.query(params![acd, dlo, dhi])?;
                    let table = format!("{prefix}{}", t.name);
                    while let Some(row) = q.next()? {
                        let mut vals = Vec::with_capacity(cols.len());
                        for i in 0..cols.len() {
                            if i == date_col {
                                let d: String = row.get(i)?;
                                vals.push(
                                    archive::date_to_i64(&d)
                                        .with_context(|| format!("{table}: bad row_date {d:?}"))?,
                                );
                            } else {
                                vals.push(row.get::<_, i64>(i)?);
                            }
                        }
                        w.summary_row(&table, &vals)?;
                    }
                }
            }
        }
    }
    let tx = &store.conn;
    if opts.sel.categories.admin {
        for &acd in &acds {
            let mut st = tx.prepare(
                "SELECT skill, service_level, periods, name FROM skill_def WHERE acd = ?1",
            )?;
            let mut q = st.query([acd])?;
            while let Some(r) = q.next()? {
                w.admin_row(
                    "skill_def",
                    &[
                        Value::Int(acd as i64),
                        Value::Int(r.get(0)?),
                        Value::Int(r.get(1)?),
                        Value::Text(r.get(2)?),
                        Value::Text(r.get(3)?),
                    ],
                )?;
            }
            let mut st =
                tx.prepare("SELECT vdn, service_level, name FROM vdn_def WHERE acd = ?1")?;
            let mut q = st.query([acd])?;
            while let Some(r) = q.next()? {
                w.admin_row(
                    "vdn_def",
                    &[
                        Value::Int(acd as i64),
                        Value::Int(r.get(0)?),
                        Value::Int(r.get(1)?),
                        Value::Text(r.get(2)?),
                    ],
                )?;
            }
            let mut st = tx.prepare("SELECT tkgrp, trunks, name FROM tkgrp_def WHERE acd = ?1")?;
            let mut q = st.query([acd])?;
            while let Some(r) = q.next()? {
                w.admin_row(
                    "tkgrp_def",
                    &[
                        Value::Int(acd as i64),
                        Value::Int(r.get(0)?),
                        Value::Int(r.get(1)?),
                        Value::Text(r.get(2)?),
                    ],
                )?;
            }
        }
    }
    if opts.sel.categories.local {
        let mut st = tx.prepare("SELECT key, value FROM local_settings ORDER BY key")?;
        let mut q = st.query([])?;
        while let Some(r) = q.next()? {
            w.local_setting(&r.get::<_, String>(0)?, &r.get::<_, String>(1)?)?;
        }
    }
    store
        .conn
        .execute_batch("COMMIT")
        .with_context(|| format!("{db}: cannot end the snapshot"))?;
    let sum = w.finish()?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(BackupSummary {
        file: opts.name.clone(),
        intervals: sum.intervals,
        rows: sum.interval_rows + sum.summary_rows + sum.admin_rows + sum.local_rows,
        bytes: sum.bytes,
        raw_bytes: sum.raw_bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Intervals are read in runs of this many by each reader in turn.
const CHUNK: u64 = 8;

/// How often the extra readers try to join the main connection's snapshot before the
/// backup goes on with one reader.
const JOIN_TRIES: u32 = 20;

/// Reader connections besides the store's: SQLite decoding rows is most of a backup's
/// work, so two readers and the writer share two cores (more readers measured no
/// faster on two cores).
const EXTRA_READERS: usize = 1;

/// The read snapshot of a backup: a read transaction on the store's connection and,
/// when they could join exactly the same snapshot, more connections to read intervals
/// in parallel.
struct Snapshot {
    extra: Vec<rusqlite::Connection>,
}

impl Snapshot {
    /// Opens the read transaction on `store.conn` (ended by the caller). SQLite's
    /// snapshot API is not in the bundled build, so joining is checked instead: each
    /// extra connection notes `PRAGMA data_version` (which moves on every commit made by
    /// another connection), the main connection starts its snapshot, the extra ones start
    /// theirs, and if no data version has moved, no commit came in between: all see the
    /// same database. Otherwise all start again.
    fn take(store: &mut Store, parallel: bool) -> rusqlite::Result<Snapshot> {
        Snapshot::take_with(store, parallel, &mut || Ok(()))
    }

    /// [`Snapshot::take`], running `between` after the main connection started its
    /// snapshot and before the extra ones start theirs (tests commit there).
    fn take_with(
        store: &mut Store,
        parallel: bool,
        between: &mut dyn FnMut() -> rusqlite::Result<()>,
    ) -> rusqlite::Result<Snapshot> {
        let begin = |c: &rusqlite::Connection| -> rusqlite::Result<()> {
            c.execute_batch("BEGIN")?;
            // A deferred transaction takes its snapshot at the first read.
            c.query_row("SELECT COUNT(*) FROM interval_status WHERE 0", [], |_| {
                Ok(())
            })
        };
        let version = |c: &rusqlite::Connection| -> rusqlite::Result<i64> {
            c.query_row("PRAGMA data_version", [], |r| r.get(0))
        };
        let mut extra = Vec::new();
        for _ in 0..if parallel { EXTRA_READERS } else { 0 } {
            let Ok(c) = rusqlite::Connection::open_with_flags(
                &store.path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            ) else {
                break;
            };
            c.busy_timeout(std::time::Duration::from_secs(5))?;
            extra.push(c);
        }
        if extra.is_empty() {
            begin(&store.conn)?;
            return Ok(Snapshot { extra });
        }
        for _ in 0..JOIN_TRIES {
            let before = extra
                .iter()
                .map(version)
                .collect::<rusqlite::Result<Vec<_>>>()?;
            begin(&store.conn)?;
            between()?;
            extra.iter().try_for_each(begin)?;
            let after = extra
                .iter()
                .map(version)
                .collect::<rusqlite::Result<Vec<_>>>()?;
            if before == after {
                return Ok(Snapshot { extra });
            }
            for c in extra.iter().chain([&store.conn]) {
                c.execute_batch("ROLLBACK")?;
            }
        }
        tracing::info!("the database changed on every try: backing up with one reader");
        begin(&store.conn)?;
        Ok(Snapshot { extra: vec![] })
    }
}

/// One interval read from the snapshot: its status row and its rows per table
/// (`TABLES` order, flat, in the backup's column order `acd, keys..., istart, items...`).
struct ReadInterval {
    index: u64,
    entry: ManifestEntry,
    rows: Vec<Vec<i64>>,
}

/// Reads the intervals `[lo, hi)` of `acds` changed at or after `since`, numbered in
/// order; sends those of runs `me`, `me + readers`, ... to `out`. Stops at the first
/// error (sent) or when the receiver is gone.
fn read_intervals(
    conn: &rusqlite::Connection,
    acds: &[u16],
    (lo, hi, since): (i64, i64, i64),
    me: u64,
    readers: u64,
    out: std::sync::mpsc::SyncSender<anyhow::Result<ReadInterval>>,
) {
    let mut index: u64 = 0;
    let mut run = || -> anyhow::Result<()> {
        let mut stmts = interval_row_readers(conn)?;
        let mut st = conn.prepare(
            "SELECT istart, intrvl, row_date, starttime, status, reasons, source, epoch,
                    first_seq, last_seq, updated_at, row_count, checksum
             FROM interval_status WHERE acd = ?1 AND istart >= ?2 AND istart < ?3
               AND updated_at >= ?4
             ORDER BY istart",
        )?;
        for &acd in acds {
            let mut q = st.query(params![acd, lo, hi, since])?;
            while let Some(r) = q.next()? {
                let i = index;
                index += 1;
                if (i / CHUNK) % readers != me {
                    continue;
                }
                let istart: i64 = r.get(0)?;
                let status: String = r.get(4)?;
                let mut e = ManifestEntry::new(
                    acd,
                    istart,
                    r.get::<_, i64>(1)? as u32,
                    &r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)? as u32,
                    if status == "complete" {
                        Status::Complete
                    } else {
                        Status::Incomplete
                    },
                    &r.get::<_, String>(5)?,
                    &r.get::<_, String>(6)?,
                    r.get::<_, i64>(11)? as u64,
                    &r.get::<_, String>(12)?,
                )
                .map_err(|e| anyhow::anyhow!("interval {istart}: {e}"))?;
                e.epoch = r.get(7)?;
                e.first_seq = r.get(8)?;
                e.last_seq = r.get(9)?;
                e.updated_at = r.get(10)?;
                let mut rows = Vec::with_capacity(TABLES.len());
                for (t, q) in TABLES.iter().zip(stmts.iter_mut()) {
                    // The query leaves out acd and istart (known): put them in place.
                    let nk = t.keys.len();
                    let mut part = Vec::new();
                    let n = q.append_rows(&[acd as i64, istart], &mut part)?;
                    let mut flat = Vec::with_capacity(part.len() + 2 * n);
                    for r in part.chunks_exact(nk + t.items.len()) {
                        flat.push(acd as i64);
                        flat.extend_from_slice(&r[..nk]);
                        flat.push(istart);
                        flat.extend_from_slice(&r[nk..]);
                    }
                    rows.push(flat);
                }
                let got = ReadInterval {
                    index: i,
                    entry: e,
                    rows,
                };
                if out.send(Ok(got)).is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    };
    if let Err(e) = run() {
        let _ = out.send(Err(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(c: &rusqlite::Connection) -> i64 {
        c.query_row("SELECT COUNT(*) FROM local_settings", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_database_error_names_the_database_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cms.db");
        drop(Store::open(&path).unwrap());
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch("DROP TABLE dvdn")
            .unwrap();
        let mut store = Store::open_read_only(&path).unwrap();
        let grid = crate::interval::Grid::new(chrono_tz::America::New_York, 15);
        let out = dir.path().join("b.cmsbak");
        let opts = BackupOptions {
            out: out.clone(),
            sel: Selection {
                acds: vec![1],
                from: None,
                to: None,
                grid,
                categories: super::super::Categories::parse("history").unwrap(),
            },
            since: None,
            server_id: "a".into(),
            time_zone: "America/New_York".into(),
            key: None,
            progress: false,
        };
        let e = format!("{:#}", backup(&mut store, &opts).unwrap_err());
        assert!(
            e.starts_with(&format!("{}: reading the database", path.display())),
            "{e}"
        );
        assert!(e.contains("no such table: dvdn"), "{e}");
        assert!(store.conn.is_autocommit(), "snapshot ended");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.contains("cmsbak"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_snapshot_written_into_any_writer_is_a_whole_backup_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cms.db");
        let store = Store::open(&path).unwrap();
        store.set_setting("server_name", "b").unwrap();
        store.set_setting("site", "north").unwrap();
        drop(store);
        let mut store = Store::open_read_only(&path).unwrap();
        let opts = SnapshotOptions {
            name: "peer 127.0.0.1:1".into(),
            sel: Selection {
                acds: vec![1],
                from: None,
                to: None,
                grid: crate::interval::Grid::new(chrono_tz::America::New_York, 15),
                categories: super::super::Categories::parse("history,local").unwrap(),
            },
            since: None,
            server_id: "b".into(),
            time_zone: "America/New_York".into(),
            key: Some([7; 32]),
            progress: false,
        };
        let mut out: Vec<u8> = vec![];
        let sum = write_snapshot(&mut store, &opts, &mut out).unwrap();
        assert_eq!(sum.file, "peer 127.0.0.1:1");
        assert_eq!(sum.bytes, out.len() as u64, "every byte reached the writer");
        assert!(store.conn.is_autocommit(), "snapshot ended");
        let file = dir.path().join("got.cmsbak");
        std::fs::write(&file, &out).unwrap();
        let mut rd = archive::ArchiveReader::open(&file, Some(&[7; 32])).unwrap();
        let local: Vec<Vec<Value>> = rd.local_rows().map(|r| r.unwrap().values).collect();
        let text = |s: &str| Value::Text(s.into());
        assert_eq!(
            local,
            vec![
                vec![text("server_name"), text("b")],
                vec![text("site"), text("north")]
            ]
        );
    }

    #[test]
    fn extra_readers_join_the_main_snapshot_or_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cms.db");
        let mut store = Store::open(&path).unwrap();
        let writer = rusqlite::Connection::open(&path).unwrap();
        let mut n = 0;
        // A commit lands between the main snapshot and the extra one, once: the join
        // sees it and starts again; both then see the same database.
        let mut commit_once = || {
            n += 1;
            if n == 1 {
                writer.execute("INSERT INTO local_settings VALUES ('k1', 'v')", [])?;
            }
            Ok(())
        };
        let snap = Snapshot::take_with(&mut store, true, &mut commit_once).unwrap();
        assert_eq!(n, 2, "one retry");
        assert_eq!(snap.extra.len(), EXTRA_READERS);
        // A commit now is seen by neither.
        writer
            .execute("INSERT INTO local_settings VALUES ('k2', 'v')", [])
            .unwrap();
        let main = settings(&store.conn);
        assert!(snap.extra.iter().all(|c| settings(c) == main));
        assert_eq!(main, settings(&writer) - 1);
        drop(snap);
        store.conn.execute_batch("COMMIT").unwrap();
        // Commits every time: the backup goes on with the main connection alone.
        let mut i = 0;
        let mut always = || {
            i += 1;
            writer.execute(
                "INSERT INTO local_settings VALUES (?1, 'v')",
                [format!("x{i}")],
            )?;
            Ok(())
        };
        let snap = Snapshot::take_with(&mut store, true, &mut always).unwrap();
        assert!(snap.extra.is_empty());
        assert_eq!(i, JOIN_TRIES as i32);
        assert!(!store.conn.is_autocommit(), "the main snapshot is open");
    }
}
