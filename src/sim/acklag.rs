//! `--ack-stats`: how long each collector takes to acknowledge what the switch sent, seen
//! from the switch (docs/linksim.md, "ACK lag").
//!
//! The lag of an ACK `{epoch, seq}` runs from the moment the switch appended event `seq`
//! to its log (the generator made it; it is sent at once to a caught-up session) to the
//! moment the ACK arrives. A collector ACKs after its checkpoint commit
//! (proto/acd-link.md, "ACK in practice"), so the lag is what the collector adds between
//! the switch and the disk: events waiting unread in its socket, the aggregation, the
//! commit and its fsync. Only ACKs that acknowledge something new have a lag: an ACK that
//! repeats the last one (nothing arrived meanwhile) is recorded without one.
//!
//! Owns the record of when each batch of events joined the log ([`Appended`], kept by
//! the switch's state under its lock and trimmed with the log), the per-link lag
//! histograms and the CSV file. Not the sessions: `switch.rs` calls [`AckLog::ack`].

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Lags are counted in 1 ms buckets up to this; longer ones share the last bucket (the
/// maximum is kept exactly).
const BUCKETS: usize = 10_000;

/// When each batch of events joined the log: (the last seq of the batch, when), oldest
/// first. The generator appends a batch every few milliseconds, so this is a few hundred
/// entries per second, trimmed with the log.
#[derive(Debug, Default)]
pub struct Appended {
    batches: VecDeque<(u64, Instant)>,
    /// The first seq whose time is held (the log was trimmed up to here).
    from: u64,
}

impl Appended {
    /// Events up to `head` have just been appended.
    pub fn push(&mut self, head: u64, at: Instant) {
        if self.batches.back().is_none_or(|b| b.0 < head) {
            self.batches.push_back((head, at));
        }
    }

    /// Forgets the events before `first_seq` (trimmed from the log).
    pub fn trim(&mut self, first_seq: u64) {
        self.from = self.from.max(first_seq);
        while self.batches.front().is_some_and(|f| f.0 < first_seq) {
            self.batches.pop_front();
        }
    }

    /// A new epoch: seqs start again from 1.
    pub fn clear(&mut self) {
        self.batches.clear();
        self.from = 0;
    }

    /// When event `seq` was appended, if it is still held.
    pub fn when(&self, seq: u64) -> Option<Instant> {
        if seq < self.from {
            return None;
        }
        let i = self.batches.partition_point(|b| b.0 < seq);
        self.batches.get(i).map(|b| b.1)
    }
}

/// One link's lags, in 1 ms buckets.
#[derive(Debug, Clone)]
struct Lags {
    counts: Vec<u64>,
    n: u64,
    max_ms: u64,
    /// ACKs that acknowledged something new whose send time was no longer held (the
    /// link was more than `--buffer` events behind).
    unknown: u64,
}

impl Lags {
    fn new() -> Lags {
        Lags {
            counts: vec![0; BUCKETS],
            n: 0,
            max_ms: 0,
            unknown: 0,
        }
    }

    fn add(&mut self, ms: u64) {
        self.counts[(ms as usize).min(BUCKETS - 1)] += 1;
        self.n += 1;
        self.max_ms = self.max_ms.max(ms);
    }

    /// The `q` quantile (nearest rank), ms; the maximum for the top bucket.
    fn quantile(&self, q: f64) -> u64 {
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n.max(1));
        let mut seen = 0;
        for (ms, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return if ms == BUCKETS - 1 {
                    self.max_ms
                } else {
                    ms as u64
                };
            }
        }
        self.max_ms
    }
}

/// One link's ACK lag over a run, for the summary line.
#[derive(Debug, Clone, PartialEq)]
pub struct AckLag {
    pub link: String,
    /// ACKs with a lag (each acknowledged something new).
    pub acks: u64,
    pub p50_ms: u64,
    pub p99_ms: u64,
    pub max_ms: u64,
    /// ACKs of something new whose send time was no longer held.
    pub unknown: u64,
}

impl std::fmt::Display for AckLag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ACKs, p50 {} ms, p99 {} ms, max {} ms",
            self.link, self.acks, self.p50_ms, self.p99_ms, self.max_ms
        )?;
        if self.unknown > 0 {
            write!(f, " ({} more without a send time)", self.unknown)?;
        }
        Ok(())
    }
}

/// The `--ack-stats` file and the per-link histograms.
pub struct AckLog {
    path: PathBuf,
    /// `None` once a write failed (logged once; the run goes on without the file).
    out: Option<std::io::BufWriter<std::fs::File>>,
    links: Vec<(String, Lags)>,
}

