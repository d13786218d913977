//! # cms: a dual-server call-data collector
//!
//! A phone switch streams ACD events over two links to two collectors; each turns its
//! stream into exact interval tables in SQLite, and `cms backup` / `cms restore` merge
//! what one server missed from the other. Start with `README.md` and
//! `../shared/DOMAIN.md`; the wire protocol is `proto/acd-link.md`, the items are
//! `docs/data-items.md`.
//!
//! # Layout
//! Data flows one way: link -> events -> intervals -> store (-> archive -> merge).
//! - [`proto`]: the ACD link wire format (frames, encode/decode). No I/O.
//! - [`domain`]: the domain values spelled as words in the database, the JSON and the
//!   backup file (interval status, incompleteness reasons, gap kinds, link states,
//!   summary periods), as enums with those words as their names.
//! - [`items`]: the interval table layout (tables, keys, items), shared by all.
//! - [`interval`]: local-clock interval boundaries (IANA zones, DST; a step that is not
//!   a multiple of the length starts an interval).
//! - [`agg`]: the collector's aggregation: events in, closed interval rows and
//!   interval status out. Pure, deterministic, checkpointable. No I/O.
//! - [`store`]: the SQLite database: schema and migrations, interval rows, status,
//!   checkpoints, summaries, retention, and the SQL of backup and restore
//!   (`store::status`, `store::merge`); `store::raw` moves integer rows through
//!   SQLite's C API for the bulk paths.
//! - [`config`]: the TOML configuration and its embedded default.
//! - [`link`]: the collector side of a link session: connect, handshake and its checks
//!   of the switch's answer, the per-frame session rules (seq, time bounds), heartbeat
//!   timing, reconnect with backoff; `link::repeats` rate-limits identical warnings
//!   (reconnects, failed peer sessions).
//! - [`collect`]: `cms collect`: link + agg + store, checkpoints, a far frame caught up
//!   8 intervals at a time, rate-limited reconnect warnings, and the one shutdown path;
//!   `collect::step` is a session's socket-free part (what each frame does; the fuzz
//!   `session` target calls it too), `collect::writer` runs each ACD's database work on
//!   a thread of its own.
//! - [`web`]: the HTTP endpoints of `cms collect` (`/livez`, `/readyz`, `/metrics`, the
//!   console's routes): the `[http]` section, the router, the token rule, the server task.
//! - [`metrics`]: the collector's live state and counters, read by [`web`].
//! - [`logging`]: `log_format` (plain lines or JSON) and the logger on stderr.
//! - [`report`]: `cms status`, `cms gaps` and `cms compare`.
//! - [`query`]: the read side of the interval and summary tables (rows by family, ACD,
//!   entity, dates and period, with status, local labels and the derived figures):
//!   what `cms report` and the exports read.
//! - [`render`]: `cms report`'s table, CSV and JSON of those rows (stable columns).
//! - [`console`]: the read-only web console (docs/console.md): the overview, the
//!   coverage picture and the interval report as HTML pages from a read-only database,
//!   and their routes on the collector's HTTP server.
//! - [`archive`]: the backup file format (proto/backup-format.md): writer, reader,
//!   verification, the header properties (encode and parse side by side). No database.
//! - [`merge`]: `cms backup` and `cms restore`: snapshot into an archive or any writer
//!   (two reader threads on one snapshot), plan per interval, apply in short
//!   transactions beside a running collector (a second thread decodes while the first
//!   writes). Decides; its SQL is the store's.
//! - [`peer`]: authenticated peer sync (proto/peer-sync.md): identity, mutual TLS 1.3
//!   with pinned certificates, the message codec (no I/O), per-day digests, the session
//!   (the backup stream merged by `merge::restore`), the collector's peer task, status.
//! - [`export`]: `cms export`: the intervals that became complete or changed since a
//!   target's previous export (triggers on `interval_status` see every writer), as the
//!   generic CSV layout, Calabrio's queue file, or into a PostgreSQL warehouse that many
//!   server pairs share (docs/exports.md, docs/warehouse.md).
//! - [`sitekey`]: `cms site-key init` / `show`: a new site key file (random, private to
//!   the service, never replacing one), and which key a server holds.
//! - [`demo`]: `cms demo`, the whole story (switch, two collectors, a link failure, the
//!   pair healing itself by peer sync or, with `--manual`, backup and restore, checks
//!   against the truth) in one process.
//! - `winsvc` (Windows only): the Windows service entry point; Stop resolves the same
//!   shutdown future as SIGTERM.
//! - [`sim`]: `cms-linksim`, the simulated switch and its independent ground truth.
//! - [`asterisk`]: an Asterisk queue log as the switch side: the line parser, the
//!   TOML mapping, and the translation to link events (`docs/asterisk.md`). No I/O.

pub mod agg;
pub mod archive;
pub mod asterisk;
pub mod collect;
pub mod config;
pub mod console;
pub mod demo;
pub mod domain;
pub mod export;
pub mod interval;
pub mod items;
pub mod link;
pub mod logging;
pub mod merge;
pub mod metrics;
pub mod peer;
pub mod proto;
pub mod query;
pub mod render;
pub mod report;
pub mod sim;
pub mod sitekey;
pub mod store;
pub mod web;
#[cfg(windows)]
pub mod winsvc;
