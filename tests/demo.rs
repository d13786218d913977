//! `cms demo` is the README's first quick-start command: it must tell the whole story
//! and pass its own checks (both servers identical and equal to the ground truth).

use std::process::Command;

#[test]
fn demo_runs_and_passes_its_checks() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_cms"))
        .args(["demo", "--dir"])
        .arg(&work)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for line in [
        "server A: ACD 1:",
        "intervals missing or incomplete",
        "server B: ACD 1: no missing or incomplete intervals",
        "replaced",
        "yes: A and B are identical",
        "yes: A equals the ground truth, item by item",
        "yes: B equals the ground truth, item by item",
        "Demo passed",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // A second run refuses a directory that is not empty rather than mixing results.
    let again = Command::new(env!("CARGO_BIN_EXE_cms"))
        .args(["demo", "--dir"])
        .arg(&work)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
}
