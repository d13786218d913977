//! The reader: opens a backup file on any `Read + Seek`, verifies it before handing out
//! anything (magic, version, header, trailer, whole-file hash, MAC, manifest), plans from
//! the manifest alone, and decodes one block at a time. Also [`spool_verified`], which
//! checks a non-seekable stream (a socket) while copying it to disk.

use super::codec::{self, BlockRec, Dec, Trailer};
use super::limits::*;
use super::schema::{map_tables, release_tables, Mapping, TableKind, TableSchema};
use super::{
    category, checksum_table, key_id, mac_key, ArchiveError, Header, ManifestEntry, Region, Result,
    Value, BLOCK_HEADER_LEN, FORMAT_VERSION, MAGIC, OLDEST_FORMAT_VERSION, PREFIX_LEN, TRAILER_LEN,
    TRAILER_MAGIC,
};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A data block, from the manifest's block table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInfo {
    pub index: u32,
    pub kind: TableKind,
    /// Offset of the block header in the file, and the block's length header included.
    pub offset: u64,
    pub len: u64,
    /// Uncompressed length of the content.
    pub raw_len: u32,
    /// Intervals (interval blocks) or table sections (other kinds) in the block.
    pub sections: u32,
    pub hash: [u8; 32],
}

/// The rows of one table, in this release's column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRows {
    pub table: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<i64>>,
}

/// One interval's rows: every interval table of this release, in `items::TABLES` order
/// (a table the file does not have is present with no rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalData {
    pub entry: ManifestEntry,
    pub tables: Vec<TableRows>,
    /// Content checksum of `tables` as this release stores them: the entry's checksum
    /// when the file has this release's interval columns, else recomputed over the rows
    /// mapped by name (a column this release added reads as 0 and is hashed as 0).
    pub checksum: [u8; 32],
}

impl IntervalData {
    pub fn table(&self, name: &str) -> Option<&TableRows> {
        self.tables.iter().find(|t| t.table == name)
    }
}

/// A summary, admin or local row, in this release's column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub table: String,
    pub values: Vec<Value>,
}

impl Row {
    /// The values as integers (summary rows), `None` if one is text.
    pub fn ints(&self) -> Option<Vec<i64>> {
        self.values.iter().map(Value::as_int).collect()
    }
}

/// What [`ArchiveReader::verify_all`] checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub blocks: u32,
    pub intervals: u64,
    pub interval_rows: u64,
    pub summary_rows: u64,
    pub admin_rows: u64,
    pub local_rows: u64,
    /// Uncompressed bytes decoded.
    pub raw_bytes: u64,
}

/// What `cms verify` says about a file it verified whole: the header, the manifest's
/// counts and what [`ArchiveReader::verify_all`] read. [`VerifySummary::render`] is the
/// text; the JSON is this struct serialized, its fields in alphabetical order because
/// `cms verify --json` has always printed its keys so.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifySummary {
    pub acds: Vec<u16>,
    pub admin_rows: u64,
    pub authenticated: bool,
    pub blocks: u32,
    /// [`category`] bits of the header.
    pub categories: u8,
    pub complete_intervals: u64,
    pub created_at: i64,
    /// The file as the caller named it.
    pub file: String,
    /// The earliest and latest interval start of the manifest (`-` when it has none).
    #[serde(serialize_with = "utc_or_dash")]
    pub first_interval: Option<i64>,
    pub format_version: u16,
    pub interval_rows: u64,
    pub intervals: u64,
    #[serde(serialize_with = "utc_or_dash")]
    pub last_interval: Option<i64>,
    pub local_rows: u64,
    pub mac: MacCheck,
    /// Always true: a file that fails verification has an error, not a summary (scripts
    /// read the field).
    pub ok: bool,
    pub schema_version: u32,
    pub server_id: String,
    pub summary_rows: u64,
}

/// What a reader can say about a file's MAC (docs/operations.md, "Scheduled backups").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MacCheck {
    /// Checked with the site key.
    Verified,
    /// The file carries a MAC this server has no key to check.
    NotChecked,
    /// The file carries none.
    None,
}

impl MacCheck {
    fn says(self) -> &'static str {
        match self {
            MacCheck::Verified => "authenticated (MAC verified)",
            MacCheck::NotChecked => {
                "carries a MAC this server cannot check (no site_key_file configured): \
                 its origin is not verified"
            }
            MacCheck::None => "not authenticated (no MAC)",
        }
    }
}

/// UTC seconds as `2024-03-11T08:00:00Z`, `-` for none.
fn utc(t: Option<i64>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".into())
}

fn utc_or_dash<S: serde::Serializer>(
    t: &Option<i64>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&utc(*t))
}

impl VerifySummary {
    /// The text of `cms verify`: the file and its format, where it comes from and whether
    /// its origin is verified, then what it holds.
    pub fn render(&self) -> String {
        let n = |c: u64, w: &str| crate::report::plural(c, w);
        format!(
            "{}: ok (format {}, schema {})\n  from server {} at {}, ACDs {:?}, {}\n  \
             {} ({} complete) from {} to {}; {}, {}, {}, {} in {}\n",
            self.file,
            self.format_version,
            self.schema_version,
            self.server_id,
            utc(Some(self.created_at)),
            self.acds,
            self.mac.says(),
            n(self.intervals, "interval"),
            self.complete_intervals,
            utc(self.first_interval),
            utc(self.last_interval),
            n(self.interval_rows, "interval row"),
            n(self.summary_rows, "summary row"),
            n(self.admin_rows, "admin row"),
            n(self.local_rows, "local row"),
            n(self.blocks.into(), "block")
        )
    }
}

/// An open, verified backup file.
pub struct ArchiveReader<R> {
    src: R,
    name: PathBuf,
    version: u16,
    header: Header,
    /// The file's table directory.
    tables: Vec<TableSchema>,
    release: Vec<TableSchema>,
    /// For each file table, how it maps onto a release table.
    mapping: Vec<Option<Mapping>>,
    blocks: Vec<BlockInfo>,
    entries: Vec<ManifestEntry>,
    /// Per block, the indices of its intervals in `entries`, by raw offset.
    block_entries: Vec<Vec<usize>>,
    authenticated: bool,
    /// Whether the file carries a MAC (checked only when a site key was given).
    carries_mac: bool,
    /// The last block decoded: consecutive intervals usually share one.
    cache: Option<(u32, Vec<u8>)>,
    /// Whether [`ArchiveReader::read_interval`] recomputes each interval's content
    /// checksum (see [`ArchiveReader::trust_checked_intervals`]).
    recheck: bool,
    /// Whether the file's interval tables are exactly this release's (same tables, same
    /// columns in the same order), so rows read need no checksum of their own.
    release_intervals: bool,
}

