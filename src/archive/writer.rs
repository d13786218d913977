//! The streaming writer: rows in, interval by interval, a backup file out to any `Write`
//! (a file or a socket: it never seeks). It holds one data block being filled and the
//! interval being received; the manifest accumulates zstd-compressed and is written after
//! the data, followed by the trailer (`proto/backup-format.md`).

use super::codec::{self, BlockRec, Enc};
use super::limits::*;
use super::schema::{release_tables, ColumnType, TableKind, TableSchema};
use super::{
    category, checksum_table, key_id, mac_key, ArchiveError, Header, ManifestEntry, Result, Value,
    BLOCK_TARGET_RAW, FORMAT_VERSION, MAGIC, ZSTD_LEVEL,
};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What [`ArchiveWriter::finish`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// Length of the file, trailer included.
    pub bytes: u64,
    /// Data blocks (the manifest not counted).
    pub blocks: u32,
    pub intervals: u64,
    pub interval_rows: u64,
    pub summary_rows: u64,
    pub admin_rows: u64,
    pub local_rows: u64,
    /// Uncompressed and stored (compressed) size of the data blocks' content.
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    /// The manifest block, header included.
    pub manifest_bytes: u64,
    /// blake3 of everything before the trailer (as in the trailer).
    pub file_hash: [u8; 32],
    /// Whether the trailer carries a MAC.
    pub authenticated: bool,
    /// See [`ArchiveWriter::peak_buffered_bytes`].
    pub peak_buffered_bytes: usize,
}

/// The interval between `begin_interval` and `end_interval`.
struct OpenInterval {
    entry: ManifestEntry,
    /// Rows per directory table (flat, `columns` values per row); empty for non-interval
    /// tables.
    rows: Vec<Vec<i64>>,
    bytes: usize,
}

/// Writes a backup file. See the module doc and `proto/backup-format.md`.
pub struct ArchiveWriter<W: Write> {
    out: W,
    /// Names the output in error messages.
    name: PathBuf,
    /// Bytes written so far: the offset of the next block.
    offset: u64,
    file_hash: blake3::Hasher,
    /// Keyed hasher over the same bytes when a site key is configured.
    mac: Option<blake3::Hasher>,
    key_id: [u8; 8],
    header: Header,
    tables: Vec<TableSchema>,
    /// The block being filled, uncompressed; starts with its 4-byte section count.
    block: Vec<u8>,
    /// Its kind (`codec::KIND_*`), 0 when empty.
    block_kind: u8,
    block_sections: u32,
    /// Open table section of a summary/admin/local block: table id, offset of its row
    /// count in `block`, rows so far.
    section: Option<(u16, usize, u32)>,
    blocks_written: u32,
    interval: Option<OpenInterval>,
    /// Last interval written: intervals come in strictly increasing (acd, istart) order,
    /// which keeps the manifest sorted and rules out duplicates without remembering them.
    last_key: Option<(u16, i64)>,
    manifest: zstd::stream::write::Encoder<'static, Vec<u8>>,
    manifest_raw: u64,
    record: Vec<u8>,
    compressor: zstd::bulk::Compressor<'static>,
    peak: usize,
    /// Set after an I/O error or a failed check that left the stream unusable.
    failed: bool,
    sum: ArchiveSummary,
}

/// Checks a header and table directory against the format's limits; returns the encoded
/// header body.
fn check_header(name: &Path, header: &Header, tables: &[TableSchema]) -> Result<Vec<u8>> {
    let usage = |detail: String| ArchiveError::Usage {
        path: name.to_owned(),
        detail,
    };
    if header.categories & !category::ALL != 0 {
        return Err(usage(format!(
            "unknown categories {:#x}",
            header.categories
        )));
    }
    if header.acds.len() > MAX_ACDS as usize
        || header.properties.len() > MAX_PROPERTIES as usize
        || tables.len() > MAX_TABLES as usize
        || tables
            .iter()
            .any(|t| t.columns.len() > MAX_COLUMNS as usize)
    {
        return Err(usage("header over the format's limits".into()));
    }
    let long = std::iter::once(&header.server_id)
        .chain(header.properties.iter().flat_map(|(k, v)| [k, v]))
        .any(|s| s.len() > MAX_STRING as usize);
    if long {
        return Err(usage(format!("a header string is over {MAX_STRING} bytes")));
    }
    if header.range_start > header.range_end {
        return Err(usage("range start after range end".into()));
    }
    let body = codec::encode_header_body(header, tables);
    if body.len() > MAX_HEADER_LEN as usize {
        return Err(usage(format!("header is {} bytes", body.len())));
    }
    Ok(body)
}

