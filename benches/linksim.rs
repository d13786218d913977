//! Generator throughput: events generated per second on one core, nothing connected,
//! truth off (issue #3 target: 2,000,000 events/s). Run with
//! `cargo bench --bench linksim`; prints the figure and the ratio to the target.

use cms::sim::gen::{Generator, Stop};
use cms::sim::profile::Profile;
use std::time::Instant;

const TARGET: f64 = 2_000_000.0;

fn main() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/reference.toml");
    let profile = Profile::load(&path).expect("reference profile");
    // 2024-01-15T00:00:00Z, a week of switch time: night and day, shifts, breaks.
    let start = 1_705_276_800;
    let end = start + 7 * 86_400;
    let mut best = 0.0f64;
    for round in 0..3 {
        let mut g = Generator::new(&profile, 1 + round, start, end, None);
        g.start_epoch();
        let t0 = Instant::now();
        loop {
            let stop = g.run_until(end, 1_000_000);
            // What the switch does with a chunk when no link is connected: drop it.
            g.out.clear();
            if stop == Stop::Reached {
                break;
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        let rate = g.counts.events as f64 / secs;
        println!(
            "round {round}: {} events, {} calls in {:.3} s: {:.0} events/s",
            g.counts.events, g.counts.calls, secs, rate
        );
        best = best.max(rate);
    }
    println!(
        "linksim generator: {:.0} events/s on one core ({:.2} x the {:.0} events/s target)",
        best,
        best / TARGET,
        TARGET
    );
}
