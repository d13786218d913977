//! One peer-sync session over an authenticated stream (proto/peer-sync.md, "The
//! session"): HELLO both ways, then the initiator asks and the other holds, then, if the
//! initiator says so, the roles swap in the same session.
//!
//! The asker compares per ACD and day, drills down to the days that differ, and fetches
//! the days where the peer has what it lacks complete; each fetched range arrives as a
//! backup stream (proto/backup-format.md), is spooled to a file in the receiver's data
//! directory, and merged by `merge::restore::restore_at`: verified whole before anything is
//! written, planned per interval (fill, replace incomplete with complete, never
//! overwrite complete, never touch the interval being collected, conflicts reported),
//! summaries rebuilt. The holder writes the stream with `merge::backup::write_snapshot`
//! straight into the session (no file on the sending side).
//!
//! Every wait is bounded by the configured timeout; a side busy with a backup or a
//! restore sends WORKING every second so the other knows it is alive.

use super::digest::{self, Comparison};
use super::wire::{code, Msg, PeerCodec, MAX_DATA_LEN, VERSION_MAX, VERSION_MIN};
use crate::config::Config;
use crate::merge::restore::RestoreReport;
use crate::merge::{Categories, Selection};
use crate::store::{peer as sp, Store};
use anyhow::{anyhow, bail, Context};
use futures::{SinkExt, StreamExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

/// What this side brings to a session.
#[derive(Clone)]
pub struct Local {
    pub cfg: Config,
    /// The site key (backups authenticated with it, restores check it).
    pub key: Option<[u8; 32]>,
    /// Plan only: fetch and show what a restore would do, write nothing, and do not hand
    /// the peer a turn.
    pub dry_run: bool,
    /// Whether this side asks when the peer offers it a turn (the collector service does).
    pub ask_on_turn: bool,
    /// Bound of every wait for the peer.
    pub timeout: Duration,
}

/// What a session did, from this side.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub peer_server: String,
    /// One restore report per fetched range, in order.
    pub restores: Vec<RestoreReport>,
    /// (ACD, interval) complete on both with different contents.
    pub conflicts: Vec<(u16, i64)>,
    pub peer_lacks: u64,
    /// First local date of what the peer lacks complete.
    pub peer_lacks_from: Option<chrono::NaiveDate>,
    /// Backup streams this side sent (as holder) and their bytes.
    pub streams_sent: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Whether this side asked in this session.
    pub asked: bool,
    /// The peer's interval statuses per ACD as this side's ask saw them (after its
    /// fetches), for the console's coverage picture.
    pub views: Vec<sp::PeerView>,
}

impl Outcome {
    /// Intervals healed here: filled, replaced or improved by the restores.
    pub fn healed(&self) -> u64 {
        self.restores
            .iter()
            .map(|r| r.filled + r.replaced + r.improved)
            .sum()
    }
}

/// An ERROR the peer sent: its code and reason.
#[derive(Debug, thiserror::Error)]
#[error("peer {peer} reports: {reason} (error {code})")]
pub struct PeerError {
    pub peer: String,
    pub code: u16,
    pub reason: String,
}

struct Session<S> {
    io: Framed<S, PeerCodec>,
    /// The peer's address and, once known, its server id, for messages.
    peer: String,
    local: Local,
    out: Outcome,
    acds: Vec<u16>,
    /// Whether this side already sent the peer an ERROR (then it is not sent again).
    told: bool,
}

/// This side refused the peer (and told it so in an ERROR).
#[derive(Debug, thiserror::Error)]
#[error("{peer}: refused: {reason}")]
pub struct Refused {
    pub peer: String,
    pub reason: String,
}

