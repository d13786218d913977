//! The backup file format (`proto/backup-format.md`, issue #4): round trips, bounded
//! memory, every corruption class, authentication, forged manifests, compatibility by
//! column name, the spec's hex example and the format-1 fixture kept forever.

use cms::archive::{
    category, content_checksum, date_to_i64, forge, i64_to_date, release_tables,
    site_key_from_key_file, site_key_from_passphrase, spool_verified, ArchiveError, ArchiveReader,
    ArchiveWriter, Column, ColumnType, Header, ManifestEntry, Region, Status, TableKind,
    TableSchema, Value, BLOCK_TARGET_RAW, FORMAT_VERSION, TRAILER_LEN,
};
use proptest::prelude::*;
use std::io::Cursor;

// ---- generators ------------------------------------------------------------------------

/// splitmix64: deterministic, no dependency, good enough for test data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One interval's rows: per directory table (interval tables only), rows sorted by key.
type Rows = Vec<(String, Vec<Vec<i64>>)>;

/// Rows for an interval: `counts[i]` entities for the i-th interval table of `tables`.
fn gen_rows(
    tables: &[TableSchema],
    acd: u16,
    istart: i64,
    counts: &[usize],
    rng: &mut Rng,
) -> Rows {
    let mut out = Vec::new();
    for (t, &n) in tables
        .iter()
        .filter(|t| t.kind == TableKind::Interval)
        .zip(counts)
    {
        let k = t.key_columns as usize;
        let mut rows = Vec::new();
        for e in 0..n as i64 {
            let mut r = vec![acd as i64];
            match k - 2 {
                1 => r.push(e + 1),
                _ => {
                    r.push(1000 + e / 3);
                    r.push(1 + e % 3);
                }
            }
            r.push(istart);
            for _ in k..t.columns.len() {
                r.push(if rng.below(3) == 0 {
                    rng.below(5000) as i64
                } else {
                    0
                });
            }
            rows.push(r);
        }
        out.push((t.name.clone(), rows));
    }
    out
}

fn checksum_of(tables: &[TableSchema], rows: &Rows) -> [u8; 32] {
    let flats: Vec<(TableSchema, Vec<i64>)> = tables
        .iter()
        .filter(|t| t.kind == TableKind::Interval)
        .map(|t| {
            let flat = rows
                .iter()
                .find(|(n, _)| *n == t.name)
                .map(|(_, r)| r.concat())
                .unwrap_or_default();
            (t.clone(), flat)
        })
        .collect();
    content_checksum(flats.iter().map(|(t, f)| (t, &f[..])))
}

fn entry(tables: &[TableSchema], acd: u16, istart: i64, rows: &Rows) -> ManifestEntry {
    let count = rows.iter().map(|(_, r)| r.len() as u64).sum();
    let hex = blake3::Hash::from_bytes(checksum_of(tables, rows))
        .to_hex()
        .to_string();
    let incomplete = istart % 7 == 0;
    let mut e = ManifestEntry::new(
        acd,
        istart,
        15,
        "2024-03-11",
        900,
        if incomplete {
            Status::Incomplete
        } else {
            Status::Complete
        },
        if incomplete {
            "link_down,replay_gap"
        } else {
            ""
        },
        "collected",
        count,
        &hex,
    )
    .unwrap();
    e.epoch = 7;
    e.first_seq = istart / 10;
    e.last_seq = istart / 10 + 99;
    e.updated_at = istart + 900;
    e
}

const T0: i64 = 1_710_144_000; // 2024-03-11T08:00:00Z

fn header(acds: Vec<u16>, categories: u8) -> Header {
    Header {
        schema_version: 1,
        created_at: 1_710_200_000,
        server_id: "cms-a".into(),
        acds,
        range_start: T0,
        range_end: T0 + 86_400 * 30,
        categories,
        properties: vec![
            ("cms_version".into(), "0.1.0".into()),
            ("timezone".into(), "America/New_York".into()),
        ],
    }
}

fn admin_rows() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        (
            "skill_def",
            vec![
                Value::Int(1),
                Value::Int(1),
                Value::Int(20),
                Value::Text("5,10,20,30,40,60,90,120,180".into()),
                Value::Text("Sales".into()),
            ],
        ),
        (
            "skill_def",
            vec![
                Value::Int(1),
                Value::Int(2),
                Value::Int(30),
                Value::Text("5,10,20,30,40,60,90,120,180".into()),
                Value::Text("Support ünicode".into()),
            ],
        ),
        (
            "vdn_def",
            vec![
                Value::Int(1),
                Value::Int(5001),
                Value::Int(20),
                Value::Text("Main number".into()),
            ],
        ),
        (
            "tkgrp_def",
            vec![
                Value::Int(1),
                Value::Int(1),
                Value::Int(24),
                Value::Text("PRI 1".into()),
            ],
        ),
    ]
}

fn summary_row(
    tables: &[TableSchema],
    table: &str,
    acd: i64,
    key: i64,
    date: &str,
    seed: i64,
) -> Vec<i64> {
    let t = tables.iter().find(|t| t.name == table).unwrap();
    let mut r = vec![acd, key, date_to_i64(date).unwrap()];
    for i in 3..t.columns.len() {
        r.push(seed * 31 + i as i64);
    }
    r
}

