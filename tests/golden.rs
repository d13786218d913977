//! Golden outputs: the whole text of `cms status`, `cms status --json`, `cms gaps` and
//! `cms gaps --json` through the real binary, compared with the expected text below, on
//! a database a real `cms collect` filled from a real `cms-linksim` (issue #12 item 8).
//!
//! The collection is deterministic: the tiny profile with a fixed seed, start and
//! duration, and one fault, a clock set back 10 minutes at 08:50, which is the only fault
//! that leaves the same marks however fast the machine is (with clock changes as the only
//! faults a collector's statuses equal the truth's, which the fixture checks first).
//! What varies from run to run (the temporary directory, wall-clock times, the database
//! size) is replaced by [`normalize`], the one place that says what is not compared.
//!
//! Every case is checked and every mismatch reported (with the whole output) before the
//! test fails, so one changed word does not hide another.

mod common;

use common::collector::Collector;
use common::sim::{assert_statuses_equal, profile_tz, Sim};
use std::path::Path;
use std::time::Duration;

const PROFILE: &str = "tiny";

/// Replaces what differs between runs of the same collection, and only that:
/// - the collector's temporary directory (in the database path) -> `[DIR]`;
/// - UTC wall-clock times `YYYY-MM-DDTHH:MM:SSZ` (when the link state last changed) ->
///   `[UTC]`;
/// - the age of the checkpoint (`checkpoint N s ago`, `"checkpoint_age_seconds": N`) ->
///   `[AGE]`;
/// - the database size (`(N.N MB)`, `"database_bytes": N`) -> `[SIZE]`.
///
/// Switch times (interval starts in the site's zone), counts, sequence numbers, reasons
/// and every word stay as printed.
fn normalize(text: &str, dir: &Path) -> String {
    let mut t = text.replace(&dir.display().to_string(), "[DIR]");
    t = replace_utc_times(&t);
    for (after, with) in [
        ("checkpoint ", "[AGE]"),
        ("\"checkpoint_age_seconds\": ", "[AGE]"),
        ("cms.db (", "[SIZE]"),
        ("\"database_bytes\": ", "[SIZE]"),
    ] {
        t = replace_number_after(&t, after, with);
    }
    t
}

/// Every `YYYY-MM-DDTHH:MM:SSZ` -> `[UTC]`.
fn replace_utc_times(t: &str) -> String {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:ddZ";
    let b = t.as_bytes();
    let fits = |i: usize| {
        b.len() >= i + SHAPE.len()
            && SHAPE.iter().zip(&b[i..]).all(|(s, c)| match s {
                b'd' => c.is_ascii_digit(),
                s => s == c,
            })
    };
    let (mut out, mut i, mut from) = (String::new(), 0, 0);
    while i < b.len() {
        if fits(i) {
            out.push_str(&t[from..i]);
            out.push_str("[UTC]");
            i += SHAPE.len();
            from = i;
        } else {
            i += 1;
        }
    }
    out + &t[from..]
}

/// The number (digits, `.`, `-`) right after each `after` -> `with`; an `after` not
/// followed by a number (`checkpoint never`) stays.
fn replace_number_after(t: &str, after: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = t;
    while let Some(at) = rest.find(after) {
        let start = at + after.len();
        out.push_str(&rest[..start]);
        let n = rest[start..]
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
            .unwrap_or(rest.len() - start);
        if n > 0 {
            out.push_str(with);
        }
        rest = &rest[start + n..];
    }
    out + rest
}

/// The collection every golden output is rendered from: the simulator has finished and
/// the collector has stopped (`cms status` then shows the link `stopped`).
fn collect() -> (Sim, Collector) {
    let mut sim = Sim::start(
        PROFILE,
        &[
            "--wait-links",
            "1",
            "--seed",
            "5",
            "--start",
            "2026-11-03T08:00",
            "--duration",
            "2h",
            "--speed",
            "3600",
            "--faults",
            "clock@08:50=-10m",
        ],
    );
    // Retention far beyond the run's date, so purging never depends on today's date.
    let mut c = Collector::configure_full(
        "srv-a",
        sim.addr("A"),
        &profile_tz(PROFILE),
        "[retention]\nintrahour_days = 36525",
    );
    c.spawn();
    sim.wait(Duration::from_secs(120));
    c.stop();
    assert_statuses_equal(&c.db_path(), &sim.truth());
    (sim, c)
}

