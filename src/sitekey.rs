//! The site key file (`site_key_file`, the key that authenticates backups between the two
//! servers of a pair): `cms site-key init` creates one, `cms site-key show` says which key
//! a server holds and who may read the file.
//!
//! A new key is 48 random bytes written as hex (the `.deb`'s postinst writes the same),
//! private to the service from the moment the file exists (0600 on Unix; on Windows a
//! protected DACL for SYSTEM, the service account, and Administrators), and published
//! under its name only when it is whole. An existing file is never replaced: it may be the
//! peer's key, copied here as `docs/operations.md` says. The Windows installer runs
//! `cms site-key init` as a custom action (`packaging/wix/cms.wxs`); the `.deb` creates
//! its key in `packaging/deb/postinst`.
//!
//! Not responsible for reading or checking a key (that is
//! [`crate::config::Config::site_key`], which every command using the key calls) nor for
//! turning its bytes into the archive's key ([`crate::archive::site_key_from_key_file`]).

use crate::config::Config;
use anyhow::Context;
use rand::RngCore;
use std::io::Write;
use std::path::Path;

/// Random bytes in a new key file, written as 96 lowercase hex digits and a newline: well
/// above [`crate::archive::MIN_KEY_FILE_LEN`], and the same as the `.deb` creates.
pub const NEW_KEY_BYTES: usize = 48;

/// The DACL of a key file `init` creates on Windows, in SDDL: protected (nothing inherited
/// from `C:\ProgramData\cms`, whose ACL lets Users read the configuration), full control
/// for SYSTEM (the account the service runs as) and for Administrators, no one else.
#[cfg(windows)]
pub const KEY_FILE_SDDL: &str = "D:P(A;;FA;;;SY)(A;;FA;;;BA)";

/// `cms site-key ...`.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create the file site_key_file names (48 random bytes as hex, readable by the
    /// service account only) if there is none; an existing file is never replaced. Copy
    /// the file to the other server of the pair (docs/operations.md).
    Init,
    /// Which key site_key_file holds (its key id, as a backup's MAC error names it: the
    /// two servers of a pair show the same) and who may read the file.
    Show,
}

/// What [`create_key_file`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    /// A new random key is in the file.
    New,
    /// A file was there already and is left as it was.
    Kept,
}

/// Runs `cms site-key CMD` on the key `cfg` names and returns its report.
///
/// # Errors
/// `init`: the key file cannot be created (the message names it). `show`: the key is
/// unusable, as [`Config::site_key`] says.
pub fn run(cfg: &Config, cmd: &Command) -> anyhow::Result<String> {
    let Some(path) = &cfg.site_key_file else {
        return Ok(format!(
            "no site_key_file in {}: no site key, backups are not authenticated\n",
            cfg.origin()
        ));
    };
    match cmd {
        Command::Init => Ok(match create_key_file(path)? {
            Created::New => format!(
                "created site key {}; copy it to the other server of the pair \
                 (docs/operations.md)\n",
                path.display()
            ),
            Created::Kept => format!(
                "site key {} exists: kept (cms check-config checks it)\n",
                path.display()
            ),
        }),
        Command::Show => {
            let key = cfg
                .site_key()?
                .context("site_key_file is set but no key was read")?;
            Ok(format!(
                "site key {}\n  key id {}\n  access {}\n",
                path.display(),
                hex(&crate::archive::key_id(&key)),
                access(path).with_context(|| format!("{}: cannot read access", path.display()))?
            ))
        }
    }
}