/// What a generated archive holds, to compare with what the reader returns.
struct Expected {
    intervals: Vec<(ManifestEntry, Rows)>,
    summaries: Vec<(String, Vec<i64>)>,
    admin: Vec<(&'static str, Vec<Value>)>,
    local: Vec<(String, String)>,
}

/// Writes an archive of `acds` x `n` intervals with all tables, admin, local, summaries.
fn build(
    acds: &[u16],
    n: i64,
    counts: &[usize],
    key: Option<&[u8; 32]>,
) -> (Vec<u8>, Expected, cms::archive::ArchiveSummary) {
    let tables = release_tables();
    let mut rng = Rng(42);
    let mut out = Vec::new();
    let mut w = ArchiveWriter::new(
        &mut out,
        "test.cmsbak",
        header(acds.to_vec(), category::ALL),
        key,
    )
    .unwrap();
    let mut exp = Expected {
        intervals: vec![],
        summaries: vec![],
        admin: admin_rows(),
        local: vec![],
    };
    for &acd in acds {
        for i in 0..n {
            let istart = T0 + i * 900;
            let rows = gen_rows(&tables, acd, istart, counts, &mut rng);
            let e = entry(&tables, acd, istart, &rows);
            w.begin_interval(e.clone()).unwrap();
            // Rows go in out of key order: the writer sorts them.
            for (t, rs) in &rows {
                for r in rs.iter().rev() {
                    w.row(t, r).unwrap();
                }
            }
            w.end_interval().unwrap();
            exp.intervals.push((e, rows));
        }
    }
    for (i, table) in ["dsplit", "wagent", "mvdn", "dtkgrp"].iter().enumerate() {
        for k in 0..3 {
            let mut r = summary_row(
                &tables,
                table,
                acds[0] as i64,
                k + 1,
                "2024-03-11",
                i as i64 * 10 + k,
            );
            if *table == "wagent" {
                // wagent keys: agent, split
                r.insert(2, 1);
                r.pop();
            }
            w.summary_row(table, &r).unwrap();
            exp.summaries.push((table.to_string(), r));
        }
    }
    for (t, v) in &exp.admin {
        w.admin_row(t, v).unwrap();
    }
    for (k, v) in [
        ("server_id", "cms-a"),
        ("site", "Main street"),
        ("peer", "10.0.0.2:5440"),
    ] {
        w.local_setting(k, v).unwrap();
        exp.local.push((k.into(), v.into()));
    }
    let sum = w.finish().unwrap();
    (out, exp, sum)
}

fn open(
    bytes: &[u8],
    key: Option<&[u8; 32]>,
) -> Result<ArchiveReader<Cursor<Vec<u8>>>, ArchiveError> {
    ArchiveReader::from_reader(Cursor::new(bytes.to_vec()), "test.cmsbak", key)
}

fn open_and_verify(bytes: &[u8], key: Option<&[u8; 32]>) -> Result<(), ArchiveError> {
    let mut r = open(bytes, key)?;
    r.verify_all()?;
    Ok(())
}

fn check_contents(r: &mut ArchiveReader<Cursor<Vec<u8>>>, exp: &Expected) {
    assert_eq!(r.manifest().len(), exp.intervals.len());
    for (e, rows) in &exp.intervals {
        let m = r.find(e.acd, e.istart).unwrap().clone();
        assert_eq!(
            (m.status, &m.reasons, &m.source, m.row_count, m.checksum),
            (e.status, &e.reasons, &e.source, e.row_count, e.checksum)
        );
        assert_eq!(
            (
                m.epoch,
                m.first_seq,
                m.last_seq,
                m.updated_at,
                m.intrvl,
                &m.row_date,
                m.starttime
            ),
            (
                e.epoch,
                e.first_seq,
                e.last_seq,
                e.updated_at,
                e.intrvl,
                &e.row_date,
                e.starttime
            )
        );
        let data = r.read_interval(&m).unwrap();
        for (t, rs) in rows {
            assert_eq!(
                &data.table(t).unwrap().rows,
                rs,
                "{t} {} {}",
                e.acd,
                e.istart
            );
        }
    }
    let s: Vec<(String, Vec<i64>)> = r
        .summary_rows()
        .map(|x| x.unwrap())
        .map(|x| (x.table.clone(), x.ints().unwrap()))
        .collect();
    assert_eq!(s, exp.summaries);
    let a: Vec<(String, Vec<Value>)> = r
        .admin_rows()
        .map(|x| x.unwrap())
        .map(|x| (x.table, x.values))
        .collect();
    let ea: Vec<(String, Vec<Value>)> = exp
        .admin
        .iter()
        .map(|(t, v)| (t.to_string(), v.clone()))
        .collect();
    assert_eq!(a, ea);
    let l: Vec<(String, String)> = r
        .local_rows()
        .map(|x| x.unwrap())
        .map(|x| {
            (
                x.values[0].as_text().unwrap().to_owned(),
                x.values[1].as_text().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(l, exp.local);
}

// ---- round trips -----------------------------------------------------------------------

#[test]
fn round_trip_all_tables_admin_local_summaries() {
    let (bytes, exp, sum) = build(&[1, 2, 5], 200, &[10, 30, 10, 4], None);
    assert_eq!(sum.bytes, bytes.len() as u64);
    assert_eq!(sum.intervals, 600);
    // Two interval blocks, then summary, admin and local blocks.
    assert!(sum.blocks >= 5, "{sum:?}");
    let mut r = open(&bytes, None).unwrap();
    assert_eq!(r.format_version(), FORMAT_VERSION);
    assert_eq!(r.header(), &header(vec![1, 2, 5], category::ALL));
    assert!(!r.authenticated());
    let rep = r.verify_all().unwrap();
    assert_eq!(rep.intervals, 600);
    assert_eq!(rep.interval_rows, 600 * 54);
    assert_eq!(
        (rep.summary_rows, rep.admin_rows, rep.local_rows),
        (12, 4, 3)
    );
    // Every data block but the last of each kind is about BLOCK_TARGET_RAW.
    for b in r
        .blocks()
        .iter()
        .filter(|b| b.kind == TableKind::Interval)
        .rev()
        .skip(1)
    {
        assert!(
            b.raw_len as usize <= BLOCK_TARGET_RAW
                && b.raw_len as usize > BLOCK_TARGET_RAW * 9 / 10,
            "{b:?}"
        );
    }
    check_contents(&mut r, &exp);
    let raw_row_bytes: u64 = exp
        .intervals
        .iter()
        .flat_map(|(_, rs)| {
            rs.iter()
                .flat_map(|(_, r)| r.iter().map(|x| x.len() as u64 * 8))
        })
        .sum();
    eprintln!(
        "round trip: {} rows, {} bytes of row values, file {} bytes ({:.1}%), data raw {} -> stored {} ({:.1}x), manifest {} bytes, peak buffered {}",
        rep.interval_rows,
        raw_row_bytes,
        sum.bytes,
        100.0 * sum.bytes as f64 / raw_row_bytes as f64,
        sum.raw_bytes,
        sum.stored_bytes,
        sum.raw_bytes as f64 / sum.stored_bytes as f64,
        sum.manifest_bytes,
        sum.peak_buffered_bytes
    );
    assert!(
        sum.bytes < raw_row_bytes / 3,
        "compression should pay on mostly-zero items"
    );
}

#[test]
fn keyed_round_trip_and_key_derivation() {
    let key = site_key_from_key_file(b"0123456789abcdef0123456789abcdef\n").unwrap();
    assert_eq!(
        key,
        site_key_from_key_file(b"0123456789abcdef0123456789abcdef").unwrap()
    );
    assert_eq!(
        key,
        blake3::derive_key(
            cms::archive::KEY_FILE_CONTEXT,
            b"0123456789abcdef0123456789abcdef"
        )
    );
    assert!(site_key_from_key_file(b"short\n").is_err());
    assert!(site_key_from_passphrase("too short").is_err());
    let other = site_key_from_passphrase("correct horse battery staple").unwrap();
    assert_ne!(key, other);

    let (bytes, exp, sum) = build(&[1], 5, &[2, 3, 1, 1], Some(&key));
    assert!(sum.authenticated);
    let mut r = open(&bytes, Some(&key)).unwrap();
    assert!(r.authenticated());
    r.verify_all().unwrap();
    check_contents(&mut r, &exp);
    // Without a key the hashes still protect against corruption.
    assert!(!open(&bytes, None).unwrap().authenticated());
    // Another key: refused, naming both key ids.
    let err = open(&bytes, Some(&other)).err().unwrap();
    assert!(matches!(err, ArchiveError::BadMac { .. }), "{err}");
    assert!(err.to_string().contains("test.cmsbak: bad MAC"), "{err}");
    // Altered with every unkeyed hash recomputed: the MAC catches it.
    let mut forged = bytes.clone();
    let b = r.blocks()[0].clone();
    forged[b.offset as usize + 60] ^= 1;
    forge::refresh_block_hash(&mut forged, b.offset as usize, b.len as usize);
    forge::refresh_hashes(&mut forged);
    // Without the key only the manifest's block table notices the edit.
    let err = open(&forged, None).unwrap().verify_all().err().unwrap();
    assert!(matches!(err, ArchiveError::Inconsistent { .. }), "{err}");
    assert!(matches!(
        open(&forged, Some(&key)),
        Err(ArchiveError::BadMac { .. })
    ));
    // A file with no MAC is refused when a key is configured.
    let (plain, _, _) = build(&[1], 2, &[1, 1, 1, 1], None);
    let err = open(&plain, Some(&key)).err().unwrap();
    assert!(matches!(err, ArchiveError::MissingMac { .. }), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn prop_round_trip(
        items in prop::collection::vec(prop::collection::vec(any::<i64>(), 5), 0..40),
        intervals in 1usize..4,
        names in prop::collection::vec("\\PC{0,12}", 0..4),
    ) {
        let tables = release_tables();
        let mut out = Vec::new();
        let mut w = ArchiveWriter::new(&mut out, "p", header(vec![3], category::ALL), None).unwrap();
        let mut exp = Vec::new();
        for i in 0..intervals as i64 {
            let istart = T0 + i * 1800;
            let rows: Vec<Vec<i64>> = items.iter().enumerate().map(|(k, it)| {
                let mut r = vec![3, k as i64 * 7 - 20, istart];
                r.extend(it);
                r
            }).collect();
            let all: Rows = vec![("htkgrp".to_string(), rows.clone())];
            let e = entry(&tables, 3, istart, &all);
            w.begin_interval(e.clone()).unwrap();
            for r in &rows { w.row("htkgrp", r).unwrap(); }
            w.end_interval().unwrap();
            exp.push((e, rows));
        }
        for (k, n) in names.iter().enumerate() {
            w.admin_row("vdn_def", &[Value::Int(3), Value::Int(k as i64), Value::Int(i64::MIN), Value::Text(n.clone())]).unwrap();
        }
        w.finish().unwrap();
        let mut r = open(&out, None).unwrap();
        r.verify_all().unwrap();
        for (e, rows) in &exp {
            let m = r.find(e.acd, e.istart).unwrap().clone();
            let d = r.read_interval(&m).unwrap();
            prop_assert_eq!(&d.table("htkgrp").unwrap().rows, rows);
            prop_assert!(d.table("hsplit").unwrap().rows.is_empty());
        }
        let got: Vec<String> = r.admin_rows().map(|x| x.unwrap().values[3].as_text().unwrap().to_owned()).collect();
        prop_assert_eq!(got, names);
    }
}

#[test]
fn writer_memory_is_bounded_by_about_one_block() {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len() as u64;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let tables = release_tables();
    let mut sink = Count(0);
    let mut w =
        ArchiveWriter::new(&mut sink, "sink", header(vec![1], category::HISTORY), None).unwrap();
    let mut rng = Rng(7);
    let mut rows_written = 0;
    for i in 0..1000 {
        let istart = T0 + i * 900;
        let rows = gen_rows(&tables, 1, istart, &[0, 0, 0, 1000], &mut rng);
        w.begin_interval(entry(&tables, 1, istart, &rows)).unwrap();
        for r in &rows[3].1 {
            w.row("htkgrp", r).unwrap();
            rows_written += 1;
        }
        w.end_interval().unwrap();
    }
    assert_eq!(rows_written, 1_000_000);
    let peak = w.peak_buffered_bytes();
    let manifest = w.manifest_buffered_bytes();
    let sum = w.finish().unwrap();
    let interval_bytes = 1000 * 8 * 8;
    assert!(sum.raw_bytes > 10 * BLOCK_TARGET_RAW as u64, "{sum:?}");
    assert!(
        peak <= BLOCK_TARGET_RAW + 2 * interval_bytes + BLOCK_TARGET_RAW / 4,
        "peak {peak}"
    );
    assert!(manifest < 64 * 1024, "manifest {manifest}");
    assert_eq!(sink.0, sum.bytes);
}

// ---- corruption --------------------------------------------------------------------------

fn small() -> Vec<u8> {
    build(&[1, 2], 3, &[2, 2, 1, 1], None).0
}

#[test]
fn truncated_files_are_detected() {
    let bytes = small();
    let n = bytes.len();
    for cut in [
        0,
        5,
        8,
        16,
        100,
        n / 3,
        n / 2,
        n - TRAILER_LEN - 1,
        n - TRAILER_LEN,
        n - 100,
        n - 1,
    ] {
        let err = open_and_verify(&bytes[..cut], None)
            .err()
            .unwrap_or_else(|| panic!("cut at {cut} accepted"));
        assert!(
            matches!(err, ArchiveError::Truncated { .. }),
            "cut at {cut}: {err}"
        );
        assert!(
            err.to_string().starts_with("test.cmsbak: truncated"),
            "{err}"
        );
    }
}

#[test]
fn every_single_bit_flip_is_an_error_never_a_panic() {
    let bytes = small();
    let r = open(&bytes, None).unwrap();
    let data_start = r.blocks()[0].offset as usize;
    let trailer_at = bytes.len() - TRAILER_LEN;
    drop(r);
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 1 << (i % 8);
        let err = open_and_verify(&b, None)
            .err()
            .unwrap_or_else(|| panic!("flip at {i} accepted"));
        let ok = match i {
            0..=7 => matches!(err, ArchiveError::BadMagic { .. }),
            8..=9 => matches!(err, ArchiveError::UnsupportedVersion { .. }),
            10..=15 => true, // flags or header length: any clear error
            i if i < data_start => matches!(
                err,
                ArchiveError::Checksum {
                    region: Region::Header,
                    ..
                }
            ),
            i if i < trailer_at => matches!(
                err,
                ArchiveError::Checksum {
                    region: Region::File,
                    ..
                }
            ),
            i if i < trailer_at + 8 => matches!(err, ArchiveError::Truncated { .. }),
            _ => matches!(
                err,
                ArchiveError::Checksum {
                    region: Region::Trailer,
                    ..
                }
            ),
        };
        assert!(ok, "flip at {i}: {err}");
    }
}

#[test]
fn block_and_manifest_corruption_name_the_region() {
    let bytes = small();
    let r = open(&bytes, None).unwrap();
    let blocks = r.blocks().to_vec();
    let manifest_at = blocks.last().map(|b| b.offset + b.len).unwrap() as usize;
    drop(r);
    for b in &blocks {
        // Flip a payload byte and recompute only the unkeyed file-level hashes.
        let mut f = bytes.clone();
        f[b.offset as usize + 48 + (b.len as usize - 48) / 2] ^= 0x10;
        forge::refresh_hashes(&mut f);
        let err = open_and_verify(&f, None).err().unwrap();
        assert!(
            matches!(err, ArchiveError::Checksum { region: Region::Block(i), .. } if i == b.index),
            "block {}: {err}",
            b.index
        );
        assert!(
            err.to_string().contains(&format!("data block {}", b.index)),
            "{err}"
        );
        // The same flip, but the block's own hash recomputed too: now zstd or the
        // manifest's block table catches it.
        forge::refresh_block_hash(&mut f, b.offset as usize, b.len as usize);
        forge::refresh_hashes(&mut f);
        assert!(open_and_verify(&f, None).is_err());
    }
    let mut f = bytes.clone();
    f[manifest_at + 50] ^= 0x01;
    forge::refresh_hashes(&mut f);
    let err = open(&f, None).err().unwrap();
    assert!(
        matches!(
            err,
            ArchiveError::Checksum {
                region: Region::Manifest,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn wrong_magic_and_newer_version_are_refused() {
    let bytes = small();
    let mut b = bytes.clone();
    b[..8].copy_from_slice(b"SQLite f");
    let err = open(&b, None).err().unwrap();
    assert_eq!(
        err.to_string(),
        "test.cmsbak: not a cms backup file (bad magic)"
    );
    // A flags field that is not 0 is named as such, not as a checksum mismatch.
    let mut b = bytes.clone();
    b[10] = 1;
    let err = open(&b, None).err().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "test.cmsbak: malformed file prefix: flags field is 0x0001, format {FORMAT_VERSION} requires 0"
        )
    );
    let mut b = bytes.clone();
    b[8..10].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let err = open(&b, None).err().unwrap();
    assert!(
        err.to_string().contains(&format!(
            "file format version {}, this release reads up to {}",
            FORMAT_VERSION + 1,
            FORMAT_VERSION
        )),
        "{err}"
    );
    // Same through the streaming path, before the rest of the stream is read.
    let err = spool_verified(&b[..], Vec::new(), "socket", None)
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            ArchiveError::UnsupportedVersion {
                found,
                supported: FORMAT_VERSION,
                ..
            } if found == FORMAT_VERSION + 1
        ),
        "{err}"
    );
}

#[test]
fn forged_manifests_are_caught() {
    let bytes = small();
    // Edited row count (all unkeyed hashes recomputed): open succeeds, verify_all fails.
    let f = forge::rewrite_manifest(&bytes, |e, _| e[1].row_count += 1);
    let mut r = open(&f, None).unwrap();
    let err = r.verify_all().err().unwrap();
    assert!(matches!(err, ArchiveError::Inconsistent { .. }), "{err}");
    assert!(
        err.to_string().contains("manifest inconsistent with data"),
        "{err}"
    );
    let m = r.manifest()[1].clone();
    assert!(matches!(
        r.read_interval(&m),
        Err(ArchiveError::Inconsistent { .. })
    ));
    // Swapped locations of two intervals in the same block.
    let f = forge::rewrite_manifest(&bytes, |e, _| {
        let (a, b) = (e[0].clone(), e[1].clone());
        assert_eq!(a.block, b.block);
        e[0].raw_offset = a.raw_offset + b.raw_len;
        e[1].raw_offset = a.raw_offset;
        e[0].raw_len = a.raw_len;
        e[1].raw_len = b.raw_len;
    });
    let err = open_and_verify(&f, None).err().unwrap();
    assert!(matches!(err, ArchiveError::Inconsistent { .. }), "{err}");
    // Content checksum of another interval.
    let f = forge::rewrite_manifest(&bytes, |e, _| e[0].checksum = e[2].checksum);
    let err = open(&f, None).unwrap().verify_all().err().unwrap();
    assert!(matches!(err, ArchiveError::Inconsistent { .. }), "{err}");
    // A dropped interval, or a block moved: the layout no longer adds up.
    let f = forge::rewrite_manifest(&bytes, |e, _| {
        e.remove(1);
    });
    assert!(matches!(
        open_and_verify(&f, None),
        Err(ArchiveError::Inconsistent { .. })
    ));
    let f = forge::rewrite_manifest(&bytes, |_, b| b[0].offset += 1);
    assert!(matches!(
        open(&f, None),
        Err(ArchiveError::Inconsistent { .. })
    ));
    let f = forge::rewrite_manifest(&bytes, |_, b| b[0].sections += 1);
    assert!(matches!(
        open_and_verify(&f, None),
        Err(ArchiveError::Inconsistent { .. })
    ));
    // Unchanged rewrite is still a valid file (the forge itself is sound).
    let f = forge::rewrite_manifest(&bytes, |_, _| {});
    open_and_verify(&f, None).unwrap();
}

#[test]
fn writer_refuses_rows_that_disagree_with_the_status_row() {
    let tables = release_tables();
    let mut out = Vec::new();
    let mut w = ArchiveWriter::new(
        &mut out,
        "x.cmsbak",
        header(vec![1], category::HISTORY),
        None,
    )
    .unwrap();
    let rows = gen_rows(&tables, 1, T0, &[2, 0, 0, 0], &mut Rng(1));
    let mut e = entry(&tables, 1, T0, &rows);
    e.row_count += 1;
    w.begin_interval(e).unwrap();
    for r in &rows[0].1 {
        w.row("hsplit", r).unwrap();
    }
    let err = w.end_interval().err().unwrap();
    assert!(err.to_string().contains("status row says 3 rows"), "{err}");
    // Wrong interval in a row, out-of-order intervals, rows of the wrong kind.
    let e = entry(&tables, 1, T0 + 900, &vec![]);
    w.begin_interval(e).unwrap();
    assert!(w.row("hsplit", &rows[0].1[0]).is_err());
    assert!(w.summary_row("dsplit", &[0; 62]).is_err());
    w.end_interval().unwrap();
    assert!(w.begin_interval(entry(&tables, 1, T0, &vec![])).is_err());
    assert!(w.admin_row("skill_def", &[Value::Int(1)]).is_err());
    w.finish().unwrap();
    let mut r = open(&out, None).unwrap();
    assert_eq!(r.manifest().len(), 1);
    r.verify_all().unwrap();
}

#[test]
fn streamed_copy_is_verified_while_spooling() {
    let bytes = small();
    let mut spool = Vec::new();
    let n = spool_verified(&bytes[..], &mut spool, "peer 10.0.0.2", None).unwrap();
    assert_eq!(n as usize, bytes.len());
    assert_eq!(spool, bytes);
    let err = spool_verified(&bytes[..bytes.len() - 10], Vec::new(), "peer", None)
        .err()
        .unwrap();
    assert!(matches!(err, ArchiveError::Truncated { .. }), "{err}");
    let mut b = bytes.clone();
    b[200] ^= 4;
    let err = spool_verified(&b[..], Vec::new(), "peer", None)
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            ArchiveError::Checksum {
                region: Region::File,
                ..
            }
        ),
        "{err}"
    );
    let key = [9u8; 32];
    let err = spool_verified(&bytes[..], Vec::new(), "peer", Some(&key))
        .err()
        .unwrap();
    assert!(matches!(err, ArchiveError::MissingMac { .. }), "{err}");
}

// ---- compatibility -----------------------------------------------------------------------

#[test]
fn columns_map_by_name_unknown_ignored_missing_default() {
    // A file from an imagined other release: hsplit lost `acdcalls` and gained
    // `futureitem`, skill_def gained `colour`, and there is a table we do not know.
    let mut tables = release_tables();
    let hs = tables.iter_mut().find(|t| t.name == "hsplit").unwrap();
    hs.columns.retain(|c| c.name != "acdcalls");
    hs.columns.push(Column {
        name: "futureitem".into(),
        ty: ColumnType::Int,
    });
    let sk = tables.iter_mut().find(|t| t.name == "skill_def").unwrap();
    sk.columns.insert(
        3,
        Column {
            name: "colour".into(),
            ty: ColumnType::Text,
        },
    );
    tables.insert(
        4,
        TableSchema {
            kind: TableKind::Interval,
            name: "hfuture".into(),
            key_columns: 3,
            columns: ["acd", "thing", "istart", "x"]
                .iter()
                .map(|n| Column {
                    name: n.to_string(),
                    ty: ColumnType::Int,
                })
                .collect(),
        },
    );
    let mut out = Vec::new();
    let mut w = ArchiveWriter::with_tables(
        &mut out,
        "old.cmsbak",
        header(vec![1], category::ALL),
        None,
        tables.clone(),
    )
    .unwrap();
    let hsplit_cols = tables[0].columns.len();
    let row: Vec<i64> = (0..hsplit_cols as i64)
        .map(|i| match i {
            0 => 1,
            1 => 4,
            2 => T0,
            i => i * 10,
        })
        .collect();
    let fut = vec![1, 9, T0, 77];
    let rows: Rows = vec![
        ("hsplit".into(), vec![row.clone()]),
        ("hagent".into(), vec![]),
        ("hvdn".into(), vec![]),
        ("htkgrp".into(), vec![]),
        ("hfuture".into(), vec![fut.clone()]),
    ];
    w.begin_interval(entry(&tables, 1, T0, &rows)).unwrap();
    w.row("hsplit", &row).unwrap();
    w.row("hfuture", &fut).unwrap();
    w.end_interval().unwrap();
    w.admin_row(
        "skill_def",
        &[
            Value::Int(1),
            Value::Int(4),
            Value::Int(20),
            Value::Text("red".into()),
            Value::Text("5,10".into()),
            Value::Text("Sales".into()),
        ],
    )
    .unwrap();
    w.finish().unwrap();
    let bytes = out.clone();

    let mut r = ArchiveReader::from_reader(Cursor::new(out), "old.cmsbak", None).unwrap();
    r.verify_all().unwrap();
    let m = r.manifest()[0].clone();
    let d = r.read_interval(&m).unwrap();
    assert_eq!(d.tables.len(), 4, "unknown table skipped");
    let hs = d.table("hsplit").unwrap();
    assert_eq!(hs.columns, release_tables()[0].column_names());
    let got = &hs.rows[0];
    for (i, c) in hs.columns.iter().enumerate() {
        let want = match c.as_str() {
            "acdcalls" => 0, // missing: default
            name => {
                row[tables[0]
                    .columns
                    .iter()
                    .position(|x| x.name == name)
                    .unwrap()]
            }
        };
        assert_eq!(got[i], want, "{c}");
    }
    let a: Vec<_> = r.admin_rows().map(|x| x.unwrap()).collect();
    assert_eq!(
        a[0].values,
        vec![
            Value::Int(1),
            Value::Int(4),
            Value::Int(20),
            Value::Text("5,10".into()),
            Value::Text("Sales".into())
        ]
    );
    // The checksum of the rows as this release stores them differs from the file's
    // (acdcalls reads as 0, futureitem is dropped)...
    assert_ne!(d.checksum, m.checksum);

    // ... and a restore of this file stores rows and a status row that agree, so the
    // next backup of that server verifies.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("old.cmsbak");
    std::fs::write(&file, &bytes).unwrap();
    let mut store = cms::store::Store::open(&dir.path().join("cms.db")).unwrap();
    let grid = cms::interval::Grid::new(chrono_tz::America::New_York, 15);
    let opts = cms::merge::restore::RestoreOptions {
        file: file.clone(),
        sel: cms::merge::Selection {
            acds: vec![],
            from: None,
            to: None,
            grid,
            categories: cms::merge::Categories::parse("history").unwrap(),
        },
        configured_acds: vec![1],
        dry_run: false,
        include_local: false,
        key: None,
        server_id: "here".into(),
        collection_running: false,
        progress: false,
        week_start: chrono::Weekday::Mon,
    };
    let rep = cms::merge::restore::restore(&mut store, &grid, &opts).unwrap();
    assert_eq!(rep.filled, 1);
    let (n, sum) = cms::store::interval_checksum(&store.conn, 1, T0).unwrap();
    let (status_rows, status_sum): (i64, String) = store
        .conn
        .query_row(
            "SELECT row_count, checksum FROM interval_status WHERE acd = 1 AND istart = ?1",
            [T0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((n, sum.clone()), (status_rows, status_sum));
    assert_eq!(
        sum,
        blake3::Hash::from_bytes(d.checksum).to_hex().to_string()
    );
    // Restored again: the same rows, kept, not a conflict (the file's own checksum
    // differs from the stored one only because of the columns).
    let rep = cms::merge::restore::restore(&mut store, &grid, &opts).unwrap();
    assert_eq!((rep.kept, rep.conflicts.len(), rep.filled), (1, 0, 0));
}

#[test]
fn date_encoding_round_trips() {
    assert_eq!(date_to_i64("2024-03-11"), Some(20240311));
    assert_eq!(i64_to_date(20240311).as_deref(), Some("2024-03-11"));
    assert_eq!(date_to_i64("2024-02-30"), None);
    assert_eq!(i64_to_date(20241301), None);
}

// ---- the spec example and the fixture kept forever ---------------------------------------

/// The tiny file of the spec: one ACD interval with one `htkgrp` row, a directory with only
/// `htkgrp`.
fn tiny_archive() -> Vec<u8> {
    let tables: Vec<TableSchema> = release_tables()
        .into_iter()
        .filter(|t| t.name == "htkgrp")
        .collect();
    let h = Header {
        schema_version: 1,
        created_at: 1_710_200_000,
        server_id: "a".into(),
        acds: vec![1],
        range_start: T0,
        range_end: T0 + 3600,
        categories: category::HISTORY,
        properties: vec![],
    };
    let mut out = Vec::new();
    let mut w = ArchiveWriter::with_tables(&mut out, "tiny", h, None, tables.clone()).unwrap();
    let row = vec![1, 3, T0 + 900, 4, 310, 1, 0, 0];
    let rows: Rows = vec![("htkgrp".into(), vec![row.clone()])];
    let mut e = entry(&tables, 1, T0 + 900, &rows);
    e.row_date = "2024-03-11".into();
    e.starttime = 415;
    e.epoch = 1;
    e.first_seq = 10;
    e.last_seq = 42;
    e.updated_at = T0 + 1800;
    w.begin_interval(e).unwrap();
    w.row("htkgrp", &row).unwrap();
    w.end_interval().unwrap();
    w.finish().unwrap();
    out
}

fn spec_example(name: &str) -> Vec<u8> {
    let spec = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/proto/backup-format.md"
    ))
    .unwrap();
    let marker = format!("```hex example={name}");
    let start = spec
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} in the spec"))
        + marker.len();
    let end = start + spec[start..].find("```").unwrap();
    let mut out = Vec::new();
    for line in spec[start..end].lines() {
        let data = line.split('#').next().unwrap();
        for tok in data.split_whitespace() {
            out.push(
                u8::from_str_radix(tok, 16)
                    .unwrap_or_else(|_| panic!("bad hex {tok:?} in {line:?}")),
            );
        }
    }
    out
}

#[test]
fn spec_example_decodes() {
    let bytes = spec_example("tiny-archive");
    let mut r = open(&bytes, None).unwrap();
    r.verify_all().unwrap();
    assert_eq!(r.header().server_id, "a");
    assert_eq!(r.header().acds, vec![1]);
    assert_eq!(r.blocks().len(), 1);
    let m = r.manifest()[0].clone();
    assert_eq!(
        (
            m.acd,
            m.istart,
            m.intrvl,
            m.row_date.as_str(),
            m.starttime,
            m.status
        ),
        (1, T0 + 900, 15, "2024-03-11", 415, Status::Complete)
    );
    assert_eq!(
        (m.epoch, m.first_seq, m.last_seq, m.row_count),
        (1, 10, 42, 1)
    );
    let d = r.read_interval(&m).unwrap();
    assert_eq!(
        d.table("htkgrp").unwrap().rows,
        vec![vec![1, 3, T0 + 900, 4, 310, 1, 0, 0]]
    );
    assert!(d.table("hsplit").unwrap().rows.is_empty());
}

/// Prints the spec example with annotations: `cargo test --test archive_format -- --ignored print_spec_example --nocapture`.
#[test]
#[ignore]
fn print_spec_example() {
    let b = tiny_archive();
    println!("{}", annotate(&b));
    let r = open(&b, None).unwrap();
    let blk = r.blocks()[0].clone();
    let p = &b[blk.offset as usize + 48..(blk.offset + blk.len) as usize];
    let raw = zstd::bulk::decompress(p, blk.raw_len as usize).unwrap();
    let mut a = Annot {
        b: &raw,
        at: 0,
        out: String::new(),
    };
    a.emit(4, "section (interval) count 1");
    a.emit(2, "acd 1");
    a.emit(8, "istart");
    a.emit(2, "table count 1");
    a.emit(2, "  table id 0 (htkgrp)");
    a.emit(4, "  row count 1");
    for c in [
        "acd",
        "tkgrp",
        "istart",
        "incalls",
        "intime",
        "abncalls",
        "i_inocc",
        "allinusetime",
    ] {
        a.emit(8, &format!("    {c}"));
    }
    println!("{}", a.out);
    let mo = blk.offset + blk.len;
    let raw_len = u32::from_le_bytes(b[mo as usize + 8..mo as usize + 12].try_into().unwrap());
    let end = b.len() - TRAILER_LEN;
    let raw = zstd::bulk::decompress(&b[mo as usize + 48..end], raw_len as usize).unwrap();
    let mut a = Annot {
        b: &raw,
        at: 0,
        out: String::new(),
    };
    let rl = a.u32_at(1);
    a.emit(1, "record tag 2 = interval");
    a.emit(4, &format!("record length {rl}"));
    a.emit(2, "  acd 1");
    a.emit(8, "  istart");
    a.emit(4, "  intrvl 15");
    a.emit(4, "  row_date: length 10");
    a.emit(10, "    \"2024-03-11\"");
    a.emit(4, "  starttime 415");
    a.emit(1, "  status 1 = complete");
    a.emit(4, "  reasons: length 0");
    a.emit(4, "  source: length 9");
    a.emit(9, "    \"collected\"");
    a.emit(8, "  epoch 1");
    a.emit(8, "  first_seq 10");
    a.emit(8, "  last_seq 42");
    a.emit(8, "  updated_at");
    a.emit(8, "  row_count 1");
    a.emit(32, "  content checksum");
    a.emit(4, "  block 0");
    a.emit(4, "  raw offset 4");
    a.emit(4, "  raw length");
    a.emit(1, "record tag 1 = block");
    a.emit(4, "record length 61");
    a.emit(4, "  index 0");
    a.emit(1, "  kind 1 = interval");
    a.emit(8, "  offset");
    a.emit(8, "  length (header included)");
    a.emit(4, "  raw length");
    a.emit(4, "  sections 1");
    a.emit(32, "  block hash (as in its header)");
    a.emit(1, "record tag 0 = end");
    a.emit(4, "record length 20");
    a.emit(4, "  blocks 1");
    a.emit(8, "  intervals 1");
    a.emit(8, "  interval rows 1");
    assert_eq!(a.at, raw.len());
    println!("{}", a.out);
}

struct Annot<'a> {
    b: &'a [u8],
    at: usize,
    out: String,
}

