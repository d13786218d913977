//! Mutual TLS 1.3 between the two servers, each pinning the other's certificate by its
//! SHA-256 fingerprint (proto/peer-sync.md, "Authentication").
//!
//! Both verifiers accept exactly the pinned certificate and nothing else: no CA, no
//! names, no validity dates (the pin is the trust). Signatures of the handshake are still
//! checked with the pinned certificate's key, so a peer must hold the private key.
//! [`refusal`] turns a failed handshake into the reason that is logged.

use super::identity::{Fingerprint, Identity};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::Arc;

/// The name the client puts in its SNI; the server ignores it (the pin is the identity).
pub const SERVER_NAME: &str = "cms-peer";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts exactly the certificate whose fingerprint is `pin`.
#[derive(Debug)]
struct Pinned {
    pin: Fingerprint,
    provider: Arc<CryptoProvider>,
}

/// The error a verifier returns for a certificate that is not the pinned one.
#[derive(Debug)]
struct WrongIdentity {
    found: Fingerprint,
    pinned: Fingerprint,
}

impl std::fmt::Display for WrongIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wrong identity: its certificate is {}, the pinned peer_id is {}",
            self.found, self.pinned
        )
    }
}

impl std::error::Error for WrongIdentity {}

impl Pinned {
    fn check(&self, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let found = Fingerprint::of(cert);
        if found == self.pin {
            return Ok(());
        }
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            rustls::OtherError(Arc::new(WrongIdentity {
                found,
                pinned: self.pin,
            })),
        )))
    }
    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls12(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

impl ClientCertVerifier for Pinned {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls12(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

/// The verifier a client uses to accept exactly the server certificate `pin` (tests
/// build their own clients with it).
pub fn pinned_server_verifier(pin: Fingerprint) -> Arc<dyn ServerCertVerifier> {
    Arc::new(Pinned {
        pin,
        provider: provider(),
    })
}

/// The listening side: TLS 1.3 only, a client certificate required and pinned.
///
/// # Errors
/// The identity's key is not usable.
pub fn server_config(me: &Identity, pin: Fingerprint) -> anyhow::Result<rustls::ServerConfig> {
    let p = provider();
    let verifier = Arc::new(Pinned {
        pin,
        provider: p.clone(),
    });
    let mut c = rustls::ServerConfig::builder_with_provider(p)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![me.cert.clone()], me.key.clone_key())?;
    // No session tickets or resumption: every session is a full handshake with both
    // certificates (and rustls never accepts 0-RTT data unless asked to).
    c.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    c.send_tls13_tickets = 0;
    Ok(c)
}

/// The connecting side: TLS 1.3 only, the server's certificate pinned, ours presented.
///
/// # Errors
/// The identity's key is not usable.
pub fn client_config(me: &Identity, pin: Fingerprint) -> anyhow::Result<rustls::ClientConfig> {
    let p = provider();
    let verifier = Arc::new(Pinned {
        pin,
        provider: p.clone(),
    });
    let mut c = rustls::ClientConfig::builder_with_provider(p)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![me.cert.clone()], me.key.clone_key())?;
    c.resumption = rustls::client::Resumption::disabled();
    Ok(c)
}

/// Why a handshake failed, in words for the log: wrong identity, no certificate (an
/// unknown peer), an old TLS version, not TLS at all (plaintext), or the I/O error.
pub fn refusal(e: &std::io::Error) -> String {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                "the connection closed during the TLS handshake (the other side refused us, \
                 or is not a cms peer)"
                    .into()
            }
            _ => format!("TLS handshake failed: {e}"),
        };
    };
    use rustls::{AlertDescription as A, Error as E, PeerIncompatible as PI};
    match tls {
        E::InvalidCertificate(CertificateError::Other(o)) => o.to_string(),
        E::NoCertificatesPresented => {
            "unknown peer: it presented no certificate (mutual TLS is required)".into()
        }
        E::PeerIncompatible(PI::SupportedVersionsExtensionRequired)
        | E::PeerIncompatible(PI::Tls12NotOfferedOrEnabled)
        | E::PeerIncompatible(PI::Tls13RequiredForQuic) => {
            "old TLS: the other side does not offer TLS 1.3, the only version accepted".into()
        }
        E::PeerIncompatible(p) => format!("incompatible TLS (TLS 1.3 required): {p:?}"),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => {
            "not TLS: the other side sent something that is not a TLS 1.3 handshake \
             (plaintext, or another protocol)"
                .into()
        }
        E::AlertReceived(A::BadCertificate)
        | E::AlertReceived(A::CertificateUnknown)
        | E::AlertReceived(A::UnknownCA)
        | E::AlertReceived(A::AccessDenied)
        | E::AlertReceived(A::DecryptError) => {
            "the other side refused our certificate: its peer_id is not this server's \
             (see `cms peer init` on this server)"
                .into()
        }
        E::AlertReceived(A::CertificateRequired) => {
            "the other side requires a certificate we did not present".into()
        }
        E::AlertReceived(A::ProtocolVersion) => {
            "the other side refused our TLS version (TLS 1.3 required)".into()
        }
        other => format!("TLS handshake failed: {other}"),
    }
}

/// An I/O error of an established session in words: a TLS alert or error as
/// [`refusal`] says it (the peer refusing our certificate shows only at the first read
/// in TLS 1.3), anything else as it is.
pub fn io_reason(e: &std::io::Error) -> String {
    if e.get_ref()
        .is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some())
    {
        refusal(e)
    } else {
        e.to_string()
    }
}
