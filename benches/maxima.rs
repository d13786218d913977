//! The classic maxima (issue #13): the large centre (`profiles/large.toml`: 5,000 agents,
//! 200 skills, 400 VDNs, 80 trunk groups) through the whole pipeline. A run by hand, not
//! part of CI: `cargo bench --bench maxima` (about 10 minutes and 10 GB of disk with the
//! defaults on the 2-core machine, 16 minutes and 20 GB with 60 days as well;
//! docs/benchmarks.md has the figures).
//!
//! 1. Collect: the release `cms-linksim` plays `CMS_MAXIMA_SIM_DAYS` (default 1) simulated
//!    day(s) at `--speed max` to two release `cms collect`, and writes its ground truth;
//!    each collector's database is then compared with the truth by `cms compare
//!    --strict`, which must find no difference (nor an interval complete in one only). Events/s per collector, peak RSS, database size.
//! 2. History: the large centre's simulated day (generated in process, committed as the
//!    collector does: `common/history.rs`) replicated over each of
//!    `CMS_MAXIMA_HISTORY_DAYS` days (default `1,7,30`), all real processes: `cms backup`
//!    (time, file size, peak RSS), `cms restore` of that file into an empty server, and a
//!    fresh server's backfill from its peer (`cms collect` on a copy of the history with a
//!    `[peer]` section, `cms sync --once` on the fresh server). Then a least-squares line
//!    through the sizes: the cost per day, and what a year of 15-minute intervals would
//!    take if the growth stays linear (the per-day figures of the sizes say whether it
//!    does). A year at this size (22 GB of database, four copies at once) does not
//!    fit the machine's disk.
//!
//! `CMS_MAXIMA_PARTS` (default `collect,history`) chooses the parts.

#[path = "common/history.rs"]
mod history;
#[path = "common/procs.rs"]
mod procs;

use history::{centre_day, history_of, release_cms, write_config_in, History, LARGE};
use procs::{free_port, proc_mb, wait_for, Guard};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const RSS_TARGET_MB: f64 = 100.0;
const COLLECT_RSS_TARGET_MB: f64 = 200.0;

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn main() {
    let parts = env_list("CMS_MAXIMA_PARTS", "collect,history");
    let Some(cms) = release_cms() else {
        return;
    };
    let sim = cms.with_file_name("cms-linksim");
    println!(
        "maxima: profiles/large.toml, parts {parts:?}, {} core(s)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if parts.iter().any(|p| p == "collect") {
        let days: i64 = std::env::var("CMS_MAXIMA_SIM_DAYS")
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(1);
        collect(&cms, &sim, days);
    }
    if parts.iter().any(|p| p == "history") {
        let sizes: Vec<i64> = env_list("CMS_MAXIMA_HISTORY_DAYS", "1,7,30")
            .iter()
            .map(|d| {
                d.parse()
                    .expect("CMS_MAXIMA_HISTORY_DAYS: days, comma-separated")
            })
            .collect();
        histories(&cms, &sizes);
    }
}

