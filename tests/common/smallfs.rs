//! A small tmpfs mounted over a directory for a test, unmounted when dropped: a disk that
//! fills up (tests/ha_scenarios.rs s7, tests/peer_sync.rs's full disks).

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct SmallFs(PathBuf);

impl SmallFs {
    /// Mounts a tmpfs of `size` (`mount -o size=`, e.g. `4m`) over `dir`.
    ///
    /// # Panics
    /// Where tmpfs cannot be mounted (not root): the test fails loudly, it never skips.
    pub fn mount(dir: &Path, size: &str) -> SmallFs {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "{}: this test needs a small tmpfs (run as root, or where mount -t tmpfs is allowed)",
            dir.display()
        );
        SmallFs(dir.to_path_buf())
    }

    /// Changes the size (`mount -o remount,size=`): frees room, or takes it away.
    ///
    /// # Panics
    /// If the remount fails.
    pub fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "{}: remount with size={size}", self.0.display());
    }

    /// Fills the filesystem to the last byte with the file `filler` (written until the
    /// disk says it is full, then synced); returns its path: remove it to free the room.
    ///
    /// # Panics
    /// On a write error other than a full disk.
    pub fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 1 << 20];
        let mut piece = chunk.len();
        // Whole chunks, then smaller and smaller pieces until not one byte fits.
        while piece > 0 {
            match std::io::Write::write_all(&mut f, &chunk[..piece]) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => piece /= 2,
                Err(e) => panic!("{}: {e}", filler.display()),
            }
        }
        let _ = f.sync_all();
        filler
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let busy = !Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if busy {
            // A failed test left a process on it: detach it rather than leave it mounted.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}
