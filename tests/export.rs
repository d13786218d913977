//! `cms export --out` through the real binary (issue #15, docs/exports.md): a first
//! export while the collector runs, a second after it has stopped (only the intervals
//! closed or changed since), then a gap on A restored from B's backup and a third
//! export that carries exactly the intervals the restore changed, as corrections, and
//! a fourth that carries nothing. What to expect is computed from the databases and the
//! simulator's ground truth, never from the export's own bookkeeping.

mod common;

use common::collector::open;
use common::sim::{cms_expect, local_ts, wait_switch_time, Pair};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PROFILE: &str = "reference";

/// One CSV line's fields (the generic layout quotes a field holding a comma).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().unwrap().push('"');
            }
            ('"', true) => quoted = false,
            (',', false) => out.push(String::new()),
            (c, _) => out.last_mut().unwrap().push(c),
        }
    }
    out
}

/// A generic file as header-keyed records.
fn read_csv(p: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(p).unwrap();
    let mut lines = text.lines();
    let header = split_csv(lines.next().expect("a header"));
    lines
        .map(|l| {
            let f = split_csv(l);
            assert_eq!(f.len(), header.len(), "{}: {l}", p.display());
            header.iter().cloned().zip(f).collect()
        })
        .collect()
}

/// What one `cms export --json` reported, and its files by suffix.
struct Run {
    json: serde_json::Value,
    files: BTreeMap<String, PathBuf>,
}

fn export(p: &Pair, out: &Path) -> Run {
    let text = cms_expect(
        &p.a,
        &[
            "export",
            "--out",
            out.to_str().unwrap(),
            "--format",
            "generic,calabrio",
            "--json",
        ],
        0,
    );
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let mut files = BTreeMap::new();
    for f in json[0]["files"].as_array().unwrap() {
        let f = PathBuf::from(f.as_str().unwrap());
        let name = f.file_name().unwrap().to_str().unwrap();
        let suffix = name.rsplit_once("-p").unwrap().1;
        let suffix = suffix.split_once('-').unwrap().1.to_string();
        files.insert(suffix, f);
    }
    Run { json, files }
}

