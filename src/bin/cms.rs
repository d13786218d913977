//! `cms`: the collector and its maintenance commands. Thin: parse arguments, load the
//! configuration, call the library, map errors to exit codes (see `cms --help`). `run`
//! hands each subcommand to one function of its own, which prints the library's result as
//! JSON or as the text of the `render()` beside its type.

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
    /// Configuration file (default: $CMS_CONFIG, then /etc/cms/cms.toml on Unix or
    /// %ProgramData%\cms\cms.toml on Windows, then the embedded default: data in
    /// ./cms-data, one ACD, switch at 127.0.0.1:5001).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Which ACDs and local dates a command is about.
#[derive(clap::Args)]
struct Scope {
    /// First local date (YYYY-MM-DD); default: from the first interval.
    #[arg(long)]
    from: Option<NaiveDate>,
    /// Last local date, inclusive; default: up to the interval being collected.
    #[arg(long)]
    to: Option<NaiveDate>,
    /// Only this ACD (repeatable); default: every configured ACD (for restore: every
    /// ACD of the backup).
    #[arg(long)]
    acd: Vec<u16>,
}

// Each subcommand is a variant holding its arguments (a struct of its own when it has
// any) and one function below: adding a subcommand is a variant, its arguments, one line
// in `run` and its function.
#[derive(Subcommand)]
enum Cmd {
    /// The whole story in under a minute: a simulated switch, two collectors on loopback
    /// that are each other's peer, link A failing, the pair healing itself by peer sync,
    /// `cms gaps` on both, and the check that both servers are identical and equal to the
    /// ground truth. `--manual`: no peer sync; a backup on B restored on A instead.
    Demo(DemoArgs),
    /// Run the collector in the foreground (what the service runs). Stops cleanly on
    /// SIGTERM or Ctrl-C after checkpointing.
    Collect,
    /// Check the configuration and print it (used by the service's ExecStartPre).
    CheckConfig,
    /// The site key that authenticates backups: create it, or show which it is.
    #[command(subcommand)]
    SiteKey(cms::sitekey::Command),
    /// Run as the Windows service (started by the service control manager).
    #[cfg(windows)]
    #[command(hide = true)]
    Service,
    /// Link state per ACD, current and last complete interval, checkpoint age, database size.
    Status(StatusArgs),
    /// Intervals that are missing or incomplete (and restored ones), grouped into ranges.
    Gaps(GapsArgs),
    /// The interval tables and their summaries, with service level, ASA, handle time,
    /// abandon and occupancy (docs/reports.md): a table, CSV or JSON. Incomplete rows are
    /// marked in every format.
    Report(ReportArgs),
    /// Maintenance backup: one consistent snapshot of the chosen data into FILE, while
    /// collection goes on. Written to a temporary file, synced, then renamed; mode 0600.
    Backup(BackupArgs),
    /// Check a backup file's structure, checksums and MAC without a database, and print
    /// what it holds.
    Verify(VerifyArgs),
    /// Merge a backup into this server: fill missing intervals, replace incomplete ones
    /// with complete copies, keep complete ones, report conflicts. Runs beside a running
    /// collector.
    Restore(RestoreArgs),
    /// Compare this server's intervals with another database (the peer's, or a ground
    /// truth): the status of every interval stored in both, and item by item every
    /// interval complete in both.
    Compare(CompareArgs),
    /// Peer sync set-up (docs/peer-sync.md): `cms peer init` makes this server's identity.
    Peer {
        #[command(subcommand)]
        cmd: PeerCmd,
    },
    /// Sync with the peer of the `[peer]` section by hand: fetch what this server lacks
    /// complete and merge it as `cms restore` does, then let the peer do the same; once
    /// with `--once`, else session after session until Ctrl-C or SIGTERM.
    Sync(SyncArgs),
    /// The intervals that became complete or changed since the previous export, as files
    /// (--out DIR) or into a PostgreSQL warehouse (--warehouse URL --site NAME); see
    /// docs/exports.md and docs/warehouse.md. Exit 3 when the warehouse holds another
    /// complete copy of an interval (a conflict, recorded there).
    Export(cms::export::Args),
}