impl ArchiveReader<File> {
    /// Opens and verifies the backup file at `path`. With `key` (the site key) the file
    /// must carry a MAC made with that key.
    ///
    /// This reads the whole file once (to check the whole-file hash and the MAC) with
    /// bounded memory; afterwards only the blocks asked for are read.
    ///
    /// # Errors
    /// Any [`ArchiveError`] but `Usage`: the file cannot be read, is truncated, not a
    /// backup, of a newer format version, corrupted, not authenticated by `key`, or has a
    /// manifest inconsistent with its layout.
    pub fn open(path: &Path, key: Option<&[u8; 32]>) -> Result<Self> {
        ArchiveReader::from_reader(open_regular(path)?, path, key)
    }

    /// A second, independent handle on the same file for another thread, sharing this
    /// one's verified header and manifest without reading the whole file again: every
    /// block it reads is still checked against the manifest's block hash, so a file
    /// changed since cannot give other data than this handle would.
    ///
    /// # Errors
    /// The file cannot be opened again.
    pub fn reopen(&self) -> Result<Self> {
        let src = open_regular(&self.name)?;
        Ok(ArchiveReader {
            src,
            name: self.name.clone(),
            version: self.version,
            header: self.header.clone(),
            tables: self.tables.clone(),
            release: self.release.clone(),
            mapping: self.mapping.clone(),
            blocks: self.blocks.clone(),
            entries: self.entries.clone(),
            block_entries: self.block_entries.clone(),
            authenticated: self.authenticated,
            carries_mac: self.carries_mac,
            cache: None,
            recheck: true,
            release_intervals: self.release_intervals,
        })
    }
}

impl<R: Read + Seek> ArchiveReader<R> {
    /// [`ArchiveReader::open`] on any seekable source; `name` names it in messages.
    ///
    /// # Errors
    /// As [`ArchiveReader::open`].
    pub fn from_reader(
        mut src: R,
        name: impl Into<PathBuf>,
        key: Option<&[u8; 32]>,
    ) -> Result<Self> {
        let name = name.into();
        let len = src
            .seek(SeekFrom::End(0))
            .map_err(io(&name, "cannot seek"))?;
        let (version, header, tables, data_start) = read_header(&mut src, &name, len)?;
        let trailer_off = len - TRAILER_LEN as u64;
        let (trailer, tb) = read_trailer(&mut src, &name, trailer_off, version)?;
        if key.is_some() && trailer.mac_kind == 0 {
            return Err(ArchiveError::MissingMac { path: name });
        }
        check_whole_file(&mut src, &name, trailer_off, &trailer, &tb, key)?;
        let (m, manifest_index) =
            read_manifest(&mut src, &name, &trailer, data_start, trailer_off)?;
        if manifest_index as usize != m.blocks.len() {
            return Err(inconsistent(
                &name,
                format!(
                    "manifest is block {manifest_index} after {} data blocks",
                    m.blocks.len()
                ),
            ));
        }
        let release = release_tables();
        let mapping = map_tables(&tables, &release);
        let interval = |t: &&TableSchema| t.kind == TableKind::Interval;
        let release_intervals = tables
            .iter()
            .filter(interval)
            .eq(release.iter().filter(interval));
        let mut r = ArchiveReader {
            src,
            name,
            version,
            header,
            tables,
            release,
            mapping,
            blocks: Vec::new(),
            entries: m.entries,
            block_entries: Vec::new(),
            authenticated: key.is_some(),
            carries_mac: trailer.mac_kind != 0,
            cache: None,
            recheck: true,
            release_intervals,
        };
        r.validate(m.blocks, data_start, trailer.manifest_offset, m.total_rows)?;
        Ok(r)
    }

    /// Checks the manifest against itself and the file's layout: blocks contiguous from
    /// the header to the manifest, intervals sorted, unique, inside the header's ACDs and
    /// range, each inside an interval block that holds exactly as many intervals.
    fn validate(
        &mut self,
        blocks: Vec<BlockRec>,
        data_start: u64,
        manifest_at: u64,
        total_rows: u64,
    ) -> Result<()> {
        self.validate_blocks(&blocks, data_start, manifest_at)?;
        let (mut per_block, rows) = self.place_entries()?;
        let bad = |d: String| inconsistent(&self.name, d);
        for w in self.entries.windows(2) {
            if (w[0].acd, w[0].istart) >= (w[1].acd, w[1].istart) {
                return Err(bad(format!(
                    "intervals out of order or repeated at acd {} istart {}",
                    w[1].acd, w[1].istart
                )));
            }
        }
        for (bi, list) in per_block.iter_mut().enumerate() {
            self.check_block_layout(bi, list)?;
        }
        if rows != total_rows {
            return Err(bad(format!(
                "intervals sum to {rows} rows, the manifest's end record says {total_rows}"
            )));
        }
        self.block_entries = per_block;
        Ok(())
    }

