//! The wire-format spec (`proto/acd-link.md`) against the code (`src/proto`).
//!
//! - Every ```` ```hex example=NAME ```` block in the spec decodes to exactly the
//!   [`Frame`] written out for NAME below, uses every byte, and re-encodes to the same
//!   bytes: a wrong annotation, a wrong length or a drifted encoder all fail here.
//! - Every ```` ```hex invalid=NAME error=VARIANT ```` block fails with that
//!   [`ProtoError`] (and the exact fields listed below).
//! - Every `T_*` type code in `src/proto/mod.rs` has a valid example.
//! - Property tests: frames within the limits round-trip; arbitrary bytes never panic
//!   the decoder nor make it claim bytes it was not given.
//! - The scripted switch of `tests/common` works against a raw [`LinkCodec`] client.
//! - The collector's side of the session ("Collector-side checks", heartbeat rate,
//!   snapshot order), through a real `cms collect` against the scripted switch.

mod common;

use bytes::BytesMut;
use cms::proto::codec::LinkCodec;
use cms::proto::*;
use common::{CallSpec, ConnOutcome, Script, ScriptedSwitch};
use futures::{SinkExt, StreamExt};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

// ---------------------------------------------------------------------------------------
// Reading the spec
// ---------------------------------------------------------------------------------------

const SPEC: &str = "proto/acd-link.md";

#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence, for messages.
    line: usize,
    /// `example=` or `invalid=` name.
    name: String,
    /// `Some(variant)` for invalid examples.
    error: Option<String>,
    bytes: Vec<u8>,
}

fn spec_text() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SPEC);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses the hex of one block: `#` comments stripped, white space ignored, pairs of hex
/// digits. Anything else is a malformed example and fails loudly.
fn parse_hex(lines: &[&str], line0: usize) -> Vec<u8> {
    let mut digits = String::new();
    for (i, l) in lines.iter().enumerate() {
        let code = l.split('#').next().unwrap();
        for c in code.chars().filter(|c| !c.is_whitespace()) {
            assert!(
                c.is_ascii_hexdigit(),
                "{SPEC}:{}: {c:?} is not a hex digit (comments start with #)",
                line0 + 1 + i
            );
            digits.push(c);
        }
    }
    assert!(
        digits.len().is_multiple_of(2),
        "{SPEC}:{line0}: odd number of hex digits"
    );
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

fn spec_blocks() -> Vec<Block> {
    let text = spec_text();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim_end();
        if let Some(info) = l.strip_prefix("```hex") {
            let attrs: BTreeMap<&str, &str> = info
                .split_whitespace()
                .map(|kv| {
                    kv.split_once('=')
                        .unwrap_or_else(|| panic!("{SPEC}:{}: bad attribute {kv:?}", i + 1))
                })
                .collect();
            let end = (i + 1..lines.len())
                .find(|&j| lines[j].trim() == "```")
                .unwrap_or_else(|| panic!("{SPEC}:{}: unclosed hex block", i + 1));
            let bytes = parse_hex(&lines[i + 1..end], i + 1);
            let (name, error) = match (attrs.get("example"), attrs.get("invalid")) {
                (Some(n), None) => {
                    assert!(
                        !attrs.contains_key("error"),
                        "{SPEC}:{}: a valid example names no error",
                        i + 1
                    );
                    (n.to_string(), None)
                }
                (None, Some(n)) => {
                    let e = attrs
                        .get("error")
                        .unwrap_or_else(|| panic!("{SPEC}:{}: invalid= needs error=", i + 1));
                    (n.to_string(), Some(e.to_string()))
                }
                _ => panic!(
                    "{SPEC}:{}: a hex block needs exactly one of example= / invalid=",
                    i + 1
                ),
            };
            out.push(Block {
                line: i + 1,
                name,
                error,
                bytes,
            });
            i = end;
        }
        i += 1;
    }
    let mut seen = BTreeSet::new();
    for b in &out {
        assert!(
            seen.insert(b.name.clone()),
            "{SPEC}:{}: duplicate example name {}",
            b.line,
            b.name
        );
    }
    out
}

// ---------------------------------------------------------------------------------------
// What each example claims to show, written out independently of the hex
// ---------------------------------------------------------------------------------------

const EPOCH: u64 = 0x0123_4567_89ab_cdef;

/// 2024-03-04 at `hh:mm:ss` UTC, in ms (the day of the worked example in data-items.md).
fn at(hh: i64, mm: i64, ss: i64) -> i64 {
    const DAY: i64 = 1_709_510_400_000; // 2024-03-04T00:00:00Z
    DAY + ((hh * 60 + mm) * 60 + ss) * 1000
}

fn ev(seq: u64, ts: i64, kind: EventKind) -> Frame {
    Frame::Event(Event { seq, ts, kind })
}

fn sales() -> SkillDef {
    SkillDef {
        skill: 1,
        service_level: 20,
        periods: [5, 10, 20, 30, 40, 60, 90, 120, 180],
        name: "Sales".into(),
    }
}

fn main_vdn() -> VdnDef {
    VdnDef {
        vdn: 1,
        service_level: 30,
        name: "Main".into(),
    }
}

fn pri1() -> TrunkGroupDef {
    TrunkGroupDef {
        tkgrp: 1,
        trunks: 24,
        name: "PRI-1".into(),
    }
}

fn sl(skill: u16, level: u8) -> SkillLevel {
    SkillLevel { skill, level }
}

