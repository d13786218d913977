//! `cms demo`: the whole story on one machine in under a minute.
//!
//! A simulated switch (the reference centre, six hours of switch time at 1800x) feeds two
//! collectors on loopback; link A fails for 35 minutes, longer than its replay buffer.
//!
//! By default the two collectors are each other's peer (`[peer]`, mutual TLS with
//! pinned identities made as `cms peer init` makes them): the pair heals itself while it
//! collects, with no operator action, and the demo shows `cms gaps` on both servers (A's
//! lost intervals listed as restored from B) and what the peer sync healed. With
//! `--manual` (the story for an air-gapped pair or an older release) the collectors do
//! not peer: the demo shows the gaps, takes a backup on B and restores it on A while both
//! keep collecting. Either way it ends by checking that A and B are identical and equal
//! to the simulator's ground truth. Everything runs in this process, through the same
//! library code as the real commands.

use crate::config::Config;
use crate::merge::{self, Categories, Selection};
use crate::report;
use crate::sim::{self, faults, profile::Profile, Speed, SwitchConfig};
use crate::store::Store;
use anyhow::Context;
use chrono::TimeZone;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The reference profile, built in so the demo runs from an installed binary.
const PROFILE: &str = include_str!("../profiles/reference.toml");
const FAULT: &str = "A:down@08:15-08:50";
/// Switch time per wall-clock time: six hours in 12 s.
const SPEED: f64 = 1800.0;
/// The switch's replay buffer, in events: about 15 minutes of the reference centre, so
/// the 35-minute failure exceeds it, while a collector may fall half a second behind
/// (on a loaded machine) before the switch drops its link.
const BUFFER: u64 = 6000;

/// How long the pair may take to heal once the switch is done, before the demo says it
/// did not.
const HEAL_LIMIT: Duration = Duration::from_secs(30);

/// A collector's configuration (`id`'s directory, link at `port`), plus `extra` (a
/// `[peer]` section).
fn collector_config(
    dir: &Path,
    id: &str,
    port: u16,
    tz: &str,
    extra: &str,
) -> anyhow::Result<Config> {
    let data = dir.join(id).join("data");
    let text = format!(
        "server_id = \"{id}\"\ndata_dir = {data:?}\ntime_zone = \"{tz}\"\ncheckpoint_seconds = 0.5\n\
         backoff_max_seconds = 0.5\n[http]\nenabled = false\n\
         [[acd]]\nid = 1\nswitch = \"127.0.0.1:{port}\"\n{extra}",
        data = data.display().to_string()
    );
    let path = dir.join(id).join("cms.toml");
    std::fs::create_dir_all(dir.join(id))?;
    std::fs::write(&path, &text)?;
    Ok(Config::parse_str(&text, Some(&path))?)
}

fn wait_ports(path: &Path) -> anyhow::Result<(u16, u16)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(t) = std::fs::read_to_string(path) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&t) {
                if let (Some(a), Some(b)) = (v["A"].as_u64(), v["B"].as_u64()) {
                    return Ok((a as u16, b as u16));
                }
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{}: the simulated switch did not start listening within 10 s",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Collectors A and B as each other's peer: an identity each (as `cms peer init`
/// makes it), a free loopback port each to listen on, each pinning the other.
fn peer_configs(dir: &Path, pa: u16, pb: u16, tz: &str) -> anyhow::Result<(Config, Config)> {
    let free = || -> anyhow::Result<u16> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    };
    let (listen_a, listen_b) = (free()?, free()?);
    let id_a = crate::peer::identity::init(&dir.join("a").join("id"), "a", false)?;
    let id_b = crate::peer::identity::init(&dir.join("b").join("id"), "b", false)?;
    let section = |me: &str, listen: u16, peer: u16, pin: &dyn std::fmt::Display| {
        format!(
            "\n[peer]\naddress = \"127.0.0.1:{peer}\"\nlisten = \"127.0.0.1:{listen}\"\n\
             peer_id = \"{pin}\"\nidentity = {:?}\ntimeout_seconds = 5\n",
            dir.join(me).join("id").display().to_string()
        )
    };
    Ok((
        collector_config(dir, "a", pa, tz, &section("a", listen_a, listen_b, &id_b))?,
        collector_config(dir, "b", pb, tz, &section("b", listen_b, listen_a, &id_a))?,
    ))
}