    /// The block table: each block of a known kind in a category the header lists,
    /// numbered in order, contiguous from `data_start` to the manifest, within the
    /// limits. Fills `self.blocks`.
    fn validate_blocks(
        &mut self,
        blocks: &[BlockRec],
        data_start: u64,
        manifest_at: u64,
    ) -> Result<()> {
        let name = self.name.clone();
        let bad = |d: String| inconsistent(&name, d);
        let mut at = data_start;
        for (i, b) in blocks.iter().enumerate() {
            let kind = match b.kind {
                codec::KIND_INTERVAL => TableKind::Interval,
                codec::KIND_SUMMARY => TableKind::Summary,
                codec::KIND_ADMIN => TableKind::Admin,
                codec::KIND_LOCAL => TableKind::Local,
                k => return Err(bad(format!("block {i} has unknown kind {k}"))),
            };
            let cat = match kind {
                TableKind::Interval | TableKind::Summary => category::HISTORY,
                TableKind::Admin => category::ADMIN,
                TableKind::Local => category::LOCAL,
            };
            if self.header.categories & cat == 0 {
                return Err(bad(format!(
                    "block {i} holds {kind:?} rows, a category the header does not list"
                )));
            }
            if b.index as usize != i || b.offset != at {
                return Err(bad(format!(
                    "block {i} listed as block {} at offset {}, expected at {at}",
                    b.index, b.offset
                )));
            }
            if b.len < BLOCK_HEADER_LEN as u64
                || b.len - BLOCK_HEADER_LEN as u64 > MAX_BLOCK_STORED as u64
                || b.raw_len > MAX_BLOCK_RAW
                || b.raw_len < 4
            {
                return Err(bad(format!(
                    "block {i}: length {} / raw length {} out of bounds",
                    b.len, b.raw_len
                )));
            }
            at += b.len;
            self.blocks.push(BlockInfo {
                index: b.index,
                kind,
                offset: b.offset,
                len: b.len,
                raw_len: b.raw_len,
                sections: b.sections,
                hash: b.hash,
            });
        }
        if at != manifest_at {
            return Err(bad(format!(
                "blocks end at {at}, the manifest starts at {manifest_at}"
            )));
        }
        Ok(())
    }

    /// Each interval entry inside the header's ACDs and range and inside an interval
    /// block of the right size; records its block's place. Returns, per block, the
    /// indices of its entries, and the entries' total row count.
    fn place_entries(&mut self) -> Result<(Vec<Vec<usize>>, u64)> {
        let name = self.name.clone();
        let bad = |d: String| inconsistent(&name, d);
        let mut per_block = vec![Vec::new(); self.blocks.len()];
        let mut rows = 0u64;
        for (i, e) in self.entries.iter_mut().enumerate() {
            let id = format!("interval acd {} istart {}", e.acd, e.istart);
            if !self.header.acds.contains(&e.acd) {
                return Err(bad(format!("{id}: ACD not in the header")));
            }
            if e.istart < self.header.range_start || e.istart >= self.header.range_end {
                return Err(bad(format!("{id}: outside the header's range")));
            }
            let Some(b) = self.blocks.get(e.block as usize) else {
                return Err(bad(format!(
                    "{id}: in block {}, which does not exist",
                    e.block
                )));
            };
            if b.kind != TableKind::Interval
                || e.raw_offset < 4
                || e.raw_offset as u64 + e.raw_len as u64 > b.raw_len as u64
            {
                return Err(bad(format!(
                    "{id}: at {}+{} of block {}, which is not an interval block of that size",
                    e.raw_offset, e.raw_len, e.block
                )));
            }
            e.block_offset = b.offset;
            e.block_len = b.len;
            rows = rows.saturating_add(e.row_count);
            per_block[e.block as usize].push(i);
        }
        Ok((per_block, rows))
    }

    /// Block `bi`'s intervals (`list`, sorted here by offset) follow each other from its
    /// section count on, and an interval block holds exactly them.
    fn check_block_layout(&self, bi: usize, list: &mut [usize]) -> Result<()> {
        let bad = |d: String| inconsistent(&self.name, d);
        let b = &self.blocks[bi];
        if b.kind == TableKind::Interval && list.len() != b.sections as usize {
            return Err(bad(format!(
                "block {bi} holds {} intervals, the manifest places {} in it",
                b.sections,
                list.len()
            )));
        }
        list.sort_by_key(|&i| self.entries[i].raw_offset);
        let mut at = 4u64;
        for &i in list.iter() {
            let e = &self.entries[i];
            if e.raw_offset as u64 != at {
                return Err(bad(format!(
                    "block {bi}: interval acd {} istart {} at offset {}, expected {at}",
                    e.acd, e.istart, e.raw_offset
                )));
            }
            at += e.raw_len as u64;
        }
        if b.kind == TableKind::Interval && at != b.raw_len as u64 {
            return Err(bad(format!(
                "block {bi}: intervals end at {at} of {} bytes",
                b.raw_len
            )));
        }
        Ok(())
    }

