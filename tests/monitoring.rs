//! The monitoring endpoints of a real `cms collect` (issue #14, docs/metrics.md):
//! `/livez`, `/readyz` and the access rule, scraped over HTTP while `cms-linksim` feeds the
//! collector with scripted faults. Only loopback traffic: a collector bound to 0.0.0.0
//! is reached through 127.0.0.1.

mod common;

use common::collector::Collector;
use common::http::{get, served_addr};
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

/// `/readyz` follows the link: 503 naming the ACD while the switch is down, 200 once
/// the link is in data transfer; `/livez` answers throughout.
#[test]
fn readyz_follows_the_link_and_livez_answers() {
    // Switch time at 60x: the link is down from 10 to 20 minutes after the start, which
    // is 10 to 20 s of wall time after the collector's first session.
    let sim = Sim::start(
        "tiny",
        &[
            "--speed",
            "60",
            "--duration",
            "40m",
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
    assert_eq!(ready(200), "ready\n");
    let why = ready(503);
    assert!(why.starts_with("acd 1: link "), "{why}");
    assert_eq!(get(addr, "/livez", None).status, 200);
    assert_eq!(ready(200), "ready\n");
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
