//! `cms site-key init` and `show` through the real binary: the key the Windows installer
//! creates at install (packaging/wix/cms.wxs runs `init`), here on the host's platform.
//! Under Wine, with the real MSI, packaging/ci/wine-msi-test.sh checks the same and the
//! key's Windows DACL.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `cms --config DIR/cms.toml ARGS`, where `cms.toml` holds `site_key_line`.
fn cms_in(dir: &Path, site_key_line: &str, args: &[&str]) -> Output {
    let toml = dir.join("cms.toml");
    std::fs::write(
        &toml,
        format!(
            "data_dir = \"data\"\n{site_key_line}\n[[acd]]\nid = 1\nswitch = \"127.0.0.1:9\"\n"
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_cms"))
        .arg("--config")
        .arg(&toml)
        .args(args)
        .env_remove("CMS_CONFIG")
        .output()
        .unwrap()
}

/// stdout of a run that must succeed.
fn ok(o: Output) -> String {
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

#[test]
fn init_creates_the_configured_key_once_and_check_config_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let line = "site_key_file = \"site.key\"";
    let key = dir.path().join("site.key");

    // Before: the named key is missing, and the start gate says so.
    let before = cms_in(dir.path(), line, &["check-config"]);
    assert_eq!(before.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&before.stderr).contains("site.key"));

    let created = ok(cms_in(dir.path(), line, &["site-key", "init"]));
    assert!(created.starts_with("created site key "), "{created}");
    assert!(created.contains(&key.display().to_string()), "{created}");
    let bytes = std::fs::read(&key).unwrap();
    assert_eq!(bytes.len(), 97, "96 hex digits and a newline: {bytes:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    let checked = ok(cms_in(dir.path(), line, &["check-config"]));
    assert!(checked.contains("(backups authenticated)"), "{checked}");

    // `show` names the key by the id a backup's MAC error would print, computed here
    // from the file's bytes.
    let id = cms::archive::key_id(&cms::archive::site_key_from_key_file(&bytes).unwrap());
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let shown = ok(cms_in(dir.path(), line, &["site-key", "show"]));
    assert!(
        shown.contains(&format!("key id {id}")),
        "{shown}\nwant key id {id}"
    );

    // A second init (a repair or upgrade of the MSI runs it again) keeps the key.
    let again = ok(cms_in(dir.path(), line, &["site-key", "init"]));
    assert!(again.contains("exists: kept"), "{again}");
    assert_eq!(std::fs::read(&key).unwrap(), bytes);
}

#[test]
fn init_keeps_a_key_copied_from_the_peer() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("peer.key");
    let peer = b"0123456789abcdef0123456789abcdef0123456789abcdef\n";
    std::fs::write(&key, peer).unwrap();
    let out = ok(cms_in(
        dir.path(),
        "site_key_file = \"peer.key\"",
        &["site-key", "init"],
    ));
    assert!(out.contains("exists: kept"), "{out}");
    assert_eq!(std::fs::read(&key).unwrap(), peer);
}

#[test]
fn init_without_site_key_file_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(cms_in(dir.path(), "", &["site-key", "init"]));
    assert!(out.contains("no site_key_file in "), "{out}");
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["cms.toml"]);
}

#[cfg(unix)]
#[test]
fn show_refuses_a_key_open_to_others_as_check_config_does() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let line = "site_key_file = \"site.key\"";
    ok(cms_in(dir.path(), line, &["site-key", "init"]));
    let key = dir.path().join("site.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = cms_in(dir.path(), line, &["site-key", "show"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("site.key") && err.contains("group or others"),
        "{err}"
    );
}
