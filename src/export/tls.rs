//! TLS to the warehouse (docs/warehouse.md, "TLS"; issue #15): whether the URL's
//! `sslmode` and `--warehouse-ca` ask for it, the rustls client configuration that
//! verifies the server's certificate, and the reason a failed connection gives.
//!
//! Only `sslmode=require`, or `--warehouse-ca`, turns TLS on, and then the server's
//! certificate is always verified: against the CA file, else the system's root store.
//! That is stricter than libpq's `require` (which encrypts without verifying) on purpose:
//! an unverified certificate guards against nobody who can already intercept the
//! connection. Without either, the export speaks plaintext, as before TLS existed
//! (`prefer` included: there is no opportunistic, unverified TLS). The handshake itself
//! is `tokio-postgres-rustls`'s; this module does not speak to PostgreSQL.

use std::path::Path;
use std::sync::Arc;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// What a TLS connection trusts, as a message says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The certificates of `--warehouse-ca` (a private CA, or the server's own
    /// self-signed certificate).
    CaFile(String),
    /// The system's root store.
    System,
}

/// How the export reaches the warehouse.
pub enum Transport {
    /// No TLS: the URL asks for none (no `sslmode`, `disable` or `prefer`) and no CA.
    Plain,
    /// TLS required, the server's certificate verified against `trust`.
    Tls {
        connector: MakeRustlsConnect,
        trust: Trust,
    },
}

/// A reason the TLS set-up refuses, before anything is connected or written.
#[derive(Debug)]
pub enum SetupError {
    /// The arguments contradict each other (an exit 2 usage error).
    Usage(String),
    /// The CA file or the system's store cannot be used (the message names which).
    Trust(String),
}

