//! Peer authentication (proto/peer-sync.md, "Authentication") through the real binary:
//! `cms peer init`, the `[peer]` section's checks, and a real `cms collect` listening for
//! its peer. The pinned peer connects; a wrong identity (either side), an unknown peer (no
//! certificate), plaintext and TLS 1.2 are refused, and the collector logs each refusal
//! with the address it came from and the reason.

mod common;
mod peer_support;

use common::collector::Collector;
use peer_support::*;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// A collector B (no switch there: it keeps retrying) listening for its peer A.
struct Setup {
    a: Collector,
    b: Collector,
    /// A's configuration with the `[peer]` section pointing at B.
    a_sync: std::path::PathBuf,
    port_b: u16,
    id_a: String,
    id_b: String,
}

fn setup() -> Setup {
    let switch: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let a = Collector::configure("srv-a", switch);
    let mut b = Collector::configure("srv-b", switch);
    let id_a = init_identity(&a, &a.dir.path().join("id"));
    let id_b = init_identity(&b, &b.dir.path().join("id"));
    let port_b = free_port();
    append(
        &b,
        &section(
            &format!("127.0.0.1:{}", free_port()),
            Some(port_b),
            &id_a,
            &b.dir.path().join("id"),
        ),
    );
    b.spawn();
    wait_log(&b, "peer sync on", LIMIT);
    let a_sync = config_with(
        &a,
        "sync.toml",
        &section(
            &format!("127.0.0.1:{port_b}"),
            None,
            &id_b,
            &a.dir.path().join("id"),
        ),
    );
    Setup {
        a,
        b,
        a_sync,
        port_b,
        id_a,
        id_b,
    }
}

#[test]
fn peer_init_prints_the_line_to_paste_and_refuses_to_overwrite() {
    let switch: std::net::SocketAddr = "127.0.0.1:5001".parse().unwrap();
    let a = Collector::configure("srv-a", switch);
    let (code, out) = a.cms(&["peer", "init"]);
    assert_eq!(code, 0, "{out}");
    let id = peer_id_of(&out);
    assert_eq!(id.len(), 95, "32 hex pairs joined by colons: {id}");
    let dir = a.dir.path().join("data").join("peer");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(dir.join("key.pem")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
    }
    // The same fingerprint as openssl would print of the certificate: SHA-256 of its DER.
    let pem = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64_decode(&der);
    let sha = ring_sha256(&der);
    assert_eq!(id.replace(':', "").to_lowercase(), sha);
    let (code, again) = a.cms(&["peer", "init"]);
    assert_eq!(code, 1, "{again}");
    assert!(
        again.contains("already there") && again.contains("key.pem"),
        "{again}"
    );
    assert_eq!(
        a.cms(&["peer", "id"]).1.trim(),
        format!("peer_id = \"{id}\"")
    );
    let (code, forced) = a.cms(&["peer", "init", "--force"]);
    assert_eq!(code, 0, "{forced}");
    assert_ne!(peer_id_of(&forced), id);
}

