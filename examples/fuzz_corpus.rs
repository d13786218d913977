//! Writes the seed corpora of the fuzz targets (`docs/fuzzing.md`) into `fuzz/corpus/`:
//!
//! - `frame`: every hex example of `proto/acd-link.md`, valid and invalid, and one frame
//!   of each type from a recorded simulator stream;
//! - `session`: recorded simulator sessions as a collector receives them (replay from
//!   seq 1, a pump-up, a resume after a restart, a clock set back, a REJECT);
//! - `archive` and `restore`: the backup fixtures and the spec's example file, as they
//!   are and in the unpacked form (`fuzz/src/backup.rs`);
//! - `config`: `packaging/cms.toml`, the embedded default and a few variants;
//! - `peer_msg`: every hex example of `proto/peer-sync.md`, valid and invalid, and the
//!   valid ones one after the other as a conversation.
//!
//! Deterministic (fixed seeds), so running it again rewrites the same files (and keeps
//! the `finding-*` inputs):
//! `cargo run --release --example fuzz_corpus`.

#[path = "../fuzz/src/backup.rs"]
#[allow(dead_code)]
mod backup;

use cms::archive::ArchiveReader;
use cms::proto::{Frame, StartMode, Welcome};
use cms::sim::gen::Generator;
use cms::sim::profile::Profile;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// 2024-03-04 09:00:00 UTC, a Monday.
const START: i64 = 1_709_542_800;
const EPOCH_SEED: u64 = 17;
/// The session target's separator between two sessions.
const SEPARATOR: [u8; 4] = [0xff; 4];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = root().join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// Every ```` ```hex ```` block of a spec: (name, bytes).
fn hex_blocks(spec: &Path) -> Vec<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(spec).unwrap();
    let mut out = vec![];
    let mut cur: Option<(String, Vec<u8>, String)> = None;
    for l in text.lines() {
        if let Some((name, mut bytes, digits)) = cur.take() {
            if l.starts_with("```") {
                assert!(digits.is_empty(), "{}: odd hex in {name}", spec.display());
                out.push((name, bytes));
                continue;
            }
            let mut d = digits;
            for c in l
                .split('#')
                .next()
                .unwrap()
                .chars()
                .filter(|c| !c.is_whitespace())
            {
                d.push(c);
                if d.len() == 2 {
                    bytes.push(u8::from_str_radix(&d, 16).unwrap());
                    d.clear();
                }
            }
            cur = Some((name, bytes, d));
        } else if let Some(info) = l.strip_prefix("```hex") {
            let name = info
                .split_whitespace()
                .find_map(|w| w.strip_prefix("example=").or(w.strip_prefix("invalid=")))
                .unwrap_or("unnamed")
                .to_string();
            cur = Some((name, vec![], String::new()));
        }
    }
    out
}

fn tiny() -> Profile {
    Profile::load(&root().join("profiles/tiny.toml")).unwrap()
}

/// The frames the switch sends over `secs` seconds from `from` with a heartbeat every
/// 10 s of switch time, as `cms-linksim` does on an idle link.
fn stream(g: &mut Generator, from: i64, secs: i64) -> Vec<u8> {
    let mut out = vec![];
    let mut t = from;
    while t < from + secs {
        t += 10;
        while g.run_until(t, u64::MAX) != cms::sim::gen::Stop::Reached {}
        out.extend_from_slice(&g.out.split());
        Frame::Heartbeat {
            ts: g.now_ms(),
            last_seq: g.last_seq(),
        }
        .encode_into(&mut out);
    }
    out
}

trait EncodeInto {
    fn encode_into(&self, out: &mut Vec<u8>);
}

impl EncodeInto for Frame {
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
}

fn welcome(epoch: u64, mode: StartMode, first_seq: u64, ts: i64) -> Frame {
    Frame::Welcome(Welcome {
        version: 1,
        acd: 1,
        epoch,
        mode,
        first_seq,
        switch_ts: ts,
        heartbeat_ms: 1000,
    })
}

