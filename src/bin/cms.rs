//! `cms`: the collector and its maintenance commands. Thin: parse arguments, load the
//! configuration, call the library, map errors to exit codes (see `cms --help`).

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use cms::config::Config;
use cms::store::Store;
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT_CODES: &str =
    "Exit codes: 0 success; 1 error (the message says which file or peer and why); \
2 usage error; 3 the command found a problem it reports (gaps found with --fail-on-gaps, \
differences found by compare).";

#[derive(Parser)]
#[command(
    name = "cms",
    version,
    about = "Dual-server call-data collector: exact ACD interval tables, merge-restore between servers",
    after_help = EXIT_CODES
)]
struct Cli {
    /// Configuration file (default: $CMS_CONFIG, then /etc/cms/cms.toml, then the
    /// embedded default: data in ./cms-data, one ACD, switch at 127.0.0.1:5001).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the collector in the foreground (what the service runs). Stops cleanly on
    /// SIGTERM or Ctrl-C after checkpointing.
    Collect,
    /// Check the configuration and print it (used by the service's ExecStartPre).
    CheckConfig,
    /// Link state per ACD, current and last complete interval, checkpoint age, database size.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Intervals that are missing or incomplete (and restored ones), grouped into ranges.
    Gaps {
        /// First local date (YYYY-MM-DD); default: the first interval recorded.
        #[arg(long)]
        from: Option<NaiveDate>,
        /// Last local date, inclusive; default: up to the interval being collected.
        #[arg(long)]
        to: Option<NaiveDate>,
        /// Only this ACD (repeatable); default: every configured ACD.
        #[arg(long)]
        acd: Vec<u16>,
        #[arg(long)]
        json: bool,
        /// Exit with code 3 when any interval is missing or incomplete.
        #[arg(long)]
        fail_on_gaps: bool,
    },
    /// Compare this server's intervals with another database (the peer's, or a ground
    /// truth), item by item, for every interval complete in both.
    Compare {
        /// The other database file.
        other: PathBuf,
        #[arg(long)]
        acd: Vec<u16>,
        /// Also report intervals complete in one database but not the other.
        #[arg(long)]
        strict: bool,
        #[arg(long)]
        json: bool,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CMS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cms: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn acds_of(cfg: &Config, chosen: &[u16]) -> anyhow::Result<Vec<u16>> {
    if chosen.is_empty() {
        return Ok(cfg.acds.iter().map(|a| a.acd).collect());
    }
    for a in chosen {
        if !cfg.acds.iter().any(|c| c.acd == *a) {
            anyhow::bail!("ACD {a} is not configured in {}", cfg.origin());
        }
    }
    Ok(chosen.to_vec())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(cli.config.as_deref())?;
    match cli.cmd {
        Cmd::Collect => {
            init_logging();
            tracing::info!(config = %cfg.origin(), data = %cfg.data_dir.display(), server = %cfg.server_id, "cms collect starting");
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(cms::collect::run(
                cfg,
                shutdown_signal(),
                cms::collect::notify_ready,
            ))?;
            tracing::info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::CheckConfig => {
            println!("configuration {} is valid", cfg.origin());
            println!("  server_id {}", cfg.server_id);
            println!("  data_dir {}", cfg.data_dir.display());
            println!(
                "  intervals {} min, time zone {}, week starts {}",
                cfg.interval_minutes, cfg.time_zone, cfg.week_start
            );
            for a in &cfg.acds {
                println!(
                    "  ACD {}: switch {}{}",
                    a.acd,
                    a.primary,
                    a.secondary
                        .map(|s| format!(", secondary {s}"))
                        .unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Status { json } => {
            let store = Store::open_read_only(&cfg.db_path())?;
            let acds: Vec<u16> = cfg.acds.iter().map(|a| a.acd).collect();
            let s = cms::report::status(&store, &cfg.grid(), &acds)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", cms::report::render_status(&s));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Gaps {
            from,
            to,
            acd,
            json,
            fail_on_gaps,
        } => {
            let store = Store::open_read_only(&cfg.db_path())?;
            let grid = cfg.grid();
            let mut all = vec![];
            let mut text = String::new();
            for a in acds_of(&cfg, &acd)? {
                let ranges = match cms::report::gap_range(&store.conn, &grid, a, from, to)? {
                    Some((f, t)) => cms::report::gaps(&store.conn, &grid, a, f, t)?,
                    None => vec![],
                };
                text += &cms::report::render_gaps(a, &ranges);
                all.extend(ranges);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                print!("{text}");
            }
            let bad = all.iter().any(|g| g.kind != "restored");
            Ok(if fail_on_gaps && bad {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Compare {
            other,
            acd,
            strict,
            json,
        } => {
            let mine = Store::open_read_only(&cfg.db_path())?;
            let theirs = Store::open_read_only(&other)?;
            let mut diffs = vec![];
            for a in acds_of(&cfg, &acd)? {
                diffs.extend(cms::report::compare(
                    &mine.conn,
                    &theirs.conn,
                    a,
                    i64::MIN,
                    i64::MAX,
                    strict,
                )?);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&diffs)?);
            } else if diffs.is_empty() {
                println!(
                    "{} and {} agree on every interval complete in both",
                    cfg.db_path().display(),
                    other.display()
                );
            } else {
                let grid = cfg.grid();
                for d in diffs.iter().take(200) {
                    println!(
                        "ACD {} {} {} {:?} {}: {:?} here, {:?} there",
                        d.acd,
                        grid.local(d.istart).format("%Y-%m-%d %H:%M"),
                        d.table,
                        d.key,
                        d.item,
                        d.left,
                        d.right
                    );
                }
                println!("{} differences", diffs.len());
            }
            Ok(if diffs.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
    }
}
