//! `cms export --warehouse` into a real PostgreSQL server (issue #15, docs/warehouse.md):
//! three simulated sites, each a pair of real collectors with a different fault, export
//! from both servers into one throwaway cluster. The warehouse must then hold, for every
//! site, exactly the union of the truth over every interval complete on either server,
//! no incomplete copy where a complete one exists, and no duplicate; an export killed
//! (SIGKILL) inside a batch and run again changes nothing else; a rerun of every export
//! changes nothing; and a second, different complete copy is recorded as a conflict, not
//! written over the first. Over TLS (docs/warehouse.md, "TLS"), a server that takes
//! only TLS is fed when its certificate is verified, and refused with the reason when
//! it cannot be, or in plaintext.
//!
//! Skips with a message without PostgreSQL (tests/pg/ci-setup.sh), unless
//! `CMS_REQUIRE_POSTGRES=1`.

mod common;

use cms::items::TABLES;
use common::collector::{open, Collector};
use common::pg::{Client, Cluster};
use common::sim::Pair;
use common::wait::until;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const PROFILE: &str = "tiny";

/// A site: its name, the fault, and which server exports first.
struct Site {
    name: &'static str,
    pair: Pair,
}

/// The intervals of a site's run (06:00 to 09:00, 15 minutes each).
const RUN_INTERVALS: usize = 12;

fn run_site(faults: &str, seed: &str) -> Pair {
    Pair::run(
        PROFILE,
        &[
            "--seed",
            seed,
            "--start",
            "2026-11-03T06:00",
            "--duration",
            "3h",
            "--speed",
            "3600",
            "--buffer",
            "40",
            "--faults",
            faults,
        ],
    )
}

