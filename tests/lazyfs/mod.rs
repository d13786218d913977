//! LazyFs: a test-only FUSE filesystem that forgets what was not synced (issue #11).
//!
//! It passes every read and write through to a backing directory, and keeps, beside it,
//! what it needs to take back everything that is not durable yet: per file, an undo log
//! of the writes and truncations since that file's last `fsync`/`fdatasync`; per
//! directory, its entries as they were at its last `fsync`. [`LazyFs::cut`] is the power
//! cut: it rolls the backing directory back to its durable state (optionally keeping a
//! random prefix of each file's unsynced writes, or tearing the next one), and from then
//! on every request gets `EIO` until the filesystem is mounted again. The model, what
//! counts as durable and what a cut loses, is `docs/lazyfs.md`.
//!
//! It runs inside the test process (one FUSE thread per mount); the processes under test
//! (`cms collect`, `cms backup`, ...) use the mount point like any directory. It is not a
//! general-purpose filesystem: regular files, directories and symlinks only, no xattrs,
//! no special files; ownership and times pass through but are not part of the model.
//!
//! Mounting needs `/dev/fuse` and root (the mount is made with mount(2), no helper);
//! [`fuse_usable`] tells a test whether to run, and `tests/lazyfs/ci-setup.sh` prepares
//! a machine.

#![allow(dead_code)] // each test binary uses a different part of this module

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
    TimeOrNow, WriteFlags,
};
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// How long the kernel may cache names and attributes. Everything goes through this
/// mount, so the kernel's own view stays right; a cut is always followed by a remount.
const TTL: Duration = Duration::from_secs(1);
/// Torn writes keep a whole number of these from the start of the write.
const SECTOR: u64 = 512;

/// What a power cut keeps of the writes a file had not synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Nothing: every file is as at its last sync (the strict model).
    DropAll,
    /// Per file, a random prefix (possibly empty, possibly all) of its unsynced writes,
    /// in the order they were made; directories as at their last sync.
    Prefix { seed: u64 },
    /// As `Prefix`, and the first write not kept is torn: a random whole number of
    /// 512-byte sectors from its start reached the disk, the rest did not.
    Torn { seed: u64 },
}

/// What a cut took back.
#[derive(Debug, Clone, Default)]
pub struct CutReport {
    /// Files that had unsynced writes or truncations.
    pub files: usize,
    /// Unsynced writes and truncations taken back (torn ones counted).
    pub ops_dropped: usize,
    /// Unsynced writes kept by a `Prefix` or `Torn` cut.
    pub ops_kept: usize,
    /// Writes torn.
    pub torn: usize,
    /// Directories whose entries were put back as at their last sync.
    pub dirs: usize,
}

/// Why FUSE cannot be used on this machine, or `Ok` if it can. A test that gets `Err`
/// prints the reason and returns, unless `CMS_REQUIRE_FUSE` is set (then it fails): see
/// docs/lazyfs.md.
pub fn fuse_usable() -> Result<(), String> {
    if !Path::new("/dev/fuse").exists() {
        return Err(
            "/dev/fuse does not exist (no FUSE module, or not passed to this container)".into(),
        );
    }
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root: the lazy filesystem mounts with mount(2)".into());
    }
    if let Err(e) = OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        return Err(format!("/dev/fuse: cannot open: {e}"));
    }
    Ok(())
}

/// For a test's first line: `if !lazyfs::run_or_skip("name") { return; }`.
///
/// # Panics
/// If FUSE is not usable and `CMS_REQUIRE_FUSE` is set.
pub fn run_or_skip(test: &str) -> bool {
    match fuse_usable() {
        Ok(()) => true,
        Err(why) => {
            assert!(
                std::env::var_os("CMS_REQUIRE_FUSE").is_none(),
                "{test}: FUSE is required (CMS_REQUIRE_FUSE is set) but not usable: {why}"
            );
            eprintln!("{test}: skipped: FUSE is not usable here: {why}");
            false
        }
    }
}

/// A mounted lazy filesystem.
pub struct LazyFs {
    mountpoint: PathBuf,
    backing: PathBuf,
    state: Arc<Mutex<State>>,
    session: Option<BackgroundSession>,
    /// The kernel's control directory of this connection (`/sys/fs/fuse/connections/N`).
    conn: Option<PathBuf>,
}

