//! Per-day digests of the closed intervals, and the comparison that says what to fetch
//! (proto/peer-sync.md, "Digests and drill-down"). Pure: the rows come from
//! `store::peer::status_rows`.

use super::wire::{DayDigest, IntervalSum};
use crate::store::peer::{PeerDay, PeerView, StatusRow};
use chrono::NaiveDate;
use std::collections::BTreeMap;

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")
}

/// A local date as days since 1970-01-01 (0 for a date before it or unreadable).
pub fn day_number(date: &str) -> u32 {
    NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .map(|d| (d - epoch()).num_days().clamp(0, u32::MAX as i64) as u32)
        .unwrap_or(0)
}

/// The local date of a day number.
pub fn date_of(day: u32) -> NaiveDate {
    epoch() + chrono::Days::new(day as u64)
}

/// The 32 bytes of a hex checksum; a checksum that is not 64 hex digits (never written
/// by this release) is hashed, so that it still compares by content.
pub fn checksum_bytes(hex: &str) -> [u8; 32] {
    let b = hex.as_bytes();
    if b.len() == 64 && b.iter().all(u8::is_ascii_hexdigit) {
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex checked");
        }
        return out;
    }
    *blake3::hash(b).as_bytes()
}

/// A row as it crosses in a DAY message.
pub fn summary(r: &StatusRow) -> IntervalSum {
    IntervalSum {
        istart: r.istart,
        complete: r.complete,
        checksum: checksum_bytes(&r.checksum),
    }
}

/// The digest of one day's intervals (in time order): BLAKE3 over each interval's
/// `istart` (i64 BE), status (1 complete, 2 incomplete) and 32-byte checksum, cut to 16
/// bytes. Two servers with the same closed intervals in the same states and contents
/// have the same digest.
pub fn day_digest(day: u32, rows: &[IntervalSum]) -> DayDigest {
    let mut h = blake3::Hasher::new();
    for r in rows {
        h.update(&r.istart.to_be_bytes());
        h.update(&[if r.complete { 1 } else { 2 }]);
        h.update(&r.checksum);
    }
    DayDigest {
        day,
        intervals: rows.len().min(u16::MAX as usize) as u16,
        complete: rows
            .iter()
            .filter(|r| r.complete)
            .count()
            .min(u16::MAX as usize) as u16,
        digest: h.finalize().as_bytes()[..16].try_into().expect("16 bytes"),
    }
}

/// The rows grouped by day number, each day's in time order.
pub fn by_day(rows: &[StatusRow]) -> BTreeMap<u32, Vec<IntervalSum>> {
    let mut m: BTreeMap<u32, Vec<IntervalSum>> = BTreeMap::new();
    for r in rows {
        m.entry(day_number(&r.date)).or_default().push(summary(r));
    }
    m
}

/// Every day's digest.
pub fn digests(days: &BTreeMap<u32, Vec<IntervalSum>>) -> Vec<DayDigest> {
    days.iter().map(|(d, rows)| day_digest(*d, rows)).collect()
}

/// What the comparison of one ACD found, from the asker's side.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// Days to fetch (the peer has there something this server lacks complete).
    pub fetch: Vec<u32>,
    /// Days whose intervals must be compared one by one (both have the day, digests
    /// differ): answer with [`compare_day`].
    pub drill: Vec<u32>,
    /// Complete on both, different contents.
    pub conflicts: Vec<i64>,
    /// Intervals complete here that the peer lacks complete.
    pub peer_lacks: u64,
    /// The first day on which the peer holds intervals this server has complete only
    /// incomplete or not at all (the retention guard keeps from there). Days the peer has
    /// nothing of are not counted here: the peer fetches them itself if its retention
    /// wants them, and a peer with a shorter retention must not hold ours forever.
    pub peer_lacks_from: Option<u32>,
}

impl Comparison {
    fn lacks(&mut self, day: u32, n: u64, guard: bool) {
        if n > 0 {
            self.peer_lacks += n;
            if guard {
                self.peer_lacks_from = Some(self.peer_lacks_from.map_or(day, |d| d.min(day)));
            }
        }
    }
}