fn cms(c: &Collector, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cms"))
        .arg("--config")
        .arg(c.dir.path().join("cms.toml"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn export(c: &Collector, url: &str, site: &str, code: i32) -> serde_json::Value {
    let (got, out) = cms(
        c,
        &[
            "export",
            "--warehouse",
            url,
            "--site",
            site,
            "--batch-rows",
            "100",
            "--json",
        ],
        &[],
    );
    assert_eq!(got, code, "cms export --site {site}:\n{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v[0].clone()
}

/// istart -> (status, row_count, checksum) of a server's (or the truth's) ACD 1.
fn statuses(db: &Path) -> BTreeMap<i64, (String, i64, String)> {
    let c = open(db).unwrap();
    let mut st = c
        .prepare("SELECT istart, status, row_count, checksum FROM interval_status WHERE acd = 1")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// Rows of family `t` in intervals `which` of a SQLite database: (istart, keys+items).
fn sqlite_rows(db: &Path, t: &cms::items::TableDef, which: &BTreeSet<i64>) -> Vec<Vec<i64>> {
    let c = open(db).unwrap();
    let cols: Vec<&str> = t
        .keys
        .iter()
        .copied()
        .chain(t.items.iter().map(|(n, _)| *n))
        .collect();
    let mut st = c
        .prepare(&format!(
            "SELECT istart, {} FROM h{} WHERE acd = 1 ORDER BY istart, {}",
            cols.join(", "),
            t.name,
            t.keys.join(", ")
        ))
        .unwrap();
    let n = cols.len() + 1;
    st.query_map([], |r| {
        (0..n)
            .map(|i| r.get::<_, i64>(i))
            .collect::<Result<Vec<_>, _>>()
    })
    .unwrap()
    .map(|r| r.unwrap())
    .filter(|r| which.contains(&r[0]))
    .collect()
}

/// The same from the warehouse, for one site and status.
fn pg_rows(pg: &Client, site: &str, t: &cms::items::TableDef, status: &str) -> Vec<Vec<i64>> {
    let cols: Vec<&str> = t
        .keys
        .iter()
        .copied()
        .chain(t.items.iter().map(|(n, _)| *n))
        .collect();
    let rows = pg.query(
        &format!(
            "SELECT istart, {} FROM cms_h{} WHERE site = $1 AND acd = 1 AND status = $2 ORDER BY istart, {}",
            cols.join(", "),
            t.name,
            t.keys.join(", ")
        ),
        &[&site, &status],
    );
    rows.iter()
        .map(|r| (0..=cols.len()).map(|i| r.get::<_, i64>(i)).collect())
        .collect()
}

/// A digest of everything in the warehouse, to see that a rerun changes nothing.
fn snapshot(pg: &Client) -> Vec<String> {
    let mut v = Vec::new();
    for t in [
        "cms_interval",
        "cms_conflict",
        "cms_hsplit",
        "cms_hagent",
        "cms_hvdn",
        "cms_htkgrp",
    ] {
        let cols = if t == "cms_interval" {
            "site, acd, istart, status, row_count, checksum, server, source"
        } else if t == "cms_conflict" {
            "site, acd, istart, checksum_kept, checksum_other, server_other"
        } else {
            "*"
        };
        let rows = pg.query(
            &format!("SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) || ' ' || count(*) FROM (SELECT {cols} FROM {t}) x"),
            &[],
        );
        v.push(format!("{t}: {:?}", rows[0].get::<_, Option<String>>(0)));
    }
    v
}

/// The check of the promise, for one site: see the module doc.
fn check_site(pg: &Client, s: &Site) {
    let a = statuses(&s.pair.a.db_path());
    let b = statuses(&s.pair.b.db_path());
    let truth = statuses(&s.pair.sim.truth());
    let wh: BTreeMap<i64, (String, i64, String)> = pg
        .query(
            "SELECT istart, status, row_count, checksum FROM cms_interval WHERE site = $1 AND acd = 1",
            &[&s.name],
        )
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
        .collect();
    let all: BTreeSet<i64> = a.keys().chain(b.keys()).copied().collect();
    assert_eq!(
        wh.keys().copied().collect::<BTreeSet<_>>(),
        all,
        "{}: the intervals",
        s.name
    );
    let mut complete = BTreeSet::new();
    for t in &all {
        let done = |m: &BTreeMap<i64, (String, i64, String)>| {
            m.get(t).filter(|v| v.0 == "complete").cloned()
        };
        match done(&a).or_else(|| done(&b)) {
            Some(c) => {
                assert_eq!(wh[t], c, "{} {t}: the complete copy", s.name);
                assert_eq!(truth[t].0, "complete", "{} {t}", s.name);
                complete.insert(*t);
            }
            None => {
                let copies = [a.get(t), b.get(t)];
                let best = copies
                    .into_iter()
                    .flatten()
                    .max_by(|x, y| (x.1, &x.2).cmp(&(y.1, &y.2)));
                assert_eq!(
                    Some(&wh[t]),
                    best,
                    "{} {t}: the larger incomplete copy",
                    s.name
                );
            }
        }
    }
    for t in TABLES {
        assert_eq!(
            pg_rows(pg, s.name, t, "complete"),
            sqlite_rows(&s.pair.sim.truth(), t, &complete),
            "{}: {} rows of the complete intervals equal the truth",
            s.name,
            t.name
        );
    }
    // Every row belongs to its interval's copy: same status and checksum, and the
    // interval's row count is the number of rows (no duplicate, no stray row).
    let stray = pg.one_i64(
        "SELECT count(*) FROM cms_interval i WHERE i.site = $1 AND i.row_count <>
           (SELECT count(*) FROM cms_hsplit h WHERE h.site = i.site AND h.acd = i.acd AND h.istart = i.istart
              AND h.status = i.status AND h.checksum = i.checksum)
         + (SELECT count(*) FROM cms_hagent h WHERE h.site = i.site AND h.acd = i.acd AND h.istart = i.istart
              AND h.status = i.status AND h.checksum = i.checksum)
         + (SELECT count(*) FROM cms_hvdn h WHERE h.site = i.site AND h.acd = i.acd AND h.istart = i.istart
              AND h.status = i.status AND h.checksum = i.checksum)
         + (SELECT count(*) FROM cms_htkgrp h WHERE h.site = i.site AND h.acd = i.acd AND h.istart = i.istart
              AND h.status = i.status AND h.checksum = i.checksum)",
        &[&s.name],
    );
    assert_eq!(
        stray, 0,
        "{}: intervals whose rows are not exactly their copy's",
        s.name
    );
    for t in TABLES {
        let orphans = pg.one_i64(
            &format!(
                "SELECT count(*) FROM cms_h{} h WHERE h.site = $1 AND NOT EXISTS (SELECT 1 FROM cms_interval i
                   WHERE i.site = h.site AND i.acd = h.acd AND i.istart = h.istart)",
                t.name
            ),
            &[&s.name],
        );
        assert_eq!(
            orphans, 0,
            "{}: {} rows without an interval",
            s.name, t.name
        );
    }
}

#[test]
fn three_sites_both_servers_one_warehouse() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.url();
    // Three sites at once: A loses its link beyond the buffer; B does; both do.
    let faults = [
        ("north", "A:down@07:00-07:40", "31"),
        ("south", "B:down@07:30-08:10", "32"),
        ("east", "*:down@08:00-08:35", "33"),
    ];
    let sites: Vec<Site> = std::thread::scope(|sc| {
        let hs: Vec<_> = faults
            .iter()
            .map(|(name, f, seed)| {
                sc.spawn(move || Site {
                    name,
                    pair: run_site(f, seed),
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (north, south, east) = (&sites[0], &sites[1], &sites[2]);
    // Each outage shows on the servers it hit: as incomplete intervals, or as missing
    // ones when the collector got back in only after the run's last event (at 3600x
    // its reconnect backoff is simulated hours; under CI's load east's did).
    for (site, c) in [
        ("north", &north.pair.a),
        ("south", &south.pair.b),
        ("east", &east.pair.a),
        ("east", &east.pair.b),
    ] {
        let st = statuses(&c.db_path());
        let complete = st.values().filter(|v| v.0 == "complete").count();
        assert!(
            complete < RUN_INTERVALS,
            "{site}: {} has no gap: {st:?}",
            c.dir.path().display()
        );
    }

    // north: the incomplete copy first, the complete one replaces it. south: the
    // complete copy first, the incomplete one never replaces it.
    let r = export(&north.pair.a, &url, "north", 0);
    assert!(r["new"].as_u64().unwrap() > 0, "{r}");
    export(&north.pair.b, &url, "north", 0);
    export(&south.pair.a, &url, "south", 0);
    export(&south.pair.b, &url, "south", 0);
    export(&east.pair.a, &url, "east", 0);

    // east's B is killed inside its third batch (before that batch commits), then run
    // again: the warehouse is as if it had run once.
    let pg = Client::connect(&url);
    let before_kill = pg.one_i64("SELECT count(*) FROM cms_interval WHERE site = 'east'", &[]);
    let marker = east.pair.b.dir.path().join("stalled");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cms"))
        .arg("--config")
        .arg(east.pair.b.dir.path().join("cms.toml"))
        .args([
            "export",
            "--warehouse",
            &url,
            "--site",
            "east",
            "--batch-rows",
            "30",
        ])
        .env("CMS_TEST_EXPORT_STALL", format!("3:{}", marker.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    until(
        Duration::from_secs(60),
        || "the export to stall inside its third batch".into(),
        || {
            if let Some(st) = child.try_wait().unwrap() {
                panic!("the export ended ({st}) before its third batch: too few rows");
            }
            marker.exists().then_some(())
        },
    );
    child.kill().unwrap();
    child.wait().unwrap();
    until(
        Duration::from_secs(30),
        || "the killed export's session to end".into(),
        || {
            (pg.one_i64(
                "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'",
                &[],
            ) == 0)
                .then_some(())
        },
    );
    let after_kill = pg.one_i64("SELECT count(*) FROM cms_interval WHERE site = 'east'", &[]);
    assert!(
        after_kill >= before_kill,
        "two batches of B committed before the kill"
    );
    let rerun = export(&east.pair.b, &url, "east", 0);
    assert!(
        rerun["new"].as_u64().unwrap() > 0,
        "the rerun sends what was not committed: {rerun}"
    );

    for s in &sites {
        check_site(&pg, s);
    }
    assert_eq!(pg.one_i64("SELECT count(*) FROM cms_conflict", &[]), 0);

    // Every export again: nothing to send, nothing changes.
    let before = snapshot(&pg);
    for s in &sites {
        for c in [&s.pair.a, &s.pair.b] {
            let r = export(c, &url, s.name, 0);
            assert_eq!(
                (r["new"].as_u64(), r["corrections"].as_u64()),
                (Some(0), Some(0)),
                "{r}"
            );
        }
    }
    assert_eq!(snapshot(&pg), before, "a rerun changed the warehouse");

    // A second complete copy with other contents (north's A, one interval doctored and
    // re-checksummed by hand): exported as a correction, recorded as a conflict, and the
    // warehouse keeps the first copy.
    let a_db = north.pair.a.db_path();
    let (t, old): (i64, String) = {
        let c = rusqlite::Connection::open(&a_db).unwrap();
        let t: i64 = c
            .query_row(
                "SELECT s.istart FROM interval_status s JOIN hsplit h ON h.acd = s.acd AND h.istart = s.istart
                 WHERE s.acd = 1 AND s.status = 'complete' ORDER BY s.istart LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let old: String = c
            .query_row(
                "SELECT checksum FROM interval_status WHERE acd = 1 AND istart = ?1",
                [t],
                |r| r.get(0),
            )
            .unwrap();
        c.execute(
            "UPDATE hsplit SET acdtime = acdtime + 1 WHERE acd = 1 AND istart = ?1",
            [t],
        )
        .unwrap();
        let (_, sum) = cms::store::interval_checksum(&c, 1, t).unwrap();
        c.execute(
            "UPDATE interval_status SET checksum = ?2 WHERE acd = 1 AND istart = ?1",
            rusqlite::params![t, sum],
        )
        .unwrap();
        (t, old)
    };
    let r = export(&north.pair.a, &url, "north", 3);
    assert_eq!(r["corrections"], 1, "{r}");
    assert_eq!(r["conflicts"], 1, "{r}");
    let kept = pg.query(
        "SELECT checksum FROM cms_interval WHERE site = 'north' AND acd = 1 AND istart = $1",
        &[&t],
    );
    assert_eq!(
        kept[0].get::<_, String>(0),
        old,
        "the first complete copy stays"
    );
    let conflicts = pg.query(
        "SELECT site, istart, checksum_kept, server_other FROM cms_conflict",
        &[],
    );
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].get::<_, String>(0), "north");
    assert_eq!(conflicts[0].get::<_, i64>(1), t);
    assert_eq!(conflicts[0].get::<_, String>(2), old);
    assert_eq!(conflicts[0].get::<_, String>(3), "srv-a");
}

/// One failed export of the TLS test: it exits `code`, its message holds every piece of
/// `says` (the warehouse's name and the reason), never the password, and the warehouse
/// holds nothing afterwards.
fn refused(c: &Collector, pg: &Client, args: &[&str], code: i32, says: &[&str]) {
    let mut all = vec!["export", "--site", "tls"];
    all.extend_from_slice(args);
    let (got, out) = cms(c, &all, &[]);
    assert_eq!(got, code, "cms {all:?}:\n{out}");
    for s in says {
        assert!(out.contains(s), "cms {all:?}: {s:?} not said:\n{out}");
    }
    assert!(!out.contains("hunter2"), "the password is shown:\n{out}");
    assert_eq!(
        pg.one_i64(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'cms\\_%'",
            &[]
        ),
        0,
        "cms {all:?} wrote into the warehouse"
    );
}

/// TLS (docs/warehouse.md, "TLS"): a server that takes TCP connections only over TLS,
/// with a self-signed certificate. The export reaches it with `sslmode=require` and that
/// certificate as `--warehouse-ca`, and the warehouse then holds exactly the server's
/// intervals and rows; without the CA (the system's roots), with another CA, in
/// plaintext, with an unreadable CA file, and against a server without TLS it fails with
/// the warehouse's name and the reason, and writes nothing (the successful export then
/// sends every interval: nothing was marked sent).
#[test]
fn tls_with_the_servers_certificate_and_refusals() {
    let Some(cluster) = Cluster::start_tls() else {
        return;
    };
    let pair = Pair::run(
        PROFILE,
        &[
            "--seed",
            "41",
            "--start",
            "2026-11-03T06:00",
            "--duration",
            "1h",
            "--speed",
            "3600",
        ],
    );
    let c = &pair.a;
    let pg = Client::connect(&cluster.socket_url());
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("server.pem");
    std::fs::write(&ca, cluster.tls_cert.as_ref().unwrap()).unwrap();
    let other = dir.path().join("other.pem");
    let stranger =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(&other, stranger.cert.pem()).unwrap();
    let missing = dir.path().join("missing.pem");
    let (ca_s, other_s, missing_s) = (
        ca.to_str().unwrap(),
        other.to_str().unwrap(),
        missing.to_str().unwrap(),
    );
    let base = format!("postgres://cms:hunter2@127.0.0.1:{}/postgres", cluster.port);
    let require = format!("{base}?sslmode=require");
    let name = format!("warehouse:tls@127.0.0.1:{}/postgres", cluster.port);

    // The system's roots do not know a self-signed certificate (or, on a machine
    // without ca-certificates, there are none: refused before connecting, as said).
    refused(
        c,
        &pg,
        &["--warehouse", &require],
        1,
        &[&name, "system's store"],
    );
    // Another CA than the one that signed the server's certificate.
    refused(
        c,
        &pg,
        &["--warehouse", &require, "--warehouse-ca", other_s],
        1,
        &[&name, "certificate is not trusted", other_s],
    );
    // Plaintext, asked for or by default (as before TLS existed): the server refuses.
    for url in [format!("{base}?sslmode=disable"), base.clone()] {
        refused(
            c,
            &pg,
            &["--warehouse", &url],
            1,
            &[&name, "no encryption", "only over TLS"],
        );
    }
    // A CA file that cannot be read; a CA with sslmode=disable (a usage error).
    refused(
        c,
        &pg,
        &["--warehouse", &require, "--warehouse-ca", missing_s],
        1,
        &[&name, missing_s, "cannot read"],
    );
    refused(
        c,
        &pg,
        &[
            "--warehouse",
            &format!("{base}?sslmode=disable"),
            "--warehouse-ca",
            ca_s,
        ],
        2,
        &["--warehouse-ca", "sslmode=disable"],
    );
    // A server without TLS, when TLS is required.
    if let Some(plain) = Cluster::start() {
        let (got, out) = cms(
            c,
            &[
                "export",
                "--site",
                "tls",
                "--warehouse",
                &plain.url(),
                "--warehouse-ca",
                ca_s,
            ],
            &[],
        );
        assert_eq!(got, 1, "{out}");
        let plain_name = format!("warehouse:tls@127.0.0.1:{}/postgres", plain.port);
        assert!(
            out.contains(&plain_name) && out.contains("does not offer TLS"),
            "{out}"
        );
    }

    // The server's own certificate as the CA: over TLS, every interval, every row.
    let (got, out) = cms(
        c,
        &[
            "export",
            "--site",
            "tls",
            "--warehouse",
            &require,
            "--warehouse-ca",
            ca_s,
            "--json",
        ],
        &[],
    );
    assert_eq!(got, 0, "{out}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let local = statuses(&c.db_path());
    assert!(!local.is_empty());
    assert_eq!(
        r[0]["new"].as_u64(),
        Some(local.len() as u64),
        "the refused exports marked nothing sent: {out}"
    );
    // The server logged the export's session (log_connections) as a TLS one.
    assert!(
        cluster.log().contains("SSL enabled"),
        "no TLS session in the server's log:\n{}",
        cluster.log()
    );
    let wh: BTreeMap<i64, (String, i64, String)> = pg
        .query(
            "SELECT istart, status, row_count, checksum FROM cms_interval WHERE site = 'tls' AND acd = 1",
            &[],
        )
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
        .collect();
    assert_eq!(wh, local, "the intervals");
    for status in ["complete", "incomplete"] {
        let which: BTreeSet<i64> = local
            .iter()
            .filter(|(_, v)| v.0 == status)
            .map(|(t, _)| *t)
            .collect();
        for t in TABLES {
            assert_eq!(
                pg_rows(&pg, "tls", t, status),
                sqlite_rows(&c.db_path(), t, &which),
                "{} rows of the {status} intervals",
                t.name
            );
        }
    }
}
