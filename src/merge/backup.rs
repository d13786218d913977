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
//! [`write_snapshot`], fsync and rename. A snapshot is, in order: the header (with the
//! days the daily summaries cover and the intervals being collected), the intervals
//! (read by two reader threads on one snapshot), the summary rows, the ACD
//! administration data and the local settings. The SQL is the store's
//! (`store::status`, `store::merge`).

use super::Selection;
use super::{bail, msg, Categories, Clock, Context, Error, Result};
use crate::archive::{self, ArchiveWriter, Header, ManifestEntry, Value};
use crate::items::TABLES;
use crate::store::{self, interval_row_readers, status, Store, SCHEMA_VERSION};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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

/// Options of `cms backup`: the file, and the snapshot written into it.
pub struct BackupOptions {
    pub out: PathBuf,
    pub snapshot: SnapshotOptions,
}

/// Checks, before anything is written, that `dir` takes a file of `need` bytes: a
/// temporary file can be created there and the filesystem has room.
///
/// # Errors
/// Names the directory and says why not.
pub fn check_destination(dir: &Path, need: u64) -> Result<()> {
    if let Err(e) = tempfile::Builder::new()
        .prefix(".cms-probe-")
        .tempfile_in(dir)
    {
        bail!("{}: cannot create a temporary file: {e}", dir.display());
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
pub(crate) fn free_bytes(dir: &Path) -> Option<u64> {
    fs4::available_space(dir).ok()
}

/// The temporary file a backup writes before it renames it into place: hidden
/// (`.NAME.tmp-XXXXXX`), private, removed unless persisted, and locked while it is
/// written, so that a later backup to the same name tells one a killed backup left
/// behind (its lock went with its process) from one being written now, on every
/// platform.
fn create_temp(dir: &Path, file_name: &str) -> std::io::Result<tempfile::NamedTempFile> {
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}.tmp-"))
        .tempfile_in(dir)?;
    tmp.as_file().try_lock()?;
    Ok(tmp)
}

/// Removes the temporary files killed backups to the same name left behind: the ones
/// nobody holds the lock of (see [`create_temp`]). Never a file that looks like a
/// backup: they carry a hidden `.NAME.tmp-XXXXXX` name.
fn remove_stale_temps(dir: &Path, file_name: &str) {
    let prefix = format!(".{file_name}.tmp-");
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if !e.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let Ok(f) = std::fs::File::open(e.path()) else {
            continue;
        };
        if f.try_lock().is_ok() {
            drop(f);
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
fn check_projected_space(dir: &Path, written: u64, rows_done: u64, rows: u64) -> Result<()> {
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
    written: Arc<AtomicU64>,
}

impl<W: std::io::Write> std::io::Write for Counted<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(b)?;
        self.written.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the backup file `opts.out`: checks the destination (a temporary file can be
/// created there, and there is room), writes the snapshot into a temporary file beside
/// it ([`write_snapshot`]), makes it durable and renames it into place.
///
/// # Errors
/// The database cannot be read, the destination cannot be written (named), or the
/// stored data is inconsistent (an interval whose rows do not match its checksum).
pub fn backup(store: &mut Store, opts: &BackupOptions) -> Result<BackupSummary> {
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
    let (_, intervals) =
        estimate(&store.conn, &opts.snapshot.sel).map_err(|e| in_db(store, e.into()))?;
    check_destination(&dir, FIXED_BYTES + intervals * MANIFEST_BYTES_PER_INTERVAL)?;
    remove_stale_temps(&dir, &file_name);
    let mut tmp = create_temp(&dir, &file_name)
        .with_context(|| format!("{}: cannot create temporary file", dir.display()))?;
    let name = out.display().to_string();
    let sum = write_snapshot_to(store, &opts.snapshot, &name, tmp.as_file_mut(), Some(&dir))?;
    // The snapshot flushed everything into the file; make it durable, then publish.
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("{}: cannot sync", tmp.path().display()))?;
    drop(
        tmp.persist(out)
            .map_err(|e| e.error)
            .with_context(|| format!("{}: cannot rename into place", out.display()))?,
    );
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(sum)
}

/// What a snapshot holds and how it is written, wherever it goes (a backup file, a
/// peer).
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    pub sel: Selection,
    /// Only intervals whose status changed at or after this UTC second (incremental).
    pub since: Option<i64>,
    pub server_id: String,
    pub time_zone: String,
    pub key: Option<[u8; 32]>,
    /// A progress bar on stderr.
    pub progress: bool,
    /// When the snapshot is taken, for its header (`created_at`, what `--since FILE`
    /// reads).
    pub clock: Clock,
}

impl SnapshotOptions {
    /// A whole (not incremental) snapshot of `sel` by server `server_id` in zone
    /// `time_zone` (an IANA name), without a MAC or a progress bar, taken now; change
    /// the other fields with struct update syntax.
    pub fn new(sel: Selection, server_id: &str, time_zone: &str) -> SnapshotOptions {
        SnapshotOptions {
            sel,
            since: None,
            server_id: server_id.to_owned(),
            time_zone: time_zone.to_owned(),
            key: None,
            progress: false,
            clock: store::intervals::now_secs,
        }
    }
}

/// Writes one consistent snapshot of the chosen data as a backup file
/// (proto/backup-format.md) into `out`, which `name` names in messages and
/// [`BackupSummary::file`]: a file, a socket (the peer sync), anything that takes bytes. `out` gets the whole file (flushed) or an error; what it received of a
/// failed snapshot is not a valid backup (no trailer).
///
/// # Errors
/// The database cannot be read (the error names it), `out` cannot be written, or the
/// stored data is inconsistent (an interval whose rows do not match its checksum).
pub fn write_snapshot<W: std::io::Write>(
    store: &mut Store,
    opts: &SnapshotOptions,
    name: &str,
    out: W,
) -> Result<BackupSummary> {
    write_snapshot_to(store, opts, name, out, None)
}

/// [`write_snapshot`], checking the space left in `space` (the destination directory of
/// a file) as the file grows.
fn write_snapshot_to<W: std::io::Write>(
    store: &mut Store,
    opts: &SnapshotOptions,
    name: &str,
    out: W,
    space: Option<&Path>,
) -> Result<BackupSummary> {
    let r = snapshot_into(store, opts, name, out, space);
    if !store.conn.is_autocommit() {
        // Failed with the snapshot open: end it (it only read).
        let _ = store::merge::abort_snapshot(&store.conn);
    }
    r.map_err(|e| in_db(store, e))
}

/// A bare database error, said with the database it came from.
fn in_db(store: &Store, e: Error) -> Error {
    match e {
        Error::Sqlite(_) => Error::Context {
            what: format!("{}: reading the database", store.path.display()),
            source: Box::new(e),
        },
        e => e,
    }
}

/// Rows and intervals of `sel` in the database (an estimate of the backup's size).
fn estimate(conn: &rusqlite::Connection, sel: &Selection) -> rusqlite::Result<(u64, u64)> {
    let (lo, hi) = sel.utc_range();
    let (mut rows, mut intervals) = (0, 0);
    for &acd in &sel.acds {
        let (r, n) = status::totals(conn, acd, lo, hi)?;
        rows += r;
        intervals += n;
    }
    Ok((rows, intervals))
}

/// The snapshot, in the order of the file (see the module doc).
fn snapshot_into<W: std::io::Write>(
    store: &mut Store,
    opts: &SnapshotOptions,
    name: &str,
    out: W,
    space: Option<&Path>,
) -> Result<BackupSummary> {
    let started = Instant::now();
    let cats = opts.sel.categories;
    let db = store.path.display().to_string();
    // One snapshot for everything below, shared with a second reader connection when
    // one can join it (see `Snapshot`).
    let snap = Snapshot::take(store, cats.contains(Categories::HISTORY))
        .with_context(|| format!("{db}: cannot start a snapshot"))?;
    let header = snapshot_header(&store.conn, opts)?;
    let mut progress = Progress::new(opts.progress, estimate(&store.conn, &opts.sel)?.0, space);
    let counted = Counted {
        inner: out,
        written: progress.written.clone(),
    };
    let buf = std::io::BufWriter::with_capacity(1 << 20, counted);
    let mut w = ArchiveWriter::new(buf, PathBuf::from(name), header, opts.key.as_ref())?;
    if cats.contains(Categories::HISTORY) {
        write_intervals(store, snap, opts, &mut w, &mut progress)?;
        write_summaries(&store.conn, &opts.sel, &mut w)?;
    }
    if cats.contains(Categories::ADMIN) {
        write_admin(&store.conn, &opts.sel.acds, &mut w)?;
    }
    if cats.contains(Categories::LOCAL) {
        for (key, value) in store::merge::local_settings(&store.conn)? {
            w.local_setting(&key, &value)?;
        }
    }
    store::merge::end_snapshot(&store.conn)
        .with_context(|| format!("{db}: cannot end the snapshot"))?;
    let sum = w.finish()?;
    progress.finish();
    Ok(BackupSummary {
        file: name.to_owned(),
        intervals: sum.intervals,
        rows: sum.interval_rows + sum.summary_rows + sum.admin_rows + sum.local_rows,
        bytes: sum.bytes,
        raw_bytes: sum.raw_bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The header of a snapshot, read inside it.
fn snapshot_header(conn: &rusqlite::Connection, opts: &SnapshotOptions) -> Result<Header> {
    let (lo, hi) = opts.sel.utc_range();
    // The days the daily summaries cover, so a restore can tell without reading the
    // summary blocks whether it needs them (a free header property: older readers ignore
    // it, and a file without it is read in full).
    let summary_days = if opts.sel.categories.contains(Categories::HISTORY) {
        summary_days(conn, &opts.sel)?
    } else {
        String::new()
    };
    // Per ACD, the interval this server is collecting: a restore gives a day that is not
    // over here no summary rows (`merge::restore::OPEN_INTERVALS`).
    let mut open_intervals = vec![];
    for &acd in &opts.sel.acds {
        if let Some(o) = store::open_interval(conn, acd)? {
            open_intervals.push(format!("{acd}:{o}"));
        }
    }
    Ok(Header {
        schema_version: SCHEMA_VERSION as u32,
        created_at: (opts.clock)(),
        server_id: opts.server_id.clone(),
        acds: opts.sel.acds.clone(),
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
    })
}

/// The `summary_days` header property: `FIRST..LAST` of the daily summaries in `sel`,
/// empty when there are none.
fn summary_days(conn: &rusqlite::Connection, sel: &Selection) -> rusqlite::Result<String> {
    let (dlo, dhi) = sel.date_range_strings();
    let (mut first, mut last): (Option<String>, Option<String>) = (None, None);
    for &acd in &sel.acds {
        let (a, b) = store::merge::daily_summary_dates(conn, acd, (&dlo, &dhi))?;
        first = [first, a].into_iter().flatten().min();
        last = [last, b].into_iter().flatten().max();
    }
    Ok(match (first, last) {
        (Some(a), Some(b)) => format!("{a}..{b}"),
        _ => String::new(),
    })
}

/// The progress of a snapshot: the bar on stderr and, for a file, the projected space.
struct Progress<'a> {
    bar: Option<indicatif::ProgressBar>,
    /// Interval rows in the selection (the estimate the projection extends).
    rows: u64,
    rows_done: u64,
    /// Bytes that reached the output (counted by [`Counted`]).
    written: Arc<AtomicU64>,
    /// The destination directory whose free space is checked (`None`: not a file).
    space: Option<&'a Path>,
    next_space_check: u64,
}

impl<'a> Progress<'a> {
    fn new(show: bool, rows: u64, space: Option<&'a Path>) -> Progress<'a> {
        let bar = show.then(|| {
            let b = indicatif::ProgressBar::new(rows);
            b.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows {eta} left")
                    .expect("valid template"),
            );
            b
        });
        Progress {
            bar,
            rows,
            rows_done: 0,
            written: Arc::new(AtomicU64::new(0)),
            space,
            next_space_check: SPACE_CHECK_EVERY,
        }
    }

    /// `rows` more rows written: moves the bar, and checks the space every
    /// [`SPACE_CHECK_EVERY`] bytes.
    fn rows(&mut self, rows: u64) -> Result<()> {
        self.rows_done += rows;
        let on_disk = self.written.load(Ordering::Relaxed);
        if let Some(dir) = self.space.filter(|_| on_disk >= self.next_space_check) {
            self.next_space_check = on_disk + SPACE_CHECK_EVERY;
            check_projected_space(dir, on_disk, self.rows_done, self.rows)?;
        }
        if let Some(b) = &self.bar {
            b.set_position(self.rows_done);
        }
        Ok(())
    }

    fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

/// Writes the intervals of the snapshot: read by one thread per reader connection
/// (`snap`), in runs of [`CHUNK`], and written here in order.
fn write_intervals<W: std::io::Write>(
    store: &mut Store,
    snap: Snapshot,
    opts: &SnapshotOptions,
    w: &mut ArchiveWriter<W>,
    progress: &mut Progress<'_>,
) -> Result<()> {
    let db = store.path.display().to_string();
    let (lo, hi) = opts.sel.utc_range();
    let range = (lo, hi, opts.since.unwrap_or(i64::MIN));
    let readers = 1 + snap.extra.len() as u64;
    let conn = &mut store.conn;
    let acds = &opts.sel.acds;
    std::thread::scope(|scope| -> Result<()> {
        let mut rxs = Vec::new();
        let (t0, r0) = std::sync::mpsc::sync_channel(CHUNK as usize);
        rxs.push(r0);
        scope.spawn(move || read_intervals(conn, acds, range, 0, readers, t0));
        for (i, c) in snap.extra.into_iter().enumerate() {
            let (t, r) = std::sync::mpsc::sync_channel(CHUNK as usize);
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
            let mut rows = 0;
            for (t, flat) in TABLES.iter().zip(&got.rows) {
                w.rows(&t.interval_table(), flat)?;
                rows += (flat.len() / (2 + t.keys.len() + t.items.len())) as u64;
            }
            w.end_interval()
                .map_err(|e| msg!("{db}: interval {istart} of ACD {acd}: {e}"))?;
            progress.rows(rows)?;
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
    })
}

/// Writes the summary rows of the chosen dates (the restore takes them only for periods
/// the target no longer has intervals for).
fn write_summaries<W: std::io::Write>(
    conn: &rusqlite::Connection,
    sel: &Selection,
    w: &mut ArchiveWriter<W>,
) -> Result<()> {
    let (dlo, dhi) = sel.date_range_strings();
    for &acd in &sel.acds {
        store::merge::for_each_summary_row(
            conn,
            acd,
            (&dlo, &dhi),
            |table, date_col, date, vals| {
                let mut vals = vals.to_vec();
                vals[date_col] = archive::date_to_i64(date)
                    .with_context(|| format!("{table}: bad row_date {date:?}"))?;
                w.summary_row(table, &vals)?;
                Ok::<_, Error>(())
            },
        )?;
    }
    Ok(())
}

/// Writes the ACD administration data of `acds`.
fn write_admin<W: std::io::Write>(
    conn: &rusqlite::Connection,
    acds: &[u16],
    w: &mut ArchiveWriter<W>,
) -> Result<()> {
    use rusqlite::types::Value as Sql;
    for &acd in acds {
        for (table, vals) in store::merge::admin_rows(conn, acd)? {
            let vals: Vec<Value> = vals
                .into_iter()
                .map(|v| match v {
                    Sql::Integer(i) => Ok(Value::Int(i)),
                    Sql::Text(s) => Ok(Value::Text(s)),
                    other => Err(msg!("{table}: unexpected value {other:?}")),
                })
                .collect::<Result<_>>()?;
            w.admin_row(table, &vals)?;
        }
    }
    Ok(())
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
        use store::merge::{begin_snapshot as begin, data_version as version};
        let mut extra = Vec::new();
        for _ in 0..if parallel { EXTRA_READERS } else { 0 } {
            let Ok(c) = store::merge::open_reader(&store.path) else {
                break;
            };
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
                store::merge::abort_snapshot(c)?;
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
    out: std::sync::mpsc::SyncSender<Result<ReadInterval>>,
) {
    let mut index: u64 = 0;
    let mut run = || -> Result<()> {
        let mut stmts = interval_row_readers(conn)?;
        let mut st = status::changed_rows_stmt(conn)?;
        for &acd in acds {
            let mut sent = true;
            status::for_each_changed(&mut st, acd, (lo, hi, since), |r| {
                let i = index;
                index += 1;
                if (i / CHUNK) % readers != me {
                    return Ok(true);
                }
                let got = ReadInterval {
                    index: i,
                    rows: interval_rows(&mut stmts, acd, r.istart)?,
                    entry: manifest_entry(acd, r)?,
                };
                sent = out.send(Ok(got)).is_ok();
                Ok::<_, Error>(sent)
            })?;
            if !sent {
                return Ok(());
            }
        }
        Ok(())
    };
    if let Err(e) = run() {
        let _ = out.send(Err(e));
    }
}

/// The manifest entry of a stored interval.
fn manifest_entry(acd: u16, r: status::StoredRow) -> Result<ManifestEntry> {
    let mut e = ManifestEntry::new(
        acd,
        r.istart,
        r.intrvl,
        &r.row_date,
        r.starttime,
        r.status,
        &r.reasons,
        &r.source,
        r.row_count,
        &r.checksum,
    )
    .map_err(|e| msg!("interval {}: {e}", r.istart))?;
    e.epoch = r.epoch;
    e.first_seq = r.first_seq;
    e.last_seq = r.last_seq;
    e.updated_at = r.updated_at;
    Ok(e)
}

/// The rows of one interval per table (`TABLES` order), flat, in the backup's column
/// order `acd, keys..., istart, items...`, read with `stmts` ([`interval_row_readers`]).
fn interval_rows(
    stmts: &mut [crate::store::raw::RawStmt<'_>],
    acd: u16,
    istart: i64,
) -> rusqlite::Result<Vec<Vec<i64>>> {
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
    Ok(rows)
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
        let sel = Selection {
            acds: vec![1],
            from: None,
            to: None,
            grid,
            categories: super::Categories::parse("history").unwrap(),
        };
        let opts = BackupOptions {
            out: out.clone(),
            snapshot: SnapshotOptions::new(sel, "a", "America/New_York"),
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
            sel: Selection {
                acds: vec![1],
                from: None,
                to: None,
                grid: crate::interval::Grid::new(chrono_tz::America::New_York, 15),
                categories: super::Categories::parse("history,local").unwrap(),
            },
            since: None,
            server_id: "b".into(),
            time_zone: "America/New_York".into(),
            key: Some([7; 32]),
            progress: false,
            clock: || 1_700_000_000,
        };
        let mut out: Vec<u8> = vec![];
        let sum = write_snapshot(&mut store, &opts, "peer 127.0.0.1:1", &mut out).unwrap();
        assert_eq!(sum.file, "peer 127.0.0.1:1");
        assert_eq!(sum.bytes, out.len() as u64, "every byte reached the writer");
        assert!(store.conn.is_autocommit(), "snapshot ended");
        let file = dir.path().join("got.cmsbak");
        std::fs::write(&file, &out).unwrap();
        let mut rd = archive::ArchiveReader::open(&file, Some(&[7; 32])).unwrap();
        assert_eq!(
            rd.header().created_at,
            1_700_000_000,
            "taken at the clock's time"
        );
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
    fn only_temporary_files_nobody_writes_are_stale() {
        let dir = tempfile::tempdir().unwrap();
        let name = |n: &str| dir.path().join(n);
        // A killed backup's file (nobody holds its lock), one being written now (its
        // lock held), another name's, and a finished backup.
        std::fs::write(name(".b.cmsbak.tmp-killed"), b"x").unwrap();
        let writing = create_temp(dir.path(), "b.cmsbak").unwrap();
        std::fs::write(name(".c.cmsbak.tmp-killed"), b"x").unwrap();
        std::fs::write(name("b.cmsbak"), b"x").unwrap();
        remove_stale_temps(dir.path(), "b.cmsbak");
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let writing_name = writing.path().file_name().unwrap().to_string_lossy();
        assert!(writing_name.starts_with(".b.cmsbak.tmp-"), "{writing_name}");
        let mut want = vec![
            ".c.cmsbak.tmp-killed".to_string(),
            "b.cmsbak".to_string(),
            writing_name.to_string(),
        ];
        want.sort();
        assert_eq!(left, want);
        // Once its writer is gone, its file is stale too.
        let path = writing.path().to_owned();
        let kept = writing.into_temp_path().keep().unwrap();
        assert_eq!(kept, path);
        remove_stale_temps(dir.path(), "b.cmsbak");
        assert!(!path.exists());
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