fn session_corpus() {
    let p = tiny();
    // Grid byte 1: Europe/London (the profile's zone), 15 minutes.
    let grid = 1u8;
    // Replay from seq 1: a collector with no history meets a cold-started switch.
    let mut g = Generator::new(&p, EPOCH_SEED, START, START + 86_400, None);
    let epoch = g.start_epoch();
    let mut s = vec![grid];
    welcome(epoch, StartMode::Replay, 1, START * 1000).encode_into(&mut s);
    s.extend_from_slice(&g.out.split());
    s.extend(stream(&mut g, START, 1200));
    write("session", "sim-replay-20min", &s);
    // Then a restart: the collector resumes where the first session ended.
    let resume = g.last_seq() + 1;
    s.extend_from_slice(&SEPARATOR);
    welcome(epoch, StartMode::Replay, resume, g.now_ms()).encode_into(&mut s);
    s.extend(stream(&mut g, START + 1200, 600));
    write("session", "sim-replay-resume", &s);
    // And a third session that cannot be replayed: pump-up with a GAP notice.
    let from = g.last_seq() + 1;
    let lost = stream(&mut g, START + 1800, 300);
    drop(lost);
    s.extend_from_slice(&SEPARATOR);
    welcome(epoch, StartMode::Pumpup, g.last_seq() + 1, g.now_ms()).encode_into(&mut s);
    pumpup(&g, &mut s);
    Frame::Gap {
        from,
        to: g.last_seq(),
    }
    .encode_into(&mut s);
    s.extend(stream(&mut g, START + 2100, 300));
    write("session", "sim-replay-resume-gap", &s);

    // A fresh collector meets a switch that has run for a while: pump-up, no GAP.
    let mut g = Generator::new(&p, EPOCH_SEED + 1, START, START + 86_400, None);
    let epoch = g.start_epoch();
    drop(stream(&mut g, START, 1800));
    let mut s = vec![grid];
    welcome(epoch, StartMode::Pumpup, g.last_seq() + 1, g.now_ms()).encode_into(&mut s);
    pumpup(&g, &mut s);
    s.extend(stream(&mut g, START + 1800, 900));
    write("session", "sim-pumpup-15min", &s);

    // The clock set back 10 minutes in the middle.
    let mut g = Generator::new(&p, EPOCH_SEED + 2, START, START + 86_400, None);
    let epoch = g.start_epoch();
    let mut s = vec![grid | 8];
    welcome(epoch, StartMode::Replay, 1, START * 1000).encode_into(&mut s);
    s.extend_from_slice(&g.out.split());
    s.extend(stream(&mut g, START, 600));
    g.change_clock(-600);
    s.extend_from_slice(&g.out.split());
    s.extend(stream(&mut g, START + 600, 600));
    write("session", "sim-clock-back", &s);

    let mut s = vec![0];
    Frame::Reject {
        code: 2,
        text: "ACD 1 is not this switch's ACD".into(),
    }
    .encode_into(&mut s);
    write("session", "reject", &s);
}

fn pumpup(g: &Generator, s: &mut Vec<u8>) {
    Frame::PumpupBegin {
        as_of_seq: g.last_seq(),
        ts: g.now_ms(),
    }
    .encode_into(s);
    for f in g.snapshot() {
        f.encode_into(s);
    }
    Frame::PumpupEnd.encode_into(s);
}

fn frame_corpus() {
    for (name, bytes) in hex_blocks(&root().join("proto/acd-link.md")) {
        write("frame", &format!("spec-{name}"), &bytes);
    }
    // One frame of every type the simulator sends, and a short run of frames.
    let mut g = Generator::new(&tiny(), EPOCH_SEED, START, START + 86_400, None);
    let epoch = g.start_epoch();
    let mut all = vec![];
    welcome(epoch, StartMode::Replay, 1, START * 1000).encode_into(&mut all);
    all.extend_from_slice(&g.out.split());
    all.extend(stream(&mut g, START, 3600));
    pumpup(&g, &mut all);
    let mut by_type: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
    let mut at = 0;
    let mut n = 0;
    while let Ok(cms::proto::Decoded::Frame(f, used)) = cms::proto::decode_frame(&all[at..]) {
        by_type
            .entry(f.type_code())
            .or_insert_with(|| all[at..at + used].to_vec());
        at += used;
        n += 1;
        if n == 40 {
            write("frame", "sim-run-40-frames", &all[..at]);
        }
    }
    for (t, b) in by_type {
        write("frame", &format!("sim-type-{t:02x}"), &b);
    }
}

