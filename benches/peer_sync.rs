//! Peer sync on the 62-day history of the reference centre (issue #13 targets), side by
//! side with backup + restore of the same data. Run `cargo bench --bench backup_restore`
//! once first: it builds the history this bench copies (`target/bench-data/`). Then
//! `cargo bench --bench peer_sync`.
//!
//! Both servers run in this process over loopback with real mutual TLS 1.3
//! (`peer::session::run` on each end, identities made by `peer::identity::init`), each
//! database its own copy of the history:
//!
//! - idle sync between two identical servers: CPU time of both sides (getrusage) and the
//!   bytes on the wire, TLS included (target: under 50 ms, a few KB);
//! - a one-hour gap (4 intervals deleted on A) healed by one sync: wall time (target:
//!   the gap healed within 5 s of the peer closing the interval);
//! - a fresh server backfilling the whole history from its peer vs `merge::backup` into
//!   a file + `merge::restore::restore_at` of it: wall time, side by side (target: no
//!   slower);
//! - the process's peak RSS (both sides ran in it: an upper bound of either side's;
//!   target: under 100 MB each).

use cms::config::Config;
use cms::peer::identity;
use cms::peer::session::{self, Local};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const IDLE_CPU_TARGET_MS: f64 = 50.0;
const GAP_TARGET_S: f64 = 5.0;
const RSS_TARGET_MB: f64 = 100.0;

fn history() -> Option<PathBuf> {
    let h = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-data/backup-restore-v1/history-62d");
    h.join("done").exists().then_some(h)
}

fn config(dir: &Path, id: &str) -> Config {
    let text = format!(
        "server_id = \"{id}\"\ndata_dir = \"{}\"\ntime_zone = \"America/New_York\"\n\n\
         [[acd]]\nid = 1\nswitch = \"127.0.0.1:5001\"\n",
        dir.join("data").display()
    );
    Config::parse_str(&text, None).unwrap()
}

fn cpu_ms() -> f64 {
    // SAFETY: getrusage writes into the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 * 1e3 + v.tv_usec as f64 / 1e3;
    t(u.ru_utime) + t(u.ru_stime)
}

/// A TCP stream counting the bytes it carries (both directions).
struct Counted<S> {
    s: S,
    n: Arc<AtomicU64>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = b.filled().len();
        let r = Pin::new(&mut self.s).poll_read(cx, b);
        self.n
            .fetch_add((b.filled().len() - before) as u64, Ordering::Relaxed);
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.s).poll_write(cx, b);
        if let Poll::Ready(Ok(k)) = &r {
            self.n.fetch_add(*k as u64, Ordering::Relaxed);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.s).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.s).poll_shutdown(cx)
    }
}

struct Side {
    cfg: Config,
    id: identity::Identity,
}

fn side(root: &Path, name: &str, from: Option<&Path>) -> Side {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    if let Some(h) = from {
        std::fs::copy(h.join("data/cms.db"), dir.join("data/cms.db")).unwrap();
    }
    identity::init(&dir.join("id"), name, false).unwrap();
    Side {
        cfg: config(&dir, name),
        id: identity::load(&dir.join("id")).unwrap(),
    }
}

/// One session, A asking B (and B its turn): wall seconds, bytes on the wire, what A got.
fn sync(rt: &tokio::runtime::Runtime, a: &Side, b: &Side) -> (f64, u64, session::Outcome) {
    let local = |s: &Side| Local {
        cfg: s.cfg.clone(),
        key: None,
        dry_run: false,
        ask_on_turn: true,
        timeout: Duration::from_secs(30),
    };
    let server = cms::peer::tls::server_config(&b.id, a.id.fingerprint).unwrap();
    let client = cms::peer::tls::client_config(&a.id, b.id.fingerprint).unwrap();
    let (la, lb) = (local(a), local(b));
    let n = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let t = Instant::now();
        let acc = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let holder = tokio::spawn(async move {
            let (tcp, peer) = l.accept().await.unwrap();
            let tls = acc.accept(tcp).await.unwrap();
            session::run(tls, &peer.to_string(), lb, false)
                .await
                .unwrap()
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let counted = Counted {
            s: tcp,
            n: n.clone(),
        };
        let conn = tokio_rustls::TlsConnector::from(Arc::new(client));
        let name = rustls::pki_types::ServerName::try_from("cms-peer").unwrap();
        let tls = conn.connect(name, counted).await.unwrap();
        let o = session::run(tls, &addr.to_string(), la, true)
            .await
            .unwrap();
        holder.await.unwrap();
        (t.elapsed().as_secs_f64(), n.load(Ordering::Relaxed), o)
    })
}

