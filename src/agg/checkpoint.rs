//! The checkpoint envelope: how [`Aggregator::checkpoint`](super::Aggregator::checkpoint)
//! bytes are laid out, and which of them a release reads (docs/operations.md, "Rolling
//! upgrade").
//!
//! ```text
//! +------+------+---------+--------------------------+
//! | "CMS" "K"   | version | the state (postcard)     |
//! | 4 bytes     | u16 BE  | rest                     |
//! +-------------+---------+--------------------------+
//! ```
//!
//! A release writes [`VERSION`] and reads exactly the versions it knows; anything else
//! (no envelope: a release before versioning, which wrote bare bincode 1; a newer version;
//! bytes that do not decode) is an [`AggError`] that says why, and the collector starts
//! that ACD without its checkpoint (the switch then replays or pumps up). A change to the
//! state's serialised shape must bump [`VERSION`]: postcard is not self-describing, so
//! an old shape read as a new one would not fail reliably.

use super::{AggError, State};

/// The first bytes of every versioned checkpoint. A release before versioning wrote bare
/// bincode 1, whose first 8 bytes are the length of the grid key (a few bytes, so they
/// start with a small number, never with these).
pub const MAGIC: [u8; 4] = *b"CMSK";

/// The format version this release writes and reads: 1 = the state in postcard 1.
pub const VERSION: u16 = 1;

/// Magic and version.
const HEADER_LEN: usize = MAGIC.len() + 2;

/// The envelope around `st`.
pub(super) fn encode(st: &State) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    postcard::to_extend(st, out).expect("state serialises")
}

/// The state in `bytes`, if its envelope is one this release reads.
pub(super) fn decode(bytes: &[u8]) -> Result<State, AggError> {
    if bytes.len() < HEADER_LEN || bytes[..MAGIC.len()] != MAGIC {
        return Err(AggError::Unversioned);
    }
    let version = u16::from_be_bytes([bytes[4], bytes[5]]);
    if version != VERSION {
        return Err(AggError::UnknownVersion(version));
    }
    postcard::from_bytes(&bytes[HEADER_LEN..]).map_err(|e| AggError::BadCheckpoint(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::Aggregator;
    use crate::interval::Grid;

    fn grid() -> Grid {
        Grid::new(chrono_tz::UTC, 15)
    }

    fn started() -> Vec<u8> {
        let mut a = Aggregator::new(grid());
        a.start_epoch(7);
        a.checkpoint()
    }

    #[test]
    fn a_checkpoint_opens_with_the_magic_and_the_version_and_reads_back() {
        let ck = started();
        assert_eq!(ck[..4], *b"CMSK");
        assert_eq!(ck[4..6], [0, 1]);
        let a = Aggregator::from_checkpoint(grid(), &ck).unwrap();
        assert_eq!((a.epoch(), a.checkpoint()), (7, ck));
    }

    /// What the release before versioning wrote: tests/fixtures/checkpoint-bincode1.bin.
    #[test]
    fn the_unversioned_checkpoint_of_the_previous_release_is_refused() {
        let old = include_bytes!("../../tests/fixtures/checkpoint-bincode1.bin");
        let e = Aggregator::from_checkpoint(grid(), old).err().unwrap();
        assert!(matches!(e, AggError::Unversioned), "{e}");
        assert!(e.to_string().contains("no format version"), "{e}");
    }

    #[test]
    fn a_newer_version_and_a_truncated_state_are_refused_and_say_so() {
        let mut ck = started();
        ck[4..6].copy_from_slice(&2u16.to_be_bytes());
        let e = Aggregator::from_checkpoint(grid(), &ck).err().unwrap();
        assert_eq!(
            e.to_string(),
            "checkpoint format version 2 is not one this release reads (1); starting without it"
        );
        let ck = started();
        let e = Aggregator::from_checkpoint(grid(), &ck[..ck.len() - 3])
            .err()
            .unwrap();
        assert!(matches!(e, AggError::BadCheckpoint(_)), "{e}");
        for short in [&b""[..], b"CMS", b"CMSK\0"] {
            let e = Aggregator::from_checkpoint(grid(), short).err().unwrap();
            assert!(matches!(e, AggError::Unversioned), "{short:?}: {e}");
        }
    }
}