/// The demo's step labels: `[k/n]`.
struct Steps {
    done: usize,
    of: usize,
}

impl Steps {
    fn next(&mut self) -> String {
        self.done += 1;
        format!("[{}/{}]", self.done, self.of)
    }
}

/// Runs the demo in `dir`, narrating on `out`: the pair healing itself by peer sync, or
/// with `manual` the backup on B restored on A. Returns whether every check passed.
///
/// # Errors
/// A step could not run at all (ports, files, database).
pub fn run(dir: &Path, out: &mut dyn Write, manual: bool) -> anyhow::Result<bool> {
    let started = Instant::now();
    let (sim_cfg, tz) = switch_config(dir)?;
    let mut step = Steps {
        done: 0,
        of: if manual { 6 } else { 5 },
    };
    writeln!(
        out,
        "cms demo: one switch, two collectors, a link failure and its recovery {} (in {})\n",
        if manual {
            "by backup and restore"
        } else {
            "by peer sync, with no operator action"
        },
        dir.display()
    )?;
    writeln!(
        out,
        "{} The switch: the reference centre ({} agents, {} skills), 06:00 to 12:00 {} at {SPEED}x.\n      Link A fails from 08:15 to 08:50, longer than its replay buffer ({BUFFER} events).",
        step.next(),
        sim_cfg.profile.agents.count,
        sim_cfg.profile.skills.count,
        tz.name()
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sim_task = rt.spawn(sim::run(sim_cfg, |n| tracing::info!("cms-linksim: {n}")));
    let (pa, pb) = wait_ports(&dir.join(PORTS))?;
    let (cfg_a, cfg_b) = if manual {
        (
            collector_config(dir, "a", pa, tz.name(), "")?,
            collector_config(dir, "b", pb, tz.name(), "")?,
        )
    } else {
        peer_configs(dir, pa, pb, tz.name())?
    };
    // Step 2: each collector as `cms collect` runs it, until told to stop.
    let collectors = [&cfg_a, &cfg_b].map(|cfg| {
        let mut rx = stop_rx.clone();
        let stopped = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        rt.spawn(crate::collect::run(cfg.clone(), stopped, || {}))
    });
    writeln!(
        out,
        "{} Collectors A (link A, port {pa}) and B (link B, port {pb}) are collecting{}...",
        step.next(),
        if manual {
            ""
        } else {
            ", each the other's peer (mutual TLS, pinned identities)"
        }
    )?;
    let summary = rt
        .block_on(sim_task)
        .context("the simulated switch failed")?
        .map_err(|e| anyhow::anyhow!("the simulated switch failed: {e}"))?;
    writeln!(
        out,
        "      switch done: {} calls, {} events in {:.1} s, {} faults applied",
        summary.calls,
        summary.events,
        summary.wall.as_secs_f64(),
        summary.faults_applied
    )?;
    let store_a = if manual {
        show_gaps(out, &step.next(), &[("A", &cfg_a), ("B", &cfg_b)])?;
        let bak = backup_on_b(out, &step.next(), dir, &cfg_b)?;
        Some(restore_on_a(out, &step.next(), &bak, &cfg_a)?)
    } else {
        healed(out, &step.next(), &cfg_a, &cfg_b)?;
        show_gaps(out, &step.next(), &[("A", &cfg_a), ("B", &cfg_b)])?;
        None
    };
    let _ = stop_tx.send(true);
    for c in collectors {
        rt.block_on(c)??;
    }
    drop(store_a);
    let ok = checks(out, &step.next(), &cfg_a, &cfg_b, &dir.join(TRUTH))?;
    writeln!(
        out,
        "\n{} in {:.1} s. Files are in {}.",
        if ok { "Demo passed" } else { "Demo FAILED" },
        started.elapsed().as_secs_f64(),
        dir.display()
    )?;
    Ok(ok)
}

/// The switch's ground truth and port file, in the demo's directory.
const TRUTH: &str = "truth.db";
const PORTS: &str = "ports.json";

/// Step 1: the switch: the reference centre from 06:00 on 2026-11-03, six hours at
/// [`SPEED`], links A and B on free ports, [`FAULT`]. Returns it with the site's zone.
fn switch_config(dir: &Path) -> anyhow::Result<(SwitchConfig, chrono_tz::Tz)> {
    let profile = Profile::parse(PROFILE).map_err(anyhow::Error::msg)?;
    let tz = profile.tz();
    let start_local = chrono::NaiveDate::from_ymd_opt(2026, 11, 3)
        .unwrap()
        .and_hms_opt(6, 0, 0)
        .unwrap();
    let start_s = tz
        .from_local_datetime(&start_local)
        .single()
        .context("demo start time")?
        .timestamp();
    let links = vec!["A".to_string(), "B".to_string()];
    let faults = faults::resolve(&faults::parse_line(FAULT)?, start_s, &tz, &links)?;
    let cfg = SwitchConfig {
        profile,
        seed: 7,
        start_s,
        duration_s: 6 * 3600,
        speed: Speed::Factor(SPEED),
        listen: links
            .iter()
            .map(|l| (l.clone(), "127.0.0.1:0".parse().unwrap()))
            .collect(),
        buffer: BUFFER,
        faults,
        truth: Some((dir.join(TRUTH), 15)),
        port_file: Some(dir.join(PORTS)),
        wait_links: 2,
        wait_timeout: Duration::from_secs(30),
        drain_timeout: Duration::from_secs(30),
        heartbeat_ms: 1000,
        progress: false,
        queue_log: None,
        ack_stats: None,
    };
    Ok((cfg, tz))
}

/// Intervals of ACD 1 missing or incomplete on `s` (not counting restored ones), up to
/// the interval being collected.
fn unhealed(s: &Store, cfg: &Config) -> anyhow::Result<u64> {
    let grid = cfg.grid();
    let ranges = match report::gap_range(&s.conn, &grid, 1, None, None)? {
        Some((f, t)) => report::gaps(&s.conn, &grid, 1, f, t)?,
        None => vec![],
    };
    Ok(ranges
        .iter()
        .filter(|g| g.kind != crate::domain::GapKind::Restored)
        .map(|g| u64::from(g.intervals))
        .sum())
}

/// The pair heals itself (default story): waits, bounded by [`HEAL_LIMIT`], until A
/// lacks nothing and holds what B holds, and says what A's peer sync healed.
fn healed(out: &mut dyn Write, step: &str, cfg_a: &Config, cfg_b: &Config) -> anyhow::Result<()> {
    writeln!(out, "\n{step} Peer sync (nobody runs a command):")?;
    let t = Instant::now();
    loop {
        let a = Store::open_read_only(&cfg_a.db_path())?;
        let b = Store::open_read_only(&cfg_b.db_path())?;
        let left = unhealed(&a, cfg_a)?;
        let same = report::compare(&a.conn, &b.conn, 1, i64::MIN, i64::MAX, true)?.is_empty();
        if left == 0 && same {
            let st = crate::store::peer::load_state(&a.conn)?.unwrap_or_default();
            writeln!(
                out,
                "      A fetched from B what its link lost: {} healed; A and B hold the same intervals {:.1} s after the switch ended",
                report::plural(st.healed, "interval"),
                t.elapsed().as_secs_f64()
            )?;
            return Ok(());
        }
        if t.elapsed() >= HEAL_LIMIT {
            writeln!(
                out,
                "      NOT healed within {} s: A still lacks {}{}",
                HEAL_LIMIT.as_secs(),
                report::plural(left, "interval"),
                if same { "" } else { ", and A and B differ" }
            )?;
            return Ok(());
        }
        drop((a, b));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `cms gaps` on each server.
fn show_gaps(out: &mut dyn Write, step: &str, servers: &[(&str, &Config)]) -> anyhow::Result<()> {
    writeln!(out, "\n{step} cms gaps on both servers:")?;
    for (name, cfg) in servers {
        let grid = cfg.grid();
        let s = Store::open_read_only(&cfg.db_path())?;
        let ranges = match report::gap_range(&s.conn, &grid, 1, None, None)? {
            Some((f, t)) => report::gaps(&s.conn, &grid, 1, f, t)?,
            None => vec![],
        };
        let text = report::render_gaps(1, &ranges);
        writeln!(
            out,
            "      server {name}: {}",
            text.trim_end().replace('\n', "\n      ")
        )?;
    }
    Ok(())
}

/// History and admin data of ACD 1, every date.
fn selection(cfg: &Config, acds: Vec<u16>) -> Selection {
    Selection {
        acds,
        from: None,
        to: None,
        grid: cfg.grid(),
        categories: Categories::parse("history,admin").unwrap(),
    }
}

/// A backup on B while it collects; returns the file.
fn backup_on_b(
    out: &mut dyn Write,
    step: &str,
    dir: &Path,
    cfg_b: &Config,
) -> anyhow::Result<PathBuf> {
    writeln!(out, "\n{step} Backup on B (collection still running):")?;
    let bak = dir.join("b.cmsbak");
    let mut store_b = Store::open_read_only(&cfg_b.db_path())?;
    let sum = merge::backup::backup(
        &mut store_b,
        &merge::backup::BackupOptions {
            out: bak.clone(),
            snapshot: merge::backup::SnapshotOptions::new(
                selection(cfg_b, vec![1]),
                &cfg_b.server_id,
                cfg_b.time_zone.name(),
            ),
        },
    )?;
    write!(out, "      {}", sum.render())?;
    Ok(bak)
}

/// B's backup restored on A while A collects; returns A's store, kept open until the
/// collectors have stopped.
fn restore_on_a(
    out: &mut dyn Write,
    step: &str,
    bak: &Path,
    cfg_a: &Config,
) -> anyhow::Result<Store> {
    writeln!(out, "{step} Restore on A (collection still running):")?;
    let mut store_a = Store::open(&cfg_a.db_path())?;
    let rep = merge::restore::restore(
        &mut store_a,
        &cfg_a.grid(),
        &merge::restore::RestoreOptions {
            file: bak.to_owned(),
            // Every ACD the backup holds.
            sel: selection(cfg_a, vec![]),
            configured_acds: vec![1],
            dry_run: false,
            include_local: false,
            key: None,
            server_id: cfg_a.server_id.clone(),
            collection_running: true,
            progress: false,
            week_start: cfg_a.week_start,
        },
    )?;
    write!(out, "      {}", rep.render().replace("\n  ", "\n      "))?;
    Ok(store_a)
}

/// The last step: A and B identical, and each equal to the ground truth item by item.
/// Returns whether all three hold.
fn checks(
    out: &mut dyn Write,
    step: &str,
    cfg_a: &Config,
    cfg_b: &Config,
    truth: &Path,
) -> anyhow::Result<bool> {
    writeln!(out, "\n{step} Checks:")?;
    let a = Store::open_read_only(&cfg_a.db_path())?;
    let b = Store::open_read_only(&cfg_b.db_path())?;
    let t = Store::open_read_only(truth)?;
    let mut ok = true;
    for (what, x, y) in [
        ("A and B are identical", &a, &b),
        ("A equals the ground truth, item by item", &a, &t),
        ("B equals the ground truth, item by item", &b, &t),
    ] {
        let d = report::compare(&x.conn, &y.conn, 1, i64::MIN, i64::MAX, true)?;
        let n: i64 = x.conn.query_row(
            "SELECT COUNT(*) FROM interval_status WHERE status = 'complete'",
            [],
            |r| r.get(0),
        )?;
        if d.is_empty() {
            writeln!(out, "      yes: {what} ({n} complete intervals)")?;
        } else {
            ok = false;
            writeln!(
                out,
                "      NO: {what}: {} differences, first {:?}",
                d.len(),
                d[0]
            )?;
        }
    }
    Ok(ok)
}

/// A directory for the demo: the given one, or a fresh temporary one kept after the run.
pub fn demo_dir(dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let d = match dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("cms-demo-{}", std::process::id())),
    };
    if d.exists() && std::fs::read_dir(&d)?.next().is_some() {
        anyhow::bail!(
            "{}: not empty; the demo needs an empty directory",
            d.display()
        );
    }
    std::fs::create_dir_all(&d).with_context(|| format!("{}: cannot create", d.display()))?;
    Ok(d)
}
