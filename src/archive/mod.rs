//! The maintenance backup file format (`*.cmsbak`): writer, reader and verification.
//!
//! Owns the byte layout specified in `proto/backup-format.md` (issue #4): a header that
//! describes the file (format and schema version, source server, ACDs, covered range, data
//! categories and the column names of every table), zstd-compressed and blake3-checksummed
//! data blocks holding whole intervals, a manifest after the data, and a fixed-size trailer
//! with the manifest's position, the file hash and, with a site key, a MAC.
//!
//! It does not touch the database: `cms backup` feeds an [`ArchiveWriter`] from a read
//! snapshot and `cms restore` plans from [`ArchiveReader::manifest`] and applies what
//! [`ArchiveReader::read_interval`] returns. Deciding *what* to back up or restore (the
//! merge rules of DOMAIN.md, "The contract") is not this module's business either.
//!
//! The header properties `cms backup` writes (`summary_days`, `open_intervals`) each have
//! one owner here, with their encoding and parse side by side ([`SummaryDays`],
//! [`OpenIntervals`]).
//!
//! Both directions stream with bounded memory: the writer holds at most about one block
//! (`BLOCK_TARGET_RAW`, or one interval if that is larger) plus the compressed manifest;
//! the reader decodes one block at a time.

mod codec;
#[doc(hidden)]
pub mod forge;
mod props;
mod reader;
mod schema;
mod writer;

pub use props::{OpenIntervals, PropertyError, SummaryDays};

pub use reader::{
    spool_verified, ArchiveReader, BlockInfo, IntervalData, MacCheck, Row, RowIter, TableRows,
    VerifyReport, VerifySummary,
};
pub use schema::{release_tables, Column, ColumnType, TableKind, TableSchema};
pub use writer::{ArchiveSummary, ArchiveWriter};

use std::path::PathBuf;
use thiserror::Error;

/// First 8 bytes of every backup file. The high-bit first byte and the trailing newline
/// catch 7-bit and newline-translating transfers, as PNG's signature does.
pub const MAGIC: [u8; 8] = *b"\x89CMSBAK\n";
/// First 8 bytes of the trailer (the last [`TRAILER_LEN`] bytes of the file).
pub const TRAILER_MAGIC: [u8; 8] = *b"CMSBKEND";
/// The format version this release writes, and the newest it reads.
pub const FORMAT_VERSION: u16 = 2;
/// The oldest format version this release reads (every version ever shipped).
pub const OLDEST_FORMAT_VERSION: u16 = 1;
/// Length of the fixed prefix: magic, version, flags, header length.
pub const PREFIX_LEN: usize = 16;
/// Length of a block header.
pub const BLOCK_HEADER_LEN: usize = 48;
/// Length of the trailer.
pub const TRAILER_LEN: usize = 176;
/// A data block is closed once its uncompressed content reaches this size (an interval is
/// never split, so a block can exceed it by up to one interval).
pub const BLOCK_TARGET_RAW: usize = 1 << 20;
/// zstd level for blocks and the manifest.
pub const ZSTD_LEVEL: i32 = 1;

/// Limits: every length or count read from a file is checked against one of these before
/// anything is allocated (`proto/backup-format.md`, "Limits").
pub mod limits {
    /// Header body length.
    pub const MAX_HEADER_LEN: u32 = 1 << 20;
    /// Uncompressed length of one data block (so also of one interval).
    pub const MAX_BLOCK_RAW: u32 = 64 << 20;
    /// Stored (compressed) length of one block: zstd never expands by more than a little.
    pub const MAX_BLOCK_STORED: u32 = MAX_BLOCK_RAW + (MAX_BLOCK_RAW >> 7) + (1 << 16);
    /// Uncompressed length of the manifest (about 100 bytes per interval: the classic
    /// maxima, 8 ACDs x 370 days x 96 intervals, need about 30 MB).
    pub const MAX_MANIFEST_RAW: u32 = 256 << 20;
    /// One manifest record body.
    pub const MAX_RECORD_LEN: u32 = 1 << 20;
    /// One string (names, reasons, settings).
    pub const MAX_STRING: u32 = 1 << 20;
    /// Tables in the header's directory.
    pub const MAX_TABLES: u16 = 256;
    /// Columns of one table.
    pub const MAX_COLUMNS: u16 = 1024;
    /// ACDs listed in the header.
    pub const MAX_ACDS: u16 = 4096;
    /// Header properties.
    pub const MAX_PROPERTIES: u16 = 1024;
    /// Rows of one table section.
    pub const MAX_SECTION_ROWS: u32 = 16 << 20;
    /// Blocks in one file.
    pub const MAX_BLOCKS: u32 = 1 << 24;
}