/// Compares this server's days with the peer's digests: equal days are done, days only
/// one side has are fetched or counted, the others need a drill-down.
pub fn compare_digests(mine: &BTreeMap<u32, Vec<IntervalSum>>, theirs: &[DayDigest]) -> Comparison {
    let mut c = Comparison::default();
    let theirs: BTreeMap<u32, &DayDigest> = theirs.iter().map(|d| (d.day, d)).collect();
    for (day, rows) in mine {
        match theirs.get(day) {
            None => c.lacks(
                *day,
                rows.iter().filter(|r| r.complete).count() as u64,
                false,
            ),
            Some(t) if t.digest == day_digest(*day, rows).digest => {}
            Some(_) => c.drill.push(*day),
        }
    }
    for (day, t) in theirs {
        if !mine.contains_key(&day) && t.intervals > 0 {
            c.fetch.push(day);
        }
    }
    c.fetch.sort_unstable();
    c
}

/// Compares one day interval by interval: the day is fetched when the peer has an
/// interval this server lacks (missing here) or has only incomplete while the peer's is
/// complete, at or before `open` (the interval this server is collecting is never
/// asked for). Both complete with different checksums: a conflict.
pub fn compare_day(
    c: &mut Comparison,
    day: u32,
    mine: &[IntervalSum],
    theirs: &[IntervalSum],
    open: Option<i64>,
) {
    let m: BTreeMap<i64, &IntervalSum> = mine.iter().map(|r| (r.istart, r)).collect();
    let t: BTreeMap<i64, &IntervalSum> = theirs.iter().map(|r| (r.istart, r)).collect();
    let mut want = false;
    for (istart, p) in &t {
        if open.is_some_and(|o| *istart >= o) {
            continue;
        }
        match m.get(istart) {
            None => want = true,
            Some(h) if !h.complete && p.complete => want = true,
            Some(h) if h.complete && p.complete && h.checksum != p.checksum => {
                c.conflicts.push(*istart)
            }
            Some(_) => {}
        }
    }
    let lacks = m
        .iter()
        .filter(|(i, h)| h.complete && !t.get(i).is_some_and(|p| p.complete))
        .count();
    c.lacks(day, lacks as u64, true);
    if want {
        c.fetch.push(day);
        c.fetch.sort_unstable();
    }
}

/// What an ask saw of the peer's intervals of `acd` at UTC `at`: the peer's digests
/// (`theirs`), this server's days (`mine`), the rows of the days drilled into (`listed`)
/// and the days fetched whole. A day of the peer's that was not drilled into is this
/// server's when this server has it (equal digests) or fetched it; else the peer alone
/// holds it, and only its counts are known.
pub fn peer_view(
    acd: u16,
    at: i64,
    theirs: &[DayDigest],
    mine: &BTreeMap<u32, Vec<IntervalSum>>,
    mut listed: BTreeMap<u32, Vec<(i64, bool)>>,
    fetched: &[u32],
) -> PeerView {
    let mut days = BTreeMap::new();
    for t in theirs.iter().filter(|t| t.intervals > 0) {
        let d = if let Some(rows) = listed.remove(&t.day) {
            PeerDay::Listed(rows)
        } else if mine.contains_key(&t.day) || fetched.contains(&t.day) {
            PeerDay::Same
        } else {
            PeerDay::Held {
                intervals: t.intervals,
                complete: t.complete,
            }
        };
        days.insert(t.day, d);
    }
    PeerView { acd, at, days }
}