/// Runs a session as the side that connected (`initiator`) or accepted.
///
/// # Errors
/// The peer is incompatible, breaks the protocol, reports an error, or a wait runs out;
/// the message names the peer and the reason. Every restore already finished stays (each
/// is complete in itself).
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: &str,
    local: Local,
    initiator: bool,
) -> anyhow::Result<Outcome> {
    let mut s = Session {
        io: Framed::new(stream, PeerCodec),
        peer: peer.to_string(),
        local,
        out: Outcome::default(),
        acds: vec![],
        told: false,
    };
    let r = s.drive(initiator).await;
    if let Err(e) = &r {
        // Say why to the peer, unless it is the one that said so.
        if e.downcast_ref::<PeerError>().is_none() && !s.told {
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                s.io.send(Msg::Error {
                    code: code::UNEXPECTED,
                    reason: format!("{e:#}"),
                }),
            )
            .await;
        }
    }
    r.map(|()| s.out)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    async fn drive(&mut self, initiator: bool) -> anyhow::Result<()> {
        self.hello().await?;
        if initiator {
            self.ask().await?;
            let your_turn = !self.local.dry_run;
            self.send(Msg::Done { your_turn }).await?;
            if your_turn {
                self.hold().await?;
            }
        } else if self.hold().await? && self.local.ask_on_turn {
            self.ask().await?;
            self.send(Msg::Done { your_turn: false }).await?;
        } else {
            self.send(Msg::Done { your_turn: false }).await?;
        }
        let _ = self.io.close().await;
        Ok(())
    }

    async fn send(&mut self, m: Msg) -> anyhow::Result<()> {
        let name = m.name();
        match tokio::time::timeout(self.local.timeout, self.io.send(m)).await {
            Err(_) => bail!(
                "{}: could not send {name} within {:?} (the peer does not read)",
                self.peer,
                self.local.timeout
            ),
            Ok(r) => r.with_context(|| format!("{}: sending {name}", self.peer)),
        }
    }

    /// The next message other than WORKING, each within the timeout; an ERROR becomes a
    /// [`PeerError`].
    async fn recv(&mut self) -> anyhow::Result<Msg> {
        loop {
            let m = match tokio::time::timeout(self.local.timeout, self.io.next()).await {
                Err(_) => bail!(
                    "{}: no message from the peer within {:?}",
                    self.peer,
                    self.local.timeout
                ),
                Ok(None) => bail!("{}: the peer closed the session", self.peer),
                Ok(Some(Err(e))) => bail!("{}: {}", self.peer, super::tls::io_reason(&e)),
                Ok(Some(Ok(m))) => m,
            };
            match m {
                Msg::Working => continue,
                Msg::Error { code, reason } => {
                    return Err(PeerError {
                        peer: self.peer.clone(),
                        code,
                        reason,
                    }
                    .into())
                }
                m => return Ok(m),
            }
        }
    }

    /// Runs `f` on a blocking thread, telling the peer WORKING every second meanwhile.
    async fn busy<T: Send + 'static>(
        &mut self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let mut h = tokio::task::spawn_blocking(f);
        let every = (self.local.timeout / 3).min(Duration::from_secs(1));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                r = &mut h => return r.map_err(|e| anyhow!("peer sync worker failed: {e}")),
                _ = tick.tick() => self.send(Msg::Working).await?,
            }
        }
    }

    async fn hello(&mut self) -> anyhow::Result<()> {
        let cfg = &self.local.cfg;
        let mine: Vec<u16> = cfg.acds.iter().map(|a| a.acd).collect();
        self.send(Msg::Hello {
            version_min: VERSION_MIN,
            version_max: VERSION_MAX,
            interval_minutes: cfg.interval_minutes as u8,
            server_id: cfg.server_id.clone(),
            acds: mine.clone(),
        })
        .await?;
        let Msg::Hello {
            version_min,
            version_max,
            interval_minutes,
            server_id,
            acds,
        } = self.recv().await?
        else {
            bail!("{}: the peer did not start with HELLO", self.peer);
        };
        self.peer = format!("{} ({server_id})", self.peer);
        self.out.peer_server = server_id;
        if version_max < VERSION_MIN || version_min > VERSION_MAX {
            let reason = format!(
                "incompatible peer-sync versions: this server ({}) speaks {VERSION_MIN}..{VERSION_MAX}, \
                 the peer speaks {version_min}..{version_max}: upgrade the older one, or use \
                 `cms backup` and `cms restore` meanwhile",
                self.local.cfg.server_id
            );
            return self.refuse(code::VERSION, reason).await;
        }
        if u32::from(interval_minutes) != self.local.cfg.interval_minutes {
            let reason = format!(
                "interval lengths differ: {} min here ({}), {interval_minutes} min on the peer",
                self.local.cfg.interval_minutes, self.local.cfg.server_id
            );
            return self.refuse(code::INTERVAL, reason).await;
        }
        self.acds = mine.into_iter().filter(|a| acds.contains(a)).collect();
        Ok(())
    }

    /// Tells the peer ERROR `code` with `reason` (once per session; a failure to send it
    /// is not reported: the session is ending anyway).
    async fn tell(&mut self, code: u16, reason: &str) {
        self.told = true;
        let reason = reason.to_string();
        let _ = self.send(Msg::Error { code, reason }).await;
    }

    /// Sends ERROR and fails with the same reason.
    async fn refuse(&mut self, code: u16, reason: String) -> anyhow::Result<()> {
        self.tell(code, &reason).await;
        Err(Refused {
            peer: self.peer.clone(),
            reason,
        }
        .into())
    }

    // ---- asking -------------------------------------------------------------------

    async fn ask(&mut self) -> anyhow::Result<()> {
        self.out.asked = true;
        for acd in self.acds.clone() {
            self.ask_acd(acd).await?;
        }
        Ok(())
    }

    async fn ask_acd(&mut self, acd: u16) -> anyhow::Result<()> {
        self.send(Msg::DigestReq { acd }).await?;
        let theirs = match self.recv().await? {
            Msg::Digest { acd: a, days } if a == acd => days,
            m => bail!(
                "{}: expected DIGEST of ACD {acd}, got {}",
                self.peer,
                m.name()
            ),
        };
        let db = self.local.cfg.db_path();
        let (mine, open) = self
            .busy(move || own_rows(&db, acd, None))
            .await?
            .context("reading this server's intervals")?;
        let mine = digest::by_day(&mine);
        let mut c: Comparison = digest::compare_digests(&mine, &theirs);
        let mut listed = std::collections::BTreeMap::new();
        for day in c.drill.clone() {
            self.send(Msg::DayReq { acd, day }).await?;
            let rows = match self.recv().await? {
                Msg::Day {
                    acd: a,
                    day: d,
                    intervals,
                } if a == acd && d == day => intervals,
                m => bail!(
                    "{}: expected DAY {day} of ACD {acd}, got {}",
                    self.peer,
                    m.name()
                ),
            };
            let empty = vec![];
            let here = mine.get(&day).unwrap_or(&empty);
            digest::compare_day(&mut c, day, here, &rows, open);
            listed.insert(day, rows.iter().map(|r| (r.istart, r.complete)).collect());
        }
        self.out
            .conflicts
            .extend(c.conflicts.iter().map(|i| (acd, *i)));
        self.out.peer_lacks += c.peer_lacks;
        if let Some(d) = c.peer_lacks_from.map(digest::date_of) {
            self.out.peer_lacks_from = Some(self.out.peer_lacks_from.map_or(d, |x| x.min(d)));
        }
        // Never fetch what this server's own retention purges: a peer with a longer
        // retention would otherwise be asked for the same old days after every purge.
        // "Today" is the newest day either side has (the switch's clock, not this host's).
        let newest = mine
            .keys()
            .chain(theirs.iter().map(|d| &d.day))
            .max()
            .copied();
        let keep_from = newest
            .unwrap_or(0)
            .saturating_sub(self.local.cfg.retention.intrahour_days);
        c.fetch.retain(|d| *d >= keep_from);
        for (lo, hi) in digest::ranges(&c.fetch) {
            let rep = self.fetch(acd, lo, hi).await?;
            self.out.restores.push(rep);
        }
        if !self.local.dry_run {
            self.out.views.push(digest::peer_view(
                acd,
                crate::store::intervals::now_secs(),
                &theirs,
                &mine,
                listed,
                &c.fetch,
            ));
        }
        Ok(())
    }

    /// Fetches days `lo..=hi` of `acd` and restores them.
    async fn fetch(&mut self, acd: u16, lo: u32, hi: u32) -> anyhow::Result<RestoreReport> {
        self.send(Msg::Fetch {
            acd,
            from_day: lo,
            to_day: hi,
        })
        .await?;
        let spool = match Spool::create(&self.local.cfg.data_dir, "in") {
            Ok(s) => s,
            Err(e) => return self.cannot_take(e).await,
        };
        let mut f = std::io::BufWriter::new(&spool.file);
        let mut n = 0u64;
        loop {
            match self.recv().await? {
                Msg::Data(b) => {
                    let w = std::io::Write::write_all(&mut f, &b)
                        .with_context(|| format!("{}: cannot write", spool.path.display()));
                    if let Err(e) = w {
                        // The spool goes before anyone is told: nothing of the stream
                        // stays behind once the failure is said.
                        drop(f);
                        drop(spool);
                        return self.cannot_take(e).await;
                    }
                    n += b.len() as u64;
                }
                Msg::End { bytes } if bytes == n => break,
                Msg::End { bytes } => bail!(
                    "{}: the stream ended after {n} bytes but END says {bytes}",
                    self.peer
                ),
                m => bail!("{}: expected DATA or END, got {}", self.peer, m.name()),
            }
        }
        let flushed = std::io::Write::flush(&mut f)
            .with_context(|| format!("{}: cannot write", spool.path.display()));
        drop(f);
        if let Err(e) = flushed {
            drop(spool);
            return self.cannot_take(e).await;
        }
        self.out.bytes_received += n;
        let cfg = self.local.cfg.clone();
        let opts = restore_options(&self.local, &spool.path, acd, lo, hi);
        let rep = self
            .busy(move || {
                let grid = cfg.grid();
                crate::merge::restore::restore_at(&cfg.db_path(), &grid, &opts, || {
                    crate::collect::ensure_data_dir(&cfg.data_dir)?;
                    Ok(Store::open(&cfg.db_path())?)
                })
            })
            .await?;
        drop(spool);
        let rep = match rep {
            Ok(r) => r,
            Err(e) => {
                return self
                    .cannot_take(anyhow::Error::from(e).context("merging it"))
                    .await
            }
        };
        let mut rep = rep;
        rep.file = format!("peer {}", self.peer);
        Ok(rep)
    }

    /// Tells the peer this side cannot take its stream (the spool cannot be written, the
    /// merge failed: a full disk), logs it, and ends the session. Nothing of the stream
    /// was applied: a restore goes in whole intervals or not at all.
    async fn cannot_take<T>(&mut self, e: anyhow::Error) -> anyhow::Result<T> {
        let reason = format!(
            "{}: cannot take the stream: {e:#}",
            self.local.cfg.server_id
        );
        tracing::warn!(peer = %self.peer, code = code::CANNOT_TAKE, "{reason}");
        self.tell(code::CANNOT_TAKE, &reason).await;
        Err(e.context(format!("cannot take the stream from {}", self.peer)))
    }

    // ---- holding ------------------------------------------------------------------

    /// Answers the peer's requests until its DONE; returns its `your_turn`.
    async fn hold(&mut self) -> anyhow::Result<bool> {
        loop {
            match self.recv().await? {
                Msg::Done { your_turn } => return Ok(your_turn),
                Msg::DigestReq { acd } => {
                    if !self.acd_ok(acd).await? {
                        continue;
                    }
                    let db = self.local.cfg.db_path();
                    match self.busy(move || own_rows(&db, acd, None)).await? {
                        Ok((rows, _)) => {
                            let days = digest::digests(&digest::by_day(&rows));
                            self.send(Msg::Digest { acd, days }).await?;
                        }
                        Err(e) => return self.cannot(code::CANNOT_READ, e).await,
                    }
                }
                Msg::DayReq { acd, day } => {
                    if !self.acd_ok(acd).await? {
                        continue;
                    }
                    let db = self.local.cfg.db_path();
                    let date = digest::date_of(day).format("%Y-%m-%d").to_string();
                    match self.busy(move || own_rows(&db, acd, Some(&date))).await? {
                        Ok((rows, _)) => {
                            let intervals = rows.iter().map(digest::summary).collect();
                            self.send(Msg::Day {
                                acd,
                                day,
                                intervals,
                            })
                            .await?;
                        }
                        Err(e) => return self.cannot(code::CANNOT_READ, e).await,
                    }
                }
                Msg::Fetch {
                    acd,
                    from_day,
                    to_day,
                } => {
                    if !self.acd_ok(acd).await? {
                        continue;
                    }
                    self.stream(acd, from_day, to_day).await?;
                }
                m => {
                    let reason = format!("{} is not a request", m.name());
                    self.refuse(code::UNEXPECTED, reason).await?;
                }
            }
        }
    }

    async fn acd_ok(&mut self, acd: u16) -> anyhow::Result<bool> {
        if self.acds.contains(&acd) {
            return Ok(true);
        }
        let reason = format!("ACD {acd} is not collected by {}", self.local.cfg.server_id);
        self.refuse(code::ACD, reason).await.map(|()| false)
    }

    /// Tells the peer this side cannot answer, logs it, and ends the session.
    async fn cannot<T>(&mut self, code: u16, e: anyhow::Error) -> anyhow::Result<T> {
        let reason = format!("{}: {e:#}", self.local.cfg.server_id);
        tracing::warn!(peer = %self.peer, code, "cannot answer the peer: {reason}");
        self.tell(code, &reason).await;
        Err(e.context(format!("cannot answer {}", self.peer)))
    }

    /// Streams a snapshot of days `lo..=hi` of `acd` (`merge::backup::write_snapshot`,
    /// on a blocking thread) in DATA messages, then END; an ERROR instead of END when the
    /// snapshot fails part-way (the receiver then has no whole file and applies nothing).
    async fn stream(&mut self, acd: u16, lo: u32, hi: u32) -> anyhow::Result<()> {
        let cfg = self.local.cfg.clone();
        let key = self.local.key;
        let name = format!("peer {}", self.peer);
        // A few pieces in flight: the snapshot waits for the network, never piles up.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
        let mut snap = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
            let mut store = Store::open_read_only(&cfg.db_path())?;
            let opts = crate::merge::backup::SnapshotOptions {
                key,
                ..crate::merge::backup::SnapshotOptions::new(
                    selection(&cfg, acd, lo, hi),
                    &cfg.server_id,
                    cfg.time_zone.name(),
                )
            };
            let mut w = Pieces {
                tx,
                buf: Vec::with_capacity(MAX_DATA_LEN),
                sent: 0,
            };
            crate::merge::backup::write_snapshot(&mut store, &opts, &name, &mut w)?;
            std::io::Write::flush(&mut w)?;
            Ok(w.sent)
        });
        let every = (self.local.timeout / 3).min(Duration::from_secs(1));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let mut n = 0u64;
        let made = loop {
            tokio::select! {
                piece = rx.recv() => match piece {
                    Some(b) => {
                        n += b.len() as u64;
                        self.send(Msg::Data(b)).await?;
                        tick.reset();
                    }
                    // The snapshot is over: its result says how.
                    None => break (&mut snap).await,
                },
                _ = tick.tick() => self.send(Msg::Working).await?,
                // The receiver says nothing while it takes the stream, unless it cannot
                // take it: then its reason ends this side too (the snapshot stops when
                // its pieces are no longer taken).
                m = self.io.next() => return Err(self.interrupted(m)),
            }
        };
        match made.map_err(|e| anyhow!("peer sync worker failed: {e}"))? {
            Ok(sent) if sent == n => {}
            Ok(sent) => bail!("snapshot of {sent} bytes, {n} sent"),
            Err(e) => return self.cannot(code::CANNOT_PRODUCE, e).await,
        }
        self.send(Msg::End { bytes: n }).await?;
        self.out.streams_sent += 1;
        self.out.bytes_sent += n;
        Ok(())
    }
}

