//! `cms-asterisk` through the real binaries: a queue log -> the bridge -> two `cms
//! collect`, with a collector down while the log moves on, a logrotate rotation in the
//! middle, the bridge killed (-9) and started again, and an Asterisk restart while a
//! call is connected. The numbers are the hand-worked ones of docs/asterisk.md's worked
//! example (docs/data-items.md's call, as Asterisk logs it).

mod common;

use common::bridge::{append, Bridge};
use common::collector::{item, open, status, t, Collector};
use common::wait::until;
use std::time::Duration;

const MAPPING: &str = r#"
wrapup_seconds = 60
periods = [5, 10, 20, 30, 40, 50, 60, 120, 180]
[queues.support]
skill = 1
service_level = 20
[dids]
"5551234" = 1
"#;

/// Unix seconds of HH:MM:SS on 2026-11-02 UTC (the collector tests' day).
fn s(h: i64, m: i64, sec: i64) -> i64 {
    t(h, m, sec) / 1000
}

/// Waits until the collector closed the interval starting at `istart_ms`.
fn wait_closed(c: &Collector, istart_ms: i64, bridge: &Bridge) {
    until(
        Duration::from_secs(30),
        || {
            format!(
                "interval {istart_ms} to close\ncollector:\n{}\nbridge:\n{}",
                c.log(),
                bridge.log()
            )
        },
        || {
            let db = open(&c.db_path()).ok()?;
            status(&db, istart_ms)
        },
    );
}