/// Decides the transport from the URL's `sslmode` and `--warehouse-ca`, and sets `pg` to
/// require TLS when it is on (so that the client never falls back to plaintext).
///
/// # Errors
/// `--warehouse-ca` with `sslmode=disable`; the CA file cannot be read or holds no
/// usable certificate; no root certificate in the system's store.
pub fn transport(
    pg: &mut tokio_postgres::Config,
    ca: Option<&Path>,
) -> Result<Transport, SetupError> {
    let require = matches!(pg.get_ssl_mode(), SslMode::Require);
    match ca {
        Some(f) if matches!(pg.get_ssl_mode(), SslMode::Disable) => {
            Err(SetupError::Usage(format!(
                "--warehouse-ca {}: the URL says sslmode=disable, and a CA means TLS is required: drop one of them",
                f.display()
            )))
        }
        Some(f) => {
            pg.ssl_mode(SslMode::Require);
            let config = client_config(ca_roots(f)?);
            Ok(Transport::Tls {
                connector: MakeRustlsConnect::new(config),
                trust: Trust::CaFile(f.display().to_string()),
            })
        }
        None if require => Ok(Transport::Tls {
            connector: system_roots()?,
            trust: Trust::System,
        }),
        None => Ok(Transport::Plain),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring's default provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// The certificates of a PEM file as trust anchors.
fn ca_roots(f: &Path) -> Result<rustls::RootCertStore, SetupError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let bad = |why: String| SetupError::Trust(format!("--warehouse-ca {}: {why}", f.display()));
    let pem = std::fs::read(f).map_err(|e| bad(format!("cannot read: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    for (k, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let cert = cert.map_err(|e| bad(format!("certificate {} is not valid PEM: {e}", k + 1)))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("certificate {} is not usable as a CA: {e}", k + 1)))?;
    }
    if roots.is_empty() {
        return Err(bad(
            "no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(roots)
}

/// The system's root store (`rustls-native-certs`, through the adapter's constructor).
fn system_roots() -> Result<MakeRustlsConnect, SetupError> {
    // The adapter's constructor builds on the process's default provider: make it ring
    // (the only one compiled in) rather than rely on rustls picking it from its features.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match MakeRustlsConnect::with_native_certs() {
        Ok((connector, errors)) => {
            for e in errors {
                tracing::warn!(error = %e, "a certificate of the system's root store was skipped");
            }
            Ok(connector)
        }
        Err(errors) => {
            let why: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            Err(SetupError::Trust(format!(
                "sslmode=require: no root certificate in the system's store ({}); give the server's CA with --warehouse-ca FILE",
                if why.is_empty() { "it is empty".into() } else { why.join("; ") }
            )))
        }
    }
}

/// The reason of a failed connection, for the message: a certificate the client does
/// not trust or that does not name the host, a server that offers no TLS, a server that
/// refuses plaintext, else the client's own text.
pub fn connect_failure(e: &tokio_postgres::Error, tls: Option<&Trust>, host: &str) -> String {
    if let Some(d) = e.as_db_error() {
        let mut s = format!("{} ({})", d.message(), d.code().code());
        // pg_hba.conf's `hostnossl ... reject` (or no `host` line) refuses plaintext.
        if tls.is_none() && d.message().contains("no encryption") {
            s.push_str(
                "; the server accepts this connection only over TLS: add sslmode=require to the URL (docs/warehouse.md, \"TLS\")",
            );
        }
        return s;
    }
    if let Some(r) = rustls_error(e) {
        return certificate_failure(r, tls, host);
    }
    // The client's own text does not hold its cause ("error performing TLS handshake"):
    // the causes are added, each once.
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let t = c.to_string();
        if !text.contains(&t) {
            text = format!("{text}: {t}");
        }
        cause = c.source();
    }
    if text.contains("server does not support TLS") {
        return "the server does not offer TLS (ssl = off in its postgresql.conf?), and sslmode=require or --warehouse-ca requires it".into();
    }
    text
}

/// The rustls error somewhere in `e`'s causes (an I/O error of tokio-rustls wraps it,
/// and `io::Error::source` skips the wrapped error, so both are looked into).
fn rustls_error(e: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(r) = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(r);
        }
        cause = c.source();
    }
    None
}

fn certificate_failure(r: &rustls::Error, tls: Option<&Trust>, host: &str) -> String {
    use rustls::CertificateError as C;
    let trusted_by = match tls {
        Some(Trust::CaFile(f)) => format!("the CA of --warehouse-ca {f}"),
        _ => {
            "any root of the system's store (give the server's CA with --warehouse-ca FILE)".into()
        }
    };
    match r {
        // BadSignature: a trusted certificate has the issuer's name but another key (two
        // self-signed certificates with one subject, as rcgen's defaults make them).
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            format!(
                "TLS: the server's certificate is not trusted: it is not signed by {trusted_by}"
            )
        }
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => {
            format!("TLS: the server's certificate is not valid for the name {host} (connect by a name or address it holds): {r}")
        }
        rustls::Error::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        ) => format!("TLS: the server's certificate is outside its validity dates: {r}"),
        rustls::Error::InvalidCertificate(_) => {
            format!("TLS: the server's certificate is refused: {r}")
        }
        _ => format!("TLS handshake failed: {r}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str) -> tokio_postgres::Config {
        u.parse().unwrap()
    }

    #[test]
    fn only_require_or_a_ca_turns_tls_on() {
        for u in [
            "postgres://cms@db/wh",
            "postgres://cms@db/wh?sslmode=disable",
            "postgres://cms@db/wh?sslmode=prefer",
        ] {
            let mut pg = url(u);
            assert!(
                matches!(transport(&mut pg, None), Ok(Transport::Plain)),
                "{u}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let cert = rcgen::generate_simple_self_signed(vec!["db".into()]).unwrap();
        std::fs::write(&ca, cert.cert.pem()).unwrap();
        let mut pg = url("postgres://cms@db/wh?sslmode=prefer");
        match transport(&mut pg, Some(&ca)) {
            Ok(Transport::Tls { trust, .. }) => {
                assert_eq!(trust, Trust::CaFile(ca.display().to_string()))
            }
            _ => panic!("a CA turns TLS on"),
        }
        assert!(
            matches!(pg.get_ssl_mode(), SslMode::Require),
            "and requires it"
        );
        let mut pg = url("postgres://cms@db/wh?sslmode=disable");
        assert!(matches!(
            transport(&mut pg, Some(&ca)),
            Err(SetupError::Usage(m)) if m.contains("sslmode=disable")
        ));
    }

    #[test]
    fn a_bad_ca_file_is_named_with_its_fault() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        for (f, why) in [(&missing, "cannot read"), (&junk, "no certificate")] {
            let mut pg = url("postgres://cms@db/wh?sslmode=require");
            match transport(&mut pg, Some(f)) {
                Err(SetupError::Trust(m)) => {
                    assert!(
                        m.contains(&f.display().to_string()) && m.contains(why),
                        "{m}"
                    )
                }
                _ => panic!("{} accepted", f.display()),
            }
        }
    }
}