    pub fn name(&self) -> &Path {
        &self.name
    }
    /// The file's format version (at most [`FORMAT_VERSION`]).
    pub fn format_version(&self) -> u16 {
        self.version
    }
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// The file's table directory (column names as the writing release had them).
    pub fn tables(&self) -> &[TableSchema] {
        &self.tables
    }
    /// Every ACD interval in the file, sorted by `(acd, istart)`, with its location.
    pub fn manifest(&self) -> &[ManifestEntry] {
        &self.entries
    }
    pub fn blocks(&self) -> &[BlockInfo] {
        &self.blocks
    }
    /// Whether the file's MAC was verified with a key.
    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    /// Whether the file carries a MAC, checked or not: a file opened without a site key
    /// can carry one this reader did not check.
    pub fn carries_mac(&self) -> bool {
        self.carries_mac
    }
    /// The manifest entry of one ACD interval.
    pub fn find(&self, acd: u16, istart: i64) -> Option<&ManifestEntry> {
        self.entries
            .binary_search_by(|e| (e.acd, e.istart).cmp(&(acd, istart)))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Reads, checks and decompresses block `index` (kept as the one-block cache).
    fn block(&mut self, index: u32) -> Result<&[u8]> {
        if self.cache.as_ref().is_some_and(|c| c.0 == index) {
            return Ok(&self.cache.as_ref().unwrap().1);
        }
        self.cache = None;
        let info = self.blocks[index as usize].clone();
        let name = self.name.clone();
        self.src
            .seek(SeekFrom::Start(info.offset))
            .map_err(|e| ArchiveError::Io {
                path: name.clone(),
                what: "cannot seek",
                source: e,
            })?;
        let mut b = vec![0u8; info.len as usize];
        self.src
            .read_exact(&mut b)
            .map_err(|e| eof_is_truncated(&name, e))?;
        let hb: [u8; BLOCK_HEADER_LEN] = b[..BLOCK_HEADER_LEN].try_into().unwrap();
        let prefix16: [u8; 16] = b[..16].try_into().unwrap();
        let payload = &b[BLOCK_HEADER_LEN..];
        let bh = codec::decode_block_header(&hb)
            .map_err(|d| malformed(&name, &format!("block {index} header"), d))?;
        if codec::block_hash(&prefix16, payload) != bh.hash {
            return Err(ArchiveError::Checksum {
                path: name,
                region: Region::Block(index),
            });
        }
        let kind = codec::block_kind_for(info.kind);
        if bh.kind != kind
            || bh.index != index
            || bh.raw_len != info.raw_len
            || bh.stored_len as usize != payload.len()
            || bh.hash != info.hash
        {
            return Err(inconsistent(
                &name,
                format!("block {index} in the file differs from the manifest's block table"),
            ));
        }
        let raw = decompress(payload, info.raw_len)
            .map_err(|d| malformed(&name, &format!("block {index}"), d))?;
        let mut d = Dec::new(&raw);
        let sections = d
            .u32()
            .map_err(|d| malformed(&name, &format!("block {index}"), d))?;
        if sections != info.sections {
            return Err(inconsistent(
                &name,
                format!(
                    "block {index} holds {sections} sections, the manifest says {}",
                    info.sections
                ),
            ));
        }
        self.cache = Some((index, raw));
        Ok(&self.cache.as_ref().unwrap().1)
    }

    /// Decodes one interval section and checks it against its entry: same ACD and start
    /// in the section and every row, table ids in directory order, row count and content
    /// checksum as the manifest says. Returns the file's rows per file table.
    fn decode_interval(&mut self, ei: usize) -> Result<Vec<(u16, Vec<i64>)>> {
        let e = self.entries[ei].clone();
        let name = self.name.clone();
        self.block(e.block)?;
        let raw = &self.cache.as_ref().expect("block just loaded").1;
        let tables = &self.tables;
        let version = self.version;
        let sec = &raw[e.raw_offset as usize..(e.raw_offset + e.raw_len) as usize];
        let id = format!("interval acd {} istart {}", e.acd, e.istart);
        let what = format!("{id} in block {}", e.block);
        let mut d = Dec::new(sec);
        let m = |d: String| malformed(&name, &what, d);
        let acd = d.u16().map_err(m)?;
        let istart = d.i64().map_err(m)?;
        if (acd, istart) != (e.acd, e.istart) {
            return Err(inconsistent(
                &name,
                format!("block {} holds interval acd {acd} istart {istart} where the manifest puts {id}", e.block),
            ));
        }
        let nt = d.u16().map_err(m)?;
        let mut out: Vec<(u16, Vec<i64>)> = Vec::with_capacity(nt.min(MAX_TABLES) as usize);
        for _ in 0..nt {
            let (tid, flat) = codec::decode_int_section(&mut d, tables, version).map_err(m)?;
            let t = &tables[tid as usize];
            if t.kind != TableKind::Interval || out.last().is_some_and(|l| l.0 >= tid) {
                return Err(m(format!("table {} out of place", t.name)));
            }
            let ist = t.key_columns as usize - 1;
            let k = t.key_columns as usize;
            let n = t.columns.len();
            let mut prev: Option<&[i64]> = None;
            for r in flat.chunks_exact(n) {
                if r[0] != acd as i64 || r[ist] != istart {
                    return Err(inconsistent(
                        &name,
                        format!(
                            "{id}: a {} row belongs to acd {} istart {}",
                            t.name, r[0], r[ist]
                        ),
                    ));
                }
                if prev.is_some_and(|p| p[..k] >= r[..k]) {
                    return Err(m(format!("{} rows not in key order", t.name)));
                }
                prev = Some(r);
            }
            out.push((tid, flat));
        }
        d.end(&what).map_err(m)?;
        if !self.recheck {
            return Ok(out);
        }
        let mut h = blake3::Hasher::new();
        let mut rows = 0u64;
        for (tid, t) in tables.iter().enumerate() {
            if t.kind != TableKind::Interval {
                continue;
            }
            let flat = out
                .iter()
                .find(|(i, _)| *i as usize == tid)
                .map_or(&[][..], |(_, f)| &f[..]);
            rows += (flat.len() / t.columns.len()) as u64;
            checksum_table(&mut h, t, flat);
        }
        if rows != e.row_count {
            return Err(inconsistent(
                &name,
                format!(
                    "{id}: the manifest says {} rows, the data holds {rows}",
                    e.row_count
                ),
            ));
        }
        if h.finalize() != blake3::Hash::from_bytes(e.checksum) {
            return Err(inconsistent(
                &name,
                format!("{id}: the data does not match the manifest's content checksum"),
            ));
        }
        Ok(out)
    }

    /// Checks one interval as [`ArchiveReader::read_interval`] does (block checksum, the
    /// block holds it, rows in order, row count and content checksum as the manifest
    /// says) without building its rows.
    ///
    /// # Errors
    /// As [`ArchiveReader::read_interval`].
    pub fn check_interval(&mut self, entry: &ManifestEntry) -> Result<()> {
        let ei = self.entry_index(entry)?;
        let recheck = std::mem::replace(&mut self.recheck, true);
        let r = self.decode_interval(ei).map(drop);
        self.recheck = recheck;
        r
    }

    /// After every interval to be read has passed [`ArchiveReader::check_interval`] (or a
    /// `read_interval`) on this file, reading them again need not recompute their content
    /// checksums: each block read is still checked against its block hash, so its bytes,
    /// and so its rows, are the ones already checked.
    pub fn trust_checked_intervals(&mut self) {
        self.recheck = false;
    }

    fn entry_index(&self, entry: &ManifestEntry) -> Result<usize> {
        self.entries
            .binary_search_by(|e| (e.acd, e.istart).cmp(&(entry.acd, entry.istart)))
            .map_err(|_| ArchiveError::Usage {
                path: self.name.clone(),
                detail: format!(
                    "interval acd {} istart {} is not in this backup",
                    entry.acd, entry.istart
                ),
            })
    }

    /// Decodes one interval: every interval table of this release, columns mapped by name
    /// from the file's (unknown columns dropped, missing ones 0). Checks the interval's
    /// block checksum, that the block holds this interval, and its row count and content
    /// checksum against the manifest.
    ///
    /// # Errors
    /// The entry is not in this file's manifest, or its block is corrupted or does not
    /// match the manifest.
    pub fn read_interval(&mut self, entry: &ManifestEntry) -> Result<IntervalData> {
        let ei = self.entry_index(entry)?;
        let file_rows = self.decode_interval(ei)?;
        let mut tables: Vec<TableRows> = self
            .release
            .iter()
            .filter(|t| t.kind == TableKind::Interval)
            .map(|t| TableRows {
                table: t.name.clone(),
                columns: t.column_names(),
                rows: Vec::new(),
            })
            .collect();
        for (tid, flat) in file_rows {
            let Some(map) = &self.mapping[tid as usize] else {
                continue;
            };
            let n = self.tables[tid as usize].columns.len();
            let target = tables
                .iter_mut()
                .find(|t| t.table == self.release[map.release].name)
                .expect("interval tables map to interval tables");
            for r in flat.chunks_exact(n) {
                target
                    .rows
                    .push(map.cols.iter().map(|c| c.map_or(0, |i| r[i])).collect());
            }
        }
        let checksum = if self.release_intervals {
            self.entries[ei].checksum
        } else {
            let mut h = blake3::Hasher::new();
            let interval = |t: &&TableSchema| t.kind == TableKind::Interval;
            for (t, rows) in self.release.iter().filter(interval).zip(&tables) {
                let flat: Vec<i64> = rows.rows.iter().flatten().copied().collect();
                checksum_table(&mut h, t, &flat);
            }
            *h.finalize().as_bytes()
        };
        Ok(IntervalData {
            entry: self.entries[ei].clone(),
            tables,
            checksum,
        })
    }

    /// Reads every block, checking its checksum and that it holds exactly what the
    /// manifest says: the intervals it places there, at their offsets, with their row
    /// counts and content checksums; for other kinds, sections of tables of that kind.
    /// Memory: one block at a time.
    ///
    /// # Errors
    /// The first problem found.
    pub fn verify_all(&mut self) -> Result<VerifyReport> {
        let mut rep = VerifyReport::default();
        for bi in 0..self.blocks.len() {
            let info = self.blocks[bi].clone();
            let raw_len = self.block(bi as u32)?.len();
            rep.blocks += 1;
            rep.raw_bytes += raw_len as u64;
            if info.kind == TableKind::Interval {
                for ei in self.block_entries[bi].clone() {
                    self.decode_interval(ei)?;
                    rep.intervals += 1;
                    rep.interval_rows += self.entries[ei].row_count;
                }
                continue;
            }
            let mut it = RowIter::new(self, info.kind, Some(bi));
            let mut n = 0u64;
            while let Some(r) = it.next_raw() {
                r?;
                n += 1;
            }
            match info.kind {
                TableKind::Summary => rep.summary_rows += n,
                TableKind::Admin => rep.admin_rows += n,
                TableKind::Local => rep.local_rows += n,
                TableKind::Interval => unreachable!(),
            }
        }
        self.cache = None;
        Ok(rep)
    }

    /// [`ArchiveReader::verify_all`], and what `cms verify` says about the file, which
    /// `file` names.
    ///
    /// # Errors
    /// The first problem found.
    pub fn verify_summary(&mut self, file: &Path) -> Result<VerifySummary> {
        let rep = self.verify_all()?;
        let h = &self.header;
        let starts = || self.entries.iter().map(|e| e.istart);
        Ok(VerifySummary {
            acds: h.acds.clone(),
            admin_rows: rep.admin_rows,
            authenticated: self.authenticated,
            blocks: rep.blocks,
            categories: h.categories,
            complete_intervals: self
                .entries
                .iter()
                .filter(|e| e.status == super::Status::Complete)
                .count() as u64,
            created_at: h.created_at,
            file: file.display().to_string(),
            first_interval: starts().min(),
            format_version: self.version,
            interval_rows: rep.interval_rows,
            intervals: rep.intervals,
            last_interval: starts().max(),
            local_rows: rep.local_rows,
            mac: match (self.authenticated, self.carries_mac) {
                (true, _) => MacCheck::Verified,
                (false, true) => MacCheck::NotChecked,
                (false, false) => MacCheck::None,
            },
            ok: true,
            schema_version: h.schema_version,
            server_id: h.server_id.clone(),
            summary_rows: rep.summary_rows,
        })
    }

    /// Summary rows (`d*`, `w*`, `m*`), one block at a time.
    pub fn summary_rows(&mut self) -> RowIter<'_, R> {
        RowIter::new(self, TableKind::Summary, None)
    }
    /// ACD administration rows.
    pub fn admin_rows(&mut self) -> RowIter<'_, R> {
        RowIter::new(self, TableKind::Admin, None)
    }
    /// Local system administration rows.
    pub fn local_rows(&mut self) -> RowIter<'_, R> {
        RowIter::new(self, TableKind::Local, None)
    }
}

