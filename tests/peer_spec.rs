//! The peer-sync spec (`proto/peer-sync.md`) against the code (`src/peer/wire.rs`), and
//! version negotiation through a real `cms collect`.
//!
//! - Every ```` ```hex example=NAME ```` block decodes to exactly the message written out
//!   for NAME below, uses every byte, and re-encodes to the same bytes; every
//!   ```` ```hex invalid=NAME error=VARIANT ```` block fails with that error; every
//!   message type has an example.
//! - The fixture `tests/fixtures/peer/hello-v1.bin` is the spec's version-1 HELLO; a
//!   real collector answers it, and refuses a peer that speaks only versions 2..3 with
//!   both ranges named, in the protocol and in its log.
//! - Property tests: messages round-trip; arbitrary bytes never panic the decoder nor
//!   make it claim bytes it was not given.

mod common;
mod peer_support;

use cms::peer::wire::{self, code, decode, DayDigest, IntervalSum, Msg, WireError};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const SPEC: &str = "proto/peer-sync.md";

struct Block {
    line: usize,
    name: String,
    error: Option<String>,
    bytes: Vec<u8>,
}

fn blocks() -> Vec<Block> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SPEC);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if let Some(rest) = l.strip_prefix("```hex ") {
            let mut name = None;
            let mut error = None;
            for kv in rest.split_whitespace() {
                match kv.split_once('=') {
                    Some(("example" | "invalid", v)) => name = Some(v.to_string()),
                    Some(("error", v)) => error = Some(v.to_string()),
                    _ => panic!("{SPEC}:{}: unknown attribute {kv:?}", i + 1),
                }
            }
            let start = i;
            let mut digits = String::new();
            i += 1;
            while lines[i] != "```" {
                for c in lines[i].split('#').next().unwrap().chars() {
                    if c.is_whitespace() {
                        continue;
                    }
                    assert!(c.is_ascii_hexdigit(), "{SPEC}:{}: {c:?}", i + 1);
                    digits.push(c);
                }
                i += 1;
            }
            assert!(
                digits.len().is_multiple_of(2),
                "{SPEC}:{}: odd hex",
                start + 1
            );
            let bytes = (0..digits.len())
                .step_by(2)
                .map(|k| u8::from_str_radix(&digits[k..k + 2], 16).unwrap())
                .collect();
            out.push(Block {
                line: start + 1,
                name: name.unwrap_or_else(|| panic!("{SPEC}:{}: no name", start + 1)),
                error,
                bytes,
            });
        }
        i += 1;
    }
    out
}

/// What each example claims to show.
fn expected(name: &str) -> Msg {
    let day = 20_761; // 2026-11-04
    match name {
        "hello-v1" => Msg::Hello {
            version_min: 1,
            version_max: 1,
            interval_minutes: 15,
            server_id: "srv-a".into(),
            acds: vec![1],
        },
        "digest-req" => Msg::DigestReq { acd: 1 },
        "digest" => Msg::Digest {
            acd: 1,
            days: vec![DayDigest {
                day,
                intervals: 24,
                complete: 21,
                digest: [
                    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc,
                    0xdd, 0xee, 0xff,
                ],
            }],
        },
        "day-req" => Msg::DayReq { acd: 1, day },
        "day" => Msg::Day {
            acd: 1,
            day,
            intervals: vec![IntervalSum {
                istart: 1_793_793_600,
                complete: false,
                checksum: [1; 32],
            }],
        },
        "fetch" => Msg::Fetch {
            acd: 1,
            from_day: day,
            to_day: day,
        },
        "working" => Msg::Working,
        "data" => Msg::Data(b"CMS".to_vec()),
        "end" => Msg::End { bytes: 3 },
        "done" => Msg::Done { your_turn: true },
        "error" => Msg::Error {
            code: code::CANNOT_PRODUCE,
            reason: "srv-b: disk full".into(),
        },
        other => panic!("{SPEC}: no expected message for example {other:?}"),
    }
}

fn variant(e: &WireError) -> &'static str {
    match e {
        WireError::Empty => "Empty",
        WireError::TooLong(_) => "TooLong",
        WireError::UnknownType(_) => "UnknownType",
        WireError::Truncated(_) => "Truncated",
        WireError::Trailing { .. } => "Trailing",
        WireError::Limit { .. } => "Limit",
        WireError::Utf8(_) => "Utf8",
        WireError::Invalid { .. } => "Invalid",
    }
}