/// Data categories (DOMAIN.md, "Maintenance backup"), a bit set in the header.
pub mod category {
    /// Interval (`h*`) and summary (`d*`, `w*`, `m*`) tables.
    pub const HISTORY: u8 = 1;
    /// ACD administration: `skill_def`, `vdn_def`, `tkgrp_def`.
    pub const ADMIN: u8 = 2;
    /// Local system administration: `local_settings`. Restoring it elsewhere loses data.
    pub const LOCAL: u8 = 4;
    /// Every category this version knows.
    pub const ALL: u8 = HISTORY | ADMIN | LOCAL;
}

/// What the header says about the file. Everything but the table directory, which the
/// writer fills in from [`release_tables`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Database schema version of the server that wrote the file (`store::SCHEMA_VERSION`).
    pub schema_version: u32,
    /// When the backup was taken, UTC seconds.
    pub created_at: i64,
    /// The `server_id` of the source server, so a restore can record `restored:<id>` and
    /// refuse local data from another server.
    pub server_id: String,
    /// The ACDs the backup covers.
    pub acds: Vec<u16>,
    /// Covered range `[range_start, range_end)` in UTC seconds: every interval of the
    /// manifest starts inside it.
    pub range_start: i64,
    pub range_end: i64,
    /// [`category`] bits.
    pub categories: u8,
    /// Free key/value pairs for information that needs no format change (cms version,
    /// time zone, incremental base). Readers ignore keys they do not know.
    pub properties: Vec<(String, String)>,
}

/// Interval status, as in `interval_status.status`.
pub use crate::domain::IntervalStatus as Status;

/// One manifest entry: one ACD and interval, with its `interval_status` row and where its
/// rows are. The writer takes it with the location fields zero and fills them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub acd: u16,
    /// Interval start, UTC seconds.
    pub istart: i64,
    /// Interval length in minutes (`intrvl`).
    pub intrvl: u32,
    /// Local date `YYYY-MM-DD` and `HHMM` of the interval start. Stored once here rather
    /// than in every row: every `h*` row of the interval carries these same values.
    pub row_date: String,
    pub starttime: u32,
    pub status: Status,
    /// Comma-separated reasons, empty when complete.
    pub reasons: String,
    /// `collected` or `restored:<server id>`.
    pub source: String,
    pub epoch: i64,
    pub first_seq: i64,
    pub last_seq: i64,
    /// `updated_at` of the status row (drives incremental backups).
    pub updated_at: i64,
    /// Rows over all `h*` tables and their content checksum (`store::interval_checksum`).
    pub row_count: u64,
    pub checksum: [u8; 32],
    /// Index of the block holding the interval (filled by the writer).
    pub block: u32,
    /// Byte offset and length of that block in the file, header included (filled from the
    /// manifest's block table).
    pub block_offset: u64,
    pub block_len: u64,
    /// Offset and length of the interval's section inside the uncompressed block.
    pub raw_offset: u32,
    pub raw_len: u32,
}

impl ManifestEntry {
    /// An entry without location, for [`ArchiveWriter::begin_interval`]. `checksum_hex` is
    /// `interval_status.checksum`.
    ///
    /// # Errors
    /// `checksum_hex` is not 64 hex digits ([`ChecksumHexError`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        acd: u16,
        istart: i64,
        intrvl: u32,
        row_date: &str,
        starttime: u32,
        status: Status,
        reasons: &str,
        source: &str,
        row_count: u64,
        checksum_hex: &str,
    ) -> std::result::Result<ManifestEntry, ChecksumHexError> {
        let checksum = *blake3::Hash::from_hex(checksum_hex)
            .map_err(|source| ChecksumHexError {
                hex: checksum_hex.to_owned(),
                source,
            })?
            .as_bytes();
        Ok(ManifestEntry {
            acd,
            istart,
            intrvl,
            row_date: row_date.to_owned(),
            starttime,
            status,
            reasons: reasons.to_owned(),
            source: source.to_owned(),
            epoch: 0,
            first_seq: 0,
            last_seq: 0,
            updated_at: 0,
            row_count,
            checksum,
            block: 0,
            block_offset: 0,
            block_len: 0,
            raw_offset: 0,
            raw_len: 0,
        })
    }

    /// The checksum as lowercase hex, as stored in `interval_status.checksum`.
    pub fn checksum_hex(&self) -> String {
        blake3::Hash::from_bytes(self.checksum).to_hex().to_string()
    }
}

/// A column value of a typed (admin or local) row. Interval and summary rows are all
/// integers and use `&[i64]` directly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Int(i64),
    Text(String),
}

impl Value {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            Value::Text(_) => None,
        }
    }
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            Value::Int(_) => None,
        }
    }
}

/// Which part of the file a checksum covers, for [`ArchiveError::Checksum`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Header,
    Block(u32),
    Manifest,
    Trailer,
    /// The whole file before the trailer.
    File,
}

