//! The unpacked backup form (`docs/fuzzing.md`): a fuzz input that [`pack`] turns into a
//! backup file with every hash right, so mutations reach the header, manifest and block
//! decoders instead of stopping at the first checksum; [`unpack`] makes seeds of real files.
//!
//! Written from `proto/backup-format.md`, not from `src/archive`: a second implementation
//! of the layout, so a disagreement shows up as a seed the reader refuses. Shared by the
//! fuzz crate and `examples/fuzz_corpus.rs` (which includes this file by path).
//!
//! The form: one mode byte, then chunks: the header body, the manifest records that
//! follow the block table (interval records, and whatever else the fuzzer makes), then
//! one chunk per data block: its kind byte and its uncompressed content. The packer
//! writes prefix, header hash, the blocks (zstd, block hashes), a manifest whose block
//! table matches the blocks it wrote, the given records and (mode bit 2) an end record
//! that counts them, and a trailer with the manifest and file hashes (mode bit 4: and
//! a MAC with [`FUZZ_KEY`]).

/// Splits `data` into length-prefixed chunks (`u32` LE length, then the bytes; a length
/// past the end takes what is left).
pub fn chunks(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let n = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
        data = &data[4..];
        let n = n.min(data.len());
        out.push(&data[..n]);
        data = &data[n..];
    }
    out
}

/// Joins chunks into the form [`chunks`] reads.
pub fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// The site key the fuzz targets MAC with.
pub const FUZZ_KEY: [u8; 32] = [7; 32];
pub const MAGIC: [u8; 8] = *b"\x89CMSBAK\n";
pub const TRAILER_MAGIC: [u8; 8] = *b"CMSBKEND";
const KIND_MANIFEST: u8 = 0x10;

/// What the mode byte asks for.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    pub version: u16,
    pub end_record: bool,
    pub mac: bool,
}

impl Mode {
    pub fn from_byte(b: u8) -> Mode {
        Mode {
            version: if b & 1 == 0 { 1 } else { 2 },
            end_record: b & 2 != 0,
            mac: b & 4 != 0,
        }
    }
    pub fn to_byte(self) -> u8 {
        u8::from(self.version >= 2) | (u8::from(self.end_record) << 1) | (u8::from(self.mac) << 2)
    }
}

