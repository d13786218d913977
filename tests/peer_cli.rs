//! `cms sync` by hand without `--once`, and the rate limit on failed peer sessions'
//! warnings, through the real binary (issue #13):
//!
//! - `cms sync` keeps syncing until SIGTERM: it retries a peer that is not up yet with
//!   backoff, prints each session's result (one JSON line each with `--json`), heals what
//!   the peer holds, and exits 0 when stopped;
//! - a peer that keeps failing the same way is warned of once (then only at DEBUG, with
//!   the count a minute later), by `cms sync` and by the collector's peer task alike, as
//!   the collector's reconnect warnings are.
//!
//! No switch: the peer's intervals come from `tests/fixtures/backup-v1.cmsbak`, restored
//! into it with `cms restore`.

mod common;
mod peer_support;

use common::collector::{open, Collector};
use common::sim::assert_identical;
use common::wait::until;
use peer_support::*;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// The debug log of the peer sync beside the default warnings.
const DEBUG_LOG: &str = "warn,cms=debug";

/// A `[peer]` section that retries and syncs again within a second.
fn quick_section(address: &str, listen: Option<u16>, peer_id: &str, identity: &Path) -> String {
    section(address, listen, peer_id, identity)
        .replace("interval_seconds = 30", "interval_seconds = 1")
}

/// Lines of `log` that say a peer session failed: (at WARN, at DEBUG).
fn failures(log: &str) -> (Vec<&str>, Vec<&str>) {
    let f: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("peer sync failed"))
        .collect();
    let warn = f.iter().copied().filter(|l| l.contains(" WARN ")).collect();
    let debug = f
        .iter()
        .copied()
        .filter(|l| l.contains(" DEBUG "))
        .collect();
    (warn, debug)
}

fn complete_intervals(db: &Path) -> u64 {
    open(db)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM interval_status WHERE status = 'complete'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap() as u64
}

#[test]
fn sync_without_once_retries_heals_prints_each_session_and_stops_on_sigterm() {
    let switch: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let a = Collector::configure("srv-a", switch);
    let mut b = Collector::configure("srv-b", switch);
    let id_a = init_identity(&a, &a.dir.path().join("id"));
    let id_b = init_identity(&b, &b.dir.path().join("id"));
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/backup-v1.cmsbak");
    let (code, out) = b.cms(&["restore", fixture.to_str().unwrap()]);
    assert_eq!(code, 0, "cms restore on B: {out}");
    let held = complete_intervals(&b.db_path());
    assert!(held > 0, "B holds the fixture's intervals");
    let port_b = free_port();
    append(
        &b,
        &section(
            &format!("127.0.0.1:{}", free_port()),
            Some(port_b),
            &id_a,
            &b.dir.path().join("id"),
        ),
    );
    let a_sync = config_with(
        &a,
        "sync.toml",
        &quick_section(
            &format!("127.0.0.1:{port_b}"),
            None,
            &id_b,
            &a.dir.path().join("id"),
        ),
    );
    // `cms sync` starts before B is up: it must keep retrying, not exit.
    let err = a.dir.path().join("sync.log");
    let mut sync = Command::new(env!("CARGO_BIN_EXE_cms"))
        .arg("--config")
        .arg(&a_sync)
        .args(["sync", "--json"])
        .env("CMS_LOG", DEBUG_LOG)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = sync.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout).lines() {
            if tx.send(l.unwrap()).is_err() {
                break;
            }
        }
    });
    let log = || std::fs::read_to_string(&err).unwrap_or_default();
    // Three failed attempts (at 0, 1 and 3 s): warned of once, the repeats at DEBUG.
    until(
        LIMIT,
        || format!("three failed attempts:\n{}", log()),
        || (failures(&log()).1.len() >= 2).then_some(()),
    );
    let text = log();
    let (warn, debug) = failures(&text);
    assert_eq!(warn.len(), 1, "one warning for the same failure:\n{text}");
    assert!(warn[0].contains("cannot connect"), "{text}");
    assert!(debug.len() >= 2, "{text}");
    assert!(
        sync.try_wait().unwrap().is_none(),
        "cms sync gave up:\n{text}"
    );
    assert!(rx.try_recv().is_err(), "no session printed before B is up");
    b.spawn();
    wait_log(&b, "peer sync on", LIMIT);
    // B up: a session heals what B holds, the next one finds nothing to fetch.
    let line = |what: &str| -> serde_json::Value {
        let l = rx
            .recv_timeout(LIMIT)
            .unwrap_or_else(|_| panic!("{what}: no session printed within {LIMIT:?}\n{}", log()));
        serde_json::from_str(&l).unwrap_or_else(|e| panic!("{what}: {e}: {l}"))
    };
    let first = line("the first session");
    assert_eq!(first["peer"], format!("127.0.0.1:{port_b}"), "{first}");
    assert_eq!(first["peer_server"], "srv-b", "{first}");
    assert_eq!(first["healed"], held, "{first}");
    assert_eq!(first["dry_run"], false, "{first}");
    let second = line("the second session");
    assert_eq!(second["healed"], 0, "{second}");
    assert_identical(&a.db_path(), &b.db_path());
    // SIGTERM ends it, with exit 0 (no conflicts).
    Command::new("kill")
        .arg("-TERM")
        .arg(sync.id().to_string())
        .status()
        .unwrap();
    let st = until(
        Duration::from_secs(10),
        || format!("cms sync to stop after SIGTERM\n{}", log()),
        || sync.try_wait().unwrap(),
    );
    assert_eq!(st.code(), Some(0), "{}", log());
    b.stop();
}

#[test]
fn the_collectors_failed_peer_sessions_are_warned_of_once() {
    let switch: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut a = Collector::configure("srv-a", switch);
    // The peer's pin is A's own (any valid one): nobody listens at its address.
    let id = init_identity(&a, &a.dir.path().join("id"));
    append(
        &a,
        &quick_section(
            &format!("127.0.0.1:{}", free_port()),
            None,
            &id,
            &a.dir.path().join("id"),
        ),
    );
    a.spawn_env(&[("CMS_LOG", Path::new(DEBUG_LOG))]);
    until(
        LIMIT,
        || format!("three failed sessions:\n{}", a.log()),
        || (failures(&a.log()).1.len() >= 2).then_some(()),
    );
    let log = a.log();
    let (warn, _) = failures(&log);
    assert_eq!(warn.len(), 1, "one warning for the same failure:\n{log}");
    assert!(warn[0].contains("cannot connect"), "{log}");
    a.stop();
}