// The arguments' structs carry no `///` doc of their own: the variant's is the
// subcommand's help.

#[derive(clap::Args)]
struct DemoArgs {
    /// An empty directory to work in (default: a new one under the temp directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Recover by hand, as for an air-gapped pair or an older release: a backup on B
    /// restored on A. Default: the two collectors are each other's peer and the pair
    /// heals itself with no operator action.
    #[arg(long)]
    manual: bool,
}

#[derive(clap::Args)]
struct StatusArgs {
    /// Machine-readable JSON on stdout instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct GapsArgs {
    #[command(flatten)]
    scope: Scope,
    /// Machine-readable JSON on stdout instead of text.
    #[arg(long)]
    json: bool,
    /// Exit with code 3 when any interval is missing or incomplete.
    #[arg(long)]
    fail_on_gaps: bool,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// split, agent, vdn or trunk.
    #[arg(value_parser = ["split", "agent", "vdn", "trunk"])]
    family: String,
    #[command(flatten)]
    scope: Scope,
    /// Only these skills, agents, VDNs or trunk groups (repeatable, or comma-separated).
    #[arg(long, num_args = 1.., value_delimiter = ',')]
    id: Vec<i64>,
    /// Interval rows (the default).
    #[arg(long, group = "period")]
    interval: bool,
    /// Daily summaries.
    #[arg(long, group = "period")]
    daily: bool,
    /// Weekly summaries.
    #[arg(long, group = "period")]
    weekly: bool,
    /// Monthly summaries.
    #[arg(long, group = "period")]
    monthly: bool,
    #[arg(long, value_enum, default_value = "table")]
    format: cms::render::Format,
}

#[derive(clap::Args)]
struct BackupArgs {
    /// The backup file to write.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    scope: Scope,
    /// Data categories: history, admin, local.
    #[arg(long, default_value = "history,admin,local", value_parser = cms::merge::Categories::parse)]
    data: cms::merge::Categories,
    /// Incremental: only intervals changed since this time (RFC 3339) or since the
    /// backup FILE given was taken.
    #[arg(long, value_parser = parse_since_arg)]
    since: Option<Since>,
    /// Machine-readable JSON on stdout instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The backup file.
    file: PathBuf,
    /// Machine-readable JSON on stdout instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct RestoreArgs {
    /// The backup file (from `cms backup` on the other server).
    file: PathBuf,
    #[command(flatten)]
    scope: Scope,
    /// Data categories to restore: history, admin (local needs --include-local).
    #[arg(long, default_value = "history,admin", value_parser = cms::merge::Categories::parse)]
    data: cms::merge::Categories,
    /// Allow restoring local system administration data (only from this same server,
    /// with collection off).
    #[arg(long)]
    include_local: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Machine-readable JSON on stdout instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct CompareArgs {
    /// The other database file.
    other: PathBuf,
    #[arg(long)]
    acd: Vec<u16>,
    /// Also report intervals complete in one database and missing in the other.
    #[arg(long)]
    strict: bool,
    /// Machine-readable JSON on stdout instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct SyncArgs {
    /// One session, then exit. Without it: a session at once, then as the collector's
    /// peer task would start them (every `interval_seconds`, sooner after a closed
    /// interval, retried with backoff), each printed, until Ctrl-C or SIGTERM.
    #[arg(long)]
    once: bool,
    /// Fetch and print the plan; change nothing on either server.
    #[arg(long)]
    dry_run: bool,
    /// Machine-readable JSON on stdout instead of text (without `--once`: one line of
    /// JSON per session).
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum PeerCmd {
    /// Create this server's peer identity (key mode 0600, certificate) and print the
    /// `peer_id` line for the peer's configuration.
    Init {
        /// Replace an existing identity (the peer must then pin the new one).
        #[arg(long)]
        force: bool,
        /// Where to put it (default: `identity` of the [peer] section, else the data
        /// directory's peer/).
        #[arg(long)]
        identity: Option<PathBuf>,
    },
    /// Print this server's `peer_id` line again.
    Id,
}

fn main() -> ExitCode {
    // Every file and directory cms creates is private to the service (promise 7): the
    // database and its -wal/-shm, the collector lock, backups and their temporary files.
    #[cfg(unix)]
    // SAFETY: umask has no preconditions and cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    // A backup, restore or peer sync of a large centre moves intervals of a few MB
    // between threads. glibc raises its mmap threshold after the first such buffer is
    // freed and serves the next ones from its per-thread arenas, which then keep the
    // freed memory: peak RSS grew with the history (a 30-day backup of 5,000 agents: 98
    // MB, 76 MB with a fixed threshold; docs/benchmarks.md, `maxima`). A fixed threshold
    // hands buffers over 256 KiB back to the system when they are freed.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
    quiet_on_closed_stdout();
    // Usage errors (unknown option, a bad --data or --since, ...) exit 2 from here.
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cms: {}", error_text(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes, each said once: a cause whose text the message already
/// holds (an error that prints its source, SQLite's message beside its code) is left out,
/// so a message never repeats its reason.
fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let t = cause.to_string();
        if out.contains(&t) {
            continue;
        }
        if !out.is_empty() {
            out += ": ";
        }
        out += &t;
    }
    out
}

/// Whether an error is a write to a closed stdout (`cms gaps | head`).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// A reader that closes our stdout early (`cms check-config | true`, `| head`) has all it
/// wants: end quietly with exit code 0, as ripgrep does, instead of the panic `println!`
/// raises on the closed pipe. Commands that write through [`out`] get an error that
/// `main` maps to 0; this hook covers the `println!`s.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info)
    }));
}

