//! The pages rendered against a database written here: the cells, numbers and flags of
//! the HTML are read back and compared with what was written and with SQL run here.

use super::coverage::{self, CellKind};
use super::{interval_report, overview, ConsoleError, Params};
use crate::config::Config;
use crate::store::Store;
use chrono::{NaiveDate, TimeZone};
use chrono_tz::America::New_York;
use regex::Regex;
use rusqlite::params;
use std::collections::BTreeMap;

/// UTC seconds of a New York local time; `later` picks the second of a repeated hour.
fn ny(s: &str, later: bool) -> i64 {
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    match New_York.from_local_datetime(&t) {
        chrono::LocalResult::Single(d) => d.timestamp(),
        chrono::LocalResult::Ambiguous(a, b) => (if later { b } else { a }).timestamp(),
        chrono::LocalResult::None => panic!("{s} does not exist in New York"),
    }
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

struct Site {
    _dir: tempfile::TempDir,
    cfg: Config,
    store: Store,
}

fn site(extra: &str) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "server_id = \"srv-a\"\ndata_dir = '{}'\ntime_zone = \"America/New_York\"\n\
         {extra}\n[[acd]]\nid = 1\nswitch = \"127.0.0.1:5001\"\n[[acd]]\nid = 2\n\
         switch = \"127.0.0.1:5002\"\n",
        dir.path().display()
    );
    let cfg = Config::parse_str(&text, None).unwrap();
    let store = Store::open(&cfg.db_path()).unwrap();
    Site {
        _dir: dir,
        cfg,
        store,
    }
}

/// Writes a status row for the interval at `t` (15 minutes).
fn status(s: &Store, acd: u16, t: i64, complete: bool, reasons: &str, source: &str) {
    let local = New_York.timestamp_opt(t, 0).unwrap();
    let date = local.format("%Y-%m-%d").to_string();
    crate::store::status::upsert(
        &s.conn,
        &crate::store::status::StatusRow {
            acd,
            istart: t,
            intrvl: 15,
            row_date: &date,
            starttime: local.format("%H%M").to_string().parse().unwrap(),
            status: crate::domain::IntervalStatus::of(complete),
            reasons,
            epoch: 1,
            first_seq: 0,
            last_seq: 0,
            source,
            row_count: 0,
            checksum: "",
            updated_at: 1,
        },
    )
    .unwrap();
}

fn checkpoint(s: &Store, acd: u16, open: i64, saved_at: i64) {
    s.conn
        .execute(
            "INSERT OR REPLACE INTO checkpoint (acd, epoch, seq, ts, open_istart, state, saved_at)
             VALUES (?1, 7, 4242, 0, ?2, x'', ?3)",
            params![acd, open, saved_at],
        )
        .unwrap();
}

