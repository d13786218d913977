//! `cms-asterisk`: an Asterisk queue log as the switch side of the ACD link (issue #16).
//! Parses the command line, loads the mapping, runs [`cms::asterisk::bridge::run`] until
//! SIGTERM or Ctrl-C. Manual: docs/asterisk.md.
//!
//! Exit codes: 0 stopped by a signal; 1 a run-time error (the file or address named in
//! the message); 2 a usage error (bad option, mapping or queues.conf).

use anyhow::{Context, Result};
use clap::Parser;
use cms::asterisk::bridge::{mapping_identity, run, BridgeConfig};
use cms::asterisk::{queues_conf, Mapping};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tracing::{debug, info, warn};

/// Follows Asterisk's queue log and serves it over the ACD link (proto/acd-link.md) to
/// the collectors, as a switch would.
#[derive(Debug, Parser)]
#[command(name = "cms-asterisk", version)]
struct Args {
    /// The queue log Asterisk writes.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/var/log/asterisk/queue_log"
    )]
    log: PathBuf,

    /// The mapping (TOML: queues -> skills, members -> agents, DIDs -> VDNs, pause
    /// reasons -> AUX codes, wrap-up); none = the defaults of docs/asterisk.md.
    #[arg(long, value_name = "FILE")]
    mapping: Option<PathBuf>,

    /// Asterisk's queues.conf (or FreePBX's queues_additional.conf): its queues,
    /// servicelevel, wrapuptime and static members as the mapping's defaults; the
    /// mapping wins where both say something. #include lines are not followed.
    #[arg(long, value_name = "FILE")]
    queues_conf: Option<PathBuf>,

    /// Where the bridge keeps its index (epoch, files, sequence numbers).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/cms-asterisk")]
    state_dir: PathBuf,

    /// A link: NAME=ADDR, e.g. A=0.0.0.0:5001. Repeat for the second collector.
    #[arg(long = "listen", value_name = "NAME=ADDR", value_parser = cms::sim::parse_listen, required = true)]
    listen: Vec<(String, SocketAddr)>,

    /// Heartbeat period announced in WELCOME, ms.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    heartbeat_ms: u32,

    /// How often the log is read for new lines, ms.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    poll_ms: u64,

    /// After binding, write the ports as JSON ({"A": 40123}) to this file.
    #[arg(long, value_name = "FILE")]
    port_file: Option<PathBuf>,
}

#[derive(Debug)]
struct Usage(String);
impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Usage {}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CMS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let code = match go(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cms-asterisk: {e:#}");
            if e.downcast_ref::<Usage>().is_some() {
                2
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}

fn go(a: Args) -> Result<()> {
    let (mapping, mapping_text) = match &a.mapping {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|e| Usage(format!("{}: {e}", p.display())))?;
            let m = Mapping::parse(&text).map_err(|e| Usage(format!("{}: {e}", p.display())))?;
            (m, text)
        }
        None => (Mapping::default(), String::new()),
    };
    let (mapping, mapping_text) = match &a.queues_conf {
        None => (mapping, mapping_text),
        Some(p) => {
            let qc = queues_conf::load(p).map_err(|e| Usage(e.to_string()))?;
            for (line, note) in &qc.notes {
                warn!(file = %p.display(), line, "{note}");
            }
            debug!(file = %p.display(), keys = ?qc.ignored, "queues.conf keys not used");
            let m = mapping
                .with_queues_conf(&qc)
                .map_err(|e| Usage(format!("{}: {e}", p.display())))?;
            info!(
                file = %p.display(),
                queues = qc.queues.len(),
                "queues.conf read"
            );
            let id = mapping_identity(&mapping_text, Some(&m));
            (m, id)
        }
    };
    for (i, (n, _)) in a.listen.iter().enumerate() {
        if a.listen[..i].iter().any(|(m, _)| m == n) {
            return Err(Usage(format!("--listen {n}: the link is named twice")).into());
        }
    }
    // The log's folder is where its rotated copies are looked for: make it absolute.
    let log = match (a.log.parent(), a.log.file_name()) {
        (Some(d), Some(f)) => {
            let d = if d.as_os_str().is_empty() {
                std::env::current_dir().context("cannot read the current folder")?
            } else {
                std::path::absolute(d).with_context(|| d.display().to_string())?
            };
            d.join(f)
        }
        _ => return Err(Usage(format!("--log {}: not a file path", a.log.display())).into()),
    };
    let cfg = BridgeConfig {
        log,
        mapping,
        mapping_text,
        state_dir: a.state_dir,
        listen: a.listen,
        heartbeat_ms: a.heartbeat_ms.max(1),
        poll: Duration::from_millis(a.poll_ms.max(1)),
        port_file: a.port_file,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async {
        let stop = shutdown_signal()?;
        run(cfg, |n| eprintln!("cms-asterisk: {n}"), stop)
            .await
            .map_err(anyhow::Error::from)
    })
}

/// SIGTERM or Ctrl-C.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        let mut c = tokio::signal::windows::ctrl_c().context("cannot handle Ctrl-C")?;
        Ok(async move {
            c.recv().await;
        })
    }
}
