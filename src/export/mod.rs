//! `cms export`: the intervals that became complete or changed since a target's previous
//! export, written as files (docs/exports.md) or into a PostgreSQL warehouse shared by
//! many server pairs (docs/warehouse.md).
//!
//! [`track`] knows which intervals changed (triggers on `interval_status`) and what each
//! target was sent; [`files`] writes the generic CSV layout and the Calabrio queue file;
//! [`warehouse`] feeds PostgreSQL, over TLS when [`tls`] says so. This module ties them to a database and a
//! configuration. It does not decide what an interval holds (that is `agg`, `merge`) and
//! never writes interval data: the only writes are the export's own bookkeeping.

pub mod files;
pub mod tls;
pub mod track;
pub mod warehouse;

use crate::config::Config;
use crate::items::TABLES;
use crate::store::raw::RawStmt;
use crate::store::Store;
use serde::Serialize;
use std::path::PathBuf;
use thiserror::Error;
pub use track::{Change, Interval};

#[derive(Debug, Error)]
pub enum ExportError {
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The warehouse refused or failed; `target` names it without its password.
    #[error("warehouse {target}: {what}")]
    Warehouse { target: String, what: String },
    #[error("{0}")]
    Usage(String),
}

/// The file layouts `cms export --out` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The generic CSV layout: one file per table family and an interval list, with a
    /// header row (docs/exports.md).
    Generic,
    /// Calabrio WFM's queue data import file (headerless, `;`), one per ACD.
    Calabrio,
}

/// What one export did, per target.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `files:<directory>` or `warehouse:<site>@<host>/<database>`.
    pub target: String,
    /// Intervals exported: first time, and again after a change.
    pub new: usize,
    pub corrections: usize,
    /// Interval rows exported (all tables).
    pub rows: u64,
    /// Files written (file targets).
    pub files: Vec<PathBuf>,
    /// Intervals complete in the warehouse with another content than this server's
    /// (recorded in its `cms_conflict` table, never overwritten).
    pub conflicts: u64,
    /// The target's change position after this export.
    pub position: i64,
    pub seconds: f64,
}

impl Report {
    /// A report of nothing exported yet to `target`, which stands at `position`.
    pub fn empty(target: &str, position: i64) -> Report {
        Report {
            target: target.to_string(),
            new: 0,
            corrections: 0,
            rows: 0,
            files: vec![],
            conflicts: 0,
            position,
            seconds: 0.0,
        }
    }

    pub fn render(&self) -> String {
        let mut s = format!(
            "{}: {} new and {} corrected intervals, {} rows in {:.2} s (position {})\n",
            self.target, self.new, self.corrections, self.rows, self.seconds, self.position
        );
        for f in &self.files {
            s.push_str(&format!("  {}\n", f.display()));
        }
        if self.conflicts > 0 {
            s.push_str(&format!(
                "  {} intervals are complete in the warehouse with other contents: see cms_conflict\n",
                self.conflicts
            ));
        }
        s
    }
}

/// Reads an interval's rows, per table family, as flat `keys..., items...` integers.
pub struct RowReader<'c> {
    stmts: Vec<RawStmt<'c>>,
}

impl<'c> RowReader<'c> {
    /// # Errors
    /// A database error.
    pub fn new(conn: &'c rusqlite::Connection) -> rusqlite::Result<Self> {
        Ok(RowReader {
            stmts: crate::store::interval_row_readers(conn)?,
        })
    }
    /// Appends the rows of family `fam` (`TABLES` index) of one interval to `out`;
    /// returns how many.
    ///
    /// # Errors
    /// A database error.
    pub fn read(
        &mut self,
        fam: usize,
        acd: u16,
        istart: i64,
        out: &mut Vec<i64>,
    ) -> rusqlite::Result<usize> {
        self.stmts[fam].append_rows(&[i64::from(acd), istart], out)
    }
}

/// Width of a family's flat row: keys then items.
pub fn width(fam: usize) -> usize {
    TABLES[fam].keys.len() + TABLES[fam].items.len()
}

/// Opens the database for an export: it must exist (an export never creates one).
///
/// # Errors
/// No database there, or it cannot be opened.
pub fn open(cfg: &Config) -> Result<Store, ExportError> {
    let path = cfg.db_path();
    // Refuses a missing or half-created database with the store's own message.
    drop(Store::open_read_only(&path)?);
    Ok(Store::open(&path)?)
}