/// Every `data-istart`/`data-kind` cell of the page (the first coverage table only).
fn cells(html: &str) -> BTreeMap<i64, String> {
    let re = Regex::new(r#"data-istart="(\d+)" data-kind="(\w+)""#).unwrap();
    let mut out = BTreeMap::new();
    for c in re.captures_iter(html) {
        let prev = out.insert(c[1].parse().unwrap(), c[2].to_string());
        assert!(prev.is_none(), "interval {} has two cells", &c[1]);
    }
    out
}

#[test]
fn coverage_cells_are_exactly_the_stored_statuses_with_dst_days_of_100_and_92() {
    let s = site("");
    // 2026-10-31 .. 2026-11-02: an ordinary day, the day DST ends (100 intervals), and
    // the day the collector is at 12:00.
    let (lo, hi) = (ny("2026-10-31 00:00", false), ny("2026-11-03 00:00", false));
    let open = ny("2026-11-02 12:00", false);
    let incomplete = [ny("2026-11-01 01:15", false), ny("2026-11-01 01:30", true)];
    let missing: Vec<i64> = (0..3)
        .map(|i| ny("2026-11-02 08:15", false) + i * 900)
        .collect();
    let restored = ny("2026-11-02 10:00", false);
    let mut t = lo;
    while t < open {
        if incomplete.contains(&t) {
            status(
                &s.store,
                1,
                t,
                false,
                "replay_gap,call_across_gap",
                "collected",
            );
        } else if t == restored {
            status(&s.store, 1, t, true, "", "restored:srv-b");
        } else if !missing.contains(&t) {
            status(&s.store, 1, t, true, "", "collected");
        }
        t += 900;
    }
    // ACD 2 has a gap of its own that must not show on ACD 1's page.
    status(&s.store, 2, lo, false, "collection_start", "collected");
    checkpoint(&s.store, 1, open, open + 60);

    let p = Params::of([("acd", "1"), ("from", "2026-10-31"), ("to", "2026-11-02")]);
    let html = coverage::render(&s.cfg, &s.store, &p, open + 100).unwrap();
    let got = cells(&html);
    // Independently: every 900 s from local midnight of 10-31 to that of 11-03.
    let mut want = BTreeMap::new();
    let mut t = lo;
    while t < hi {
        let k = if incomplete.contains(&t) {
            "incomplete"
        } else if missing.contains(&t) {
            "missing"
        } else if t == restored {
            "restored"
        } else if t == open {
            "collecting"
        } else if t > open {
            "future"
        } else {
            "complete"
        };
        want.insert(t, k.to_string());
        t += 900;
    }
    assert_eq!(got, want);
    assert_eq!(got.len(), 96 + 100 + 96);
    assert!(html.contains("2026-11-01 <span class=\"dst\">DST: 100 intervals</span>"));
    // The reason is on hover and in the text a screen reader reads, with the zone that
    // tells the two 01:15s apart.
    assert!(html.contains(
        "title=\"01:15–01:30 EDT incomplete: replay_gap,call_across_gap\"><span class=\"sr\">\
         01:15–01:30 EDT incomplete: replay_gap,call_across_gap</span>"
    ));
    assert!(html.contains("01:30–01:45 EST incomplete: replay_gap,call_across_gap"));
    assert!(html.contains("10:00–10:15 EST restored (restored:srv-b)"));
    // The repeated hour's slots hold two cells each, in one column.
    assert_eq!(html.matches("<td class=\"slot two\">").count(), 4);
    assert!(html.contains(
        "ACD 1, 2026-10-31 to 2026-11-02: 5 intervals missing or incomplete, 1 interval restored"
    ));
    // The ranges, in the words of `cms gaps`.
    assert!(html.contains("<td>2026-11-02 08:15 EST</td><td>2026-11-02 09:00 EST</td><td class=\"n\">3</td><td>missing</td>"));
    assert!(!html.contains("collection_start"));
}

#[test]
fn the_day_dst_starts_has_92_cells_and_the_skipped_hour_is_said() {
    let s = site("");
    let lo = ny("2026-03-08 00:00", false);
    let hi = ny("2026-03-09 00:00", false);
    let mut t = lo;
    while t < hi {
        status(&s.store, 1, t, true, "", "collected");
        t += 900;
    }
    let c = coverage::coverage(
        &s.store,
        &s.cfg.grid(),
        1,
        day("2026-03-08"),
        day("2026-03-08"),
        hi + 86_400,
    )
    .unwrap();
    assert_eq!(c.days[0].cells.len(), 92);
    assert!(c.days[0].cells.iter().all(|c| c.kind == CellKind::Complete));
    let p = Params::of([("from", "2026-03-08"), ("to", "2026-03-08")]);
    let html = coverage::render(&s.cfg, &s.store, &p, hi + 86_400).unwrap();
    assert_eq!(cells(&html).len(), 92);
    assert!(html.contains("DST: 92 intervals"));
    assert_eq!(html.matches("no such local time (DST)\">").count(), 4);
    assert!(html.contains("No interval of ACD 1 from 2026-03-08 to 2026-03-08"));
}

#[test]
fn bad_requests_say_why_and_name_what_was_asked() {
    let s = site("");
    let now = ny("2026-11-02 12:00", false);
    let bad = |pairs: &[(&str, &str)], page: &str| -> String {
        let p = Params::of(pairs.iter().copied());
        let r = match page {
            "coverage" => coverage::render(&s.cfg, &s.store, &p, now),
            _ => interval_report::render(&s.cfg, &s.store, &p, now),
        };
        match r {
            Err(ConsoleError::BadRequest(m)) => m,
            other => panic!("{pairs:?}: not a bad request: {other:?}"),
        }
    };
    assert_eq!(
        bad(&[("acd", "9")], "coverage"),
        "ACD 9 is not collected by this server (it collects ACD 1, 2)"
    );
    assert_eq!(
        bad(&[("acd", "x")], "report"),
        "acd \"x\" is not an ACD number (this server collects ACD 1, 2)"
    );
    assert!(bad(&[("from", "2026-13-01")], "coverage")
        .starts_with("from \"2026-13-01\" is not a date of the form YYYY-MM-DD"));
    assert!(bad(&[("date", "yesterday")], "report")
        .starts_with("date \"yesterday\" is not a date of the form YYYY-MM-DD"));
    assert_eq!(
        bad(&[("from", "2026-11-05"), ("to", "2026-11-01")], "coverage"),
        "from 2026-11-05 is after to 2026-11-01"
    );
    assert_eq!(
        bad(&[("from", "2025-01-01"), ("to", "2026-11-01")], "coverage"),
        "2025-01-01 to 2026-11-01 is 670 days; one page shows at most 366"
    );
    assert_eq!(
        bad(&[("skill", "-3")], "report"),
        "skill \"-3\" is not a whole number"
    );
    // The 400 page says it, escaped.
    let page = super::html::error_page("srv-a", 400, &bad(&[("acd", "<x>")], "coverage"));
    assert!(page.contains("<strong>400:</strong> acd &quot;&lt;x&gt;&quot; is not an ACD number"));
}

/// Writes an `hsplit` row.
fn hsplit(s: &Store, skill: i64, t: i64, v: [i64; 4]) {
    let local = New_York.timestamp_opt(t, 0).unwrap();
    s.conn
        .execute(
            "INSERT INTO hsplit (acd, split, istart, row_date, starttime, intrvl, callsoffered,
               acdcalls, abncalls, acceptable) VALUES (1, ?1, ?2, ?3, ?4, 15, ?5, ?6, ?7, ?8)",
            params![
                skill,
                t,
                local.format("%Y-%m-%d").to_string(),
                local.format("%H%M").to_string().parse::<i64>().unwrap(),
                v[0],
                v[1],
                v[2],
                v[3]
            ],
        )
        .unwrap();
}

