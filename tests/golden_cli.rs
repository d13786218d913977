//! Golden output of `cms verify`, `cms compare`, `cms check-config` and `cms-linksim`'s
//! summary: the real binaries' rendered output compared whole with the text it must be
//! (issue #12 item 8), what varies between runs normalised by `common::golden`. The
//! data comes from the committed backup fixtures, restored into a fresh server.

mod common;

use common::golden::{assert_golden, Normaliser};
use common::site::{text, Site};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const LINKSIM: &str = env!("CARGO_BIN_EXE_cms-linksim");
const KEY: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef\n";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A site holding the two intervals of `tests/fixtures/backup-v1.cmsbak`.
fn restored() -> Site {
    let site = Site::new("");
    let fixture = root().join("tests/fixtures/backup-v1.cmsbak");
    let o = cms(&site, &["restore", fixture.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    site
}

/// `cms` with `site`'s configuration, run from the repository (relative paths name the
/// fixtures).
fn cms(site: &Site, args: &[&str]) -> Output {
    site.cms_in(root(), args)
}

fn normaliser(site: &Site) -> Normaliser {
    Normaliser::new().path(site.dir.path(), "[DIR]")
}

/// The command's stdout, once it exited with `code` and wrote nothing on stderr.
fn stdout(o: &Output, code: i32) -> String {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
    assert!(o.stderr.is_empty(), "{}", text(o));
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[cfg(unix)]
fn write_key(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, KEY).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn verify_renders_what_a_backup_holds() {
    let site = Site::new("");
    let o = cms(&site, &["verify", "tests/fixtures/backup-v1.cmsbak"]);
    assert_golden(
        "cms verify",
        &stdout(&o, 0),
        "tests/fixtures/backup-v1.cmsbak: ok (format 1, schema 1)
  from server cms-fixture-a at 2024-03-11T23:53:54Z, ACDs [1], not authenticated (no MAC)
  2 intervals (2 complete) from 2024-03-11T08:00:00Z to 2024-03-11T08:15:00Z; 14 interval rows, 1 summary row, 4 admin rows, 0 local rows in 3 blocks
",
    );
    let o = cms(
        &site,
        &["verify", "--json", "tests/fixtures/backup-v2.cmsbak"],
    );
    assert_golden(
        "cms verify --json",
        &stdout(&o, 0),
        r#"{
  "acds": [
    1
  ],
  "admin_rows": 4,
  "authenticated": false,
  "blocks": 3,
  "categories": 3,
  "complete_intervals": 2,
  "created_at": 1710201234,
  "file": "tests/fixtures/backup-v2.cmsbak",
  "first_interval": "2024-03-11T08:00:00Z",
  "format_version": 2,
  "interval_rows": 14,
  "intervals": 2,
  "last_interval": "2024-03-11T08:15:00Z",
  "local_rows": 0,
  "mac": "none",
  "ok": true,
  "schema_version": 1,
  "server_id": "cms-fixture-a",
  "summary_rows": 1
}
"#,
    );
}

/// The three things `cms verify` can say of a MAC: checked with the site key, carried
/// but not checkable here (no key configured), none.
#[cfg(unix)]
#[test]
fn verify_says_what_it_knows_of_the_mac() {
    // Restored before the key is configured: a keyed server refuses the fixture, which
    // carries no MAC.
    let keyed = restored();
    keyed.configure("site_key_file = \"site.key\"");
    write_key(&keyed.path("site.key"));
    let bak = keyed.path("a.cmsbak");
    let o = cms(&keyed, &["backup", "--out", bak.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The one varying value, read from the file by the library: when it was taken.
    let created = cms::archive::ArchiveReader::open(&bak, None)
        .unwrap()
        .header()
        .created_at;
    let at = chrono::DateTime::from_timestamp(created, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let n = normaliser(&keyed).text(at, "[CREATED]");
    let body = "  2 intervals (2 complete) from 2024-03-11T08:00:00Z to 2024-03-11T08:15:00Z; \
                14 interval rows, 21 summary rows, 4 admin rows, 0 local rows in 3 blocks\n";
    let plain = Site::new("");
    for (verifier, says) in [
        (&keyed, "authenticated (MAC verified)"),
        (
            &plain,
            "carries a MAC this server cannot check (no site_key_file configured): its origin \
             is not verified",
        ),
    ] {
        let o = cms(verifier, &["verify", bak.to_str().unwrap()]);
        assert_golden(
            &format!("cms verify: {says}"),
            &n.apply(&stdout(&o, 0)),
            &format!(
                "[DIR]/a.cmsbak: ok (format 2, schema 2)\n  from server A at [CREATED], ACDs \
                 [1], {says}\n{body}"
            ),
        );
    }
    let o = cms(&plain, &["verify", "--json", bak.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o, 0)).unwrap();
    assert_eq!(
        (&v["mac"], &v["authenticated"]),
        (&serde_json::json!("not_checked"), &serde_json::json!(false))
    );
}

/// A copy of `site`'s database (whole: `VACUUM INTO` takes what the WAL holds too), then
/// changed by `sql`.
fn changed_copy(site: &Site, name: &str, sql: &str) -> PathBuf {
    let copy = site.path(name);
    let db = rusqlite::Connection::open(site.path("data/cms.db")).unwrap();
    db.execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    rusqlite::Connection::open(&copy)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
    copy
}

#[test]
fn compare_renders_agreement_and_each_difference() {
    let site = restored();
    let n = normaliser(&site);
    let same = changed_copy(&site, "same.db", "");
    let o = cms(&site, &["compare", same.to_str().unwrap()]);
    assert_golden(
        "cms compare, equal databases",
        &n.apply(&stdout(&o, 0)),
        "[DIR]/data/cms.db and [DIR]/same.db agree on the status of every interval stored in \
         both and on every item of those complete in both\n",
    );
    // 08:00: one item changed (and the checksum with it, as a collector would store it);
    // 08:15: incomplete there.
    let other = changed_copy(
        &site,
        "other.db",
        "UPDATE hsplit SET acdcalls = acdcalls + 1 WHERE istart = 1710144000 AND split = 2;
         UPDATE interval_status SET checksum = 'changed' WHERE istart = 1710144000;
         UPDATE interval_status SET status = 'incomplete' WHERE istart = 1710144900;",
    );
    let o = cms(&site, &["compare", other.to_str().unwrap()]);
    assert_golden(
        "cms compare, two differences",
        &stdout(&o, 3),
        "ACD 1 2024-03-11 08:00 hsplit split 2 acdcalls: 3194 here, 3195 there
ACD 1 2024-03-11 08:15 interval: complete here, incomplete there
2 differences
",
    );
    let o = cms(&site, &["compare", "--json", other.to_str().unwrap()]);
    assert_golden(
        "cms compare --json",
        &stdout(&o, 3),
        r#"[
  {
    "acd": 1,
    "istart": 1710144000,
    "table": "hsplit",
    "key": [
      2
    ],
    "item": "acdcalls",
    "left": 3194,
    "right": 3195
  },
  {
    "acd": 1,
    "istart": 1710144900,
    "table": "status",
    "key": [],
    "item": "complete",
    "left": 1,
    "right": 0
  }
]
"#,
    );
    // Missing there: only --strict reports it.
    let fewer = changed_copy(
        &site,
        "fewer.db",
        "DELETE FROM interval_status WHERE istart = 1710144900;",
    );
    let o = cms(&site, &["compare", fewer.to_str().unwrap()]);
    assert_eq!(stdout(&o, 0).lines().count(), 1);
    let o = cms(&site, &["compare", "--strict", fewer.to_str().unwrap()]);
    assert_golden(
        "cms compare --strict",
        &stdout(&o, 3),
        "ACD 1 2024-03-11 08:15 interval: complete here, missing there\n1 difference\n",
    );
}

#[cfg(unix)]
#[test]
fn check_config_renders_the_configuration() {
    let keyed = Site::new(
        "time_zone = \"America/New_York\"\ninterval_minutes = 30\nweek_start = \"sunday\"\n\
         site_key_file = \"site.key\"\n[[acd]]\nid = 2\nswitch = \"10.0.0.1:5001\"\n\
         secondary = \"10.0.0.2:5001\"",
    );
    write_key(&keyed.path("site.key"));
    let plain = Site::new("");
    for (site, want) in [
        (
            &keyed,
            "configuration [DIR]/cms.toml is valid
  server_id A
  data_dir [DIR]/data
  intervals 30 min, time zone America/New_York, week starts Sun
  ACD 2: switch 10.0.0.1:5001, secondary 10.0.0.2:5001
  ACD 1: switch 127.0.0.1:9
  site key [DIR]/site.key (backups authenticated)
",
        ),
        (
            &plain,
            "configuration [DIR]/cms.toml is valid
  server_id A
  data_dir [DIR]/data
  intervals 15 min, time zone UTC, week starts Mon
  ACD 1: switch 127.0.0.1:9
  no site key: backups are not authenticated (see docs/operations.md)
",
        ),
    ] {
        let o = cms(site, &["check-config"]);
        assert_golden(
            "cms check-config",
            &normaliser(site).apply(&stdout(&o, 0)),
            want,
        );
    }
}

/// The summary on stderr: what the run did (the same profile, seed and start give the
/// same calls and events), its wall time and rate normalised.
#[test]
fn linksim_summary_says_what_the_run_did() {
    let dir = tempfile::tempdir().unwrap();
    let truth = dir.path().join("truth.db");
    let o = Command::new(LINKSIM)
        .args(["--profile", "profiles/tiny.toml", "--speed", "max"])
        .args(["--duration", "1h", "--interval-minutes", "30", "--truth"])
        .arg(&truth)
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(o.stdout.is_empty(), "{}", text(&o));
    assert_golden(
        "cms-linksim",
        &Normaliser::new().apply(&String::from_utf8_lossy(&o.stderr)),
        "cms-linksim: listening {}
cms-linksim: done: 87 calls (0 blocked on all trunks busy), 782 events in [SECS] s ([RATE] events/s), 0 faults applied, 0 overruns, 1 epochs, 2 truth intervals
",
    );
}
