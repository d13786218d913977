//! The command line, the configuration, the site key, file modes and opening the store,
//! through the real `cms` and `cms-linksim` binaries (issue #10 items 12 to 15, 17, 18).

mod common;

use common::site::{text, Site};
use common::wait::until;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const CMS: &str = env!("CARGO_BIN_EXE_cms");
const LINKSIM: &str = env!("CARGO_BIN_EXE_cms-linksim");

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn write_key(p: &Path, contents: &[u8], m: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, contents).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef\n";

/// Item 15: a reader that closes stdout early ends the command quietly with 0.
#[test]
fn a_closed_stdout_ends_the_command_quietly_with_0() {
    let site = Site::new("");
    for args in [&["check-config"][..], &["status"][..]] {
        if args[0] == "status" {
            // status needs a database
            std::fs::create_dir_all(site.path("data")).unwrap();
            cms::store::Store::open(&site.path("data/cms.db")).unwrap();
        }
        // The read end is closed before the child starts: its first write fails.
        let (r, w) = std::io::pipe().unwrap();
        drop(r);
        let o = Command::new(CMS)
            .arg("--config")
            .arg(site.path("cms.toml"))
            .args(args)
            .stdout(w)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "cms {args:?}: {}", text(&o));
        assert!(o.stderr.is_empty(), "cms {args:?}: {}", text(&o));
    }
}

/// Item 15: usage errors exit 2 (the documented code), in both binaries.
#[test]
fn usage_errors_exit_2() {
    let site = Site::new("");
    let out = site.path("b.cmsbak");
    let out = out.to_str().unwrap();
    for args in [
        &["backup", "--out", out, "--data", "bogus"][..],
        &["backup", "--out", out, "--since", "x"][..],
        &["restore", out, "--data", "history,bogus"][..],
        &["gaps", "--from", "yesterday"][..],
    ] {
        let o = site.cms(args);
        assert_eq!(o.status.code(), Some(2), "cms {args:?}: {}", text(&o));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains("bogus") || e.contains("'x'") || e.contains("yesterday"),
            "cms {args:?} names the bad value: {e}"
        );
        assert!(!site.path("data").exists(), "cms {args:?} changed nothing");
    }
    // `cms sync` (once or until stopped) on a server with no `[peer]` section says so at
    // once, naming the file, instead of waiting for a peer it does not have.
    for args in [&["sync"][..], &["sync", "--once"]] {
        let o = site.cms(args);
        assert_eq!(o.status.code(), Some(1), "cms {args:?}: {}", text(&o));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains("no [peer] section") && e.contains("cms.toml"),
            "{}",
            text(&o)
        );
        assert!(!site.path("data").exists(), "cms {args:?} changed nothing");
    }
    // cms-linksim's values are parsed by clap too: its message names the option, the
    // value and what was expected.
    for (flag, bad, why) in [
        ("--speed", "fast", "a positive number or `max`"),
        ("--duration", "0", "not a positive duration"),
        ("--listen", "A", "expected NAME=ADDR"),
        ("--listen", "=127.0.0.1:0", "empty link name"),
        ("--interval-minutes", "20", "[possible values: 15, 30, 60]"),
    ] {
        let o = Command::new(LINKSIM)
            .args(["--profile", "profiles/tiny.toml", flag, bad])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(2),
            "cms-linksim {flag} {bad}: {}",
            text(&o)
        );
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains(&format!("invalid value '{bad}' for '{flag}")) && e.contains(why),
            "cms-linksim {flag} {bad}: {e}"
        );
    }
}

/// Item 13: a configuration named explicitly must be readable; no falling back.
#[test]
fn a_missing_cms_config_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let o = Command::new(CMS)
        .arg("check-config")
        .env("CMS_CONFIG", &missing)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("nope.toml") && e.contains("cannot read"), "{e}");
    let o = Command::new(CMS)
        .args(["--config"])
        .arg(&missing)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

/// Item 13: check-config refuses switch port 0 and an empty data_dir.
#[test]
fn check_config_refuses_port_0_and_an_empty_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    for (cfg, what) in [
        ("[[acd]]\nid = 1\nswitch = \"127.0.0.1:0\"\n", "port 0"),
        (
            "[[acd]]\nid = 1\nswitch = \"127.0.0.1:5001\"\nsecondary = \"10.0.0.2:0\"\n",
            "port 0",
        ),
        ("data_dir = \"\"\n", "data_dir"),
        ("site_key_file = \"\"\n", "site_key_file"),
    ] {
        let p = dir.path().join("c.toml");
        std::fs::write(&p, cfg).unwrap();
        let o = Command::new(CMS)
            .arg("--config")
            .arg(&p)
            .arg("check-config")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{cfg}: {}", text(&o));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("c.toml") && e.contains(what), "{cfg}: {e}");
    }
}

