//! One ACD's database work on a thread of its own (issue #12 item 6): commits of closed
//! intervals, translations and the checkpoint, the daily summary and the purge a day's
//! end brings, and the link state `cms status` shows.
//!
//! The ACD's task on the async runtime sends jobs and awaits a commit's answer, so it
//! keeps the ordering rules of [`crate::collect`] (a commit is acknowledged only once it
//! is durable, and the shutdown commit follows every earlier one); but a slow disk under
//! one ACD holds only that ACD's thread, never a worker of the runtime the other ACDs'
//! sessions, heartbeats and timers run on. Jobs run in the order they were sent. A
//! commit whose answer nobody waits for any more (a session ended meanwhile) still runs
//! to its end, and what it could not store stays here for the next commit.

use crate::agg::ClosedInterval;
use crate::config::Config;
use crate::domain::LinkState;
use crate::proto::{SkillDef, TrunkGroupDef, VdnDef};
use crate::store::intervals::{Checkpoint, Commit};
use crate::store::{summary, Store};
use anyhow::Context;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::oneshot;
use tracing::{info, warn};

/// Translations to record as ACD administration data.
pub type Admin = (Vec<SkillDef>, Vec<VdnDef>, Vec<TrunkGroupDef>);

/// What one commit hands the writer.
pub struct CommitJob {
    /// Synced (`synchronous = FULL`, may be acknowledged) or not ([`Store::commit`]).
    pub synced: bool,
    /// Intervals closed since the last commit was sent.
    pub closed: Vec<ClosedInterval>,
    /// Translations, when they changed since the last commit was sent.
    pub admin: Option<Admin>,
    pub checkpoint: Checkpoint,
}

/// What a commit made durable: (epoch, seq) to acknowledge, or why it failed and how
/// many closed intervals the writer still holds for the next commit.
pub type CommitAnswer = Result<(u64, u64), (anyhow::Error, usize)>;

enum Job {
    Commit(CommitJob, oneshot::Sender<CommitAnswer>),
    LinkState {
        state: LinkState,
        peer: String,
        detail: String,
    },
    /// The watchdog asks whether the thread still takes jobs ([`Probe`]).
    Probe(oneshot::Sender<()>),
}

/// Asks one ACD's database thread whether it still takes jobs: a thread stuck in a
/// commit (a hung disk) does not answer, and the watchdog stops telling systemd the
/// service is alive ([`crate::collect::watchdog`]).
#[derive(Clone)]
pub struct Probe {
    pub acd: u16,
    jobs: mpsc::Sender<Job>,
}

impl Probe {
    /// Whether the thread answered within `within` (after every job sent before).
    pub async fn answered(&self, within: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Job::Probe(tx)).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(within, rx).await, Ok(Ok(())))
    }

    /// A probe of a thread that never answers, and the handle that keeps it so (test
    /// support for the watchdog).
    #[cfg(test)]
    pub fn stalled(acd: u16) -> (Probe, impl Sized) {
        let (jobs, rx) = mpsc::channel::<Job>();
        (Probe { acd, jobs }, rx)
    }
}

/// The async side's handle on one ACD's database thread.
pub struct DbWriter {
    acd: u16,
    jobs: Option<mpsc::Sender<Job>>,
    /// Resolves (with an error: the sender is dropped) when the thread has ended and
    /// closed the database.
    done: oneshot::Receiver<()>,
}

impl DbWriter {
    /// Starts the thread that owns `store` for ACD `acd`.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn start(
        cfg: &Config,
        acd: u16,
        store: Store,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> anyhow::Result<DbWriter> {
        let (jobs, rx) = mpsc::channel();
        let (done_tx, done) = oneshot::channel();
        let mut thread = Thread {
            cfg: cfg.clone(),
            acd,
            store,
            unstored: vec![],
            admin: None,
            gate: CommitGate::from_env(acd),
            metrics,
        };
        std::thread::Builder::new()
            .name(format!("cms-db-acd{acd}"))
            .spawn(move || {
                for job in rx {
                    thread.run(job);
                }
                drop(thread);
                drop(done_tx);
            })
            .with_context(|| format!("ACD {acd}: cannot start its database thread"))?;
        Ok(DbWriter {
            acd,
            jobs: Some(jobs),
            done,
        })
    }

    /// The watchdog's probe of this thread; `None` once closed. The thread ends only
    /// once every probe is dropped too.
    pub fn probe(&self) -> Option<Probe> {
        let jobs = self.jobs.clone()?;
        Some(Probe {
            acd: self.acd,
            jobs,
        })
    }

    fn send(&self, job: Job) -> bool {
        self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok())
    }

    /// Commits `job` on the database thread and waits for the answer.
    pub async fn commit(&self, job: CommitJob) -> CommitAnswer {
        let held = job.closed.len();
        let (tx, rx) = oneshot::channel();
        let gone = || {
            let e = anyhow::anyhow!("ACD {}: the database thread has stopped", self.acd);
            (e, held)
        };
        if !self.send(Job::Commit(job, tx)) {
            return Err(gone());
        }
        rx.await.unwrap_or_else(|_| Err(gone()))
    }

    /// Records the link state for `cms status`, after every job sent before (a failure
    /// is logged there).
    pub fn link_state(&self, state: LinkState, peer: &str, detail: &str) {
        self.send(Job::LinkState {
            state,
            peer: peer.to_string(),
            detail: detail.to_string(),
        });
    }

    /// Lets the thread finish the jobs sent and close the database, and waits for it.
    pub async fn close(mut self) {
        self.jobs = None;
        let _ = (&mut self.done).await;
    }
}

