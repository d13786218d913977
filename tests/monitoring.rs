//! The monitoring endpoints of a real `cms collect` (issue #14, docs/metrics.md):
//! `/livez`, `/readyz` and the access rule, scraped over HTTP while `cms-linksim` feeds the
//! collector with scripted faults. Only loopback traffic: a collector bound to 0.0.0.0
//! is reached through 127.0.0.1.

mod common;

use common::collector::Collector;
use common::http::{get, get_basic, served_addr};
use common::sim::{profile_tz, Sim};
use common::wait::until;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const TOKEN: &str = "test-token-0123456789abcdef";

/// A collector of the tiny profile's zone on `switch`, HTTP on `http` (TOML lines).
fn collector(switch: std::net::SocketAddr, http: &str) -> Collector {
    let mut c = Collector::configure_full("mon-a", switch, &profile_tz("tiny"), http);
    c.spawn();
    c
}

/// The value of the sample `line` (metric name and labels as printed) in a scrape.
fn sample(text: &str, line: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
}

/// The sum of every sample of `name` (all label sets).
fn sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn scrape(addr: std::net::SocketAddr) -> String {
    let a = get(addr, "/metrics", None);
    assert_eq!(a.status, 200, "{a:?}");
    a.body
}

/// The number of events the simulator sent, from its summary line
/// ("cms-linksim: done: ... N events in S s ...").
fn sim_events(sim: &Sim) -> f64 {
    let log = sim.log();
    let line = log.lines().find(|l| l.contains("cms-linksim: done:"));
    let line = line.unwrap_or_else(|| panic!("no summary line:\n{log}"));
    let before = line.split(" events in ").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

/// `SELECT COUNT(*)` of the collector's interval_status rows with `status`.
fn db_intervals(c: &Collector, status: &str) -> f64 {
    let db = common::collector::open(&c.db_path()).unwrap();
    let n: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM interval_status WHERE acd = 1 AND status = ?1",
            [status],
            |r| r.get(0),
        )
        .unwrap();
    n as f64
}

const UP: &str = "cms_link_state{acd=\"1\",state=\"data_transfer\"}";
const RECONNECTS: &str = "cms_link_reconnects_total{acd=\"1\"}";

