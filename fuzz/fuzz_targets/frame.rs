//! The ACD link frame decoder (`cms::proto::decode_frame`, `proto/acd-link.md`).
//!
//! Properties, for every input:
//! - no panic; every error is one of the `ProtoError` variants;
//! - `Incomplete` only while the buffer is shorter than the frame its length prefix
//!   announces (at most 4 + `MAX_FRAME_LEN` bytes), so a receiver never buffers more;
//! - a decoded frame used exactly `4 + L` bytes, and `encode(decode(bytes)) == bytes`:
//!   there is one encoding of every frame, so decode(encode(frame)) == frame too;
//! - decoding one frame allocates at most `MAX_FRAME_LEN` bytes (counted by the global
//!   allocator), whatever the length prefix or the counts inside claim;
//! - the tokio codec over a stream of frames agrees with `decode_frame` frame by frame.
#![no_main]

use bytes::BytesMut;
use cms::proto::codec::LinkCodec;
use cms::proto::{decode_frame, Decoded, MAX_FRAME_LEN};
use cms_fuzz::{peak_during, Counting};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

#[global_allocator]
static A: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    // Every frame of the input in turn, as a receiver would meet them.
    while at < data.len() {
        let buf = &data[at..];
        let (res, peak) = peak_during(|| decode_frame(buf));
        assert!(
            peak <= MAX_FRAME_LEN,
            "decoding one frame allocated {peak} bytes, more than MAX_FRAME_LEN"
        );
        match res {
            Ok(Decoded::Incomplete) => {
                let need = if buf.len() < 4 {
                    4
                } else {
                    4 + u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize
                };
                assert!(
                    need <= 4 + MAX_FRAME_LEN && buf.len() < need,
                    "incomplete at {}",
                    buf.len()
                );
                break;
            }
            Ok(Decoded::Frame(f, used)) => {
                let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
                assert_eq!(used, 4 + len);
                let again = f.to_bytes();
                assert_eq!(&again[..], &buf[..used], "encode(decode(b)) != b for {f:?}");
                assert_eq!(decode_frame(&again), Ok(Decoded::Frame(f, used)));
                at += used;
            }
            Err(_) => break,
        }
    }
    // The codec the collector and the simulator use: same frames, same first error.
    let mut src = BytesMut::from(data);
    let mut codec = LinkCodec;
    let mut rest = data;
    loop {
        let want = decode_frame(rest);
        match codec.decode_eof(&mut src) {
            Ok(Some(f)) => {
                let Ok(Decoded::Frame(g, used)) = want else {
                    panic!("codec gave {f:?}, decode_frame {want:?}");
                };
                assert_eq!(f, g);
                rest = &rest[used..];
            }
            Ok(None) => {
                assert!(rest.is_empty());
                break;
            }
            Err(_) => {
                assert!(!matches!(want, Ok(Decoded::Frame(..))));
                break;
            }
        }
    }
});