/// Creates the key file `path` with a new random key unless a file (or a link) is there.
///
/// The key is written to `.NAME.new` beside it, created private, synced, then hard-linked
/// to `path`: the link either publishes the whole key or fails because a file appeared
/// meanwhile, so no one ever sees a half-written key and no key is ever replaced.
///
/// # Errors
/// The folder does not exist or may not be written, or the disk is full; the message
/// names the file.
pub fn create_key_file(path: &Path) -> anyhow::Result<Created> {
    if std::fs::symlink_metadata(path).is_ok() {
        return Ok(Created::Kept);
    }
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(".{}.new", name.to_string_lossy()));
    // What an `init` killed before its link left behind: ours by its name, never a key.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("{}: cannot remove", tmp.display()));
        }
        _ => {}
    }
    let mut material = [0u8; NEW_KEY_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut material);
    let text = format!("{}\n", hex(&material));
    let written = create_private(&tmp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    let linked = written
        .with_context(|| format!("{}: cannot write the new site key", tmp.display()))
        .and_then(|()| match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(Created::New),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Created::Kept),
            Err(e) => Err(e).with_context(|| format!("{}: cannot create", path.display())),
        });
    let _ = std::fs::remove_file(&tmp);
    // The new name durable too (Windows has no directory handle to sync).
    #[cfg(unix)]
    {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    linked
}

/// Lowercase hex, two digits a byte: the key file's text, and key ids as the archive's
/// MAC errors print them.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Creates `p` (which must not exist) readable and writable by its owner only.
#[cfg(unix)]
fn create_private(p: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
}

/// Creates `p` (which must not exist) with the DACL [`KEY_FILE_SDDL`], set by the call
/// that creates it: there is no moment at which the folder's inherited ACL applies.
#[cfg(windows)]
fn create_private(p: &Path) -> std::io::Result<std::fs::File> {
    use std::os::windows::io::FromRawHandle;
    use windows_sys::Win32::Foundation::{LocalFree, GENERIC_WRITE, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::Security::Authorization::{
        ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
    };
    use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
    use windows_sys::Win32::Storage::FileSystem::{CreateFileW, CREATE_NEW, FILE_ATTRIBUTE_NORMAL};
    let sddl = wide(std::ffi::OsStr::new(KEY_FILE_SDDL));
    let mut sd = std::ptr::null_mut();
    // SAFETY: sddl is NUL-terminated; sd receives a descriptor LocalAlloc'd by the call
    // and freed below.
    let ok = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            sddl.as_ptr(),
            SDDL_REVISION_1,
            &mut sd,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(std::io::Error::last_os_error());
    }
    let sa = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd,
        bInheritHandle: 0,
    };
    let name = wide(p.as_os_str());
    // SAFETY: name is NUL-terminated; sa and the descriptor it points to outlive the call.
    let h = unsafe {
        CreateFileW(
            name.as_ptr(),
            GENERIC_WRITE,
            0,
            &sa,
            CREATE_NEW,
            FILE_ATTRIBUTE_NORMAL,
            std::ptr::null_mut(),
        )
    };
    let err = std::io::Error::last_os_error();
    // SAFETY: sd came from the conversion above and is not used after this.
    unsafe { LocalFree(sd) };
    if h == INVALID_HANDLE_VALUE {
        return Err(err);
    }
    // SAFETY: h is a file handle this function owns and hands over to the File.
    Ok(unsafe { std::fs::File::from_raw_handle(h) })
}

/// A NUL-terminated UTF-16 copy of `s`, for the Windows API.
#[cfg(windows)]
fn wide(s: &std::ffi::OsStr) -> Vec<u16> {
    use std::os::windows::ffi::OsStrExt;
    s.encode_wide().chain(Some(0)).collect()
}

/// Who may read `p`: its mode and owner on Unix.
///
/// # Errors
/// `p` cannot be read.
#[cfg(unix)]
pub fn access(p: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(p)?;
    Ok(format!(
        "mode {:04o}, owner uid {}",
        md.mode() & 0o7777,
        md.uid()
    ))
}

