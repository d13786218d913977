//! What the benches that run the release binaries share: building them, a guard that
//! kills a child on the way out, bounded waits, a running process's CPU time and memory
//! from `/proc`, a free loopback port. A `#[path]` module of `collector.rs`,
//! `peer_delay.rs`, `maxima.rs`, and of every bench using `common/history.rs` (whose
//! `release_cms` is built on it).

#![allow(dead_code)] // each bench uses a different part

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/release/cms` and `cms-linksim`, built first with `cargo build --release
/// --bins` (a failed build warns and uses the binaries already there; missing ones skip
/// the part, named `part`). `CMS_BENCH_CMS=PATH` runs that `cms` instead (to compare two
/// builds back to back on a shared machine).
pub fn release_bins(part: &str) -> Option<(PathBuf, PathBuf)> {
    let dir = root().join("target/release");
    let (cms, sim) = (dir.join("cms"), dir.join("cms-linksim"));
    println!("building the release binaries (cargo build --release --bins) ...");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = Command::new(cargo)
        .args(["build", "--release", "--bins"])
        .current_dir(root())
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        println!("WARNING: cargo build --release --bins failed; using the binaries already there");
    }
    let cms = match std::env::var_os("CMS_BENCH_CMS") {
        Some(p) => {
            println!("cms: {} (CMS_BENCH_CMS)", Path::new(&p).display());
            PathBuf::from(p)
        }
        None => cms,
    };
    if cms.exists() && sim.exists() {
        Some((cms, sim))
    } else {
        println!(
            "{part}: SKIPPED: {} or {} is missing; build them with `cargo build --release --bins`",
            cms.display(),
            sim.display()
        );
        None
    }
}

/// Kills the child on the way out, unless it was reaped.
pub struct Guard(pub Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Guard {
    pub fn pid(&self) -> u32 {
        self.0.as_ref().expect("running").id()
    }

    /// SIGTERM, then the exit within `limit` (a collector checkpoints on the way out).
    pub fn stop(&mut self, what: &str, limit: Duration) {
        let mut c = self.0.take().expect("running");
        signal(c.id(), "-TERM");
        let st = wait_for(&format!("{what} to exit after SIGTERM"), limit, || {
            c.try_wait().expect("try_wait")
        });
        if !st.success() {
            println!("WARNING: {what} exited with {st:?}");
        }
    }
}

pub fn signal(pid: u32, sig: &str) {
    Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .expect("kill");
}

/// Polls `f` every 2 ms until it gives a value; panics naming `what` after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// CPU seconds (user + system) a running process has used so far.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

/// A memory figure of a running process from /proc/PID/status (`VmHWM:` is the peak
/// resident set, `VmRSS:` the current one), MB.
pub fn proc_mb(pid: u32, field: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `cms-linksim` with the arguments `configure` adds (profile, times, speed,
/// buffer, ...) plus two links A and B on free loopback ports that wait for both
/// collectors (`--wait-links 2`), its log in `dir/sim.log` and its port file in
/// `dir/ports.json`; waits (bounded) for the port file. Returns the guard and the ports
/// by link name.
pub fn linksim_two_links(
    sim: &Path,
    dir: &Path,
    configure: impl FnOnce(&mut Command),
) -> (Guard, std::collections::BTreeMap<String, u16>) {
    let log = std::fs::File::create(dir.join("sim.log")).unwrap();
    let mut cmd = Command::new(sim);
    configure(&mut cmd);
    let guard = Guard(Some(
        cmd.args(["--listen", "A=127.0.0.1:0", "--listen", "B=127.0.0.1:0"])
            .arg("--port-file")
            .arg(dir.join("ports.json"))
            .args(["--wait-links", "2"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cms-linksim starts"),
    ));
    let ports = wait_for("cms-linksim's port file", Duration::from_secs(60), || {
        let text = std::fs::read_to_string(dir.join("ports.json")).ok()?;
        serde_json::from_str::<std::collections::BTreeMap<String, u16>>(&text)
            .ok()
            .filter(|p| p.len() == 2)
    });
    (guard, ports)
}

/// `cms-linksim`'s log in `dir/sim.log`, its summary line, and the number of events the
/// summary says each link was sent; panics with the log when the simulator failed
/// (`status`) or wrote no summary.
pub fn linksim_done(dir: &Path, status: std::process::ExitStatus) -> (String, String, u64) {
    let log = std::fs::read_to_string(dir.join("sim.log")).unwrap_or_default();
    assert!(status.success(), "cms-linksim failed: {status:?}\n{log}");
    let summary = log
        .lines()
        .find(|l| l.contains("cms-linksim: done:"))
        .unwrap_or_else(|| panic!("no summary line:\n{log}"))
        .trim()
        .to_string();
    let events: u64 = summary
        .split(" events in ")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no event count in {summary:?}"));
    (log, summary, events)
}