impl std::fmt::Display for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Region::Header => write!(f, "header"),
            Region::Block(i) => write!(f, "data block {i}"),
            Region::Manifest => write!(f, "manifest"),
            Region::Trailer => write!(f, "trailer"),
            Region::File => write!(f, "file (whole-file hash)"),
        }
    }
}

/// Errors reading or writing a backup file. Every message names the file and the reason;
/// none of them means anything was written to a database.
#[derive(Debug, Error)]
pub enum ArchiveError {
    #[error("{}: {what}: {source}", .path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: {kind}, not a backup file (a backup is a regular file written by `cms backup`)",
        .path.display()
    )]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{}: truncated backup file: {detail}", .path.display())]
    Truncated { path: PathBuf, detail: String },
    #[error("{}: not a cms backup file (bad magic)", .path.display())]
    BadMagic { path: PathBuf },
    #[error(
        "{}: file format version {found}, this release reads up to {supported}; \
         restore it with a release at least as new as the one that wrote it",
        .path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u16,
        supported: u16,
    },
    #[error("{}: checksum mismatch in {region}: the file is corrupted", .path.display())]
    Checksum { path: PathBuf, region: Region },
    #[error(
        "{}: bad MAC: the file was not written with the configured site key \
         (file key id {file_key_id}, configured key id {key_id}) or it was altered",
        .path.display()
    )]
    BadMac {
        path: PathBuf,
        file_key_id: String,
        key_id: String,
    },
    #[error(
        "{}: the file carries no MAC but a site key is configured: refusing an \
         unauthenticated backup",
        .path.display()
    )]
    MissingMac { path: PathBuf },
    #[error("{}: manifest inconsistent with data: {detail}", .path.display())]
    Inconsistent { path: PathBuf, detail: String },
    #[error("{}: malformed {what}: {detail}", .path.display())]
    Malformed {
        path: PathBuf,
        what: String,
        detail: String,
    },
    #[error("{}: {what} is {value}, over the limit of {max}", .path.display())]
    Limit {
        path: PathBuf,
        what: &'static str,
        value: u64,
        max: u64,
    },
    /// The writer was called out of order or with rows that do not match the table or
    /// the interval's status (a bug in the caller, or a database whose status rows do not
    /// match its interval rows).
    #[error("{}: cannot write backup: {detail}", .path.display())]
    Usage { path: PathBuf, detail: String },
}

pub type Result<T> = std::result::Result<T, ArchiveError>;

/// An `interval_status.checksum` that is not 64 hex digits ([`ManifestEntry::new`]).
#[derive(Debug, Clone, Error)]
#[error("checksum {hex:?}: {source}")]
pub struct ChecksumHexError {
    /// The text that was not a checksum.
    pub hex: String,
    #[source]
    pub source: blake3::HexError,
}

/// A site key that cannot be made from what was given: too little key material.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("key file holds {found} bytes of key material, at least {MIN_KEY_FILE_LEN} needed")]
    ShortKeyFile { found: usize },
    #[error("passphrase has {found} bytes, at least {MIN_PASSPHRASE_LEN} needed")]
    ShortPassphrase { found: usize },
}

/// blake3 `derive_key` context for a site key read from a key file.
pub const KEY_FILE_CONTEXT: &str = "cms 2024-06 site key from key file v1";
/// blake3 `derive_key` context for a site key from a passphrase.
pub const PASSPHRASE_CONTEXT: &str = "cms 2024-06 site key from passphrase v1";
/// blake3 `derive_key` context for the backup MAC key derived from the site key.
pub const MAC_KEY_CONTEXT: &str = "cms 2024-06 backup file MAC key v1";
/// blake3 `derive_key` context for the key id written in the trailer.
pub const KEY_ID_CONTEXT: &str = "cms 2024-06 backup key id v1";
/// Minimum key material in a key file (after trimming trailing whitespace).
pub const MIN_KEY_FILE_LEN: usize = 32;
/// Minimum passphrase length in bytes (the passphrase is not stretched: see the spec).
pub const MIN_PASSPHRASE_LEN: usize = 16;

/// The site key from the contents of a key file: trailing ASCII whitespace is trimmed
/// (an editor's final newline must not change the key), then
/// `blake3::derive_key(KEY_FILE_CONTEXT, material)`.
///
/// # Errors
/// Fewer than [`MIN_KEY_FILE_LEN`] bytes of key material ([`KeyError::ShortKeyFile`]).
pub fn site_key_from_key_file(contents: &[u8]) -> std::result::Result<[u8; 32], KeyError> {
    let end = contents
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let material = &contents[..end];
    if material.len() < MIN_KEY_FILE_LEN {
        return Err(KeyError::ShortKeyFile {
            found: material.len(),
        });
    }
    Ok(blake3::derive_key(KEY_FILE_CONTEXT, material))
}