impl LazyFs {
    /// Mounts a lazy view of `backing` (an existing directory, whose content counts as
    /// durable) at `mountpoint` (an existing empty directory). Undo data lives in
    /// `backing` + `.lazyfs-trash`, beside it (same filesystem, for hard links).
    ///
    /// # Errors
    /// If either directory is missing or the mount fails; the message names the path.
    pub fn mount(backing: &Path, mountpoint: &Path) -> io::Result<LazyFs> {
        let backing = backing
            .canonicalize()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", backing.display())))?;
        let mountpoint = mountpoint
            .canonicalize()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", mountpoint.display())))?;
        mount_fusectl();
        let trash = trash_dir(&backing);
        let _ = std::fs::remove_dir_all(&trash);
        std::fs::create_dir_all(&trash)?;
        let state = Arc::new(Mutex::new(State::new(backing.clone(), trash)));
        let fs = LazyFsImpl {
            state: state.clone(),
        };
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("cms-lazyfs".into()),
            MountOption::Subtype("lazyfs".into()),
        ];
        config.n_threads = Some(1);
        let session = fuser::spawn_mount(fs, &mountpoint, &config).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "{}: cannot mount the lazy filesystem: {e}",
                    mountpoint.display()
                ),
            )
        })?;
        let dev = std::fs::metadata(&mountpoint)?.dev();
        let conn = Some(Path::new(FUSECTL).join(libc::minor(dev).to_string()))
            .filter(|d| d.join("abort").exists());
        Ok(LazyFs {
            mountpoint,
            backing,
            state,
            session: Some(session),
            conn,
        })
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }
    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// The power cut: rolls the backing directory back to what was durable (per `mode`)
    /// and refuses every later request with `EIO`. Stop (SIGSTOP) the processes using
    /// the mount before, and kill them after, so that none acts after the cut.
    ///
    /// # Panics
    /// If the backing directory cannot be rolled back (an I/O error of the host).
    pub fn cut(&self, mode: Cut) -> CutReport {
        let rep = {
            let mut st = lock(&self.state);
            st.cut(mode).unwrap_or_else(|e| {
                panic!(
                    "{}: lazy filesystem cut failed: {e}",
                    self.backing.display()
                )
            })
        };
        // Fail every request the kernel still holds or will send (write-back of mapped
        // pages included), so that nothing waits on this mount until the remount.
        self.abort();
        rep
    }

    /// Aborts the kernel's connection to this mount (fusectl), if it is still there.
    fn abort(&self) {
        if let Some(dir) = &self.conn {
            let _ = std::fs::write(dir.join("abort"), "1");
        }
    }

    /// Writes and truncations not synced yet, over all files (for tests of the tool and
    /// for choosing cut moments).
    pub fn unsynced_ops(&self) -> usize {
        lock(&self.state).undo.values().map(|u| u.ops.len()).sum()
    }

    /// Unmounts and mounts again on the same backing directory (after a cut: what a
    /// restart after the power came back sees). The processes using the mount must be
    /// gone.
    ///
    /// # Panics
    /// If the unmount or the mount fails.
    pub fn remount(&mut self) {
        self.unmount_inner();
        let again = LazyFs::mount(&self.backing, &self.mountpoint)
            .unwrap_or_else(|e| panic!("remount: {e}"));
        *self = again;
    }

    fn unmount_inner(&mut self) {
        if let Some(s) = self.session.take() {
            if s.umount_and_join().is_err() {
                // Still busy (a test failed with a process left): detach it.
                let c =
                    std::ffi::CString::new(self.mountpoint.as_os_str().as_encoded_bytes()).unwrap();
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

impl Drop for LazyFs {
    fn drop(&mut self) {
        // A remount has already unmounted this one and the new one uses the trash.
        if self.session.is_some() {
            if std::thread::panicking() {
                // A failed test may have left processes waiting on this mount.
                self.abort();
            }
            self.unmount_inner();
            let _ = std::fs::remove_dir_all(trash_dir(&self.backing));
        }
    }
}

/// Where the kernel shows its FUSE connections.
const FUSECTL: &str = "/sys/fs/fuse/connections";

/// Mounts the FUSE control filesystem if it is not mounted yet (its directory is empty):
/// a cut aborts the connection through it.
fn mount_fusectl() {
    let empty = std::fs::read_dir(FUSECTL).is_ok_and(|mut d| d.next().is_none());
    if empty {
        let c = |s: &str| std::ffi::CString::new(s).unwrap();
        let (src, dst, ty) = (c("fusectl"), c(FUSECTL), c("fusectl"));
        // SAFETY: valid C strings, no data argument.
        unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), ty.as_ptr(), 0, std::ptr::null()) };
    }
}

