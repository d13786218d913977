//! `cms-asterisk` speed (issue #16): replay a month of a 500-agent centre's queue log at
//! no less than 200,000 link events/s (parse + translate + encode, one core, from a file
//! on disk through the follower), beside the baseline of only splitting the same bytes
//! into lines; and follow a live log with under 1 s from a line's write to its events
//! (the bridge's own loop: the follower polled every 200 ms, the default).
//!
//! `cargo bench --bench asterisk`; `CMS_BENCH_DAYS=7` for a shorter log.

use bytes::BytesMut;
use cms::asterisk::follow::{Follower, Item};
use cms::asterisk::{Mapping, Translator};
use cms::proto::{Event, Frame};
use std::io::Write;
use std::time::{Duration, Instant};

const TARGET: f64 = 200_000.0;
const LATENCY_TARGET: Duration = Duration::from_secs(1);
const AGENTS: usize = 500;
const QUEUES: usize = 50;

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The queue log of a day: members added at 07:55, calls 08:00-18:00 every ~1.2 s
/// (3,000 an hour), 90 % answered after a wait, the rest abandoned, breaks, members
/// removed at 18:30. Lines in time order.
fn day(d: i64, rng: &mut Rng, uid: &mut u64) -> Vec<(i64, String)> {
    let base = 1_704_067_200 + d * 86_400; // 2024-01-01 UTC + d days
    let mut v: Vec<(i64, String)> = Vec::new();
    for a in 0..AGENTS {
        for k in 0..3 {
            let q = (a + k * 17) % QUEUES;
            v.push((
                base + 7 * 3600 + 55 * 60,
                format!("{}|NONE|q{q}|PJSIP/{}|ADDMEMBER|", base + 28_500, 1000 + a),
            ));
        }
    }
    let mut free_at = vec![0i64; AGENTS];
    let mut t = base + 8 * 3600;
    while t < base + 18 * 3600 {
        t += 1 + rng.below(2) as i64;
        *uid += 1;
        let id = format!("{}.{}", t, uid);
        let q = rng.below(QUEUES as u64) as usize;
        v.push((
            t,
            format!("{t}|{id}|q{q}|NONE|ENTERQUEUE||5550{}|1", *uid % 1000),
        ));
        let wait = 2 + rng.below(40) as i64;
        let a = (q + QUEUES * rng.below((AGENTS / QUEUES) as u64) as usize) % AGENTS;
        if rng.below(10) == 0 || free_at[a] > t + wait {
            let at = t + wait;
            v.push((at, format!("{at}|{id}|q{q}|NONE|ABANDON|1|1|{wait}")));
            continue;
        }
        let c = t + wait;
        let talk = 30 + rng.below(400) as i64;
        free_at[a] = c + talk;
        let m = 1000 + a;
        v.push((
            c,
            format!("{c}|{id}|q{q}|PJSIP/{m}|CONNECT|{wait}|{id}.1|3"),
        ));
        let e = c + talk;
        v.push((
            e,
            format!("{e}|{id}|q{q}|PJSIP/{m}|COMPLETECALLER|{wait}|{talk}|1"),
        ));
        if rng.below(20) == 0 {
            let p = e + 1;
            v.push((p, format!("{p}|NONE|q{q}|PJSIP/{m}|PAUSE|Lunch")));
            let u = p + 600;
            v.push((u, format!("{u}|NONE|q{q}|PJSIP/{m}|UNPAUSE|")));
            free_at[a] = u;
        }
    }
    for a in 0..AGENTS {
        for k in 0..3 {
            let q = (a + k * 17) % QUEUES;
            let at = base + 18 * 3600 + 1800 + 3600;
            v.push((
                at,
                format!("{at}|NONE|q{q}|PJSIP/{}|REMOVEMEMBER|", 1000 + a),
            ));
        }
    }
    v.sort_by_key(|(t, _)| *t);
    v
}