/// A link drop inside the replay buffer: `/readyz` turns 503 naming the ACD and back,
/// the link gauge leaves data transfer and comes back, the reconnect counter moves by
/// exactly one, and every event the simulator sent is counted once (its summary, and
/// the last sequence number the database holds).
#[test]
fn a_link_drop_moves_readyz_the_link_gauge_and_the_reconnects_and_every_event_counts() {
    // Switch time at 60x: the link is down from 10 to 20 minutes after the start, which
    // is 10 to 20 s of wall time after the collector's first session.
    let mut sim = Sim::start(
        "tiny",
        &[
            "--speed",
            "60",
            "--duration",
            "30m",
            "--wait-links",
            "1",
            "--faults",
            "A:down@+10m-+20m",
        ],
    );
    let c = collector(sim.addr("A"), "[http]\nlisten = \"127.0.0.1:0\"\n");
    let addr = served_addr(&c);
    assert_eq!(get(addr, "/livez", None).status, 200);
    let ready = |want: u16| {
        until(
            LIMIT,
            || format!("/readyz {want}\n{}\n{}", c.log(), sim.log()),
            || {
                let a = get(addr, "/readyz", None);
                (a.status == want).then_some(a.body)
            },
        )
    };
    let gauge = |want: f64| {
        until(
            LIMIT,
            || format!("{UP} = {want}\n{}", c.log()),
            || (sample(&scrape(addr), UP) == Some(want)).then_some(()),
        )
    };
    assert_eq!(ready(200), "ready\n");
    gauge(1.0);
    assert_eq!(sample(&scrape(addr), RECONNECTS), Some(0.0));
    let why = ready(503);
    assert!(why.starts_with("acd 1: link "), "{why}");
    gauge(0.0);
    assert_eq!(get(addr, "/livez", None).status, 200);
    assert_eq!(ready(200), "ready\n");
    gauge(1.0);
    sim.wait(LIMIT);
    let m = scrape(addr);
    assert_eq!(sample(&m, RECONNECTS), Some(1.0), "{m}");
    let events = sum(&m, "cms_events_received_total");
    assert_eq!(events, sim_events(&sim), "{m}");
    let db = common::collector::open(&c.db_path()).unwrap();
    let seq: i64 = db
        .query_row("SELECT seq FROM checkpoint WHERE acd = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(events, seq as f64);
    assert!(
        sample(
            &m,
            "cms_frames_received_total{acd=\"1\",type=\"heartbeat\"}"
        ) > Some(0.0)
    );
    assert_eq!(
        sample(
            &m,
            "cms_intervals_closed_total{acd=\"1\",status=\"complete\"}"
        ),
        Some(db_intervals(&c, "complete")),
        "{m}"
    );
    assert!(sample(&m, "cms_database_size_bytes") > Some(0.0), "{m}");
    assert!(m.contains("# TYPE cms_checkpoint_age_seconds gauge"), "{m}");
}

/// A link drop beyond the replay buffer: the pump-up makes intervals incomplete, and the
/// status counter equals the database's count of incomplete intervals, its reasons
/// the database's reasons; a garbage frame counts as malformed bad input and one more
/// reconnect.
#[test]
fn an_incomplete_interval_moves_the_status_counter_as_the_database_says() {
    let mut sim = Sim::start(
        "tiny",
        &[
            "--speed",
            "60",
            "--duration",
            "45m",
            "--wait-links",
            "1",
            "--buffer",
            "30",
            "--faults",
            "A:down@+10m-+25m,A:garbage@+35m",
        ],
    );
    let c = collector(sim.addr("A"), "[http]\nlisten = \"127.0.0.1:0\"\n");
    let addr = served_addr(&c);
    sim.wait(Duration::from_secs(120));
    let m = scrape(addr);
    let incomplete = db_intervals(&c, "incomplete");
    assert!(incomplete >= 1.0, "no incomplete interval\n{}", c.log());
    assert_eq!(
        sample(
            &m,
            "cms_intervals_closed_total{acd=\"1\",status=\"incomplete\"}"
        ),
        Some(incomplete),
        "{m}"
    );
    let db = common::collector::open(&c.db_path()).unwrap();
    let mut st = db
        .prepare("SELECT reasons, COUNT(*) FROM interval_status WHERE acd = 1 AND status = 'incomplete' GROUP BY reasons")
        .unwrap();
    let rows: Vec<(String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut by_reason = std::collections::BTreeMap::<String, f64>::new();
    for (reasons, n) in rows {
        for r in reasons.split(',').filter(|r| !r.is_empty()) {
            *by_reason.entry(r.to_string()).or_default() += n as f64;
        }
    }
    assert!(!by_reason.is_empty());
    for (r, n) in &by_reason {
        let line = format!("cms_incomplete_interval_reasons_total{{acd=\"1\",reason=\"{r}\"}}");
        assert_eq!(sample(&m, &line), Some(*n), "{line}\n{m}");
    }
    assert_eq!(
        sample(
            &m,
            "cms_bad_input_total{acd=\"1\",reason=\"malformed_frame\"}"
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(sample(&m, RECONNECTS), Some(2.0), "{m}");
}

/// On a non-loopback address every route but `/livez` needs the token.
#[test]
fn the_token_is_enforced_off_loopback() {
    // Nothing listens on port 9 of loopback: the link stays down, /readyz says so.
    let switch = "127.0.0.1:9".parse().unwrap();
    let http = format!("[http]\nlisten = \"0.0.0.0:0\"\ntoken = \"{TOKEN}\"\n");
    let c = collector(switch, &http);
    let addr = served_addr(&c);
    assert!(c.log().contains("bearer token required"), "{}", c.log());
    assert_eq!(get(addr, "/livez", None).status, 200);
    let none = get(addr, "/readyz", None);
    assert_eq!(none.status, 401, "{none:?}");
    let wrong = get(addr, "/readyz", Some("test-token-0123456789abcdeX"));
    assert_eq!(wrong.status, 401, "{wrong:?}");
    let right = get(addr, "/readyz", Some(TOKEN));
    assert_eq!(right.status, 503, "{right:?}");
    assert!(right.body.starts_with("acd 1: link "), "{right:?}");
    // A browser: the refusal offers Basic, and the token as the password opens the console.
    let refused = get(addr, "/", None);
    assert_eq!(refused.status, 401);
    assert!(
        refused
            .head
            .contains("www-authenticate: Basic realm=\"cms\""),
        "{refused:?}"
    );
    let page = get_basic(addr, "/", "supervisor", TOKEN);
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(
        get_basic(addr, "/", "supervisor", "not-the-token-0123").status,
        401
    );
}

/// A non-loopback `listen` without a token: `cms collect` refuses to start, naming the
/// file and the key, and creates nothing.
#[test]
fn collect_refuses_a_non_loopback_listen_without_a_token() {
    let switch = "127.0.0.1:9".parse().unwrap();
    let c = Collector::configure_full("mon-a", switch, "UTC", "[http]\nlisten = \"0.0.0.0:0\"\n");
    let (code, out) = c.cms(&["collect"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cms.toml"), "{out}");
    assert!(
        out.contains("http.listen = \"0.0.0.0:0\" is not a loopback address"),
        "{out}"
    );
    assert!(!c.dir.path().join("data").exists(), "{out}");
}

/// `log_format = "json"`: every line the collector writes is one JSON object with its
/// time, level and message, and the fields beside (the HTTP address it serves on).
#[test]
fn json_logs_are_one_object_per_line() {
    let switch = "127.0.0.1:9".parse().unwrap();
    let extra = "log_format = \"json\"\n[http]\nlisten = \"127.0.0.1:0\"\n";
    let mut c = Collector::configure_full("mon-a", switch, "UTC", extra);
    c.spawn();
    until(
        LIMIT,
        || format!("a connect failure in the log\n{}", c.log()),
        || c.log().contains("cannot connect").then_some(()),
    );
    c.stop();
    let log = c.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    for v in &lines {
        assert!(v["timestamp"].is_string(), "{v}");
        assert!(v["level"].is_string(), "{v}");
        assert!(v["fields"]["message"].is_string(), "{v}");
    }
    let message = |m: &str| {
        lines
            .iter()
            .find(|v| {
                v["fields"]["message"]
                    .as_str()
                    .is_some_and(|s| s.contains(m))
            })
            .unwrap_or_else(|| panic!("no {m:?} in\n{log}"))
    };
    message("cms collect starting");
    assert_eq!(message("collector ready")["fields"]["acd"], 1);
    assert_eq!(message("cannot connect")["level"], "WARN");
    message("stopped");
    let addr = message("serving HTTP")["fields"]["addr"].as_str().unwrap();
    assert!(addr.parse::<std::net::SocketAddr>().is_ok(), "{addr}");
}