fn trash_dir(backing: &Path) -> PathBuf {
    let mut s = backing.as_os_str().to_os_string();
    s.push(".lazyfs-trash");
    PathBuf::from(s)
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------
// The volatile layer
// ---------------------------------------------------------------------------------------

/// One unsynced change of a file, with what it takes to undo it exactly.
enum Op {
    /// `len` bytes written at `off`; `old` is what they overwrote (the part below
    /// `old_size`).
    Write {
        off: u64,
        len: u64,
        old: Vec<u8>,
        old_size: u64,
    },
    /// Size set from `old_size` to `new_size`; `old_tail` is what a shrink cut off.
    Truncate {
        old_size: u64,
        new_size: u64,
        old_tail: Vec<u8>,
    },
}

/// A file's unsynced changes since its last fsync, oldest first.
struct FileUndo {
    /// Kept open so that the file can be rolled back wherever its names went.
    file: File,
    ops: Vec<Op>,
}

/// An open file or directory.
struct Handle {
    file: Option<File>,
    /// The backing inode (st_ino), the key of the undo log.
    bino: u64,
    /// FUSE inode, for directories (readdir).
    ino: u64,
    /// Directory listing taken at offset 0.
    entries: Vec<(u64, FileType, OsString)>,
}

struct State {
    backing: PathBuf,
    trash: PathBuf,
    /// After a cut: every request fails with EIO.
    dead: bool,
    /// FUSE inode -> path relative to the backing root ("" is the root).
    inodes: HashMap<u64, PathBuf>,
    paths: HashMap<PathBuf, u64>,
    next_ino: u64,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    /// Backing inode -> unsynced changes.
    undo: HashMap<u64, FileUndo>,
    /// Backing inode of a directory -> its entries (name -> (backing inode, is dir)) at
    /// its last fsync, for directories changed since.
    dirsnap: HashMap<u64, DirSnap>,
}

type R<T> = Result<T, Errno>;
/// A directory's entries: name -> (backing inode, is a directory).
type DirSnap = BTreeMap<OsString, (u64, bool)>;

fn errno(e: io::Error) -> Errno {
    Errno::from(e)
}

impl State {
    fn new(backing: PathBuf, trash: PathBuf) -> State {
        let mut s = State {
            backing,
            trash,
            dead: false,
            inodes: HashMap::new(),
            paths: HashMap::new(),
            next_ino: 2,
            handles: HashMap::new(),
            next_fh: 1,
            undo: HashMap::new(),
            dirsnap: HashMap::new(),
        };
        s.inodes.insert(1, PathBuf::new());
        s.paths.insert(PathBuf::new(), 1);
        s
    }

    fn live(&self) -> R<()> {
        if self.dead {
            Err(Errno::EIO)
        } else {
            Ok(())
        }
    }

    fn rel(&self, ino: u64) -> R<PathBuf> {
        self.inodes.get(&ino).cloned().ok_or(Errno::ENOENT)
    }

    fn abs(&self, rel: &Path) -> PathBuf {
        self.backing.join(rel)
    }

    fn ino_for(&mut self, rel: &Path) -> u64 {
        if let Some(i) = self.paths.get(rel) {
            return *i;
        }
        let i = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(i, rel.to_path_buf());
        self.paths.insert(rel.to_path_buf(), i);
        i
    }

    fn forget_path(&mut self, rel: &Path) {
        if let Some(i) = self.paths.remove(rel) {
            self.inodes.remove(&i);
        }
    }

    fn attr(&mut self, rel: &Path) -> R<FileAttr> {
        let md = std::fs::symlink_metadata(self.abs(rel)).map_err(errno)?;
        let ino = self.ino_for(rel);
        Ok(to_attr(ino, &md))
    }

    /// Records the directory's entries before its first change since its last fsync.
    fn snap_dir(&mut self, dir_rel: &Path) -> R<()> {
        let abs = self.abs(dir_rel);
        let bino = std::fs::symlink_metadata(&abs).map_err(errno)?.ino();
        if self.dirsnap.contains_key(&bino) {
            return Ok(());
        }
        let snap = list_dir(&abs).map_err(errno)?;
        self.dirsnap.insert(bino, snap);
        Ok(())
    }

    /// Keeps a file that is about to lose a name reachable from the trash, so a cut can
    /// give the name back.
    fn keep(&self, abs: &Path) -> R<()> {
        let md = std::fs::symlink_metadata(abs).map_err(errno)?;
        if md.is_dir() {
            return Ok(()); // only empty directories are removed: a cut makes a new one
        }
        let t = self.trash.join(md.ino().to_string());
        match std::fs::hard_link(abs, &t) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(errno(e)),
        }
    }

    /// Undo log of a backing inode, opened through `file` on first use.
    fn undo_for(&mut self, bino: u64, file: &File) -> R<&mut FileUndo> {
        use std::collections::hash_map::Entry;
        Ok(match self.undo.entry(bino) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => v.insert(FileUndo {
                file: file.try_clone().map_err(errno)?,
                ops: vec![],
            }),
        })
    }

    fn write(&mut self, fh: u64, off: u64, data: &[u8]) -> R<u32> {
        let h = self.handles.get(&fh).ok_or(Errno::EBADF)?;
        let file = h
            .file
            .as_ref()
            .ok_or(Errno::EBADF)?
            .try_clone()
            .map_err(errno)?;
        let bino = h.bino;
        let old_size = file.metadata().map_err(errno)?.len();
        let mut old = vec![0u8; old_size.saturating_sub(off).min(data.len() as u64) as usize];
        file.read_exact_at(&mut old, off).map_err(errno)?;
        file.write_all_at(data, off).map_err(errno)?;
        self.undo_for(bino, &file)?.ops.push(Op::Write {
            off,
            len: data.len() as u64,
            old,
            old_size,
        });
        Ok(data.len() as u32)
    }

    fn truncate(&mut self, file: &File, bino: u64, new_size: u64) -> R<()> {
        let old_size = file.metadata().map_err(errno)?.len();
        if old_size == new_size {
            return Ok(());
        }
        let mut old_tail = vec![0u8; old_size.saturating_sub(new_size) as usize];
        file.read_exact_at(&mut old_tail, new_size).map_err(errno)?;
        file.set_len(new_size).map_err(errno)?;
        self.undo_for(bino, file)?.ops.push(Op::Truncate {
            old_size,
            new_size,
            old_tail,
        });
        Ok(())
    }

    fn fsync_dir(&mut self, bino: u64) {
        if self.dirsnap.remove(&bino).is_none() {
            return;
        }
        // Forget the kept files no other unsynced directory still names.
        let wanted: std::collections::HashSet<u64> = self
            .dirsnap
            .values()
            .flat_map(|s| s.values().map(|(i, _)| *i))
            .collect();
        if let Ok(rd) = std::fs::read_dir(&self.trash) {
            for e in rd.flatten() {
                let keep = e
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|i| wanted.contains(&i));
                if !keep {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    /// See [`LazyFs::cut`].
    fn cut(&mut self, mode: Cut) -> io::Result<CutReport> {
        self.dead = true;
        self.handles.clear();
        let mut rep = CutReport::default();
        let seed = match mode {
            Cut::DropAll => 0,
            Cut::Prefix { seed } | Cut::Torn { seed } => seed,
        };
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        // 1. File contents, through the descriptors kept open.
        let mut files: Vec<(u64, FileUndo)> = self.undo.drain().collect();
        files.sort_by_key(|(b, _)| *b); // a seed gives the same cut
        for (_, u) in files {
            rep.files += 1;
            let n = u.ops.len();
            let (keep, torn) = match mode {
                Cut::DropAll => (0, false),
                Cut::Prefix { .. } => (rng.gen_range(0..=n), false),
                Cut::Torn { .. } => {
                    let k = rng.gen_range(0..=n);
                    (k, k < n)
                }
            };
            rep.ops_kept += keep;
            rep.ops_dropped += n - keep;
            for (k, op) in u.ops.iter().enumerate().rev() {
                if k < keep {
                    break;
                }
                let tear_at = if torn && k == keep {
                    match op {
                        Op::Write { len, .. } if *len > SECTOR => {
                            rep.torn += 1;
                            Some(rng.gen_range(1..=(len - 1) / SECTOR) * SECTOR)
                        }
                        _ => None,
                    }
                } else {
                    None
                };
                undo_op(&u.file, op, tear_at.unwrap_or(0))?;
            }
        }
        // 2. Directory entries: first take away every name a directory did not have at
        // its last sync (files stay reachable from the trash), then give back the names
        // it had.
        let snaps: Vec<(u64, DirSnap)> = self.dirsnap.drain().collect();
        rep.dirs = snaps.len();
        let index = index_tree(&[&self.backing, &self.trash])?;
        for (dino, snap) in &snaps {
            let Some(dir) = index.get(dino).and_then(|p| p.first()) else {
                continue;
            };
            for (name, (ino, is_dir)) in list_dir(dir)? {
                if snap.get(&name) == Some(&(ino, is_dir)) {
                    continue;
                }
                let p = dir.join(&name);
                let t = self.trash.join(ino.to_string());
                if is_dir {
                    if !t.exists() {
                        std::fs::rename(&p, &t).map_err(|e| at(&p, e))?;
                    } else {
                        std::fs::remove_dir_all(&p).map_err(|e| at(&p, e))?;
                    }
                } else {
                    if !t.exists() {
                        std::fs::hard_link(&p, &t).map_err(|e| at(&p, e))?;
                    }
                    std::fs::remove_file(&p).map_err(|e| at(&p, e))?;
                }
            }
        }
        let index = index_tree(&[&self.backing, &self.trash])?;
        for (dino, snap) in &snaps {
            let Some(dir) = index.get(dino).and_then(|p| p.first()).cloned() else {
                continue;
            };
            for (name, (ino, is_dir)) in snap {
                let p = dir.join(name);
                if std::fs::symlink_metadata(&p).is_ok() {
                    continue;
                }
                match (index.get(ino).and_then(|v| v.first()), is_dir) {
                    (Some(src), true) => std::fs::rename(src, &p).map_err(|e| at(src, e))?,
                    (None, true) => std::fs::create_dir(&p).map_err(|e| at(&p, e))?,
                    (Some(src), false) => std::fs::hard_link(src, &p).map_err(|e| at(src, e))?,
                    (None, false) => {
                        return Err(io::Error::other(format!(
                            "{}: inode {ino} to restore is gone",
                            p.display()
                        )))
                    }
                }
            }
        }
        std::fs::remove_dir_all(&self.trash)?;
        std::fs::create_dir_all(&self.trash)?;
        Ok(rep)
    }
}

/// Undoes one change; with `tear_at > 0` (a write), the first `tear_at` bytes of the
/// write stay.
fn undo_op(f: &File, op: &Op, tear_at: u64) -> io::Result<()> {
    match op {
        Op::Write {
            off,
            len,
            old,
            old_size,
        } => {
            let t = tear_at.min(*len);
            if (t as usize) < old.len() {
                f.write_all_at(&old[t as usize..], off + t)?;
            }
            f.set_len((*old_size).max(if t > 0 { off + t } else { 0 }))?;
        }
        Op::Truncate {
            old_size,
            new_size,
            old_tail,
        } => {
            f.set_len(*old_size)?;
            f.write_all_at(old_tail, *new_size)?;
        }
    }
    Ok(())
}

fn list_dir(abs: &Path) -> io::Result<DirSnap> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(abs).map_err(|e| at(abs, e))? {
        let e = e?;
        let md = std::fs::symlink_metadata(e.path()).map_err(|x| at(&e.path(), x))?;
        out.insert(e.file_name(), (md.ino(), md.is_dir()));
    }
    Ok(out)
}

/// Every path under `roots` (the roots included), by backing inode.
fn index_tree(roots: &[&Path]) -> io::Result<HashMap<u64, Vec<PathBuf>>> {
    let mut out: HashMap<u64, Vec<PathBuf>> = HashMap::new();
    let mut todo: Vec<PathBuf> = roots.iter().map(|p| p.to_path_buf()).collect();
    while let Some(p) = todo.pop() {
        let md = std::fs::symlink_metadata(&p).map_err(|e| at(&p, e))?;
        out.entry(md.ino()).or_default().push(p.clone());
        if md.is_dir() {
            for e in std::fs::read_dir(&p)? {
                todo.push(e?.path());
            }
        }
    }
    Ok(out)
}

/// An I/O error of the host, with the path it happened on.
fn at(p: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}

fn kind_of(ft: std::fs::FileType) -> FileType {
    if ft.is_dir() {
        FileType::Directory
    } else if ft.is_symlink() {
        FileType::Symlink
    } else {
        FileType::RegularFile
    }
}

fn to_attr(ino: u64, md: &std::fs::Metadata) -> FileAttr {
    let t = |s: i64, ns: i64| {
        if s >= 0 {
            SystemTime::UNIX_EPOCH + Duration::new(s as u64, ns as u32)
        } else {
            SystemTime::UNIX_EPOCH
        }
    };
    FileAttr {
        ino: INodeNo(ino),
        size: md.len(),
        blocks: md.blocks(),
        atime: t(md.atime(), md.atime_nsec()),
        mtime: t(md.mtime(), md.mtime_nsec()),
        ctime: t(md.ctime(), md.ctime_nsec()),
        crtime: t(md.ctime(), md.ctime_nsec()),
        kind: kind_of(md.file_type()),
        perm: (md.mode() & 0o7777) as u16,
        nlink: md.nlink() as u32,
        uid: md.uid(),
        gid: md.gid(),
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

// ---------------------------------------------------------------------------------------
// FUSE glue
// ---------------------------------------------------------------------------------------

struct LazyFsImpl {
    state: Arc<Mutex<State>>,
}

impl LazyFsImpl {
    fn st(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

fn open_opts(flags: i32) -> OpenOptions {
    let mut o = OpenOptions::new();
    // Always readable: undoing a write needs what it overwrote.
    match flags & libc::O_ACCMODE {
        libc::O_WRONLY | libc::O_RDWR => o.read(true).write(true),
        _ => o.read(true),
    };
    // O_APPEND is not passed on: the kernel gives the offset of every write.
    o.custom_flags(
        flags & !(libc::O_ACCMODE | libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_APPEND),
    );
    o
}

impl Filesystem for LazyFsImpl {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut st = self.st();
        let r = (|| {
            st.live()?;
            let rel = st.rel(parent.0)?.join(name);
            st.attr(&rel)
        })();
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let mut st = self.st();
        let r = (|| {
            st.live()?;
            let rel = st.rel(ino.0)?;
            st.attr(&rel)
        })();
        match r {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut st = self.st();
        let r = (|| {
            st.live()?;
            let rel = st.rel(ino.0)?;
            let abs = st.abs(&rel);
            if let Some(m) = mode {
                std::fs::set_permissions(&abs, std::fs::Permissions::from_mode(m & 0o7777))
                    .map_err(errno)?;
            }
            if uid.is_some() || gid.is_some() {
                std::os::unix::fs::lchown(&abs, uid, gid).map_err(errno)?;
            }
            if let Some(sz) = size {
                let from_fh = fh.and_then(|h| st.handles.get(&h.0)).and_then(|h| {
                    h.file
                        .as_ref()
                        .and_then(|f| f.try_clone().ok())
                        .map(|f| (f, h.bino))
                });
                let (f, bino) = match from_fh {
                    Some(x) => x,
                    None => {
                        let f = OpenOptions::new()
                            .read(true)
                            .write(true)
                            .open(&abs)
                            .map_err(errno)?;
                        let b = f.metadata().map_err(errno)?.ino();
                        (f, b)
                    }
                };
                st.truncate(&f, bino, sz)?;
            }
            if atime.is_some() || mtime.is_some() {
                let conv = |t: Option<TimeOrNow>| match t {
                    None => None,
                    Some(TimeOrNow::Now) => Some(SystemTime::now()),
                    Some(TimeOrNow::SpecificTime(t)) => Some(t),
                };
                if let Ok(f) = File::open(&abs) {
                    let mut times = std::fs::FileTimes::new();
                    if let Some(t) = conv(atime) {
                        times = times.set_accessed(t);
                    }
                    if let Some(t) = conv(mtime) {
                        times = times.set_modified(t);
                    }
                    let _ = f.set_times(times);
                }
            }
            st.attr(&rel)
        })();
        match r {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let st = self.st();
        let r = (|| {
            st.live()?;
            let rel = st.rel(ino.0)?;
            std::fs::read_link(st.abs(&rel)).map_err(errno)
        })();
        match r {
            Ok(t) => reply.data(t.as_os_str().as_encoded_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let mut st = self.st();
        let r = (|| {
            st.live()?;
            if mode & libc::S_IFMT != libc::S_IFREG {
                return Err(Errno::from_i32(libc::EPERM));
            }
            let prel = st.rel(parent.0)?;
            st.snap_dir(&prel)?;
            let rel = prel.join(name);
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode & !umask & 0o7777)
                .open(st.abs(&rel))
                .map_err(errno)?;
            st.attr(&rel)
        })();
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut st = self.st();
        let r = (|| {
            st.live()?;
            let prel = st.rel(parent.0)?;
            st.snap_dir(&prel)?;
            let rel = prel.join(name);
            let abs = st.abs(&rel);
            std::fs::create_dir(&abs).map_err(errno)?;
            let _ = std::fs::set_permissions(
                &abs,
                std::fs::Permissions::from_mode(mode & !umask & 0o7777),
            );
            st.attr(&rel)
        })();
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut st = self.st();
        let r = (|| {
            st.live()?;
            let prel = st.rel(parent.0)?;
            st.snap_dir(&prel)?;
            let rel = prel.join(name);
            let abs = st.abs(&rel);
            st.keep(&abs)?;
            std::fs::remove_file(&abs).map_err(errno)?;
            st.forget_path(&rel);
            Ok(())
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut st = self.st();
        let r = (|| {
            st.live()?;
            let prel = st.rel(parent.0)?;
            st.snap_dir(&prel)?;
            let rel = prel.join(name);
            std::fs::remove_dir(st.abs(&rel)).map_err(errno)?;
            st.forget_path(&rel);
            Ok(())
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let mut st = self.st();
        let r = (|| {
            st.live()?;
            let prel = st.rel(parent.0)?;
            st.snap_dir(&prel)?;
            let rel = prel.join(link_name);
            std::os::unix::fs::symlink(target, st.abs(&rel)).map_err(errno)?;
            st.attr(&rel)
        })();
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut st = self.st();
        let r = (|| {
            st.live()?;
            if flags.bits() != 0 {
                return Err(Errno::from_i32(libc::EINVAL));
            }
            let prel = st.rel(parent.0)?;
            let nprel = st.rel(newparent.0)?;
            st.snap_dir(&prel)?;
            st.snap_dir(&nprel)?;
            let from = prel.join(name);
            let to = nprel.join(newname);
            let (afrom, ato) = (st.abs(&from), st.abs(&to));
            if std::fs::symlink_metadata(&ato).is_ok() {
                st.keep(&ato)?;
            }
            std::fs::rename(&afrom, &ato).map_err(errno)?;
            st.forget_path(&to);
            // The renamed entry and everything under it keep their FUSE inodes.
            let moved: Vec<(PathBuf, u64)> = st
                .paths
                .iter()
                .filter(|(p, _)| p.starts_with(&from))
                .map(|(p, i)| (p.clone(), *i))
                .collect();
            for (p, i) in moved {
                // (Joining an empty rest would add a trailing slash.)
                let rest = p.strip_prefix(&from).unwrap();
                let np = if rest.as_os_str().is_empty() {
                    to.clone()
                } else {
                    to.join(rest)
                };
                st.paths.remove(&p);
                st.paths.insert(np.clone(), i);
                st.inodes.insert(i, np);
            }
            Ok(())
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let mut st = self.st();
        let r = (|| {
            st.live()?;
            let src = st.rel(ino.0)?;
            let nprel = st.rel(newparent.0)?;
            st.snap_dir(&nprel)?;
            let rel = nprel.join(newname);
            std::fs::hard_link(st.abs(&src), st.abs(&rel)).map_err(errno)?;
            st.attr(&rel)
        })();
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut st = self.st();
        let r = (|| {
            st.live()?;
            let rel = st.rel(ino.0)?;
            let f = open_opts(flags.0).open(st.abs(&rel)).map_err(errno)?;
            let bino = f.metadata().map_err(errno)?.ino();
            if flags.0 & libc::O_TRUNC != 0 {
                st.truncate(&f, bino, 0)?;
            }
            let fh = st.next_fh;
            st.next_fh += 1;
            st.handles.insert(
                fh,
                Handle {
                    file: Some(f),
                    bino,
                    ino: ino.0,
                    entries: vec![],
                },
            );
            Ok(fh)
        })();
        match r {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut st = self.st();
        let r = (|| {
            st.live()?;
            let prel = st.rel(parent.0)?;
            st.snap_dir(&prel)?;
            let rel = prel.join(name);
            let f = open_opts(flags)
                .create(true)
                .mode(mode & !umask & 0o7777)
                .open(st.abs(&rel))
                .map_err(errno)?;
            let bino = f.metadata().map_err(errno)?.ino();
            if flags & libc::O_TRUNC != 0 {
                st.truncate(&f, bino, 0)?;
            }
            let a = st.attr(&rel)?;
            let fh = st.next_fh;
            st.next_fh += 1;
            st.handles.insert(
                fh,
                Handle {
                    file: Some(f),
                    bino,
                    ino: a.ino.0,
                    entries: vec![],
                },
            );
            Ok((a, fh))
        })();
        match r {
            Ok((a, fh)) => {
                reply.created(&TTL, &a, Generation(0), FileHandle(fh), FopenFlags::empty())
            }
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let st = self.st();
        let r = (|| {
            st.live()?;
            let f = st
                .handles
                .get(&fh.0)
                .and_then(|h| h.file.as_ref())
                .ok_or(Errno::EBADF)?;
            let mut buf = vec![0u8; size as usize];
            let mut got = 0;
            while got < buf.len() {
                match f.read_at(&mut buf[got..], offset + got as u64) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(errno(e)),
                }
            }
            buf.truncate(got);
            Ok(buf)
        })();
        match r {
            Ok(b) => reply.data(&b),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut st = self.st();
        let r = st.live().and_then(|()| st.write(fh.0, offset, data));
        match r {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        match self.st().live() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.st().handles.remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut st = self.st();
        let r = (|| {
            st.live()?;
            let bino = st.handles.get(&fh.0).ok_or(Errno::EBADF)?.bino;
            // fsync and fdatasync alike: the data and the size are durable from here.
            st.undo.remove(&bino);
            Ok(())
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let mut st = self.st();
        let r = (|| {
            st.live()?;
            let rel = st.rel(ino.0)?;
            let bino = std::fs::symlink_metadata(st.abs(&rel))
                .map_err(errno)?
                .ino();
            let fh = st.next_fh;
            st.next_fh += 1;
            st.handles.insert(
                fh,
                Handle {
                    file: None,
                    bino,
                    ino: ino.0,
                    entries: vec![],
                },
            );
            Ok(fh)
        })();
        match r {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let mut st = self.st();
        let r = (|| {
            st.live()?;
            if offset == 0 {
                let rel = st.rel(ino.0)?;
                let parent = rel.parent().map(|p| p.to_path_buf()).unwrap_or_default();
                let mut entries = vec![
                    (ino.0, FileType::Directory, OsString::from(".")),
                    (
                        st.ino_for(&parent),
                        FileType::Directory,
                        OsString::from(".."),
                    ),
                ];
                for e in std::fs::read_dir(st.abs(&rel)).map_err(errno)? {
                    let e = e.map_err(errno)?;
                    let k = kind_of(e.file_type().map_err(errno)?);
                    let i = st.ino_for(&rel.join(e.file_name()));
                    entries.push((i, k, e.file_name()));
                }
                st.handles.get_mut(&fh.0).ok_or(Errno::EBADF)?.entries = entries;
            }
            let h = st.handles.get(&fh.0).ok_or(Errno::EBADF)?;
            for (k, (i, kind, name)) in h.entries.iter().enumerate().skip(offset as usize) {
                if reply.add(INodeNo(*i), (k + 1) as u64, *kind, name) {
                    break;
                }
            }
            Ok(())
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.st().handles.remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut st = self.st();
        let r = (|| {
            st.live()?;
            let bino = match st.handles.get(&fh.0) {
                Some(h) => h.bino,
                None => {
                    let rel = st.rel(ino.0)?;
                    std::fs::symlink_metadata(st.abs(&rel))
                        .map_err(errno)?
                        .ino()
                }
            };
            st.fsync_dir(bino);
            Ok(())
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let st = self.st();
        if st.dead {
            return reply.error(Errno::EIO);
        }
        let c = std::ffi::CString::new(st.backing.as_os_str().as_encoded_bytes()).unwrap();
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
            return reply.error(Errno::EIO);
        }
        reply.statfs(
            s.f_blocks,
            s.f_bfree,
            s.f_bavail,
            s.f_files,
            s.f_ffree,
            s.f_bsize as u32,
            s.f_namemax as u32,
            s.f_frsize as u32,
        );
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        match self.st().live() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}