fn expected_valid() -> BTreeMap<&'static str, Frame> {
    use EventKind as K;
    let t0958 = at(9, 58, 0);
    let t1004 = at(10, 4, 16);
    let mut m = BTreeMap::new();
    m.insert(
        "hello-fresh",
        Frame::Hello(Hello {
            version_min: 1,
            version_max: 1,
            acd: 1,
            server_id: "cms-a".into(),
            epoch: 0,
            resume_from: 0,
        }),
    );
    m.insert(
        "hello-resume",
        Frame::Hello(Hello {
            version_min: 1,
            version_max: 3,
            acd: 1,
            server_id: "cms-b".into(),
            epoch: EPOCH,
            resume_from: 1001,
        }),
    );
    let welcome = |mode, first_seq| {
        Frame::Welcome(Welcome {
            version: 1,
            acd: 1,
            epoch: EPOCH,
            mode,
            first_seq,
            switch_ts: t0958,
            heartbeat_ms: 5000,
        })
    };
    m.insert("welcome-replay", welcome(StartMode::Replay, 1001));
    m.insert("welcome-pumpup", welcome(StartMode::Pumpup, 5001));
    m.insert(
        "reject-version",
        Frame::Reject {
            code: 1,
            text: "switch speaks 1..1".into(),
        },
    );
    m.insert(
        "reject-acd",
        Frame::Reject {
            code: 2,
            text: "acd 2".into(),
        },
    );
    m.insert(
        "heartbeat-switch",
        Frame::Heartbeat {
            ts: t0958,
            last_seq: 5000,
        },
    );
    m.insert(
        "heartbeat-collector",
        Frame::Heartbeat {
            ts: at(9, 58, 12),
            last_seq: 0,
        },
    );
    m.insert(
        "ack",
        Frame::Ack {
            epoch: EPOCH,
            seq: 5002,
        },
    );
    m.insert(
        "pumpup-begin",
        Frame::PumpupBegin {
            as_of_seq: 5000,
            ts: t0958,
        },
    );
    m.insert("pumpup-end", Frame::PumpupEnd);
    m.insert(
        "gap",
        Frame::Gap {
            from: 1001,
            to: 5000,
        },
    );
    m.insert("snap-skill", Frame::SnapSkill(sales()));
    m.insert("snap-vdn", Frame::SnapVdn(main_vdn()));
    m.insert("snap-tkgrp", Frame::SnapTrunkGroup(pri1()));
    m.insert(
        "snap-agent",
        Frame::SnapAgent(AgentSnapshot {
            agent: 100,
            state: AgentState::Acd,
            work_skill: 1,
            skills: vec![sl(1, 1), sl(2, 2)],
        }),
    );
    m.insert(
        "snap-agent-aux",
        Frame::SnapAgent(AgentSnapshot {
            agent: 101,
            state: AgentState::Aux(7),
            work_skill: 0,
            skills: vec![sl(1, 1)],
        }),
    );
    m.insert(
        "snap-call-queued",
        Frame::SnapCall(CallSnapshot {
            call: 8,
            vdn: 1,
            tkgrp: 1,
            phase: CallPhase::Queued,
            agent: 0,
            skills: vec![1, 2],
            offered_ts: at(9, 57, 30),
        }),
    );
    m.insert(
        "snap-call-connected",
        Frame::SnapCall(CallSnapshot {
            call: 7,
            vdn: 1,
            tkgrp: 1,
            phase: CallPhase::Connected,
            agent: 100,
            skills: vec![1],
            offered_ts: t0958,
        }),
    );
    m.insert("skill-def", ev(5001, t0958, K::SkillDef(sales())));
    m.insert("vdn-def", ev(5002, t0958, K::VdnDef(main_vdn())));
    m.insert("tkgrp-def", ev(5003, t0958, K::TrunkGroupDef(pri1())));
    m.insert(
        "call-offered",
        ev(
            5004,
            t0958,
            K::CallOffered {
                call: 7,
                vdn: 1,
                tkgrp: 1,
            },
        ),
    );
    m.insert(
        "call-queued",
        ev(
            5005,
            t0958,
            K::CallQueued {
                call: 7,
                skill: 1,
                priority: 2,
            },
        ),
    );
    m.insert(
        "call-ringing",
        ev(
            5006,
            at(9, 58, 12),
            K::CallRinging {
                call: 7,
                agent: 100,
                skill: 1,
            },
        ),
    );
    let t0958_16 = at(9, 58, 16);
    m.insert(
        "call-answered",
        ev(
            5008,
            t0958_16,
            K::CallAnswered {
                call: 7,
                agent: 100,
            },
        ),
    );
    m.insert(
        "call-held",
        ev(
            5010,
            at(10, 1, 0),
            K::CallHeld {
                call: 7,
                agent: 100,
            },
        ),
    );
    let t1001_30 = at(10, 1, 30);
    m.insert(
        "call-retrieved",
        ev(
            5011,
            t1001_30,
            K::CallRetrieved {
                call: 7,
                agent: 100,
            },
        ),
    );
    m.insert(
        "call-conferenced",
        ev(
            5012,
            t1001_30,
            K::CallConferenced {
                call: 7,
                agent: 100,
            },
        ),
    );
    m.insert(
        "call-transferred",
        ev(
            5013,
            t1001_30,
            K::CallTransferred {
                call: 9,
                agent: 102,
            },
        ),
    );
    m.insert(
        "call-abandoned",
        ev(5014, t1001_30, K::CallAbandoned { call: 8 }),
    );
    m.insert(
        "call-released",
        ev(
            5015,
            t1004,
            K::CallReleased {
                call: 7,
                by: ReleasedBy::Caller,
            },
        ),
    );
    m.insert(
        "agent-state-acw",
        ev(
            5016,
            t1004,
            K::AgentState {
                agent: 100,
                state: AgentState::Acw,
                skill: 1,
            },
        ),
    );
    m.insert("call-busy", ev(5017, t1004, K::CallBusy { call: 10 }));
    m.insert(
        "call-disconnected",
        ev(5018, t1004, K::CallDisconnected { call: 11 }),
    );
    m.insert(
        "agent-login",
        ev(
            5019,
            t1004,
            K::AgentLogin {
                agent: 103,
                skills: vec![sl(1, 1), sl(2, 1), sl(7, 16)],
            },
        ),
    );
    m.insert(
        "agent-logout",
        ev(
            5020,
            t1004,
            K::AgentLogout {
                agent: 104,
                reason: 0,
            },
        ),
    );
    m.insert(
        "agent-state-aux",
        ev(
            5021,
            at(10, 5, 16),
            K::AgentState {
                agent: 100,
                state: AgentState::Aux(3),
                skill: 0,
            },
        ),
    );
    m.insert(
        "clock-change",
        ev(
            5022,
            at(9, 45, 0),
            K::ClockChange {
                old_ts: at(10, 5, 16),
            },
        ),
    );
    m
}