fn main() {
    let days: i64 = std::env::var("CMS_BENCH_DAYS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue_log");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let (mut rng, mut uid) = (Rng(0x9e37_79b9_7f4a_7c15), 0u64);
        for d in 0..days {
            for (_, l) in day(d, &mut rng, &mut uid) {
                writeln!(f, "{l}").unwrap();
            }
        }
    }
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!(
        "queue log: {days} days of {AGENTS} agents, {:.0} MB",
        bytes as f64 / 1e6
    );

    // Baseline: the same file split into lines by the follower, nothing else.
    let t0 = Instant::now();
    let mut fw = Follower::new(&path);
    let mut items = Vec::new();
    fw.poll(&mut items).unwrap();
    let lines = items.iter().filter(|i| matches!(i, Item::Line(_))).count();
    let base_secs = t0.elapsed().as_secs_f64();
    drop(items);

    // Replay: follow + parse + translate + encode, as the bridge does at start.
    let mut best = 0.0f64;
    let mut events = 0u64;
    for round in 0..2 {
        let t0 = Instant::now();
        let mut fw = Follower::new(&path);
        let mut tr = Translator::new(Mapping::default());
        let mut items = Vec::new();
        fw.poll(&mut items).unwrap();
        let (mut out, mut buf, mut seq) = (Vec::new(), BytesMut::new(), 0u64);
        for (n, it) in items.iter().enumerate() {
            if let Item::Line(l) = it {
                let _ = tr.line(n as u64, l, &mut out);
                for (ts, kind) in out.drain(..) {
                    seq += 1;
                    Frame::Event(Event { seq, ts, kind }).encode(&mut buf);
                }
                if buf.len() > 1 << 20 {
                    buf.clear();
                }
            }
        }
        events = seq;
        let secs = t0.elapsed().as_secs_f64();
        let rate = events as f64 / secs;
        println!(
            "round {round}: {lines} lines -> {events} events in {secs:.2} s: {rate:.0} events/s \
             ({} garbage, {} inexact)",
            tr.stats.garbage, tr.stats.inexact
        );
        best = best.max(rate);
    }
    println!(
        "replay: {best:.0} events/s ({:.2} x the {TARGET:.0} events/s target); baseline, \
         lines split only: {:.0} lines/s; {events} events",
        best / TARGET,
        lines as f64 / base_secs
    );

    // Live follow: a writer appends a line every 50 ms; the bridge's loop polls every
    // 200 ms and translates; the latency is write -> events out.
    let live = dir.path().join("live_log");
    std::fs::write(&live, "").unwrap();
    let writer_path = live.clone();
    let start = Instant::now();
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(writer_path)
            .unwrap();
        let mut sent = Vec::new();
        for i in 0..100u64 {
            let t = 1_706_745_600 + i as i64;
            writeln!(f, "{t}|NONE|q1|PJSIP/{}|ADDMEMBER|", 2000 + i).unwrap();
            f.flush().unwrap();
            sent.push(start.elapsed());
            std::thread::sleep(Duration::from_millis(50));
        }
        sent
    });
    let mut fw = Follower::new(&live);
    let mut tr = Translator::new(Mapping::default());
    let (mut seen, mut lat) = (0usize, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got_at = Vec::new();
    while seen < 100 && Instant::now() < deadline {
        let mut items = Vec::new();
        fw.poll(&mut items).unwrap();
        let mut out = Vec::new();
        for it in items {
            if let Item::Line(l) = it {
                let _ = tr.line(0, &l, &mut out);
                got_at.push(start.elapsed());
                seen += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let sent = writer.join().unwrap();
    for (s, g) in sent.iter().zip(&got_at) {
        lat.push(*g - *s);
    }
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize];
    println!(
        "live follow: {} lines, latency p50 {:?}, p99 {:?}, max {:?} (target < {:?}; the poll \
         period is 200 ms)",
        lat.len(),
        p(0.5),
        p(0.99),
        lat.last().unwrap(),
        LATENCY_TARGET
    );
}
