//! A real `cms collect` process in a temporary directory, for integration tests.

use super::wait::until;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Collector {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
}

impl Collector {
    /// Starts `cms collect` as server "test-a" against `switch`.
    pub fn start(switch: std::net::SocketAddr) -> Collector {
        Collector::start_as("test-a", switch)
    }

    /// Starts `cms collect` as `server_id` against `switch` (UTC, 15-minute intervals,
    /// checkpoints every 0.1 s).
    pub fn start_as(server_id: &str, switch: std::net::SocketAddr) -> Collector {
        let c = Collector::configure(server_id, switch);
        let mut c = c;
        c.spawn();
        c
    }

    /// Writes the configuration without starting the collector.
    pub fn configure(server_id: &str, switch: std::net::SocketAddr) -> Collector {
        Collector::configure_full(server_id, switch, "UTC", "")
    }

    /// Writes a configuration: `server_id`, one ACD at `switch`, the site's `tz`,
    /// checkpoints every 0.1 s, plus `extra` TOML lines (top-level keys).
    pub fn configure_full(
        server_id: &str,
        switch: std::net::SocketAddr,
        tz: &str,
        extra: &str,
    ) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let cfg = format!(
            "server_id = \"{server_id}\"\ndata_dir = \"data\"\ntime_zone = \"{tz}\"\n\
             checkpoint_seconds = 0.1\nbackoff_max_seconds = 0.5\n{extra}\n\
             [[acd]]\nid = 1\nswitch = \"{switch}\"\n"
        );
        std::fs::write(dir.path().join("cms.toml"), cfg).unwrap();
        Collector { child: None, dir }
    }

    pub fn spawn(&mut self) {
        self.spawn_env(&[]);
    }

    /// [`Collector::spawn`] with extra environment variables for the collector (test
    /// hooks such as `CMS_TEST_COMMIT_GATE`), set on the child only.
    pub fn spawn_env(&mut self, env: &[(&str, &Path)]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("collector.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cms"))
            .arg("--config")
            .arg(self.dir.path().join("cms.toml"))
            .arg("collect")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("data").join("cms.db")
    }
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("collector.log")).unwrap_or_default()
    }
    /// SIGTERM, and it must exit 0 within 10 s.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        let st = until(
            Duration::from_secs(10),
            || format!("the collector to stop after SIGTERM\n{}", self.log()),
            || child.try_wait().unwrap(),
        );
        assert!(st.success(), "collector exited {st:?}\n{}", self.log());
    }
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }
    pub fn cms(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_cms"))
            .arg("--config")
            .arg(self.dir.path().join("cms.toml"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }
    /// Waits (bounded) until the checkpoint covers `seq`.
    pub fn wait_checkpoint(&self, seq: u64) {
        until(
            Duration::from_secs(20),
            || format!("the checkpoint to reach seq {seq}\n{}", self.log()),
            || {
                let c = open(&self.db_path()).ok()?;
                let got: i64 = c
                    .query_row("SELECT seq FROM checkpoint WHERE acd = 1", [], |r| r.get(0))
                    .ok()?;
                (got as u64 >= seq).then_some(())
            },
        )
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A database opened by a test for reading: the file itself, or a copy of it (see
/// [`open`]). Derefs to the connection.
pub struct Db {
    conn: Connection,
    /// The copy's directory, removed after the connection closes (fields drop in order).
    _copy: Option<tempfile::TempDir>,
}

impl std::ops::Deref for Db {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

/// Opens `p` read-only. A database on a lazy filesystem (tests/lazyfs, served by fuser
/// threads inside this test process) is never opened in place: SQLite maps the WAL index
/// (`-shm`) into memory, and a page fault on a FUSE file served by this same process can
/// deadlock with the server's own threads (they wait in `mprotect` for the memory-map
/// lock the faulting thread holds; seen twice on a loaded machine). There the database
/// and its WAL are copied out with plain reads and the copy is opened: SQLite replays
/// the WAL, so the copy holds every committed transaction. A copy taken while the
/// collector checkpoints can be torn, so a copy is kept only when SQLite's `quick_check`
/// passes, else it is taken again (up to 20 times, 50 ms apart): a torn copy is
/// transient, a corrupt database fails every time.
pub fn open(p: &Path) -> rusqlite::Result<Db> {
    if !on_lazy_mount(p) {
        let conn = Connection::open_with_flags(p, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        return Ok(Db { conn, _copy: None });
    }
    for _ in 1..20 {
        if let Ok(db) = open_copy(p) {
            let check = db.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0));
            if check.is_ok_and(|c| c == "ok") {
                return Ok(db);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The 20th copy as it is: the caller's own query or check says what is wrong.
    open_copy(p)
}

fn open_copy(p: &Path) -> rusqlite::Result<Db> {
    // rusqlite's error has no I/O variant: the message names the database and the reason.
    let io = |e: std::io::Error| {
        let why = format!("{}: cannot copy it out of the lazy mount: {e}", p.display());
        rusqlite::Error::ToSqlConversionFailure(why.into())
    };
    let dir = tempfile::tempdir().map_err(io)?;
    let copy = dir.path().join("copy.db");
    copy_out(p, &copy).map_err(io)?;
    let conn = Connection::open(&copy)?;
    Ok(Db {
        conn,
        _copy: Some(dir),
    })
}

/// Copies the database `p` and its WAL (when there is one) to `to` with plain reads and
/// writes: no memory map of `p` (see [`open`]).
pub fn copy_out(p: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::write(to, std::fs::read(p)?)?;
    let (mut wal, mut to_wal) = (p.as_os_str().to_owned(), to.as_os_str().to_owned());
    wal.push("-wal");
    to_wal.push("-wal");
    match std::fs::read(&wal) {
        Ok(b) => std::fs::write(&to_wal, b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether `p` lies under a mounted lazy filesystem (`cms-lazyfs` in the mount table).
pub fn on_lazy_mount(p: &Path) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    table
        .lines()
        .filter(|l| l.contains(" - fuse cms-lazyfs "))
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mnt| p.starts_with(mnt))
}

/// ms timestamp of HH:MM:SS on 2026-11-02 UTC.
pub fn t(h: i64, m: i64, s: i64) -> i64 {
    (1_762_041_600 + h * 3600 + m * 60 + s) * 1000
}

/// Sum of `col` over the rows of `table` matching `key` in the interval starting at
/// `istart_ms` (ACD 1).
pub fn item(c: &Connection, table: &str, key: &str, istart_ms: i64, col: &str) -> i64 {
    c.query_row(
        &format!(
            "SELECT COALESCE(SUM({col}), 0) FROM {table} WHERE acd = 1 AND istart = ?1 AND {key}"
        ),
        [istart_ms / 1000],
        |r| r.get(0),
    )
    .unwrap()
}

/// (status, reasons) of the ACD 1 interval starting at `istart_ms`.
pub fn status(c: &Connection, istart_ms: i64) -> Option<(String, String)> {
    c.query_row(
        "SELECT status, reasons FROM interval_status WHERE acd = 1 AND istart = ?1",
        [istart_ms / 1000],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .ok()
}
