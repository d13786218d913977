//! The lazy filesystem itself (tests/lazyfs, docs/lazyfs.md): a synced write survives a
//! cut, an unsynced one does not; a new name or a rename survives only once its
//! directory is synced; a `Prefix` cut keeps a prefix of the writes, a `Torn` one tears
//! at a sector boundary; after a cut every request fails until the remount; SQLite in
//! WAL mode (with its `-shm` mapped into memory) works on it.
#![cfg(target_os = "linux")]

mod lazyfs;

use lazyfs::{Cut, LazyFs};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

struct Fixture {
    _dir: tempfile::TempDir,
    fs: LazyFs,
}

fn mount() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let backing = dir.path().join("backing");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let fs = LazyFs::mount(&backing, &mnt).unwrap();
    Fixture { _dir: dir, fs }
}

fn sync_dir(p: &Path) {
    File::open(p).unwrap().sync_all().unwrap();
}

fn read(p: &Path) -> Option<Vec<u8>> {
    std::fs::read(p).ok()
}

#[test]
fn synced_write_survives_a_cut_and_unsynced_write_does_not() {
    if !lazyfs::run_or_skip("synced_write_survives_a_cut_and_unsynced_write_does_not") {
        return;
    }
    let mut fx = mount();
    let m = fx.fs.mountpoint().to_path_buf();
    let mut f = File::create(m.join("a")).unwrap();
    f.write_all(b"durable").unwrap();
    f.sync_data().unwrap();
    sync_dir(&m);
    f.write_all(b" and more").unwrap(); // never synced
    let mut g = File::create(m.join("b")).unwrap();
    g.write_all(b"lost").unwrap();
    g.sync_all().unwrap(); // the data is synced, the directory entry is not
    assert_eq!(read(&m.join("a")).unwrap(), b"durable and more");
    let rep = fx.fs.cut(Cut::DropAll);
    assert!(rep.ops_dropped >= 1 && rep.dirs == 1, "{rep:?}");
    // Refused until remounted.
    assert!(std::fs::read(m.join("a")).is_err());
    assert!(f.write_all(b"x").is_err());
    drop((f, g));
    fx.fs.remount();
    assert_eq!(read(&m.join("a")).unwrap(), b"durable");
    assert_eq!(read(&m.join("b")), None, "a name not synced is lost");
    // The backing directory holds only the durable state.
    assert_eq!(read(&fx.fs.backing().join("a")).unwrap(), b"durable");
}

#[test]
fn rename_survives_only_after_its_directory_is_synced() {
    if !lazyfs::run_or_skip("rename_survives_only_after_its_directory_is_synced") {
        return;
    }
    let mut fx = mount();
    let m = fx.fs.mountpoint().to_path_buf();
    for (name, body) in [
        ("old", "old body"),
        ("tmp1", "new body 1"),
        ("tmp2", "new body 2"),
    ] {
        let mut f = File::create(m.join(name)).unwrap();
        f.write_all(body.as_bytes()).unwrap();
        f.sync_all().unwrap();
    }
    sync_dir(&m);
    // Rename tmp1 over old and sync the directory: durable.
    std::fs::rename(m.join("tmp1"), m.join("old")).unwrap();
    assert_eq!(
        read(&m.join("old")).unwrap(),
        b"new body 1",
        "the renamed file opens"
    );
    sync_dir(&m);
    // Rename tmp2 over old without a directory sync: taken back by the cut.
    std::fs::rename(m.join("tmp2"), m.join("old")).unwrap();
    std::fs::remove_file(m.join("old")).ok(); // and even unlinked: it comes back
    fx.fs.cut(Cut::DropAll);
    fx.fs.remount();
    assert_eq!(read(&m.join("old")).unwrap(), b"new body 1");
    assert_eq!(read(&m.join("tmp2")).unwrap(), b"new body 2");
    assert_eq!(read(&m.join("tmp1")), None);
    // A subdirectory made and synced in its parent survives with its synced files.
    std::fs::create_dir(m.join("sub")).unwrap();
    sync_dir(&m);
    let mut f = File::create(m.join("sub/x")).unwrap();
    f.write_all(b"x").unwrap();
    f.sync_all().unwrap();
    sync_dir(&m.join("sub"));
    std::fs::create_dir(m.join("gone")).unwrap();
    fx.fs.cut(Cut::DropAll);
    fx.fs.remount();
    assert_eq!(read(&m.join("sub/x")).unwrap(), b"x");
    assert!(!m.join("gone").exists());
}