fn block(out: &mut Vec<u8>, kind: u8, index: u32, raw: &[u8]) -> (u64, u64, [u8; 32]) {
    let payload = zstd::bulk::compress(raw, 1).expect("zstd compresses");
    let mut p = [0u8; 16];
    p[0] = kind;
    p[1] = 1; // codec: zstd
    p[4..8].copy_from_slice(&index.to_le_bytes());
    p[8..12].copy_from_slice(&(raw.len() as u32).to_le_bytes());
    p[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    let mut h = blake3::Hasher::new();
    h.update(&p);
    h.update(&payload);
    let hash = *h.finalize().as_bytes();
    let at = out.len() as u64;
    out.extend_from_slice(&p);
    out.extend_from_slice(&hash);
    out.extend_from_slice(&payload);
    (at, out.len() as u64 - at, hash)
}

fn record(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
}

/// Counts the interval records (tag 2) in `recs` and sums their row counts; stops
/// at the first record it cannot follow.
fn count_intervals(mut recs: &[u8]) -> (u64, u64) {
    let (mut n, mut rows) = (0u64, 0u64);
    while recs.len() >= 5 {
        let tag = recs[0];
        let len = u32::from_le_bytes(recs[1..5].try_into().unwrap()) as usize;
        let Some(body) = recs.get(5..5 + len) else {
            break;
        };
        if tag == 2 {
            n += 1;
            if let Some(r) = interval_rows(body) {
                rows = rows.wrapping_add(r);
            }
        }
        recs = &recs[5 + len..];
    }
    (n, rows)
}

/// The row count of an interval record body.
fn interval_rows(b: &[u8]) -> Option<u64> {
    let mut at = 2 + 8 + 4;
    let skip_str = |at: &mut usize| -> Option<()> {
        let n = u32::from_le_bytes(b.get(*at..*at + 4)?.try_into().ok()?) as usize;
        *at += 4 + n;
        Some(())
    };
    skip_str(&mut at)?; // row_date
    at += 4 + 1; // starttime, status
    skip_str(&mut at)?; // reasons
    skip_str(&mut at)?; // source
    at += 4 * 8; // epoch, first_seq, last_seq, updated_at
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The backup file the unpacked input describes, and the mode it asked for.
pub fn pack(data: &[u8]) -> Option<(Vec<u8>, Mode)> {
    let (&m, rest) = data.split_first()?;
    let mode = Mode::from_byte(m);
    let parts = chunks(rest);
    let (header, parts) = parts.split_first()?;
    let (records, blocks) = parts
        .split_first()
        .map_or((&[][..], &[][..]), |(r, b)| (*r, b));
    let mut f = Vec::new();
    f.extend_from_slice(&MAGIC);
    f.extend_from_slice(&mode.version.to_le_bytes());
    f.extend_from_slice(&0u16.to_le_bytes());
    f.extend_from_slice(&(header.len() as u32).to_le_bytes());
    f.extend_from_slice(header);
    let hh = blake3::hash(&f);
    f.extend_from_slice(hh.as_bytes());
    let mut manifest = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        let (kind, raw) = b.split_first().map_or((1, &[][..]), |(k, r)| (*k, r));
        let (at, len, hash) = block(&mut f, kind, i as u32, raw);
        let sections = raw
            .get(..4)
            .map_or(0, |s| u32::from_le_bytes(s.try_into().unwrap()));
        let mut r = Vec::with_capacity(61);
        r.extend_from_slice(&(i as u32).to_le_bytes());
        r.push(kind);
        r.extend_from_slice(&at.to_le_bytes());
        r.extend_from_slice(&len.to_le_bytes());
        r.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        r.extend_from_slice(&sections.to_le_bytes());
        r.extend_from_slice(&hash);
        record(&mut manifest, 1, &r);
    }
    manifest.extend_from_slice(records);
    if mode.end_record {
        let (n, rows) = count_intervals(records);
        let mut e = Vec::with_capacity(20);
        e.extend_from_slice(&(blocks.len() as u32).to_le_bytes());
        e.extend_from_slice(&n.to_le_bytes());
        e.extend_from_slice(&rows.to_le_bytes());
        record(&mut manifest, 0, &e);
    }
    let (mo, ml, _) = block(&mut f, KIND_MANIFEST, blocks.len() as u32, &manifest);
    let manifest_hash = blake3::hash(&f[mo as usize..]);
    let file_hash = blake3::hash(&f);
    let mut t = Vec::with_capacity(176);
    t.extend_from_slice(&TRAILER_MAGIC);
    t.extend_from_slice(&mode.version.to_le_bytes());
    t.push(u8::from(mode.mac));
    t.extend_from_slice(&[0; 5]);
    t.extend_from_slice(&mo.to_le_bytes());
    t.extend_from_slice(&ml.to_le_bytes());
    t.extend_from_slice(manifest_hash.as_bytes());
    t.extend_from_slice(file_hash.as_bytes());
    let key_id = if mode.mac {
        cms::archive::key_id(&FUZZ_KEY)
    } else {
        [0; 8]
    };
    t.extend_from_slice(&key_id);
    t.extend_from_slice(&[0; 8]);
    let mac = if mode.mac {
        let mut h = blake3::Hasher::new_keyed(&cms::archive::mac_key(&FUZZ_KEY));
        h.update(&f);
        h.update(&t);
        *h.finalize().as_bytes()
    } else {
        [0; 32]
    };
    t.extend_from_slice(&mac);
    let th = blake3::hash(&t);
    t.extend_from_slice(th.as_bytes());
    f.extend_from_slice(&t);
    Some((f, mode))
}

/// The inverse, for seeds: a well-formed backup file in unpacked form (the manifest
/// records after the block table, without the end record). `None` if the file does
/// not follow the layout.
pub fn unpack(file: &[u8]) -> Option<Vec<u8>> {
    let version = u16::from_le_bytes(file.get(8..10)?.try_into().ok()?);
    let hl = u32::from_le_bytes(file.get(12..16)?.try_into().ok()?) as usize;
    let header = file.get(16..16 + hl)?;
    let tl = file.len().checked_sub(176)?;
    let trailer = &file[tl..];
    let mac = trailer[10] == 1;
    let mut at = 16 + hl + 32;
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    let records = loop {
        let h = file.get(at..at + 48)?;
        let raw_len = u32::from_le_bytes(h[8..12].try_into().ok()?) as usize;
        let stored = u32::from_le_bytes(h[12..16].try_into().ok()?) as usize;
        let raw = zstd::bulk::decompress(file.get(at + 48..at + 48 + stored)?, raw_len).ok()?;
        at += 48 + stored;
        if h[0] == KIND_MANIFEST {
            break raw;
        }
        let mut b = vec![h[0]];
        b.extend_from_slice(&raw);
        blocks.push(b);
    };
    // Skip the block records (tag 1) and drop the end record (tag 0).
    let mut recs = &records[..];
    let mut kept = Vec::new();
    while recs.len() >= 5 {
        let len = u32::from_le_bytes(recs[1..5].try_into().unwrap()) as usize;
        let r = recs.get(..5 + len)?;
        if recs[0] == 2 {
            kept.extend_from_slice(r);
        }
        recs = &recs[5 + len..];
    }
    let mode = Mode {
        version,
        end_record: true,
        mac,
    };
    let mut parts: Vec<&[u8]> = vec![header, &kept];
    parts.extend(blocks.iter().map(Vec::as_slice));
    let mut out = vec![mode.to_byte()];
    out.extend_from_slice(&join(&parts));
    Some(out)
}
