//! Collector throughput and memory (issue #2 targets). Run with
//! `cargo bench --bench collector`; docs/benchmarks.md explains the figures.
//!
//! 1. Decode + aggregate on one core from an in-memory buffer of encoded frames made by
//!    the simulator's generator (reference profile, truth off): events/s against the
//!    2,000,000 events/s target, beside decode alone as the baseline. Best of 7.
//! 2. End to end over loopback TCP into SQLite: the release `cms-linksim` at `--speed max`
//!    and two release `cms collect` processes. Sustained events/s per collector (both
//!    running) against the 500,000 events/s target, and each collector's peak RSS
//!    (VmHWM) against the 200 MB target.
//!
//! Monitoring overhead (issue #14, target: within 2 %): part 1 runs decode + aggregate
//! with and without the collector's hot-path counters (`metrics::AcdMetrics`, as
//! `collect` calls them) in alternation; part 2 runs once with HTTP off and once with
//! HTTP on and `/metrics` scraped every second on both collectors, side by side.
//!
//! `CMS_BENCH_DAYS` (default 7) sets the simulated days of both parts;
//! `CMS_BENCH_SKIP_E2E=1` runs only part 1; `CMS_BENCH_CMS=PATH` runs part 2 with that
//! `cms` binary instead of `target/release/cms` (to compare two builds back to back on a
//! shared machine, where only figures from the same hour compare).

use cms::agg::{Aggregator, ClosedInterval};
use cms::interval::Grid;
use cms::metrics::{AcdMetrics, Metrics};
use cms::proto::{decode_frame, Decoded, Frame};
use cms::sim::gen::{Generator, Stop};
use cms::sim::profile::Profile;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/procs.rs"]
mod procs;

use procs::{cpu_secs, proc_mb, release_bins, root, wait_for, Guard};

const AGG_TARGET: f64 = 2_000_000.0;
const E2E_TARGET: f64 = 500_000.0;
const RSS_TARGET_MB: f64 = 200.0;
/// 2024-01-15T05:00:00Z, local midnight in the reference profile's zone (New York).
const START: i64 = 1_705_294_800;
const ROUNDS: u64 = 7;

fn days() -> i64 {
    std::env::var("CMS_BENCH_DAYS")
        .ok()
        .and_then(|d| d.parse().ok())
        .filter(|d| *d > 0)
        .unwrap_or(7)
}

fn main() {
    let days = days();
    let profile_path = root().join("profiles/reference.toml");
    let profile = Profile::load(&profile_path).expect("profiles/reference.toml loads");
    println!("collector benchmark: reference profile, {days} simulated day(s)");
    in_memory(&profile, days);
    if std::env::var_os("CMS_BENCH_SKIP_E2E").is_some() {
        println!("end to end: skipped (CMS_BENCH_SKIP_E2E is set)");
        return;
    }
    let off = end_to_end(&profile, &profile_path, days, false);
    let on = end_to_end(&profile, &profile_path, days, true);
    if let (Some(off), Some(on)) = (off, on) {
        println!(
            "monitoring overhead end to end: HTTP off {off:.0} events/s per collector, HTTP on \
             and /metrics scraped every second {on:.0} events/s ({:+.2} %; target within 2 %; \
             one run each on a shared machine: noisy)",
            (on / off - 1.0) * 100.0
        );
    }
}

/// The whole stream of `days` days as one buffer of encoded frames, and its epoch.
fn generate(profile: &Profile, days: i64) -> (Vec<u8>, u64, u64) {
    let end = START + days * 86_400;
    let mut g = Generator::new(profile, 1, START, end, None);
    let epoch = g.start_epoch();
    let mut buf = Vec::new();
    loop {
        let stop = g.run_until(end, 1_000_000);
        buf.extend_from_slice(&g.out);
        g.out.clear();
        if stop == Stop::Reached {
            break;
        }
    }
    (buf, epoch, g.counts.events)
}