/// Consecutive days joined into inclusive ranges: one backup stream per range.
pub fn ranges(days: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = vec![];
    for &d in days {
        match out.last_mut() {
            Some((_, hi)) if *hi + 1 == d => *hi = d,
            Some((_, hi)) if *hi == d => {}
            _ => out.push((d, d)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(istart: i64, complete: bool, sum: u8) -> IntervalSum {
        IntervalSum {
            istart,
            complete,
            checksum: [sum; 32],
        }
    }

    #[test]
    fn days_and_numbers_agree() {
        assert_eq!(day_number("1970-01-02"), 1);
        assert_eq!(date_of(day_number("2026-11-04")).to_string(), "2026-11-04");
        assert_eq!(checksum_bytes(&"ab".repeat(32)), [0xab; 32]);
    }

    #[test]
    fn comparison_fetches_what_is_lacking_complete_and_reports_conflicts() {
        let mine: BTreeMap<u32, Vec<IntervalSum>> = [
            (1, vec![row(0, true, 1), row(900, false, 2)]),
            (2, vec![row(86_400, true, 3)]),
            (4, vec![row(4 * 86_400, true, 4)]),
        ]
        .into();
        let theirs_1 = vec![row(0, true, 1), row(900, true, 5)];
        let theirs_2 = vec![row(86_400, true, 9)];
        let theirs: BTreeMap<u32, Vec<IntervalSum>> = [
            (1, theirs_1.clone()),
            (2, theirs_2.clone()),
            (3, vec![row(3 * 86_400, false, 7)]),
        ]
        .into();
        let mut c = compare_digests(&mine, &digests(&theirs));
        assert_eq!(c.fetch, vec![3], "a day only the peer has");
        assert_eq!(c.drill, vec![1, 2]);
        assert_eq!(
            (c.peer_lacks, c.peer_lacks_from),
            (1, None),
            "day 4: the peer has none of it"
        );
        compare_day(&mut c, 1, &mine[&1], &theirs_1, None);
        compare_day(&mut c, 2, &mine[&2], &theirs_2, None);
        assert_eq!(c.fetch, vec![1, 3], "incomplete here, complete there");
        assert_eq!(c.conflicts, vec![86_400], "complete on both, different");
        // The interval being collected here is never asked for.
        let mut d = Comparison::default();
        compare_day(&mut d, 1, &mine[&1], &theirs_1, Some(900));
        assert!(d.fetch.is_empty());
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), vec![(1, 3), (5, 5), (7, 8)]);
    }

    #[test]
    fn the_view_of_the_peer_lists_drilled_days_and_knows_the_rest_by_digest() {
        let mine: BTreeMap<u32, Vec<IntervalSum>> = [
            (1, vec![row(86_400, true, 1)]),
            (2, vec![row(2 * 86_400, false, 2)]),
        ]
        .into();
        let theirs: BTreeMap<u32, Vec<IntervalSum>> = [
            (1, vec![row(86_400, true, 1)]),
            (
                2,
                vec![row(2 * 86_400, true, 2), row(2 * 86_400 + 900, false, 3)],
            ),
            (3, vec![row(3 * 86_400, true, 4)]),
            (
                9,
                vec![row(9 * 86_400, true, 5), row(9 * 86_400 + 900, false, 6)],
            ),
        ]
        .into();
        let mut c = compare_digests(&mine, &digests(&theirs));
        assert_eq!(c.drill, vec![2]);
        let day2 = &theirs[&2];
        compare_day(&mut c, 2, &mine[&2], day2, None);
        let listed = [(2, day2.iter().map(|r| (r.istart, r.complete)).collect())].into();
        // Day 9 was left to the peer (older than this server keeps, say).
        let v = peer_view(1, 77, &digests(&theirs), &mine, listed, &[2, 3]);
        assert_eq!(v.at, 77);
        assert_eq!(v.days[&1], PeerDay::Same, "equal digests");
        assert_eq!(
            v.days[&2],
            PeerDay::Listed(vec![(2 * 86_400, true), (2 * 86_400 + 900, false)])
        );
        assert_eq!(v.days[&3], PeerDay::Same, "fetched whole");
        assert_eq!(
            v.days[&9],
            PeerDay::Held {
                intervals: 2,
                complete: 1
            }
        );
        assert_eq!(
            v.days.len(),
            4,
            "a day the peer has nothing of is not in the view"
        );
    }

    #[test]
    fn identical_days_have_identical_digests_and_any_change_shows() {
        let a = vec![row(0, true, 1), row(900, true, 2)];
        assert_eq!(day_digest(1, &a), day_digest(1, &a.clone()));
        for b in [
            vec![row(0, true, 1)],
            vec![row(0, true, 1), row(900, false, 2)],
            vec![row(0, true, 1), row(900, true, 3)],
        ] {
            assert_ne!(day_digest(1, &a).digest, day_digest(1, &b).digest);
        }
    }
}