/// istart -> (status, checksum) of A's intervals.
fn statuses(db: &Path) -> BTreeMap<i64, (String, String)> {
    let c = open(db).unwrap();
    let mut st = c
        .prepare("SELECT istart, status, checksum FROM interval_status WHERE acd = 1")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// istart (UTC s) -> (status, checksum, change) from an interval list.
fn listed(run: &Run) -> BTreeMap<i64, (String, String, String)> {
    let Some(p) = run.files.get("intervals.csv") else {
        return BTreeMap::new();
    };
    read_csv(p)
        .into_iter()
        .map(|r| {
            let t = chrono::DateTime::parse_from_rfc3339(&r["interval_start"])
                .unwrap()
                .timestamp();
            (
                t,
                (
                    r["status"].clone(),
                    r["checksum"].clone(),
                    r["change"].clone(),
                ),
            )
        })
        .collect()
}

#[test]
fn a_restore_is_exported_again_as_corrections_and_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut p = Pair::start(
        PROFILE,
        &[
            "--seed",
            "15",
            "--start",
            "2026-11-03T06:00",
            "--duration",
            "4h",
            "--speed",
            "1800",
            "--buffer",
            "3000",
            "--faults",
            "A:down@07:00-07:35",
        ],
        "",
    );
    // 1. While A collects: everything stored so far.
    wait_switch_time(
        &p.a,
        local_ts(PROFILE, "2026-11-03T08:00"),
        Duration::from_secs(120),
    );
    let first = export(&p, &out);
    let one = listed(&first);
    assert!(one.len() >= 7, "first export: {:?}", first.json);
    assert!(one.values().all(|(_, _, c)| c == "new"));
    p.finish();

    // 2. After the collector stopped: exactly what it closed or changed since, per the
    // database compared with the first export's own list.
    let before = statuses(&p.a.db_path());
    let second = export(&p, &out);
    let two = listed(&second);
    let expect_two: BTreeMap<i64, String> = before
        .iter()
        .filter_map(|(t, (s, c))| match one.get(t) {
            None => Some((*t, "new".to_string())),
            Some((s1, c1, _)) if s1 != s || c1 != c => Some((*t, "correction".to_string())),
            Some(_) => None,
        })
        .collect();
    let got_two: BTreeMap<i64, String> = two.iter().map(|(t, v)| (*t, v.2.clone())).collect();
    assert_eq!(got_two, expect_two, "second export");
    assert!(
        !got_two.is_empty(),
        "the collector closed intervals after the first export"
    );
    for (t, (s, c, _)) in &two {
        assert_eq!(&before[t], &(s.clone(), c.clone()), "{t}: as stored");
    }
    let incomplete: Vec<i64> = before
        .iter()
        .filter(|(_, (s, _))| s == "incomplete")
        .map(|(t, _)| *t)
        .collect();
    assert!(
        !incomplete.is_empty(),
        "the outage left incomplete intervals on A"
    );

    // 3. Backup on B, restore on A, export: exactly the intervals the restore changed.
    let bak = p.b.dir.path().join("b.cmsbak");
    cms_expect(&p.b, &["backup", "--out", bak.to_str().unwrap()], 0);
    cms_expect(&p.a, &["restore", bak.to_str().unwrap(), "--json"], 0);
    let after = statuses(&p.a.db_path());
    let changed: BTreeMap<i64, String> = after
        .iter()
        .filter_map(|(t, v)| match before.get(t) {
            None => Some((*t, "new".to_string())),
            Some(b) if b != v => Some((*t, "correction".to_string())),
            Some(_) => None,
        })
        .collect();
    for t in &incomplete {
        assert_eq!(
            changed.get(t).map(String::as_str),
            Some("correction"),
            "{t}"
        );
    }
    let third = export(&p, &out);
    let three = listed(&third);
    let got: BTreeMap<i64, String> = three.iter().map(|(t, v)| (*t, v.2.clone())).collect();
    assert_eq!(
        got, changed,
        "the third export is exactly what the restore changed"
    );
    assert_eq!(
        third.json[0]["corrections"].as_u64().unwrap() as usize,
        changed.values().filter(|c| *c == "correction").count()
    );
    // The corrected rows are the truth's: hsplit's acdcalls per interval and skill.
    let truth = open(&p.sim.truth()).unwrap();
    let mut want: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for t in changed.keys() {
        assert_eq!(three[t].0, "complete", "{t}");
        let mut st = truth
            .prepare("SELECT split, acdcalls FROM hsplit WHERE acd = 1 AND istart = ?1")
            .unwrap();
        for r in st
            .query_map([t], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .unwrap()
        {
            let (s, n) = r.unwrap();
            want.insert((*t, s), n);
        }
    }
    let mut rows: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for r in read_csv(&third.files["hsplit.csv"]) {
        let t = chrono::DateTime::parse_from_rfc3339(&r["interval_start"])
            .unwrap()
            .timestamp();
        assert_eq!(r["change"], changed[&t], "{t}");
        rows.insert(
            (t, r["split"].parse().unwrap()),
            r["acdcalls"].parse().unwrap(),
        );
    }
    assert_eq!(rows, want, "hsplit rows of the corrections equal the truth");

    // Calabrio's file: headerless, 21 fields, one line per skill and corrected interval;
    // answered calls (field 10) are the truth's acdcalls, 0 for a skill without a row.
    let cal = std::fs::read_to_string(&third.files["acd1-calabrio-queue.csv"]).unwrap();
    let skills: i64 = open(&p.a.db_path())
        .unwrap()
        .query_row("SELECT COUNT(*) FROM skill_def WHERE acd = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(skills > 0, "the switch's translations name the skills");
    assert_eq!(cal.lines().count() as i64, skills * changed.len() as i64);
    let tz: chrono_tz::Tz = common::sim::profile_tz(PROFILE).parse().unwrap();
    for line in cal.lines() {
        let f: Vec<&str> = line.split(';').collect();
        assert_eq!(f.len(), 21, "{line}");
        assert_eq!(f[0], "15");
        let local =
            chrono::NaiveDateTime::parse_from_str(&format!("{} {}", f[1], f[2]), "%Y%m%d %H:%M")
                .unwrap();
        use chrono::TimeZone;
        let t = tz
            .from_local_datetime(&local)
            .earliest()
            .unwrap()
            .timestamp();
        let split: i64 = f[3].parse().unwrap();
        let answered: i64 = f[9].parse().unwrap();
        assert_eq!(
            answered,
            want.get(&(t, split)).copied().unwrap_or(0),
            "{line}"
        );
    }

    // 4. Nothing changed since: nothing exported, no file.
    let fourth = export(&p, &out);
    assert_eq!(fourth.json[0]["new"], 0, "{:?}", fourth.json);
    assert_eq!(fourth.json[0]["corrections"], 0);
    assert!(fourth.files.is_empty());
    // Every file is private to the service, and no temporary file is left.
    for e in std::fs::read_dir(&out).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "{name}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                e.metadata().unwrap().permissions().mode() & 0o777,
                0o600,
                "{name}"
            );
        }
    }
}

#[test]
fn export_needs_a_destination_and_a_database() {
    let site = common::site::Site::new("");
    let o = site.cms(&["export"]);
    assert_eq!(o.status.code(), Some(2), "{}", common::site::text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--out DIR"));
    let o = site.cms(&["export", "--warehouse", "postgres://x@127.0.0.1/db"]);
    assert_eq!(o.status.code(), Some(2), "{}", common::site::text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--site"));
    let out = site.path("out");
    let o = site.cms(&["export", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", common::site::text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cms.db"),
        "{}",
        common::site::text(&o)
    );
    assert!(
        !site.path("data/cms.db").exists(),
        "an export never creates a database"
    );
}
