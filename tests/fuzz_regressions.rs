//! Every defect the fuzz targets found (`docs/fuzzing.md`), shown where an operator would
//! meet it, through the real `cms` binary, with the input as a byte literal. Each input is
//! also a seed in `fuzz/corpus/<target>/finding-*`, so the fuzz stage replays it.
//!
//! | finding | target | fixed in | test |
//! |---|---|---|---|
//! | a retention far beyond any calendar (`intrahour_days = 100000000`) passed `check-config` and made `cms collect` panic at the first midnight (chrono date overflow in the purge) | `config` | `src/config.rs`: every retention value bounded (100 years) | `retention_beyond_the_calendar_is_refused_by_check_config` |

mod common;

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
