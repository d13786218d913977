//! Every defect the fuzz targets found (`docs/fuzzing.md`), shown where an operator would
//! meet it, through the real `cms` binary, with the input as a byte literal. Each input is
//! also a seed in `fuzz/corpus/<target>/finding-*`, so the fuzz stage replays it.
//!
//! | finding | target | fixed in | test |
//! |---|---|---|---|
//! | a retention far beyond any calendar (`intrahour_days = 100000000`) passed `check-config` and made `cms collect` panic at the first midnight (chrono date overflow in the purge) | `config` | `src/config.rs`: every retention value bounded (100 years) | `retention_beyond_the_calendar_is_refused_by_check_config` |
//! | a PUMPUP_BEGIN with `as_of_seq = 2^64 - 1` and a WELCOME with `first_seq = 0`: `as_of_seq + 1` wrapped to 0 in the release build and the pump-up was accepted (the collector's last seq became 2^64 - 1, the next event "seq 0" passed as the one expected); with overflow checks, a panic | found while writing the `session` target (reading what it reaches); the target itself did not reproduce it on the hand-made input, reason not yet known | `src/link.rs`: `checked_add` | `pumpup_at_the_last_sequence_number_is_refused` |
//! | a HEARTBEAT 9 million years ahead hung the collector (it closed intervals one by one) | `session` | issue #10 item 2 (`hard-link`: every wire time bounded by this server's clock + 24 h) | `tests/collector.rs` (theirs); corpus `finding-heartbeat-9-million-years-ahead` |

mod common;

use cms::proto::StartMode;
use common::collector::{t, Collector};
use common::{Script, ScriptedSwitch};
use std::process::Command;

fn cms(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cms"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Found by the `config` target: `[retention] intrahour_days = 100000000` (and as much in
/// the other retention keys) was accepted, and the first daily purge computed a date
/// 270,000 years back and panicked, ending collection for the ACD. Now the loader refuses
/// it, naming the file and the key.
#[test]
fn retention_beyond_the_calendar_is_refused_by_check_config() {
    for (key, value) in [
        ("intrahour_days", "100000000"),
        ("daily_days", "4294967295"),
        ("weekly_weeks", "100000000"),
        ("monthly_months", "100000000"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("cms.toml");
        std::fs::write(&cfg, format!("[retention]\n{key} = {value}\n")).unwrap();
        let (code, out) = cms(
            dir.path(),
            &["--config", cfg.to_str().unwrap(), "check-config"],
        );
        assert_eq!(code, 1, "{key} = {value} accepted:\n{out}");
        assert!(
            out.contains(&cfg.display().to_string()) && out.contains(key),
            "the message names neither the file nor the key:\n{out}"
        );
    }
}

/// Found while writing the `session` target: WELCOME (pump-up, `first_seq` 0) and PUMPUP_BEGIN with
/// `as_of_seq` = 2^64 - 1. `first_seq != as_of_seq + 1` wrapped, so the handshake took it
/// for a well-formed pump-up and the collector went to data transfer with its last
/// sequence number at 2^64 - 1. Now it is refused twice over: the decoder refuses a
/// WELCOME `first_seq` of 0 (`proto/acd-link.md`, Limits: `InvalidValue`), and the
/// handshake compares `as_of_seq + 1` without wrapping. The session is dropped and the
/// log names the peer and the reason.
#[test]
fn pumpup_at_the_last_sequence_number_is_refused() {
    let sw = ScriptedSwitch::bind();
    let at = t(9, 0, 0);
    let mut frames = vec![common::welcome(
        0x0123_4567_89ab_cdef,
        StartMode::Pumpup,
        0,
        at,
    )];
    frames.extend(common::pumpup(u64::MAX, at, vec![]));
    sw.push(
        Script::new()
            .expect_hello()
            .send(frames)
            .expect_closed_within(std::time::Duration::from_secs(10)),
    );
    let mut c = Collector::start(sw.addr());
    let rec = sw.connection_blocking(0);
    c.stop();
    let log = c.log();
    rec.assert_ok();
    assert!(
        log.contains(&format!(
            "session ended: {}: protocol error: frame type 0x02: invalid first_seq value 0",
            sw.addr()
        )),
        "the log should name the peer and the reason:\n{log}"
    );
    assert!(rec.acks().is_empty(), "acknowledged {:?}", rec.acks());
}
