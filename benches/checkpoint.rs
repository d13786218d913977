//! The size and the time of a large collector checkpoint (issue #12 item 5). Run with
//! `cargo bench --bench checkpoint`; docs/benchmarks.md explains the figures.
//!
//! The simulator's `Generator` (profile `profiles/large.toml`: 5,000 agents, 200 skills;
//! seed 1, from local midnight 2024-01-15 to 11:00, the morning peak, truth off) feeds an
//! in-process `Aggregator`, so the state holds every agent logged in and the calls in
//! progress at 11:00. Then `Aggregator::checkpoint` (what every commit of `cms collect`
//! stores) and `Aggregator::from_checkpoint` (what a start reads) are timed, best of 9,
//! and the checkpoint's size printed.

use cms::agg::{Aggregator, ClosedInterval};
use cms::interval::Grid;
use cms::proto::{decode_frame, Decoded, Frame};
use cms::sim::gen::{Generator, Stop};
use cms::sim::profile::Profile;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

/// 2024-01-14T23:00:00Z, local midnight in the large profile's zone (Paris).
const START: i64 = 1_705_273_200;
/// 11:00 local: the morning peak.
const END: i64 = START + 11 * 3600;
const ROUNDS: usize = 9;

fn main() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/large.toml");
    let profile = Profile::load(&path).expect("profiles/large.toml loads");
    let grid = Grid::new(profile.tz(), 15);
    let t0 = Instant::now();
    let agg = aggregate(&profile, grid);
    println!(
        "checkpoint benchmark: large profile to 11:00 local ({} events aggregated in {:.1} s)",
        agg.last_seq(),
        t0.elapsed().as_secs_f64()
    );
    let bytes = agg.checkpoint();
    let write = best(|| {
        black_box(agg.checkpoint());
    });
    let read = best(|| {
        black_box(Aggregator::from_checkpoint(grid, &bytes).expect("own checkpoint reads"));
    });
    println!(
        "checkpoint: {:.2} MB; write (Aggregator::checkpoint) {:.2} ms, read \
         (Aggregator::from_checkpoint) {:.2} ms, best of {ROUNDS}",
        bytes.len() as f64 / 1e6,
        write.as_secs_f64() * 1e3,
        read.as_secs_f64() * 1e3
    );
}

/// The generator's stream from START to END applied to a fresh aggregator.
fn aggregate(profile: &Profile, grid: Grid) -> Aggregator {
    let mut g = Generator::new(profile, 1, START, END, None);
    let mut agg = Aggregator::new(grid);
    agg.start_epoch(g.start_epoch());
    let mut closed: Vec<ClosedInterval> = Vec::new();
    loop {
        let stop = g.run_until(END, 1_000_000);
        let mut pos = 0;
        while pos < g.out.len() {
            let (frame, n) = match decode_frame(&g.out[pos..]) {
                Ok(Decoded::Frame(f, n)) => (f, n),
                other => panic!("frame at byte {pos} does not decode: {other:?}"),
            };
            pos += n;
            match frame {
                Frame::Event(ev) => agg.apply(&ev, &mut closed),
                Frame::Heartbeat { ts, .. } => agg.tick(ts, &mut closed),
                other => panic!("unexpected frame in the stream: {other:?}"),
            }
            closed.clear();
        }
        g.out.clear();
        if stop == Stop::Reached {
            return agg;
        }
    }
}

/// The shortest of ROUNDS runs of `f`.
fn best(mut f: impl FnMut()) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .expect("ROUNDS > 0")
}