/// Writes a command's report on stdout; a closed stdout is an error `main` ends quietly.
fn out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())?;
    o.flush()?;
    Ok(())
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

/// The site key for authenticated backups, if one is configured (checked as
/// [`Config::site_key`] says: present, private, long enough).
fn site_key(cfg: &Config) -> anyhow::Result<Option<[u8; 32]>> {
    Ok(cfg.site_key()?)
}

/// `--since`, as given: a time, or a previous backup file.
#[derive(Clone, Debug)]
enum Since {
    Time(i64),
    File(PathBuf),
}

/// Parses `--since` (a usage error, exit 2, when it is neither an RFC 3339 time nor an
/// existing file).
fn parse_since_arg(s: &str) -> Result<Since, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(Since::Time(t.timestamp()));
    }
    let p = std::path::Path::new(s);
    if p.exists() {
        return Ok(Since::File(p.to_owned()));
    }
    Err("neither an RFC 3339 time (2024-01-15T08:00:00Z) nor an existing backup file".into())
}

/// `--since` as a time: the time given, or when the previous backup file was taken.
fn parse_since(s: &Since) -> anyhow::Result<i64> {
    match s {
        Since::Time(t) => Ok(*t),
        Since::File(p) => {
            let rd = cms::archive::ArchiveReader::open(p, None).with_context(|| {
                format!(
                    "{}: --since takes a time or a previous backup file",
                    p.display()
                )
            })?;
            Ok(rd.header().created_at)
        }
    }
}