/// Who may read `p`: its DACL in SDDL (`D:P(A;;FA;;;SY)(A;;FA;;;BA)`: protected, SYSTEM
/// and Administrators only), as Windows reports it.
///
/// # Errors
/// `p` or its security descriptor cannot be read.
#[cfg(windows)]
pub fn access(p: &Path) -> std::io::Result<String> {
    use windows_sys::Win32::Foundation::LocalFree;
    use windows_sys::Win32::Security::Authorization::{
        ConvertSecurityDescriptorToStringSecurityDescriptorW, GetNamedSecurityInfoW,
        SDDL_REVISION_1, SE_FILE_OBJECT,
    };
    use windows_sys::Win32::Security::DACL_SECURITY_INFORMATION;
    let name = wide(p.as_os_str());
    let mut sd = std::ptr::null_mut();
    // SAFETY: name is NUL-terminated; the out-pointers we do not want are null, which the
    // call allows; sd receives a LocalAlloc'd descriptor freed below.
    let rc = unsafe {
        GetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut sd,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc as i32));
    }
    let mut text = std::ptr::null_mut();
    let mut len = 0u32;
    // SAFETY: sd is the descriptor read above; text receives a LocalAlloc'd string of
    // len UTF-16 units, freed below.
    let ok = unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(
            sd,
            SDDL_REVISION_1,
            DACL_SECURITY_INFORMATION,
            &mut text,
            &mut len,
        )
    };
    let out = if ok == 0 {
        Err(std::io::Error::last_os_error())
    } else {
        // SAFETY: the call wrote len UTF-16 units at text.
        let units = unsafe { std::slice::from_raw_parts(text, len as usize) };
        Ok(String::from_utf16_lossy(units)
            .trim_end_matches('\0')
            .to_string())
    };
    // SAFETY: both came from the calls above and are not used after this.
    unsafe {
        LocalFree(text.cast());
        LocalFree(sd);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn a_new_key_is_random_hex_private_and_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.key"), dir.path().join("b.key"));
        assert_eq!(create_key_file(&a).unwrap(), Created::New);
        assert_eq!(create_key_file(&b).unwrap(), Created::New);
        let text = read(&a);
        let hex = text.strip_suffix('\n').expect("ends in a newline");
        assert_eq!(hex.len(), 2 * NEW_KEY_BYTES, "{text:?}");
        assert!(hex
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_ne!(text, read(&b), "two new keys are the same");
        crate::archive::site_key_from_key_file(text.as_bytes()).unwrap();
        // Only the two keys: no temporary file left beside them.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        #[cfg(unix)]
        assert!(
            access(&a).unwrap().starts_with("mode 0600,"),
            "{}",
            access(&a).unwrap()
        );
        // Windows reports KEY_FILE_SDDL. Wine (the packaging CI) stores no descriptor,
        // only the Unix mode it maps the DACL to, and reports a DACL made from that mode
        // (SYSTEM and its one user): so check what both must show, that no group of
        // other accounts (Everyone, Users, Authenticated Users, Interactive) is let in.
        #[cfg(windows)]
        {
            let dacl = access(&a).unwrap();
            let trustees: Vec<&str> = dacl
                .split('(')
                .skip(1)
                .filter_map(|ace| ace.trim_end_matches(')').rsplit(';').next())
                .collect();
            assert!(trustees.contains(&"SY"), "{dacl}");
            for t in ["WD", "BU", "AU", "IU"] {
                assert!(!trustees.contains(&t), "{t} may open the key: {dacl}");
            }
        }
    }

    #[test]
    fn an_existing_file_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("site.key");
        std::fs::write(&p, "the peer's key, copied here\n").unwrap();
        assert_eq!(create_key_file(&p).unwrap(), Created::Kept);
        assert_eq!(read(&p), "the peer's key, copied here\n");
    }

    #[test]
    fn what_a_killed_init_left_is_not_in_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("site.key");
        std::fs::write(dir.path().join(".site.key.new"), "half a k").unwrap();
        assert_eq!(create_key_file(&p).unwrap(), Created::New);
        crate::archive::site_key_from_key_file(read(&p).as_bytes()).unwrap();
        assert!(!dir.path().join(".site.key.new").exists());
    }

    #[test]
    fn a_missing_folder_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no-such-folder").join("site.key");
        let e = format!("{:#}", create_key_file(&p).unwrap_err());
        assert!(e.contains("no-such-folder"), "{e}");
        assert!(!p.exists());
    }
}
