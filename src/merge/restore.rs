//! `cms restore`: verify a backup file completely, plan per interval, then apply in short
//! transactions while the collector keeps writing.
//!
//! The API: [`restore_at`] is the one entry point, for `cms restore` and for the peer
//! sync alike (which spools the peer's stream into a file first): it runs
//! [`open_for_plan`] -> [`plan`] (the file's compatibility checks, the plan, the
//! verification of everything it will read) -> [`apply`] (the interval writes, the
//! summaries, admin and local data, the restore log, the report of what is still
//! missing). [`restore`] does the same into a store already open.
//!
//! Nothing is written before the whole file has been verified (structure, checksums, MAC,
//! and that every interval's rows match its manifest entry). Each interval is replaced
//! atomically and re-decided inside its transaction against the target's state at that
//! moment, so a restore killed at any point and run again gives the same result as one
//! uninterrupted run, and an interval the collector closed meanwhile is never touched.

use super::plan::{decide, Action, Copy};
use super::Selection;
use super::{bail, msg, Categories, Clock, Context, Error, Result};
use crate::archive::{self, ArchiveReader, ManifestEntry, Value};
use crate::domain::{GapKind, IntervalStatus, PeriodKind};
use crate::interval::Grid;
use crate::items::TABLES;
use crate::report::{self, GapRange};
use crate::store::intervals::{insert_rows_sql, insert_sql, now_secs};
use crate::store::merge::ShortTx;
use crate::store::raw::RawStmt;
use crate::store::{self, open_interval, status, summary, Store, SCHEMA_VERSION};
use rusqlite::types::Value as SqlValue;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest a restore write transaction stays open. A collector commit that finds one
/// open waits for it to end (the store's busy handler polls every millisecond, and the
/// restore leaves the lock free for `store::merge::YIELD` after each commit), so at most
/// this long plus the restore's commit: under the 200 ms a collector may be delayed by
/// a peer sync (`benches/peer_delay.rs`).
pub const MAX_TX: Duration = Duration::from_millis(100);