/// The collector's stop: SIGTERM or Ctrl-C. The handlers are installed when this is
/// called, before the collector starts and tells systemd READY=1, so a SIGTERM that
/// arrives right after READY stops the collector cleanly (checkpoint and all) instead of
/// killing it. Call it inside the runtime.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
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

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(cli.config.as_deref())?;
    // The collector logs what it does; the other commands print their report on stdout
    // and log only warnings on stderr (CMS_LOG=debug shows, e.g., a restore's phase
    // times). The Windows service installs its own logger, to its log file.
    match cli.cmd {
        Cmd::Collect => cms::logging::init("info", cfg.log_format),
        #[cfg(windows)]
        Cmd::Service => {}
        _ => cms::logging::init("warn", cfg.log_format),
    }
    match cli.cmd {
        Cmd::Collect => collect(cfg),
        #[cfg(windows)]
        Cmd::Service => {
            cms::winsvc::run(cli.config.clone())?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Demo(a) => demo(a),
        Cmd::CheckConfig => check_config(&cfg),
        Cmd::SiteKey(c) => {
            out(&cms::sitekey::run(&cfg, &c)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Status(a) => status(&cfg, a),
        Cmd::Gaps(a) => gaps(&cfg, a),
        Cmd::Report(a) => report_cmd(&cfg, a),
        Cmd::Backup(a) => backup(&cfg, a),
        Cmd::Verify(a) => verify(&cfg, a),
        Cmd::Restore(a) => restore(&cfg, a),
        Cmd::Compare(a) => compare(&cfg, a),
        Cmd::Peer { cmd } => peer(&cfg, cmd),
        Cmd::Sync(a) => sync(&cfg, a),
        Cmd::Export(a) => export(&cfg, a),
    }
}

/// Exit code 3 when the command found the problem it reports, else 0.
fn found(problem: bool) -> ExitCode {
    if problem {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

/// Pretty JSON on stdout.
fn json_out<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    out(&format!("{}\n", serde_json::to_string_pretty(v)?))
}

/// A report on stdout: pretty JSON with `json`, else the text `render` makes.
fn report<T: serde::Serialize>(
    json: bool,
    v: &T,
    render: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        json_out(v)
    } else {
        out(&render(v))
    }
}

/// Whether to draw a progress bar on stderr: for a person at a terminal reading text.
fn progress(json: bool) -> bool {
    !json && std::io::IsTerminal::is_terminal(&std::io::stderr())
}

fn collect(cfg: Config) -> anyhow::Result<ExitCode> {
    tracing::info!(config = %cfg.origin(), data = %cfg.data_dir.display(), server = %cfg.server_id, "cms collect starting");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let stop = shutdown_signal()?;
        cms::collect::run(cfg, stop, cms::collect::notify_ready).await
    })?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

fn demo(a: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = cms::demo::demo_dir(a.dir)?;
    let ok = cms::demo::run(&dir, &mut std::io::stdout(), a.manual)?;
    Ok(found(!ok))
}

/// The service's start gate: everything the service will need must be usable, the site
/// key included (a broken key would fail the first backup or restore).
fn check_config(cfg: &Config) -> anyhow::Result<ExitCode> {
    let key = match cfg.site_key()? {
        Some(_) => format!(
            "  site key {} (backups authenticated)\n",
            cfg.site_key_file.as_ref().unwrap().display()
        ),
        None => {
            "  no site key: backups are not authenticated (see docs/operations.md)\n".to_string()
        }
    };
    let mut text = format!("configuration {} is valid\n", cfg.origin());
    text += &format!("  server_id {}\n", cfg.server_id);
    text += &format!("  data_dir {}\n", cfg.data_dir.display());
    text += &format!(
        "  intervals {} min, time zone {}, week starts {}\n",
        cfg.interval_minutes, cfg.time_zone, cfg.week_start
    );
    for a in &cfg.acds {
        text += &format!(
            "  ACD {}: switch {}{}\n",
            a.acd,
            a.primary,
            a.secondary
                .map(|s| format!(", secondary {s}"))
                .unwrap_or_default()
        );
    }
    text += &key;
    out(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn status(cfg: &Config, a: StatusArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open_read_only(&cfg.db_path())?;
    let acds: Vec<u16> = cfg.acds.iter().map(|a| a.acd).collect();
    let s = cms::report::status(&store, &cfg.grid(), &acds, &cfg.server_id)
        .with_context(|| store.path.display().to_string())?;
    // The peer's state (docs/peer-sync.md) beside the links', when a peer is configured.
    let peer = match &cfg.peer {
        Some(pc) => Some(cms::peer::status::peer_status(&store.conn, &pc.address)?),
        None => None,
    };
    if a.json {
        // The links' JSON as it always was, with `peer` after it when one is configured.
        #[derive(serde::Serialize)]
        struct WithPeer<'a> {
            #[serde(flatten)]
            status: &'a cms::report::Status,
            #[serde(skip_serializing_if = "Option::is_none")]
            peer: Option<cms::peer::status::PeerStatus>,
        }
        json_out(&WithPeer { status: &s, peer })?;
    } else {
        let peer_text = peer.map(|p| cms::peer::status::render(&p));
        out(&(cms::report::render_status(&s) + &peer_text.unwrap_or_default()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn peer(cfg: &Config, cmd: PeerCmd) -> anyhow::Result<ExitCode> {
    out(&match cmd {
        PeerCmd::Init { force, identity } => cms::peer::cli::init(cfg, identity.as_deref(), force)?,
        PeerCmd::Id => cms::peer::cli::show_id(cfg)?,
    })?;
    Ok(ExitCode::SUCCESS)
}

fn sync(cfg: &Config, a: SyncArgs) -> anyhow::Result<ExitCode> {
    if a.once {
        let r = cms::peer::cli::sync_once(cfg, a.dry_run)?;
        if a.json {
            json_out(&r.json)?;
        } else {
            out(&r.text)?;
        }
        return Ok(found(r.conflicts));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let conflicts = rt.block_on(async {
        let stop = shutdown_signal()?;
        cms::peer::cli::sync_until(cfg, a.dry_run, stop, |r| {
            if a.json {
                out(&format!("{}\n", serde_json::to_string(&r.json)?))
            } else {
                out(&r.text)
            }
        })
        .await
    })?;
    Ok(found(conflicts))
}

fn export(cfg: &Config, a: cms::export::Args) -> anyhow::Result<ExitCode> {
    let reports = match cms::export::run(cfg, &a) {
        Err(cms::export::ExportError::Usage(m)) => {
            eprintln!("cms: {m}");
            return Ok(ExitCode::from(2));
        }
        r => r?,
    };
    report(a.json, &reports, |rs| {
        rs.iter().map(|r| r.render()).collect()
    })?;
    Ok(found(reports.iter().any(|r| r.conflicts > 0)))
}

fn gaps(cfg: &Config, a: GapsArgs) -> anyhow::Result<ExitCode> {
    let Scope { from, to, acd } = a.scope;
    let store = Store::open_read_only(&cfg.db_path())?;
    let grid = cfg.grid();
    let mut all = vec![];
    // A restore that did not finish first: what it was to write may lie beyond the last
    // interval recorded, where no range below can show it.
    let unfinished = cms::report::unfinished_restores(&store.conn)
        .with_context(|| format!("{}: reading the restore log", store.path.display()))?;
    let mut text = cms::report::render_unfinished(&unfinished);
    for a in acds_of(cfg, &acd)? {
        let ranges = match cms::report::gap_range(&store.conn, &grid, a, from, to)? {
            Some((f, t)) => cms::report::gaps(&store.conn, &grid, a, f, t)?,
            None => vec![],
        };
        text += &cms::report::render_gaps(a, &ranges);
        all.extend(ranges);
    }
    if a.json {
        // The warning goes to stderr, so stdout stays one JSON document.
        json_out(&all)?;
        eprint!("{}", cms::report::render_unfinished(&unfinished));
    } else {
        out(&text)?;
    }
    let bad =
        all.iter().any(|g| g.kind != cms::domain::GapKind::Restored) || !unfinished.is_empty();
    Ok(found(a.fail_on_gaps && bad))
}

fn report_cmd(cfg: &Config, a: ReportArgs) -> anyhow::Result<ExitCode> {
    use cms::query::{Period, Query};
    let Scope { from, to, acd } = a.scope;
    if let (Some(f), Some(t)) = (from, to) {
        anyhow::ensure!(f <= t, "--from {f} is after --to {t}");
    }
    let family = cms::query::family(&a.family).expect("clap checked the family");
    let period = match (a.daily, a.weekly, a.monthly) {
        (true, _, _) => Period::Daily,
        (_, true, _) => Period::Weekly,
        (_, _, true) => Period::Monthly,
        _ => Period::Interval,
    };
    let store = Store::open_read_only(&cfg.db_path())?;
    let q = Query {
        family,
        period,
        acds: acds_of(cfg, &acd)?,
        ids: a.id,
        from,
        to,
    };
    let grid = cfg.grid();
    let rows = cms::query::rows(&store.conn, &grid, &q)
        .with_context(|| format!("{}: reading the report", store.path.display()))?;
    let mut text = cms::render::render(a.format, family, period, &rows);
    // Intervals with no rows show in no row: say how many the range holds.
    for &acd in &q.acds {
        let gaps = match cms::report::gap_range(&store.conn, &grid, acd, from, to)? {
            Some((f, t)) => cms::report::gaps(&store.conn, &grid, acd, f, t)?,
            None => vec![],
        };
        match cms::render::gap_note(acd, &gaps) {
            Some(note) if a.format == cms::render::Format::Table => text += &note,
            Some(note) => eprint!("{note}"),
            None => {}
        }
    }
    out(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn backup(cfg: &Config, a: BackupArgs) -> anyhow::Result<ExitCode> {
    let Scope { from, to, acd } = a.scope;
    let since = a.since.as_ref().map(parse_since).transpose()?;
    let mut store = Store::open_read_only(&cfg.db_path())?;
    let sel = cms::merge::Selection {
        acds: acds_of(cfg, &acd)?,
        from,
        to,
        grid: cfg.grid(),
        categories: a.data,
    };
    let opts = cms::merge::backup::BackupOptions {
        out: a.out,
        snapshot: cms::merge::backup::SnapshotOptions {
            since,
            key: site_key(cfg)?,
            progress: progress(a.json),
            ..cms::merge::backup::SnapshotOptions::new(sel, &cfg.server_id, cfg.time_zone.name())
        },
    };
    let sum = cms::merge::backup::backup(&mut store, &opts)?;
    report(a.json, &sum, |s| s.render())?;
    Ok(ExitCode::SUCCESS)
}

fn verify(cfg: &Config, a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let key = site_key(cfg)?;
    let mut rd = cms::archive::ArchiveReader::open(&a.file, key.as_ref())?;
    let summary = rd.verify_summary(&a.file)?;
    report(a.json, &summary, |s| s.render())?;
    Ok(ExitCode::SUCCESS)
}

fn restore(cfg: &Config, a: RestoreArgs) -> anyhow::Result<ExitCode> {
    let Scope { from, to, acd } = a.scope;
    let grid = cfg.grid();
    let opts = cms::merge::restore::RestoreOptions {
        file: a.file,
        sel: cms::merge::Selection {
            // Empty: every ACD the backup holds (each must be configured here).
            acds: if acd.is_empty() {
                vec![]
            } else {
                acds_of(cfg, &acd)?
            },
            from,
            to,
            grid,
            categories: a.data,
        },
        configured_acds: cfg.acds.iter().map(|a| a.acd).collect(),
        dry_run: a.dry_run,
        include_local: a.include_local,
        key: site_key(cfg)?,
        server_id: cfg.server_id.clone(),
        collection_running: cms::collect::collection_running(&cfg.data_dir),
        progress: progress(a.json),
        week_start: cfg.week_start,
    };
    // The file is checked and the plan made before the database is opened for writing
    // (or created): a refused restore or a dry run changes nothing.
    let rep = cms::merge::restore::restore_at(&cfg.db_path(), &grid, &opts, || {
        cms::collect::ensure_data_dir(&cfg.data_dir)?;
        Ok(Store::open(&cfg.db_path())?)
    })?;
    report(a.json, &rep, |r| r.render())?;
    Ok(found(!rep.conflicts.is_empty()))
}

fn compare(cfg: &Config, a: CompareArgs) -> anyhow::Result<ExitCode> {
    let mine = Store::open_read_only(&cfg.db_path())?;
    let theirs = Store::open_read_only(&a.other)?;
    let c = cms::report::Comparison::of(&mine, &theirs, &acds_of(cfg, &a.acd)?, a.strict)?;
    report(a.json, &c.diffs, |_| c.render(&cfg.grid()))?;
    Ok(found(!c.diffs.is_empty()))
}