impl Annot<'_> {
    fn emit(&mut self, n: usize, what: &str) {
        let chunk = &self.b[self.at..self.at + n];
        for (i, line) in chunk.chunks(16).enumerate() {
            let hex: Vec<String> = line.iter().map(|x| format!("{x:02x}")).collect();
            let text = hex.join(" ");
            if i == 0 {
                self.out
                    .push_str(&format!("{text:<48} # {:04x} {what}\n", self.at));
            } else {
                self.out.push_str(&format!("{text}\n"));
            }
        }
        self.at += n;
    }
    fn u32_at(&self, off: usize) -> usize {
        u32::from_le_bytes(self.b[self.at + off..self.at + off + 4].try_into().unwrap()) as usize
    }
    fn u16_at(&self, off: usize) -> usize {
        u16::from_le_bytes(self.b[self.at + off..self.at + off + 2].try_into().unwrap()) as usize
    }
}

fn annotate(b: &[u8]) -> String {
    let mut a = Annot {
        b,
        at: 0,
        out: String::new(),
    };
    a.emit(8, "magic \"\\x89CMSBAK\\n\"");
    a.emit(2, "format version 1");
    a.emit(2, "flags 0");
    let hl = a.u32_at(0);
    a.emit(4, &format!("header length {hl}"));
    a.emit(4, "schema version 1");
    a.emit(8, "created_at 1710200000 (2024-03-11T23:33:20Z)");
    a.emit(4, "server id: length 1");
    a.emit(1, "  \"a\"");
    a.emit(8, &format!("range start {T0} (2024-03-11T08:00:00Z)"));
    a.emit(8, "range end (+3600)");
    a.emit(1, "categories: 1 = history");
    a.emit(2, "ACD count 1");
    a.emit(2, "  ACD 1");
    a.emit(2, "property count 0");
    a.emit(2, "table count 1");
    a.emit(1, "  kind 1 = interval");
    a.emit(4, "  name: length 6");
    a.emit(6, "    \"htkgrp\"");
    a.emit(2, "  key columns 3 (acd, tkgrp, istart)");
    let nc = a.u16_at(0);
    a.emit(2, &format!("  column count {nc}"));
    for _ in 0..nc {
        let l = a.u32_at(1);
        let name = String::from_utf8_lossy(&b[a.at + 5..a.at + 5 + l]).to_string();
        a.emit(1, "    type 1 = int");
        a.emit(4 + l, &format!("    name \"{name}\""));
    }
    a.emit(32, "header hash: blake3 of bytes 0000..here");
    let stored = a.u32_at(12);
    a.emit(1, "block 0: kind 1 = interval");
    a.emit(1, "  codec 1 = zstd");
    a.emit(2, "  reserved");
    a.emit(4, "  block index 0");
    a.emit(4, &format!("  raw length {}", a.u32_at(0)));
    a.emit(4, &format!("  stored length {stored}"));
    a.emit(32, "  blake3 of bytes 0..16 of this header and the payload");
    a.emit(stored, "  zstd frame (decompressed content below)");
    let stored = a.u32_at(12);
    a.emit(1, "manifest: kind 0x10 = manifest");
    a.emit(1, "  codec 1 = zstd");
    a.emit(2, "  reserved");
    a.emit(4, "  block index 1 (after the 1 data block)");
    a.emit(4, &format!("  raw length {}", a.u32_at(0)));
    a.emit(4, &format!("  stored length {stored}"));
    a.emit(32, "  blake3 of bytes 0..16 of this header and the payload");
    a.emit(stored, "  zstd frame (decompressed content below)");
    a.emit(8, "trailer: magic \"CMSBKEND\"");
    a.emit(2, "  format version 1");
    a.emit(1, "  MAC kind 0 = none");
    a.emit(5, "  reserved");
    a.emit(8, "  manifest offset");
    a.emit(8, "  manifest length");
    a.emit(32, "  manifest hash: blake3 of the manifest block");
    a.emit(32, "  file hash: blake3 of bytes 0..trailer");
    a.emit(8, "  key id (none)");
    a.emit(8, "  reserved");
    a.emit(32, "  MAC (none: zero)");
    a.emit(
        32,
        "  trailer hash: blake3 of the trailer's first 144 bytes",
    );
    assert_eq!(a.at, b.len());
    a.out
}

