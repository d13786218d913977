//! A real `cms-linksim` process and a pair of real collectors on loopback, and the checks
//! that compare what the collectors stored with the simulator's ground truth.

use super::collector::{open, Collector};
use super::wait::until;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn profile_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("profiles")
        .join(format!("{name}.toml"))
}

/// The profile's IANA zone: the collectors must use the switch site's clock.
pub fn profile_tz(name: &str) -> String {
    let text = std::fs::read_to_string(profile_path(name)).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    v["time_zone"].as_str().unwrap().to_string()
}

pub struct Sim {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub ports: BTreeMap<String, u16>,
}

impl Sim {
    /// Starts `cms-linksim` with links A and B on free loopback ports, the truth in
    /// `truth.db`, and `args`; waits (bounded) for its port file.
    pub fn start(profile: &str, args: &[&str]) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("sim.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cms-linksim"))
            .arg("--profile")
            .arg(profile_path(profile))
            .args(["--listen", "A=127.0.0.1:0", "--listen", "B=127.0.0.1:0"])
            .arg("--truth")
            .arg(dir.path().join("truth.db"))
            .arg("--port-file")
            .arg(dir.path().join("ports.json"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut sim = Sim {
            child: Some(child),
            dir,
            ports: BTreeMap::new(),
        };
        sim.ports = until(
            Duration::from_secs(20),
            || format!("cms-linksim's port file:\n{}", sim.log()),
            || {
                let text = std::fs::read_to_string(sim.dir.path().join("ports.json")).ok()?;
                let p = serde_json::from_str::<BTreeMap<String, u16>>(&text).ok()?;
                (p.len() == 2).then_some(p)
            },
        );
        sim
    }
    pub fn addr(&self, link: &str) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports[link]))
    }
    pub fn truth(&self) -> PathBuf {
        self.dir.path().join("truth.db")
    }
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sim.log")).unwrap_or_default()
    }
    /// Waits for the simulator to finish (it exits once the collectors acknowledged the
    /// last event, or after its drain timeout).
    pub fn wait(&mut self, limit: Duration) {
        // Taken only once it has exited: until then Drop kills it if the wait fails.
        let child = self.child.as_mut().expect("running");
        let log = self.dir.path().join("sim.log");
        let st = until(
            limit,
            || {
                let log = std::fs::read_to_string(log).unwrap_or_default();
                format!("cms-linksim to finish:\n{log}")
            },
            || child.try_wait().unwrap(),
        );
        self.child = None;
        assert!(st.success(), "cms-linksim exited {st:?}:\n{}", self.log());
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A simulator and two collectors, A on link A and B on link B.
pub struct Pair {
    pub sim: Sim,
    pub a: Collector,
    pub b: Collector,
}

impl Pair {
    /// Starts the simulator (`args` added; it waits for both links) and both collectors,
    /// runs to the end, and stops the collectors.
    pub fn run(profile: &str, args: &[&str]) -> Pair {
        let mut p = Pair::start(profile, args, "");
        p.finish();
        p
    }

    pub fn start(profile: &str, args: &[&str], extra_config: &str) -> Pair {
        Pair::start_with(profile, args, extra_config, extra_config)
    }

    /// As [`Pair::start`], with extra configuration lines for A and for B.
    pub fn start_with(profile: &str, args: &[&str], extra_a: &str, extra_b: &str) -> Pair {
        let mut all = vec!["--wait-links", "2"];
        all.extend_from_slice(args);
        Pair::on(Sim::start(profile, &all), profile, extra_a, extra_b)
    }

    /// Both collectors, configured with the extra lines and started, on a running `sim`.
    pub fn on(sim: Sim, profile: &str, extra_a: &str, extra_b: &str) -> Pair {
        let (mut a, mut b) = Pair::configure(&sim, profile, extra_a, extra_b);
        a.spawn();
        b.spawn();
        Pair { sim, a, b }
    }

    /// The two collectors' configurations (server ids `srv-a` and `srv-b`, the profile's
    /// zone, the extra lines), not started.
    pub fn configure(
        sim: &Sim,
        profile: &str,
        extra_a: &str,
        extra_b: &str,
    ) -> (Collector, Collector) {
        let tz = profile_tz(profile);
        let a = Collector::configure_full("srv-a", sim.addr("A"), &tz, extra_a);
        let b = Collector::configure_full("srv-b", sim.addr("B"), &tz, extra_b);
        (a, b)
    }

    pub fn finish(&mut self) {
        self.sim.wait(Duration::from_secs(240));
        self.a.stop();
        self.b.stop();
    }
}

/// Interval statuses of ACD 1: istart -> (status, reasons).
pub fn statuses(db: &Path) -> BTreeMap<i64, (String, String)> {
    let c = open(db).unwrap();
    let mut st = c
        .prepare("SELECT istart, status, reasons FROM interval_status WHERE acd = 1")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// (status, source) of the ACD 1 intervals starting in `from..to` (UTC s): where each
/// came from (`collected`, `restored:SERVER`).
pub fn sources(db: &Path, from: i64, to: i64) -> BTreeMap<i64, (String, String)> {
    let c = open(db).unwrap();
    let mut st = c
        .prepare(
            "SELECT istart, status, source FROM interval_status \
             WHERE acd = 1 AND istart >= ?1 AND istart < ?2",
        )
        .unwrap();
    st.query_map([from, to], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// What a collector's database looks like next to the truth.
#[derive(Debug)]
pub struct Verdict {
    pub complete: usize,
    /// (istart, reasons) of the intervals the collector marked incomplete.
    pub incomplete: Vec<(i64, String)>,
    /// Truth intervals the collector has no status row for.
    pub missing: Vec<i64>,
    /// Intervals complete here that the truth leaves undefined (clock changes): not
    /// comparable.
    pub undefined_in_truth: Vec<i64>,
}

/// The promise: every interval the collector marks complete equals the truth item by
/// item (truth intervals left undefined by a clock change are skipped).
///
/// # Panics
/// On the first differences, naming interval, table, key and item.
pub fn check_against_truth(db: &Path, truth: &Path) -> Verdict {
    let mine = statuses(db);
    let theirs = statuses(truth);
    let a = open(db).unwrap();
    let t = open(truth).unwrap();
    let diffs = cms::report::compare(&a, &t, 1, i64::MIN, i64::MAX, false).unwrap();
    assert!(
        diffs.is_empty(),
        "{}: {} differences from the truth, first: {:#?}",
        db.display(),
        diffs.len(),
        &diffs[..diffs.len().min(5)]
    );
    let mut v = Verdict {
        complete: 0,
        incomplete: vec![],
        missing: vec![],
        undefined_in_truth: vec![],
    };
    for (istart, (st, _)) in &theirs {
        match mine.get(istart) {
            None => v.missing.push(*istart),
            Some((s, _)) if s == "complete" => {
                if st == "complete" {
                    v.complete += 1;
                } else {
                    v.undefined_in_truth.push(*istart);
                }
            }
            Some((_, r)) => v.incomplete.push((*istart, r.clone())),
        }
    }
    v
}

/// UTC seconds of a local date-time (`YYYY-MM-DDTHH:MM`) in the profile's zone.
pub fn local_ts(profile: &str, s: &str) -> i64 {
    use chrono::TimeZone;
    let tz: chrono_tz::Tz = profile_tz(profile).parse().unwrap();
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap();
    tz.from_local_datetime(&naive)
        .earliest()
        .unwrap()
        .timestamp()
}

/// Waits (bounded) until the collector's checkpoint has reached switch time `ts` (UTC s).
pub fn wait_switch_time(c: &Collector, ts: i64, limit: Duration) {
    until(
        limit,
        || format!("{}: switch time {ts}\n{}", c.db_path().display(), c.log()),
        || {
            let db = open(&c.db_path()).ok()?;
            let got: i64 = db
                .query_row("SELECT ts FROM checkpoint WHERE acd = 1", [], |r| r.get(0))
                .ok()?;
            (got >= ts * 1000).then_some(())
        },
    )
}

/// Waits (bounded) until the simulator's clock has reached `ts` (UTC s, the end of a
/// truth interval): the truth holds the interval that ends there, written when the
/// switch closed it. For a wait while no collector runs.
pub fn wait_truth_time(sim: &Sim, ts: i64, limit: Duration) {
    until(
        limit,
        || format!("the switch's clock to reach {ts}:\n{}", sim.log()),
        || {
            let db = open(&sim.truth()).ok()?;
            let end: i64 = db
                .query_row(
                    "SELECT MAX(istart + intrvl * 60) FROM interval_status WHERE acd = 1",
                    [],
                    |r| r.get(0),
                )
                .ok()?;
            (end >= ts).then_some(())
        },
    )
}

/// Promise 5 at the end of a pair scenario: both servers hold all `intervals` of the
/// run complete, each equal to the truth, sound, and identical to each other.
///
/// # Panics
/// Naming the server, what is incomplete or missing, and its log.
pub fn assert_pair_true(a: &Collector, b: &Collector, truth: &Path, intervals: usize) {
    for (who, c) in [("A", a), ("B", b)] {
        let v = check_against_truth(&c.db_path(), truth);
        assert!(
            v.incomplete.is_empty() && v.missing.is_empty(),
            "{who}: incomplete {:?} missing {:?}\n{}",
            v.incomplete,
            v.missing,
            c.log()
        );
        assert_eq!(v.complete, intervals, "{who}");
        assert_integrity(&c.db_path());
    }
    assert_identical(&a.db_path(), &b.db_path());
}

/// `PRAGMA integrity_check` of a database must say ok.
pub fn assert_integrity(db: &Path) {
    let c = open(db).unwrap();
    let r: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(r, "ok", "{}", db.display());
}

/// Runs `cms` with this collector's config; panics unless it exits with `code`.
pub fn cms_expect(c: &Collector, args: &[&str], code: i32) -> String {
    let (got, out) = c.cms(args);
    assert_eq!(got, code, "cms {args:?}:\n{out}");
    out
}

/// Both databases hold the same intervals, complete in the same places (strict).
pub fn assert_identical(a: &Path, b: &Path) {
    let ca = open(a).unwrap();
    let cb = open(b).unwrap();
    let d = cms::report::compare(&ca, &cb, 1, i64::MIN, i64::MAX, true).unwrap();
    assert!(
        d.is_empty(),
        "{} and {} differ ({}): {:#?}",
        a.display(),
        b.display(),
        d.len(),
        &d[..d.len().min(5)]
    );
}

/// The collector and the truth hold the same intervals, each with the same status and
/// reasons (for a run whose only faults are clock changes, which the truth sees too:
/// nothing else can make the collector's statuses differ).
///
/// # Panics
/// Listing every interval only one of them holds, and every interval whose status or
/// reasons differ.
pub fn assert_statuses_equal(db: &Path, truth: &Path) {
    let mine = statuses(db);
    let theirs = statuses(truth);
    let istarts: std::collections::BTreeSet<&i64> = mine.keys().chain(theirs.keys()).collect();
    let differ: Vec<String> = istarts
        .into_iter()
        .filter_map(|istart| match (mine.get(istart), theirs.get(istart)) {
            (Some(m), Some(t)) if m == t => None,
            (Some(m), Some(t)) => Some(format!("{istart}: {m:?} here, {t:?} in the truth")),
            (Some(m), None) => Some(format!("{istart}: {m:?} here, not in the truth")),
            (None, t) => Some(format!("{istart}: missing here, {t:?} in the truth")),
        })
        .collect();
    assert!(
        differ.is_empty(),
        "{}: statuses differ from the truth:\n{}",
        db.display(),
        differ.join("\n")
    );
}