impl<S> Session<S> {
    /// What the receiver sent in the middle of a stream, as the error that ends it: its
    /// ERROR (a full disk, said with its reason), or anything else as out of place.
    fn interrupted(&self, m: Option<Result<Msg, std::io::Error>>) -> anyhow::Error {
        match m {
            Some(Ok(Msg::Error { code, reason })) => PeerError {
                peer: self.peer.clone(),
                code,
                reason,
            }
            .into(),
            Some(Ok(m)) => anyhow!(
                "{}: {} in the middle of the stream it asked for",
                self.peer,
                m.name()
            ),
            Some(Err(e)) => anyhow!("{}: {}", self.peer, super::tls::io_reason(&e)),
            None => anyhow!(
                "{}: the peer closed the session during the stream",
                self.peer
            ),
        }
    }
}

/// The `std::io::Write` a snapshot is written into: pieces of at most [`MAX_DATA_LEN`]
/// bytes handed to the session, which sends each as DATA.
struct Pieces {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
    sent: u64,
}

impl Pieces {
    fn hand_over(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(MAX_DATA_LEN));
        self.sent += piece.len() as u64;
        self.tx.blocking_send(piece).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the peer session ended while the snapshot was being sent",
            )
        })
    }
}

impl std::io::Write for Pieces {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let k = b.len().min(MAX_DATA_LEN - self.buf.len());
        self.buf.extend_from_slice(&b[..k]);
        if self.buf.len() == MAX_DATA_LEN {
            self.hand_over()?;
        }
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.hand_over()
    }
}