/// SHA-256 hex of `b`, by the `sha256sum` tool (independent of the code under test).
fn ring_sha256(b: &[u8]) -> String {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("der");
    std::fs::write(&p, b).unwrap();
    let out = std::process::Command::new("sha256sum")
        .arg(&p)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

fn base64_decode(s: &str) -> Vec<u8> {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("b64");
    std::fs::write(&p, s).unwrap();
    let out = std::process::Command::new("base64")
        .arg("-d")
        .arg(&p)
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn bad_peer_sections_are_config_errors_naming_file_and_key() {
    let switch: std::net::SocketAddr = "127.0.0.1:5001".parse().unwrap();
    let a = Collector::configure("srv-a", switch);
    for (section, says) in [
        (
            "[peer]\nlisten = \"127.0.0.1:1\"\npeer_id = \"AB\"\n",
            "peer.address is missing",
        ),
        (
            "[peer]\naddress = \"b\"\npeer_id = \"AB\"\n",
            "peer.address = \"b\"",
        ),
        (
            "[peer]\naddress = \"b:7\"\npeer_id = \"xyz\"\n",
            "peer.peer_id",
        ),
        ("[peer]\naddress = \"b:7\"\n", "peer.peer_id is missing"),
        (
            &format!(
                "[peer]\naddress = \"b:7\"\npeer_id = \"{}\"\ninterval_seconds = 0\n",
                "AB".repeat(32)
            ),
            "peer.interval_seconds = 0",
        ),
        (
            &format!(
                "[peer]\naddress = \"b:7\"\npeer_id = \"{}\"\nlisten = \"x\"\n",
                "AB".repeat(32)
            ),
            "peer.listen = \"x\"",
        ),
        ("[peer]\naddress = \"b:7\"\nbogus = 1\n", "bogus"),
    ] {
        let cfg = config_with(&a, "bad.toml", &format!("\n{section}"));
        let (code, out) = cms_with(&cfg, &["check-config"]);
        assert_eq!(code, 1, "{section}: {out}");
        assert!(
            out.contains("bad.toml") && out.contains(says),
            "{section}: wanted {says:?} in: {out}"
        );
    }
}

#[test]
fn the_pinned_peer_connects_and_every_impostor_is_refused_and_logged() {
    let s = setup();
    // The right peer: a sync with nothing to fetch.
    let (code, out) = cms_with(&s.a_sync, &["sync", "--once"]);
    assert_eq!(code, 0, "{out}\n{}", s.b.log());
    assert!(
        out.contains("nothing to fetch") && out.contains("srv-b"),
        "{out}"
    );

    // B pins A; a third identity presenting itself is refused by B.
    let c = Collector::configure("srv-c", "127.0.0.1:5001".parse().unwrap());
    let id_c = init_identity(&c, &c.dir.path().join("id"));
    let c_sync = config_with(
        &c,
        "sync.toml",
        &section(
            &format!("127.0.0.1:{}", s.port_b),
            None,
            &s.id_b,
            &c.dir.path().join("id"),
        ),
    );
    let (code, out) = cms_with(&c_sync, &["sync", "--once"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refused our certificate"), "{out}");
    wait_log(
        &s.b,
        &format!(
            "wrong identity: its certificate is {id_c}, the pinned peer_id is {}",
            s.id_a
        ),
        LIMIT,
    );
    assert!(s.b.log().contains("peer=127.0.0.1:"), "{}", s.b.log());

    // A pinning something else than B's certificate refuses B.
    let wrong = config_with(
        &s.a,
        "wrong.toml",
        &section(
            &format!("127.0.0.1:{}", s.port_b),
            None,
            &id_c,
            &s.a.dir.path().join("id"),
        ),
    );
    let (code, out) = cms_with(&wrong, &["sync", "--once"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "wrong identity: its certificate is {}, the pinned peer_id is {id_c}",
            s.id_b
        )),
        "{out}"
    );

    // Plaintext.
    let mut t = std::net::TcpStream::connect(("127.0.0.1", s.port_b)).unwrap();
    t.write_all(b"HELLO srv-a\r\n\r\n").unwrap();
    wait_log(&s.b, "not TLS", LIMIT);

    // No certificate at all (an unknown peer), and TLS 1.2 with A's real identity.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let me = cms::peer::identity::load(&s.a.dir.path().join("id")).unwrap();
    let pin = cms::peer::identity::Fingerprint::parse(&s.id_b).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let anonymous = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(cms::peer::tls::pinned_server_verifier(pin))
        .with_no_client_auth();
    let old = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(cms::peer::tls::pinned_server_verifier(pin))
        .with_client_auth_cert(vec![me.cert.clone()], me.key.clone_key())
        .unwrap();
    for (cfg, logged) in [
        (anonymous, "unknown peer: it presented no certificate"),
        (old, "old TLS"),
    ] {
        rt.block_on(async {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", s.port_b))
                .await
                .unwrap();
            let conn = tokio_rustls::TlsConnector::from(Arc::new(cfg));
            let name = rustls::pki_types::ServerName::try_from("cms-peer").unwrap();
            let r = tokio::time::timeout(LIMIT, async {
                let mut tls = conn.connect(name, tcp).await?;
                // TLS 1.3: the server's verdict on our certificate comes with the first read.
                let mut b = [0u8; 1];
                tokio::io::AsyncReadExt::read(&mut tls, &mut b).await
            })
            .await
            .expect("bounded");
            assert!(
                r.is_err() || r.is_ok_and(|n| n == 0),
                "{logged}: the server must refuse"
            );
        });
        wait_log(&s.b, logged, LIMIT);
    }
    // After all that, the right peer still gets in.
    let (code, out) = cms_with(&s.a_sync, &["sync", "--once"]);
    assert_eq!(code, 0, "{out}");
    let _ = &s.id_a;
}