/// Streams the rows of the summary, admin or local blocks, mapped to this release's
/// columns (rows of tables this release does not know are skipped). Stops after the
/// first error.
pub struct RowIter<'a, R> {
    rd: &'a mut ArchiveReader<R>,
    blocks: Vec<u32>,
    next_block: usize,
    /// Current block: position in the cached raw block, sections left, and the open
    /// section (file table id, rows left).
    pos: usize,
    sections_left: u32,
    section: Option<(u16, u32)>,
    loaded: Option<u32>,
    done: bool,
}

impl<'a, R: Read + Seek> RowIter<'a, R> {
    fn new(rd: &'a mut ArchiveReader<R>, kind: TableKind, only: Option<usize>) -> Self {
        let blocks = rd
            .blocks
            .iter()
            .filter(|b| b.kind == kind && only.is_none_or(|o| o == b.index as usize))
            .map(|b| b.index)
            .collect();
        RowIter {
            rd,
            blocks,
            next_block: 0,
            pos: 0,
            sections_left: 0,
            section: None,
            loaded: None,
            done: false,
        }
    }

    /// The next row as the file has it: (file table id, values).
    fn next_raw(&mut self) -> Option<Result<(u16, Vec<Value>)>> {
        if self.done {
            return None;
        }
        let r = self.step();
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
        }
        r
    }

    fn step(&mut self) -> Option<Result<(u16, Vec<Value>)>> {
        loop {
            let Some(bi) = self.loaded else {
                let bi = *self.blocks.get(self.next_block)?;
                self.next_block += 1;
                let sections = match self.rd.block(bi) {
                    Ok(_) => self.rd.blocks[bi as usize].sections,
                    Err(e) => return Some(Err(e)),
                };
                self.loaded = Some(bi);
                self.pos = 4;
                self.sections_left = sections;
                self.section = None;
                continue;
            };
            let name = self.rd.name.clone();
            let what = format!("block {bi}");
            let kind = self.rd.blocks[bi as usize].kind;
            // The cache may have been replaced by a caller's read_interval in between.
            if let Err(e) = self.rd.block(bi) {
                return Some(Err(e));
            }
            let raw = &self.rd.cache.as_ref().expect("block just loaded").1;
            let mut d = Dec {
                buf: raw,
                pos: self.pos,
            };
            match self.section {
                Some((tid, left)) if left > 0 => {
                    let t = &self.rd.tables[tid as usize];
                    let mut row = Vec::with_capacity(t.columns.len());
                    for c in &t.columns {
                        let v = match c.ty {
                            super::ColumnType::Int => d.i64().map(Value::Int),
                            super::ColumnType::Text => d.str(&c.name).map(Value::Text),
                        };
                        match v {
                            Ok(v) => row.push(v),
                            Err(e) => return Some(Err(malformed(&name, &what, e))),
                        }
                    }
                    self.pos = d.pos;
                    self.section = Some((tid, left - 1));
                    return Some(Ok((tid, row)));
                }
                _ => {}
            }
            if self.sections_left == 0 {
                if let Err(e) = d.end(&what) {
                    return Some(Err(malformed(&name, &what, e)));
                }
                self.loaded = None;
                continue;
            }
            let hdr = (|| {
                let tid = d.u16()?;
                let n = d.u32()?;
                Ok::<_, String>((tid, n))
            })();
            let (tid, n) = match hdr {
                Ok(x) => x,
                Err(e) => return Some(Err(malformed(&name, &what, e))),
            };
            let Some(t) = self.rd.tables.get(tid as usize) else {
                return Some(Err(malformed(
                    &name,
                    &what,
                    format!("table id {tid} not in the directory"),
                )));
            };
            if t.kind != kind || n > MAX_SECTION_ROWS {
                return Some(Err(malformed(
                    &name,
                    &what,
                    format!(
                        "section of table {} with {n} rows in a {kind:?} block",
                        t.name
                    ),
                )));
            }
            self.pos = d.pos;
            self.sections_left -= 1;
            self.section = Some((tid, n));
        }
    }
}