/// Waits for `child` with wait4: its exit status and peak RSS (ru_maxrss, MB).
fn wait_rss(child: &mut Child, what: &str, limit: Duration) -> (ExitStatus, f64) {
    use std::os::unix::process::ExitStatusExt;
    let pid = child.id() as libc::pid_t;
    let t = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: wait4 writes into the status and rusage we own.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut u) };
        assert!(
            r >= 0,
            "wait4 on {what}: {}",
            std::io::Error::last_os_error()
        );
        if r == pid {
            return (ExitStatus::from_raw(status), u.ru_maxrss as f64 / 1024.0);
        }
        assert!(t.elapsed() < limit, "{what} still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `cmd` to its end: wall seconds and peak RSS; panics with its output if it fails.
fn run(what: &str, cmd: &mut Command, log: &Path) -> (f64, f64) {
    let out = std::fs::File::create(log).unwrap();
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let (st, rss) = wait_rss(&mut child, what, Duration::from_secs(3 * 3600));
    let secs = t.elapsed().as_secs_f64();
    assert!(
        st.success(),
        "{what} failed ({st}):\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    (secs, rss)
}

fn cms_at(cms: &Path, dir: &Path) -> Command {
    let mut c = Command::new(cms);
    c.arg("--config").arg(dir.join("cms.toml"));
    c
}

fn file_mb(p: &Path) -> f64 {
    let wal = PathBuf::from(format!("{}-wal", p.display()));
    let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    (len(p) + len(&wal)) as f64 / 1e6
}

/// Part 1: the large profile through two collectors, compared with the truth.
fn collect(cms: &Path, sim: &Path, days: i64) {
    println!("\n1. collect: {days} simulated day(s) of the large centre through two collectors");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::Builder::new()
        .prefix("maxima-collect-")
        .tempdir_in(root.join("target"))
        .unwrap();
    let d = dir.path();
    let t_sim = Instant::now();
    // The buffer holds the whole run (the large day is about 13 million events), so no
    // collector is ever dropped for falling behind.
    let (mut simc, ports) = procs::linksim_two_links(sim, d, |c| {
        c.arg("--profile")
            .arg(root.join(LARGE.profile))
            .args(["--seed", "1", "--start", "2024-01-15T00:00"])
            .args(["--duration", &format!("{days}d"), "--speed", "max"])
            .args(["--buffer", &(20_000_000 * days).to_string()])
            .arg("--truth")
            .arg(d.join("truth.db"))
            .args(["--drain-timeout", "3600"]);
    });
    let mut collectors = Vec::new();
    for (name, link) in [("srv-a", "A"), ("srv-b", "B")] {
        let cd = d.join(name);
        std::fs::create_dir_all(cd.join("data")).unwrap();
        std::fs::write(
            cd.join("cms.toml"),
            format!(
                "server_id = \"{name}\"\ndata_dir = \"data\"\ntime_zone = \"{}\"\n\
                 checkpoint_seconds = 1\n\n[http]\nenabled = false\n\n\
                 [[acd]]\nid = 1\nswitch = \"127.0.0.1:{}\"\n",
                LARGE.zone, ports[link]
            ),
        )
        .unwrap();
        let log = std::fs::File::create(cd.join("collector.log")).unwrap();
        let child = cms_at(cms, &cd)
            .arg("collect")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cms collect starts");
        collectors.push((name, cd, Guard(Some(child))));
    }
    let t0 = wait_for("both collectors' sessions", Duration::from_secs(60), || {
        collectors
            .iter()
            .all(|(_, cd, _)| {
                std::fs::read_to_string(cd.join("collector.log"))
                    .is_ok_and(|l| l.contains("replay"))
            })
            .then(Instant::now)
    });
    let pids: Vec<u32> = collectors
        .iter()
        .map(|(_, _, g)| g.0.as_ref().unwrap().id())
        .collect();
    let mut peak = vec![0.0f64; 2];
    let status = {
        let c = simc.0.as_mut().unwrap();
        let st = wait_for("cms-linksim's exit", Duration::from_secs(4 * 3600), || {
            for (i, p) in pids.iter().enumerate() {
                peak[i] = peak[i].max(proc_mb(*p, "VmHWM:").unwrap_or(0.0));
            }
            c.try_wait().expect("try_wait")
        });
        simc.0 = None;
        st
    };
    let wall = t0.elapsed().as_secs_f64();
    let (_, summary, events) = procs::linksim_done(d, status);
    println!("  {summary}");
    println!(
        "  {events} events to each collector in {wall:.1} s (clock start to the simulator's \
         exit, everything acknowledged by both; {:.1} s from the simulator's start): \
         {:.0} events/s per collector",
        t_sim.elapsed().as_secs_f64(),
        events as f64 / wall
    );
    for ((name, cd, g), pk) in collectors.iter_mut().zip(&peak) {
        let child = g.0.as_mut().unwrap();
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let (st, _) = wait_rss(child, name, Duration::from_secs(120));
        g.0 = None;
        assert!(st.success(), "{name}: cms collect exited with {st}");
        let out = cms_at(cms, cd)
            .args(["compare", "--strict"])
            .arg(d.join("truth.db"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        println!(
            "  {name}: peak RSS {pk:.1} MB ({:.2} x the {COLLECT_RSS_TARGET_MB:.0} MB target), \
             database {:.0} MB; against the truth: {}",
            pk / COLLECT_RSS_TARGET_MB,
            file_mb(&cd.join("data/cms.db")),
            text.lines().last().unwrap_or("").trim()
        );
        assert!(
            out.status.success(),
            "{name}: cms compare with the truth found differences:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

struct Sized {
    days: i64,
    rows: i64,
    db_mb: f64,
    backup_s: f64,
    backup_mb: f64,
    backup_rss: f64,
    restore_s: f64,
    restore_rss: f64,
    sync_s: f64,
    sync_rss: f64,
    holder_rss: f64,
}

/// Part 2: backup, restore and backfill of histories of each size.
fn histories(cms: &Path, sizes: &[i64]) {
    println!("\n2. history: backup, restore and peer backfill of the large centre's history");
    let (_, grid, cache, day) = centre_day(&LARGE);
    let mut rows = Vec::new();
    for &days in sizes {
        let h = history_of(&LARGE, &cache, &day, &grid, days);
        rows.push(measure(cms, &h, &cache));
    }
    println!(
        "\n  days | interval rows | database MB | backup s | backup MB | restore s | backfill s \
         | RSS MB backup / restore / sync / holder"
    );
    for r in &rows {
        println!(
            "  {:>4} | {:>13} | {:>11.0} | {:>8.1} | {:>9.1} | {:>9.1} | {:>10.1} | \
             {:.0} / {:.0} / {:.0} / {:.0}",
            r.days,
            r.rows,
            r.db_mb,
            r.backup_s,
            r.backup_mb,
            r.restore_s,
            r.sync_s,
            r.backup_rss,
            r.restore_rss,
            r.sync_rss,
            r.holder_rss
        );
    }
    println!("  per day of history:");
    for r in &rows {
        let d = r.days as f64;
        println!(
            "  {:>4} days: backup {:.2} s, {:.1} MB; restore {:.2} s; backfill {:.2} s",
            r.days,
            r.backup_s / d,
            r.backup_mb / d,
            r.restore_s / d,
            r.sync_s / d
        );
    }
    if rows.len() >= 2 {
        println!("  least-squares line (fixed + per day), extrapolated to 365 days:");
        let x: Vec<f64> = rows.iter().map(|r| r.days as f64).collect();
        let fits: [(&str, Vec<f64>); 5] = [
            ("database MB", rows.iter().map(|r| r.db_mb).collect()),
            ("backup s", rows.iter().map(|r| r.backup_s).collect()),
            ("backup MB", rows.iter().map(|r| r.backup_mb).collect()),
            ("restore s", rows.iter().map(|r| r.restore_s).collect()),
            ("backfill s", rows.iter().map(|r| r.sync_s).collect()),
        ];
        for (name, y) in fits {
            let (a, b) = line(&x, &y);
            println!(
                "    {name:<12} {a:>8.2} + {b:>8.3} per day -> 365 days: {:.0}",
                a + 365.0 * b
            );
        }
    }
    let worst = rows
        .iter()
        .map(|r| {
            r.backup_rss
                .max(r.restore_rss)
                .max(r.sync_rss)
                .max(r.holder_rss)
        })
        .fold(0.0, f64::max);
    println!(
        "  peak RSS of any backup, restore, sync or holder: {worst:.1} MB ({:.2} x the \
         {RSS_TARGET_MB:.0} MB target)",
        worst / RSS_TARGET_MB
    );
}

/// Least squares: (intercept, slope).
fn line(x: &[f64], y: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    let b = sxy / sxx;
    (my - b * mx, b)
}

/// `cms peer init` in `dir/id`: the fingerprint of its `peer_id = "..."` line.
fn peer_init(cms: &Path, dir: &Path) -> String {
    let out = cms_at(cms, dir)
        .args(["peer", "init", "--identity"])
        .arg(dir.join("id"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "cms peer init: {text}");
    text.lines()
        .find_map(|l| l.strip_prefix("peer_id = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no peer_id line in: {text}"))
        .to_string()
}

fn peer_section(address: &str, listen: Option<u16>, peer_id: &str, dir: &Path) -> String {
    let listen = listen
        .map(|p| format!("listen = \"127.0.0.1:{p}\"\n"))
        .unwrap_or_default();
    format!(
        "\n[peer]\naddress = \"{address}\"\n{listen}peer_id = \"{peer_id}\"\n\
         identity = \"{}\"\ninterval_seconds = 86400\ntimeout_seconds = 60\n",
        dir.join("id").display()
    )
}

fn measure(cms: &Path, h: &History, cache: &Path) -> Sized {
    let work = tempfile::Builder::new()
        .prefix("work-")
        .tempdir_in(cache)
        .unwrap();
    let w = work.path();
    let db_mb = file_mb(&h.db());
    println!(
        "  {} days: {} intervals, {} interval rows, database {db_mb:.0} MB",
        h.days, h.intervals, h.rows
    );

    // Backup, then restore of that file into an empty server.
    let bak = w.join("full.cmsbak");
    let (backup_s, backup_rss) = run(
        "cms backup",
        cms_at(cms, &h.dir).arg("backup").arg("--out").arg(&bak),
        &w.join("backup.log"),
    );
    let backup_mb = file_mb(&bak);
    let restored = w.join("restored");
    write_config_in(&restored, "restored", LARGE.zone, "");
    let (restore_s, restore_rss) = run(
        "cms restore",
        cms_at(cms, &restored).arg("restore").arg(&bak),
        &w.join("restore.log"),
    );
    println!(
        "    backup {backup_s:.1} s ({backup_mb:.1} MB, peak RSS {backup_rss:.1} MB); restore \
         {restore_s:.1} s (peak RSS {restore_rss:.1} MB)"
    );
    std::fs::remove_dir_all(&restored).unwrap();
    std::fs::remove_file(&bak).unwrap();

    // Backfill: the holder is a `cms collect` on a copy of the history (its switch is
    // not there: the link retries while the peer task serves), the fresh server runs
    // `cms sync --once`.
    let holder = w.join("holder");
    let fresh = w.join("fresh");
    for d in [&holder, &fresh] {
        std::fs::create_dir_all(d.join("data")).unwrap();
    }
    std::fs::copy(h.db(), holder.join("data/cms.db")).unwrap();
    write_config_in(&holder, "holder", LARGE.zone, "");
    write_config_in(&fresh, "fresh", LARGE.zone, "");
    let (id_h, id_f) = (peer_init(cms, &holder), peer_init(cms, &fresh));
    let (port_h, port_f) = (free_port(), free_port());
    write_config_in(
        &holder,
        "holder",
        LARGE.zone,
        &format!(
            "\n[http]\nenabled = false\n{}",
            peer_section(&format!("127.0.0.1:{port_f}"), Some(port_h), &id_f, &holder)
        ),
    );
    write_config_in(
        &fresh,
        "fresh",
        LARGE.zone,
        &peer_section(&format!("127.0.0.1:{port_h}"), None, &id_h, &fresh),
    );
    let hlog = std::fs::File::create(w.join("holder.log")).unwrap();
    let mut hold = Guard(Some(
        cms_at(cms, &holder)
            .arg("collect")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(hlog)
            .spawn()
            .expect("cms collect starts"),
    ));
    let hpid = hold.0.as_ref().unwrap().id();
    wait_for(
        "the holder's peer listener",
        Duration::from_secs(60),
        || {
            std::net::TcpStream::connect(("127.0.0.1", port_h))
                .ok()
                .map(|_| ())
        },
    );
    let (sync_s, sync_rss) = run(
        "cms sync --once",
        cms_at(cms, &fresh).args(["sync", "--once"]),
        &w.join("sync.log"),
    );
    let holder_rss = proc_mb(hpid, "VmHWM:").unwrap_or(0.0);
    let said = std::fs::read_to_string(w.join("sync.log")).unwrap_or_default();
    println!(
        "    backfill by `cms sync --once` {sync_s:.1} s (peak RSS {sync_rss:.1} MB; the \
         holder's `cms collect` {holder_rss:.1} MB): {}",
        said.lines().next().unwrap_or("").trim()
    );
    // The backfilled server holds what the history holds.
    let cmp = cms_at(cms, &fresh)
        .arg("compare")
        .arg("--strict")
        .arg(h.db())
        .output()
        .unwrap();
    assert!(
        cmp.status.success(),
        "the backfilled server differs from the history:\n{}{}",
        String::from_utf8_lossy(&cmp.stdout),
        String::from_utf8_lossy(&cmp.stderr)
    );
    drop(hold.0.take().map(|mut c| {
        let _ = c.kill();
        c.wait()
    }));
    Sized {
        days: h.days,
        rows: h.rows,
        db_mb,
        backup_s,
        backup_mb,
        backup_rss,
        restore_s,
        restore_rss,
        sync_s,
        sync_rss,
        holder_rss,
    }
}
