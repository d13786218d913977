//! A real `cms-asterisk` process following `queue_log` in a directory, with the mapping
//! `asterisk.toml` and the state directory `state` beside it; its log in `bridge.log`.

use super::wait::until;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Bridge {
    child: Option<Child>,
    dir: PathBuf,
}

impl Bridge {
    /// Starts the bridge with links A and B on `a` and `b` (port 0: any free port);
    /// waits (bounded) for its port file.
    pub fn start(dir: &Path, a: &str, b: &str) -> Bridge {
        Bridge::start_with(dir, a, b, &[])
    }

    /// [`Bridge::start`] with more options (`--queues-conf FILE`).
    pub fn start_with(dir: &Path, a: &str, b: &str, extra: &[&std::ffi::OsStr]) -> Bridge {
        let ports = dir.join("ports.json");
        let _ = std::fs::remove_file(&ports);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("bridge.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cms-asterisk"))
            .arg("--log")
            .arg(dir.join("queue_log"))
            .arg("--mapping")
            .arg(dir.join("asterisk.toml"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args(["--listen", &format!("A={a}"), "--listen", &format!("B={b}")])
            .args(["--poll-ms", "50", "--heartbeat-ms", "200"])
            .arg("--port-file")
            .arg(&ports)
            .args(extra)
            .env("CMS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let b = Bridge {
            child: Some(child),
            dir: dir.to_path_buf(),
        };
        until(
            Duration::from_secs(20),
            || format!("the bridge's port file\n{}", b.log()),
            || std::fs::metadata(&ports).ok(),
        );
        b
    }

    /// The bound addresses of links A and B.
    pub fn ports(&self) -> (std::net::SocketAddr, std::net::SocketAddr) {
        let p: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.dir.join("ports.json")).unwrap()).unwrap();
        let port = |n: &str| format!("127.0.0.1:{}", p[n]).parse().unwrap();
        (port("A"), port("B"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("bridge.log")).unwrap_or_default()
    }

    /// SIGKILL: no chance to save anything.
    pub fn kill9(&mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Appends `lines` to the queue log at `p` (created if missing), as Asterisk writes it.
pub fn append<S: AsRef<str>>(p: &Path, lines: &[S]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap();
    for l in lines {
        writeln!(f, "{}", l.as_ref()).unwrap();
    }
}
