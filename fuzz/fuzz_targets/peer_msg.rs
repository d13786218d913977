//! The peer-sync message decoder (`cms::peer::wire::decode`, `proto/peer-sync.md`): what
//! a peer's bytes become once the TLS session has handed them over.
//!
//! Properties, for every input:
//! - no panic; every error is one of the `WireError` variants;
//! - "more bytes needed" (`Ok(None)`) only while the buffer is shorter than the message
//!   its length prefix announces, which is at most 4 + `MAX_MESSAGE_LEN` bytes, so a
//!   receiver never buffers more;
//! - a decoded message used exactly `4 + L` bytes, and `encode(decode(b)) == b`: there is
//!   one encoding of every message, so `decode(encode(m)) == m` too;
//! - decoding one message allocates at most `MAX_MESSAGE_LEN` bytes (counted by the
//!   global allocator), whatever the length prefix or the counts inside claim;
//! - the tokio codec the sessions read through (`PeerCodec`), fed the input in two
//!   pieces (the first byte chooses where it is cut), agrees with `decode` message by
//!   message.
#![no_main]

use bytes::BytesMut;
use cms::peer::wire::{decode, PeerCodec, MAX_MESSAGE_LEN};
use cms_fuzz::{peak_during, Counting};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

#[global_allocator]
static A: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    let max = MAX_MESSAGE_LEN as usize;
    let mut at = 0;
    let mut want = vec![];
    // Every message of the input in turn, as a receiver would meet them.
    while at < data.len() {
        let buf = &data[at..];
        let (res, peak) = peak_during(|| decode(buf));
        assert!(
            peak <= max,
            "decoding one message allocated {peak} bytes, more than MAX_MESSAGE_LEN"
        );
        match res {
            Ok(None) => {
                let need = if buf.len() < 4 {
                    4
                } else {
                    4 + u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize
                };
                assert!(
                    need <= 4 + max && buf.len() < need,
                    "more bytes wanted at {} of {need}",
                    buf.len()
                );
                break;
            }
            Ok(Some((m, used))) => {
                let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
                assert_eq!(used, 4 + len);
                let again = m.to_bytes();
                assert_eq!(&again[..], &buf[..used], "encode(decode(b)) != b for {m:?}");
                assert_eq!(decode(&again), Ok(Some((m.clone(), used))));
                want.push(m);
                at += used;
            }
            Err(_) => break,
        }
    }
    // The codec, fed in two pieces: the same messages, then an error exactly where
    // `decode` found one.
    let cut = data.first().map_or(0, |&b| b as usize).min(data.len());
    let mut codec = PeerCodec;
    let mut src = BytesMut::from(&data[..cut]);
    let mut got = vec![];
    let mut failed = false;
    for piece in [&data[cut..], &[][..]] {
        loop {
            match codec.decode(&mut src) {
                Ok(Some(m)) => got.push(m),
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            break;
        }
        src.extend_from_slice(piece);
    }
    assert_eq!(got, want, "the codec and decode disagree");
    assert_eq!(
        failed,
        at < data.len() && decode(&data[at..]).is_err(),
        "the codec and decode disagree on the error"
    );
});
