//! Support for the peer-sync tests (`tests/peer_*.rs`): identities made by the real
//! `cms peer init`, `[peer]` sections, a pair of collectors that sync with each other, and
//! bounded waits on logs and databases.

#![allow(dead_code)] // each test binary uses a different part of this module

use crate::common::collector::Collector;
use crate::common::run::{Run, PROFILE};
use crate::common::sim::{Pair, Sim};
use crate::common::wait::{until, until_every};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `cms peer init --identity DIR` with `c`'s configuration; returns the
/// fingerprint from the `peer_id = "..."` line it printed.
pub fn init_identity(c: &Collector, dir: &Path) -> String {
    let (code, out) = c.cms(&["peer", "init", "--identity", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "cms peer init: {out}");
    peer_id_of(&out)
}

/// The fingerprint in a `peer_id = "..."` line of `out`.
pub fn peer_id_of(out: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.starts_with("peer_id = \""))
        .unwrap_or_else(|| panic!("no peer_id line in: {out}"));
    line.trim_start_matches("peer_id = \"")
        .trim_end_matches('"')
        .to_string()
}

/// A `[peer]` section.
pub fn section(address: &str, listen: Option<u16>, peer_id: &str, identity: &Path) -> String {
    let listen = listen
        .map(|p| format!("listen = \"127.0.0.1:{p}\"\n"))
        .unwrap_or_default();
    format!(
        "\n[peer]\naddress = \"{address}\"\n{listen}peer_id = \"{peer_id}\"\nidentity = \"{}\"\n\
         interval_seconds = 30\ntimeout_seconds = 5\n",
        identity.display()
    )
}

/// `c`'s configuration file.
pub fn config(c: &Collector) -> PathBuf {
    c.dir.path().join("cms.toml")
}

/// Writes a copy of `c`'s configuration plus `extra` as `name` beside it (same data
/// directory); returns its path.
pub fn config_with(c: &Collector, name: &str, extra: &str) -> PathBuf {
    let text = std::fs::read_to_string(config(c)).unwrap() + extra;
    let p = c.dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Appends `extra` to `c`'s configuration.
pub fn append(c: &Collector, extra: &str) {
    let text = std::fs::read_to_string(config(c)).unwrap() + extra;
    std::fs::write(config(c), text).unwrap();
}

/// Runs `cms --config CONFIG ARGS`: exit code and stdout + stderr.
pub fn cms_with(config: &Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cms"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// How often a pair's condition is checked: most run `cms status`, a process each time.
const CHECK: Duration = Duration::from_millis(100);

/// Polls `f` until it holds; panics after `limit` saying what was awaited.
pub fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    until_every(limit, CHECK, || what.to_string(), || f().then_some(()));
}

/// [`wait_for`] in a pair: after `limit` the panic names what was awaited and shows
/// both peer states (`cms status --json`) and the end of both collectors' logs, so a
/// wait that runs out under load says whether a session was failing or merely slow.
pub fn wait_pair(p: &PeerPair, what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    until_every(limit, CHECK, || p.state(what), || f().then_some(()));
}

/// Waits until `c`'s log contains `needle`; the log in the panic message.
pub fn wait_log(c: &Collector, needle: &str, limit: Duration) {
    until(
        limit,
        || format!("{needle:?} in the log:\n{}", c.log()),
        || c.log().contains(needle).then_some(()),
    );
}

/// Two collectors configured as peers of each other (identities outside the data
/// directories, so a destroyed data directory keeps them), and the simulator.
pub struct PeerPair {
    pub sim: Sim,
    pub a: Collector,
    pub b: Collector,
    pub port_a: u16,
    pub port_b: u16,
    pub id_a: String,
    pub id_b: String,
}

impl PeerPair {
    /// The simulator of `run` and both collectors as `common::run::Run::pair` starts
    /// them, with `[peer]` sections on both (each listening) when `peer`, else on B only
    /// (listening; A syncs by hand with [`PeerPair::manual`]); the collectors are started.
    pub fn start(run: &Run, peer: bool) -> PeerPair {
        let mut p = PeerPair::configure(run, peer);
        p.a.spawn();
        p.b.spawn();
        p
    }

    /// [`PeerPair::start`] without starting the collectors (the simulator runs and
    /// waits for their links): for a test that puts a data directory elsewhere first.
    pub fn configure(run: &Run, peer: bool) -> PeerPair {
        let sim = run.sim();
        let (a, b) = Pair::configure(&sim, PROFILE, "", "");
        let (port_a, port_b) = (free_port(), free_port());
        let id_a = init_identity(&a, &a.dir.path().join("id"));
        let id_b = init_identity(&b, &b.dir.path().join("id"));
        append(
            &b,
            &section(
                &format!("127.0.0.1:{port_a}"),
                Some(port_b),
                &id_a,
                &b.dir.path().join("id"),
            ),
        );
        if peer {
            append(
                &a,
                &section(
                    &format!("127.0.0.1:{port_b}"),
                    Some(port_a),
                    &id_b,
                    &a.dir.path().join("id"),
                ),
            );
        }
        PeerPair {
            sim,
            a,
            b,
            port_a,
            port_b,
            id_a,
            id_b,
        }
    }

    /// A configuration of A for `cms sync` by hand (`sync.toml`, A's data directory,
    /// B's address and pin).
    pub fn manual(&self) -> PathBuf {
        config_with(
            &self.a,
            "sync.toml",
            &section(
                &format!("127.0.0.1:{}", self.port_b),
                None,
                &self.id_b,
                &self.a.dir.path().join("id"),
            ),
        )
    }

    /// `what`, then each side's peer state and the last lines of its log: the message
    /// of a wait on the pair that ran out.
    pub fn state(&self, what: &str) -> String {
        let mut out = what.to_string();
        for (who, c) in [("A", &self.a), ("B", &self.b)] {
            let (_, st) = c.cms(&["status", "--json"]);
            let peer = serde_json::from_str::<serde_json::Value>(&st)
                .map(|v| v["peer"].to_string())
                .unwrap_or(st);
            let log = c.log();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            out += &format!(
                "\n{who} peer: {peer}\n{who} log (end):\n{}",
                tail.join("\n")
            );
        }
        out
    }

    pub fn finish(&mut self) {
        self.sim.wait(Duration::from_secs(240));
        self.a.stop();
        self.b.stop();
    }
}

/// `cms status --json`'s peer section of `c`.
pub fn peer_status(c: &Collector) -> serde_json::Value {
    let (code, out) = c.cms(&["status", "--json"]);
    assert_eq!(code, 0, "cms status: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["peer"].clone()
}