fn expected_invalid() -> BTreeMap<&'static str, ProtoError> {
    use ProtoError as E;
    let inv = |ty, field, value| E::InvalidValue { ty, field, value };
    let mut m = BTreeMap::new();
    m.insert("frame-too-long", E::FrameTooLong(4097));
    m.insert("stray-http-client", E::FrameTooLong(0x4745_5420));
    m.insert("empty-frame", E::EmptyFrame);
    m.insert("unknown-type", E::UnknownType(0x50));
    m.insert("reserved-control-type", E::UnknownType(0x09));
    m.insert("unknown-event-type", E::UnknownType(0x13));
    m.insert(
        "truncated-heartbeat",
        E::Truncated {
            ty: T_HEARTBEAT,
            need: 8,
        },
    );
    m.insert(
        "truncated-string",
        E::Truncated {
            ty: T_SNAP_VDN,
            need: 2,
        },
    );
    m.insert(
        "trailing-bytes",
        E::Trailing {
            ty: T_ACK,
            extra: 1,
        },
    );
    m.insert(
        "trailing-pumpup-end",
        E::Trailing {
            ty: T_PUMPUP_END,
            extra: 1,
        },
    );
    m.insert("bad-aux-reason", inv(T_AGENT_STATE, "aux reason", 10));
    m.insert("reason-without-aux", inv(T_AGENT_STATE, "aux reason", 3));
    m.insert("bad-agent-state", inv(T_AGENT_STATE, "agent state", 7));
    m.insert("bad-start-mode", inv(T_WELCOME, "start mode", 3));
    m.insert("bad-released-by", inv(T_CALL_RELEASED, "released by", 0));
    m.insert("bad-call-phase", inv(T_SNAP_CALL, "call phase", 5));
    m.insert(
        "periods-not-ascending",
        inv(T_SNAP_SKILL, "periods (not ascending)", 0),
    );
    m.insert("bad-utf8", E::BadUtf8 { ty: T_VDN_DEF });
    m.insert(
        "string-too-long",
        E::TooMany {
            ty: T_REJECT,
            field: "string",
            len: 65,
            max: MAX_STR_LEN,
        },
    );
    m.insert(
        "too-many-agent-skills",
        E::TooMany {
            ty: T_AGENT_LOGIN,
            field: "skills",
            len: 21,
            max: MAX_AGENT_SKILLS,
        },
    );
    m.insert(
        "too-many-call-skills",
        E::TooMany {
            ty: T_SNAP_CALL,
            field: "call skills",
            len: 5,
            max: MAX_CALL_SKILLS,
        },
    );
    m.insert("bad-magic", E::BadMagic(*b"acdl"));
    // Order of checks: the type before the payload, a field as soon as it is read, the
    // first broken field in wire order, values before trailing bytes.
    m.insert("unknown-event-type-short", E::UnknownType(0x13));
    m.insert(
        "truncated-skill-list",
        E::Truncated {
            ty: T_AGENT_LOGIN,
            need: 5,
        },
    );
    m.insert(
        "bad-agent-state-truncated",
        inv(T_AGENT_STATE, "agent state", 7),
    );
    m.insert(
        "invalid-before-trailing",
        inv(T_CALL_RELEASED, "released by", 0),
    );
    m.insert("first-broken-field-wins", inv(T_WELCOME, "epoch", 0));
    // Value rules of the message tables (the Limits table).
    m.insert("hello-version-zero", inv(T_HELLO, "version_min", 0));
    m.insert(
        "hello-epoch-without-resume",
        inv(T_HELLO, "resume_from (with epoch)", 0),
    );
    m.insert(
        "hello-resume-without-epoch",
        inv(T_HELLO, "resume_from (with epoch)", 1001),
    );
    m.insert("welcome-epoch-zero", inv(T_WELCOME, "epoch", 0));
    m.insert("welcome-first-seq-zero", inv(T_WELCOME, "first_seq", 0));
    m.insert("gap-from-zero", inv(T_GAP, "gap from", 0));
    m.insert(
        "gap-to-before-from",
        inv(T_GAP, "gap to (before from)", 1000),
    );
    m
}

