//! The backup reader's memory against a forged size (issue #12): a manifest whose block
//! header announces the largest manifest the format allows (`MAX_MANIFEST_RAW`, 256 MiB)
//! over a few bytes of data is refused with the usual "decompressed to" error, and the
//! reader never holds more than a little memory on the way. This file is its own test
//! binary because it counts every allocation on the process's Rust heap, where the
//! reader's buffers live (zstd's own C workspace is allocated outside it and not counted).

use cms::archive::{category, forge, ArchiveError, ArchiveReader, ArchiveWriter, Header};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes live on the Rust heap and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// 256 MiB, `MAX_MANIFEST_RAW` of proto/backup-format.md ("Limits").
const ANNOUNCED: u32 = 256 << 20;

/// A valid backup with no intervals: its manifest decompresses to a few bytes.
fn small_backup() -> Vec<u8> {
    let header = Header {
        schema_version: 1,
        created_at: 1_710_200_000,
        server_id: "cms-a".into(),
        acds: vec![1],
        range_start: 1_710_000_000,
        range_end: 1_710_086_400,
        categories: category::HISTORY,
        properties: vec![],
    };
    let mut out = Vec::new();
    let w = ArchiveWriter::new(&mut out, "small.cmsbak", header, None).unwrap();
    w.finish().unwrap();
    out
}

#[test]
fn a_forged_manifest_size_is_refused_without_reserving_it() {
    let mut file = small_backup();
    ArchiveReader::from_reader(Cursor::new(&file), "small.cmsbak", None)
        .expect("the unforged file opens");
    forge::set_manifest_raw_len(&mut file, ANNOUNCED);

    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let err = ArchiveReader::from_reader(Cursor::new(&file), "forged.cmsbak", None)
        .err()
        .expect("a manifest shorter than announced is refused");
    let peak = PEAK.load(Ordering::Relaxed) - base;

    match &err {
        ArchiveError::Malformed { what, detail, .. } => {
            assert_eq!(what, "manifest", "{err}");
            assert!(
                detail.ends_with(&format!("bytes, the header says {ANNOUNCED}")),
                "{err}"
            );
        }
        other => panic!("expected the manifest refused as malformed, got {other}"),
    }
    assert!(
        peak < 4 << 20,
        "opening the forged file held {peak} bytes at once; the manifest announced {ANNOUNCED}"
    );
}