const STATUS: &str = concat!(
    "server srv-a  database [DIR]/data/cms.db ([SIZE] MB)\n",
    "ACD 1: link stopped since [UTC]\n",
    "  current interval 2026-11-03 09:45 GMT  last complete 2026-11-03 09:30 GMT  \
     epoch 7349495648492940180 seq 1512  checkpoint [AGE] s ago\n",
);

const STATUS_JSON: &str = r#"{
  "server_id": "srv-a",
  "configured_server_id": "srv-a",
  "database": "[DIR]/data/cms.db",
  "database_bytes": [SIZE],
  "acds": [
    {
      "acd": 1,
      "link_state": "stopped",
      "link_since": "[UTC]",
      "peer": "",
      "detail": "",
      "epoch": 7349495648492940180,
      "last_seq": 1512,
      "current_interval": "2026-11-03 09:45 GMT",
      "last_complete_interval": "2026-11-03 09:30 GMT",
      "checkpoint_age_seconds": [AGE]
    }
  ],
  "unfinished_restores": []
}
"#;

const GAPS: &str = concat!(
    "ACD 1: 1 interval missing or incomplete\n",
    "  2026-11-03 08:45 GMT .. 2026-11-03 09:00 GMT     1 interval   incomplete \
     call_across_gap,clock_change\n",
);

/// From the start of the day: the intervals before the collection began are missing.
const GAPS_FROM_MIDNIGHT: &str = concat!(
    "ACD 1: 33 intervals missing or incomplete\n",
    "  2026-11-03 00:00 GMT .. 2026-11-03 08:00 GMT    32 intervals  missing    \n",
    "  2026-11-03 08:45 GMT .. 2026-11-03 09:00 GMT     1 interval   incomplete \
     call_across_gap,clock_change\n",
);

const GAPS_JSON: &str = r#"[
  {
    "acd": 1,
    "from": 1793695500,
    "to": 1793696400,
    "from_local": "2026-11-03 08:45 GMT",
    "to_local": "2026-11-03 09:00 GMT",
    "intervals": 1,
    "kind": "incomplete",
    "reasons": "call_across_gap,clock_change"
  }
]
"#;

#[test]
fn status_and_gaps_print_their_golden_text() {
    let (_sim, c) = collect();
    let cases: [(&[&str], &str); 5] = [
        (&["status"], STATUS),
        (&["status", "--json"], STATUS_JSON),
        (&["gaps"], GAPS),
        (&["gaps", "--from", "2026-11-03"], GAPS_FROM_MIDNIGHT),
        (&["gaps", "--json"], GAPS_JSON),
    ];
    let mut failed = vec![];
    for (args, want) in cases {
        // Standard output and error together: anything on stderr is a difference.
        let (code, out) = c.cms(args);
        assert_eq!(code, 0, "cms {args:?}:\n{out}");
        let got = normalize(&out, c.dir.path());
        if got != want {
            failed.push(format!(
                "cms {}: expected\n{want}\n--- got (normalized) ---\n{got}\n---",
                args.join(" ")
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn normalize_replaces_only_what_varies() {
    let dir = Path::new("/tmp/.tmpAbC");
    let text = "server a  database /tmp/.tmpAbC/data/cms.db (0.3 MB)\n\
                ACD 1: link stopped since 2026-12-01T17:02:03Z\n  \
                current interval 2026-11-03 10:00 GMT  epoch 7 seq 12  checkpoint 4 s ago\n\
                checkpoint never\n\"checkpoint_age_seconds\": 12,\n\"database_bytes\": 331776,\n";
    assert_eq!(
        normalize(text, dir),
        "server a  database [DIR]/data/cms.db ([SIZE] MB)\n\
         ACD 1: link stopped since [UTC]\n  \
         current interval 2026-11-03 10:00 GMT  epoch 7 seq 12  checkpoint [AGE] s ago\n\
         checkpoint never\n\"checkpoint_age_seconds\": [AGE],\n\"database_bytes\": [SIZE],\n"
    );
}
