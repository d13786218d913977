//! `cms-linksim` end to end: the real binary with test clients speaking the session rules
//! (`cms::proto::codec::LinkCodec`), and the Erlang C realism check on the ground truth.

mod common;

use cms::proto::codec::LinkCodec;
use cms::proto::{Frame, Hello, StartMode};
use common::wait::{until, until_async};
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

const BIN: &str = env!("CARGO_BIN_EXE_cms-linksim");

fn profile(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("profiles/{name}.toml"))
}

/// A running simulator; killed when dropped (a failing test never leaves one behind).
struct Sim {
    child: Child,
    ports: HashMap<String, u16>,
    _dir: tempfile::TempDir,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sim {
    fn start(args: &[&str]) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let pf = dir.path().join("ports.json");
        let child = Command::new(BIN)
            .args(args)
            .arg("--port-file")
            .arg(&pf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn cms-linksim");
        let ports = until(
            Duration::from_secs(20),
            || format!("{}: cms-linksim's port file", pf.display()),
            || {
                let s = std::fs::read_to_string(&pf).ok()?;
                Some(serde_json::from_str::<HashMap<String, u16>>(&s).unwrap())
            },
        );
        Sim {
            child,
            ports,
            _dir: dir,
        }
    }

    /// Waits for the process to exit by itself; returns whether it succeeded.
    fn wait(&mut self, limit: Duration) -> bool {
        until(
            limit,
            || "cms-linksim to exit".into(),
            || self.child.try_wait().unwrap(),
        )
        .success()
    }
}

struct Client {
    io: Framed<TcpStream, LinkCodec>,
    /// The collector side sends HEARTBEAT every second (session rule 5), or the switch
    /// closes the session after three silent periods.
    last_hb: Instant,
}

impl Client {
    async fn connect(port: u16, epoch: u64, resume_from: u64) -> std::io::Result<Client> {
        let s = TcpStream::connect(("127.0.0.1", port)).await?;
        let mut io = Framed::new(s, LinkCodec);
        io.send(Frame::Hello(Hello {
            version_min: 1,
            version_max: 1,
            acd: 1,
            server_id: "test".into(),
            epoch,
            resume_from,
        }))
        .await
        .unwrap();
        Ok(Client {
            io,
            last_hb: Instant::now(),
        })
    }

    async fn next(&mut self) -> Option<Frame> {
        if self.last_hb.elapsed() >= Duration::from_millis(500) {
            self.last_hb = Instant::now();
            let _ = self.io.send(Frame::Heartbeat { ts: 0, last_seq: 0 }).await;
        }
        match tokio::time::timeout(Duration::from_secs(20), self.io.next()).await {
            Ok(Some(Ok(f))) => Some(f),
            Ok(None) | Ok(Some(Err(_))) => None,
            Err(_) => panic!("no frame within 20 s"),
        }
    }

    async fn ack(&mut self, epoch: u64, seq: u64) {
        self.io.send(Frame::Ack { epoch, seq }).await.unwrap();
    }

    /// Reads a whole run: WELCOME, then every frame until the final heartbeat (the one
    /// whose last_seq is the last event, after the end), ACKing as it goes. Returns the
    /// welcome, the hash of the event frames and the events' count.
    async fn read_run(&mut self, end_ms: i64) -> (Frame, String, u64) {
        let welcome = self.next().await.expect("welcome");
        let epoch = match &welcome {
            Frame::Welcome(w) => w.epoch,
            f => panic!("expected WELCOME, got {f:?}"),
        };
        let mut h = blake3::Hasher::new();
        let mut last = 0;
        let mut n = 0;
        loop {
            match self.next().await.expect("stream ended early") {
                Frame::Event(e) => {
                    assert_eq!(e.seq, last + 1, "contiguous seq");
                    last = e.seq;
                    n += 1;
                    h.update(&Frame::Event(e).to_bytes());
                    if n % 5000 == 0 {
                        self.ack(epoch, last).await;
                    }
                }
                Frame::Heartbeat { ts, last_seq } => {
                    if ts == end_ms && last_seq == last {
                        self.ack(epoch, last).await;
                        return (welcome, h.finalize().to_hex().to_string(), n);
                    }
                }
                f => panic!("unexpected {f:?}"),
            }
        }
    }
}

/// 2024-01-15T08:00:00 Europe/London (tiny's zone, UTC+0 in January) in ms.
const TINY_START_MS: i64 = 1_705_305_600_000;

fn tiny_args<'a>(seed: &'a str, links: &'a [&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "--profile",
        Box::leak(
            profile("tiny")
                .into_os_string()
                .into_string()
                .unwrap()
                .into_boxed_str(),
        ),
        "--seed",
        seed,
        "--start",
        "2024-01-15T08:00:00",
        "--duration",
        "3h",
        "--speed",
        "max",
        "--drain-timeout",
        "20",
    ];
    for l in links {
        a.push("--listen");
        a.push(l);
    }
    a
}

