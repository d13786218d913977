//! The collector's live state as the HTTP endpoints read it (issue #14): the link state
//! of every ACD and the peer's reachability, for `/readyz`.
//!
//! One [`Metrics`] per running collector, made by [`crate::collect::run`] and handed to
//! the code that does each thing, which records it here with a small call; the web
//! endpoints ([`crate::web`]) only read it.

use crate::domain::LinkState;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A running collector's live state.
#[derive(Default)]
pub struct Metrics {
    /// Per ACD: its link state and why it is not in data transfer (empty when none).
    links: Mutex<BTreeMap<u16, (LinkState, String)>>,
    /// The peer's reachability at its last session and why not; `None` before any.
    peer: Mutex<Option<(bool, String)>>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Records the link state of `acd` and its detail (the last error, if any).
    pub fn set_link(&self, acd: u16, state: LinkState, detail: &str) {
        let mut l = self.links.lock().expect("links lock");
        l.insert(acd, (state, detail.to_string()));
    }

    /// The link state of `acd` and its detail; never connected when nothing is known.
    pub fn link(&self, acd: u16) -> (LinkState, String) {
        let l = self.links.lock().expect("links lock");
        l.get(&acd)
            .cloned()
            .unwrap_or((LinkState::NeverConnected, String::new()))
    }

    /// Records the end of a peer session: reachable or not, and why not.
    pub fn set_peer(&self, connected: bool, reason: &str) {
        *self.peer.lock().expect("peer lock") = Some((connected, reason.to_string()));
    }

    /// The peer's reachability at its last session; `None` before any.
    pub fn peer(&self) -> Option<(bool, String)> {
        self.peer.lock().expect("peer lock").clone()
    }
}
