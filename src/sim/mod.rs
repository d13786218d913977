//! `cms-linksim`: the simulated phone switch and its independent ground truth (issue #3).
//!
//! Every HA claim of the project is proven against this switch, and the demo and the
//! benchmarks use it. It is also a tool an integrator can run; `docs/linksim.md` is its
//! manual (profile format, fault grammar, command line).
//!
//! # Layout
//! Data flows one way: profile + seed -> generator -> (encoded stream -> switch -> links)
//! and (timelines -> truth -> truth database).
//! - [`profile`]: the workload profile (TOML) and its validation.
//! - [`dist`]: duration distributions, sampled in whole seconds.
//! - [`gen`]: the deterministic discrete-event simulation; emits encoded event frames and
//!   feeds the truth. No I/O.
//! - [`truth`]: the ground truth, a second implementation of `docs/data-items.md` from
//!   call and agent timelines, and its writer (collector schema, `source = 'truth'`).
//! - [`queuelog`]: the workload as the queue log Asterisk would write for it (the
//!   chain proof through `cms-asterisk`), and the truth restricted to what a queue log
//!   can express. No I/O.
//! - [`faults`]: the fault grammar (one-line form and script files).
//! - [`switch`]: listeners, link sessions (session rules), the clock, faults, drain;
//!   [`LinkServer`], the same sessions for a stream made outside the simulator (the
//!   Asterisk bridge), with its source behind the [`Snapshot`] trait.
//! - [`acklag`]: `--ack-stats`, each ACK's lag from the switch's side (when the event was
//!   appended to the log to when its ACK arrived), a CSV file and per-link quantiles.

pub mod acklag;
pub mod dist;
pub mod faults;
pub mod gen;
pub mod profile;
pub mod queuelog;
pub mod switch;
pub mod truth;

pub use switch::{
    parse_listen, run, LinkServer, LinkServerConfig, Notice, Notices, Snapshot, Speed, Summary,
    SwitchConfig,
};
