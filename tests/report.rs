//! `cms report` through the real binary (issue #15, docs/reports.md).
//!
//! A real `cms-linksim` feeds two real collectors through the day DST ends in the tiny
//! profile's zone (Europe/London, 2026-10-25: 100 quarter hours, 01:00-02:00 twice), link
//! A down longer than its replay buffer. The reports of both servers are checked against
//! numbers the test computes itself: the simulator's ground truth for complete intervals,
//! SQL over the collector's own database for incomplete ones and for the summaries, and
//! the derived figures recomputed from the items. A hand-built database gives the golden
//! output of the table format.

mod common;

use cms::items::{Combine, TableDef, SPLIT};
use common::collector::open;
use common::golden::assert_golden;
use common::sim::Pair;
use common::site::{text, Site};
use rusqlite::{params, Connection};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

const DAY: &str = "2026-10-25";

/// `cms report ARGS` with the configuration `cfg`: its stdout, once it exited 0.
fn report(cfg: &Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_cms"))
        .arg("--config")
        .arg(cfg)
        .arg("report")
        .args(args)
        .env_remove("CMS_CONFIG")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

fn json_rows(cfg: &Path, args: &[&str]) -> Vec<Value> {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    serde_json::from_str::<Value>(&report(cfg, &a))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn istart(row: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(row["start_utc"].as_str().unwrap())
        .unwrap()
        .timestamp()
}

/// The items of `t` in a JSON row, by name.
fn items(t: &TableDef, row: &Value) -> BTreeMap<&'static str, i64> {
    t.items
        .iter()
        .map(|(n, _)| (*n, row[*n].as_i64().unwrap_or_else(|| panic!("{n}: {row}"))))
        .collect()
}

/// The stored items of `hsplit` for one split and interval.
fn stored(db: &Connection, split: i64, istart: i64) -> BTreeMap<&'static str, i64> {
    let cols: Vec<&str> = SPLIT.items.iter().map(|(n, _)| *n).collect();
    db.query_row(
        &format!(
            "SELECT {} FROM hsplit WHERE acd = 1 AND split = ?1 AND istart = ?2",
            cols.join(", ")
        ),
        params![split, istart],
        |r| {
            cols.iter()
                .enumerate()
                .map(|(i, n)| Ok((*n, r.get(i)?)))
                .collect()
        },
    )
    .unwrap_or_else(|e| panic!("split {split} at {istart}: {e}"))
}

