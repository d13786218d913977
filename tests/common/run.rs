//! The simulated run the pair scenarios start from (`tests/ha_scenarios.rs`,
//! `tests/peer_sync.rs`, `tests/power_cut.rs`): one builder of `cms-linksim`'s arguments
//! instead of a `morning()` per test file.
//!
//! [`Run::morning`] is the usual one: the reference centre from 06:00 on 2026-11-04 for six
//! hours at 1200x (six switch hours in 18 s of wall time), a replay buffer of 3000 events
//! (about six minutes of the reference traffic), both links awaited. Each scenario changes
//! what it needs ([`Run::from`], [`Run::hours`], [`Run::buffer`], [`Run::links`],
//! [`Run::faults`]) and starts the simulator ([`Run::sim`]) or the simulator and both
//! collectors ([`Run::pair`]).

use super::sim::{local_ts, Pair, Sim};

pub const PROFILE: &str = "reference";
pub const DAY: &str = "2026-11-04";

/// UTC seconds of `hhmm` on [`DAY`] in the profile's zone.
pub fn at(hhmm: &str) -> i64 {
    local_ts(PROFILE, &format!("{DAY}T{hhmm}"))
}

#[must_use]
#[derive(Clone, Debug)]
pub struct Run {
    seed: u64,
    start: String,
    hours: u32,
    buffer: u32,
    links: u8,
    faults: String,
}

impl Run {
    /// The reference centre from 06:00 for six hours at 1200x, buffer 3000, two links.
    pub fn morning(seed: u64) -> Run {
        Run {
            seed,
            start: "06:00".into(),
            hours: 6,
            buffer: 3000,
            links: 2,
            faults: String::new(),
        }
    }
    /// Starts at `hhmm` of [`DAY`] instead.
    pub fn from(mut self, hhmm: &str) -> Run {
        self.start = hhmm.into();
        self
    }
    pub fn hours(mut self, hours: u32) -> Run {
        self.hours = hours;
        self
    }
    /// The switch's replay buffer, in events (400000 holds a whole run).
    pub fn buffer(mut self, events: u32) -> Run {
        self.buffer = events;
        self
    }
    /// How many links the simulator waits for before its clock starts.
    pub fn links(mut self, n: u8) -> Run {
        self.links = n;
        self
    }
    /// A fault script (`cms-linksim --faults`, e.g. `A:down@07:00-07:45`).
    pub fn faults(mut self, script: &str) -> Run {
        self.faults = script.into();
        self
    }
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// `cms-linksim`'s arguments (besides the profile, listeners and truth).
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            "--seed",
            &self.seed.to_string(),
            "--start",
            &format!("{DAY}T{}", self.start),
            "--duration",
            &format!("{}h", self.hours),
            "--speed",
            "1200",
            "--buffer",
            &self.buffer.to_string(),
            "--wait-links",
            &self.links.to_string(),
        ]
        .map(String::from)
        .into();
        if !self.faults.is_empty() {
            a.extend(["--faults".into(), self.faults.clone()]);
        }
        a
    }
    /// Starts the simulator.
    pub fn sim(&self) -> Sim {
        let args = self.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Sim::start(PROFILE, &args)
    }
    /// Starts the simulator and both collectors (A on link A, B on link B).
    pub fn pair(&self) -> Pair {
        self.pair_with("", "")
    }
    /// [`Run::pair`] with extra configuration lines for A and for B.
    pub fn pair_with(&self, extra_a: &str, extra_b: &str) -> Pair {
        Pair::on(self.sim(), PROFILE, extra_a, extra_b)
    }
}