impl<R: Read + Seek> Iterator for RowIter<'_, R> {
    type Item = Result<Row>;
    fn next(&mut self) -> Option<Result<Row>> {
        loop {
            let (tid, values) = match self.next_raw()? {
                Ok(x) => x,
                Err(e) => return Some(Err(e)),
            };
            let Some(map) = &self.rd.mapping[tid as usize] else {
                continue;
            };
            let rt = &self.rd.release[map.release];
            let values = map
                .cols
                .iter()
                .zip(&rt.columns)
                .map(|(c, rc)| match c {
                    Some(i) => values[*i].clone(),
                    None => match rc.ty {
                        super::ColumnType::Int => Value::Int(0),
                        super::ColumnType::Text => Value::Text(String::new()),
                    },
                })
                .collect();
            return Some(Ok(Row {
                table: rt.name.clone(),
                values,
            }));
        }
    }
}

/// Copies a backup from a non-seekable source (a socket) to `dst` (a spool file),
/// verifying as it goes: magic and version first, then at the end the trailer, the
/// whole-file hash and, with `key`, the MAC. Apply nothing from the spool unless this
/// returns `Ok`; then open the spool with [`ArchiveReader::open`]. Returns the bytes copied.
///
/// # Errors
/// As [`ArchiveReader::open`] for the checks it makes, or an I/O error on either side.
pub fn spool_verified(
    mut src: impl Read,
    mut dst: impl Write,
    name: impl Into<PathBuf>,
    key: Option<&[u8; 32]>,
) -> Result<u64> {
    let name = name.into();
    let mut fh = blake3::Hasher::new();
    let mut mh = key.map(|k| blake3::Hasher::new_keyed(&mac_key(k)));
    let mut pending: Vec<u8> = Vec::with_capacity(TRAILER_LEN + (1 << 16));
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    let mut head = Vec::with_capacity(PREFIX_LEN);
    let mut version = 0;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(ArchiveError::Io {
                    path: name,
                    what: "cannot receive backup",
                    source: e,
                })
            }
        };
        let chunk = &buf[..n];
        if head.len() < PREFIX_LEN {
            let take = (PREFIX_LEN - head.len()).min(n);
            head.extend_from_slice(&chunk[..take]);
            if head.len() == PREFIX_LEN {
                version = check_prefix(&name, &head)?.0;
            }
        }
        dst.write_all(chunk).map_err(|e| ArchiveError::Io {
            path: name.clone(),
            what: "cannot write spool file",
            source: e,
        })?;
        total += n as u64;
        pending.extend_from_slice(chunk);
        if pending.len() > TRAILER_LEN {
            let cut = pending.len() - TRAILER_LEN;
            fh.update(&pending[..cut]);
            if let Some(m) = &mut mh {
                m.update(&pending[..cut]);
            }
            pending.drain(..cut);
        }
    }
    dst.flush().map_err(|e| ArchiveError::Io {
        path: name.clone(),
        what: "cannot write spool file",
        source: e,
    })?;
    if head.len() < PREFIX_LEN {
        check_prefix(&name, &head)?;
    }
    if pending.len() < TRAILER_LEN
        || total < (PREFIX_LEN + 32 + BLOCK_HEADER_LEN + TRAILER_LEN) as u64
    {
        return Err(ArchiveError::Truncated {
            path: name,
            detail: format!("stream ended after {total} bytes"),
        });
    }
    let tb: [u8; TRAILER_LEN] = pending[..].try_into().unwrap();
    let trailer = check_trailer(&name, &tb, version)?;
    if key.is_some() && trailer.mac_kind == 0 {
        return Err(ArchiveError::MissingMac { path: name });
    }
    if fh.finalize() != blake3::Hash::from_bytes(trailer.file_hash) {
        return Err(ArchiveError::Checksum {
            path: name,
            region: Region::File,
        });
    }
    if let (Some(mut m), Some(k)) = (mh, key) {
        m.update(&tb[..codec::TRAILER_MAC_AT]);
        if m.finalize() != blake3::Hash::from_bytes(trailer.mac) {
            return Err(ArchiveError::BadMac {
                path: name,
                file_key_id: hex(&trailer.key_id),
                key_id: hex(&key_id(k)),
            });
        }
    }
    Ok(total)
}