/// The split figures of docs/reports.md, computed here from the items on their own.
fn split_figures(i: &BTreeMap<&str, i64>) -> [(&'static str, Option<f64>); 5] {
    let div = |n: i64, d: i64, k: f64| (d > 0).then(|| k * n as f64 / d as f64);
    [
        (
            "service_level_pct",
            div(i["acceptable"], i["callsoffered"], 100.0),
        ),
        ("asa", div(i["anstime"], i["acdcalls"], 1.0)),
        (
            "aht",
            div(
                i["acdtime"] + i["holdtime"] + i["acwtime"],
                i["acdcalls"],
                1.0,
            ),
        ),
        ("abandon_pct", div(i["abncalls"], i["callsoffered"], 100.0)),
        (
            "occupancy_pct",
            div(
                i["i_acdtime"] + i["i_acwtime"],
                i["i_stafftime"] - i["i_auxtime"],
                100.0,
            ),
        ),
    ]
}

fn assert_figures(row: &Value) {
    for (name, want) in split_figures(&items(&SPLIT, row)) {
        match (row[name].as_f64(), want) {
            (None, None) => assert!(row[name].is_null()),
            (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "{name}: {g} vs {w} in {row}"),
            (g, w) => panic!("{name}: report {g:?}, computed {w:?} in {row}"),
        }
    }
}

/// The daily sums of `hsplit` over the local day, per split, computed by SQL (`SUM` and
/// `MAX` as each item combines).
fn day_sums(db: &Connection) -> BTreeMap<i64, BTreeMap<&'static str, i64>> {
    let sel: Vec<String> = SPLIT
        .items
        .iter()
        .map(|(n, c)| match c {
            Combine::Sum => format!("SUM({n})"),
            Combine::Max => format!("MAX({n})"),
        })
        .collect();
    let mut st = db
        .prepare(&format!(
            "SELECT split, {} FROM hsplit WHERE acd = 1 AND row_date = ?1 GROUP BY split",
            sel.join(", ")
        ))
        .unwrap();
    st.query_map([DAY], |r| {
        let m = SPLIT
            .items
            .iter()
            .enumerate()
            .map(|(i, (n, _))| Ok((*n, r.get(i + 1)?)))
            .collect::<rusqlite::Result<BTreeMap<_, _>>>()?;
        Ok((r.get(0)?, m))
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

/// (status, reasons) of every interval of the day in `db`.
fn day_statuses(db: &Connection) -> BTreeMap<i64, (String, String)> {
    let mut st = db
        .prepare(
            "SELECT istart, status, reasons FROM interval_status WHERE acd = 1 AND row_date = ?1",
        )
        .unwrap();
    st.query_map([DAY], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// Splits one CSV line (RFC 4180 quoting, no line breaks inside fields).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut chars) =
        (vec![], String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// DST: skill 1's rows have `n` distinct local labels (none twice), and the repeated
/// hour shows twice, told apart by the offset.
fn assert_dst_labels(rows: &[Value], n: usize) {
    let labels: Vec<&str> = rows
        .iter()
        .filter(|r| r["split"] == 1)
        .map(|r| r["start_local"].as_str().unwrap())
        .collect();
    let distinct: BTreeSet<&str> = labels.iter().copied().collect();
    assert_eq!((labels.len(), distinct.len()), (n, n), "{labels:?}");
    for hhmm in ["01:00", "01:15", "01:30", "01:45"] {
        for off in ["+01:00", "+00:00"] {
            let l = format!("{DAY}T{hhmm}:00{off}");
            assert!(distinct.contains(l.as_str()), "{l} in {distinct:?}");
        }
    }
}

#[test]
fn reports_equal_the_truth_and_the_database_on_a_dst_day_with_a_gap() {
    let p = Pair::run(
        "tiny",
        &[
            "--seed",
            "5",
            "--start",
            "2026-10-25T00:00",
            "--duration",
            "25h",
            "--speed",
            "3600",
            "--faults",
            "A:down@10:00-14:00",
            "--buffer",
            "2000",
        ],
    );
    let cfg_a = p.a.dir.path().join("cms.toml");
    let cfg_b = p.b.dir.path().join("cms.toml");
    let a = open(&p.a.db_path()).unwrap();
    let b = open(&p.b.db_path()).unwrap();
    let truth = open(&p.sim.truth()).unwrap();

    // Intervals, server A: every stored row of the day once, with its interval's status.
    let rows = json_rows(&cfg_a, &["split", "--from", DAY, "--to", DAY]);
    let want: BTreeSet<(i64, i64)> = {
        let mut st = a
            .prepare("SELECT istart, split FROM hsplit WHERE acd = 1 AND row_date = ?1")
            .unwrap();
        st.query_map([DAY], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    let got: BTreeSet<(i64, i64)> = rows
        .iter()
        .map(|r| (istart(r), r["split"].as_i64().unwrap()))
        .collect();
    assert_eq!(got.len(), rows.len(), "no row twice");
    assert_eq!(got, want);
    let statuses = day_statuses(&a);
    assert_eq!(
        statuses.len(),
        100,
        "the day DST ends has 100 quarter hours"
    );
    // The outage leaves intervals with no rows at all: each is incomplete, and the
    // table's last line counts them with the others.
    let starts: BTreeSet<i64> = got.iter().map(|k| k.0).collect();
    for (t, (st, _)) in &statuses {
        assert!(
            starts.contains(t) || st == "incomplete",
            "{t} {st}: no rows"
        );
    }
    let bad = statuses.values().filter(|s| s.0 != "complete").count();
    let table = report(&cfg_a, &["split", "--from", DAY, "--to", DAY]);
    assert_eq!(
        table.lines().last().unwrap(),
        format!("ACD 1: the range holds {bad} incomplete and 0 missing intervals (`cms gaps` lists them)")
    );
    assert_eq!(
        table.lines().filter(|l| l.contains("incomplete*")).count(),
        rows.iter().filter(|r| r["status"] == "incomplete").count()
    );
    let (mut complete, mut incomplete) = (0, 0);
    for r in &rows {
        let (t, split) = (istart(r), r["split"].as_i64().unwrap());
        let (st, why) = &statuses[&t];
        assert_eq!(r["status"], st.as_str(), "{r}");
        assert_eq!(r["reasons"], why.as_str(), "{r}");
        assert_eq!(r["period"], "interval");
        assert_eq!(r["row_date"], DAY);
        if st == "complete" {
            // Complete: exactly the simulator's independent truth.
            assert_eq!(items(&SPLIT, r), stored(&truth, split, t), "{r}");
            complete += 1;
        } else {
            // Incomplete: what A holds, marked, never passed off as exact.
            assert_eq!(items(&SPLIT, r), stored(&a, split, t), "{r}");
            incomplete += 1;
        }
        assert_figures(r);
    }
    assert!(complete > 100 && incomplete >= 4, "{complete} {incomplete}");
    assert!(
        rows.iter()
            .any(|r| r["reasons"].as_str().unwrap().contains("replay_gap")),
        "the outage shows as replay_gap"
    );
    assert_dst_labels(&rows, 100 - (statuses.len() - starts.len()));

    // CSV: the documented columns, the same rows and statuses.
    let csv = report(
        &cfg_a,
        &["split", "--from", DAY, "--to", DAY, "--format", "csv"],
    );
    let mut lines = csv.lines();
    let head = csv_fields(lines.next().unwrap());
    let mut cols = vec![
        "acd",
        "split",
        "period",
        "row_date",
        "starttime",
        "intrvl",
        "start_utc",
        "start_local",
        "status",
        "reasons",
        "incomplete_intervals",
    ];
    cols.extend(SPLIT.items.iter().map(|(n, _)| *n));
    cols.extend([
        "service_level_pct",
        "asa",
        "aht",
        "abandon_pct",
        "occupancy_pct",
    ]);
    assert_eq!(head, cols);
    let body: Vec<Vec<String>> = lines.map(csv_fields).collect();
    assert_eq!(body.len(), rows.len());
    for (f, r) in body.iter().zip(&rows) {
        assert_eq!(f.len(), cols.len(), "{f:?}");
        let at = |c: &str| &f[cols.iter().position(|x| *x == c).unwrap()];
        assert_eq!(at("start_utc"), r["start_utc"].as_str().unwrap());
        assert_eq!(at("status"), r["status"].as_str().unwrap());
        assert_eq!(at("reasons"), r["reasons"].as_str().unwrap());
        assert_eq!(at("callsoffered"), &r["callsoffered"].to_string());
        let sl = r["service_level_pct"].as_f64().map(|x| format!("{x:.2}"));
        assert_eq!(at("service_level_pct"), &sl.unwrap_or_default());
    }

    // --id: only that skill.
    let one = json_rows(&cfg_a, &["split", "--from", DAY, "--to", DAY, "--id", "2"]);
    assert_eq!(one.len(), rows.iter().filter(|r| r["split"] == 2).count());
    assert!(one.iter().all(|r| r["split"] == 2));

    // Daily, server A: SQL's sums over A's intervals, incomplete by the count of its
    // incomplete intervals.
    let daily = json_rows(&cfg_a, &["split", "--daily", "--from", DAY, "--to", DAY]);
    let sums = day_sums(&a);
    assert_eq!(daily.len(), sums.len());
    let bad = bad as i64;
    for r in &daily {
        let split = r["split"].as_i64().unwrap();
        assert_eq!(items(&SPLIT, r), sums[&split], "{r}");
        assert_eq!(r["status"], "incomplete");
        assert_eq!(r["incomplete_intervals"], bad);
        assert_eq!(r["reasons"], format!("incomplete_intervals={bad}"));
        assert_eq!(r["start_local"], format!("{DAY}T00:00:00+01:00"));
        assert!(r["starttime"].is_null() && r["intrvl"].is_null());
        assert_figures(r);
    }

    // Daily, server B (no fault): complete, and the truth's sums; every quarter hour
    // has rows.
    let b_statuses = day_statuses(&b);
    assert!(
        b_statuses.len() == 100 && b_statuses.values().all(|s| s.0 == "complete"),
        "B has no gap: {b_statuses:?}"
    );
    let b_rows = json_rows(&cfg_b, &["split", "--from", DAY, "--to", DAY]);
    assert_eq!(
        b_rows.iter().map(istart).collect::<BTreeSet<_>>().len(),
        100
    );
    let daily_b = json_rows(&cfg_b, &["split", "--daily", "--from", DAY, "--to", DAY]);
    let truth_sums = day_sums(&truth);
    assert_eq!(daily_b.len(), truth_sums.len());
    for r in &daily_b {
        assert_eq!(r["status"], "complete", "{r}");
        assert_eq!(r["reasons"], "");
        assert_eq!(items(&SPLIT, r), truth_sums[&r["split"].as_i64().unwrap()]);
    }
    // Weekly, server B: the week of Monday 19 October holds one summarized day of
    // seven, so it is marked although every interval in it is complete.
    let weekly = json_rows(&cfg_b, &["split", "--weekly", "--from", DAY, "--to", DAY]);
    assert_eq!(weekly.len(), truth_sums.len());
    for r in &weekly {
        assert_eq!(r["row_date"], "2026-10-19");
        assert_eq!(r["status"], "incomplete");
        assert_eq!(r["reasons"], "days_summarized=1/7");
        assert_eq!(items(&SPLIT, r), truth_sums[&r["split"].as_i64().unwrap()]);
    }
    // The other families read the same way: B's day of agents, VDNs and trunk groups
    // is the truth's, row for row, and their sums add up.
    for (family, table, item) in [
        ("agent", "hagent", "acdcalls"),
        ("vdn", "hvdn", "incalls"),
        ("trunk", "htkgrp", "incalls"),
    ] {
        let got = json_rows(&cfg_b, &[family, "--from", DAY, "--to", DAY]);
        let (n, sum): (i64, i64) = truth
            .query_row(
                &format!(
                    "SELECT COUNT(*), SUM({item}) FROM {table} WHERE acd = 1 AND row_date = ?1"
                ),
                [DAY],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(got.len() as i64, n, "{family}");
        let total: i64 = got.iter().map(|r| r[item].as_i64().unwrap()).sum();
        assert_eq!(total, sum, "{family} {item}");
        assert!(got.iter().all(|r| r["status"] == "complete"), "{family}");
    }
}

/// A site in Europe/London whose database holds, by hand, four quarter hours around the
/// repeated hour of 2026-10-25 (one incomplete) and the day's summary.
fn hand_built() -> Site {
    let site = Site::new("time_zone = \"Europe/London\"");
    std::fs::create_dir_all(site.path("data")).unwrap();
    let store = cms::store::Store::open(&site.path("data/cms.db")).unwrap();
    let grid = cms::interval::Grid::new(chrono_tz::Europe::London, 15);
    let t0 = 1_792_888_200; // 2026-10-25T00:30:00Z, 01:30+01:00
                            // (UTC start, status, reasons, callsoffered, acceptable, abncalls, acdcalls, anstime)
    let ivs = [
        (t0, "complete", "", 10, 8, 1, 9, 90),
        (t0 + 900, "complete", "", 4, 4, 0, 4, 20),
        (t0 + 1800, "incomplete", "replay_gap", 2, 1, 1, 1, 30),
        (t0 + 3600, "complete", "", 0, 0, 0, 0, 0),
    ];
    for (t, st, why, off, acc, abn, acd, ans) in ivs {
        let (date, hhmm) = grid.labels(t);
        store
            .conn
            .execute(
                "INSERT INTO interval_status (acd, istart, intrvl, row_date, starttime, status,
                   reasons, source, row_count, checksum, updated_at)
                 VALUES (1, ?1, 15, ?2, ?3, ?4, ?5, 'collected', 1, '', 0)",
                params![t, date, hhmm, st, why],
            )
            .unwrap();
        store
            .conn
            .execute(
                "INSERT INTO hsplit (acd, split, istart, row_date, starttime, intrvl,
                   callsoffered, acceptable, abncalls, acdcalls, anstime, acdtime, acwtime,
                   holdtime, i_stafftime, i_auxtime, i_acdtime, i_acwtime)
                 VALUES (1, 3, ?1, ?2, ?3, 15, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, 900, 180, ?11, ?12)",
                params![
                    t,
                    date,
                    hhmm,
                    off,
                    acc,
                    abn,
                    acd,
                    ans,
                    acd * 120,
                    acd * 20,
                    acd * 60,
                    acd * 10
                ],
            )
            .unwrap();
    }
    store
        .conn
        .execute_batch(
            "INSERT INTO dsplit (acd, split, row_date, callsoffered, acceptable, abncalls,
               acdcalls, anstime, acdtime, acwtime, i_stafftime, i_auxtime, i_acdtime,
               i_acwtime, incomplete)
             VALUES (1, 3, '2026-10-25', 16, 13, 2, 14, 140, 1680, 280, 3600, 720, 840, 140, 97);
             INSERT INTO summary_state (acd, period, row_date, built_at)
             VALUES (1, 'day', '2026-10-25', 0);",
        )
        .unwrap();
    site
}

#[test]
fn table_format_marks_incomplete_rows_and_labels_the_repeated_hour() {
    let site = hand_built();
    let cfg = site.path("cms.toml");
    let got = report(&cfg, &["split", "--from", DAY, "--to", DAY]);
    assert_golden(
        "cms report split (intervals)",
        &got,
        "\
acd  split  date        time         status       callsoffered  acdcalls  abncalls  i_stafftime  service_level_pct    asa     aht  abandon_pct  occupancy_pct  reasons
  1      3  2026-10-25  01:30+01:00  complete               10         9         1          900              80.00  10.00  140.00        10.00          87.50
  1      3  2026-10-25  01:45+01:00  complete                4         4         0          900             100.00   5.00  140.00         0.00          38.89
  1      3  2026-10-25  01:00+00:00  incomplete*             2         1         1          900              50.00  30.00  140.00        50.00           9.72  replay_gap
  1      3  2026-10-25  01:30+00:00  complete                0         0         0          900                  -      -       -            -           0.00
4 rows (interval), 1 incomplete (marked *: not exact, see reasons)
ACD 1: the range holds 1 incomplete and 96 missing intervals (`cms gaps` lists them)
",
    );
    let got = report(&cfg, &["split", "--daily"]);
    assert_golden(
        "cms report split --daily",
        &got,
        "\
acd  split  date        status       callsoffered  acdcalls  abncalls  i_stafftime  service_level_pct    asa     aht  abandon_pct  occupancy_pct  reasons
  1      3  2026-10-25  incomplete*            16        14         2         3600              81.25  10.00  140.00        12.50          34.03  incomplete_intervals=97
1 rows (day), 1 incomplete (marked *: not exact, see reasons)
ACD 1: the range holds 1 incomplete and 1 missing intervals (`cms gaps` lists them)
",
    );
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let site = Site::new("");
    // No database yet: the message names it.
    let o = site.cms(&["report", "split"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cms.db"), "{err}");
    let site = hand_built();
    for (args, code, says) in [
        (
            &[
                "report",
                "split",
                "--from",
                "2026-10-26",
                "--to",
                "2026-10-25",
            ][..],
            1,
            "is after --to",
        ),
        (&["report", "queue"][..], 2, "queue"),
        (
            &["report", "split", "--daily", "--weekly"][..],
            2,
            "--weekly",
        ),
        (
            &["report", "split", "--acd", "9"][..],
            1,
            "ACD 9 is not configured",
        ),
        (&["report", "split", "--format", "xml"][..], 2, "xml"),
    ] {
        let o = site.cms(args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}
