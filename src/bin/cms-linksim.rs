//! `cms-linksim`: the simulated phone switch. Parses the command line into a validated
//! [`SwitchConfig`], runs [`cms::sim::run`], prints the summary, maps errors to exit codes.
//!
//! Exit codes: 0 success; 1 a run-time error (a file or address named in the message);
//! 2 a usage error (bad option, bad profile, bad fault script).

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, NaiveDateTime, TimeZone};
use clap::Parser;
use cms::sim::faults::{self, parse_duration};
use cms::sim::profile::Profile;
use cms::sim::queuelog;
use cms::sim::switch::QueueLogConfig;
use cms::sim::{Notice, Speed, SwitchConfig};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A simulated ACD phone switch: streams a deterministic contact-centre workload over one
/// or more ACD links (the same stream on each), with scripted faults, and writes the exact
/// interval tables a perfect collector must produce (ground truth).
///
/// Manual: docs/linksim.md (profile format, fault grammar, examples).
#[derive(Debug, Parser)]
#[command(name = "cms-linksim", version)]
struct Args {
    /// Workload profile (TOML; see profiles/ and docs/linksim.md).
    #[arg(long, value_name = "FILE")]
    profile: PathBuf,

    /// Random seed: the same profile, seed, start and duration give the same stream.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Switch time at the start: local date-time in the profile's zone
    /// (2024-03-04T08:00, seconds optional) or RFC 3339 with an offset (2024-03-04T08:00:00Z).
    #[arg(long, value_name = "DATETIME", default_value = "2024-01-15T08:00:00")]
    start: String,

    /// Switch time to simulate: 90s, 15m, 8h, 1h30m, 2d or plain seconds.
    #[arg(long, value_name = "D", default_value = "1h", value_parser = duration_arg)]
    duration: i64,

    /// Switch clock speed: a factor of real time (1 = real time, 60 = a minute per
    /// second) or `max` (as fast as possible).
    #[arg(long, value_name = "X", default_value = "1", value_parser = speed_arg)]
    speed: Speed,

    /// A link: NAME=ADDR, e.g. A=127.0.0.1:0 (port 0 = any free port). Repeat for more
    /// links; every link carries the identical stream.
    #[arg(long = "listen", value_name = "NAME=ADDR", value_parser = cms::sim::parse_listen)]
    listen: Vec<(String, SocketAddr)>,

    /// Replay buffer per link, in events. A link more than this far behind is dropped.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    buffer: u64,

    /// Faults, one-line form: e.g.
    /// `A:down@10:15-10:50,B:garbage@11:00,restart@12:00,clock@14:00=-10m`.
    #[arg(long, value_name = "SPEC")]
    faults: Option<String>,

    /// Fault script file: the same items, one or more per line, `#` comments.
    #[arg(long, value_name = "FILE")]
    fault_file: Option<PathBuf>,

    /// Write the ground-truth intervals into this new SQLite database (collector schema).
    #[arg(long, value_name = "FILE")]
    truth: Option<PathBuf>,

    /// Interval length for the truth, in minutes.
    #[arg(long, value_name = "M", default_value = "15", value_parser = interval_minutes_arg())]
    interval_minutes: u32,

    /// After binding, write the ports as JSON ({"A": 40123, "B": 40124}) to this file.
    #[arg(long, value_name = "FILE")]
    port_file: Option<PathBuf>,

    /// Do not start the clock until this many links have had a session.
    #[arg(long, value_name = "N", default_value_t = 0)]
    wait_links: usize,

    /// Give up waiting for --wait-links after this many seconds.
    #[arg(long, value_name = "S", default_value_t = 60)]
    wait_timeout: u64,

    /// At the end, wait at most this many seconds for every connected collector to ACK
    /// the last event.
    #[arg(long, value_name = "S", default_value_t = 30)]
    drain_timeout: u64,

    /// Heartbeat period announced in WELCOME and used by the switch, ms.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    heartbeat_ms: u32,