impl AckLog {
    /// Creates (or truncates) `path` and writes the CSV header.
    ///
    /// # Errors
    /// The file cannot be created or written.
    pub fn create(path: &Path, links: &[String]) -> std::io::Result<AckLog> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        out.write_all(b"unix_ms,link,seq,lag_ms\n")?;
        out.flush()?;
        Ok(AckLog {
            path: path.to_path_buf(),
            out: Some(out),
            links: links.iter().map(|l| (l.clone(), Lags::new())).collect(),
        })
    }

    /// Records an ACK of `seq` on `link`: `lag` is `None` for an ACK that acknowledged
    /// nothing new, `Some(None)` for one whose send time is no longer held. One short
    /// line into the page cache, flushed, so the file can be followed as the run goes
    /// (a few lines a second: cheap enough for the session task that calls it).
    pub fn ack(&mut self, link: usize, seq: u64, lag: Option<Option<Duration>>) {
        let (name, lags) = &mut self.links[link];
        let ms = match lag {
            Some(Some(d)) => {
                let ms = d.as_millis() as u64;
                lags.add(ms);
                ms.to_string()
            }
            Some(None) => {
                lags.unknown += 1;
                String::new()
            }
            None => String::new(),
        };
        let Some(out) = &mut self.out else {
            return;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let r = writeln!(out, "{now},{name},{seq},{ms}").and_then(|()| out.flush());
        if let Err(e) = r {
            tracing::warn!(path = %self.path.display(), "cannot write the ACK stats, stopping them: {e}");
            self.out = None;
        }
    }

    /// Each link's lags so far.
    pub fn summary(&self) -> Vec<AckLag> {
        self.links
            .iter()
            .map(|(link, l)| AckLag {
                link: link.clone(),
                acks: l.n,
                p50_ms: l.quantile(0.5),
                p99_ms: l.quantile(0.99),
                max_ms: l.max_ms,
                unknown: l.unknown,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_finds_the_batch_of_a_seq_and_trims() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut a = Appended::default();
        a.push(10, at(0));
        a.push(10, at(5)); // nothing new: ignored
        a.push(25, at(20));
        a.push(40, at(40));
        assert_eq!(a.when(1), Some(at(0)));
        assert_eq!(a.when(10), Some(at(0)));
        assert_eq!(a.when(11), Some(at(20)));
        assert_eq!(a.when(40), Some(at(40)));
        assert_eq!(a.when(41), None, "not appended yet");
        a.trim(20);
        assert_eq!(a.when(20), Some(at(20)), "its batch is partly held");
        assert_eq!(a.when(19), None, "trimmed");
        a.trim(26);
        assert_eq!(a.when(26), Some(at(40)));
        assert_eq!(a.when(25), None, "trimmed");
        a.clear();
        assert_eq!(a.when(40), None);
        a.push(3, at(50));
        assert_eq!(a.when(1), Some(at(50)), "a new epoch starts from seq 1");
    }

    #[test]
    fn quantiles_by_nearest_rank_and_the_top_bucket_is_the_max() {
        let mut l = Lags::new();
        for ms in 1..=100 {
            l.add(ms);
        }
        assert_eq!(l.quantile(0.5), 50);
        assert_eq!(l.quantile(0.99), 99);
        assert_eq!(l.quantile(1.0), 100);
        l.add(25_000);
        assert_eq!(l.max_ms, 25_000);
        assert_eq!(l.quantile(1.0), 25_000);
        assert_eq!(Lags::new().quantile(0.5), 0, "no ACKs");
    }

    #[test]
    fn the_file_has_a_line_per_ack_and_the_summary_counts_lags_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("acks.csv");
        let mut log = AckLog::create(&p, &["A".into(), "B".into()]).unwrap();
        log.ack(0, 7, Some(Some(Duration::from_millis(12))));
        log.ack(0, 7, None);
        log.ack(1, 9, Some(None));
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "unix_ms,link,seq,lag_ms");
        assert!(lines[1].ends_with(",A,7,12"), "{}", lines[1]);
        assert!(lines[2].ends_with(",A,7,"), "{}", lines[2]);
        assert!(lines[3].ends_with(",B,9,"), "{}", lines[3]);
        let s = log.summary();
        assert_eq!((s[0].acks, s[0].max_ms, s[0].unknown), (1, 12, 0));
        assert_eq!((s[1].acks, s[1].unknown), (0, 1));
        assert_eq!(
            s[0].to_string(),
            "A 1 ACKs, p50 12 ms, p99 12 ms, max 12 ms"
        );
    }
}