fn main() {
    let Some(h) = history() else {
        println!(
            "peer_sync: no 62-day history yet: run `cargo bench --bench backup_restore` once \
             (it builds target/bench-data/backup-restore-v1/history-62d), then rerun"
        );
        std::process::exit(1);
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let work = tempfile::tempdir_in(h.parent().unwrap()).unwrap();
    let a = side(work.path(), "a", Some(&h));
    let b = side(work.path(), "b", Some(&h));

    // Idle: nothing to heal.
    sync(&rt, &a, &b); // warm the page cache
    let c0 = cpu_ms();
    let (secs, bytes, o) = sync(&rt, &a, &b);
    let cpu = cpu_ms() - c0;
    assert_eq!(o.healed(), 0);
    println!(
        "idle sync, 62 identical days: {cpu:.1} ms CPU for both sides ({:.2} x target {IDLE_CPU_TARGET_MS} ms), \
         {bytes} bytes on the wire with TLS, {secs:.3} s wall",
        cpu / IDLE_CPU_TARGET_MS
    );

    // A one-hour gap on A.
    {
        let c = rusqlite::Connection::open(a.cfg.db_path()).unwrap();
        let last: i64 = c
            .query_row("SELECT MAX(istart) FROM interval_status", [], |r| r.get(0))
            .unwrap();
        let from = last - 10 * 3600;
        for t in cms::items::TABLES {
            c.execute(
                &format!("DELETE FROM h{} WHERE istart >= ?1 AND istart < ?2", t.name),
                [from, from + 3600],
            )
            .unwrap();
        }
        c.execute(
            "DELETE FROM interval_status WHERE istart >= ?1 AND istart < ?2",
            [from, from + 3600],
        )
        .unwrap();
    }
    let (secs, bytes, o) = sync(&rt, &a, &b);
    assert_eq!(o.healed(), 4, "the hour came back");
    println!(
        "one-hour gap healed: {secs:.2} s ({:.2} x target {GAP_TARGET_S} s), {bytes} bytes",
        secs / GAP_TARGET_S
    );

    // A fresh server backfills everything, vs backup + restore of the same.
    let fresh = side(work.path(), "fresh", None);
    let (sync_s, bytes, o) = sync(&rt, &fresh, &b);
    let t = Instant::now();
    let file = work.path().join("full.cmsbak");
    let mut store = cms::store::Store::open_read_only(&b.cfg.db_path()).unwrap();
    let sel = cms::merge::Selection {
        acds: vec![1],
        from: None,
        to: None,
        grid: b.cfg.grid(),
        categories: cms::merge::Categories::parse("history,admin").unwrap(),
    };
    cms::merge::backup::backup(
        &mut store,
        &cms::merge::backup::BackupOptions {
            out: file.clone(),
            snapshot: cms::merge::backup::SnapshotOptions::new(
                sel.clone(),
                "b",
                "America/New_York",
            ),
        },
    )
    .unwrap();
    let backup_s = t.elapsed().as_secs_f64();
    let other = side(work.path(), "restored", None);
    let t = Instant::now();
    let opts = cms::merge::restore::RestoreOptions {
        file: file.clone(),
        sel,
        configured_acds: vec![1],
        dry_run: false,
        include_local: false,
        key: None,
        server_id: "restored".into(),
        collection_running: false,
        progress: false,
        week_start: chrono::Weekday::Mon,
    };
    let db = other.cfg.db_path();
    cms::merge::restore::restore_at(&db, &other.cfg.grid(), &opts, || {
        Ok(cms::store::Store::open(&db)?)
    })
    .unwrap();
    let restore_s = t.elapsed().as_secs_f64();
    println!(
        "backfill of 62 days: peer sync {sync_s:.2} s ({} intervals, {:.1} MB on the wire) vs \
         backup {backup_s:.2} s + restore {restore_s:.2} s = {:.2} s ({:.2} x)",
        o.healed(),
        bytes as f64 / 1e6,
        backup_s + restore_s,
        sync_s / (backup_s + restore_s)
    );
    // Both sides ran in this process, so its peak is an upper bound of either side's.
    println!(
        "peak RSS of this process (both sides of every sync, the backup and the restore): \
         {:.1} MB (target: under {RSS_TARGET_MB} MB on each side)",
        peak_rss_mb()
    );
}

/// VmHWM of this process, MB (0 where /proc is missing).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