/// The site key from a passphrase: `blake3::derive_key(PASSPHRASE_CONTEXT, utf8 bytes)`.
///
/// # Errors
/// A passphrase shorter than [`MIN_PASSPHRASE_LEN`] bytes ([`KeyError::ShortPassphrase`]).
pub fn site_key_from_passphrase(passphrase: &str) -> std::result::Result<[u8; 32], KeyError> {
    if passphrase.len() < MIN_PASSPHRASE_LEN {
        return Err(KeyError::ShortPassphrase {
            found: passphrase.len(),
        });
    }
    Ok(blake3::derive_key(
        PASSPHRASE_CONTEXT,
        passphrase.as_bytes(),
    ))
}

/// The key that MACs backup files, derived from the site key so that the same site key
/// can serve other purposes (server-to-server authentication) without key reuse.
pub fn mac_key(site_key: &[u8; 32]) -> [u8; 32] {
    blake3::derive_key(MAC_KEY_CONTEXT, site_key)
}

/// The 8-byte key id written in the trailer: tells "wrong key" from "altered file" in
/// messages without revealing anything about the key.
pub fn key_id(site_key: &[u8; 32]) -> [u8; 8] {
    let k = blake3::derive_key(KEY_ID_CONTEXT, site_key);
    let mut id = [0u8; 8];
    id.copy_from_slice(&k[..8]);
    id
}

/// The interval content checksum over rows grouped per interval table, as
/// `store::interval_checksum` computes it: for each interval table in directory order, its
/// family name (the table name without the leading `h`), then each row, sorted by key, as
/// its columns except `acd` and `istart`, little-endian i64.
pub fn content_checksum<'a>(
    tables: impl IntoIterator<Item = (&'a TableSchema, &'a [i64])>,
) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for (t, flat) in tables {
        checksum_table(&mut h, t, flat);
    }
    *h.finalize().as_bytes()
}

pub(crate) fn checksum_table(h: &mut blake3::Hasher, t: &TableSchema, flat: &[i64]) {
    h.update(t.name.strip_prefix('h').unwrap_or(&t.name).as_bytes());
    let n = t.columns.len();
    let istart_col = t.key_columns as usize - 1;
    if n == 0 {
        return;
    }
    // Hash in large pieces: blake3 output does not depend on how the input is split, and
    // feeding it 8 bytes at a time costs several times more than the hashing itself.
    let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024);
    for row in flat.chunks_exact(n) {
        for (i, v) in row.iter().enumerate() {
            if i != 0 && i != istart_col {
                buf.extend_from_slice(&v.to_le_bytes());
            }
        }
        if buf.len() >= 248 * 1024 {
            h.update(&buf);
            buf.clear();
        }
    }
    h.update(&buf);
}

/// A summary table's `row_date` (`YYYY-MM-DD`) as the integer the archive stores
/// (`YYYYMMDD`), or `None` if it is not such a date.
pub fn date_to_i64(row_date: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(row_date, "%Y-%m-%d").ok()?;
    use chrono::Datelike;
    Some(d.year() as i64 * 10_000 + d.month() as i64 * 100 + d.day() as i64)
}

/// The inverse of [`date_to_i64`].
pub fn i64_to_date(v: i64) -> Option<String> {
    let y = i32::try_from(v / 10_000).ok()?;
    let d = chrono::NaiveDate::from_ymd_opt(y, (v / 100 % 100) as u32, (v % 100) as u32)?;
    Some(d.format("%Y-%m-%d").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #12 item 7: the key and checksum errors are typed, in the words they had.
    #[test]
    fn key_and_checksum_errors_are_typed_and_say_what_is_wrong() {
        let e = site_key_from_key_file(b"short key\n").unwrap_err();
        assert_eq!(e, KeyError::ShortKeyFile { found: 9 });
        assert_eq!(
            e.to_string(),
            "key file holds 9 bytes of key material, at least 32 needed"
        );
        let e = site_key_from_passphrase("too short").unwrap_err();
        assert_eq!(e, KeyError::ShortPassphrase { found: 9 });
        assert_eq!(e.to_string(), "passphrase has 9 bytes, at least 16 needed");
        let e = ManifestEntry::new(
            1,
            0,
            15,
            "2024-03-11",
            0,
            Status::Complete,
            "",
            "collected",
            0,
            "not hex",
        )
        .unwrap_err();
        assert_eq!(e.hex, "not hex");
        assert!(e.to_string().starts_with("checksum \"not hex\": "), "{e}");
        let hex = "00".repeat(32);
        let ok = ManifestEntry::new(
            1,
            0,
            15,
            "2024-03-11",
            0,
            Status::Complete,
            "",
            "collected",
            0,
            &hex,
        )
        .unwrap();
        assert_eq!(ok.checksum_hex(), hex);
    }
}
