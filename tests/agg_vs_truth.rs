//! Property test of the aggregation on random call flows: for random seeds, workloads and
//! interval lengths, the collector's streaming aggregation (`cms::agg`) and the
//! simulator's ground truth (`cms::sim::truth`, computed from whole call and agent
//! timelines) produce the same interval rows, item by item. Two implementations of
//! docs/data-items.md that share no counting code must agree.

use cms::agg::{Aggregator, ClosedInterval};
use cms::interval::Grid;
use cms::items::TABLES;
use cms::proto::{decode_frame, Decoded, Frame};
use cms::sim::gen::{Generator, Stop};
use cms::sim::profile::Profile;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn profile(name: &str) -> Profile {
    Profile::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("profiles/{name}.toml")),
    )
    .unwrap()
}

type Rows = [Vec<(Vec<i64>, Vec<i64>)>; 4];

/// Runs the generator and feeds every event to an aggregator; returns both sides'
/// closed intervals by start.
fn both(
    prof: &Profile,
    seed: u64,
    start: i64,
    hours: i64,
    minutes: u32,
) -> (BTreeMap<i64, Rows>, BTreeMap<i64, Rows>) {
    let end = start + hours * 3600;
    let mut gen = Generator::new(prof, seed, start, end, Some(minutes));
    let epoch = gen.start_epoch();
    let mut agg = Aggregator::new(Grid::new(prof.tz(), minutes));
    agg.start_epoch(epoch);
    let mut closed: Vec<ClosedInterval> = vec![];
    let mut truth = BTreeMap::new();
    loop {
        let stop = gen.run_until(end, 50_000);
        let bytes = gen.out.split();
        let mut at = 0;
        while at < bytes.len() {
            match decode_frame(&bytes[at..]).unwrap() {
                Decoded::Frame(Frame::Event(ev), used) => {
                    agg.apply(&ev, &mut closed);
                    at += used;
                }
                Decoded::Frame(_, used) => at += used,
                Decoded::Incomplete => panic!("generator emitted half a frame"),
            }
        }
        if stop == Stop::Reached {
            break;
        }
    }
    gen.finish();
    agg.tick(end * 1000, &mut closed);
    for ci in gen.truth.as_mut().unwrap().take_closed() {
        assert!(ci.reasons.is_empty());
        truth.insert(ci.istart, ci.rows);
    }
    let mine = closed
        .into_iter()
        .map(|c| {
            assert!(c.complete(), "{}: {:?}", c.istart, c.reasons);
            (c.istart, c.rows)
        })
        .collect();
    (mine, truth)
}

fn first_difference(a: &BTreeMap<i64, Rows>, b: &BTreeMap<i64, Rows>) -> Option<String> {
    for (istart, ra) in a {
        let Some(rb) = b.get(istart) else {
            return Some(format!("interval {istart}: not in the truth"));
        };
        for (t, def) in TABLES.iter().enumerate() {
            let ma: BTreeMap<_, _> = ra[t].iter().cloned().collect();
            let mb: BTreeMap<_, _> = rb[t].iter().cloned().collect();
            for k in ma.keys().chain(mb.keys()) {
                let (x, y) = (ma.get(k), mb.get(k));
                for (i, (name, _)) in def.items.iter().enumerate() {
                    let (vx, vy) = (x.map_or(0, |v| v[i]), y.map_or(0, |v| v[i]));
                    if vx != vy {
                        return Some(format!(
                            "interval {istart} h{} {k:?} {name}: collector {vx}, truth {vy}",
                            def.name
                        ));
                    }
                }
            }
        }
    }
    if a.len() != b.len() {
        return Some(format!("{} intervals vs {} in the truth", a.len(), b.len()));
    }
    None
}

proptest! {
    // PROPTEST_CASES=1000 for a longer hunt.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
    ))]

    #[test]
    fn aggregation_equals_the_truth_on_random_call_flows(
        seed in any::<u64>(),
        hours in 1i64..8,
        start_quarter in 0i64..96,
        minutes in prop::sample::select(vec![15u32, 30, 60]),
        per_hour in 20.0f64..400.0,
        agents in 2u32..12,
    ) {
        let mut prof = profile("tiny");
        prof.calls.per_hour = per_hour;
        prof.agents.count = agents;
        // Any start on a whole minute of a day in March (DST starts in London on the 29th).
        let start = 1_774_224_000 + start_quarter * 900 + (seed % 15) as i64 * 60;
        let (mine, truth) = both(&prof, seed, start, hours, minutes);
        prop_assert!(!mine.is_empty());
        let d = first_difference(&mine, &truth);
        prop_assert!(d.is_none(), "seed {seed}: {}", d.unwrap());
    }
}

/// Across the spring DST change of the tiny profile's zone (Europe/London, 2026-03-29):
/// the day has 92 quarter-hours and both implementations agree on each.
#[test]
fn aggregation_equals_the_truth_across_a_dst_change() {
    let prof = profile("tiny");
    let start = 1_774_738_800; // 2026-03-28 23:00 UTC
    let (mine, truth) = both(&prof, 5, start, 26, 15);
    assert_eq!(first_difference(&mine, &truth), None);
    assert_eq!(mine.len(), 26 * 4);
}

/// Across both DST changes of a zone whose step (30 min) is not a multiple of the
/// interval (60 min): Australia/Lord_Howe, +10:30 <-> +11:00. Both implementations cut an
/// interval at the change (docs/data-items.md, "Time and intervals"), agree on each, and
/// every interval's key is the grid's start of the instants it holds.
#[test]
fn aggregation_equals_the_truth_across_a_half_hour_dst_step() {
    let mut prof = profile("tiny");
    prof.time_zone = "Australia/Lord_Howe".into();
    let grid = Grid::new(prof.tz(), 60);
    // 2026-04-04 15:00 UTC: 02:00 +11 becomes 01:30 +10:30; 2026-10-03 15:30 UTC: 02:00
    // +10:30 becomes 02:30 +11.
    for (start, change) in [
        (1_775_304_000, 1_775_314_800),
        (1_791_028_800, 1_791_041_400),
    ] {
        let (mine, truth) = both(&prof, 3, start, 8, 60);
        assert_eq!(first_difference(&mine, &truth), None, "change at {change}");
        let starts: Vec<i64> = mine.keys().copied().collect();
        assert!(
            starts.contains(&change),
            "an interval starts at the change {change}: {starts:?}"
        );
        for w in starts.windows(2) {
            assert_eq!(grid.next(w[0]), w[1], "contiguous: {starts:?}");
            assert!(w[1] - w[0] <= 3600, "{starts:?}");
        }
        for s in &starts {
            assert_eq!(grid.start_of(*s), *s, "key {s} is its own start");
            assert_eq!(
                grid.start_of(grid.next(*s) - 1),
                *s,
                "the last second of {s}"
            );
        }
    }
}