/// `FrameTooLong(4097)` -> `FrameTooLong`, `Truncated { .. }` -> `Truncated`.
fn variant_name(e: &ProtoError) -> String {
    format!("{e:?}")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap()
        .to_owned()
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------
// The spec examples
// ---------------------------------------------------------------------------------------

#[test]
fn every_valid_example_decodes_to_its_value_and_reencodes_byte_for_byte() {
    let expected = expected_valid();
    let blocks: Vec<Block> = spec_blocks()
        .into_iter()
        .filter(|b| b.error.is_none())
        .collect();
    assert!(
        !blocks.is_empty(),
        "{SPEC}: no ```hex example= blocks found"
    );
    for b in &blocks {
        let want = expected.get(b.name.as_str()).unwrap_or_else(|| {
            panic!(
                "{SPEC}:{}: example {} has no expected value in tests/spec_examples.rs",
                b.line, b.name
            )
        });
        let got = decode_frame(&b.bytes).unwrap_or_else(|e| {
            panic!("{SPEC}:{}: example {} does not decode: {e}", b.line, b.name)
        });
        match got {
            Decoded::Incomplete => panic!(
                "{SPEC}:{}: example {} is incomplete ({} bytes; check the length prefix)",
                b.line,
                b.name,
                b.bytes.len()
            ),
            Decoded::Frame(frame, used) => {
                assert_eq!(
                    used,
                    b.bytes.len(),
                    "{SPEC}:{}: example {} leaves bytes unused",
                    b.line,
                    b.name
                );
                assert_eq!(
                    &frame, want,
                    "{SPEC}:{}: example {} decodes to another value than annotated",
                    b.line, b.name
                );
                let mut re = BytesMut::new();
                frame.encode(&mut re);
                assert_eq!(
                    hex(&re),
                    hex(&b.bytes),
                    "{SPEC}:{}: example {} re-encodes differently",
                    b.line,
                    b.name
                );
            }
        }
    }
    let in_spec: BTreeSet<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
    for name in expected.keys() {
        assert!(
            in_spec.contains(name),
            "expected value {name} has no ```hex example={name} block in {SPEC}"
        );
    }
}

#[test]
fn every_invalid_example_fails_with_the_named_error() {
    let expected = expected_invalid();
    let blocks: Vec<Block> = spec_blocks()
        .into_iter()
        .filter(|b| b.error.is_some())
        .collect();
    assert!(
        !blocks.is_empty(),
        "{SPEC}: no ```hex invalid= blocks found"
    );
    let mut wrong = Vec::new();
    for b in &blocks {
        let named = b.error.as_deref().unwrap();
        let want = expected.get(b.name.as_str()).unwrap_or_else(|| {
            panic!(
                "{SPEC}:{}: invalid example {} has no expected error in tests/spec_examples.rs",
                b.line, b.name
            )
        });
        assert_eq!(
            variant_name(want),
            named,
            "{SPEC}:{}: invalid example {} names error={named}, the test expects {want:?}",
            b.line,
            b.name
        );
        // Every decoding mismatch is listed at once, so a change of rule shows all the
        // examples it moves.
        match decode_frame(&b.bytes) {
            Err(e) if &e == want => {}
            Err(e) => wrong.push(format!(
                "{SPEC}:{}: invalid example {} fails with {e:?}, not {want:?}",
                b.line, b.name
            )),
            Ok(d) => wrong.push(format!(
                "{SPEC}:{}: invalid example {} was accepted: {d:?}",
                b.line, b.name
            )),
        }
        // The codec, which the link actually uses, must refuse it the same way.
        let mut buf = BytesMut::from(&b.bytes[..]);
        let r = tokio_util::codec::Decoder::decode(&mut LinkCodec, &mut buf);
        if !matches!(&r, Err(cms::proto::codec::CodecError::Proto(e)) if e == want) {
            wrong.push(format!(
                "{SPEC}:{}: LinkCodec on invalid example {}: {r:?}",
                b.line, b.name
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let in_spec: BTreeSet<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
    for name in expected.keys() {
        assert!(
            in_spec.contains(name),
            "expected error {name} has no ```hex invalid={name} block in {SPEC}"
        );
    }
}

/// The `T_*` constants, read from the source so that a new type code cannot be added
/// without a spec example.
fn type_codes_in_source() -> BTreeMap<String, u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/proto/mod.rs");
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = BTreeMap::new();
    for l in src.lines() {
        let Some(rest) = l.trim().strip_prefix("pub const T_") else {
            continue;
        };
        let (name, value) = rest
            .split_once(": u8 =")
            .unwrap_or_else(|| panic!("src/proto/mod.rs: cannot read type code line {l:?}"));
        let value = value.trim().trim_end_matches(';').trim();
        let v = value
            .strip_prefix("0x")
            .map(|h| u8::from_str_radix(h, 16))
            .unwrap_or_else(|| value.parse())
            .unwrap_or_else(|e| panic!("src/proto/mod.rs: T_{name} = {value:?}: {e}"));
        out.insert(format!("T_{name}"), v);
    }
    out
}

#[test]
fn every_type_code_has_a_valid_example() {
    let codes = type_codes_in_source();
    // Guard the scraper itself: it must see the 32 codes of version 1, among them these.
    assert!(
        codes.len() >= 32,
        "found only {} T_* constants",
        codes.len()
    );
    assert_eq!(codes.get("T_HELLO"), Some(&T_HELLO));
    assert_eq!(codes.get("T_CLOCK_CHANGE"), Some(&T_CLOCK_CHANGE));
    assert_eq!(codes.get("T_SNAP_CALL"), Some(&T_SNAP_CALL));
    let covered: BTreeSet<u8> = spec_blocks()
        .iter()
        .filter(|b| b.error.is_none() && b.bytes.len() > 4)
        .map(|b| b.bytes[4])
        .collect();
    let missing: Vec<String> = codes
        .iter()
        .filter(|(_, v)| !covered.contains(v))
        .map(|(n, v)| format!("{n} (0x{v:02x})"))
        .collect();
    assert!(
        missing.is_empty(),
        "type codes without a valid example in {SPEC}: {}",
        missing.join(", ")
    );
}

/// The lengths the spec's message tables state ("Size ...") for fixed-size frames.
#[test]
fn fixed_frame_sizes_match_the_spec_tables() {
    let ex = expected_valid();
    let size = |name: &str| ex[name].to_bytes().len() - 5;
    assert_eq!(size("welcome-replay"), 33);
    assert_eq!(size("heartbeat-switch"), 16);
    assert_eq!(size("ack"), 16);
    assert_eq!(size("pumpup-begin"), 16);
    assert_eq!(size("pumpup-end"), 0);
    assert_eq!(size("gap"), 16);
    assert_eq!(size("hello-fresh"), 27 + "cms-a".len());
    assert_eq!(size("snap-skill"), 23 + "Sales".len());
    assert_eq!(size("skill-def"), 16 + 23 + "Sales".len());
    assert_eq!(size("snap-agent"), 9 + 3 * 2);
    assert_eq!(size("snap-call-queued"), 22 + 2 * 2);
    assert_eq!(size("agent-login"), 16 + 5 + 3 * 3);
    for (name, n) in [
        ("call-offered", 24),
        ("call-queued", 23),
        ("call-ringing", 26),
        ("call-answered", 24),
        ("call-abandoned", 20),
        ("call-released", 21),
        ("agent-logout", 21),
        ("agent-state-aux", 24),
        ("clock-change", 24),
    ] {
        assert_eq!(size(name), n, "{name}");
    }
    // "The largest version-1 frame is a SKILL_DEF with a 64-byte name, 104 bytes".
    let big = ev(
        u64::MAX,
        i64::MIN,
        EventKind::SkillDef(SkillDef {
            name: "x".repeat(MAX_STR_LEN),
            ..sales()
        }),
    );
    assert_eq!(big.to_bytes().len() - 4, 104);
}

// ---------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------

/// A string of at most `MAX_STR_LEN` bytes of UTF-8 (multi-byte characters included).
fn arb_str() -> impl Strategy<Value = String> {
    "\\PC{0,64}".prop_map(|s| {
        let mut end = s.len().min(MAX_STR_LEN);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_owned()
    })
}

fn arb_state() -> impl Strategy<Value = AgentState> {
    prop_oneof![
        Just(AgentState::Avail),
        Just(AgentState::Ring),
        Just(AgentState::Acd),
        Just(AgentState::Acw),
        (0u8..=9).prop_map(AgentState::Aux),
        Just(AgentState::Other),
    ]
}

fn arb_skill_def() -> impl Strategy<Value = SkillDef> {
    (
        any::<u16>(),
        any::<u16>(),
        any::<[u16; N_PERIODS]>(),
        arb_str(),
    )
        .prop_map(|(skill, service_level, mut periods, name)| {
            periods.sort_unstable();
            SkillDef {
                skill,
                service_level,
                periods,
                name,
            }
        })
}

fn arb_vdn_def() -> impl Strategy<Value = VdnDef> {
    (any::<u16>(), any::<u16>(), arb_str()).prop_map(|(vdn, service_level, name)| VdnDef {
        vdn,
        service_level,
        name,
    })
}

fn arb_tkgrp_def() -> impl Strategy<Value = TrunkGroupDef> {
    (any::<u16>(), any::<u16>(), arb_str()).prop_map(|(tkgrp, trunks, name)| TrunkGroupDef {
        tkgrp,
        trunks,
        name,
    })
}

fn arb_skill_levels() -> impl Strategy<Value = Vec<SkillLevel>> {
    prop::collection::vec(
        (any::<u16>(), any::<u8>()).prop_map(|(skill, level)| SkillLevel { skill, level }),
        0..=MAX_AGENT_SKILLS,
    )
}

fn arb_event_kind() -> impl Strategy<Value = EventKind> {
    use EventKind as K;
    let ca = (any::<u32>(), any::<u32>());
    prop_oneof![
        arb_skill_def().prop_map(K::SkillDef),
        arb_vdn_def().prop_map(K::VdnDef),
        arb_tkgrp_def().prop_map(K::TrunkGroupDef),
        (any::<u32>(), any::<u16>(), any::<u16>()).prop_map(|(call, vdn, tkgrp)| K::CallOffered {
            call,
            vdn,
            tkgrp
        }),
        (any::<u32>(), any::<u16>(), any::<u8>()).prop_map(|(call, skill, priority)| {
            K::CallQueued {
                call,
                skill,
                priority,
            }
        }),
        (any::<u32>(), any::<u32>(), any::<u16>())
            .prop_map(|(call, agent, skill)| K::CallRinging { call, agent, skill }),
        (ca, 0u8..5).prop_map(|((call, agent), which)| match which {
            0 => K::CallAnswered { call, agent },
            1 => K::CallHeld { call, agent },
            2 => K::CallRetrieved { call, agent },
            3 => K::CallConferenced { call, agent },
            _ => K::CallTransferred { call, agent },
        }),
        (any::<u32>(), 0u8..3).prop_map(|(call, which)| match which {
            0 => K::CallAbandoned { call },
            1 => K::CallBusy { call },
            _ => K::CallDisconnected { call },
        }),
        (any::<u32>(), any::<bool>()).prop_map(|(call, caller)| K::CallReleased {
            call,
            by: if caller {
                ReleasedBy::Caller
            } else {
                ReleasedBy::Agent
            },
        }),
        (any::<u32>(), arb_skill_levels())
            .prop_map(|(agent, skills)| K::AgentLogin { agent, skills }),
        (any::<u32>(), any::<u8>()).prop_map(|(agent, reason)| K::AgentLogout { agent, reason }),
        (any::<u32>(), arb_state(), any::<u16>()).prop_map(|(agent, state, skill)| K::AgentState {
            agent,
            state,
            skill
        }),
        any::<i64>().prop_map(|old_ts| K::ClockChange { old_ts }),
    ]
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let hello = (
        any::<u16>(),
        any::<u16>(),
        any::<u16>(),
        arb_str(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(version_min, version_max, acd, server_id, epoch, resume_from)| {
                // The Limits table: version_min >= 1, epoch and resume_from both zero
                // or both set.
                let version_min = version_min.max(1);
                let (epoch, resume_from) = if epoch == 0 || resume_from == 0 {
                    (0, 0)
                } else {
                    (epoch, resume_from)
                };
                Frame::Hello(Hello {
                    version_min,
                    version_max,
                    acd,
                    server_id,
                    epoch,
                    resume_from,
                })
            },
        );
    let welcome = (
        any::<u16>(),
        any::<u16>(),
        any::<u64>(),
        any::<bool>(),
        any::<u64>(),
        any::<i64>(),
        any::<u32>(),
    )
        .prop_map(
            |(version, acd, epoch, replay, first_seq, switch_ts, heartbeat_ms)| {
                Frame::Welcome(Welcome {
                    version,
                    acd,
                    epoch: epoch.max(1),
                    mode: if replay {
                        StartMode::Replay
                    } else {
                        StartMode::Pumpup
                    },
                    first_seq: first_seq.max(1),
                    switch_ts,
                    heartbeat_ms,
                })
            },
        );
    let phase = prop_oneof![
        Just(CallPhase::Vector),
        Just(CallPhase::Queued),
        Just(CallPhase::Ringing),
        Just(CallPhase::Connected),
    ];
    let snap_call = (
        any::<u32>(),
        any::<u16>(),
        any::<u16>(),
        phase,
        any::<u32>(),
        prop::collection::vec(any::<u16>(), 0..=MAX_CALL_SKILLS),
        any::<i64>(),
    )
        .prop_map(|(call, vdn, tkgrp, phase, agent, skills, offered_ts)| {
            Frame::SnapCall(CallSnapshot {
                call,
                vdn,
                tkgrp,
                phase,
                agent,
                skills,
                offered_ts,
            })
        });
    let snap_agent = (any::<u32>(), arb_state(), any::<u16>(), arb_skill_levels()).prop_map(
        |(agent, state, work_skill, skills)| {
            Frame::SnapAgent(AgentSnapshot {
                agent,
                state,
                work_skill,
                skills,
            })
        },
    );
    prop_oneof![
        hello,
        welcome,
        (any::<u16>(), arb_str()).prop_map(|(code, text)| Frame::Reject { code, text }),
        (any::<i64>(), any::<u64>()).prop_map(|(ts, last_seq)| Frame::Heartbeat { ts, last_seq }),
        (any::<u64>(), any::<u64>()).prop_map(|(epoch, seq)| Frame::Ack { epoch, seq }),
        (any::<u64>(), any::<i64>())
            .prop_map(|(as_of_seq, ts)| Frame::PumpupBegin { as_of_seq, ts }),
        Just(Frame::PumpupEnd),
        (1..=u64::MAX, any::<u64>()).prop_map(|(from, to)| Frame::Gap {
            from,
            to: to.max(from)
        }),
        arb_skill_def().prop_map(Frame::SnapSkill),
        arb_vdn_def().prop_map(Frame::SnapVdn),
        arb_tkgrp_def().prop_map(Frame::SnapTrunkGroup),
        snap_agent,
        snap_call,
        (any::<u64>(), any::<i64>(), arb_event_kind())
            .prop_map(|(seq, ts, kind)| Frame::Event(Event { seq, ts, kind })),
    ]
}

/// Type codes the decoder knows, plus a few it does not, to steer random payloads into
/// every branch of the decoder instead of dying at the length check.
fn arb_type_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(vec![
            0x01u8, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x10, 0x11, 0x12, 0x20, 0x21, 0x22,
            0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x30, 0x31, 0x32, 0x3f, 0x40,
            0x41, 0x42, 0x43, 0x44,
        ]),
        any::<u8>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// decode(encode(f)) == f, using every byte; and every strict prefix is Incomplete.
    #[test]
    fn frames_round_trip(f in arb_frame()) {
        let bytes = f.to_bytes();
        prop_assert!(bytes.len() <= 4 + MAX_FRAME_LEN);
        prop_assert_eq!(decode_frame(&bytes), Ok(Decoded::Frame(f.clone(), bytes.len())));
        for cut in [0, 1, 3, 4, 5, bytes.len() / 2, bytes.len() - 1] {
            if cut < bytes.len() {
                prop_assert_eq!(decode_frame(&bytes[..cut]), Ok(Decoded::Incomplete));
            }
        }
    }

    /// Two frames back to back: the first decodes and says where the second starts.
    #[test]
    fn frames_are_self_delimiting(a in arb_frame(), b in arb_frame()) {
        let mut buf = a.to_bytes();
        let n = buf.len();
        buf.extend(b.to_bytes());
        prop_assert_eq!(decode_frame(&buf), Ok(Decoded::Frame(a, n)));
        prop_assert_eq!(decode_frame(&buf[n..]), Ok(Decoded::Frame(b, buf.len() - n)));
    }

    /// Arbitrary bytes: no panic, never more bytes claimed than given, and whatever is
    /// accepted is the one canonical encoding of the value it decodes to.
    #[test]
    fn arbitrary_bytes_never_panic_or_overclaim(buf in prop::collection::vec(any::<u8>(), 0..300)) {
        check_decoder_on(&buf)?;
    }

    /// Same, with a plausible length prefix and type so the payload decoders are reached.
    #[test]
    fn plausible_frames_never_panic_or_overclaim(
        ty in arb_type_byte(),
        payload in prop::collection::vec(any::<u8>(), 0..120),
        slack in -3i64..=3,
        extra in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let len = (1 + payload.len() as i64 + slack).max(0) as u32;
        let mut buf = len.to_be_bytes().to_vec();
        buf.push(ty);
        buf.extend(&payload);
        buf.extend(&extra);
        check_decoder_on(&buf)?;
    }

    /// A valid frame with one byte changed decodes to something or fails cleanly.
    #[test]
    fn mutated_frames_never_panic_or_overclaim(f in arb_frame(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut buf = f.to_bytes();
        let i = pos.index(buf.len());
        buf[i] = byte;
        check_decoder_on(&buf)?;
    }
}

fn check_decoder_on(buf: &[u8]) -> Result<(), TestCaseError> {
    match decode_frame(buf) {
        Ok(Decoded::Frame(f, used)) => {
            prop_assert!(used <= buf.len(), "claims {used} of {} bytes", buf.len());
            prop_assert!(used >= 5);
            prop_assert_eq!(f.to_bytes(), buf[..used].to_vec());
        }
        Ok(Decoded::Incomplete) => {
            // Incomplete is only allowed while the announced frame is not all there.
            if buf.len() >= 4 {
                let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                prop_assert!(buf.len() < 4 + len, "Incomplete with a whole frame present");
            }
        }
        Err(_) => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The scripted switch of tests/common against a raw LinkCodec client
// ---------------------------------------------------------------------------------------

const T: Duration = Duration::from_secs(20);

async fn connect(addr: std::net::SocketAddr) -> Framed<TcpStream, LinkCodec> {
    let s = tokio::time::timeout(T, TcpStream::connect(addr))
        .await
        .expect("connect to the scripted switch: timed out")
        .expect("connect to the scripted switch");
    Framed::new(s, LinkCodec)
}

async fn recv(c: &mut Framed<TcpStream, LinkCodec>, what: &str) -> Option<Frame> {
    tokio::time::timeout(T, c.next())
        .await
        .unwrap_or_else(|_| panic!("client: no {what} within {T:?}"))
        .map(|r| r.unwrap_or_else(|e| panic!("client: while awaiting {what}: {e}")))
}

fn fresh_hello() -> Hello {
    Hello {
        version_min: PROTOCOL_VERSION_MIN,
        version_max: PROTOCOL_VERSION_MAX,
        acd: 1,
        server_id: "test-client".into(),
        epoch: 0,
        resume_from: 0,
    }
}

#[tokio::test]
async fn scripted_switch_plays_a_session_and_records_the_peer() {
    let t0 = at(9, 50, 0);
    let mut stream = common::translations(1, t0);
    stream.extend(common::agent_login(stream.len() as u64 + 1, t0, 100, &[1]));
    let call = CallSpec {
        call: 7,
        agent: 100,
        ..CallSpec::default()
    };
    stream.extend(common::answered_call(
        stream.len() as u64 + 1,
        at(9, 58, 0),
        &call,
    ));
    let last = common::last_seq(&stream);
    assert_eq!(last, 3 + 2 + 9, "translations 3, login 2, call 9 events");
    common::assert_contiguous(&stream, 1);

    let sw = ScriptedSwitch::bind();
    let welcome = common::welcome(EPOCH, StartMode::Replay, 1, t0);
    sw.push(
        Script::new()
            .expect_hello()
            .send(vec![welcome.clone()])
            .send(stream.clone())
            .wait_ack(last)
            .send(vec![Frame::Heartbeat {
                ts: at(10, 15, 0),
                last_seq: last,
            }])
            .close(),
    );

    let mut c = connect(sw.addr()).await;
    c.send(Frame::Hello(fresh_hello())).await.unwrap();
    assert_eq!(sw.next_hello().await, fresh_hello());
    assert_eq!(recv(&mut c, "WELCOME").await, Some(welcome));
    for want in &stream {
        assert_eq!(recv(&mut c, "event").await.as_ref(), Some(want));
    }
    // Two ACKs: the harness must wait for the one that reaches `last`.
    c.send(Frame::Ack {
        epoch: EPOCH,
        seq: 5,
    })
    .await
    .unwrap();
    c.send(Frame::Ack {
        epoch: EPOCH,
        seq: last,
    })
    .await
    .unwrap();
    assert!(matches!(
        recv(&mut c, "HEARTBEAT").await,
        Some(Frame::Heartbeat { .. })
    ));
    assert_eq!(recv(&mut c, "end of stream").await, None, "switch closes");

    let rec = sw.connection(0).await;
    rec.assert_ok();
    assert_eq!(
        rec.received,
        vec![
            Frame::Hello(fresh_hello()),
            Frame::Ack {
                epoch: EPOCH,
                seq: 5
            },
            Frame::Ack {
                epoch: EPOCH,
                seq: last
            },
        ]
    );
}

#[tokio::test]
async fn scripted_switch_answers_from_the_hello_and_sends_raw_garbage() {
    let sw = ScriptedSwitch::bind();
    sw.push(
        Script::new()
            .expect_hello()
            .respond(|h| {
                vec![Frame::Reject {
                    code: 2,
                    text: format!("acd {}", h.acd),
                }]
            })
            .close(),
    );
    sw.push(
        Script::new()
            .expect_hello()
            .send_raw(vec![0, 0, 0, 1, 0x50]) // unknown type 0x50
            .expect_closed(),
    );

    // Session 1: REJECT built from the HELLO.
    let mut c = connect(sw.addr()).await;
    let hello = Hello {
        acd: 7,
        ..fresh_hello()
    };
    c.send(Frame::Hello(hello.clone())).await.unwrap();
    assert_eq!(
        recv(&mut c, "REJECT").await,
        Some(Frame::Reject {
            code: 2,
            text: "acd 7".into()
        })
    );
    assert_eq!(recv(&mut c, "close").await, None);
    sw.connection(0).await.assert_ok();

    // Session 2: malformed bytes; the client's codec must refuse them.
    let mut c = connect(sw.addr()).await;
    c.send(Frame::Hello(fresh_hello())).await.unwrap();
    let r = tokio::time::timeout(T, c.next()).await.expect("garbage");
    match r {
        Some(Err(cms::proto::codec::CodecError::Proto(e))) => {
            assert_eq!(e, ProtoError::UnknownType(0x50))
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
    drop(c); // the collector would close here; the script waits for exactly that
    let rec = sw.connection(1).await;
    rec.assert_ok();
    assert_eq!(rec.hello, Some(fresh_hello()));
    assert_eq!(sw.hellos_seen(), 2);
}

#[tokio::test]
async fn scripted_switch_reports_a_missing_ack_with_a_clear_message() {
    let sw = ScriptedSwitch::bind();
    sw.push(
        Script::new()
            .expect_hello()
            .wait_ack_within(10, Duration::from_millis(300)),
    );
    let mut c = connect(sw.addr()).await;
    c.send(Frame::Hello(fresh_hello())).await.unwrap();
    c.send(Frame::Ack { epoch: 1, seq: 9 }).await.unwrap();
    let rec = sw.connection(0).await;
    match &rec.outcome {
        ConnOutcome::Failed(msg) => {
            assert!(msg.contains("ACK with seq >= 10"), "{msg}");
            assert!(msg.contains("last ACK seq 9"), "{msg}");
        }
        ConnOutcome::Ok => panic!("the script should have failed"),
    }
    sw.take_failures(); // consumed: do not fail the test on drop
}

#[test]
fn scripted_switch_works_without_a_tokio_test_runtime() {
    // A blocking test (the collector driven from std threads) uses the *_blocking API.
    let sw = ScriptedSwitch::bind();
    sw.push(
        Script::new()
            .expect_hello()
            .sleep(Duration::from_millis(10))
            .close(),
    );
    let addr = sw.addr();
    let client = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(&Frame::Hello(fresh_hello()).to_bytes())
            .unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        rest
    });
    assert_eq!(sw.next_hello_blocking(), fresh_hello());
    assert!(client.join().unwrap().is_empty(), "the switch sent nothing");
    sw.connection_blocking(0).assert_ok();
}

// ---------------------------------------------------------------------------------------
// The collector's side of the session ("Collector-side checks"), through the real binary
// ---------------------------------------------------------------------------------------

const EPOCH_A: u64 = 7;
const EPOCH_B: u64 = 8;

/// Translations and agent 100 logging in at 09:50 (seqs 1..=5).
fn first_five() -> Vec<Frame> {
    let mut v = common::translations(1, common::collector::t(9, 50, 0));
    v.extend(common::agent_login(
        4,
        common::collector::t(9, 50, 0),
        100,
        &[common::SKILL],
    ));
    v
}

/// Seqs 6..=14 (the worked-example call offered at 09:58) and a tick at 10:15.
fn rest_of_stream() -> Vec<Frame> {
    let t = common::collector::t;
    let mut v = common::answered_call(6, t(9, 58, 0), &CallSpec::default());
    v.push(common::tick(t(10, 15, 0), 14));
    v
}

/// A switch time ten years after the worked example: beyond this server's clock + 24 h.
fn ten_years_on() -> i64 {
    common::collector::t(9, 56, 0) + 10 * 365 * 86_400_000
}

/// A collector holding seqs 1..=5 of epoch A meets a switch whose next session opens with
/// `bad` (answered to its HELLO {A, 6}): the collector must close that session, log
/// `expect` with the peer, book nothing from it, and resume from 6 on the next one.
fn refused_after_history(name: &str, bad: fn() -> Vec<Frame>, expect: &str) {
    let t = common::collector::t;
    let sw = ScriptedSwitch::bind();
    sw.push(
        Script::new()
            .expect_hello()
            .send(vec![common::welcome(
                EPOCH_A,
                StartMode::Replay,
                1,
                t(9, 50, 0),
            )])
            .send(first_five())
            .wait_ack(5)
            .close(),
    );
    sw.push(
        Script::new()
            .expect_hello()
            .respond(move |h| {
                assert_eq!((h.epoch, h.resume_from), (EPOCH_A, 6));
                bad()
            })
            .expect_closed_within(Duration::from_secs(10)),
    );
    sw.push(
        Script::new()
            .expect_hello()
            .respond(move |h| {
                assert_eq!((h.epoch, h.resume_from), (EPOCH_A, 6), "nothing was taken");
                let mut v = vec![common::welcome(EPOCH_A, StartMode::Replay, 6, t(9, 58, 0))];
                v.extend(rest_of_stream());
                v
            })
            .wait_ack(14),
    );
    let mut c = common::collector::Collector::start(sw.addr());
    sw.connection_blocking(0).assert_ok();
    let refused = sw.connection_blocking(1);
    if let ConnOutcome::Failed(m) = &refused.outcome {
        panic!("{name}: the collector kept the session: {m}\n{}", c.log());
    }
    sw.connection_blocking(2).assert_ok();
    c.stop();
    let log = c.log();
    assert!(
        log.contains(expect) && log.contains(&sw.addr().to_string()),
        "{name}: the log should name the peer and say {expect:?}:\n{log}"
    );
    let db = common::collector::open(&c.db_path()).unwrap();
    for m in [45, 60] {
        let istart = t(9, 0, 0) + m * 60_000;
        assert_eq!(
            common::collector::status(&db, istart).unwrap().0,
            "complete",
            "{name}: interval +{m} min"
        );
    }
    let acd = |istart| common::collector::item(&db, "hsplit", "split = 1", istart, "acdcalls");
    assert_eq!(acd(t(10, 0, 0)), 1, "{name}: the call is booked once");
}

#[test]
fn collector_refuses_a_start_that_does_not_continue_its_resume_point() {
    type Case = (&'static str, fn() -> Vec<Frame>, &'static str);
    let cases: [Case; 9] = [
        (
            "replay that skips an event",
            || {
                vec![common::welcome(
                    EPOCH_A,
                    StartMode::Replay,
                    7,
                    common::collector::t(9, 58, 0),
                )]
            },
            "does not continue our epoch 7 seq 6",
        ),
        (
            "replay of another epoch",
            || {
                vec![common::welcome(
                    EPOCH_B,
                    StartMode::Replay,
                    6,
                    common::collector::t(9, 58, 0),
                )]
            },
            "does not continue our epoch 7 seq 6",
        ),
        (
            "pump-up below the resume point",
            || {
                let ts = common::collector::t(9, 56, 0);
                let mut v = vec![common::welcome(EPOCH_A, StartMode::Pumpup, 4, ts)];
                v.extend(common::pumpup(3, ts, vec![]));
                v
            },
            "pump-up from seq 4 of our epoch 7 is before our resume point 6",
        ),
        (
            "GAP that does not start at resume_from",
            || {
                let ts = common::collector::t(9, 56, 0);
                let mut v = vec![common::welcome(EPOCH_A, StartMode::Pumpup, 50, ts)];
                v.extend(common::pumpup(49, ts, vec![]));
                v.push(Frame::Gap { from: 7, to: 49 });
                v
            },
            "GAP 7..=49 after the pump-up where GAP 6..=49 was due",
        ),
        (
            "no GAP where one is due",
            || {
                let ts = common::collector::t(9, 56, 0);
                let mut v = vec![common::welcome(EPOCH_A, StartMode::Pumpup, 50, ts)];
                v.extend(common::pumpup(49, ts, vec![]));
                v.push(common::tick(ts, 49));
                v
            },
            "no GAP after the pump-up where GAP 6..=49 was due",
        ),
        (
            "GAP of a new epoch that does not start at 1",
            || {
                let ts = common::collector::t(9, 56, 0);
                let mut v = vec![common::welcome(EPOCH_B, StartMode::Pumpup, 41, ts)];
                v.extend(common::pumpup(40, ts, vec![]));
                v.push(Frame::Gap { from: 6, to: 40 });
                v
            },
            "GAP 6..=40 after the pump-up where GAP 1..=40 was due",
        ),
        // "Time bounds": the times of the opening, each checked as it arrives.
        (
            "WELCOME switch_ts beyond our clock",
            || {
                vec![common::welcome(
                    EPOCH_A,
                    StartMode::Replay,
                    6,
                    ten_years_on(),
                )]
            },
            "WELCOME switch_ts time ",
        ),
        (
            "PUMPUP_BEGIN ts beyond our clock",
            || {
                let ts = common::collector::t(9, 56, 0);
                let mut v = vec![common::welcome(EPOCH_A, StartMode::Pumpup, 50, ts)];
                v.extend(common::pumpup(49, ten_years_on(), vec![]));
                v
            },
            "PUMPUP_BEGIN time ",
        ),
        (
            "SNAP_CALL offered_ts beyond our clock",
            || {
                let ts = common::collector::t(9, 56, 0);
                let mut v = vec![common::welcome(EPOCH_A, StartMode::Pumpup, 50, ts)];
                let call = Frame::SnapCall(CallSnapshot {
                    call: 8,
                    vdn: 1,
                    tkgrp: 1,
                    phase: CallPhase::Queued,
                    agent: 0,
                    skills: vec![1],
                    offered_ts: ten_years_on(),
                });
                v.extend(common::pumpup(49, ts, vec![call]));
                v
            },
            "SNAP_CALL offered_ts time ",
        ),
    ];
    for (name, bad, expect) in cases {
        refused_after_history(name, bad, expect);
    }
}

#[test]
fn fresh_collector_refuses_a_gap_after_its_pumpup() {
    let t = common::collector::t;
    let ts = t(9, 56, 0);
    let sw = ScriptedSwitch::bind();
    sw.push(
        Script::new()
            .expect_hello()
            .respond(move |h| {
                assert_eq!((h.epoch, h.resume_from), (0, 0));
                let mut v = vec![common::welcome(EPOCH_A, StartMode::Pumpup, 50, ts)];
                v.extend(common::pumpup(49, ts, vec![]));
                v.push(Frame::Gap { from: 1, to: 49 });
                v
            })
            .expect_closed_within(Duration::from_secs(10)),
    );
    sw.push(
        Script::new()
            .expect_hello()
            .respond(move |h| {
                assert_eq!((h.epoch, h.resume_from), (0, 0), "nothing was taken");
                let mut v = vec![common::welcome(EPOCH_A, StartMode::Pumpup, 50, ts)];
                v.extend(common::pumpup(49, ts, vec![]));
                v.push(common::tick(t(10, 0, 0), 49));
                v
            })
            .wait_ack(49),
    );
    let mut c = common::collector::Collector::start(sw.addr());
    let refused = sw.connection_blocking(0);
    if let ConnOutcome::Failed(m) = &refused.outcome {
        panic!("the collector kept the session: {m}\n{}", c.log());
    }
    sw.connection_blocking(1).assert_ok();
    c.stop();
    let log = c.log();
    assert!(
        log.contains("GAP 1..=49 after the pump-up where no GAP was due"),
        "{log}"
    );
}

/// WELCOME announces 300 ms; the collector is configured for 60 s: it must send its own
/// HEARTBEAT at the switch's rate, or a switch that declares a silent peer dead after
/// 3 x its heartbeat_ms would drop a healthy collector. The switch waits for 4 of them
/// (1.2 s at 300 ms) at most 20 s, in which the configured 60 s would give none.
#[test]
fn collector_heartbeats_at_least_as_often_as_the_switch() {
    let t = common::collector::t;
    let sw = ScriptedSwitch::bind();
    let welcome = Frame::Welcome(Welcome {
        version: PROTOCOL_VERSION_MAX,
        acd: 1,
        epoch: EPOCH_A,
        mode: StartMode::Replay,
        first_seq: 1,
        switch_ts: t(9, 50, 0),
        heartbeat_ms: 300,
    });
    sw.push(
        Script::new()
            .keepalive(Duration::from_millis(100))
            .expect_hello()
            .send(vec![welcome])
            .send(first_five())
            .wait_heartbeats(4)
            .wait_ack(5),
    );
    let mut c = common::collector::Collector::configure_full(
        "test-a",
        sw.addr(),
        "UTC",
        "heartbeat_ms = 60000",
    );
    c.spawn();
    let conn = sw.connection_blocking(0);
    conn.assert_ok();
    c.stop();
    let heartbeats = conn
        .received
        .iter()
        .filter(|f| matches!(f, Frame::Heartbeat { .. }))
        .count();
    assert!(
        heartbeats >= 4,
        "{heartbeats} heartbeats from the collector:\n{}",
        c.log()
    );
}

/// "Snapshot records": the receiver does not enforce the order skills, VDNs, trunk groups,
/// agents, calls. A pump-up sent in the reverse order is taken whole, and the agent it
/// describes accrues from the snapshot's time on.
#[test]
fn collector_takes_a_pumpup_in_any_order() {
    let t = common::collector::t;
    let ts = t(10, 0, 0);
    let sw = ScriptedSwitch::bind();
    sw.push(
        Script::new()
            .expect_hello()
            .respond(move |h| {
                assert_eq!((h.epoch, h.resume_from), (0, 0));
                vec![
                    common::welcome(EPOCH_A, StartMode::Pumpup, 50, ts),
                    Frame::PumpupBegin { as_of_seq: 49, ts },
                    Frame::SnapAgent(AgentSnapshot {
                        agent: 100,
                        state: AgentState::Avail,
                        work_skill: 0,
                        skills: vec![SkillLevel { skill: 1, level: 1 }],
                    }),
                    Frame::SnapTrunkGroup(common::tkgrp_def()),
                    Frame::SnapVdn(common::vdn_def()),
                    Frame::SnapSkill(common::skill_def()),
                    Frame::PumpupEnd,
                    common::tick(t(10, 30, 0), 49),
                ]
            })
            .wait_ack(49),
    );
    let mut c = common::collector::Collector::start(sw.addr());
    sw.connection_blocking(0).assert_ok();
    c.stop();
    let db = common::collector::open(&c.db_path()).unwrap();
    let avail =
        |m| common::collector::item(&db, "hagent", "agent = 100", t(10, m, 0), "i_availtime");
    assert_eq!((avail(0), avail(15)), (900, 900));
    let skills: i64 = db
        .query_row("SELECT COUNT(*) FROM skill_def WHERE acd = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(skills, 1, "the skill of the snapshot is recorded");
}