pub struct RestoreOptions {
    pub file: PathBuf,
    /// `acds` empty = every ACD of the backup (all must be configured here).
    pub sel: Selection,
    pub configured_acds: Vec<u16>,
    pub dry_run: bool,
    pub include_local: bool,
    pub key: Option<[u8; 32]>,
    pub server_id: String,
    /// Whether a collector holds this database (local data is refused then).
    pub collection_running: bool,
    /// A progress bar on stderr while intervals are written (a terminal, not `--json`).
    pub progress: bool,
    /// The first day of a week for the weekly summaries (`week_start` of the config).
    pub week_start: chrono::Weekday,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanLine {
    pub acd: u16,
    pub istart: i64,
    pub local: String,
    pub action: Action,
    pub target: Option<String>,
    pub backup: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct RestoreReport {
    pub file: String,
    pub source_server: String,
    pub categories: String,
    pub dry_run: bool,
    pub filled: u64,
    /// Incomplete here, replaced by the backup's complete copy.
    pub replaced: u64,
    /// Incomplete here, replaced by the backup's incomplete copy that covers more of the
    /// switch's stream (the interval stays incomplete).
    pub improved: u64,
    pub kept: u64,
    pub conflicts: Vec<PlanLine>,
    pub skipped_current: u64,
    pub admin_rows: u64,
    pub local_rows: u64,
    pub summary_rows_taken: u64,
    pub days_resummarized: u64,
    /// Intervals still missing or incomplete on this server after the restore.
    pub still_missing: Vec<GapRange>,
    /// Of those, the ones before the backup's first interval: the source no longer has
    /// them (its retention), so this backup cannot bring them back.
    pub source_lacks: Vec<GapRange>,
    pub seconds: f64,
    /// The plan, per interval (only the ones that change something or conflict).
    pub plan: Vec<PlanLine>,
    /// The same plan grouped into ranges of consecutive intervals with the same action on
    /// copies in the same states (what `--dry-run` prints).
    pub plan_ranges: Vec<PlanRange>,
}

/// Consecutive intervals of one ACD with the same plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanRange {
    pub acd: u16,
    /// UTC start of the first interval and end of the last, seconds.
    pub from: i64,
    pub to: i64,
    pub from_local: String,
    pub to_local: String,
    pub intervals: u64,
    pub action: Action,
    /// `missing`, `complete` or `incomplete`: this server's copies.
    pub here: &'static str,
    /// `complete` or `incomplete`: the backup's copies.
    pub backup: &'static str,
}

fn describe(c: &Copy) -> String {
    format!(
        "{} ({} rows, seq {}..{})",
        IntervalStatus::of(c.complete),
        c.row_count,
        c.first_seq,
        c.last_seq
    )
}

fn backup_copy(e: &ManifestEntry) -> Copy {
    Copy {
        complete: e.status.is_complete(),
        checksum: e.checksum_hex(),
        first_seq: e.first_seq.max(0) as u64,
        last_seq: e.last_seq.max(0) as u64,
        row_count: e.row_count,
    }
}

/// A [`Copy`] of a stored status row.
fn stored_copy(s: status::Summary) -> Copy {
    Copy {
        complete: s.complete,
        checksum: s.checksum,
        first_seq: s.first_seq as u64,
        last_seq: s.last_seq as u64,
        row_count: s.row_count as u64,
    }
}

/// What [`plan`] found: the verified file and what the restore will do with it; the
/// input of [`apply`].
pub struct Planned {
    rd: ArchiveReader<std::fs::File>,
    header: archive::Header,
    acds: Vec<u16>,
    cats: Categories,
    /// The backup's intervals inside the selection.
    entries: Vec<ManifestEntry>,
    /// Indices into `entries` of the intervals to write, in file order.
    todo: Vec<usize>,
    /// Per ACD, the interval the target was collecting when the plan was made.
    current: BTreeMap<u16, Option<i64>>,
    /// Per ACD, the interval the source was collecting when it took the backup (the
    /// `open_intervals` header property; absent in older files).
    source_open: BTreeMap<u16, i64>,
    rep: RestoreReport,
    started: Instant,
}

/// Whether the local day `date` of `acd` is over as far as a restore knows: on a
/// collecting target (`current`: the interval it collects), it ends at or before the
/// interval being collected (a day not over is the collector's to summarize when it
/// ends); on a target that is not collecting, it was over on the source when the backup
/// was taken (`source_open`). A day that is not over gets no summary rows from a restore.
fn day_over(
    grid: &Grid,
    current: &BTreeMap<u16, Option<i64>>,
    source_open: &BTreeMap<u16, i64>,
    acd: u16,
    date: chrono::NaiveDate,
) -> bool {
    let end = grid.day_start(date.succ_opt().expect("date in range"));
    match current.get(&acd).copied().flatten() {
        Some(open) => end <= open,
        None => source_open.get(&acd).is_none_or(|&o| end <= o),
    }
}

/// The target database as the plan reads it: opened without being created and without
/// a write, so that a refused restore and a dry run change nothing (a read-write
/// connection that writes nothing leaves no `-wal`/`-shm` file behind when it closes; a
/// read-only one would). `None`: no database there yet, or one never set up.
///
/// # Errors
/// The file cannot be opened, is not a database, or is of a newer schema.
pub fn open_for_plan(db: &Path) -> Result<Option<rusqlite::Connection>> {
    if !db.exists() {
        return Ok(None);
    }
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(
        db,
        flags | rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE,
    )
    .or_else(|_| {
        rusqlite::Connection::open_with_flags(
            db,
            flags | rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
    })
    .with_context(|| format!("{}: cannot open the database", db.display()))?;
    conn.busy_timeout(Duration::from_secs(5))
        .with_context(|| format!("{}: cannot open the database", db.display()))?;
    let version = store::merge::schema_version(&conn)
        .with_context(|| format!("{}: not a cms database", db.display()))?;
    if version > SCHEMA_VERSION {
        bail!(
            "{}: database schema version {version}, this release supports up to {SCHEMA_VERSION}: upgrade this release first",
            db.display()
        );
    }
    Ok((version > 0).then_some(conn))
}

/// Runs a restore (or only its plan, with `dry_run`) into the database at `db`: the file
/// is checked and the plan made before the database is opened for writing (with `open`,
/// which creates it when needed), so a refused restore or a dry run changes nothing, and
/// on a server with no database yet creates none.
///
/// The one entry point of a restore: `cms restore` and the peer sync (which spools the
/// peer's stream into a file first) both call it.
///
/// # Errors
/// As [`restore`], and `open` failing.
pub fn restore_at(
    db: &Path,
    grid: &Grid,
    opts: &RestoreOptions,
    open: impl FnOnce() -> std::result::Result<Store, Box<dyn std::error::Error + Send + Sync>>,
) -> Result<RestoreReport> {
    restore_at_with_clock(db, grid, opts, open, now_secs)
}

/// [`restore_at`], with the time every row it writes is stamped with (`updated_at`,
/// what an incremental backup selects on) from `clock`.
///
/// # Errors
/// As [`restore_at`].
pub fn restore_at_with_clock(
    db: &Path,
    grid: &Grid,
    opts: &RestoreOptions,
    open: impl FnOnce() -> std::result::Result<Store, Box<dyn std::error::Error + Send + Sync>>,
    clock: Clock,
) -> Result<RestoreReport> {
    let target = open_for_plan(db)?;
    let planned = plan(target.as_ref(), grid, opts)?;
    drop(target);
    if opts.dry_run {
        return Ok(dry_run_report(planned));
    }
    let dir = db.parent().unwrap_or(Path::new("."));
    let mut store = open().map_err(|e| disk_full(dir, Error::Other(e)))?;
    apply(&mut store, grid, opts, planned, clock).map_err(|e| disk_full(dir, e))
}

/// A write that failed because the disk holding the database is full, said as such: SQLite
/// reports it as "database or disk is full", or, when even its shared-memory file cannot
/// grow, as a disk I/O error (`xShmMap`). Other errors pass unchanged.
fn disk_full(dir: &Path, e: Error) -> Error {
    use rusqlite::ErrorCode;
    let free = super::backup::free_bytes(dir);
    let nearly_full = free.is_some_and(|f| f < 1 << 20);
    let full = e.any(|c: &rusqlite::Error| {
        matches!(c, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::DiskFull
            || (f.code == ErrorCode::SystemIoFailure && nearly_full))
    }) || e.any(|io: &std::io::Error| io.kind() == std::io::ErrorKind::StorageFull);
    if !full {
        return e;
    }
    msg!(
        "{}: disk full{}: the restore stopped; every interval is either fully restored or \
         untouched: free space and run the same restore again",
        dir.display(),
        free.map(|f| format!(" ({} KB free)", f / 1024))
            .unwrap_or_default()
    )
}

/// Runs a restore (or only its plan, with `dry_run`) into an open store.
///
/// # Errors
/// The file fails verification, is from a newer schema or another interval length,
/// holds ACDs not configured here, asks for local data where that is not allowed, or a
/// database write fails (the current transaction is rolled back; rerunning completes the
/// job).
pub fn restore(store: &mut Store, grid: &Grid, opts: &RestoreOptions) -> Result<RestoreReport> {
    let planned = plan(Some(&store.conn), grid, opts)?;
    if opts.dry_run {
        return Ok(dry_run_report(planned));
    }
    apply(store, grid, opts, planned, now_secs)
}

fn dry_run_report(p: Planned) -> RestoreReport {
    let mut rep = p.rep;
    rep.seconds = p.started.elapsed().as_secs_f64();
    rep
}

/// Checks the file and the request, plans against `target` (`None`: an empty server),
/// and verifies every part of the file the plan will read. Reads the target, never
/// writes it.
///
/// # Errors
/// As [`restore`], but for the writes.
pub fn plan(
    target: Option<&rusqlite::Connection>,
    grid: &Grid,
    opts: &RestoreOptions,
) -> Result<Planned> {
    let started = Instant::now();
    // Opening checks the whole-file hash (truncation, corruption) and the MAC when a site
    // key is configured; what this restore will write is decoded and checked against the
    // manifest below, before the first write.
    let mut rd = ArchiveReader::open(&opts.file, opts.key.as_ref())?;
    let header = rd.header().clone();
    check_compatible(&rd, grid, &opts.file)?;
    let acds = chosen_acds(&header, opts)?;
    let cats = chosen_categories(&header, opts)?;
    let entries: Vec<ManifestEntry> = if cats.contains(Categories::HISTORY) {
        let (lo, hi) = opts.sel.utc_range();
        rd.manifest()
            .iter()
            .filter(|e| acds.contains(&e.acd) && e.istart >= lo && e.istart < hi)
            .cloned()
            .collect()
    } else {
        vec![]
    };
    let mut current: BTreeMap<u16, Option<i64>> = BTreeMap::new();
    for &a in &acds {
        let open = match target {
            Some(c) => open_interval(c, a)?,
            None => None,
        };
        current.insert(a, open);
    }
    let here = match target {
        Some(conn) => stored_copies(conn, &entries)?,
        None => BTreeMap::new(),
    };
    let mut rep = RestoreReport {
        file: opts.file.display().to_string(),
        source_server: header.server_id.clone(),
        categories: cats.names(),
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let todo = decide_all(&mut rd, grid, &entries, &current, &here, &mut rep)?;
    rep.plan_ranges = plan_ranges(grid, &rep.plan, &here, &entries);
    verify_planned(&mut rd, &entries, &todo, cats)?;
    tracing::debug!(
        "restore: {} intervals to write verified and planned after {:.3} s",
        todo.len(),
        started.elapsed().as_secs_f64()
    );
    let source_open = header
        .properties
        .iter()
        .find(|(k, _)| k == OPEN_INTERVALS)
        .map(|(_, v)| parse_open_intervals(v))
        .unwrap_or_default();
    Ok(Planned {
        rd,
        header,
        acds,
        cats,
        entries,
        todo,
        current,
        source_open,
        rep,
        started,
    })
}

/// The compatibility checks of a backup file: a schema this release reads, and this
/// server's interval length.
fn check_compatible(rd: &ArchiveReader<std::fs::File>, grid: &Grid, file: &Path) -> Result<()> {
    let header = rd.header();
    if header.schema_version as i64 > SCHEMA_VERSION {
        bail!(
            "{}: written by schema version {}, this release supports up to {}: upgrade this server first",
            file.display(),
            header.schema_version,
            SCHEMA_VERSION
        );
    }
    // One interval grid per pair: rows of another length would break this server's
    // grid (proto/backup-format.md, "Restoring").
    if let Some(e) = rd.manifest().iter().find(|e| e.intrvl != grid.minutes) {
        bail!(
            "{}: the backup has {}-minute intervals, this server is configured for {}-minute \
             intervals (interval_minutes): both servers of a pair must use the same length",
            file.display(),
            e.intrvl,
            grid.minutes
        );
    }
    Ok(())
}

/// The ACDs the restore is about: the ones asked for (every one of the backup's when
/// none), each held by the backup and configured here.
fn chosen_acds(header: &archive::Header, opts: &RestoreOptions) -> Result<Vec<u16>> {
    let file = &opts.file;
    let acds: Vec<u16> = if opts.sel.acds.is_empty() {
        header.acds.clone()
    } else {
        opts.sel.acds.clone()
    };
    for a in &acds {
        if !header.acds.contains(a) {
            bail!(
                "{}: the backup holds no data for ACD {a} (it has {:?})",
                file.display(),
                header.acds
            );
        }
        if !opts.configured_acds.contains(a) {
            bail!(
                "{}: the backup holds ACD {a}, which is not configured on this server \
                 (a backup from a different ACD set); choose ACDs with --acd",
                file.display()
            );
        }
    }
    Ok(acds)
}

/// The categories the restore takes: the ones asked for that the backup holds; local
/// data only when asked for explicitly, from this server, with collection off.
fn chosen_categories(header: &archive::Header, opts: &RestoreOptions) -> Result<Categories> {
    let file = &opts.file;
    let have = Categories::from_bits_truncate(header.categories);
    let cats = opts.sel.categories & (have | Categories::LOCAL);
    if !cats.contains(Categories::LOCAL) {
        return Ok(cats);
    }
    if !have.contains(Categories::LOCAL) {
        bail!(
            "{}: the backup holds no local system administration data",
            file.display()
        );
    }
    if !opts.include_local {
        bail!(
            "{}: restoring local system administration data needs --include-local",
            file.display()
        );
    }
    if header.server_id != opts.server_id {
        bail!(
            "{}: local data comes from server {:?}, this is {:?}: local data is only restored \
             onto the server it came from",
            file.display(),
            header.server_id,
            opts.server_id
        );
    }
    if opts.collection_running {
        bail!(
            "{}: local data can only be restored with collection off (stop the cms service first)",
            file.display()
        );
    }
    Ok(cats)
}

/// The target's copies of the intervals of `entries` (its status rows over the backup's
/// range, read once).
fn stored_copies(
    conn: &rusqlite::Connection,
    entries: &[ManifestEntry],
) -> rusqlite::Result<BTreeMap<(u16, i64), Copy>> {
    let mut here = BTreeMap::new();
    for (&acd, &(first, last)) in &entries_range(entries) {
        for (istart, s) in status::summaries(conn, acd, first, last)? {
            here.insert((acd, istart), stored_copy(s));
        }
    }
    Ok(here)
}

/// Decides every interval of `entries` (from the manifest alone, but for a conflict),
/// counting the decisions into `rep`; returns the indices of the intervals to write.
fn decide_all(
    rd: &mut ArchiveReader<std::fs::File>,
    grid: &Grid,
    entries: &[ManifestEntry],
    current: &BTreeMap<u16, Option<i64>>,
    here: &BTreeMap<(u16, i64), Copy>,
    rep: &mut RestoreReport,
) -> Result<Vec<usize>> {
    let mut todo = vec![];
    for (i, e) in entries.iter().enumerate() {
        let b = backup_copy(e);
        let t = here.get(&(e.acd, e.istart));
        let mut action = decide(e.istart, current[&e.acd], t, &b);
        if action == Action::Conflict {
            // The file's checksum is over the file's columns: a backup from a release with
            // other interval columns can hold the very rows stored here. Compare them as
            // this release stores them before calling it a conflict.
            let stored = rd.read_interval(e)?.checksum;
            let stored = blake3::Hash::from_bytes(stored).to_hex();
            if t.is_some_and(|t| t.checksum == stored.as_str()) {
                action = Action::Keep;
            }
        }
        let line = PlanLine {
            acd: e.acd,
            istart: e.istart,
            local: grid.local(e.istart).format("%Y-%m-%d %H:%M").to_string(),
            action,
            target: t.map(describe),
            backup: describe(&b),
        };
        match action {
            Action::Fill => rep.filled += 1,
            Action::Replace => rep.replaced += 1,
            Action::Improve => rep.improved += 1,
            Action::Keep => rep.kept += 1,
            Action::Conflict => rep.conflicts.push(line.clone()),
            Action::SkipCurrent => rep.skipped_current += 1,
        }
        if matches!(action, Action::Fill | Action::Replace | Action::Improve) {
            todo.push(i);
        }
        if action != Action::Keep {
            rep.plan.push(line);
        }
    }
    Ok(todo)
}

/// Verifies, before any write, every part of the file the restore will read: each
/// interval to write (its block checksum, and its rows against the manifest's row count
/// and content checksum: a manifest that lies about its data is refused here), and the
/// admin and local blocks. `cms verify` checks everything.
fn verify_planned(
    rd: &mut ArchiveReader<std::fs::File>,
    entries: &[ManifestEntry],
    todo: &[usize],
    cats: Categories,
) -> archive::Result<()> {
    let todo_entries: Vec<&ManifestEntry> = todo.iter().map(|&i| &entries[i]).collect();
    verify_intervals(rd, &todo_entries)?;
    rd.trust_checked_intervals();
    let check = |it: &mut dyn Iterator<Item = archive::Result<archive::Row>>| {
        for r in it {
            r?;
        }
        archive::Result::Ok(())
    };
    // (Summary blocks are covered by the whole-file hash checked at open; they are
    // streamed once, in `take_summaries`.)
    if cats.contains(Categories::ADMIN) {
        check(&mut rd.admin_rows())?;
    }
    if cats.contains(Categories::LOCAL) {
        check(&mut rd.local_rows())?;
    }
    Ok(())
}

/// The header property naming, per ACD, the interval the source was collecting when it
/// took the backup: `ACD:ISTART` pairs, comma-separated (proto/backup-format.md).
pub const OPEN_INTERVALS: &str = archive::OpenIntervals::KEY;

/// Parses an [`OPEN_INTERVALS`] value; pairs that do not parse are ignored (the days of
/// their ACD are then taken as over on the source, as for a file without the property).
pub fn parse_open_intervals(v: &str) -> BTreeMap<u16, i64> {
    archive::OpenIntervals::parse(v).0
}

/// Writes what `p` planned: intervals in short transactions, then summaries, admin and
/// local data, and the restore's record; reports what is still missing.
///
/// # Errors
/// A database write fails (the current transaction is rolled back; rerunning completes
/// the job).
pub fn apply(
    store: &mut Store,
    grid: &Grid,
    opts: &RestoreOptions,
    mut p: Planned,
    clock: Clock,
) -> Result<RestoreReport> {
    let mut rep = RestoreReport {
        file: p.rep.file.clone(),
        source_server: p.rep.source_server.clone(),
        categories: p.rep.categories.clone(),
        dry_run: false,
        conflicts: p.rep.conflicts.clone(),
        plan: p.rep.plan.clone(),
        plan_ranges: p.rep.plan_ranges.clone(),
        ..Default::default()
    };
    let log_id = start_log(store, &p.rep, clock)?;
    let touched_days = write_intervals(store, grid, opts, &mut p, &mut rep, clock)?;
    rep.kept += p.rep.kept;
    rep.skipped_current += p.rep.skipped_current;
    debug_after(&p, "intervals written");
    let stale = resummarize(store, grid, opts.week_start, &p, &touched_days)?;
    rep.days_resummarized = (touched_days.len() + stale) as u64;
    debug_after(&p, "days re-summarized");
    let mut summary_days = BTreeSet::new();
    if p.cats.contains(Categories::HISTORY) && summaries_needed(store, &p.header, &p.acds, grid)? {
        let (n, days) = take_summaries(store, &mut p.rd, &p.acds, grid, clock)?;
        rep.summary_rows_taken = n;
        summary_days = days;
    }
    debug_after(&p, "summaries taken");
    if p.cats.contains(Categories::ADMIN) {
        rep.admin_rows = replace_admin(store, &mut p.rd, &p.acds).with_context(|| {
            format!(
                "{}: replacing the ACD administration data",
                store.path.display()
            )
        })?;
    }
    if p.cats.contains(Categories::LOCAL) {
        rep.local_rows = replace_local(store, &mut p.rd)
            .with_context(|| format!("{}: replacing the local settings", store.path.display()))?;
    }
    finish_log(store, log_id, &rep, clock)?;
    report_gaps(store, grid, &opts.sel, &p, &mut rep)?;
    report_summary_only(store, grid, &p.entries, summary_days, &mut rep)?;
    store.match_owner_of_dir();
    rep.seconds = p.started.elapsed().as_secs_f64();
    Ok(rep)
}

fn debug_after(p: &Planned, what: &str) {
    tracing::debug!(
        "restore: {what} after {:.3} s",
        p.started.elapsed().as_secs_f64()
    );
}

/// The counts of a report, as the restore log records them.
fn counts(rep: &RestoreReport) -> store::merge::RestoreCounts {
    store::merge::RestoreCounts {
        filled: rep.filled,
        replaced: rep.replaced + rep.improved,
        kept: rep.kept,
        conflicts: rep.conflicts.len() as u64,
        skipped_current: rep.skipped_current,
    }
}

/// The record of this restore, written before its first interval: while it runs (or
/// if it is killed) the row says what it planned, `finished_at` 0; `cms gaps` and
/// `cms status` report a restore that did not finish from it
/// (`report::unfinished_restores`).
fn start_log(store: &Store, planned: &RestoreReport, clock: Clock) -> Result<i64> {
    store::merge::start_restore_log(
        &store.conn,
        clock(),
        (&planned.file, &planned.source_server, &planned.categories),
        &counts(planned),
    )
    .with_context(|| format!("{}: cannot record the restore", store.path.display()))
}

/// The record that the restore finished: its last commit, and the one made durable
/// (synchronous=FULL syncs the write-ahead log, and with it every earlier NORMAL commit
/// of the restore): a restore that has reported success survives a power cut (issue
/// #11, scenario 3 found the last transactions lost).
fn finish_log(store: &Store, log_id: i64, rep: &RestoreReport, clock: Clock) -> Result<()> {
    let conflict_list: Vec<serde_json::Value> = rep
        .conflicts
        .iter()
        .map(|c| serde_json::json!({"acd": c.acd, "istart": c.istart}))
        .collect();
    let conflict_list = serde_json::to_string(&conflict_list)?;
    store.set_synchronous("FULL")?;
    let finished = store::merge::finish_restore_log(
        &store.conn,
        log_id,
        clock(),
        &counts(rep),
        &conflict_list,
    )
    .with_context(|| format!("{}: cannot record the restore", store.path.display()));
    store.set_synchronous("NORMAL")?;
    finished
}

/// Writes the planned intervals in transactions kept under [`MAX_TX`] while a second
/// thread reads and decodes them; returns the days whose daily summaries were rebuilt
/// in the transaction of their last interval.
fn write_intervals(
    store: &Store,
    grid: &Grid,
    opts: &RestoreOptions,
    p: &mut Planned,
    rep: &mut RestoreReport,
    clock: Clock,
) -> Result<BTreeSet<(u16, chrono::NaiveDate)>> {
    let todo: Vec<&ManifestEntry> = p.todo.iter().map(|&i| &p.entries[i]).collect();
    let path = &store.path;
    let mut w = IntervalWriter {
        tx: ShortTx::new(&store.conn, MAX_TX, clock),
        inserts: insert_statements(&store.conn)
            .with_context(|| format!("{}: cannot prepare the inserts", path.display()))?,
        path,
        grid,
        source: format!("restored:{}", p.header.server_id),
        current: &p.current,
        source_open: &p.source_open,
        rep,
        touched_days: BTreeSet::new(),
        written: 0,
    };
    let rd = &mut p.rd;
    std::thread::scope(|scope| -> Result<()> {
        // A second thread reads and decodes the intervals, and sums each day's rows for
        // its daily summary, while this one writes them.
        let (sender, decoded) = std::sync::mpsc::sync_channel(2);
        let todo_list = &todo;
        scope.spawn(move || decode_and_sum(rd, todo_list, grid, sender));
        let bar = opts.progress.then(|| {
            let b = indicatif::ProgressBar::new(todo.len() as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} intervals {eta} left",
                )
                .expect("valid template"),
            );
            b
        });
        let mut todo_iter = todo.iter().copied();
        loop {
            let msg = decoded
                .recv()
                .map_err(|_| msg!("{}: the backup's reader stopped", opts.file.display()))?;
            match msg? {
                Decoded::Interval(data) => {
                    let e = todo_iter
                        .next()
                        .expect("one decoded interval per planned one");
                    w.interval(e, &data)?;
                    if let Some(b) = &bar {
                        b.inc(1);
                    }
                }
                Decoded::DayDone(day, mut sums) => w.day_done(day, &mut sums)?,
                Decoded::End => break,
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        Ok(())
    })?;
    w.tx.finish()
        .with_context(|| format!("{}: cannot commit", path.display()))?;
    Ok(w.touched_days)
}

/// The writing side of [`write_intervals`]: one planned interval at a time, each
/// re-decided inside its transaction against the target's state at that moment.
struct IntervalWriter<'a, 'c> {
    /// One time for everything a transaction writes (interval status rows and the daily
    /// summaries built from them): a day's summary is never older than its intervals,
    /// so the next restore finds nothing out of date; and no row is stamped earlier than
    /// its transaction began, so an incremental backup never misses it.
    tx: ShortTx<'c>,
    inserts: Vec<(RawStmt<'c>, RawStmt<'c>)>,
    path: &'a Path,
    grid: &'a Grid,
    /// `restored:<source server>`.
    source: String,
    current: &'a BTreeMap<u16, Option<i64>>,
    source_open: &'a BTreeMap<u16, i64>,
    rep: &'a mut RestoreReport,
    /// Days over whose intervals were written: their summaries are rebuilt.
    touched_days: BTreeSet<(u16, chrono::NaiveDate)>,
    /// Intervals of the day being restored written so far.
    written: u32,
}

impl IntervalWriter<'_, '_> {
    fn begin(&mut self) -> Result<i64> {
        self.tx
            .begin()
            .with_context(|| format!("{}: cannot start a write transaction", self.path.display()))
    }

    /// Writes the interval `e` unless the target's state now says otherwise (the
    /// collector may have moved on).
    fn interval(&mut self, e: &ManifestEntry, data: &archive::IntervalData) -> Result<()> {
        let now = self.begin()?;
        let conn = self.tx.conn();
        let cur = open_interval(conn, e.acd)?;
        let target = status::summary(conn, e.acd, e.istart)?.map(stored_copy);
        let action = decide(e.istart, cur, target.as_ref(), &backup_copy(e));
        match action {
            Action::Fill | Action::Replace | Action::Improve => {
                apply_interval(conn, &mut self.inserts, e, data, &self.source, now).with_context(
                    || {
                        format!(
                            "{}: restoring interval {} of ACD {}",
                            self.path.display(),
                            e.istart,
                            e.acd
                        )
                    },
                )?;
                match action {
                    Action::Fill => self.rep.filled += 1,
                    Action::Replace => self.rep.replaced += 1,
                    _ => self.rep.improved += 1,
                }
                let day = (e.acd, self.grid.local_date(e.istart));
                if day_over(self.grid, self.current, self.source_open, day.0, day.1) {
                    self.touched_days.insert(day);
                }
                self.written += 1;
            }
            Action::Keep => self.rep.kept += 1,
            Action::SkipCurrent => self.rep.skipped_current += 1,
            Action::Conflict => {}
        }
        self.tx
            .tick()
            .with_context(|| format!("{}: cannot commit", self.path.display()))
    }

    /// Every planned interval of `day` was handed over: its daily summary, in the
    /// transaction of its last interval. The sums hold every interval of the day this
    /// restore planned; one not written after all (the collector got there first) no
    /// longer has the checksum they were taken with, so `summarize_day` reads the day
    /// from the database instead.
    fn day_done(
        &mut self,
        (acd, date): (u16, chrono::NaiveDate),
        sums: &mut summary::DaySums,
    ) -> Result<()> {
        if self.written > 0 && day_over(self.grid, self.current, self.source_open, acd, date) {
            let now = self.begin()?;
            summary::summarize_day(self.tx.conn(), acd, self.grid, date, sums, now).with_context(
                || format!("{}: summarizing {date} of ACD {acd}", self.path.display()),
            )?;
        }
        self.written = 0;
        Ok(())
    }
}

/// Rebuilds the summaries of the days the restore changed (weeks and months), and of
/// days in the backup's range whose summaries are older than their data (a restore
/// killed between writing a day's last interval and summarizing it, or between a day
/// and its week or month); returns how many of the latter it rebuilt. Days not over get
/// none.
fn resummarize(
    store: &mut Store,
    grid: &Grid,
    week_start: chrono::Weekday,
    p: &Planned,
    touched_days: &BTreeSet<(u16, chrono::NaiveDate)>,
) -> Result<usize> {
    let mut repaired = 0;
    if p.cats.contains(Categories::HISTORY) {
        let stale =
            summary::stale_days(store, grid, week_start, &p.acds, &entries_range(&p.entries))?;
        let repair: BTreeSet<_> = stale
            .difference(touched_days)
            .filter(|(acd, d)| day_over(grid, &p.current, &p.source_open, *acd, *d))
            .copied()
            .collect();
        if !repair.is_empty() {
            tracing::info!("rebuilding {} out-of-date daily summaries", repair.len());
            // (`build_days` rolls up their weeks and months too.)
            summary::build_days(store, grid, week_start, BTreeMap::new(), &repair)?;
            repaired = repair.len();
        }
    }
    summary::rollup_periods(store, week_start, touched_days)?;
    Ok(repaired)
}

/// What is still missing here after the restore, per ACD over the backup's range (and
/// the selection's), and which of it the source cannot give back (before the backup's
/// first interval).
fn report_gaps(
    store: &Store,
    grid: &Grid,
    sel: &Selection,
    p: &Planned,
    rep: &mut RestoreReport,
) -> Result<()> {
    let (lo, hi) = sel.utc_range();
    for &a in &p.acds {
        let of_acd = || p.entries.iter().filter(move |e| e.acd == a);
        let first_backup = of_acd().map(|e| e.istart).min();
        let first_here = status::first_istart(&store.conn, a)?;
        let end = p.current[&a].or_else(|| of_acd().map(|e| grid.next(e.istart)).max());
        let start = [first_backup, first_here, (lo != i64::MIN).then_some(lo)]
            .into_iter()
            .flatten()
            .min();
        let (Some(s), Some(end)) = (start, end) else {
            continue;
        };
        let end = if hi == i64::MAX { end } else { end.min(hi) };
        let gaps =
            report::gaps(&store.conn, grid, a, s, end).map_err(|e| Error::Other(e.into()))?;
        for g in gaps {
            if g.kind == GapKind::Restored {
                continue;
            }
            if first_backup.is_none_or(|fb| g.to <= fb) {
                rep.source_lacks.push(g.clone());
            }
            rep.still_missing.push(g);
        }
    }
    Ok(())
}

/// Days the source holds only as summaries (its intrahour retention dropped their
/// intervals) and this server has no complete intervals for: their intervals are lost
/// for good as far as this backup goes (the Cisco pitfall: different retention).
fn report_summary_only(
    store: &Store,
    grid: &Grid,
    entries: &[ManifestEntry],
    summary_days: BTreeSet<(u16, chrono::NaiveDate)>,
    rep: &mut RestoreReport,
) -> Result<()> {
    for (acd, day) in summary_days {
        let from = grid.day_start(day);
        let to = grid.day_start(day.succ_opt().expect("date in range"));
        if entries
            .iter()
            .any(|e| e.acd == acd && e.istart >= from && e.istart < to)
        {
            continue;
        }
        let complete = status::complete_count(&store.conn, acd, from, to)?;
        let n = grid.intervals_in_day(day);
        if complete < n {
            rep.source_lacks.push(GapRange {
                acd,
                from,
                to,
                from_local: grid.local(from).format("%Y-%m-%d %H:%M %Z").to_string(),
                to_local: grid.local(to).format("%Y-%m-%d %H:%M %Z").to_string(),
                intervals: (n - complete) as u32,
                kind: GapKind::SummaryOnly,
                reasons: "the source kept only the daily summary (intrahour retention)".into(),
            });
        }
    }
    Ok(())
}

/// Per ACD, the first and last interval start of `entries`.
fn entries_range(entries: &[ManifestEntry]) -> BTreeMap<u16, (i64, i64)> {
    let mut r: BTreeMap<u16, (i64, i64)> = BTreeMap::new();
    for e in entries {
        let x = r.entry(e.acd).or_insert((e.istart, e.istart));
        x.0 = x.0.min(e.istart);
        x.1 = x.1.max(e.istart);
    }
    r
}

/// What the decoding thread of a restore hands the writing one, in order.
enum Decoded {
    /// The next interval of the plan.
    Interval(archive::IntervalData),
    /// Every interval of this day in the plan has been handed over: the sums of their
    /// rows.
    DayDone((u16, chrono::NaiveDate), summary::DaySums),
    End,
}

/// Reads the planned intervals in order and sends them, each day followed by the sums
/// of its intervals' rows; stops at the first error (sent) or when the writer is gone.
fn decode_and_sum(
    rd: &mut ArchiveReader<std::fs::File>,
    todo: &[&ManifestEntry],
    grid: &Grid,
    out: std::sync::mpsc::SyncSender<Result<Decoded>>,
) {
    let mut day: Option<((u16, chrono::NaiveDate), summary::DaySums)> = None;
    let mut run = || -> Result<bool> {
        for e in todo {
            let data = rd.read_interval(e)?;
            let key = (e.acd, grid.local_date(e.istart));
            if day.as_ref().is_some_and(|d| d.0 != key) {
                let (k, sums) = day.take().expect("checked");
                if out.send(Ok(Decoded::DayDone(k, sums))).is_err() {
                    return Ok(false);
                }
            }
            let sums = &mut day.get_or_insert_with(|| (key, Default::default())).1;
            let tables: Vec<&[Vec<i64>]> = TABLES
                .iter()
                .map(|t| {
                    data.table(&t.interval_table())
                        .map_or(&[][..], |r| &r.rows[..])
                })
                .collect();
            let sum = blake3::Hash::from_bytes(data.checksum).to_hex().to_string();
            sums.add_interval(e.istart, sum, &tables)?;
            if out.send(Ok(Decoded::Interval(data))).is_err() {
                return Ok(false);
            }
        }
        if let Some((k, sums)) = day.take() {
            if out.send(Ok(Decoded::DayDone(k, sums))).is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    };
    match run() {
        Ok(true) => {
            let _ = out.send(Ok(Decoded::End));
        }
        Ok(false) => {}
        Err(e) => {
            let _ = out.send(Err(e));
        }
    }
}

/// Checks every interval of `todo` in the file (block and content checksums, rows
/// against the manifest) before anything is written; large restores split the work
/// between this thread and a second handle on the file.
fn verify_intervals(
    rd: &mut ArchiveReader<std::fs::File>,
    todo: &[&ManifestEntry],
) -> archive::Result<()> {
    if todo.len() < 64 {
        return todo.iter().try_for_each(|e| rd.check_interval(e));
    }
    let mut other = rd.reopen()?;
    // Whole blocks to each side, so each block is decompressed once.
    let (mine, theirs): (Vec<&ManifestEntry>, Vec<&ManifestEntry>) =
        todo.iter().partition(|e| e.block % 2 == 0);
    std::thread::scope(|s| {
        let t = s.spawn(move || theirs.iter().try_for_each(|e| other.check_interval(e)));
        let a = mine.iter().try_for_each(|e| rd.check_interval(e));
        let b = t.join().expect("verification thread panicked");
        a.and(b)
    })
}

/// Replaces one interval's rows and status with the backup's, inside `tx`, with the
/// insert statements of [`insert_statements`]. The rows were checked against the entry's
/// row count and content checksum when they were read from the file, so the status row
/// takes the rows' count and the checksum the reader gives for them (the entry's, unless
/// the file's columns differ from this release's).
fn apply_interval<'c>(
    tx: &rusqlite::Connection,
    inserts: &mut [(RawStmt<'c>, RawStmt<'c>)],
    e: &ManifestEntry,
    data: &archive::IntervalData,
    source: &str,
    now: i64,
) -> Result<()> {
    for (t, ins) in TABLES.iter().zip(inserts.iter_mut()) {
        let table = t.interval_table();
        store::merge::delete_interval_rows(tx, &table, e.acd, e.istart)?;
        let Some(rows) = data.table(&table) else {
            continue;
        };
        if rows.rows.is_empty() {
            continue;
        }
        // Parameters per row: acd, keys..., istart, row_date, starttime, intrvl, items...;
        // the interval's own values are bound once per statement, they stay bound from
        // run to run.
        let nk = t.keys.len();
        let per_row = 5 + nk + t.items.len();
        let (one, many) = ins;
        for (stmt, slots) in [(&mut *one, 1), (&mut *many, ROWS_PER_INSERT)] {
            let stmt: &mut RawStmt<'c> = stmt;
            for k in 0..slots {
                let at = k * per_row;
                stmt.bind_i64(at + 2 + nk, e.istart)?;
                stmt.bind_text(at + 3 + nk, &e.row_date)?;
                stmt.bind_i64(at + 4 + nk, e.starttime as i64)?;
                stmt.bind_i64(at + 5 + nk, e.intrvl as i64)?;
            }
        }
        let bind_row = |stmt: &mut RawStmt<'c>, at: usize, r: &[i64]| -> rusqlite::Result<()> {
            // Rows come as acd, keys..., istart, items... (this release's column order).
            for (i, v) in r[..1 + nk].iter().enumerate() {
                stmt.bind_i64(at + 1 + i, *v)?;
            }
            for (i, v) in r[2 + nk..].iter().enumerate() {
                stmt.bind_i64(at + 6 + nk + i, *v)?;
            }
            Ok(())
        };
        let mut chunks = rows.rows.chunks_exact(ROWS_PER_INSERT);
        for chunk in &mut chunks {
            for (k, r) in chunk.iter().enumerate() {
                bind_row(many, k * per_row, r)?;
            }
            many.execute()?;
        }
        for r in chunks.remainder() {
            bind_row(one, 0, r)?;
            one.execute()?;
        }
    }
    let checksum = blake3::Hash::from_bytes(data.checksum).to_hex();
    status::upsert(
        tx,
        &status::StatusRow {
            acd: e.acd,
            istart: e.istart,
            intrvl: e.intrvl,
            row_date: &e.row_date,
            starttime: e.starttime as i64,
            status: e.status,
            reasons: &e.reasons,
            epoch: e.epoch,
            first_seq: e.first_seq,
            last_seq: e.last_seq,
            source,
            row_count: data.tables.iter().map(|t| t.rows.len() as i64).sum(),
            checksum: checksum.as_str(),
            updated_at: now,
        },
    )?;
    Ok(())
}

/// The insert statements of every interval table, in `TABLES` order: one row, and
/// [`ROWS_PER_INSERT`] rows at once (SQLite runs its statement setup once for all).
fn insert_statements(
    conn: &rusqlite::Connection,
) -> rusqlite::Result<Vec<(RawStmt<'_>, RawStmt<'_>)>> {
    TABLES
        .iter()
        .map(|t| {
            let table = t.interval_table();
            Ok((
                RawStmt::new(conn, &insert_sql(&table, t))?,
                RawStmt::new(conn, &insert_rows_sql(&table, t, ROWS_PER_INSERT))?,
            ))
        })
        .collect()
}

/// Rows inserted by one statement in a restore.
const ROWS_PER_INSERT: usize = 16;

/// Whether the backup's summary rows can matter here: unless the backup says which days
/// its daily summaries cover (`summary_days` header property) and every one of those
/// days is complete on this server, they must be read.
fn summaries_needed(
    store: &Store,
    header: &archive::Header,
    acds: &[u16],
    grid: &Grid,
) -> Result<bool> {
    let Some(range) = header.property(archive::SummaryDays::KEY) else {
        return Ok(true);
    };
    let days = match archive::SummaryDays::parse(range) {
        Ok(Some(days)) => days,
        Ok(None) => return Ok(false),
        Err(_) => return Ok(true),
    };
    for d in days.days() {
        let from = grid.day_start(d);
        let to = grid.day_start(d.succ_opt().expect("date in range"));
        for &acd in acds {
            if status::complete_count(&store.conn, acd, from, to)? < grid.intervals_in_day(d) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Takes the backup's summary rows for periods this server has no intervals for;
/// returns how many rows it took and the days the backup has daily summaries for.
/// Streamed row by row (bounded memory), in write transactions of at most [`MAX_TX`].
fn take_summaries(
    store: &mut Store,
    rd: &mut ArchiveReader<std::fs::File>,
    acds: &[u16],
    grid: &Grid,
    clock: Clock,
) -> Result<(u64, BTreeSet<(u16, chrono::NaiveDate)>)> {
    let mut days = BTreeSet::new();
    let mut has_intervals: BTreeMap<(u16, chrono::NaiveDate), bool> = BTreeMap::new();
    let mut tx = ShortTx::new(&store.conn, MAX_TX, clock);
    let mut n = 0;
    let mut take = || -> Result<()> {
        for r in rd.summary_rows() {
            let r = r?;
            let Some((period, t, acd, d, vals)) = summary_row(&r, acds) else {
                continue;
            };
            let daily = period == PeriodKind::Day;
            if daily {
                days.insert((acd, d));
            }
            tx.begin()?;
            // Only for periods this server has no intervals for.
            let here = match has_intervals.get(&(acd, d)) {
                Some(h) => *h,
                None => {
                    let next = d + chrono::Duration::days(1);
                    let h =
                        status::any_in(tx.conn(), acd, grid.day_start(d), grid.day_start(next))?;
                    has_intervals.insert((acd, d), h);
                    h
                }
            };
            if !(here && daily) {
                let date = d.format("%Y-%m-%d").to_string();
                n += store::merge::insert_summary_row(tx.conn(), &r.table, t, &date, &vals)? as u64;
            }
            tx.tick()?;
        }
        Ok(())
    };
    take()
        .and_then(|()| Ok(tx.finish()?))
        .with_context(|| format!("{}: taking summaries from the backup", store.path.display()))?;
    Ok((n, days))
}

/// A summary row of the backup, if it is one of this release's tables and of `acds`:
/// its period, table family, ACD, date and values.
fn summary_row(
    r: &archive::Row,
    acds: &[u16],
) -> Option<(
    PeriodKind,
    &'static crate::items::TableDef,
    u16,
    chrono::NaiveDate,
    Vec<i64>,
)> {
    let vals = r.ints()?;
    let (period, family) = PeriodKind::of_table(&r.table)?;
    let t = TABLES.iter().find(|t| t.name == family)?;
    let acd = *vals.first()? as u16;
    if !acds.contains(&acd) {
        return None;
    }
    let v = *vals.get(1 + t.keys.len())?;
    let d = chrono::NaiveDate::from_ymd_opt(
        (v / 10_000) as i32,
        ((v / 100) % 100) as u32,
        (v % 100) as u32,
    )?;
    Some((period, t, acd, d, vals))
}

fn sql_value(v: &Value) -> SqlValue {
    match v {
        Value::Int(i) => SqlValue::Integer(*i),
        Value::Text(s) => SqlValue::Text(s.clone()),
    }
}

/// ACD administration data is replaced, as in the classic product.
fn replace_admin(
    store: &mut Store,
    rd: &mut ArchiveReader<std::fs::File>,
    acds: &[u16],
) -> Result<u64> {
    let rows: Vec<(String, Vec<SqlValue>)> = rd
        .admin_rows()
        .map(|r| r.map(|r| (r.table, r.values.iter().map(sql_value).collect())))
        .collect::<std::result::Result<_, archive::ArchiveError>>()?;
    Ok(store::merge::replace_admin(&mut store.conn, acds, &rows)?)
}

/// Local settings are replaced (only onto the server they came from: see
/// [`chosen_categories`]).
fn replace_local(store: &mut Store, rd: &mut ArchiveReader<std::fs::File>) -> Result<u64> {
    let rows: Vec<(SqlValue, SqlValue)> = rd
        .local_rows()
        .filter_map(|r| match r {
            Ok(r) if r.table == "local_settings" && r.values.len() == 2 => {
                Some(Ok((sql_value(&r.values[0]), sql_value(&r.values[1]))))
            }
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<std::result::Result<_, archive::ArchiveError>>()?;
    Ok(store::merge::replace_local(&mut store.conn, &rows)?)
}

impl RestoreReport {
    pub fn render(&self) -> String {
        let n = |c: u64, w: &str| report::plural(c, w);
        let mut o = String::new();
        if self.dry_run {
            o += &format!("plan for {} (dry run: nothing written)\n", self.file);
            for r in &self.plan_ranges {
                o += &format!(
                    "  ACD {} {} .. {}  {:>4}  {:<12} here: {}  backup: {}\n",
                    r.acd,
                    r.from_local,
                    r.to_local,
                    n(r.intervals, "interval"),
                    action_word(r.action),
                    r.here,
                    r.backup
                );
            }
        }
        o += &format!(
            "restore from {} (server {}, {}): {} filled, {} replaced, {} improved, {} kept, {} conflicting, {} skipped as current\n",
            self.file,
            self.source_server,
            self.categories,
            self.filled,
            self.replaced,
            self.improved,
            self.kept,
            self.conflicts.len(),
            self.skipped_current
        );
        if !self.dry_run {
            o += &format!(
                "  {} re-summarized, {} taken from the backup, {}, {}, {:.2} s\n",
                n(self.days_resummarized, "day"),
                n(self.summary_rows_taken, "summary row"),
                n(self.admin_rows, "admin row"),
                n(self.local_rows, "local row"),
                self.seconds
            );
        }
        for c in &self.conflicts {
            o += &format!(
                "  CONFLICT ACD {} {}: both complete and different (here {}, backup {}); nothing written — compare the two servers for this interval\n",
                c.acd,
                c.local,
                c.target.as_deref().unwrap_or("-"),
                c.backup
            );
        }
        if !self.dry_run {
            if self.still_missing.is_empty() {
                o += "  nothing is missing or incomplete any more\n";
            } else {
                o += "  still missing or incomplete after the restore:\n";
                for g in &self.still_missing {
                    o += &format!(
                        "    ACD {} {} .. {}  {} {} {}\n",
                        g.acd,
                        g.from_local,
                        g.to_local,
                        n(u64::from(g.intervals), "interval"),
                        g.kind,
                        g.reasons
                    );
                }
            }
            for g in &self.source_lacks {
                o += &format!(
                    "  WARNING: server {} no longer has the intervals of ACD {} {} .. {} ({}{}): lost for good unless an older backup holds them\n",
                    self.source_server,
                    g.acd,
                    g.from_local,
                    g.to_local,
                    n(u64::from(g.intervals), "interval"),
                    if g.kind == GapKind::SummaryOnly {
                        ", only its daily summary was restored"
                    } else {
                        ""
                    }
                );
            }
        }
        o
    }
}

/// The word of the plan for an action (`cms restore --dry-run`, docs/operations.md).
fn action_word(a: Action) -> &'static str {
    match a {
        Action::Fill => "fill",
        Action::Replace => "replace",
        Action::Improve => "improve",
        Action::Keep => "keep",
        Action::Conflict => "conflict",
        Action::SkipCurrent => "skip current",
    }
}

/// Consecutive intervals of the plan with the same action on copies in the same states,
/// grouped as `cms gaps` groups its ranges.
fn plan_ranges(
    grid: &Grid,
    plan: &[PlanLine],
    here: &BTreeMap<(u16, i64), Copy>,
    entries: &[ManifestEntry],
) -> Vec<PlanRange> {
    let state = |c: Option<&Copy>| match c {
        None => GapKind::Missing.as_str(),
        Some(c) => IntervalStatus::of(c.complete).as_str(),
    };
    let complete: BTreeMap<(u16, i64), IntervalStatus> = entries
        .iter()
        .map(|e| ((e.acd, e.istart), e.status))
        .collect();
    let mut out: Vec<PlanRange> = vec![];
    for l in plan {
        let h = state(here.get(&(l.acd, l.istart)));
        let b = complete
            .get(&(l.acd, l.istart))
            .copied()
            .unwrap_or(IntervalStatus::Incomplete)
            .as_str();
        let end = grid.next(l.istart);
        match out.last_mut() {
            Some(r)
                if r.acd == l.acd
                    && r.to == l.istart
                    && r.action == l.action
                    && r.here == h
                    && r.backup == b =>
            {
                r.to = end;
                r.to_local = grid.local(end).format("%Y-%m-%d %H:%M").to_string();
                r.intervals += 1;
            }
            _ => out.push(PlanRange {
                acd: l.acd,
                from: l.istart,
                to: end,
                from_local: l.local.clone(),
                to_local: grid.local(end).format("%Y-%m-%d %H:%M").to_string(),
                intervals: 1,
                action: l.action,
                here: h,
                backup: b,
            }),
        }
    }
    out
}