    /// Also write the workload as the Asterisk queue log Asterisk would write for it, into
    /// this new file, paced like the links (`cms-asterisk --log` can follow it). The
    /// profile must be one a queue log can express (profiles/asterisk.toml); the truth
    /// is then restricted to what a queue log can give (docs/asterisk.md).
    #[arg(long, value_name = "FILE")]
    queue_log: Option<PathBuf>,

    /// With --queue-log: write the matching `cms-asterisk --mapping` file here.
    #[arg(long, value_name = "FILE", requires = "queue_log")]
    queue_log_mapping: Option<PathBuf>,

    /// With --queue-log: Asterisk restarts at this time (QUEUESTART; the calls in
    /// progress are cut), in the fault grammar's time forms (+2h, 10:40). Repeatable.
    #[arg(long, value_name = "TIME", requires = "queue_log")]
    queue_log_restart: Vec<String>,

    /// Record every ACK the collectors send into this CSV file (created or truncated):
    /// `unix_ms,link,seq,lag_ms`, the lag running from when the switch made event `seq`
    /// to when its ACK arrived (empty for an ACK of nothing new); quantiles per link in
    /// the summary. See docs/linksim.md, "ACK lag".
    #[arg(long, value_name = "FILE")]
    ack_stats: Option<PathBuf>,
}

/// A usage error: exit code 2.
#[derive(Debug)]
struct Usage(String);
impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Usage {}

fn usage(s: String) -> anyhow::Error {
    anyhow!(Usage(s))
}

/// `--duration`: a positive duration (clap reports a bad one as a usage error, exit 2).
fn duration_arg(s: &str) -> std::result::Result<i64, String> {
    parse_duration(s)
        .filter(|&d| d > 0)
        .ok_or_else(|| "not a positive duration (90s, 15m, 8h)".to_string())
}

/// `--speed`: a positive factor of real time (`60`, `60x`) or `max`.
fn speed_arg(s: &str) -> std::result::Result<Speed, String> {
    if s == "max" {
        return Ok(Speed::Max);
    }
    match s.strip_suffix('x').unwrap_or(s).parse::<f64>() {
        Ok(f) if f > 0.0 && f.is_finite() => Ok(Speed::Factor(f)),
        _ => Err("a positive number or `max`".to_string()),
    }
}

/// `--interval-minutes`: one of the interval lengths the collector has (clap names the
/// option, the value and the possible values in a usage error, exit 2, and lists them in
/// `--help`).
fn interval_minutes_arg() -> impl clap::builder::TypedValueParser<Value = u32> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["15", "30", "60"])
        .map(|m| m.parse().expect("one of the possible values"))
}

fn build(a: &Args) -> Result<SwitchConfig> {
    let profile =
        Profile::load(&a.profile).map_err(|e| usage(format!("{}: {e}", a.profile.display())))?;
    let tz = profile.tz();
    let start_s = parse_start(&a.start, &tz).ok_or_else(|| {
        usage(format!(
            "--start {:?}: not a date-time (2024-03-04T08:00[:SS])",
            a.start
        ))
    })?;
    let (duration_s, speed) = (a.duration, a.speed);
    let mut listen: Vec<(String, SocketAddr)> = Vec::new();
    for (n, addr) in &a.listen {
        if listen.iter().any(|(m, _)| m == n) {
            return Err(usage(format!(
                "--listen {n}={addr}: repeated link name {n:?}"
            )));
        }
        listen.push((n.clone(), *addr));
    }
    let mut items = Vec::new();
    if let Some(f) = &a.fault_file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("{}: cannot read the fault script", f.display()))?;
        items.extend(
            faults::parse_script(&text).map_err(|e| usage(format!("{}: {e}", f.display())))?,
        );
    }
    if let Some(s) = &a.faults {
        items.extend(faults::parse_line(s).map_err(|e| usage(format!("--faults: {e}")))?);
    }
    let names: Vec<String> = listen.iter().map(|(n, _)| n.clone()).collect();
    let faults = faults::resolve(&items, start_s, &tz, &names)
        .map_err(|e| usage(format!("--faults: {e}")))?;
    if let Some(t) = &a.truth {
        if t.exists() {
            bail!(
                "{}: already exists; the truth is written into a new database",
                t.display()
            );
        }
    }
    if a.buffer == 0 {
        return Err(usage("--buffer: must be at least 1".into()));
    }
    let queue_log = match &a.queue_log {
        None => None,
        Some(path) => Some(queue_log(a, path, &profile, start_s, &tz, &faults)?),
    };
    Ok(SwitchConfig {
        profile,
        seed: a.seed,
        start_s,
        duration_s,
        speed,
        listen,
        buffer: a.buffer,
        faults,
        truth: a.truth.clone().map(|p| (p, a.interval_minutes)),
        port_file: a.port_file.clone(),
        wait_links: a.wait_links,
        wait_timeout: Duration::from_secs(a.wait_timeout),
        drain_timeout: Duration::from_secs(a.drain_timeout),
        heartbeat_ms: a.heartbeat_ms.max(10),
        progress: std::io::stderr().is_terminal(),
        queue_log,
        ack_stats: a.ack_stats.clone(),
    })
}

