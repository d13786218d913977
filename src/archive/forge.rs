//! Test support, not part of the format: rewrite a file the way a forger or a bit-rot
//! without the site key could, recomputing every unkeyed hash, so tests can show that
//! the checks beyond the hashes (manifest against data, block checksums, the MAC) hold.

use super::codec::{self, BlockRec};
use super::reader::BlockInfo;
use super::schema::TableKind;
use super::{ManifestEntry, BLOCK_HEADER_LEN, TRAILER_LEN};

fn trailer_of(file: &[u8]) -> codec::Trailer {
    let tb: [u8; TRAILER_LEN] = file[file.len() - TRAILER_LEN..].try_into().unwrap();
    codec::decode_trailer(&tb).expect("a trailer")
}

/// Recomputes the manifest hash, the whole-file hash and the trailer hash (the MAC is
/// left as it is, so a keyed file no longer verifies).
pub fn refresh_hashes(file: &mut [u8]) {
    let mut t = trailer_of(file);
    let at = file.len() - TRAILER_LEN;
    let (mo, ml) = (t.manifest_offset as usize, t.manifest_len as usize);
    t.manifest_hash = *blake3::hash(&file[mo..mo + ml]).as_bytes();
    t.file_hash = *blake3::hash(&file[..at]).as_bytes();
    file[at..].copy_from_slice(&codec::encode_trailer(&t));
}

/// Recomputes a block's own hash after its bytes were edited (then call
/// [`refresh_hashes`]).
pub fn refresh_block_hash(file: &mut [u8], offset: usize, len: usize) {
    let prefix: [u8; 16] = file[offset..offset + 16].try_into().unwrap();
    let h = codec::block_hash(&prefix, &file[offset + BLOCK_HEADER_LEN..offset + len]);
    file[offset + 16..offset + 48].copy_from_slice(&h);
}

/// Decodes the manifest, lets `edit` change it, and writes it back with every unkeyed
/// hash recomputed.
pub fn rewrite_manifest(
    file: &[u8],
    edit: impl FnOnce(&mut Vec<ManifestEntry>, &mut Vec<BlockInfo>),
) -> Vec<u8> {
    let t = trailer_of(file);
    let (mo, ml) = (t.manifest_offset as usize, t.manifest_len as usize);
    let mb = &file[mo..mo + ml];
    let bh = codec::decode_block_header(mb[..BLOCK_HEADER_LEN].try_into().unwrap()).unwrap();
    let raw = zstd::bulk::decompress(&mb[BLOCK_HEADER_LEN..], bh.raw_len as usize).unwrap();
    let m = codec::decode_manifest(&raw).unwrap();
    let mut entries = m.entries;
    let mut blocks: Vec<BlockInfo> = m
        .blocks
        .iter()
        .map(|b| BlockInfo {
            index: b.index,
            kind: match b.kind {
                codec::KIND_INTERVAL => TableKind::Interval,
                codec::KIND_SUMMARY => TableKind::Summary,
                codec::KIND_ADMIN => TableKind::Admin,
                _ => TableKind::Local,
            },
            offset: b.offset,
            len: b.len,
            raw_len: b.raw_len,
            sections: b.sections,
            hash: b.hash,
        })
        .collect();
    edit(&mut entries, &mut blocks);
    let mut raw = Vec::new();
    for b in &blocks {
        codec::encode_block_rec(
            &mut raw,
            &BlockRec {
                index: b.index,
                kind: codec::block_kind_for(b.kind),
                offset: b.offset,
                len: b.len,
                raw_len: b.raw_len,
                sections: b.sections,
                hash: b.hash,
            },
        );
    }
    for e in &entries {
        codec::encode_entry_rec(&mut raw, e);
    }
    let rows = entries.iter().map(|e| e.row_count).sum();
    codec::encode_end_rec(&mut raw, blocks.len() as u32, entries.len() as u64, rows);
    let payload = zstd::bulk::compress(&raw, 3).unwrap();
    let prefix = codec::block_header_prefix(
        codec::KIND_MANIFEST,
        bh.index,
        raw.len() as u32,
        payload.len() as u32,
    );
    let mut out = file[..mo].to_vec();
    out.extend_from_slice(&prefix);
    out.extend_from_slice(&codec::block_hash(&prefix, &payload));
    out.extend_from_slice(&payload);
    let mut t2 = t;
    t2.manifest_len = (out.len() - mo) as u64;
    out.extend_from_slice(&codec::encode_trailer(&t2));
    refresh_hashes(&mut out);
    out
}

/// Makes the manifest's block header announce `raw_len` decompressed bytes over the same
/// data, with the block hash and every unkeyed hash recomputed: the size a forger writes
/// to make a reader reserve memory it never fills.
pub fn set_manifest_raw_len(file: &mut [u8], raw_len: u32) {
    let t = trailer_of(file);
    let (mo, ml) = (t.manifest_offset as usize, t.manifest_len as usize);
    // Block header: kind, codec, reserved (4 bytes), index (4), raw length (4, LE).
    file[mo + 8..mo + 12].copy_from_slice(&raw_len.to_le_bytes());
    refresh_block_hash(file, mo, ml);
    refresh_hashes(file);
}