async fn full_run(seed: &str, nlinks: usize) -> Vec<(Frame, String, u64)> {
    let links: Vec<&str> = ["A=127.0.0.1:0", "B=127.0.0.1:0"][..nlinks].to_vec();
    let n = nlinks.to_string();
    let mut args = tiny_args(seed, &links);
    args.extend(["--wait-links", &n]);
    let mut sim = Sim::start(&args);
    let mut tasks = Vec::new();
    for name in ["A", "B"].iter().take(nlinks) {
        let port = sim.ports[*name];
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(port, 0, 0).await.unwrap();
            c.read_run(TINY_START_MS + 3 * 3_600_000).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    assert!(sim.wait(Duration::from_secs(30)), "exit status");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_gives_byte_identical_stream() {
    let a = full_run("7", 1).await;
    let b = full_run("7", 1).await;
    let c = full_run("8", 1).await;
    assert!(a[0].2 > 500, "a real stream: {} events", a[0].2);
    assert_eq!(a[0].1, b[0].1, "same seed, same bytes");
    assert_ne!(a[0].1, c[0].1, "another seed, another stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_client_gets_replay_from_seq_1_and_two_links_are_identical() {
    let r = full_run("11", 2).await;
    for (w, _, _) in &r {
        match w {
            Frame::Welcome(w) => {
                assert_eq!(w.mode, StartMode::Replay);
                assert_eq!(w.first_seq, 1);
                assert_ne!(w.epoch, 0);
            }
            f => panic!("{f:?}"),
        }
    }
    assert_eq!(r[0].1, r[1].1, "link A and link B carry the same stream");
    assert_eq!(r[0].2, r[1].2);
}

/// Reads events until one with seq >= `upto`; returns the epoch and that seq.
async fn read_until(c: &mut Client, upto: u64) -> (u64, u64, Frame) {
    let welcome = c.next().await.unwrap();
    let Frame::Welcome(w) = &welcome else {
        panic!("{welcome:?}")
    };
    let epoch = w.epoch;
    loop {
        if let Frame::Event(e) = c.next().await.unwrap() {
            if e.seq >= upto {
                return (epoch, e.seq, welcome);
            }
        }
    }
}

fn reference_args(buffer: &str) -> Vec<String> {
    [
        "--profile",
        profile("reference").to_str().unwrap(),
        "--start",
        "2024-01-15T08:00:00",
        "--duration",
        "20m",
        "--speed",
        "60",
        "--listen",
        "A=127.0.0.1:0",
        "--buffer",
        buffer,
        "--wait-links",
        "1",
        "--drain-timeout",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_inside_the_buffer_replays_from_resume_from() {
    let args = reference_args("100000");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sim = Sim::start(&args);
    let port = sim.ports["A"];
    let mut c = Client::connect(port, 0, 0).await.unwrap();
    let (epoch, _, w) = read_until(&mut c, 1500).await;
    assert!(matches!(w, Frame::Welcome(ref w) if w.mode == StartMode::Replay && w.first_seq == 1));
    drop(c);
    let mut c = Client::connect(port, epoch, 700).await.unwrap();
    match c.next().await.unwrap() {
        Frame::Welcome(w) => {
            assert_eq!(w.mode, StartMode::Replay);
            assert_eq!(w.first_seq, 700);
            assert_eq!(w.epoch, epoch);
        }
        f => panic!("{f:?}"),
    }
    loop {
        match c.next().await.unwrap() {
            Frame::Event(e) => {
                assert_eq!(e.seq, 700);
                break;
            }
            Frame::Heartbeat { .. } => {}
            f => panic!("{f:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_beyond_the_buffer_gets_pumpup_and_gap() {
    let args = reference_args("2000");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sim = Sim::start(&args);
    let port = sim.ports["A"];
    // The switch moves on by more than the buffer past the resume point while this
    // session reads (it never ACKs, so nothing is trimmed for it): once it has sent
    // seq resume + buffer + 100, seq resume has left the buffer.
    let resume = 500;
    let mut c = Client::connect(port, 0, 0).await.unwrap();
    let (epoch, _, _) = read_until(&mut c, resume + 2000 + 100).await;
    drop(c);
    // A fresh collector after the buffer moved on gets a pump-up and no GAP.
    let mut f = Client::connect(port, 0, 0).await.unwrap();
    let Some(Frame::Welcome(w)) = f.next().await else {
        panic!("welcome")
    };
    assert_eq!(w.mode, StartMode::Pumpup);
    loop {
        match f.next().await.unwrap() {
            Frame::PumpupEnd => break,
            Frame::Gap { .. } => panic!("a fresh collector gets no GAP"),
            _ => {}
        }
    }
    match f.next().await.unwrap() {
        Frame::Event(e) => assert_eq!(e.seq, w.first_seq),
        Frame::Heartbeat { .. } => {}
        other => panic!("a fresh collector gets no GAP: {other:?}"),
    }
    drop(f);
    let mut c = Client::connect(port, epoch, resume).await.unwrap();
    let Some(Frame::Welcome(w)) = c.next().await else {
        panic!("welcome")
    };
    assert_eq!(w.mode, StartMode::Pumpup);
    let Some(Frame::PumpupBegin { as_of_seq, .. }) = c.next().await else {
        panic!("PUMPUP_BEGIN")
    };
    assert_eq!(w.first_seq, as_of_seq + 1);
    assert!(
        as_of_seq > resume + 2000,
        "the switch moved on: as_of {as_of_seq}"
    );
    let mut counts = HashMap::new();
    loop {
        match c.next().await.unwrap() {
            Frame::PumpupEnd => break,
            f => *counts.entry(f.type_code()).or_insert(0) += 1,
        }
    }
    assert_eq!(counts[&cms::proto::T_SNAP_SKILL], 50);
    assert_eq!(counts[&cms::proto::T_SNAP_VDN], 100);
    assert_eq!(counts[&cms::proto::T_SNAP_TKGRP], 20);
    assert!(counts[&cms::proto::T_SNAP_AGENT] > 100);
    assert_eq!(
        c.next().await,
        Some(Frame::Gap {
            from: resume,
            to: as_of_seq
        })
    );
    loop {
        match c.next().await.unwrap() {
            Frame::Event(e) => {
                assert_eq!(e.seq, as_of_seq + 1);
                break;
            }
            Frame::Heartbeat { .. } => {}
            f => panic!("{f:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_down_fault_refuses_connections_during_the_window() {
    // Speed 10: the window +20s..+80s of switch time is 2 s..8 s of wall time.
    let p = profile("tiny");
    let sim = Sim::start(&[
        "--profile",
        p.to_str().unwrap(),
        "--duration",
        "3m",
        "--speed",
        "10",
        "--listen",
        "A=127.0.0.1:0",
        "--listen",
        "B=127.0.0.1:0",
        "--faults",
        "A:down@+20s-+80s",
        "--drain-timeout",
        "1",
    ]);
    let t0 = Instant::now();
    let (pa, pb) = (sim.ports["A"], sim.ports["B"]);
    let mut a = Client::connect(pa, 0, 0)
        .await
        .expect("A is up before the window");
    assert!(matches!(a.next().await, Some(Frame::Welcome(_))));
    // The session on A is closed when the window starts.
    loop {
        if a.next().await.is_none() {
            break;
        }
    }
    let closed_at = t0.elapsed();
    assert!(closed_at >= Duration::from_millis(1500), "{closed_at:?}");
    // During the window: refused on A (once the switch has closed A's listener, which
    // it does beside the session), B unaffected. The window lasts 6 s.
    let e = until_async(
        Duration::from_secs(5),
        || "link A to refuse connections during the window".into(),
        || async move { TcpStream::connect(("127.0.0.1", pa)).await.err() },
    )
    .await;
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    let mut b = Client::connect(pb, 0, 0).await.expect("B stays up");
    assert!(matches!(b.next().await, Some(Frame::Welcome(_))));
    // After the window A accepts again, on the same port.
    let back = loop {
        if let Ok(mut c) = Client::connect(pa, 0, 0).await {
            if matches!(c.next().await, Some(Frame::Welcome(_))) {
                break t0.elapsed();
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "A never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        back >= Duration::from_secs(6),
        "came back too early: {back:?}"
    );
}

/// The Erlang C realism check, on any database with the collector's schema (the truth
/// here; a collector's database later): one skill `skill` served by `c` agents, arrival
/// rate `lambda` and service rate `mu` per second, over `run_secs` of switch time.
///
/// Compares P(wait) = 1 - sum(acdcalls1)/sum(acdcalls) (PERIOD1 = 0, so band 1 holds the
/// zero-wait answers) and ASA = sum(anstime)/sum(acdcalls) with the M/M/c formulas.
///
/// Tolerance, derived from the run length: successive waits are strongly correlated
/// (the queue forgets its state only over its relaxation time), so the run is worth about
/// n_eff = run_secs / (2 tau) independent observations, with tau = 1 / (mu (sqrt c -
/// sqrt a))^2 the relaxation time of the M/M/c queue near saturation (a = lambda / mu).
/// Then the standard error of P(wait) is sqrt(p (1 - p) / n_eff) and that of ASA is
/// sd(W) / sqrt(n_eff), where W is the wait of one call (an atom at 0 of mass 1 - p and an
/// exponential tail of rate c mu - lambda: E[W^2] = 2 p / (c mu - lambda)^2). We allow 4
/// standard errors, plus the bias of whole-second time stamps: an arrival and a departure
/// in the same second are ordered arbitrarily, which moves P(wait) by at most about
/// p * c * mu * 1 s and ASA by about half a second per call.
///
/// # Errors
/// A message with the measured and expected figures and the tolerance.
pub fn erlang_c_check(
    conn: &rusqlite::Connection,
    skill: u16,
    c: u32,
    lambda: f64,
    mu: f64,
    run_secs: f64,
) -> Result<String, String> {
    let (acd, acd1, ans): (i64, i64, i64) = conn
        .query_row(
            "SELECT sum(acdcalls), sum(acdcalls1), sum(anstime) FROM hsplit WHERE split = ?1",
            [skill],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(|e| e.to_string())?;
    if acd == 0 {
        return Err("no answered calls".into());
    }
    let a = lambda / mu;
    assert!(a < c as f64, "unstable queue");
    // Erlang C: P(wait) = (a^c / c!) (c / (c - a)) / (sum_{k<c} a^k / k! + that).
    let mut term = 1.0;
    let mut sum = 0.0;
    for k in 0..c {
        if k > 0 {
            term *= a / k as f64;
        }
        sum += term;
    }
    let top = term * a / c as f64 * (c as f64 / (c as f64 - a));
    let p = top / (sum + top);
    let drain = c as f64 * mu - lambda;
    let asa = p / drain;
    let tau = 1.0 / (mu * ((c as f64).sqrt() - a.sqrt()).powi(2));
    let n_eff = run_secs / (2.0 * tau);
    let sd_w = (2.0 * p / (drain * drain) - asa * asa).sqrt();
    let tol_p = 4.0 * (p * (1.0 - p) / n_eff).sqrt() + p * c as f64 * mu;
    let tol_asa = 4.0 * sd_w / n_eff.sqrt() + 0.5;
    let p_meas = 1.0 - acd1 as f64 / acd as f64;
    let asa_meas = ans as f64 / acd as f64;
    let msg = format!(
        "{acd} calls: P(wait) {p_meas:.4} vs Erlang C {p:.4} (tolerance {tol_p:.4}); \
         ASA {asa_meas:.2} s vs {asa:.2} s (tolerance {tol_asa:.2} s)"
    );
    if (p_meas - p).abs() > tol_p || (asa_meas - asa).abs() > tol_asa {
        Err(msg)
    } else {
        Ok(msg)
    }
}

#[test]
fn erlang_c_realism() {
    let dir = tempfile::tempdir().unwrap();
    let prof = dir.path().join("erlang.toml");
    // c = 10 agents, talk exponential with mean 300 s (mu = 1/300), a = 8 Erlangs.
    let (c, mean_talk, a) = (10u32, 300.0, 8.0);
    let lambda = a / mean_talk;
    std::fs::write(
        &prof,
        format!(
            r#"
name = "erlang-c"
time_zone = "UTC"
[skills]
count = 1
service_level = 20
periods = [0, 10, 20, 30, 60, 120, 240, 480, 960]
queue_limit = 1000000
[vdns]
count = 1
service_level = 20
[trunks]
groups = 1
trunks_per_group = 60000
[agents]
count = {c}
skills_per_agent = 1
[calls]
per_hour = {}
talk = {{ dist = "exp", mean = {mean_talk} }}
patience = {{ dist = "infinite" }}
"#,
            lambda * 3600.0
        ),
    )
    .unwrap();
    let db = dir.path().join("truth.db");
    let hours = 1500;
    let st = Command::new(BIN)
        .args(["--profile", prof.to_str().unwrap(), "--speed", "max"])
        .args([
            "--start",
            "2024-01-01T00:00:00",
            "--duration",
            &format!("{hours}h"),
        ])
        .args(["--truth", db.to_str().unwrap(), "--interval-minutes", "60"])
        .status()
        .unwrap();
    assert!(st.success());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM interval_status WHERE status = 'complete'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, hours, "one complete status row per interval");
    let r = erlang_c_check(&conn, 1, c, lambda, 1.0 / mean_talk, hours as f64 * 3600.0);
    println!("{r:?}");
    r.unwrap();
}

#[test]
fn bad_input_is_named_and_exits_non_zero() {
    let out = Command::new(BIN)
        .args(["--profile", "/nonexistent/p.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("cms-linksim: /nonexistent/p.toml: "),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["--profile", profile("tiny").to_str().unwrap()])
        .args([
            "--listen",
            "A=127.0.0.1:0",
            "--faults",
            "C:down@10:00-10:05",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"C\"") && err.contains("no such link"),
        "{err}"
    );
}

#[test]
fn truth_covers_every_interval_and_is_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let st = Command::new(BIN)
        .args([
            "--profile",
            profile("tiny").to_str().unwrap(),
            "--speed",
            "max",
        ])
        .args(["--start", "2024-01-15T07:50:00", "--duration", "6h"])
        .args(["--truth", db.to_str().unwrap(), "--interval-minutes", "30"])
        .status()
        .unwrap();
    assert!(st.success());
    let conn = rusqlite::Connection::open(&db).unwrap();
    // 07:30 (started inside it) .. 13:00: the 12 intervals that end at or before 13:50.
    let (n, first, last): (i64, i64, i64) = conn
        .query_row(
            "SELECT count(*), min(starttime), max(starttime) FROM interval_status
             WHERE status = 'complete' AND source = 'truth' AND intrvl = 30
               AND row_date = '2024-01-15'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((n, first, last), (12, 730, 1300));
    // callsoffered = acdcalls + abncalls + outflowcalls + dequecalls, every row.
    let bad: i64 = conn
        .query_row(
            "SELECT count(*) FROM hsplit WHERE callsoffered != acdcalls + abncalls + outflowcalls + dequecalls",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0);
    // The split's interval-based items are the sums of the agent rows.
    let bad: i64 = conn
        .query_row(
            "SELECT count(*) FROM hsplit s WHERE i_stafftime != (SELECT coalesce(sum(i_stafftime), 0)
             FROM hagent a WHERE a.istart = s.istart AND a.split = s.split)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0);
    // 6 agents logged in all the time: staff time is 6 x 2 skills x 30 min per full interval.
    let staff: i64 = conn
        .query_row(
            "SELECT sum(i_stafftime) FROM hagent WHERE starttime = 1000",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(staff, 6 * 2 * 1800);
    // The checksums are those of the stored rows.
    let mut stmt = conn
        .prepare("SELECT istart, row_count, checksum FROM interval_status")
        .unwrap();
    let rows: Vec<(i64, i64, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (istart, count, sum) in rows {
        assert_eq!(
            cms::store::interval_checksum(&conn, 1, istart).unwrap(),
            (count, sum)
        );
    }
}

/// A collector that reconnects while a half-open fault silences the link gets nothing
/// until the window ends, and then a whole session: WELCOME first (issue #10 item 4: the
/// WELCOME was dropped and the events came without it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_during_a_half_open_window_gets_welcome_first() {
    // Speed 10: the window +10s..+50s of switch time is 1 s..5 s of wall time.
    let p = profile("tiny");
    let sim = Sim::start(&[
        "--profile",
        p.to_str().unwrap(),
        "--duration",
        "2m",
        "--speed",
        "10",
        "--listen",
        "A=127.0.0.1:0",
        "--faults",
        "A:halfopen@+10s-+50s",
        "--drain-timeout",
        "1",
    ]);
    let port = sim.ports["A"];
    let mut a = Client::connect(port, 0, 0).await.unwrap();
    assert!(matches!(a.next().await, Some(Frame::Welcome(_))));
    // The window has started once the link is silent for 1.5 s (heartbeats come every
    // second otherwise).
    let t0 = Instant::now();
    loop {
        let _ = a.io.send(Frame::Heartbeat { ts: 0, last_seq: 0 }).await;
        match tokio::time::timeout(Duration::from_millis(1500), a.io.next()).await {
            Err(_) => break,
            Ok(Some(Ok(_))) => {}
            Ok(r) => panic!("session A ended before the half-open window: {r:?}"),
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "never went silent");
    }
    // A reconnect now (the collector gave up on the silent session).
    let mut b = Client::connect(port, 0, 0).await.unwrap();
    let first = loop {
        tokio::select! {
            f = b.io.next() => break f,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                let _ = b.io.send(Frame::Heartbeat { ts: 0, last_seq: 0 }).await;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no frame after the window"
        );
    };
    match first {
        Some(Ok(Frame::Welcome(w))) => assert_eq!(w.mode, StartMode::Replay),
        f => panic!("expected WELCOME first, got {f:?}"),
    }
    match b.next().await {
        Some(Frame::Event(e)) => assert_eq!(e.seq, 1, "replayed from seq 1"),
        f => panic!("expected the first event, got {f:?}"),
    }
    drop(sim);
}

/// `--ack-stats`: one CSV line per ACK with the lag from when the switch made the event
/// to when its ACK arrived; an ACK held back for 400 ms shows a lag of at least that, an
/// ACK that repeats the last one has no lag, and the summary gives the quantiles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_stats_records_each_acks_lag() {
    const HOLD: Duration = Duration::from_millis(400);
    let dir = tempfile::tempdir().unwrap();
    let (pf, stats, err) = (
        dir.path().join("ports.json"),
        dir.path().join("acks.csv"),
        dir.path().join("stderr"),
    );
    let mut args = tiny_args("3", &["A=127.0.0.1:0"]);
    args.extend(["--wait-links", "1"]);
    let mut child = Command::new(BIN)
        .args(&args)
        .arg("--port-file")
        .arg(&pf)
        .arg("--ack-stats")
        .arg(&stats)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("spawn cms-linksim");
    let port = until(
        Duration::from_secs(20),
        || "cms-linksim's port file".into(),
        || {
            let s = std::fs::read_to_string(&pf).ok()?;
            serde_json::from_str::<HashMap<String, u16>>(&s)
                .ok()?
                .get("A")
                .copied()
        },
    );
    let mut c = Client::connect(port, 0, 0).await.unwrap();
    let (epoch, held, _) = read_until(&mut c, 100).await;
    // The event has been made and received; its ACK comes HOLD later, then once more.
    tokio::time::sleep(HOLD).await;
    c.ack(epoch, held).await;
    c.ack(epoch, held).await;
    let end_ms = TINY_START_MS + 3 * 3_600_000;
    let mut last = held;
    loop {
        match c.next().await.expect("stream ended early") {
            Frame::Event(e) => last = e.seq,
            Frame::Heartbeat { ts, last_seq } if ts == end_ms && last_seq == last => break,
            _ => {}
        }
    }
    c.ack(epoch, last).await;
    let st = until(
        Duration::from_secs(30),
        || "cms-linksim to exit after the drain".into(),
        || child.try_wait().unwrap(),
    );
    assert!(st.success(), "{st:?}");
    let text = std::fs::read_to_string(&stats).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(lines[0], ["unix_ms", "link", "seq", "lag_ms"]);
    assert_eq!(lines.len(), 4, "a line per ACK:\n{text}");
    let (held_s, last_s) = (held.to_string(), last.to_string());
    assert_eq!(lines[1][1..3], ["A", held_s.as_str()], "{text}");
    let lag: u64 = lines[1][3].parse().unwrap();
    assert!(
        lag >= HOLD.as_millis() as u64 && lag < 60_000,
        "the held ACK's lag: {lag} ms"
    );
    assert_eq!(
        lines[2][1..],
        ["A", held_s.as_str(), ""],
        "a repeat has no lag"
    );
    assert_eq!(lines[3][1..3], ["A", last_s.as_str()], "{text}");
    assert!(lines[3][3].parse::<u64>().is_ok(), "{text}");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let at: u128 = lines[1][0].parse().unwrap();
    assert!(now_ms - at < 120_000, "unix_ms is the wall clock: {at}");
    let summary = std::fs::read_to_string(&err).unwrap();
    let max = summary
        .split("ACK lag: A 2 ACKs, ")
        .nth(1)
        .and_then(|s| s.split("max ").nth(1))
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no ACK lag in the summary:\n{summary}"));
    assert!(max >= lag, "{summary}");
}
