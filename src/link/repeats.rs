//! Identical warnings, rate-limited (proto/acd-link.md, "Roles and connection"): a peer
//! that fails the same way on every retry is reported once, then once a
//! [`REPEAT_WARN_EVERY`] with the count held back in between. Used by the collector's
//! reconnects to the switch and by the peer sync's failed sessions; the caller logs, this
//! only decides, so the clock is passed in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often an identical warning is repeated at WARN level; in between it is logged at
/// DEBUG and counted.
pub const REPEAT_WARN_EVERY: Duration = Duration::from_secs(60);

/// Messages kept before the ones older than [`REPEAT_WARN_EVERY`] are forgotten.
const KEEP: usize = 64;

/// What was said of each message, and when.
#[derive(Debug, Default)]
pub struct Repeats {
    /// Message -> (when it was last logged at WARN, repeats held back since).
    seen: HashMap<String, (Instant, u64)>,
}

/// Whether to warn of a message now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Said {
    /// Not seen within [`REPEAT_WARN_EVERY`]: warn.
    First,
    /// Warned of less than [`REPEAT_WARN_EVERY`] ago: log at DEBUG only.
    Held,
    /// Warned of `secs` seconds ago, and `held` times held back since: warn, with the count.
    Again { held: u64, secs: u64 },
}

impl Said {
    /// What to add to the warning: `""` the first time, ` (N more times in the last S s)`
    /// after repeats were held back; `None` when it is held back (log it at DEBUG).
    pub fn suffix(self) -> Option<String> {
        match self {
            Said::First => Some(String::new()),
            Said::Held => None,
            Said::Again { held, secs } => {
                Some(format!(" ({held} more times in the last {secs} s)"))
            }
        }
    }
}

impl Repeats {
    /// Notes `msg` (the text without what changes each time, such as a jittered delay)
    /// at `now`, and says whether to warn of it.
    pub fn note(&mut self, msg: &str, now: Instant) -> Said {
        if self.seen.len() > KEEP {
            self.seen
                .retain(|_, (at, _)| now.saturating_duration_since(*at) < REPEAT_WARN_EVERY);
        }
        match self.seen.get_mut(msg) {
            Some((at, held)) if now.saturating_duration_since(*at) < REPEAT_WARN_EVERY => {
                *held += 1;
                Said::Held
            }
            Some((at, held)) => {
                let said = Said::Again {
                    held: *held,
                    secs: now.saturating_duration_since(*at).as_secs(),
                };
                (*at, *held) = (now, 0);
                said
            }
            None => {
                self.seen.insert(msg.to_string(), (now, 0));
                Said::First
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_warning_is_held_back_then_counted() {
        let mut r = Repeats::default();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(r.note("down", t0), Said::First);
        assert_eq!(r.note("down", t0 + s(1)), Said::Held);
        assert_eq!(r.note("down", t0 + s(59)), Said::Held);
        // Another message is not held back by the first.
        assert_eq!(r.note("refused", t0 + s(59)), Said::First);
        assert_eq!(
            r.note("down", t0 + s(61)),
            Said::Again { held: 2, secs: 61 }
        );
        assert_eq!(r.note("down", t0 + s(62)), Said::Held);
        assert_eq!(Said::First.suffix().as_deref(), Some(""));
        assert_eq!(Said::Held.suffix(), None);
        assert_eq!(
            Said::Again { held: 2, secs: 61 }.suffix().as_deref(),
            Some(" (2 more times in the last 61 s)")
        );
    }

    #[test]
    fn old_messages_are_forgotten_once_many_were_seen() {
        let mut r = Repeats::default();
        let t0 = Instant::now();
        for i in 0..=KEEP {
            r.note(&format!("m{i}"), t0);
        }
        r.note("new", t0 + REPEAT_WARN_EVERY);
        assert_eq!(r.seen.len(), 1, "only the message noted now is kept");
        assert_eq!(r.note("m0", t0 + REPEAT_WARN_EVERY), Said::First);
    }
}
