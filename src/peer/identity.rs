//! This server's peer identity: a self-signed certificate and its private key, made by
//! `cms peer init`, and the SHA-256 fingerprints that pin it (proto/peer-sync.md,
//! "Authentication").
//!
//! Owns the files (`key.pem` mode 0600, `cert.pem` beside it) and the fingerprint's
//! text form; not the TLS handshake (that is `peer::tls`).

use anyhow::{bail, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};

pub const KEY_FILE: &str = "key.pem";
pub const CERT_FILE: &str = "cert.pem";

/// A SHA-256 certificate fingerprint: what `peer_id` pins.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(cert_der: &[u8]) -> Fingerprint {
        let d = ring::digest::digest(&ring::digest::SHA256, cert_der);
        Fingerprint(d.as_ref().try_into().expect("SHA-256 is 32 bytes"))
    }

    /// Parses 64 hex digits, in either case, with any `:`, `-` or space between them
    /// (the form `cms peer init` prints is also what `openssl x509 -fingerprint -sha256`
    /// prints).
    ///
    /// # Errors
    /// Anything else, said plainly.
    pub fn parse(s: &str) -> Result<Fingerprint, String> {
        let digits: String = s
            .chars()
            .filter(|c| !matches!(c, ':' | '-' | ' '))
            .collect();
        if digits.len() != 64 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "{s:?} is not a peer id (64 hex digits, as `cms peer init` prints, e.g. \"AB:CD:...\")"
            ));
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).expect("hex checked");
        }
        Ok(Fingerprint(out))
    }
}

impl std::fmt::Display for Fingerprint {
    /// Upper-case hex pairs joined by `:` (as openssl prints a fingerprint).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A loaded identity: the certificate (DER), its key, and the fingerprint.
pub struct Identity {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    pub fingerprint: Fingerprint,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.fingerprint)
    }
}

/// Creates a new identity in `dir` (created 0700 if needed): an ECDSA P-256 key
/// (`key.pem`, 0600) and a self-signed certificate naming `server_id` (`cert.pem`).
/// Refuses to replace an existing identity unless `force`.
///
/// # Errors
/// An identity is already there (without `force`), or a file cannot be written; the
/// message names the file.
pub fn init(dir: &Path, server_id: &str, force: bool) -> anyhow::Result<Fingerprint> {
    let (key_path, cert_path) = (dir.join(KEY_FILE), dir.join(CERT_FILE));
    if !force {
        for p in [&key_path, &cert_path] {
            if p.exists() {
                bail!(
                    "{}: a peer identity is already there (its peer has it pinned): \
                     `cms peer init --force` replaces it, and then the peer's peer_id must \
                     be changed too",
                    p.display()
                );
            }
        }
    }
    crate::collect::ensure_data_dir(dir)?;
    let key = rcgen::KeyPair::generate().context("cannot generate a key pair")?;
    let mut params = rcgen::CertificateParams::new(vec!["cms-peer".to_string()])
        .context("cannot make the certificate parameters")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("cms peer {server_id}"));
    let cert = params
        .self_signed(&key)
        .context("cannot sign the certificate")?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    write_private(&cert_path, cert.pem().as_bytes())?;
    Ok(Fingerprint::of(cert.der()))
}

/// Writes `bytes` to `path` through a temporary file created 0600, synced and renamed.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("pem.tmp");
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o
        .open(&tmp)
        .with_context(|| format!("{}: cannot create", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("{}: cannot rename into place", path.display()))
}

/// Loads the identity in `dir`.
///
/// # Errors
/// A file is missing (the message says to run `cms peer init`), unreadable, not PEM, or
/// the key is readable by group or others (on Unix).
pub fn load(dir: &Path) -> anyhow::Result<Identity> {
    let (key_path, cert_path) = (dir.join(KEY_FILE), dir.join(CERT_FILE));
    let read = |p: &PathBuf| -> anyhow::Result<Vec<u8>> {
        std::fs::read(p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!(
                    "{}: no peer identity here: run `cms peer init` first",
                    p.display()
                )
            } else {
                anyhow::anyhow!("{}: cannot read: {e}", p.display())
            }
        })
    };
    #[cfg(unix)]
    if let Ok(m) = std::fs::metadata(&key_path) {
        use std::os::unix::fs::PermissionsExt;
        if m.permissions().mode() & 0o077 != 0 {
            bail!(
                "{}: the peer's private key is readable by others (mode {:o}): chmod 600 it",
                key_path.display(),
                m.permissions().mode() & 0o777
            );
        }
    }
    let cert = CertificateDer::from_pem_slice(&read(&cert_path)?)
        .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate: {e}", cert_path.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&read(&key_path)?)
        .map_err(|e| anyhow::anyhow!("{}: not a PEM private key: {e}", key_path.display()))?;
    let fingerprint = Fingerprint::of(&cert);
    Ok(Identity {
        cert,
        key,
        fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_text_round_trips_in_every_accepted_form() {
        let f = Fingerprint([0xab; 32]);
        let s = f.to_string();
        assert_eq!(s.len(), 95);
        assert_eq!(Fingerprint::parse(&s), Ok(f));
        assert_eq!(
            Fingerprint::parse(&s.to_lowercase().replace(':', "")),
            Ok(f)
        );
        assert!(Fingerprint::parse(&s[3..]).is_err());
        assert!(Fingerprint::parse(&s.replace("AB", "ZZ")).is_err());
    }

    #[test]
    fn init_refuses_to_overwrite_and_load_gives_the_same_fingerprint() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("peer");
        let f = init(&dir, "srv-a", false).unwrap();
        assert_eq!(load(&dir).unwrap().fingerprint, f);
        let e = init(&dir, "srv-a", false).unwrap_err().to_string();
        assert!(e.contains("already there"), "{e}");
        let g = init(&dir, "srv-a", true).unwrap();
        assert_ne!(f, g);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions();
            assert_eq!(m.mode() & 0o777, 0o600);
        }
    }
}