#[test]
fn the_interval_report_shows_the_databases_numbers_and_marks_what_is_not_exact() {
    let s = site("");
    let lo = ny("2026-11-02 00:00", false);
    let open = ny("2026-11-02 18:00", false);
    let flagged = [ny("2026-11-02 09:15", false), ny("2026-11-02 09:30", false)];
    let mut t = lo;
    let mut i = 0i64;
    while t < open {
        if t != flagged[1] {
            let reasons = if t == flagged[0] { "replay_gap" } else { "" };
            status(&s.store, 1, t, reasons.is_empty(), reasons, "collected");
        }
        if (28..72).contains(&i) {
            // Business hours: skill 3 and skill 5 busy, numbers that vary.
            let off = 10 + (i * 7) % 23;
            let ans = off - (i % 4);
            hsplit(&s.store, 3, t, [off, ans, i % 3, ans - (i % 5).min(ans)]);
            hsplit(&s.store, 5, t, [1, 1, 0, 1]);
        }
        t += 900;
        i += 1;
    }
    checkpoint(&s.store, 1, open, open);
    let p = Params::of([("acd", "1"), ("date", "2026-11-02"), ("skill", "3")]);
    let html = interval_report::render(&s.cfg, &s.store, &p, open + 10).unwrap();

    // Every row of the table against the database, computed here.
    let row = Regex::new(
        r#"<tr( class="flagged")? data-istart="(\d+)"><th scope="row">[^<]+</th><td class="n">(\d+)</td><td class="n">(\d+)</td><td class="n">(\d+)</td><td class="n">([^<]+)</td><td>([^<]*)</td></tr>"#,
    )
    .unwrap();
    let mut st = s
        .store
        .conn
        .prepare(
            "SELECT callsoffered, acdcalls, abncalls,
                    CASE WHEN callsoffered > 0 THEN 100.0 * acceptable / callsoffered END
             FROM hsplit WHERE acd = 1 AND split = 3 AND istart = ?1",
        )
        .unwrap();
    let mut n = 0;
    let mut seen_flags = vec![];
    for c in row.captures_iter(&html) {
        let t: i64 = c[2].parse().unwrap();
        let (o, a, b, sl): (i64, i64, i64, Option<f64>) = st
            .query_row([t], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap_or((0, 0, 0, None));
        let got: (i64, i64, i64) = (
            c[3].parse().unwrap(),
            c[4].parse().unwrap(),
            c[5].parse().unwrap(),
        );
        assert_eq!(got, (o, a, b), "interval {t}");
        match sl {
            None => assert_eq!(&c[6], "–", "interval {t}"),
            Some(v) => {
                let shown: f64 = c[6].trim_end_matches(" %").parse().unwrap();
                assert!(
                    (shown - v).abs() <= 0.05 + 1e-9,
                    "interval {t}: {shown} vs {v}"
                );
            }
        }
        if c.get(1).is_some() {
            seen_flags.push((t, c[7].to_string()));
        }
        n += 1;
    }
    assert_eq!(n, 96, "one row per interval of the day");
    assert_eq!(
        seen_flags,
        vec![
            (flagged[0], "⚠ incomplete: replay_gap".to_string()),
            (flagged[1], "⚠ missing".to_string())
        ]
    );
    // The day's totals, as SQL sums them.
    let (off, ans, abn): (i64, i64, i64) = s
        .store
        .conn
        .query_row(
            "SELECT SUM(callsoffered), SUM(acdcalls), SUM(abncalls) FROM hsplit
             WHERE acd = 1 AND split = 3",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let foot = Regex::new(r#"<tfoot><tr><th scope="row">Day</th><td class="n">([^<]+)</td><td class="n">([^<]+)</td><td class="n">([^<]+)</td>"#).unwrap();
    let f = foot.captures(&html).expect("a totals row");
    let plain = |s: &str| s.replace('\u{202f}', "").parse::<i64>().unwrap();
    assert_eq!((plain(&f[1]), plain(&f[2]), plain(&f[3])), (off, ans, abn));
    // The chart: hatched bands on exactly the flagged intervals, and a text alternative.
    let band = Regex::new(r#"<rect class="band"[^>]* data-istart="(\d+)""#).unwrap();
    let bands: Vec<i64> = band
        .captures_iter(&html)
        .map(|c| c[1].parse().unwrap())
        .collect();
    assert_eq!(bands, flagged.to_vec());
    assert!(html.contains("role=\"img\" aria-labelledby=\"chart-title chart-desc\""));
    assert!(html.contains(&format!(
        "Day total: offered {off}, answered {ans}, abandoned {abn}"
    )));
    assert!(html.contains("2 intervals not exact, hatched: 09:15 incomplete, 09:30 missing."));
    // The intervals from the one being collected on are not yet known, not missing.
    assert!(html.contains("<td>not yet</td>"));
    // The skill picker offers the skills with rows that day.
    assert!(html.contains("<option value=\"3\" selected>3</option><option value=\"5\">5</option>"));
}

#[test]
fn the_overview_shows_the_status_of_cms_status_and_todays_totals_as_sql_sums_them() {
    let id = "AB".repeat(32);
    let s = site(&format!(
        "[peer]\naddress = \"127.0.0.1:7070\"\npeer_id = \"{id}\"\n"
    ));
    let now = ny("2026-11-02 11:05", false);
    for (i, t) in (0..40).map(|i| (i, ny("2026-11-02 01:00", false) + i * 900)) {
        status(
            &s.store,
            1,
            t,
            i != 7,
            if i == 7 { "replay_gap" } else { "" },
            "collected",
        );
        hsplit(&s.store, 1 + i % 3, t, [5 + i, 4 + i, 1, 3]);
    }
    // Yesterday's rows are not today's.
    hsplit(
        &s.store,
        1,
        ny("2026-11-01 23:45", false),
        [1000, 1000, 0, 0],
    );
    checkpoint(
        &s.store,
        1,
        ny("2026-11-02 11:00", false),
        crate::store::intervals::now_secs() - 3,
    );
    s.store
        .conn
        .execute(
            "INSERT INTO link_state (acd, state, since, peer, detail) VALUES
             (1, 'data_transfer', ?1, '127.0.0.1:5001', ''),
             (2, 'down', ?1, '', 'cannot connect: Connection refused')",
            [now - 600],
        )
        .unwrap();
    crate::store::peer::save_state(
        &s.store.conn,
        &crate::store::peer::PeerState {
            address: "127.0.0.1:7070".into(),
            peer_server: "srv-b".into(),
            connected: true,
            healed: 12,
            pending: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let html = overview::render(&s.cfg, &s.store, now).unwrap();
    let (off, ans, abn, n, ok): (i64, i64, i64, i64, i64) = s
        .store
        .conn
        .query_row(
            "SELECT (SELECT SUM(callsoffered) FROM hsplit WHERE row_date = '2026-11-02'),
                    (SELECT SUM(acdcalls) FROM hsplit WHERE row_date = '2026-11-02'),
                    (SELECT SUM(abncalls) FROM hsplit WHERE row_date = '2026-11-02'),
                    (SELECT COUNT(*) FROM interval_status WHERE row_date = '2026-11-02'),
                    (SELECT COUNT(*) FROM interval_status WHERE row_date = '2026-11-02'
                       AND status = 'complete')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    let g = super::html::num;
    assert!(
        html.contains(&format!(
            "<tr><th scope=\"row\">1</th><td class=\"n\">{n}</td><td class=\"n\">{ok}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
            g(off),
            g(ans),
            g(abn)
        )),
        "{html}"
    );
    assert!(html.contains("Today, 2026-11-02 (America/New_York)"));
    assert!(html.contains("<span class=\"state ok\">data_transfer</span>"));
    assert!(html.contains("<span class=\"state bad\">down</span>"));
    assert!(html.contains("last error: cannot connect: Connection refused"));
    // The checkpoint's age is `cms status`'s, on the real clock.
    let row = Regex::new(
        "<td>2026-11-02 11:00 EST</td><td>2026-11-02 10:45 EST</td><td>(\\d+) s ago</td><td>7 / 4242</td>",
    )
    .unwrap();
    let age: i64 = row.captures(&html).expect("ACD 1's row")[1]
        .parse()
        .unwrap();
    assert!(
        (3..60).contains(&age),
        "checkpoint saved 3 s ago, shown {age} s ago"
    );
    assert!(html.contains("127.0.0.1:7070 (srv-b): <span class=\"state ok\">connected</span>"));
    assert!(html
        .contains("<th scope=\"row\">Intervals healed from the peer</th><td class=\"n\">12</td>"));
}

/// Every `data-istart`/`data-kind` cell of the coverage table of `server`.
fn cells_of(html: &str, server: &str) -> BTreeMap<i64, String> {
    let start = html
        .find(&format!(
            "<table class=\"coverage\" data-server=\"{server}\""
        ))
        .unwrap_or_else(|| panic!("no coverage table of {server}"));
    let end = start + html[start..].find("</table>").unwrap();
    cells(&html[start..end])
}

#[test]
fn the_peers_grid_follows_this_servers_as_the_last_sync_saw_it() {
    use crate::store::peer::{save_state, save_views, PeerDay, PeerState, PeerView};
    let id = "AB".repeat(32);
    let s = site(&format!(
        "[peer]\naddress = \"127.0.0.1:7070\"\npeer_id = \"{id}\"\n"
    ));
    // This server: 2026-11-03 all complete but 09:00 incomplete and 10:00 restored;
    // 2026-11-04 complete up to 12:00 (missing 08:00), collecting 12:00.
    let d3 = ny("2026-11-03 00:00", false);
    let d4 = ny("2026-11-04 00:00", false);
    for i in 0..96 {
        let t = d3 + i * 900;
        let (complete, reason) = if t == ny("2026-11-03 09:00", false) {
            (false, "replay_gap")
        } else {
            (true, "")
        };
        let source = if t == ny("2026-11-03 10:00", false) {
            "restored:srv-b"
        } else {
            "collected"
        };
        status(&s.store, 1, t, complete, reason, source);
    }
    for i in 0..48 {
        let t = d4 + i * 900;
        if t != ny("2026-11-04 08:00", false) {
            status(&s.store, 1, t, true, "", "collected");
        }
    }
    let open = ny("2026-11-04 12:00", false);
    checkpoint(&s.store, 1, open, crate::store::intervals::now_secs());
    save_state(
        &s.store.conn,
        &PeerState {
            address: "127.0.0.1:7070".into(),
            peer_server: "srv-b".into(),
            connected: true,
            ..Default::default()
        },
    )
    .unwrap();
    // The sync at 11:10 on 11-04 saw: 11-02 only on the peer (not fetched), 11-03 equal,
    // 11-04 listed: complete up to 11:00 but 08:00 (missing there too), 09:30 incomplete.
    let dn = |d: &str| crate::peer::digest::day_number(d);
    let at = ny("2026-11-04 11:10", false);
    let mut listed = vec![];
    for i in 0..44 {
        let t = d4 + i * 900;
        if t != ny("2026-11-04 08:00", false) {
            listed.push((t, t != ny("2026-11-04 09:30", false)));
        }
    }
    let view = PeerView {
        acd: 1,
        at,
        days: [
            (
                dn("2026-11-02"),
                PeerDay::Held {
                    intervals: 96,
                    complete: 96,
                },
            ),
            (dn("2026-11-03"), PeerDay::Same),
            (dn("2026-11-04"), PeerDay::Listed(listed)),
        ]
        .into(),
    };
    save_views(&s.store.conn, &[view]).unwrap();
    let p = Params::of([("acd", "1"), ("from", "2026-11-01"), ("to", "2026-11-04")]);
    let now = ny("2026-11-04 12:05", false);
    let html = coverage::render(&s.cfg, &s.store, &p, now).unwrap();
    assert!(
        html.contains("<h2 id=\"peer-server\">The peer, srv-b</h2>"),
        "{html}"
    );
    assert!(html.contains(&format!("data-at=\"{at}\"")));
    let here = cells_of(&html, "srv-a");
    let peer = cells_of(&html, "srv-b");
    assert_eq!(here.len(), peer.len(), "column for column");
    // Worked out by hand, interval by interval.
    for (t, k) in &peer {
        let t = *t;
        let want = if t < ny("2026-11-02 00:00", false) {
            "missing" // 11-01: the peer has nothing
        } else if t < d3 {
            "unknown" // 11-02: held by the peer alone
        } else if t < d4 {
            if t == ny("2026-11-03 09:00", false) {
                "incomplete" // equal digests: as here
            } else {
                "complete" // a restored interval came from the peer: complete there
            }
        } else if t + 900 > at {
            "future" // not ended at the sync
        } else if t == ny("2026-11-04 08:00", false) {
            "missing"
        } else if t == ny("2026-11-04 09:30", false) {
            "incomplete"
        } else {
            "complete"
        };
        assert_eq!(k, want, "peer cell at {t}");
    }
    assert_eq!(here[&ny("2026-11-03 10:00", false)], "restored");
    assert_eq!(here[&open], "collecting");
    // Without a sync having seen the ACD, the page says so and draws no peer grid.
    let p2 = Params::of([("acd", "2"), ("from", "2026-11-01"), ("to", "2026-11-04")]);
    let html = coverage::render(&s.cfg, &s.store, &p2, now).unwrap();
    assert!(html.contains("No sync has seen the peer's intervals of this ACD yet."));
    assert!(!html.contains("data-server=\"srv-b\""));
}