/// This server's closed intervals of `acd` (one date, or all) and the interval it is
/// collecting; none at all on a server with no database yet.
fn own_rows(
    db: &Path,
    acd: u16,
    date: Option<&str>,
) -> anyhow::Result<(Vec<sp::StatusRow>, Option<i64>)> {
    if !db.exists() {
        return Ok((vec![], None));
    }
    let store = Store::open_read_only(db)?;
    let rows = sp::status_rows(&store.conn, acd, date)
        .with_context(|| format!("{}: reading interval status", db.display()))?;
    let open = crate::store::open_interval(&store.conn, acd)
        .with_context(|| format!("{}: reading the checkpoint", db.display()))?;
    Ok((rows, open))
}

fn selection(cfg: &Config, acd: u16, lo: u32, hi: u32) -> Selection {
    Selection {
        acds: vec![acd],
        from: Some(digest::date_of(lo)),
        to: Some(digest::date_of(hi)),
        grid: cfg.grid(),
        categories: Categories::HISTORY | Categories::ADMIN,
    }
}

fn restore_options(
    local: &Local,
    file: &Path,
    acd: u16,
    lo: u32,
    hi: u32,
) -> crate::merge::restore::RestoreOptions {
    let cfg = &local.cfg;
    crate::merge::restore::RestoreOptions {
        file: file.to_owned(),
        sel: selection(cfg, acd, lo, hi),
        configured_acds: cfg.acds.iter().map(|a| a.acd).collect(),
        dry_run: local.dry_run,
        include_local: false,
        key: local.key,
        server_id: cfg.server_id.clone(),
        collection_running: crate::collect::collection_running(&cfg.data_dir),
        progress: false,
        week_start: cfg.week_start,
    }
}

/// A temporary file in the data directory's `peer-spool/` that a received stream is
/// spooled to before the restore reads it; removed when dropped.
struct Spool {
    path: PathBuf,
    file: std::fs::File,
}

/// The spool directory under the data directory.
pub const SPOOL_DIR: &str = "peer-spool";

impl Spool {
    /// Makes the spool directory if needed and creates a new spool file in it.
    fn create(data_dir: &Path, what: &str) -> anyhow::Result<Spool> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = data_dir.join(SPOOL_DIR);
        crate::collect::ensure_data_dir(&dir)
            .with_context(|| format!("{}: cannot make the spool directory", dir.display()))?;
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("{what}-{}-{n}.cmsbak", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("{}: cannot create", path.display()))?;
        Ok(Spool { path, file })
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