/// Item 12: the site key is found next to the config, must be private, present and long
/// enough, and check-config (the service's start gate) says so.
#[cfg(unix)]
#[test]
fn check_config_checks_the_site_key() {
    let site = Site::new("site_key_file = \"site.key\"");
    let key = site.path("site.key");
    // Missing.
    let o = site.cms(&["check-config"]);
    assert_eq!(o.status.code(), Some(1), "missing key: {}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(key.to_str().unwrap()),
        "the error names the key file: {}",
        text(&o)
    );
    // Resolved against the config's folder, not the working directory (temp dir).
    write_key(&key, KEY, 0o600);
    let o = site.cms(&["check-config"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let so = String::from_utf8_lossy(&o.stdout);
    assert!(so.contains(&format!("site key {}", key.display())), "{so}");
    // Readable by group or others: refused, as ssh does, naming the mode.
    for m in [0o640, 0o604, 0o644] {
        write_key(&key, KEY, m);
        let o = site.cms(&["check-config"]);
        assert_eq!(o.status.code(), Some(1), "mode {m:o}: {}", text(&o));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains(&format!("{m:04o}")) && e.contains("chmod 600"),
            "{e}"
        );
        // ...and by the commands that use it.
        let o = site.cms(&["verify", key.to_str().unwrap()]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "verify with mode {m:o}: {}",
            text(&o)
        );
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("chmod 600"),
            "{}",
            text(&o)
        );
    }
    // Too short.
    write_key(&key, b"short\n", 0o600);
    let o = site.cms(&["check-config"]);
    assert_eq!(o.status.code(), Some(1), "short key: {}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("at least"),
        "{}",
        text(&o)
    );
    // Unreadable (a directory in its place).
    std::fs::remove_file(&key).unwrap();
    std::fs::create_dir(&key).unwrap();
    let o = site.cms(&["check-config"]);
    assert_eq!(o.status.code(), Some(1), "key is a directory: {}", text(&o));
    // No key configured: valid, but it says backups are not authenticated.
    let o = Site::new("").cms(&["check-config"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("not authenticated"));
}

/// Item 14: every file cms creates is private: 0600 files, 0700 directories; a lock
/// file an older release left 0644 is made private as well.
#[cfg(unix)]
#[test]
fn the_files_cms_creates_are_private() {
    let site = Site::new("checkpoint_seconds = 0.1");
    std::fs::create_dir(site.path("data")).unwrap();
    std::fs::set_permissions(
        site.path("data"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let old_lock = site.path("data/collect.lock");
    std::fs::write(&old_lock, b"").unwrap();
    std::fs::set_permissions(
        &old_lock,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let mut child = Command::new(CMS)
        .arg("--config")
        .arg(site.path("cms.toml"))
        .arg("collect")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let data = site.path("data");
    let want = ["collect.lock", "cms.db", "cms.db-wal", "cms.db-shm"];
    until(
        Duration::from_secs(20),
        || format!("cms collect to create {want:?}"),
        || want.iter().all(|f| data.join(f).exists()).then_some(()),
    );
    // Checked while it runs (the -wal and -shm exist only then), then stopped.
    let modes: Vec<(PathBuf, u32)> = std::fs::read_dir(&data)
        .unwrap()
        .map(|f| {
            let p = f.unwrap().path();
            let m = mode(&p);
            (p, m)
        })
        .collect();
    child.kill().unwrap();
    child.wait().unwrap();
    for (p, m) in modes {
        assert_eq!(m, 0o600, "{} has mode {m:o}", p.display());
    }
    assert_eq!(mode(&data), 0o700, "{}", data.display());
}

/// Item 18: a database whose creation was cut short (WAL set, no tables, version 0) is
/// reported as not created yet, naming the file, by every reader; the next writer
/// creates it.
#[test]
fn a_database_whose_creation_was_cut_short_is_no_database_yet() {
    let site = Site::new("");
    let db = site.path("data/cms.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
    }
    for args in [&["gaps"][..], &["status"][..], &["status", "--json"][..]] {
        let o = site.cms(args);
        assert_eq!(o.status.code(), Some(1), "cms {args:?}: {}", text(&o));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains(db.to_str().unwrap()) && e.contains("no database yet"),
            "cms {args:?}: {e}"
        );
        assert!(!e.contains("no such table"), "cms {args:?}: {e}");
    }
    // A writer completes it.
    cms::store::Store::open(&db).unwrap();
    let o = site.cms(&["gaps"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// Item 17: `cms status` on a database no collector has run on (restores only) says
/// whose it is and why the database does not say so.
#[test]
fn status_of_a_database_no_collector_ran_on_names_the_configured_server() {
    let site = Site::new("");
    std::fs::create_dir_all(site.path("data")).unwrap();
    cms::store::Store::open(&site.path("data/cms.db")).unwrap();
    let o = site.cms(&["status"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let so = String::from_utf8_lossy(&o.stdout);
    assert!(
        so.starts_with(
            "server A (from the configuration: no collector has run on this database yet)"
        ),
        "{so}"
    );
    assert!(!so.contains("server ?"), "{so}");
}
