//! Bounded waits: poll a condition until it holds, or fail after a limit naming what was
//! awaited. The tests wait for what they need this way and never sleep-and-hope
//! (`../shared/STYLE.md`, "Tests"); a test that waits for "nothing happens" says beside
//! its wait why the wait is long enough.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is checked again.
pub const POLL: Duration = Duration::from_millis(20);

/// Checks `ready` every [`POLL`] until it gives `Some`, for at most `limit`.
///
/// # Panics
/// After `limit`: "waited {limit} for {what()}" (`what` is built only then, so it can
/// hold a log read at that moment).
pub fn until<T>(
    limit: Duration,
    what: impl FnOnce() -> String,
    ready: impl FnMut() -> Option<T>,
) -> T {
    until_every(limit, POLL, what, ready)
}

/// [`until`], checking every `every`: for a condition that is costly to check (one that
/// runs a `cms` process each time).
///
/// # Panics
/// As [`until`].
pub fn until_every<T>(
    limit: Duration,
    every: Duration,
    what: impl FnOnce() -> String,
    mut ready: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = ready() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("waited {limit:?} for {}", what());
        }
        std::thread::sleep(every);
    }
}

/// [`until`] for a condition that is checked asynchronously (a connection attempt).
/// The limit is wall-clock time.
///
/// # Panics
/// As [`until`].
pub async fn until_async<T, F: Future<Output = Option<T>>>(
    limit: Duration,
    what: impl FnOnce() -> String,
    mut ready: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = ready().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("waited {limit:?} for {}", what());
        }
        tokio::time::sleep(POLL).await;
    }
}