/// Decodes every frame of `buf` and applies the events to a fresh aggregator; returns
/// (events, closed intervals, rows in them, the aggregator).
fn decode_and_aggregate(
    buf: &[u8],
    epoch: u64,
    grid: Grid,
    end_ms: i64,
    mut counts: Option<&mut AcdMetrics>,
) -> (u64, u64, u64, Aggregator) {
    let mut agg = Aggregator::new(grid);
    agg.start_epoch(epoch);
    let mut closed: Vec<ClosedInterval> = Vec::new();
    let (mut events, mut intervals, mut rows) = (0u64, 0u64, 0u64);
    let mut frames = 0u64;
    let mut pos = 0;
    while pos < buf.len() {
        let (frame, n) = match decode_frame(&buf[pos..]) {
            Ok(Decoded::Frame(f, n)) => (f, n),
            other => panic!("frame at byte {pos} does not decode: {other:?}"),
        };
        pos += n;
        if let Some(c) = counts.as_deref_mut() {
            c.frame(frame.type_code());
            // As the ACD task does: share the counts every 256 frames.
            frames += 1;
            if frames.is_multiple_of(256) {
                c.flush();
            }
        }
        match frame {
            Frame::Event(ev) => {
                events += 1;
                if let Some(c) = counts.as_deref_mut() {
                    c.event(ev.kind.type_code());
                }
                agg.apply(&ev, &mut closed);
            }
            Frame::Heartbeat { ts, .. } => agg.tick(ts, &mut closed),
            other => panic!("unexpected frame in the stream: {other:?}"),
        }
        if !closed.is_empty() {
            intervals += closed.len() as u64;
            rows += closed.iter().map(|c| c.row_count() as u64).sum::<u64>();
            closed.clear();
        }
    }
    // The switch's final heartbeat closes the last interval.
    agg.tick(end_ms, &mut closed);
    intervals += closed.len() as u64;
    rows += closed.iter().map(|c| c.row_count() as u64).sum::<u64>();
    (events, intervals, rows, agg)
}

/// The baseline: decoding alone.
fn decode_only(buf: &[u8]) -> u64 {
    let mut events = 0u64;
    let mut pos = 0;
    while pos < buf.len() {
        match decode_frame(&buf[pos..]) {
            Ok(Decoded::Frame(f, n)) => {
                if matches!(f, Frame::Event(_)) {
                    events += 1;
                }
                black_box(&f);
                pos += n;
            }
            other => panic!("frame at byte {pos} does not decode: {other:?}"),
        }
    }
    events
}