/// Checks magic, version and flags; returns the version and the header length.
fn check_prefix(name: &Path, p: &[u8]) -> Result<(u16, u32)> {
    let m = p.len().min(MAGIC.len());
    if p[..m] != MAGIC[..m] {
        return Err(ArchiveError::BadMagic {
            path: name.to_owned(),
        });
    }
    if p.len() < PREFIX_LEN {
        return Err(ArchiveError::Truncated {
            path: name.to_owned(),
            detail: format!("{} bytes, shorter than the file prefix", p.len()),
        });
    }
    let version = u16::from_le_bytes([p[8], p[9]]);
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(ArchiveError::UnsupportedVersion {
            path: name.to_owned(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let flags = u16::from_le_bytes([p[10], p[11]]);
    let header_len = u32::from_le_bytes([p[12], p[13], p[14], p[15]]);
    if flags != 0 {
        return Err(malformed(
            name,
            "file prefix",
            format!("flags field is {flags:#06x}, format {version} requires 0"),
        ));
    }
    if header_len > MAX_HEADER_LEN {
        return Err(ArchiveError::Limit {
            path: name.to_owned(),
            what: "header length",
            value: header_len.into(),
            max: MAX_HEADER_LEN.into(),
        });
    }
    Ok((version, header_len))
}

fn check_trailer(name: &Path, tb: &[u8; TRAILER_LEN], version: u16) -> Result<Trailer> {
    if tb[..8] != TRAILER_MAGIC {
        return Err(ArchiveError::Truncated {
            path: name.to_owned(),
            detail: "no trailer at the end: the file was cut short or never finished".into(),
        });
    }
    let h = blake3::hash(&tb[..codec::TRAILER_HASH_AT]);
    if h != blake3::Hash::from_bytes(tb[codec::TRAILER_HASH_AT..].try_into().unwrap()) {
        return Err(ArchiveError::Checksum {
            path: name.to_owned(),
            region: Region::Trailer,
        });
    }
    let t = codec::decode_trailer(tb).map_err(|d| malformed(name, "trailer", d))?;
    if t.version != version {
        return Err(malformed(
            name,
            "trailer",
            format!(
                "format version {} differs from the header's {version}",
                t.version
            ),
        ));
    }
    Ok(t)
}

/// An I/O error on `name` while doing `what`.
fn io<'a>(name: &'a Path, what: &'static str) -> impl FnOnce(std::io::Error) -> ArchiveError + 'a {
    move |e| ArchiveError::Io {
        path: name.to_owned(),
        what,
        source: e,
    }
}

/// Reads and checks the prefix and the header (its hash, then its body) of a file of
/// `len` bytes. Returns the format version, the header, the table directory and where
/// the data blocks start.
fn read_header(
    src: &mut (impl Read + Seek),
    name: &Path,
    len: u64,
) -> Result<(u16, Header, Vec<TableSchema>, u64)> {
    src.seek(SeekFrom::Start(0))
        .map_err(io(name, "cannot seek"))?;
    let mut prefix = [0u8; PREFIX_LEN];
    let got = read_up_to(src, &mut prefix).map_err(io(name, "cannot read"))?;
    let (version, header_len) = check_prefix(name, &prefix[..got])?;
    let data_start = (PREFIX_LEN + header_len as usize + 32) as u64;
    let min_len = data_start + (BLOCK_HEADER_LEN + TRAILER_LEN) as u64;
    if len < min_len {
        return Err(ArchiveError::Truncated {
            path: name.to_owned(),
            detail: format!("{len} bytes, the header and trailer alone take {min_len}"),
        });
    }
    let mut hb = vec![0u8; header_len as usize + 32];
    src.read_exact(&mut hb)
        .map_err(io(name, "cannot read header"))?;
    let (body, hash) = hb.split_at(header_len as usize);
    let mut h = blake3::Hasher::new();
    h.update(&prefix);
    h.update(body);
    if h.finalize() != blake3::Hash::from_bytes(hash.try_into().unwrap()) {
        return Err(ArchiveError::Checksum {
            path: name.to_owned(),
            region: Region::Header,
        });
    }
    let (header, tables) =
        codec::decode_header_body(body).map_err(|d| malformed(name, "header", d))?;
    Ok((version, header, tables, data_start))
}

/// Reads and checks the trailer at `trailer_off`; returns it and its bytes (the MAC
/// covers part of them).
fn read_trailer(
    src: &mut (impl Read + Seek),
    name: &Path,
    trailer_off: u64,
    version: u16,
) -> Result<(Trailer, [u8; TRAILER_LEN])> {
    let mut tb = [0u8; TRAILER_LEN];
    src.seek(SeekFrom::Start(trailer_off))
        .map_err(io(name, "cannot seek"))?;
    src.read_exact(&mut tb)
        .map_err(io(name, "cannot read trailer"))?;
    Ok((check_trailer(name, &tb, version)?, tb))
}

/// Reads everything before the trailer once, with bounded memory, checking the
/// whole-file hash and, with `key`, the MAC.
fn check_whole_file(
    src: &mut (impl Read + Seek),
    name: &Path,
    trailer_off: u64,
    trailer: &Trailer,
    tb: &[u8; TRAILER_LEN],
    key: Option<&[u8; 32]>,
) -> Result<()> {
    src.seek(SeekFrom::Start(0))
        .map_err(io(name, "cannot seek"))?;
    let mut fh = blake3::Hasher::new();
    let mut mh = key.map(|k| blake3::Hasher::new_keyed(&mac_key(k)));
    let mut left = trailer_off;
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        src.read_exact(&mut buf[..n])
            .map_err(|e| eof_is_truncated(name, e))?;
        fh.update(&buf[..n]);
        if let Some(m) = &mut mh {
            m.update(&buf[..n]);
        }
        left -= n as u64;
    }
    if fh.finalize() != blake3::Hash::from_bytes(trailer.file_hash) {
        return Err(ArchiveError::Checksum {
            path: name.to_owned(),
            region: Region::File,
        });
    }
    if let (Some(mut m), Some(k)) = (mh, key) {
        m.update(&tb[..codec::TRAILER_MAC_AT]);
        // blake3::Hash equality is constant-time.
        if m.finalize() != blake3::Hash::from_bytes(trailer.mac) {
            return Err(ArchiveError::BadMac {
                path: name.to_owned(),
                file_key_id: hex(&trailer.key_id),
                key_id: hex(&key_id(k)),
            });
        }
    }
    Ok(())
}

/// Reads the manifest block where the trailer puts it, checks its place, hashes, header
/// and limits, and decodes it. Returns the manifest and the block index it carries.
fn read_manifest(
    src: &mut (impl Read + Seek),
    name: &Path,
    trailer: &Trailer,
    data_start: u64,
    trailer_off: u64,
) -> Result<(codec::Manifest, u32)> {
    let mo = trailer.manifest_offset;
    let ml = trailer.manifest_len;
    if mo < data_start
        || mo.checked_add(ml) != Some(trailer_off)
        || ml < BLOCK_HEADER_LEN as u64
        || ml > (BLOCK_HEADER_LEN as u64 + MAX_BLOCK_STORED as u64)
    {
        return Err(inconsistent(
            name,
            format!("trailer puts the manifest at {mo}+{ml}, the file's manifest area is {data_start}..{trailer_off}"),
        ));
    }
    src.seek(SeekFrom::Start(mo))
        .map_err(io(name, "cannot seek"))?;
    let mut mb = vec![0u8; ml as usize];
    src.read_exact(&mut mb)
        .map_err(|e| eof_is_truncated(name, e))?;
    let checksum = || ArchiveError::Checksum {
        path: name.to_owned(),
        region: Region::Manifest,
    };
    if blake3::hash(&mb) != blake3::Hash::from_bytes(trailer.manifest_hash) {
        return Err(checksum());
    }
    let bh = codec::decode_block_header(mb[..BLOCK_HEADER_LEN].try_into().unwrap())
        .map_err(|d| malformed(name, "manifest block header", d))?;
    let payload = &mb[BLOCK_HEADER_LEN..];
    let prefix16: [u8; 16] = mb[..16].try_into().unwrap();
    if codec::block_hash(&prefix16, payload) != bh.hash {
        return Err(checksum());
    }
    if bh.kind != codec::KIND_MANIFEST || bh.stored_len as usize != payload.len() {
        return Err(malformed(name, "manifest", "not a manifest block".into()));
    }
    if bh.raw_len > MAX_MANIFEST_RAW {
        return Err(ArchiveError::Limit {
            path: name.to_owned(),
            what: "manifest length",
            value: bh.raw_len.into(),
            max: MAX_MANIFEST_RAW.into(),
        });
    }
    let raw = decompress(payload, bh.raw_len).map_err(|d| malformed(name, "manifest", d))?;
    let m = codec::decode_manifest(&raw).map_err(|d| malformed(name, "manifest", d))?;
    Ok((m, bh.index))
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Decompresses a block or manifest payload that announces `raw_len` bytes.
///
/// The output grows as data actually comes out of the decompressor: it is never reserved
/// from the announced length, which a forged file can set to the limit (256 MiB for a
/// manifest) over a few bytes of data. At most `raw_len + 1` bytes are produced, so an
/// overlong payload is refused without being decompressed whole.
fn decompress(payload: &[u8], raw_len: u32) -> std::result::Result<Vec<u8>, String> {
    let zerr = |e: std::io::Error| format!("zstd: {e}");
    // A first guess proportional to the bytes really there (so a forger must write them
    // to make it large); read_to_end grows it from there when the data compresses better.
    let guess = payload.len().saturating_mul(GUESSED_RATIO) + (64 << 10);
    let mut out = Vec::with_capacity(guess.min(raw_len as usize));
    zstd::stream::read::Decoder::with_buffer(payload)
        .map_err(zerr)?
        .take(raw_len as u64 + 1)
        .read_to_end(&mut out)
        .map_err(zerr)?;
    if out.len() != raw_len as usize {
        return Err(format!(
            "decompressed to {} bytes, the header says {raw_len}",
            out.len()
        ));
    }
    Ok(out)
}

/// Compressed to uncompressed size assumed for [`decompress`]'s first allocation.
const GUESSED_RATIO: usize = 8;

fn eof_is_truncated(name: &Path, e: std::io::Error) -> ArchiveError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        ArchiveError::Truncated {
            path: name.to_owned(),
            detail: "the file ended early (changed while reading?)".into(),
        }
    } else {
        ArchiveError::Io {
            path: name.to_owned(),
            what: "cannot read",
            source: e,
        }
    }
}

/// Opens `path` for reading if it is a regular file. Anything else (a FIFO, a device, a
/// directory) is refused before it is opened, since opening or reading it can block
/// forever or fail obscurely; the open file is checked again.
fn open_regular(path: &Path) -> Result<File> {
    let not_a_file = |t: std::fs::FileType| ArchiveError::NotAFile {
        path: path.to_owned(),
        kind: file_kind(t),
    };
    let io = |what: &'static str| {
        move |e: std::io::Error| ArchiveError::Io {
            path: path.to_owned(),
            what,
            source: e,
        }
    };
    let t = std::fs::metadata(path)
        .map_err(io("cannot open backup"))?
        .file_type();
    if !t.is_file() {
        return Err(not_a_file(t));
    }
    let f = File::open(path).map_err(io("cannot open backup"))?;
    let t = f.metadata().map_err(io("cannot open backup"))?.file_type();
    if !t.is_file() {
        return Err(not_a_file(t));
    }
    Ok(f)
}

/// What a file that is not a regular file is, for [`ArchiveError::NotAFile`].
fn file_kind(t: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

fn malformed(name: &Path, what: &str, detail: String) -> ArchiveError {
    ArchiveError::Malformed {
        path: name.to_owned(),
        what: what.to_owned(),
        detail,
    }
}

fn inconsistent(name: &Path, detail: String) -> ArchiveError {
    ArchiveError::Inconsistent {
        path: name.to_owned(),
        detail,
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