/// The database thread's state.
struct Thread {
    cfg: Config,
    acd: u16,
    store: Store,
    /// Closed intervals a failed commit could not store: the next commit stores them
    /// first (they are never acknowledged before).
    unstored: Vec<ClosedInterval>,
    /// Translations a failed commit could not store.
    admin: Option<Admin>,
    gate: Option<CommitGate>,
    /// Counts the intervals stored (`cms_intervals_closed_total`).
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl Thread {
    fn run(&mut self, job: Job) {
        match job {
            Job::Commit(job, reply) => {
                let answer = self.commit(job);
                let _ = reply.send(answer);
            }
            Job::Probe(answer) => {
                let _ = answer.send(());
            }
            Job::LinkState {
                state,
                peer,
                detail,
            } => {
                if let Err(e) = self.store.set_link_state(self.acd, state, &peer, &detail) {
                    warn!(acd = self.acd, "{e}");
                }
            }
        }
    }

    /// Stores the intervals left over and `job` in one transaction, then builds the
    /// summary of each day that ended.
    fn commit(&mut self, job: CommitJob) -> CommitAnswer {
        if let Some(g) = &self.gate {
            g.wait();
        }
        let (epoch, seq) = (job.checkpoint.epoch, job.checkpoint.seq);
        self.unstored.extend(job.closed);
        if job.admin.is_some() {
            self.admin = job.admin;
        }
        let grid = self.cfg.grid();
        let c = Commit {
            acd: self.acd,
            grid: &grid,
            closed: &self.unstored,
            checkpoint: Some(job.checkpoint),
            admin: self.admin.clone(),
        };
        let r = if job.synced {
            self.store.commit(c)
        } else {
            self.store.commit_unsynced(c)
        };
        if let Err(e) = r {
            return Err((e.into(), self.unstored.len()));
        }
        self.admin = None;
        self.summarise().map_err(|e| (e, 0))?;
        Ok((epoch, seq))
    }

    /// The daily summary (and the purge) of each day the stored intervals ended, and a
    /// log line for each incomplete one.
    fn summarise(&mut self) -> anyhow::Result<()> {
        let (acd, grid) = (self.acd, self.cfg.grid());
        for ci in std::mem::take(&mut self.unstored) {
            self.metrics.interval_stored(acd, &ci);
            let next = grid.next(ci.istart);
            let day = grid.local_date(ci.istart);
            if grid.local_date(next) != day {
                summary::build_day(&mut self.store, acd, &grid, self.cfg.week_start, day)?;
                // Peer sync's retention guard: never purge what the reachable peer lacks.
                let today =
                    crate::peer::status::purge_today(&self.store, &self.cfg, grid.local_date(next));
                let purged =
                    summary::purge(&mut self.store, acd, &grid, &self.cfg.retention, today)?;
                info!(acd, day = %day, purged, "daily summary built");
            }
            if !ci.complete() {
                let reasons: Vec<&str> = ci.reasons.iter().map(String::as_str).collect();
                info!(acd, istart = ci.istart, reasons = %reasons.join(","), "interval closed incomplete");
            }
        }
        Ok(())
    }
}

/// A test hook, off unless `$CMS_TEST_COMMIT_GATE` names a directory: while the file
/// `hold-acd-N` exists there, every commit of ACD N waits before it begins (at most
/// [`CommitGate::MAX_HOLD`]), with the file `held-acd-N` present while one waits. It
/// stands for a slow disk under one ACD: `tests/collector.rs` holds some ACDs' commits
/// with it and checks that the others keep collecting.
struct CommitGate {
    hold: PathBuf,
    held: PathBuf,
}

impl CommitGate {
    /// The longest a commit is held: a test that forgets its hold file fails, not hangs.
    const MAX_HOLD: Duration = Duration::from_secs(60);

    fn from_env(acd: u16) -> Option<CommitGate> {
        let dir = PathBuf::from(std::env::var_os("CMS_TEST_COMMIT_GATE")?);
        warn!(acd, dir = %dir.display(), "CMS_TEST_COMMIT_GATE is set: a test may hold this ACD's commits");
        Some(CommitGate {
            hold: dir.join(format!("hold-acd-{acd}")),
            held: dir.join(format!("held-acd-{acd}")),
        })
    }

    /// Blocks while the hold file exists, as a slow disk would.
    fn wait(&self) {
        if !self.hold.exists() {
            return;
        }
        let _ = std::fs::write(&self.held, b"");
        let deadline = std::time::Instant::now() + Self::MAX_HOLD;
        while self.hold.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_file(&self.held);
    }
}
