//! The backup file reader (`cms::archive::ArchiveReader`, `proto/backup-format.md`):
//! prefix, header, trailer, whole-file hash, MAC, manifest, blocks, interval sections and
//! summary/admin/local rows.
//!
//! Each input is read twice: as a file as it is (what a truncated or corrupted file meets),
//! and as the unpacked form `cms_fuzz::backup::pack` turns into a file with every hash
//! right (what a forger without the site key, or a buggy writer, can produce), so the
//! decoders behind the hashes are reached.
//!
//! Properties: no panic; a refused file gets an error naming the file; opening allocates
//! nothing beyond the format's limits (`-malloc_limit_mb`, see `fuzz/ci.sh`); a file that
//! opens can be read whole (`verify_all`, every interval, every row) without a panic, and
//! every interval the manifest lists reads back with the row count it claims.
#![no_main]

use cms::archive::ArchiveReader;
use cms_fuzz::backup::{pack, FUZZ_KEY};
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use std::path::Path;

const NAME: &str = "/fuzz/in.cmsbak";

fn read_all(file: &[u8], key: Option<&[u8; 32]>) {
    let mut rd = match ArchiveReader::from_reader(Cursor::new(file), NAME, key) {
        Ok(r) => r,
        Err(e) => {
            assert!(e.to_string().starts_with(NAME), "{e}");
            return;
        }
    };
    assert_eq!(rd.name(), Path::new(NAME));
    let entries = rd.manifest().to_vec();
    let verified = rd.verify_all();
    for e in &entries {
        match rd.read_interval(e) {
            Ok(d) => {
                let rows: usize = d.tables.iter().map(|t| t.rows.len()).sum();
                assert_eq!(
                    rows as u64, e.row_count,
                    "interval rows differ from the manifest"
                );
                assert!(verified.is_ok() || rd.check_interval(e).is_ok());
            }
            Err(err) => assert!(err.to_string().starts_with(NAME), "{err}"),
        }
    }
    for r in rd.summary_rows().take(100_000) {
        if r.is_err() {
            break;
        }
    }
    for r in rd.admin_rows().take(100_000) {
        if r.is_err() {
            break;
        }
    }
    for r in rd.local_rows().take(100_000) {
        if r.is_err() {
            break;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    read_all(data, None);
    if let Some((file, mode)) = pack(data) {
        read_all(&file, mode.mac.then_some(&FUZZ_KEY));
    }
});
