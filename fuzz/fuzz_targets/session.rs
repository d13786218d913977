//! The collector's session fed a frame sequence: the real handshake (`cms::link::handshake`
//! over a loopback TCP connection, so HELLO, WELCOME, REJECT, the pump-up and the GAP
//! notice go through the code `cms collect` runs), then data transfer through the
//! collector's own socket-free steps (`cms::collect::step`: `begin` from the handshake's
//! answer, `take` for each frame, a far frame caught up with `Aggregator::catch_up_step`
//! and taken again; a frame that breaks the session rules ends the session), then a
//! restart from the aggregation's checkpoint, and the next session.
//!
//! `link.rs` has no session state machine apart from its socket, so the target gives it
//! one: a fake switch that writes the input's bytes and then closes. What the target
//! adds around the steps is what `cms collect` does with a socket and a database:
//! commits (here: checking and forgetting what closed) and the shutdown between
//! catch-up steps.
//!
//! Input: one byte choosing the grid (zone and interval length), then the byte stream of
//! each session, sessions separated by the four bytes `ff ff ff ff` (a length prefix no
//! valid frame has).
//!
//! Properties: no panic; every session ends within libFuzzer's `-timeout` (the stream is
//! finite and closed, so only a loop in the library can make it last; a catch-up to a
//! frame far ahead is stopped after `MAX_CATCH_UP_STEPS` steps, as a shutdown would stop
//! it, each step closing at most 8 intervals); memory within
//! `-rss_limit_mb`; every closed interval starts on the grid, after the one before it; a
//! checkpoint always restores.
#![no_main]

use cms::agg::{Aggregator, ClosedInterval};
use cms::collect::step::{self, Taken, MAX_PENDING_INTERVALS};
use cms::interval::Grid;
use cms::link;
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use std::sync::OnceLock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ACD: u16 = 1;
const MAX_SESSIONS: usize = 4;
const SEPARATOR: [u8; 4] = [0xff; 4];
/// Catch-up steps in one session before the harness stops it as a shutdown would.
const MAX_CATCH_UP_STEPS: usize = 64;

struct Harness {
    rt: tokio::runtime::Runtime,
    lis: TcpListener,
    addr: SocketAddr,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let lis = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = lis.local_addr().unwrap();
        Harness { rt, lis, addr }
    })
}

fn grid_of(b: u8) -> Grid {
    let tz = match b & 3 {
        0 => chrono_tz::UTC,
        1 => chrono_tz::Europe::London,
        2 => chrono_tz::America::New_York,
        _ => chrono_tz::Asia::Kolkata,
    };
    let minutes = [15, 30, 60, 15][(b >> 2 & 3) as usize];
    Grid::new(tz, minutes)
}

fn split_sessions(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while out.len() < MAX_SESSIONS - 1 {
        match data.windows(4).position(|w| w == SEPARATOR) {
            Some(i) => {
                out.push(&data[..i]);
                data = &data[i + 4..];
            }
            None => break,
        }
    }
    out.push(data);
    out
}

/// Checks what closed and forgets it, as a commit would.
fn take_closed(grid: &Grid, closed: &mut Vec<ClosedInterval>, last: &mut Option<i64>) {
    for ci in closed.drain(..) {
        assert_eq!(grid.start_of(ci.istart), ci.istart, "interval off the grid");
        assert!(last.is_none_or(|l| ci.istart > l), "intervals out of order");
        *last = Some(ci.istart);
    }
}

async fn session(h: &Harness, bytes: Vec<u8>, agg: &mut Aggregator, last: &mut Option<i64>) {
    let epoch = agg.epoch();
    // An epoch used up to 2^64 - 1 has no resume point: the collector says so and stops.
    let Ok(resume_from) = step::resume_from(agg, h.addr) else {
        return;
    };
    let (conn, acc) = tokio::join!(link::connect(h.addr), h.lis.accept());
    let mut conn = conn.expect("loopback connect");
    let (sw, _) = acc.expect("loopback accept");
    // The fake switch: writes the stream, closes its side, reads (and drops) what the
    // collector sends until the collector closes, so the close is a FIN, never a reset.
    let switch = tokio::spawn(async move {
        let (mut rd, mut wr) = sw.into_split();
        let write = async {
            let _ = wr.write_all(&bytes).await;
            let _ = wr.shutdown().await;
        };
        let read = async {
            let mut sink = [0u8; 4096];
            while let Ok(n) = rd.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        };
        tokio::join!(write, read);
    });
    let peer = h.addr;
    let mut closed = Vec::new();
    let run = async {
        let start = link::handshake(&mut conn, peer, ACD, "fuzz", epoch, resume_from).await?;
        let begun = step::begin(agg, start, &mut closed);
        let mut first = begun.first;
        let silence = link::silence_limit(&begun.welcome);
        let mut steps = 0;
        loop {
            let limit = link::time_limit_ms();
            let frame = match first.take() {
                Some(f) => f,
                None => link::next_frame(&mut conn, peer, silence).await?,
            };
            if let Taken::FarAhead {
                frame,
                ts,
                clock_old_ts,
            } = step::take(agg, frame, peer, limit, &mut closed)?
            {
                while agg.catch_up_step(ts, clock_old_ts, MAX_PENDING_INTERVALS, &mut closed) {
                    take_closed(agg.grid(), &mut closed, last);
                    // A frame years ahead (allowed up to this server's clock + 24 h) is
                    // caught up in steps with a shutdown check between them: stop after a
                    // bounded number, as a shutdown would, so one input costs milliseconds.
                    steps += 1;
                    if steps > MAX_CATCH_UP_STEPS {
                        return Ok(());
                    }
                }
                let again = step::take(agg, frame, peer, limit, &mut closed)?;
                assert!(
                    matches!(again, Taken::Applied { .. }),
                    "a frame caught up to is applied"
                );
            }
            if closed.len() >= MAX_PENDING_INTERVALS {
                take_closed(agg.grid(), &mut closed, last);
            }
        }
        #[allow(unreachable_code)]
        Ok::<(), link::LinkError>(())
    };
    let _ = run.await;
    take_closed(&agg.grid().clone(), &mut closed, last);
    drop(conn);
    switch.await.expect("fake switch");
}

fuzz_target!(|data: &[u8]| {
    let Some((&g, rest)) = data.split_first() else {
        return;
    };
    let grid = grid_of(g);
    let h = harness();
    let mut agg = Aggregator::new(grid);
    let mut last = None;
    for s in split_sessions(rest) {
        h.rt.block_on(session(h, s.to_vec(), &mut agg, &mut last));
        // A restart: the collector resumes from its checkpoint.
        let ck = agg.checkpoint();
        agg = Aggregator::from_checkpoint(grid, &ck).expect("own checkpoint restores");
    }
});