#[test]
fn truncation_is_undone_and_prefix_and_torn_cuts_keep_what_they_say() {
    if !lazyfs::run_or_skip("truncation_is_undone_and_prefix_and_torn_cuts_keep_what_they_say") {
        return;
    }
    let mut fx = mount();
    let m = fx.fs.mountpoint().to_path_buf();
    let p = m.join("f");
    let base: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
    {
        let f = File::create(&p).unwrap();
        f.write_all_at(&base, 0).unwrap();
        f.sync_all().unwrap();
        sync_dir(&m);
        f.set_len(100).unwrap();
        f.write_all_at(&[7u8; 300], 50).unwrap();
    }
    fx.fs.cut(Cut::DropAll);
    fx.fs.remount();
    assert_eq!(read(&p).unwrap(), base, "truncate and write taken back");
    // Ten unsynced writes of 4 KiB, each of its own byte; a prefix cut keeps the first k.
    let mut seen_partial = false;
    for seed in 0..6u64 {
        {
            let f = OpenOptions::new().write(true).open(&p).unwrap();
            for k in 0..10u8 {
                f.write_all_at(&[k + 1; 4096], 8192 + 4096 * k as u64)
                    .unwrap();
            }
        }
        let mode = if seed % 2 == 0 {
            Cut::Prefix { seed }
        } else {
            Cut::Torn { seed }
        };
        let rep = fx.fs.cut(mode);
        fx.fs.remount();
        let got = read(&p).unwrap();
        assert_eq!(&got[..8192], &base[..], "{mode:?}: synced data intact");
        let tail = &got[8192..];
        let whole = rep.ops_kept;
        assert!(
            tail.len() >= whole * 4096,
            "{mode:?} {rep:?}: {} bytes",
            tail.len()
        );
        for (k, chunk) in tail.chunks(4096).enumerate() {
            let want = k as u8 + 1;
            if k < whole {
                assert!(chunk.iter().all(|b| *b == want), "{mode:?}: write {k} kept");
            } else {
                // The torn write: a whole number of sectors from its start.
                assert_eq!(rep.torn, 1, "{mode:?} {rep:?}");
                assert!(
                    chunk.len() % 512 == 0 && chunk.len() < 4096,
                    "{}",
                    chunk.len()
                );
                assert!(chunk.iter().all(|b| *b == want));
                seen_partial = true;
            }
        }
        // Back to the synced state for the next round.
        let f = OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(8192).unwrap();
        f.sync_all().unwrap();
    }
    assert!(seen_partial, "some torn cut tore a write");
}

#[test]
fn sqlite_wal_with_mapped_shm_works_and_a_cut_keeps_only_synced_commits() {
    if !lazyfs::run_or_skip("sqlite_wal_with_mapped_shm_works_and_a_cut_keeps_only_synced_commits")
    {
        return;
    }
    let mut fx = mount();
    let db = fx.fs.mountpoint().join("t.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.pragma_update(None, "synchronous", "FULL").unwrap();
        c.execute_batch("CREATE TABLE t(x INTEGER)").unwrap();
        for i in 0..50 {
            c.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
        }
        // A second connection reads through the shared memory index.
        let r = rusqlite::Connection::open(&db).unwrap();
        let n: i64 = r
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 50);
        // NORMAL: these commits are not synced.
        c.pragma_update(None, "synchronous", "NORMAL").unwrap();
        for i in 50..80 {
            c.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
        }
        assert!(fx.fs.unsynced_ops() > 0);
        fx.fs.cut(Cut::DropAll);
        // The connections are dropped after the cut, as a dead process's would be.
    }
    fx.fs.remount();
    let c = rusqlite::Connection::open(&db).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let n: i64 = c
        .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 50, "the FULL commits survive, the NORMAL ones are lost");
}
