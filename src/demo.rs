//! `cms demo`: the whole story on one machine in under a minute.
//!
//! A simulated switch (the reference centre, six hours of switch time at 3600x) feeds two
//! collectors on loopback; link A fails for 35 minutes, longer than its replay buffer.
//! The demo shows `cms gaps` on both servers, takes a backup on B and restores it on A
//! while both collectors keep running, then checks that A and B are identical and equal
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

fn collector_config(dir: &Path, id: &str, port: u16, tz: &str) -> anyhow::Result<Config> {
    let data = dir.join(id).join("data");
    let text = format!(
        "server_id = \"{id}\"\ndata_dir = {data:?}\ntime_zone = \"{tz}\"\ncheckpoint_seconds = 0.5\n\
         backoff_max_seconds = 0.5\n[http]\nenabled = false\n\
         [[acd]]\nid = 1\nswitch = \"127.0.0.1:{port}\"\n",
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

/// Runs the demo in `dir`, narrating on `out`. Returns whether every check passed.
///
/// # Errors
/// A step could not run at all (ports, files, database).
pub fn run(dir: &Path, out: &mut dyn Write) -> anyhow::Result<bool> {
    let started = Instant::now();
    let (sim_cfg, tz) = switch_config(dir)?;
    writeln!(
        out,
        "cms demo: one switch, two collectors, a link failure and its recovery (in {})\n",
        dir.display()
    )?;
    writeln!(
        out,
        "[1/6] The switch: the reference centre ({} agents, {} skills), 06:00 to 12:00 {} at 3600x.\n      Link A fails from 08:15 to 08:50, longer than its replay buffer (3000 events).",
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
    let cfg_a = collector_config(dir, "a", pa, tz.name())?;
    let cfg_b = collector_config(dir, "b", pb, tz.name())?;
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
        "[2/6] Collectors A (link A, port {pa}) and B (link B, port {pb}) are collecting..."
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
    show_gaps(out, &[("A", &cfg_a), ("B", &cfg_b)])?;
    let bak = backup_on_b(out, dir, &cfg_b)?;
    let store_a = restore_on_a(out, &bak, &cfg_a)?;
    let _ = stop_tx.send(true);
    for c in collectors {
        rt.block_on(c)??;
    }
    drop(store_a);
    let ok = checks(out, &cfg_a, &cfg_b, &dir.join(TRUTH))?;
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
/// 3600x, links A and B on free ports, [`FAULT`]. Returns it with the site's zone.
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
    let faults = faults::resolve(
        &faults::parse_line(FAULT).map_err(anyhow::Error::msg)?,
        start_s,
        &tz,
        &links,
    )
    .map_err(anyhow::Error::msg)?;
    let cfg = SwitchConfig {
        profile,
        seed: 7,
        start_s,
        duration_s: 6 * 3600,
        speed: Speed::Factor(3600.0),
        listen: links
            .iter()
            .map(|l| (l.clone(), "127.0.0.1:0".parse().unwrap()))
            .collect(),
        buffer: 3000,
        faults,
        truth: Some((dir.join(TRUTH), 15)),
        port_file: Some(dir.join(PORTS)),
        wait_links: 2,
        wait_timeout: Duration::from_secs(30),
        drain_timeout: Duration::from_secs(30),
        heartbeat_ms: 1000,
        progress: false,
    };
    Ok((cfg, tz))
}

/// Step 3: `cms gaps` on each server.
fn show_gaps(out: &mut dyn Write, servers: &[(&str, &Config)]) -> anyhow::Result<()> {
    writeln!(out, "\n[3/6] cms gaps on both servers:")?;
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

/// Step 4: a backup on B while it collects; returns the file.
fn backup_on_b(out: &mut dyn Write, dir: &Path, cfg_b: &Config) -> anyhow::Result<PathBuf> {
    writeln!(out, "\n[4/6] Backup on B (collection still running):")?;
    let bak = dir.join("b.cmsbak");
    let mut store_b = Store::open_read_only(&cfg_b.db_path())?;
    let sum = merge::backup::backup(
        &mut store_b,
        &merge::backup::BackupOptions {
            out: bak.clone(),
            sel: selection(cfg_b, vec![1]),
            since: None,
            server_id: cfg_b.server_id.clone(),
            time_zone: cfg_b.time_zone.name().to_string(),
            key: None,
            progress: false,
        },
    )?;
    write!(out, "      {}", sum.render())?;
    Ok(bak)
}

/// Step 5: B's backup restored on A while A collects; returns A's store, kept open until
/// the collectors have stopped.
fn restore_on_a(out: &mut dyn Write, bak: &Path, cfg_a: &Config) -> anyhow::Result<Store> {
    writeln!(out, "[5/6] Restore on A (collection still running):")?;
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

/// Step 6: A and B identical, and each equal to the ground truth item by item. Returns
/// whether all three hold.
fn checks(
    out: &mut dyn Write,
    cfg_a: &Config,
    cfg_b: &Config,
    truth: &Path,
) -> anyhow::Result<bool> {
    writeln!(out, "\n[6/6] Checks:")?;
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