/// The file's first bytes: magic, format version, header length, the header body and
/// the hash of all of them.
fn prefix_and_header(body: &[u8]) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(super::PREFIX_LEN + body.len() + 32);
    let mut e = Enc(&mut prefix);
    e.bytes(&MAGIC);
    e.u16(FORMAT_VERSION);
    e.u16(0);
    e.u32(body.len() as u32);
    e.bytes(body);
    let h = blake3::hash(&prefix);
    prefix.extend_from_slice(h.as_bytes());
    prefix
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts a backup: writes the header. `name` names the output in messages; `key` is
    /// the site key ([`super::site_key_from_key_file`]) when backups are authenticated.
    ///
    /// # Errors
    /// The header does not fit the limits, or the header cannot be written.
    pub fn new(
        out: W,
        name: impl Into<PathBuf>,
        header: Header,
        key: Option<&[u8; 32]>,
    ) -> Result<Self> {
        Self::with_tables(out, name, header, key, release_tables())
    }

    /// [`ArchiveWriter::new`] with another table directory: for tests of the
    /// compatibility rules (a file from a release with other columns).
    #[doc(hidden)]
    pub fn with_tables(
        out: W,
        name: impl Into<PathBuf>,
        header: Header,
        key: Option<&[u8; 32]>,
        tables: Vec<TableSchema>,
    ) -> Result<Self> {
        let name = name.into();
        let body = check_header(&name, &header, &tables)?;
        let manifest = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL).map_err(|e| {
            ArchiveError::Io {
                path: name.clone(),
                what: "cannot start the manifest compressor",
                source: e,
            }
        })?;
        let compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| ArchiveError::Io {
            path: name.clone(),
            what: "cannot start the block compressor",
            source: e,
        })?;
        let mut w = ArchiveWriter {
            out,
            name,
            offset: 0,
            file_hash: blake3::Hasher::new(),
            mac: key.map(|k| blake3::Hasher::new_keyed(&mac_key(k))),
            key_id: key.map(key_id).unwrap_or_default(),
            header,
            tables,
            block: Vec::with_capacity(BLOCK_TARGET_RAW + (BLOCK_TARGET_RAW >> 3)),
            block_kind: 0,
            block_sections: 0,
            section: None,
            blocks_written: 0,
            interval: None,
            last_key: None,
            manifest,
            manifest_raw: 0,
            record: Vec::new(),
            compressor,
            peak: 0,
            failed: false,
            sum: ArchiveSummary {
                authenticated: key.is_some(),
                ..ArchiveSummary::default()
            },
        };
        w.block.extend_from_slice(&[0; 4]);
        w.emit(&prefix_and_header(&body))?;
        Ok(w)
    }

    /// The most bytes the writer has held at once for data (the block being filled, the
    /// interval being received and a compressed block on its way out). The compressed
    /// manifest is not counted: see [`ArchiveWriter::manifest_buffered_bytes`].
    pub fn peak_buffered_bytes(&self) -> usize {
        self.peak
    }

    /// The compressed manifest held so far (grows by a few bytes per interval).
    pub fn manifest_buffered_bytes(&self) -> usize {
        self.manifest.get_ref().len()
    }

    fn usage(&self, detail: impl Into<String>) -> ArchiveError {
        ArchiveError::Usage {
            path: self.name.clone(),
            detail: detail.into(),
        }
    }

    fn check_usable(&self) -> Result<()> {
        if self.failed {
            return Err(self.usage("an earlier error left the backup unusable"));
        }
        Ok(())
    }

    fn note_buffered(&mut self, extra: usize) {
        let open = self.interval.as_ref().map_or(0, |i| i.bytes);
        self.peak = self.peak.max(self.block.len() + open + extra);
    }

    /// Writes bytes to the output and the running hashes.
    fn emit(&mut self, b: &[u8]) -> Result<()> {
        if let Err(e) = self.out.write_all(b) {
            self.failed = true;
            return Err(ArchiveError::Io {
                path: self.name.clone(),
                what: "cannot write backup",
                source: e,
            });
        }
        self.file_hash.update(b);
        if let Some(m) = &mut self.mac {
            m.update(b);
        }
        self.offset += b.len() as u64;
        Ok(())
    }

    fn add_manifest_record(&mut self) -> Result<()> {
        self.manifest_raw += self.record.len() as u64;
        if self.manifest_raw > MAX_MANIFEST_RAW as u64 {
            self.failed = true;
            return Err(self.usage(format!(
                "manifest over {MAX_MANIFEST_RAW} bytes: split the backup by date"
            )));
        }
        let r = std::mem::take(&mut self.record);
        let res = self.manifest.write_all(&r);
        self.record = r;
        self.record.clear();
        res.map_err(|e| ArchiveError::Io {
            path: self.name.clone(),
            what: "cannot compress the manifest",
            source: e,
        })
    }

    fn table(&self, name: &str, kind: TableKind) -> Result<usize> {
        match self.tables.iter().position(|t| t.name == name) {
            Some(i) if self.tables[i].kind == kind => Ok(i),
            Some(_) => Err(self.usage(format!("table {name} is not a {kind:?} table"))),
            None => Err(self.usage(format!("unknown table {name}"))),
        }
    }

    fn need_category(&self, bit: u8, what: &str) -> Result<()> {
        if self.header.categories & bit == 0 {
            return Err(self.usage(format!(
                "{what} rows, but the header does not list that category"
            )));
        }
        if self.interval.is_some() {
            return Err(self.usage(format!("{what} rows inside an interval")));
        }
        Ok(())
    }

    /// Closes the open table section of a non-interval block.
    fn close_section(&mut self) {
        if let Some((_, at, n)) = self.section.take() {
            self.block[at..at + 4].copy_from_slice(&n.to_le_bytes());
        }
    }

    /// Compresses and writes the block being filled, if any.
    fn flush_block(&mut self) -> Result<()> {
        if self.block_kind == 0 {
            return Ok(());
        }
        if self.block_sections == 0 {
            // Opened for an interval that was then refused: nothing to write.
            self.block_kind = 0;
            return Ok(());
        }
        self.close_section();
        let sections = self.block_sections;
        self.block[..4].copy_from_slice(&sections.to_le_bytes());
        let payload = self.compressor.compress(&self.block).map_err(|e| {
            self.failed = true;
            ArchiveError::Io {
                path: self.name.clone(),
                what: "cannot compress a block",
                source: e,
            }
        })?;
        self.note_buffered(payload.len());
        let raw_len = self.block.len() as u32;
        let index = self.blocks_written;
        let prefix =
            codec::block_header_prefix(self.block_kind, index, raw_len, payload.len() as u32);
        let hash = codec::block_hash(&prefix, &payload);
        let rec = BlockRec {
            index,
            kind: self.block_kind,
            offset: self.offset,
            len: (super::BLOCK_HEADER_LEN + payload.len()) as u64,
            raw_len,
            sections,
            hash,
        };
        self.emit(&prefix)?;
        self.emit(&hash)?;
        self.emit(&payload)?;
        self.sum.raw_bytes += raw_len as u64;
        self.sum.stored_bytes += payload.len() as u64;
        codec::encode_block_rec(&mut self.record, &rec);
        self.add_manifest_record()?;
        self.blocks_written += 1;
        self.block.clear();
        self.block.extend_from_slice(&[0; 4]);
        self.block_kind = 0;
        self.block_sections = 0;
        Ok(())
    }

    /// Makes the block being filled one of `kind`, flushing one of another kind.
    fn want_block(&mut self, kind: u8) -> Result<()> {
        if self.block_kind != kind {
            self.flush_block()?;
            self.block_kind = kind;
        }
        Ok(())
    }

    /// Starts an interval. `entry` is its `interval_status` row; its location fields are
    /// ignored. Intervals must come in strictly increasing `(acd, istart)` order.
    ///
    /// # Errors
    /// [`ArchiveError::Usage`]: an interval is already open, the order is wrong, the ACD
    /// or start is outside the header's ACDs and range, or history is not a category.
    pub fn begin_interval(&mut self, entry: ManifestEntry) -> Result<()> {
        self.check_usable()?;
        self.need_category(category::HISTORY, "interval")?;
        let key = (entry.acd, entry.istart);
        if self.last_key.is_some_and(|k| k >= key) {
            return Err(self.usage(format!(
                "interval acd {} istart {} out of (acd, istart) order",
                entry.acd, entry.istart
            )));
        }
        if !self.header.acds.contains(&entry.acd) {
            return Err(self.usage(format!("ACD {} is not in the header", entry.acd)));
        }
        if entry.istart < self.header.range_start || entry.istart >= self.header.range_end {
            return Err(self.usage(format!(
                "interval {} outside the header's range",
                entry.istart
            )));
        }
        if [&entry.row_date, &entry.reasons, &entry.source]
            .iter()
            .any(|s| s.len() > MAX_STRING as usize)
        {
            return Err(self.usage("interval status string too long"));
        }
        self.want_block(codec::KIND_INTERVAL)?;
        self.interval = Some(OpenInterval {
            entry,
            rows: vec![Vec::new(); self.tables.len()],
            bytes: 0,
        });
        Ok(())
    }

    /// Adds a row of the open interval to interval table `table` (`hsplit`, ...): the
    /// table's columns in directory order, `acd, keys..., istart, items...`.
    ///
    /// # Errors
    /// No interval is open, the table is not an interval table, the row has the wrong
    /// number of values or another ACD or interval start.
    pub fn row(&mut self, table: &str, values: &[i64]) -> Result<()> {
        self.rows(table, values)
    }

    /// Adds rows of the open interval to interval table `table`, flat: any number of
    /// rows of the table's columns one after the other (as [`ArchiveWriter::row`]).
    ///
    /// # Errors
    /// As [`ArchiveWriter::row`]; the length is not a whole number of rows.
    pub fn rows(&mut self, table: &str, flat: &[i64]) -> Result<()> {
        self.check_usable()?;
        let id = self.table(table, TableKind::Interval)?;
        let t = &self.tables[id];
        let Some(open) = self.interval.as_mut() else {
            return Err(self.usage(format!("{table} row outside an interval")));
        };
        let n = t.columns.len();
        if n == 0 || !flat.len().is_multiple_of(n) {
            return Err(self.usage(format!(
                "{table} rows: {} values is not a whole number of {n}-column rows",
                flat.len()
            )));
        }
        let ist = t.key_columns as usize - 1;
        let (acd, istart) = (open.entry.acd as i64, open.entry.istart);
        if let Some(r) = flat
            .chunks_exact(n)
            .find(|r| r[0] != acd || r[ist] != istart)
        {
            return Err(self.usage(format!(
                "{table} row for acd {} istart {} in interval acd {acd} istart {istart}",
                r[0], r[ist]
            )));
        }
        open.rows[id].extend_from_slice(flat);
        open.bytes += flat.len() * 8;
        if open.bytes + 64 > MAX_BLOCK_RAW as usize {
            self.failed = true;
            return Err(self.usage(format!(
                "interval over {MAX_BLOCK_RAW} bytes: too many rows"
            )));
        }
        self.note_buffered(0);
        Ok(())
    }

    /// Closes the open interval: sorts its rows by key, checks them against the status
    /// row's row count and checksum, and appends the interval to the current block.
    ///
    /// # Errors
    /// No interval is open; two rows share a key; the rows do not match the status row's
    /// `row_count` or `checksum` (the database's status and rows disagree: back up again).
    pub fn end_interval(&mut self) -> Result<()> {
        self.check_usable()?;
        let Some(open) = self.interval.take() else {
            return Err(self.usage("end_interval without begin_interval"));
        };
        let mut entry = open.entry;
        let mut hasher = blake3::Hasher::new();
        let mut sorted: Vec<(usize, Vec<&[i64]>)> = Vec::new();
        let mut total = 0u64;
        let mut size = 4 + 2 + 8 + 2;
        for (id, t) in self.tables.iter().enumerate() {
            if t.kind != TableKind::Interval {
                continue;
            }
            let n = t.columns.len();
            let k = t.key_columns as usize;
            let mut rows: Vec<&[i64]> = open.rows[id].chunks_exact(n).collect();
            // Rows usually come in key order already (the database's primary key).
            let in_order = rows.windows(2).all(|w| w[0][..k] < w[1][..k]);
            if !in_order {
                rows.sort_unstable_by(|a, b| a[..k].cmp(&b[..k]));
                if let Some(w) = rows.windows(2).find(|w| w[0][..k] == w[1][..k]) {
                    let dup = w[0][..k].to_vec();
                    return Err(self.usage(format!("{}: two rows with key {dup:?}", t.name)));
                }
                let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
                checksum_table(&mut hasher, t, &flat);
            } else {
                checksum_table(&mut hasher, t, &open.rows[id]);
            }
            total += rows.len() as u64;
            if !rows.is_empty() {
                size += 6 + rows.len() * n * 8;
                sorted.push((id, rows));
            }
        }
        let checksum = *hasher.finalize().as_bytes();
        if total != entry.row_count || checksum != entry.checksum {
            return Err(self.usage(format!(
                "interval acd {} istart {}: {total} rows with checksum {}, but its status \
                 row says {} rows with checksum {}",
                entry.acd,
                entry.istart,
                blake3::Hash::from_bytes(checksum).to_hex(),
                entry.row_count,
                entry.checksum_hex()
            )));
        }
        if self.block.len() > 4 && self.block.len() + size > BLOCK_TARGET_RAW {
            self.flush_block()?;
            self.block_kind = codec::KIND_INTERVAL;
        }
        let start = self.block.len();
        let mut e = Enc(&mut self.block);
        e.u16(entry.acd);
        e.i64(entry.istart);
        e.u16(sorted.len() as u16);
        for (id, rows) in &sorted {
            e.u16(*id as u16);
            e.u32(rows.len() as u32);
            let ncols = self.tables[*id].columns.len();
            codec::encode_int_rows(e.0, FORMAT_VERSION, ncols, rows);
        }
        drop(sorted);
        entry.block = self.blocks_written;
        entry.raw_offset = start as u32;
        entry.raw_len = (self.block.len() - start) as u32;
        self.block_sections += 1;
        self.peak = self.peak.max(self.block.len() + open.bytes);
        codec::encode_entry_rec(&mut self.record, &entry);
        self.add_manifest_record()?;
        self.last_key = Some((entry.acd, entry.istart));
        self.sum.intervals += 1;
        self.sum.interval_rows += total;
        if self.block.len() >= BLOCK_TARGET_RAW {
            self.flush_block()?;
        }
        Ok(())
    }

    /// Appends a row to the open table section, starting a section (and a block of the
    /// right kind) as needed.
    fn typed_row(&mut self, id: usize, bkind: u8, encode: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        self.want_block(bkind)?;
        if self.section.is_none_or_other(id as u16) {
            self.close_section();
            self.block.extend_from_slice(&(id as u16).to_le_bytes());
            let at = self.block.len();
            self.block.extend_from_slice(&[0; 4]);
            self.section = Some((id as u16, at, 0));
            self.block_sections += 1;
        }
        encode(&mut self.block);
        if let Some(s) = self.section.as_mut() {
            s.2 += 1;
        }
        self.note_buffered(0);
        let full = self.block.len() >= BLOCK_TARGET_RAW
            || self.section.is_some_and(|s| s.2 >= MAX_SECTION_ROWS);
        if full {
            self.flush_block()?;
        }
        Ok(())
    }

    /// Adds a summary row (`dsplit`, `wagent`, `mvdn`, ...): `acd, keys..., row_date,
    /// items..., incomplete` with `row_date` as [`super::date_to_i64`].
    ///
    /// # Errors
    /// Not a summary table, wrong number of values, an interval is open, or history is
    /// not a category of the header.
    pub fn summary_row(&mut self, table: &str, values: &[i64]) -> Result<()> {
        self.check_usable()?;
        self.need_category(category::HISTORY, "summary")?;
        let id = self.table(table, TableKind::Summary)?;
        if values.len() != self.tables[id].columns.len() {
            return Err(self.usage(format!(
                "{table} row has {} values, the table has {} columns",
                values.len(),
                self.tables[id].columns.len()
            )));
        }
        self.typed_row(id, codec::KIND_SUMMARY, |b| {
            for v in values {
                b.extend_from_slice(&v.to_le_bytes());
            }
        })?;
        self.sum.summary_rows += 1;
        Ok(())
    }

    fn check_typed(&self, id: usize, values: &[Value]) -> Result<()> {
        let t = &self.tables[id];
        if values.len() != t.columns.len() {
            return Err(self.usage(format!(
                "{} row has {} values, the table has {} columns",
                t.name,
                values.len(),
                t.columns.len()
            )));
        }
        for (c, v) in t.columns.iter().zip(values) {
            let ok = match (c.ty, v) {
                (ColumnType::Int, Value::Int(_)) => true,
                (ColumnType::Text, Value::Text(s)) => s.len() <= MAX_STRING as usize,
                _ => false,
            };
            if !ok {
                return Err(self.usage(format!(
                    "{}.{}: value {v:?} does not fit column type {:?}",
                    t.name, c.name, c.ty
                )));
            }
        }
        Ok(())
    }

    /// Adds an ACD administration row (`skill_def`, `vdn_def`, `tkgrp_def`), columns in
    /// directory order.
    ///
    /// # Errors
    /// Not an admin table, values that do not match the columns, an interval is open, or
    /// admin is not a category of the header.
    pub fn admin_row(&mut self, table: &str, values: &[Value]) -> Result<()> {
        self.check_usable()?;
        self.need_category(category::ADMIN, "admin")?;
        let id = self.table(table, TableKind::Admin)?;
        self.check_typed(id, values)?;
        self.typed_row(id, codec::KIND_ADMIN, |b| {
            values.iter().for_each(|v| codec::encode_value(b, v))
        })?;
        self.sum.admin_rows += 1;
        Ok(())
    }

    /// Adds a `local_settings` row.
    ///
    /// # Errors
    /// An interval is open, or local is not a category of the header.
    pub fn local_setting(&mut self, key: &str, value: &str) -> Result<()> {
        self.local_row(
            "local_settings",
            &[Value::Text(key.into()), Value::Text(value.into())],
        )
    }

    /// Adds a row to a local system administration table.
    ///
    /// # Errors
    /// As [`ArchiveWriter::admin_row`], for the local category.
    pub fn local_row(&mut self, table: &str, values: &[Value]) -> Result<()> {
        self.check_usable()?;
        self.need_category(category::LOCAL, "local")?;
        let id = self.table(table, TableKind::Local)?;
        self.check_typed(id, values)?;
        self.typed_row(id, codec::KIND_LOCAL, |b| {
            values.iter().for_each(|v| codec::encode_value(b, v))
        })?;
        self.sum.local_rows += 1;
        Ok(())
    }

    /// Writes the last block, the manifest and the trailer, and flushes the output.
    ///
    /// # Errors
    /// An interval is still open, or the output cannot be written.
    pub fn finish(mut self) -> Result<ArchiveSummary> {
        self.check_usable()?;
        if self.interval.is_some() {
            return Err(self.usage("finish with an interval still open"));
        }
        self.flush_block()?;
        let rows = self.sum.interval_rows;
        codec::encode_end_rec(
            &mut self.record,
            self.blocks_written,
            self.sum.intervals,
            rows,
        );
        self.add_manifest_record()?;
        let enc = std::mem::replace(
            &mut self.manifest,
            zstd::stream::write::Encoder::new(Vec::new(), 1).map_err(|e| ArchiveError::Io {
                path: self.name.clone(),
                what: "cannot compress the manifest",
                source: e,
            })?,
        );
        let payload = enc.finish().map_err(|e| ArchiveError::Io {
            path: self.name.clone(),
            what: "cannot compress the manifest",
            source: e,
        })?;
        let prefix = codec::block_header_prefix(
            codec::KIND_MANIFEST,
            self.blocks_written,
            self.manifest_raw as u32,
            payload.len() as u32,
        );
        let hash = codec::block_hash(&prefix, &payload);
        let manifest_offset = self.offset;
        let mut mblock = Vec::with_capacity(super::BLOCK_HEADER_LEN + payload.len());
        mblock.extend_from_slice(&prefix);
        mblock.extend_from_slice(&hash);
        mblock.extend_from_slice(&payload);
        self.emit(&mblock)?;
        let mut trailer = codec::Trailer {
            version: FORMAT_VERSION,
            mac_kind: self.mac.is_some() as u8,
            manifest_offset,
            manifest_len: mblock.len() as u64,
            manifest_hash: *blake3::hash(&mblock).as_bytes(),
            file_hash: *self.file_hash.finalize().as_bytes(),
            key_id: self.key_id,
            mac: [0; 32],
        };
        if let Some(m) = &mut self.mac {
            m.update(&codec::encode_trailer_head(&trailer));
            trailer.mac = *m.finalize().as_bytes();
        }
        let tb = codec::encode_trailer(&trailer);
        self.emit(&tb)?;
        self.out.flush().map_err(|e| ArchiveError::Io {
            path: self.name.clone(),
            what: "cannot flush backup",
            source: e,
        })?;
        self.sum.bytes = self.offset;
        self.sum.blocks = self.blocks_written;
        self.sum.manifest_bytes = mblock.len() as u64;
        self.sum.file_hash = trailer.file_hash;
        self.sum.peak_buffered_bytes = self.peak;
        Ok(self.sum)
    }
}

trait SectionExt {
    fn is_none_or_other(&self, id: u16) -> bool;
}

impl SectionExt for Option<(u16, usize, u32)> {
    fn is_none_or_other(&self, id: u16) -> bool {
        self.is_none_or(|s| s.0 != id)
    }
}
