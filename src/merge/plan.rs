//! The restore plan: per ACD and interval, what a restore does with the backup's copy.
//!
//! Pure: it compares the target's interval status with the backup's manifest and
//! decides; it reads no file and writes no row. The rules are promise 2 of DOMAIN.md:
//! fill what is missing, replace what is incomplete with a complete copy, keep what is
//! complete, report (never resolve) two complete copies that disagree, and never touch
//! the interval being collected or anything after it.

use serde::Serialize;

/// What one side knows about an interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub complete: bool,
    pub checksum: String,
    /// Switch sequence range the copy was built from (0 when none): the measure of
    /// "covers more" between two incomplete copies.
    pub first_seq: u64,
    pub last_seq: u64,
    pub row_count: u64,
}

impl Copy {
    fn coverage(&self) -> u64 {
        if self.first_seq == 0 || self.last_seq < self.first_seq {
            0
        } else {
            self.last_seq - self.first_seq + 1
        }
    }
}

/// The decision for one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The target has nothing: take the backup's copy.
    Fill,
    /// The target is incomplete, the backup complete: take the backup's copy.
    Replace,
    /// Both incomplete, the backup's copy covering more of the switch's stream: take it
    /// (the interval stays incomplete, with less missing).
    Improve,
    /// The target's copy stays (it is complete, or covers at least as much).
    Keep,
    /// Both complete and different: reported, nothing written, exit code non-zero.
    Conflict,
    /// The interval is being collected on the target, or lies after its position.
    SkipCurrent,
}

/// Decides for one interval. `current` is the UTC start of the interval the target is
/// collecting (`None` when the target has never collected).
pub fn decide(istart: i64, current: Option<i64>, target: Option<&Copy>, backup: &Copy) -> Action {
    if current.is_some_and(|c| istart >= c) {
        return Action::SkipCurrent;
    }
    match target {
        None => Action::Fill,
        Some(t) if t.complete => {
            if backup.complete && backup.checksum != t.checksum {
                Action::Conflict
            } else {
                Action::Keep
            }
        }
        Some(t) => {
            if backup.complete {
                Action::Replace
            } else if backup.coverage() > t.coverage() {
                Action::Improve
            } else {
                Action::Keep
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn copy(complete: bool, sum: &str, first: u64, last: u64) -> Copy {
        Copy {
            complete,
            checksum: sum.into(),
            first_seq: first,
            last_seq: last,
            row_count: 1,
        }
    }

    #[test]
    fn the_rules() {
        let c = copy(true, "a", 1, 10);
        let c2 = copy(true, "b", 1, 10);
        let i = copy(false, "x", 1, 5);
        let i_more = copy(false, "y", 1, 8);
        assert_eq!(decide(0, Some(100), None, &c), Action::Fill);
        assert_eq!(decide(0, Some(100), None, &i), Action::Fill);
        assert_eq!(decide(0, Some(100), Some(&i), &c), Action::Replace);
        assert_eq!(decide(0, Some(100), Some(&c), &c), Action::Keep);
        assert_eq!(decide(0, Some(100), Some(&c), &i), Action::Keep);
        assert_eq!(decide(0, Some(100), Some(&c), &c2), Action::Conflict);
        assert_eq!(decide(0, Some(100), Some(&i), &i_more), Action::Improve);
        assert_eq!(decide(0, Some(100), Some(&i_more), &i), Action::Keep);
        assert_eq!(decide(100, Some(100), None, &c), Action::SkipCurrent);
        assert_eq!(decide(200, Some(100), Some(&i), &c), Action::SkipCurrent);
        assert_eq!(decide(200, None, None, &c), Action::Fill);
    }

    fn arb_copy() -> impl Strategy<Value = Copy> {
        (any::<bool>(), 0u8..3, 0u64..5, 0u64..10)
            .prop_map(|(c, s, f, l)| copy(c, &s.to_string(), f, l))
    }

    proptest! {
        /// Never overwrites complete data; applying the decision and deciding again
        /// gives Keep (idempotence).
        #[test]
        fn never_overwrites_complete_and_is_idempotent(t in proptest::option::of(arb_copy()), b in arb_copy()) {
            let a = decide(0, Some(10), t.as_ref(), &b);
            if t.as_ref().is_some_and(|t| t.complete) {
                prop_assert!(matches!(a, Action::Keep | Action::Conflict));
            }
            let after = match a {
                Action::Fill | Action::Replace | Action::Improve => Some(b.clone()),
                _ => t.clone(),
            };
            let again = decide(0, Some(10), after.as_ref(), &b);
            prop_assert!(matches!(again, Action::Keep | Action::Conflict));
            prop_assert_eq!(again == Action::Conflict, a == Action::Conflict);
        }
    }
}