/// `--queue-log` and its companions: a profile a queue log can express, no fault the
/// world would see (a clock change, a switch restart), new files, the mapping written.
fn queue_log(
    a: &Args,
    path: &std::path::Path,
    profile: &Profile,
    start_s: i64,
    tz: &chrono_tz::Tz,
    faults: &[faults::Resolved],
) -> Result<QueueLogConfig> {
    queuelog::check_profile(profile)
        .map_err(|e| usage(format!("--queue-log: {}: {e}", a.profile.display())))?;
    if let Some(f) = faults.iter().find(|f| {
        matches!(
            f.kind,
            faults::FaultKind::Clock(_) | faults::FaultKind::Restart
        )
    }) {
        return Err(usage(format!(
            "--queue-log: a {} fault is not in a queue log (use --queue-log-restart for Asterisk's)",
            f.kind
        )));
    }
    let mut restarts_s = Vec::new();
    for r in &a.queue_log_restart {
        let item = format!("restart@{r}");
        let items = faults::parse_line(&item)
            .map_err(|e| usage(format!("--queue-log-restart {r:?}: {e}")))?;
        let resolved = faults::resolve(&items, start_s, tz, &[])
            .map_err(|e| usage(format!("--queue-log-restart {r:?}: {e}")))?;
        restarts_s.extend(resolved.iter().map(|f| f.at));
    }
    for p in std::iter::once(path).chain(a.queue_log_mapping.as_deref()) {
        if p.exists() {
            bail!(
                "{}: already exists; cms-linksim writes a new file",
                p.display()
            );
        }
    }
    if let Some(m) = &a.queue_log_mapping {
        std::fs::write(m, queuelog::mapping_toml(profile))
            .with_context(|| format!("{}: cannot write the mapping", m.display()))?;
    }
    Ok(QueueLogConfig {
        path: path.to_path_buf(),
        restarts_s,
    })
}

/// Local date-time in `tz`, or RFC 3339 with an offset.
fn parse_start(s: &str, tz: &chrono_tz::Tz) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
            return tz.from_local_datetime(&n).earliest().map(|t| t.timestamp());
        }
    }
    None
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CMS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let code = match run(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cms-linksim: {e:#}");
            if e.downcast_ref::<Usage>().is_some() {
                2
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}

fn run(args: Args) -> Result<()> {
    let cfg = build(&args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let summary = rt.block_on(async {
        tokio::select! {
            r = cms::sim::run(cfg, print_notice) => r.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    })?;
    eprintln!("cms-linksim: done: {summary}");
    Ok(())
}

/// What the switch tells the operator, on stderr; the progress line redraws itself.
fn print_notice(n: Notice) {
    match n {
        Notice::Progress { .. } => {
            eprint!("\rcms-linksim: {n}   ");
            let _ = std::io::stderr().flush();
        }
        Notice::ProgressDone => eprintln!(),
        n => eprintln!("cms-linksim: {n}"),
    }
}