#[test]
fn queue_log_to_two_collectors_through_faults() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("asterisk.toml"), MAPPING).unwrap();
    let log = d.join("queue_log");
    append(
        &log,
        &[
            format!("{}|NONE|support|PJSIP/100|ADDMEMBER|", s(9, 50, 0)),
            format!("{}|1762077480.7|support|NONE|DID|5551234", s(9, 58, 0)),
            format!(
                "{}|1762077480.7|support|NONE|ENTERQUEUE||5550100|1",
                s(9, 58, 0)
            ),
            format!(
                "{}|1762077480.7|support|PJSIP/100|CONNECT|16|1762077492.8|4",
                s(9, 58, 16)
            ),
        ],
    );
    let mut bridge = Bridge::start(d, "127.0.0.1:0", "127.0.0.1:0");
    let (pa, pb) = bridge.ports();
    let mut a = Collector::start_as("ast-a", pa);
    let mut b = Collector::start_as("ast-b", pb);
    // B goes down; the call completes and the interval closes while it is away.
    until(
        Duration::from_secs(30),
        || format!("B's first checkpoint\n{}", b.log()),
        || {
            let db = open(&b.db_path()).ok()?;
            db.query_row("SELECT seq FROM checkpoint WHERE acd = 1", [], |r| {
                r.get::<_, i64>(0)
            })
            .ok()
            .filter(|s| *s > 0)
        },
    );
    b.kill9();
    append(
        &log,
        &[format!(
            "{}|1762077480.7|support|PJSIP/100|COMPLETECALLER|16|360|1",
            s(10, 4, 16)
        )],
    );
    // logrotate (rename): the old file gets no more lines, Asterisk writes a new one.
    std::fs::rename(&log, d.join("queue_log.1")).unwrap();
    append(
        &log,
        &[
            format!(
                "{}|1762078800.9|support|NONE|ENTERQUEUE||5550101|1",
                s(10, 20, 0)
            ),
            format!(
                "{}|1762078800.9|support|PJSIP/100|CONNECT|10|1762078810.10|3",
                s(10, 20, 10)
            ),
        ],
    );
    wait_closed(&a, t(10, 0, 0), &bridge);
    // The bridge dies and comes back: the same epoch, the same sequence numbers.
    bridge.kill9();
    // Asterisk restarts with the second call connected: it never logs its end.
    append(
        &log,
        &[
            format!("{}|NONE|NONE|NONE|QUEUESTART|", s(10, 25, 0)),
            format!("{}|NONE|support|PJSIP/100|PAUSE|", s(11, 0, 0)),
        ],
    );
    // On the same ports: the collectors reconnect by themselves (A never stopped).
    let bridge = Bridge::start(d, &pa.to_string(), &pb.to_string());
    b.spawn();
    let (a2, b2) = (&a, &b);
    for c in [a2, b2] {
        wait_closed(c, t(10, 45, 0), &bridge);
    }
    for c in [a2, b2] {
        let db = open(&c.db_path()).unwrap();
        let at = |h, m| t(h, m, 0);
        let st = |h, m| status(&db, at(h, m)).unwrap();
        assert_eq!(st(9, 45), ("complete".into(), "".into()), "{}", c.log());
        assert_eq!(st(10, 0), ("complete".into(), "".into()), "{}", c.log());
        let (s15, r15) = st(10, 15);
        assert_eq!(s15, "incomplete");
        assert!(r15.contains("unknown_entity"), "{r15}");
        assert!(
            !r15.contains("replay_gap") && !r15.contains("epoch_change"),
            "{r15}"
        );
        assert_eq!(st(10, 30), ("complete".into(), "".into()));
        let sp = |col: &str| item(&db, "hsplit", "split = 1", at(10, 0), col);
        assert_eq!(sp("callsoffered"), 1);
        assert_eq!(sp("acdcalls"), 1);
        assert_eq!(sp("anstime"), 16);
        assert_eq!(sp("acceptable"), 1);
        assert_eq!(sp("acdcalls3"), 1);
        assert_eq!(sp("acdtime"), 360);
        assert_eq!(sp("acwtime"), 60);
        let ag = |col: &str, h, m| item(&db, "hagent", "agent = 100 AND split = 1", at(h, m), col);
        assert_eq!(ag("i_availtime", 9, 45), 496);
        assert_eq!(ag("i_acdtime", 9, 45), 104);
        assert_eq!(ag("i_acdtime", 10, 0), 256);
        assert_eq!(ag("i_acwtime", 10, 0), 60);
        assert_eq!(item(&db, "hvdn", "vdn = 1", at(10, 0), "anstime"), 16);
        assert_eq!(item(&db, "htkgrp", "tkgrp = 1", at(10, 0), "intime"), 376);
        // The second call: connected at 10:20:10, cut by the restart at 10:25:00.
        assert_eq!(ag("i_acdtime", 10, 15), 290);
    }
    // A (there all along) and B (away, then resumed) hold the same intervals.
    let sums = |c: &Collector| -> Vec<(i64, String, String)> {
        let db = open(&c.db_path()).unwrap();
        let mut q = db
            .prepare("SELECT istart, status, checksum FROM interval_status WHERE acd = 1 AND istart <= ?1 ORDER BY istart")
            .unwrap();
        q.query_map([t(10, 45, 0) / 1000], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    let (sa, sb) = (sums(a2), sums(b2));
    assert!(sa.len() >= 5, "{sa:?}");
    assert_eq!(sa, sb);
    a.stop();
    b.stop();
}

/// `--queues-conf`: a queue only queues.conf names, its `servicelevel` and `wrapuptime`
/// (from a template) book the call's service level and the member's ACW; the mapping
/// sets neither. The queue's name is not a number: it is the first automatic skill.
/// `log_membername_as_agent` makes Asterisk log the member by its name (Carol) in
/// ADDMEMBER too.
#[test]
fn queues_conf_wrapuptime_is_the_acw() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("asterisk.toml"),
        "periods = [5, 10, 20, 30, 40, 50, 60, 120, 180]\n",
    )
    .unwrap();
    let conf = d.join("queues.conf");
    std::fs::write(
        &conf,
        "[general]\n\
         persistentmembers = yes\n\
         log_membername_as_agent = yes\n\
         #include queues_custom.conf\n\
         [agents](!)\n\
         wrapuptime = 60 ; the ACW\n\
         strategy = ringall\n\
         [support](agents)\n\
         servicelevel => 20\n\
         member => PJSIP/100,0,Carol\n",
    )
    .unwrap();
    let log = d.join("queue_log");
    append(
        &log,
        &[
            format!("{}|NONE|support|Carol|ADDMEMBER|", s(9, 50, 0)),
            format!(
                "{}|1762077480.7|support|NONE|ENTERQUEUE||5550100|1",
                s(9, 58, 0)
            ),
            format!(
                "{}|1762077480.7|support|Carol|CONNECT|16|1762077492.8|4",
                s(9, 58, 16)
            ),
            format!(
                "{}|1762077480.7|support|Carol|COMPLETECALLER|16|360|1",
                s(10, 4, 16)
            ),
            // Moves the log's time past 10:15, so 10:00 closes.
            format!("{}|NONE|support|Carol|PAUSE|", s(10, 20, 0)),
        ],
    );
    let bridge = Bridge::start_with(
        d,
        "127.0.0.1:0",
        "127.0.0.1:0",
        &["--queues-conf".as_ref(), conf.as_os_str()],
    );
    let log_text = bridge.log();
    assert!(
        log_text.contains("#include queues_custom.conf not followed"),
        "{log_text}"
    );
    let (pa, _) = bridge.ports();
    let mut a = Collector::start_as("ast-qc", pa);
    wait_closed(&a, t(10, 0, 0), &bridge);
    let db = open(&a.db_path()).unwrap();
    let sp = |col: &str| item(&db, "hsplit", "split = 60001", t(10, 0, 0), col);
    assert_eq!(sp("acdcalls"), 1, "{}", a.log());
    assert_eq!(sp("acceptable"), 1);
    assert_eq!(sp("acwtime"), 60);
    // Carol is PJSIP/100: agent 100, not an automatic number.
    let ag = |col: &str| {
        item(
            &db,
            "hagent",
            "agent = 100 AND split = 60001",
            t(10, 0, 0),
            col,
        )
    };
    assert_eq!(ag("i_acwtime"), 60);
    assert_eq!(ag("i_acdtime"), 256);
    a.stop();
}

/// A queues.conf the bridge cannot use: exit 2 naming the file, the line and the reason,
/// and nothing started (no state directory, no index).
#[test]
fn a_bad_queues_conf_stops_the_bridge_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = d.join("queues.conf");
    std::fs::write(
        &conf,
        "[support]\nstrategy = ringall\nwrapuptime = 1 minute\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cms-asterisk"))
        .arg("--log")
        .arg(d.join("queue_log"))
        .arg("--queues-conf")
        .arg(&conf)
        .arg("--state-dir")
        .arg(d.join("state"))
        .args(["--listen", "A=127.0.0.1:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "cms-asterisk: {}: line 3: wrapuptime = \"1 minute\": not a number of seconds",
            conf.display()
        )),
        "{err}"
    );
    assert!(!d.join("state").exists());
}
