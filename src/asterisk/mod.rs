//! `cms-asterisk`: an Asterisk queue log as the switch side of the ACD link (issue #16).
//!
//! Asterisk writes every queue event to `/var/log/asterisk/queue_log`, a durable,
//! ordered log. This module turns it into the event stream of `proto/acd-link.md`;
//! `docs/asterisk.md` is its manual (sources, mapping, item by item what is exact,
//! quirks and their bookings).
//!
//! # Layout
//! Data flows one way: log line -> [`parse`] -> [`translate`] (with [`mapping`]) ->
//! `(ts, EventKind)` pairs, sequenced by the caller.
//! - [`parse`]: one queue-log line to a typed event or a named error. No I/O.
//! - [`exact`]: docs/asterisk.md's "what a queue log can give" as data: the items that
//!   are exact (or exact given the configured wrap-up), per table.
//! - [`mapping`]: the TOML mapping (queues -> skills, members -> agents, DIDs -> VDNs,
//!   pause reasons -> AUX codes, wrap-up -> ACW) and its fixed numbering rules.
//! - [`queues_conf`]: Asterisk's `queues.conf` read as the mapping's defaults (queues,
//!   service levels, wrap-up times, static members). No I/O but [`queues_conf::load`].
//! - [`translate`]: the bookings: queue-log events to link events, deterministic, with
//!   the inexact marker where a queue log cannot say what happened. No I/O.
//! - [`follow`]: reading the log file: complete lines only, rotations (rename and
//!   copytruncate), files known by the fingerprint of their first line.
//! - [`bridge`]: `cms-asterisk`: the durable index (epoch, each file's first seq and
//!   starting state), reading the files again after a restart, following, and serving
//!   the stream with the simulator's `LinkServer`.

pub mod bridge;
pub mod exact;
pub mod follow;
pub mod mapping;
pub mod parse;
pub mod queues_conf;
pub mod translate;

pub use mapping::Mapping;
pub use translate::{LineError, Stats, Translator, MARK_CALL};

/// The real queue-log excerpts of `tests/fixtures/asterisk/`, each cited in its header.
#[cfg(test)]
pub(crate) mod fixtures {
    pub const ALL: [(&str, &str); 4] = [
        (
            "asterisk-docs",
            include_str!("../../tests/fixtures/asterisk/asterisk-docs.queue_log"),
        ),
        (
            "tail-queue-log",
            include_str!("../../tests/fixtures/asterisk/tail-queue-log.queue_log"),
        ),
        (
            "wazo-docs",
            include_str!("../../tests/fixtures/asterisk/wazo-docs.queue_log"),
        ),
        (
            "logchart-tests",
            include_str!("../../tests/fixtures/asterisk/logchart-tests.queue_log"),
        ),
    ];

    /// The event lines of a fixture (its `#` header dropped).
    pub fn lines(text: &str) -> impl Iterator<Item = &str> {
        text.lines().filter(|l| !l.starts_with('#'))
    }
}
