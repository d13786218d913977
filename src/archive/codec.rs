//! Byte-level encoding of the backup structures: header body, block header, trailer,
//! manifest records and table sections. Pure functions over byte slices, no I/O: every
//! decoder checks lengths and counts against `limits` before allocating and returns a
//! reason string that the reader wraps with the file name.

use super::limits::*;
use super::schema::{Column, ColumnType, TableKind, TableSchema};
use super::{Header, ManifestEntry, Status, Value};

pub(crate) type DResult<T> = std::result::Result<T, String>;

/// Appends little-endian fields to a buffer.
pub(crate) struct Enc<'a>(pub &'a mut Vec<u8>);

impl Enc<'_> {
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
    pub fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
}

/// Reads little-endian fields from a slice; every read is bounds-checked.
pub(crate) struct Dec<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Dec<'a> {
    pub fn new(buf: &'a [u8]) -> Dec<'a> {
        Dec { buf, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn take(&mut self, n: usize) -> DResult<&'a [u8]> {
        if self.remaining() < n {
            return Err(format!(
                "needs {n} bytes at offset {}, only {} left",
                self.pos,
                self.remaining()
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn u8(&mut self) -> DResult<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> DResult<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    pub fn u32(&mut self) -> DResult<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    pub fn u64(&mut self) -> DResult<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    pub fn i64(&mut self) -> DResult<i64> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    pub fn arr32(&mut self) -> DResult<[u8; 32]> {
        Ok(self.take(32)?.try_into().unwrap())
    }
    pub fn str(&mut self, what: &str) -> DResult<String> {
        let n = self.u32()?;
        if n > MAX_STRING {
            return Err(format!(
                "{what}: string length {n} over the limit of {MAX_STRING}"
            ));
        }
        let b = self.take(n as usize)?;
        String::from_utf8(b.to_vec()).map_err(|_| format!("{what}: not UTF-8"))
    }
    /// A count, checked against `max` and against the bytes left (each item takes at
    /// least `min_item` bytes), so a lying count cannot make us allocate.
    pub fn count(&mut self, n: u64, max: u64, min_item: usize, what: &str) -> DResult<usize> {
        if n > max {
            return Err(format!("{what} {n} over the limit of {max}"));
        }
        if n.saturating_mul(min_item as u64) > self.remaining() as u64 {
            return Err(format!(
                "{what} {n} does not fit in the {} bytes left",
                self.remaining()
            ));
        }
        Ok(n as usize)
    }
    /// An unsigned LEB128 varint of at most 10 bytes that fits in 64 bits.
    #[inline]
    pub fn varint(&mut self) -> DResult<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(format!("varint cut short at offset {}", self.pos));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(format!("varint over 64 bits at offset {}", self.pos - 1));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        unreachable!("the tenth byte ends the varint or is refused")
    }
    pub fn end(&self, what: &str) -> DResult<()> {
        if self.remaining() != 0 {
            return Err(format!(
                "{} unexpected bytes after {what}",
                self.remaining()
            ));
        }
        Ok(())
    }
}

// ---- header ----------------------------------------------------------------------------

pub(crate) fn encode_header_body(h: &Header, tables: &[TableSchema]) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut e = Enc(&mut buf);
    e.u32(h.schema_version);
    e.i64(h.created_at);
    e.str(&h.server_id);
    e.i64(h.range_start);
    e.i64(h.range_end);
    e.u8(h.categories);
    e.u16(h.acds.len() as u16);
    for a in &h.acds {
        e.u16(*a);
    }
    e.u16(h.properties.len() as u16);
    for (k, v) in &h.properties {
        e.str(k);
        e.str(v);
    }
    e.u16(tables.len() as u16);
    for t in tables {
        e.u8(t.kind.code());
        e.str(&t.name);
        e.u16(t.key_columns);
        e.u16(t.columns.len() as u16);
        for c in &t.columns {
            e.u8(c.ty.code());
            e.str(&c.name);
        }
    }
    buf
}

pub(crate) fn decode_header_body(b: &[u8]) -> DResult<(Header, Vec<TableSchema>)> {
    let mut d = Dec::new(b);
    let schema_version = d.u32()?;
    let created_at = d.i64()?;
    let server_id = d.str("server id")?;
    let range_start = d.i64()?;
    let range_end = d.i64()?;
    let categories = d.u8()?;
    if categories & !super::category::ALL != 0 {
        return Err(format!("unknown data categories {categories:#04x}"));
    }
    let n = d.u16()?;
    let n = d.count(n.into(), MAX_ACDS.into(), 2, "ACD count")?;
    let mut acds = Vec::with_capacity(n);
    for _ in 0..n {
        acds.push(d.u16()?);
    }
    let n = d.u16()?;
    let n = d.count(n.into(), MAX_PROPERTIES.into(), 8, "property count")?;
    let mut properties = Vec::with_capacity(n);
    for _ in 0..n {
        let k = d.str("property name")?;
        let v = d.str("property value")?;
        properties.push((k, v));
    }
    let n = d.u16()?;
    let n = d.count(n.into(), MAX_TABLES.into(), 9, "table count")?;
    let mut tables = Vec::with_capacity(n);
    for _ in 0..n {
        let kc = d.u8()?;
        let kind = TableKind::from_code(kc).ok_or(format!("unknown table kind {kc}"))?;
        let name = d.str("table name")?;
        let key_columns = d.u16()?;
        let nc = d.u16()?;
        let nc = d.count(nc.into(), MAX_COLUMNS.into(), 5, "column count")?;
        let mut columns = Vec::with_capacity(nc);
        for _ in 0..nc {
            let tc = d.u8()?;
            let ty = ColumnType::from_code(tc)
                .ok_or(format!("table {name}: unknown column type {tc}"))?;
            let cname = d.str("column name")?;
            columns.push(Column { name: cname, ty });
        }
        if nc == 0 || key_columns == 0 || key_columns as usize > nc {
            return Err(format!(
                "table {name}: {key_columns} key columns of {nc} columns"
            ));
        }
        if kind == TableKind::Interval || kind == TableKind::Summary {
            if columns.iter().any(|c| c.ty != ColumnType::Int) {
                return Err(format!(
                    "table {name}: interval and summary columns are integers"
                ));
            }
            if kind == TableKind::Interval
                && (key_columns < 2
                    || columns[0].name != "acd"
                    || columns[key_columns as usize - 1].name != "istart")
            {
                return Err(format!(
                    "table {name}: interval keys must start with acd and end with istart"
                ));
            }
        }
        if tables.iter().any(|t: &TableSchema| t.name == name) {
            return Err(format!("table {name} listed twice"));
        }
        tables.push(TableSchema {
            kind,
            name,
            key_columns,
            columns,
        });
    }
    d.end("header")?;
    Ok((
        Header {
            schema_version,
            created_at,
            server_id,
            acds,
            range_start,
            range_end,
            categories,
            properties,
        },
        tables,
    ))
}

// ---- blocks ----------------------------------------------------------------------------

/// Block kinds (byte 0 of a block header).
pub(crate) const KIND_INTERVAL: u8 = 1;
pub(crate) const KIND_SUMMARY: u8 = 2;
pub(crate) const KIND_ADMIN: u8 = 3;
pub(crate) const KIND_LOCAL: u8 = 4;
pub(crate) const KIND_MANIFEST: u8 = 0x10;
/// Codec byte: zstd frame. The only codec of format 1.
pub(crate) const CODEC_ZSTD: u8 = 1;

pub(crate) fn block_kind_for(t: TableKind) -> u8 {
    match t {
        TableKind::Interval => KIND_INTERVAL,
        TableKind::Summary => KIND_SUMMARY,
        TableKind::Admin => KIND_ADMIN,
        TableKind::Local => KIND_LOCAL,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockHeader {
    pub kind: u8,
    pub codec: u8,
    pub index: u32,
    pub raw_len: u32,
    pub stored_len: u32,
    pub hash: [u8; 32],
}

/// The first 16 bytes of a block header (everything but the hash).
pub(crate) fn block_header_prefix(kind: u8, index: u32, raw_len: u32, stored_len: u32) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = kind;
    p[1] = CODEC_ZSTD;
    p[4..8].copy_from_slice(&index.to_le_bytes());
    p[8..12].copy_from_slice(&raw_len.to_le_bytes());
    p[12..16].copy_from_slice(&stored_len.to_le_bytes());
    p
}

/// blake3 over the header prefix and the stored payload.
pub(crate) fn block_hash(prefix: &[u8; 16], payload: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(prefix);
    h.update(payload);
    *h.finalize().as_bytes()
}

pub(crate) fn decode_block_header(b: &[u8; 48]) -> DResult<BlockHeader> {
    let mut d = Dec::new(b);
    let kind = d.u8()?;
    let codec = d.u8()?;
    let reserved = d.u16()?;
    let index = d.u32()?;
    let raw_len = d.u32()?;
    let stored_len = d.u32()?;
    let hash = d.arr32()?;
    if reserved != 0 {
        return Err(format!("reserved bytes are {reserved:#06x}, not zero"));
    }
    if codec != CODEC_ZSTD {
        return Err(format!("unknown codec {codec}"));
    }
    Ok(BlockHeader {
        kind,
        codec,
        index,
        raw_len,
        stored_len,
        hash,
    })
}

// ---- trailer ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trailer {
    pub version: u16,
    /// 0: no MAC; 1: blake3 keyed hash.
    pub mac_kind: u8,
    pub manifest_offset: u64,
    pub manifest_len: u64,
    pub manifest_hash: [u8; 32],
    pub file_hash: [u8; 32],
    pub key_id: [u8; 8],
    pub mac: [u8; 32],
}

/// Offset of the MAC in the trailer: the MAC covers the file and the trailer up to here.
pub(crate) const TRAILER_MAC_AT: usize = 112;
/// Offset of the trailer's own hash (over everything before it in the trailer).
pub(crate) const TRAILER_HASH_AT: usize = 144;

pub(crate) fn encode_trailer_head(t: &Trailer) -> [u8; TRAILER_MAC_AT] {
    let mut b = Vec::with_capacity(TRAILER_MAC_AT);
    let mut e = Enc(&mut b);
    e.bytes(&super::TRAILER_MAGIC);
    e.u16(t.version);
    e.u8(t.mac_kind);
    e.bytes(&[0; 5]);
    e.u64(t.manifest_offset);
    e.u64(t.manifest_len);
    e.bytes(&t.manifest_hash);
    e.bytes(&t.file_hash);
    e.bytes(&t.key_id);
    e.bytes(&[0; 8]);
    b.try_into().unwrap()
}

pub(crate) fn encode_trailer(t: &Trailer) -> [u8; super::TRAILER_LEN] {
    let mut out = [0u8; super::TRAILER_LEN];
    out[..TRAILER_MAC_AT].copy_from_slice(&encode_trailer_head(t));
    out[TRAILER_MAC_AT..TRAILER_HASH_AT].copy_from_slice(&t.mac);
    let h = blake3::hash(&out[..TRAILER_HASH_AT]);
    out[TRAILER_HASH_AT..].copy_from_slice(h.as_bytes());
    out
}

/// Decodes a trailer whose magic and hash have been checked.
pub(crate) fn decode_trailer(b: &[u8; super::TRAILER_LEN]) -> DResult<Trailer> {
    let mut d = Dec::new(b);
    d.take(8)?;
    let version = d.u16()?;
    let mac_kind = d.u8()?;
    if d.take(5)? != [0; 5] {
        return Err("reserved bytes are not zero".into());
    }
    let manifest_offset = d.u64()?;
    let manifest_len = d.u64()?;
    let manifest_hash = d.arr32()?;
    let file_hash = d.arr32()?;
    let key_id: [u8; 8] = d.take(8)?.try_into().unwrap();
    if d.take(8)? != [0; 8] {
        return Err("reserved bytes are not zero".into());
    }
    let mac = d.arr32()?;
    if mac_kind > 1 {
        return Err(format!("unknown MAC kind {mac_kind}"));
    }
    Ok(Trailer {
        version,
        mac_kind,
        manifest_offset,
        manifest_len,
        manifest_hash,
        file_hash,
        key_id,
        mac,
    })
}

// ---- manifest --------------------------------------------------------------------------

pub(crate) const REC_END: u8 = 0;
pub(crate) const REC_BLOCK: u8 = 1;
pub(crate) const REC_INTERVAL: u8 = 2;

/// A data block as the manifest's block table records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockRec {
    pub index: u32,
    pub kind: u8,
    pub offset: u64,
    /// Whole block, header included.
    pub len: u64,
    pub raw_len: u32,
    /// Sections in the block: intervals for an interval block, table sections otherwise.
    pub sections: u32,
    pub hash: [u8; 32],
}

fn record(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
}

pub(crate) fn encode_block_rec(out: &mut Vec<u8>, r: &BlockRec) {
    let mut b = Vec::with_capacity(61);
    let mut e = Enc(&mut b);
    e.u32(r.index);
    e.u8(r.kind);
    e.u64(r.offset);
    e.u64(r.len);
    e.u32(r.raw_len);
    e.u32(r.sections);
    e.bytes(&r.hash);
    record(out, REC_BLOCK, &b);
}

pub(crate) fn encode_entry_rec(out: &mut Vec<u8>, m: &ManifestEntry) {
    let mut b = Vec::with_capacity(160);
    let mut e = Enc(&mut b);
    e.u16(m.acd);
    e.i64(m.istart);
    e.u32(m.intrvl);
    e.str(&m.row_date);
    e.u32(m.starttime);
    e.u8(match m.status {
        Status::Complete => 1,
        Status::Incomplete => 2,
    });
    e.str(&m.reasons);
    e.str(&m.source);
    e.i64(m.epoch);
    e.i64(m.first_seq);
    e.i64(m.last_seq);
    e.i64(m.updated_at);
    e.u64(m.row_count);
    e.bytes(&m.checksum);
    e.u32(m.block);
    e.u32(m.raw_offset);
    e.u32(m.raw_len);
    record(out, REC_INTERVAL, &b);
}

pub(crate) fn encode_end_rec(out: &mut Vec<u8>, blocks: u32, entries: u64, rows: u64) {
    let mut b = Vec::with_capacity(20);
    let mut e = Enc(&mut b);
    e.u32(blocks);
    e.u64(entries);
    e.u64(rows);
    record(out, REC_END, &b);
}

pub(crate) struct Manifest {
    pub blocks: Vec<BlockRec>,
    pub entries: Vec<ManifestEntry>,
    pub total_rows: u64,
}

pub(crate) fn decode_manifest(raw: &[u8]) -> DResult<Manifest> {
    let mut d = Dec::new(raw);
    let mut blocks = Vec::new();
    let mut entries = Vec::new();
    loop {
        let tag = d.u8()?;
        let len = d.u32()?;
        if len > MAX_RECORD_LEN {
            return Err(format!(
                "record length {len} over the limit of {MAX_RECORD_LEN}"
            ));
        }
        let mut r = Dec::new(d.take(len as usize)?);
        match tag {
            REC_END => {
                let nb = r.u32()?;
                let ne = r.u64()?;
                let rows = r.u64()?;
                r.end("end record")?;
                d.end("end record")?;
                if nb as usize != blocks.len() || ne != entries.len() as u64 {
                    return Err(format!(
                        "end record counts {nb} blocks and {ne} intervals, the manifest lists {} and {}",
                        blocks.len(),
                        entries.len()
                    ));
                }
                return Ok(Manifest {
                    blocks,
                    entries,
                    total_rows: rows,
                });
            }
            REC_BLOCK => {
                let rec = BlockRec {
                    index: r.u32()?,
                    kind: r.u8()?,
                    offset: r.u64()?,
                    len: r.u64()?,
                    raw_len: r.u32()?,
                    sections: r.u32()?,
                    hash: r.arr32()?,
                };
                r.end("block record")?;
                if blocks.len() as u64 >= MAX_BLOCKS as u64 {
                    return Err(format!("more than {MAX_BLOCKS} blocks"));
                }
                blocks.push(rec);
            }
            REC_INTERVAL => {
                let acd = r.u16()?;
                let istart = r.i64()?;
                let intrvl = r.u32()?;
                let row_date = r.str("row_date")?;
                let starttime = r.u32()?;
                let status = match r.u8()? {
                    1 => Status::Complete,
                    2 => Status::Incomplete,
                    s => return Err(format!("interval {acd}/{istart}: unknown status {s}")),
                };
                let reasons = r.str("reasons")?;
                let source = r.str("source")?;
                let epoch = r.i64()?;
                let first_seq = r.i64()?;
                let last_seq = r.i64()?;
                let updated_at = r.i64()?;
                let row_count = r.u64()?;
                let checksum = r.arr32()?;
                let block = r.u32()?;
                let raw_offset = r.u32()?;
                let raw_len = r.u32()?;
                r.end("interval record")?;
                entries.push(ManifestEntry {
                    acd,
                    istart,
                    intrvl,
                    row_date,
                    starttime,
                    status,
                    reasons,
                    source,
                    epoch,
                    first_seq,
                    last_seq,
                    updated_at,
                    row_count,
                    checksum,
                    block,
                    block_offset: 0,
                    block_len: 0,
                    raw_offset,
                    raw_len,
                });
            }
            t => return Err(format!("unknown record tag {t}")),
        }
    }
}

// ---- table sections --------------------------------------------------------------------

pub(crate) fn encode_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Int(i) => out.extend_from_slice(&i.to_le_bytes()),
        Value::Text(s) => {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// Zigzag: small magnitudes of either sign become small unsigned numbers.
#[inline]
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub(crate) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Appends the rows of an all-integer table section (interval tables) after its id and
/// row count: format 1 row by row as i64 LE, format 2 column by column as zigzag LEB128
/// varints (`proto/backup-format.md`, "Interval sections").
pub(crate) fn encode_int_rows(out: &mut Vec<u8>, version: u16, ncols: usize, rows: &[&[i64]]) {
    if version < 2 {
        for r in rows {
            for v in r.iter() {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        return;
    }
    for c in 0..ncols {
        // Room for the longest encodings, then cut back to what was written.
        let at = out.len();
        out.resize(at + rows.len() * 10, 0);
        let buf = &mut out[at..];
        let mut p = 0;
        for r in rows {
            let mut u = zigzag(r[c]);
            while u >= 0x80 {
                buf[p] = u as u8 | 0x80;
                p += 1;
                u >>= 7;
            }
            buf[p] = u as u8;
            p += 1;
        }
        out.truncate(at + p);
    }
}

/// Decodes one all-integer table section (interval tables) of a format `version` file
/// against the file's directory: the table id and the rows, flat, row by row.
pub(crate) fn decode_int_section(
    d: &mut Dec<'_>,
    tables: &[TableSchema],
    version: u16,
) -> DResult<(u16, Vec<i64>)> {
    let id = d.u16()?;
    let t = tables
        .get(id as usize)
        .ok_or(format!("table id {id} not in the directory"))?;
    if !t.all_int() {
        return Err(format!("table {} is not all-integer", t.name));
    }
    let n = d.u32()?;
    let ncols = t.columns.len();
    let min_value = if version < 2 { 8 } else { 1 };
    let n = d.count(
        n.into(),
        MAX_SECTION_ROWS.into(),
        ncols * min_value,
        &format!("{} row count", t.name),
    )?;
    if version < 2 {
        let b = d.take(n * ncols * 8)?;
        let flat = b
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        return Ok((id, flat));
    }
    let mut flat = vec![0i64; n * ncols];
    for c in 0..ncols {
        for r in 0..n {
            flat[r * ncols + c] = unzigzag(d.varint()?);
        }
    }
    Ok((id, flat))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::release_tables;

    #[test]
    fn format_2_sections_round_trip_extremes_and_refuse_bad_varints() {
        let tables = release_tables();
        let id = tables.iter().position(|t| t.name == "htkgrp").unwrap();
        let n = tables[id].columns.len();
        let specials = [0, 1, -1, 63, -64, 64, 127, 128, i64::MAX, i64::MIN, 1 << 40];
        let flat: Vec<i64> = (0..3 * n).map(|i| specials[i % specials.len()]).collect();
        let rows: Vec<&[i64]> = flat.chunks_exact(n).collect();
        for version in [1, 2] {
            let mut b = Vec::new();
            Enc(&mut b).u16(id as u16);
            Enc(&mut b).u32(3);
            encode_int_rows(&mut b, version, n, &rows);
            let mut d = Dec::new(&b);
            assert_eq!(
                decode_int_section(&mut d, &tables, version).unwrap(),
                (id as u16, flat.clone())
            );
            d.end("section").unwrap();
            // Cut anywhere: an error, never a panic or a short read taken as whole.
            for cut in 0..b.len() {
                assert!(decode_int_section(&mut Dec::new(&b[..cut]), &tables, version).is_err());
            }
        }
        // 0 (1 byte) and 2^64 - 1 (10 bytes) are the extremes; an 11th byte or a tenth
        // byte over 1 is refused.
        assert_eq!(Dec::new(&[0]).varint().unwrap(), 0);
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Dec::new(&max).varint().unwrap(), u64::MAX);
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Dec::new(&over)
            .varint()
            .unwrap_err()
            .contains("over 64 bits"));
        let long = [0x80u8; 11];
        assert!(Dec::new(&long).varint().is_err());
        for v in specials {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }
}