pub(crate) fn sql(path: &std::path::Path) -> impl Fn(rusqlite::Error) -> ExportError + '_ {
    move |source| ExportError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A second, read-only connection inside a read transaction: the export reads its list
/// and every row from this one state of the database (a restore committing meanwhile is
/// exported next time), while its bookkeeping is written through `store`. The tracking
/// is set up first.
///
/// # Errors
/// A database error.
pub fn snapshot(store: &Store) -> Result<Store, ExportError> {
    let e = sql(&store.path);
    track::ensure(&store.conn).map_err(&e)?;
    let snap = Store::open_read_only(&store.path)?;
    snap.conn.execute_batch("BEGIN").map_err(&e)?;
    Ok(snap)
}

/// The intervals `target` has to export, read in `snap` ([`snapshot`]).
///
/// # Errors
/// A database error.
pub fn pending(snap: &Store, target: &str, acds: &[u16]) -> Result<track::Pending, ExportError> {
    track::pending(&snap.conn, target, acds).map_err(sql(&snap.path))
}

/// `cms export`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write files into this directory (created if missing).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// File layouts to write with --out (repeatable or comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "generic")]
    pub format: Vec<Format>,
    /// Feed this PostgreSQL warehouse (postgres://user@host:port/database; default
    /// $CMS_WAREHOUSE_URL when --site is given). Plaintext unless the URL ends in
    /// ?sslmode=require or --warehouse-ca is given: see docs/warehouse.md, "TLS".
    #[arg(long)]
    pub warehouse: Option<String>,
    /// Connect to the warehouse over TLS only, and trust its certificate only if this PEM
    /// file (a private CA, or the server's self-signed certificate) signed it. With
    /// sslmode=require and no --warehouse-ca, the system's root store is the trust. The
    /// certificate must also name the URL's host; an unverified TLS connection is never
    /// made (stricter than libpq's sslmode=require).
    #[arg(long, value_name = "FILE")]
    pub warehouse_ca: Option<PathBuf>,
    /// This pair's site name in the warehouse: the same on both servers of a pair,
    /// different for every pair.
    #[arg(long)]
    pub site: Option<String>,
    /// Rows per warehouse batch (one transaction each).
    #[arg(long, default_value_t = warehouse::BATCH_ROWS)]
    pub batch_rows: usize,
    /// Only this ACD (repeatable); default: every ACD.
    #[arg(long)]
    pub acd: Vec<u16>,
    /// Machine-readable JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `cms export`: the file target and the warehouse target, each as asked.
///
/// # Errors
/// Neither target asked for, a bad argument, or a target's failure (earlier targets
/// stay exported).
pub fn run(cfg: &Config, a: &Args) -> Result<Vec<Report>, ExportError> {
    let url = a
        .warehouse
        .clone()
        .or_else(|| {
            a.site
                .as_ref()
                .and_then(|_| std::env::var("CMS_WAREHOUSE_URL").ok())
        })
        .filter(|u| !u.is_empty());
    if a.out.is_none() && url.is_none() {
        return Err(ExportError::Usage(
            "cms export: say where to: --out DIR, or --warehouse URL --site NAME".into(),
        ));
    }
    if url.is_none() && a.warehouse_ca.is_some() {
        return Err(ExportError::Usage(
            "cms export --warehouse-ca: only with --warehouse URL (or $CMS_WAREHOUSE_URL) and --site NAME"
                .into(),
        ));
    }
    if url.is_some() && a.site.is_none() {
        return Err(ExportError::Usage(
            "cms export --warehouse: --site NAME is required (the same on both servers of a pair)"
                .into(),
        ));
    }
    let store = open(cfg)?;
    let mut reports = Vec::new();
    if let Some(dir) = &a.out {
        reports.push(files::export(cfg, &store, dir, &a.format, &a.acd)?);
    }
    if let (Some(url), Some(site)) = (&url, &a.site) {
        reports.push(warehouse::export(
            cfg,
            &store,
            &warehouse::Options {
                url,
                site,
                acds: &a.acd,
                batch_rows: a.batch_rows,
                ca: a.warehouse_ca.as_deref(),
            },
        )?);
    }
    Ok(reports)
}