fn archive_corpus() {
    let mut files: Vec<(String, Vec<u8>)> = ["backup-v1.cmsbak", "backup-v2.cmsbak"]
        .iter()
        .map(|f| {
            let b = std::fs::read(root().join("tests/fixtures").join(f)).unwrap();
            (f.trim_end_matches(".cmsbak").to_string(), b)
        })
        .collect();
    for (name, bytes) in hex_blocks(&root().join("proto/backup-format.md")) {
        files.push((format!("spec-{name}"), bytes));
    }
    for (name, file) in files {
        write("archive", &format!("{name}.cmsbak"), &file);
        let u = backup::unpack(&file).unwrap_or_else(|| panic!("{name}: cannot unpack"));
        // The seed is only worth keeping if it packs into a file the reader accepts.
        let (packed, mode) = backup::pack(&u).unwrap();
        let key = mode.mac.then_some(backup::FUZZ_KEY);
        ArchiveReader::from_reader(std::io::Cursor::new(packed), &name, key.as_ref())
            .unwrap_or_else(|e| panic!("{name}: packed seed refused: {e}"))
            .verify_all()
            .unwrap_or_else(|e| panic!("{name}: packed seed refused: {e}"));
        write("archive", &format!("{name}.unpacked"), &u);
        write("restore", &format!("{name}.unpacked"), &u);
    }
}

fn peer_msg_corpus() {
    let mut conversation = vec![];
    for (name, bytes) in hex_blocks(&root().join("proto/peer-sync.md")) {
        write("peer_msg", &format!("spec-{name}"), &bytes);
        if cms::peer::wire::decode(&bytes).is_ok_and(|m| m.is_some()) {
            conversation.extend_from_slice(&bytes);
        }
    }
    write("peer_msg", "spec-conversation", &conversation);
}

fn config_corpus() {
    let reference = std::fs::read(root().join("packaging/cms.toml")).unwrap();
    write("config", "packaging-cms.toml", &reference);
    write("config", "embedded-default.toml", b"");
    write(
        "config",
        "two-acds.toml",
        br#"server_id = "cms-b"
data_dir = "/var/lib/cms"
interval_minutes = 30
time_zone = "America/New_York"
week_start = "sunday"
checkpoint_seconds = 0.5
heartbeat_ms = 500
backoff_max_seconds = 30
site_key_file = "site.key"

[retention]
intrahour_days = 370
daily_days = 1825
weekly_weeks = 520
monthly_months = 120

[[acd]]
id = 1
switch = "10.0.0.5:5001"
secondary = "10.0.0.6:5001"

[[acd]]
id = 8
switch = "[::1]:5002"
"#,
    );
}

fn main() {
    let dir = root().join("fuzz/corpus");
    // Regenerate the seeds; keep the inputs that found defects (`finding-*`).
    for t in [
        "frame", "session", "archive", "restore", "config", "peer_msg",
    ] {
        for f in std::fs::read_dir(dir.join(t)).into_iter().flatten() {
            let f = f.unwrap();
            if !f.file_name().to_string_lossy().starts_with("finding-") {
                std::fs::remove_file(f.path()).unwrap();
            }
        }
    }
    frame_corpus();
    session_corpus();
    archive_corpus();
    config_corpus();
    peer_msg_corpus();
    let mut total = 0;
    for t in std::fs::read_dir(&dir).unwrap() {
        let t = t.unwrap();
        let (mut n, mut bytes) = (0, 0);
        for f in std::fs::read_dir(t.path()).unwrap() {
            n += 1;
            bytes += f.unwrap().metadata().unwrap().len();
        }
        total += bytes;
        println!(
            "{}: {n} files, {bytes} bytes",
            t.file_name().to_string_lossy()
        );
    }
    println!("corpus: {total} bytes in all");
}