/// The fixture written by format `version`: one per format version, each kept forever.
fn fixture(version: u16) -> String {
    format!(
        "{}/tests/fixtures/backup-v{version}.cmsbak",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// What every format's fixture holds. Never change this function: the fixtures are kept
/// forever so that every later release proves it still reads every format.
fn fixture_expected() -> (Header, Expected) {
    let tables = release_tables();
    let mut rng = Rng(2024);
    let h = Header {
        schema_version: 1,
        created_at: 1_710_201_234,
        server_id: "cms-fixture-a".into(),
        acds: vec![1],
        range_start: T0,
        range_end: T0 + 86_400,
        categories: category::HISTORY | category::ADMIN,
        properties: vec![("cms_version".into(), "0.1.0".into())],
    };
    let mut intervals = Vec::new();
    for i in 0..2 {
        let istart = T0 + i * 900;
        let rows = gen_rows(&tables, 1, istart, &[2, 3, 1, 1], &mut rng);
        intervals.push((entry(&tables, 1, istart, &rows), rows));
    }
    let summaries = vec![(
        "dsplit".to_string(),
        summary_row(&tables, "dsplit", 1, 1, "2024-03-11", 5),
    )];
    (
        h,
        Expected {
            intervals,
            summaries,
            admin: admin_rows(),
            local: vec![],
        },
    )
}

/// Writes the fixture of the current format version:
/// `cargo test --test archive_format -- --ignored regenerate_fixture`. Only when a new
/// format version is introduced, before its release; never once it has shipped.
#[test]
#[ignore]
fn regenerate_fixture() {
    let (h, exp) = fixture_expected();
    let mut out = Vec::new();
    let path = fixture(FORMAT_VERSION);
    let mut w = ArchiveWriter::new(&mut out, &path, h, None).unwrap();
    for (e, rows) in &exp.intervals {
        w.begin_interval(e.clone()).unwrap();
        for (t, rs) in rows {
            for r in rs {
                w.row(t, r).unwrap();
            }
        }
        w.end_interval().unwrap();
    }
    for (t, r) in &exp.summaries {
        w.summary_row(t, r).unwrap();
    }
    for (t, v) in &exp.admin {
        w.admin_row(t, v).unwrap();
    }
    w.finish().unwrap();
    std::fs::write(path, out).unwrap();
}

#[test]
fn every_format_fixture_reads_exactly() {
    for v in 1..=FORMAT_VERSION {
        fixture_reads_exactly(v);
    }
}

fn fixture_reads_exactly(version: u16) {
    let path = fixture(version);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (h, exp) = fixture_expected();
    let mut r = ArchiveReader::open(std::path::Path::new(&path), None).unwrap();
    assert_eq!(r.format_version(), version);
    assert_eq!(r.header(), &h);
    let rep = r.verify_all().unwrap();
    assert_eq!(
        (
            rep.intervals,
            rep.interval_rows,
            rep.summary_rows,
            rep.admin_rows,
            rep.local_rows
        ),
        (2, 14, 1, 4, 0)
    );
    drop(r);
    let mut r = open(&bytes, None).unwrap();
    check_contents(&mut r, &exp);
    let m = &r.manifest()[0];
    assert_eq!(m.checksum_hex().len(), 64);
    assert_eq!(
        i64_to_date(
            r.summary_rows().next().unwrap().unwrap().values[2]
                .as_int()
                .unwrap()
        )
        .as_deref(),
        Some("2024-03-11")
    );
}
