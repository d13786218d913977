//! The systemd watchdog of `cms collect` (`WatchdogSec=` in packaging/systemd/cms.service):
//! `WATCHDOG=1` every half of the interval systemd passes in `$WATCHDOG_USEC`, sent only
//! while the collector is not stalled: the loop runs on the collector's runtime (a
//! runtime whose workers are all blocked never gets to it) and, before each
//! `WATCHDOG=1`, every ACD's database thread must answer a probe within the same half
//! interval (a thread stuck in a commit on a hung disk does not). A stopped or stalled
//! collector therefore stops the pings, and systemd kills and restarts it. What speaks
//! sd_notify is [`super::notify_systemd`], its one owner.

use super::writer::Probe;
use std::ffi::OsString;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// Half the watchdog interval systemd set for this process: `$WATCHDOG_USEC`, when
/// `$WATCHDOG_PID` is unset or names this process.
pub fn period_from_env() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    period(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// [`period_from_env`] from the two variables' values and this process's id.
pub fn period(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    if pid.is_some_and(|p| p.trim().parse::<u32>().ok() != Some(me)) {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    Some(Duration::from_micros(usec / 2))
}

/// Sends `WATCHDOG=1` to `socket` every `period` while every probe answers within
/// `period`, until `stop` turns true.
pub async fn run(
    period: Duration,
    probes: Vec<Probe>,
    socket: Option<OsString>,
    mut stop: watch::Receiver<bool>,
) {
    info!(every = ?period, "systemd watchdog on");
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tick.tick() => {}
        }
        let answers = futures::future::join_all(probes.iter().map(|p| p.answered(period)));
        let answers = tokio::select! {
            a = answers => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        let stuck: Vec<u16> = probes
            .iter()
            .zip(answers)
            .filter(|(_, ok)| !ok)
            .map(|(p, _)| p.acd)
            .collect();
        if stuck.is_empty() {
            super::notify_systemd(socket.as_deref(), "WATCHDOG=1\n");
        } else {
            warn!(
                acds = ?stuck,
                "database thread did not answer within {period:?}: not telling systemd the \
                 collector is alive (it restarts the service after WatchdogSec)"
            );
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn the_period_is_half_of_watchdog_usec_for_this_process_only() {
        let half = Some(Duration::from_secs(15));
        assert_eq!(period(Some("30000000"), None, 7), half);
        assert_eq!(period(Some("30000000"), Some("7"), 7), half);
        assert_eq!(period(Some("30000000"), Some("8"), 7), None);
        assert_eq!(period(None, None, 7), None);
        assert_eq!(period(Some("0"), None, 7), None);
        assert_eq!(period(Some("soon"), None, 7), None);
    }

    /// Receives what the watchdog sends within `limit`, or `None`.
    fn recv(sock: &UnixDatagram, limit: Duration) -> Option<String> {
        sock.set_read_timeout(Some(limit)).unwrap();
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).to_string())
    }

    /// A fake notify socket: pings arrive while the database thread answers, and stop
    /// while it is stalled.
    #[test]
    fn pings_while_the_database_thread_answers_and_not_while_it_is_stalled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let period = Duration::from_millis(50);
        let store = crate::store::Store::open(&dir.path().join("cms.db")).unwrap();
        let cfg = crate::config::Config::embedded_default();
        let metrics = std::sync::Arc::new(crate::metrics::Metrics::new("t"));
        let db = super::super::writer::DbWriter::start(&cfg, 1, store, metrics).unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let task = rt.spawn(run(
            period,
            vec![db.probe().unwrap()],
            Some(path.clone().into()),
            stop.clone(),
        ));
        for _ in 0..3 {
            let got = recv(&sock, Duration::from_secs(10));
            assert_eq!(got.as_deref(), Some("WATCHDOG=1\n"));
        }
        stop_tx.send(true).unwrap();
        rt.block_on(task).unwrap();
        rt.block_on(db.close());
        // Drain what was sent before the stop, then nothing more comes.
        while recv(&sock, Duration::from_millis(200)).is_some() {}

        let (stalled, _keep) = Probe::stalled(2);
        let (stop_tx, stop) = watch::channel(false);
        let task = rt.spawn(run(period, vec![stalled], Some(path.into()), stop));
        // Ten periods: a ping due every period would have arrived several times.
        assert_eq!(recv(&sock, period * 10), None);
        stop_tx.send(true).unwrap();
        rt.block_on(task).unwrap();
    }
}