fn in_memory(profile: &Profile, days: i64) {
    let t0 = Instant::now();
    let (buf, epoch, generated) = generate(profile, days);
    println!(
        "generated {generated} events ({:.1} MB of frames) in {:.1} s",
        buf.len() as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
    let grid = Grid::new(profile.tz(), 15);
    let end_ms = (START + days * 86_400) * 1000;
    let (mut best_agg, mut best_dec, mut best_counted) = (0.0f64, 0.0f64, 0.0f64);
    let mut state_bytes = 0;
    let metrics = Metrics::new("bench");
    let mut counts = metrics.acd(1);
    // Per round, counters on / off: the rounds alternate, so the median of the ratios
    // is less exposed to a neighbour's burst than the two bests are.
    let mut ratios = vec![];
    for round in 0..ROUNDS {
        let t = Instant::now();
        let events = decode_only(&buf);
        let dec = events as f64 / t.elapsed().as_secs_f64();
        assert_eq!(events, generated);
        // Which of the two goes first alternates: the second of a pair runs on a heap the
        // first has used, and that must not count as the counters' cost.
        let off = || {
            let t = Instant::now();
            let r = decode_and_aggregate(&buf, epoch, grid, end_ms, None);
            (r, t.elapsed().as_secs_f64())
        };
        let mut on = || {
            let t = Instant::now();
            let (n, ..) = decode_and_aggregate(&buf, epoch, grid, end_ms, Some(&mut counts));
            n as f64 / t.elapsed().as_secs_f64()
        };
        let (((events, intervals, rows, agg), secs), counted) = if round % 2 == 0 {
            let o = off();
            (o, on())
        } else {
            let c = on();
            (off(), c)
        };
        best_counted = best_counted.max(counted);
        ratios.push(counted / (events as f64 / secs));
        state_bytes = agg.checkpoint().len();
        assert_eq!(events, generated);
        let rate = events as f64 / secs;
        println!(
            "round {round}: decode only {dec:.0} events/s; decode + aggregate {rate:.0} events/s \
             ({intervals} intervals, {rows} rows closed, {secs:.2} s); with the metrics' \
             counters {counted:.0} events/s"
        );
        best_agg = best_agg.max(rate);
        best_dec = best_dec.max(dec);
    }
    println!(
        "decode + aggregate, one core: {best_agg:.0} events/s ({:.2} x the {AGG_TARGET:.0} events/s target; \
         decode alone {best_dec:.0} events/s, aggregation costs {:.0} % of the time)",
        best_agg / AGG_TARGET,
        (1.0 - best_agg / best_dec) * 100.0
    );
    ratios.sort_by(f64::total_cmp);
    println!(
        "metrics overhead, decode + aggregate, median of {ROUNDS} rounds' ratios: {:+.2} %",
        (ratios[ratios.len() / 2] - 1.0) * 100.0
    );
    println!(
        "metrics overhead, decode + aggregate, best of {ROUNDS}: counters off {best_agg:.0} \
         events/s, on {best_counted:.0} events/s ({:+.2} %; target within 2 %)",
        (best_counted / best_agg - 1.0) * 100.0
    );
    println!(
        "aggregation state after {days} day(s) (checkpoint size): {:.2} MB",
        state_bytes as f64 / 1e6
    );
}

/// One end-to-end run; `http`: the collectors serve HTTP and a thread scrapes
/// `/metrics` on both every second. Returns the sustained events/s per collector.
fn end_to_end(profile: &Profile, profile_path: &Path, days: i64, http: bool) -> Option<f64> {
    let (cms, sim) = release_bins("end to end")?;
    println!(
        "end to end with HTTP {}",
        if http {
            "on, /metrics scraped every second"
        } else {
            "off"
        }
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    // --buffer holds the whole run (a reference day is about 415,000 events), so no
    // collector is ever dropped for falling behind.
    let buffer = 2_000_000 * days;
    let (mut simc, ports) = procs::linksim_two_links(sim.as_ref(), d, |c| {
        c.arg("--profile")
            .arg(profile_path)
            .args(["--seed", "1", "--start", "2024-01-15T00:00"])
            .args(["--duration", &format!("{days}d"), "--speed", "max"])
            .args(["--buffer", &buffer.to_string()])
            .args(["--drain-timeout", "600"]);
    });
    let mut collectors = Vec::new();
    for (name, link) in [("srv-a", "A"), ("srv-b", "B")] {
        let cd = d.join(name);
        std::fs::create_dir_all(&cd).unwrap();
        std::fs::write(
            cd.join("cms.toml"),
            format!(
                "server_id = \"{name}\"\ndata_dir = \"data\"\ntime_zone = \"{}\"\n\
                 checkpoint_seconds = 1\n\n[http]\n{}\n\
                 [[acd]]\nid = 1\nswitch = \"127.0.0.1:{}\"\n",
                profile.time_zone,
                if http {
                    "listen = \"127.0.0.1:0\""
                } else {
                    "enabled = false"
                },
                ports[link]
            ),
        )
        .unwrap();
        let log = std::fs::File::create(cd.join("collector.log")).unwrap();
        let child = Command::new(&cms)
            .arg("--config")
            .arg(cd.join("cms.toml"))
            .arg("collect")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cms collect starts");
        collectors.push((name, cd, Guard(Some(child))));
    }
    // The simulator starts its clock once both links have a session; each collector logs
    // "replay" when its session begins.
    let t0 = wait_for("both collectors' sessions", Duration::from_secs(30), || {
        collectors
            .iter()
            .all(|(_, cd, _)| {
                std::fs::read_to_string(cd.join("collector.log"))
                    .is_ok_and(|l| l.contains("replay"))
            })
            .then(Instant::now)
    });
    let scraper = http.then(|| Scraper::start(collectors.iter().map(|(_, cd, _)| cd.clone())));
    // Resident memory of both collectors over the run, to see whether it grows.
    let pids: Vec<u32> = collectors
        .iter()
        .map(|(_, _, g)| g.0.as_ref().unwrap().id())
        .collect();
    let mut samples: Vec<(f64, Vec<f64>)> = Vec::new();
    let sim_pid = simc.0.as_ref().unwrap().id();
    let mut sim_cpu = 0.0;
    let status = {
        let c = simc.0.as_mut().unwrap();
        let st = wait_for("cms-linksim exit", Duration::from_secs(3600), || {
            let t = t0.elapsed().as_secs_f64();
            if samples.last().is_none_or(|s| t - s.0 >= 0.25) {
                let rss = pids.iter().map(|p| proc_mb(*p, "VmRSS:").unwrap_or(0.0));
                samples.push((t, rss.collect()));
            }
            sim_cpu = cpu_secs(sim_pid).unwrap_or(sim_cpu);
            c.try_wait().expect("try_wait")
        });
        simc.0 = None;
        st
    };
    let wall = t0.elapsed().as_secs_f64();
    let (log, summary, events) = procs::linksim_done(d, status);
    println!("{summary}");
    for l in log.lines().filter(|l| {
        !l.contains(" done: ") && (l.contains("overrun") || l.contains("drain timeout"))
    }) {
        println!("WARNING: {l}");
    }
    if let Some(sc) = scraper {
        println!("  /metrics scraped {} times", sc.stop());
    }
    let per = events as f64 / wall;
    println!(
        "end to end, 2 collectors over loopback into SQLite: {events} events each in {wall:.2} s \
         (clock start to simulator exit, last event acknowledged by both)"
    );
    println!(
        "  sustained per collector: {per:.0} events/s ({:.2} x the {E2E_TARGET:.0} events/s target); \
         both together {:.0} events/s",
        per / E2E_TARGET,
        2.0 * per
    );
    println!(
        "  cms-linksim: {sim_cpu:.2} CPU s (sampled until just before its exit); the machine has {} core(s)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if let Some(last) = samples.last().map(|s| s.0) {
        let mut line = String::from("  resident memory over the run (srv-a / srv-b, MB):");
        for q in [0.1, 0.25, 0.5, 0.75, 1.0] {
            if let Some((t, rss)) = samples.iter().find(|s| s.0 >= q * last) {
                line += &format!(" {t:.1} s {:.0}/{:.0};", rss[0], rss[1]);
            }
        }
        println!("{}", line.trim_end_matches(';'));
    }
    for (name, cd, mut g) in collectors {
        let mut c = g.0.take().unwrap();
        let hwm = proc_mb(c.id(), "VmHWM:");
        let cpu = cpu_secs(c.id());
        Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .expect("kill -TERM");
        let st = wait_for(
            "collector exit after SIGTERM",
            Duration::from_secs(30),
            || c.try_wait().expect("try_wait"),
        );
        let db = std::fs::metadata(cd.join("data/cms.db"))
            .map(|m| m.len())
            .unwrap_or(0);
        if let Some(cpu) = cpu {
            println!(
                "  {name}: {cpu:.2} CPU s in {wall:.2} s wall ({:.0} % of a core), \
                 {:.0} events per CPU second",
                cpu / wall * 100.0,
                events as f64 / cpu
            );
        }
        match hwm {
            Some(mb) => println!(
                "  {name}: peak RSS {mb:.1} MB ({:.2} x the {RSS_TARGET_MB:.0} MB target), database {:.1} MB, exit code {:?}",
                mb / RSS_TARGET_MB,
                db as f64 / 1e6,
                st.code()
            ),
            None => println!("  {name}: peak RSS unknown (no /proc/PID/status), exit code {:?}", st.code()),
        }
        let incomplete = std::fs::read_to_string(cd.join("collector.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("interval closed incomplete"))
            .count();
        if incomplete > 0 {
            println!("  WARNING: {name} closed {incomplete} interval(s) incomplete");
        }
    }
    Some(per)
}

/// Scrapes `/metrics` of every collector every second on a thread of its own, as a
/// Prometheus server would, until stopped.
struct Scraper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Scraper {
    /// The collectors' addresses come from their "serving HTTP ... addr=" log lines.
    fn start(dirs: impl Iterator<Item = PathBuf>) -> Scraper {
        use std::io::{Read, Write};
        let addrs: Vec<std::net::SocketAddr> = dirs
            .map(|cd| {
                wait_for(
                    "a collector's HTTP address",
                    Duration::from_secs(30),
                    || {
                        let log = std::fs::read_to_string(cd.join("collector.log")).ok()?;
                        let line = log.lines().find(|l| l.contains("serving HTTP"))?;
                        line.split("addr=")
                            .nth(1)?
                            .split_whitespace()
                            .next()?
                            .parse()
                            .ok()
                    },
                )
            })
            .collect();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                for a in &addrs {
                    let Ok(mut s) = std::net::TcpStream::connect_timeout(a, Duration::from_secs(5))
                    else {
                        continue;
                    };
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let req =
                        format!("GET /metrics HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\r\n");
                    let mut body = Vec::new();
                    if s.write_all(req.as_bytes()).is_ok() && s.read_to_end(&mut body).is_ok() {
                        assert!(body.starts_with(b"HTTP/1.1 200"), "/metrics of {a} failed");
                        n += 1;
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            n
        });
        Scraper { stop, thread }
    }

    /// Stops scraping; how many scrapes answered.
    fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("scraper thread")
    }
}