#[test]
fn every_example_in_the_spec_decodes_and_reencodes_exactly() {
    let mut types = BTreeSet::new();
    let all = blocks();
    assert!(all.len() >= 19, "{SPEC}: {} examples", all.len());
    for b in &all {
        let at = format!("{SPEC}:{} ({})", b.line, b.name);
        match &b.error {
            None => {
                let want = expected(&b.name);
                let (got, used) = decode(&b.bytes)
                    .unwrap_or_else(|e| panic!("{at}: {e}"))
                    .unwrap_or_else(|| panic!("{at}: incomplete"));
                assert_eq!(used, b.bytes.len(), "{at}: bytes left over");
                assert_eq!(got, want, "{at}");
                assert_eq!(want.to_bytes(), b.bytes, "{at}: re-encoded");
                types.insert(got.type_code());
            }
            Some(v) => {
                let e = decode(&b.bytes).expect_err(&at);
                assert_eq!(variant(&e), v, "{at}: {e}");
            }
        }
    }
    use wire::t::*;
    let every: BTreeSet<u8> = [
        HELLO, DIGEST_REQ, DIGEST, DAY_REQ, DAY, FETCH, WORKING, DATA, END, DONE, ERROR,
    ]
    .into();
    assert_eq!(types, every, "every message type has an example");
}

fn fixture() -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/peer/hello-v1.bin"),
    )
    .unwrap()
}

#[test]
fn the_version_1_fixture_is_the_spec_example() {
    let ex = blocks().into_iter().find(|b| b.name == "hello-v1").unwrap();
    assert_eq!(fixture(), ex.bytes);
}

/// A peer speaking HELLO `hello` to a real collector B over TLS with A's identity; what
/// B answers, message by message, until it closes.
fn talk(hello: Vec<u8>, then: Vec<Msg>) -> (common::collector::Collector, Vec<Msg>) {
    use futures::{SinkExt, StreamExt};
    let switch: std::net::SocketAddr = format!("127.0.0.1:{}", peer_support::free_port())
        .parse()
        .unwrap();
    let a = common::collector::Collector::configure("srv-a", switch);
    let mut b = common::collector::Collector::configure("srv-b", switch);
    let id_a = peer_support::init_identity(&a, &a.dir.path().join("id"));
    let id_b = peer_support::init_identity(&b, &b.dir.path().join("id"));
    let port_b = peer_support::free_port();
    peer_support::append(
        &b,
        &peer_support::section(
            &format!("127.0.0.1:{}", peer_support::free_port()),
            Some(port_b),
            &id_a,
            &b.dir.path().join("id"),
        ),
    );
    b.spawn();
    peer_support::wait_log(&b, "peer sync on", Duration::from_secs(20));
    let me = cms::peer::identity::load(&a.dir.path().join("id")).unwrap();
    let pin = cms::peer::identity::Fingerprint::parse(&id_b).unwrap();
    let client = cms::peer::tls::client_config(&me, pin).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let got = rt.block_on(async {
        let conn = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tls = cms::peer::service::connect(
            &conn,
            &format!("127.0.0.1:{port_b}"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        let mut io = tokio_util::codec::Framed::new(tls, wire::PeerCodec);
        tokio::io::AsyncWriteExt::write_all(io.get_mut(), &hello)
            .await
            .unwrap();
        let mut got = vec![];
        let first = tokio::time::timeout(Duration::from_secs(10), io.next()).await;
        got.push(first.expect("bounded").unwrap().unwrap());
        for m in then {
            io.send(m).await.unwrap();
        }
        loop {
            match tokio::time::timeout(Duration::from_secs(10), io.next()).await {
                Err(_) => panic!("B neither answered nor closed within 10 s"),
                Ok(None) | Ok(Some(Err(_))) => break,
                Ok(Some(Ok(m))) => got.push(m),
            }
        }
        got
    });
    (b, got)
}

/// The HELLO of a peer `srv-a` (ACD 1, 15-minute intervals) that speaks `min..=max`.
fn hello_of_a(version_min: u16, version_max: u16) -> Msg {
    Msg::Hello {
        version_min,
        version_max,
        interval_minutes: 15,
        server_id: "srv-a".into(),
        acds: vec![1],
    }
}

#[test]
fn a_version_1_peer_is_answered_and_an_incompatible_one_refused_with_both_versions_named() {
    // Version 1, as the fixture: B answers HELLO, serves a digest, and ends with DONE.
    let (_b, got) = talk(
        fixture(),
        vec![Msg::DigestReq { acd: 1 }, Msg::Done { your_turn: false }],
    );
    assert!(
        matches!(&got[0], Msg::Hello { version_min: 1, version_max: 1, server_id, .. } if server_id == "srv-b"),
        "{got:?}"
    );
    assert!(matches!(got[1], Msg::Digest { acd: 1, .. }), "{got:?}");
    assert_eq!(got.last(), Some(&Msg::Done { your_turn: false }), "{got:?}");

    // A newer release that still speaks version 1 (1..2), as a rolling upgrade meets it:
    // answered, and served at version 1.
    let (_b, got) = talk(
        hello_of_a(1, 2).to_bytes(),
        vec![Msg::DigestReq { acd: 1 }, Msg::Done { your_turn: false }],
    );
    assert!(matches!(got[1], Msg::Digest { acd: 1, .. }), "{got:?}");
    assert_eq!(got.last(), Some(&Msg::Done { your_turn: false }), "{got:?}");

    // A peer that speaks only 2..3.
    let (b, got) = talk(hello_of_a(2, 3).to_bytes(), vec![]);
    let refusal = got
        .iter()
        .find_map(|m| match m {
            Msg::Error { code: 1, reason } => Some(reason.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no VERSION error in {got:?}"));
    assert!(
        refusal.contains("speaks 1..1") && refusal.contains("speaks 2..3"),
        "{refusal}"
    );
    peer_support::wait_log(&b, "the peer speaks 2..3", Duration::from_secs(10));
}

fn arb_msg() -> impl Strategy<Value = Msg> {
    let sum = (any::<i64>(), any::<bool>(), any::<[u8; 32]>()).prop_map(
        |(istart, complete, checksum)| IntervalSum {
            istart,
            complete,
            checksum,
        },
    );
    let dig = (any::<u32>(), any::<u16>(), any::<[u8; 16]>()).prop_flat_map(|(day, n, digest)| {
        (0..=n).prop_map(move |complete| DayDigest {
            day,
            intervals: n,
            complete,
            digest,
        })
    });
    prop_oneof![
        (
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
            "[a-z-]{0,64}",
            prop::collection::vec(any::<u16>(), 0..=8)
        )
            .prop_map(|(a, b, i, s, acds)| Msg::Hello {
                version_min: a.min(b),
                version_max: a.max(b),
                interval_minutes: i,
                server_id: s,
                acds
            }),
        any::<u16>().prop_map(|acd| Msg::DigestReq { acd }),
        (any::<u16>(), prop::collection::vec(dig, 0..50))
            .prop_map(|(acd, days)| Msg::Digest { acd, days }),
        (
            any::<u16>(),
            any::<u32>(),
            prop::collection::vec(sum, 0..=200)
        )
            .prop_map(|(acd, day, intervals)| Msg::Day {
                acd,
                day,
                intervals
            }),
        (any::<u16>(), any::<u32>(), any::<u32>()).prop_map(|(acd, a, b)| Msg::Fetch {
            acd,
            from_day: a.min(b),
            to_day: a.max(b)
        }),
        prop::collection::vec(any::<u8>(), 1..2000).prop_map(Msg::Data),
        any::<u64>().prop_map(|bytes| Msg::End { bytes }),
        any::<bool>().prop_map(|your_turn| Msg::Done { your_turn }),
        (any::<u16>(), ".{0,200}").prop_map(|(code, reason)| Msg::Error { code, reason }),
    ]
}

proptest! {
    #[test]
    fn messages_round_trip(m in arb_msg()) {
        let b = m.to_bytes();
        prop_assert_eq!(decode(&b), Ok(Some((m, b.len()))));
    }

    #[test]
    fn arbitrary_bytes_never_panic_nor_overclaim(b in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(Some((_, used))) = decode(&b) {
            prop_assert!(used <= b.len());
        }
    }
}
