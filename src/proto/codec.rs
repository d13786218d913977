//! tokio-util codec over [`decode_frame`] and [`Frame::encode`]:
//! check, parse, advance. No protocol logic lives here.

use super::{decode_frame, Decoded, Frame, ProtoError};
use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Frames over a byte stream, both directions.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinkCodec;

/// A codec failure: either the peer sent bytes that are not a frame, or the socket failed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("protocol error: {0}")]
    Proto(#[from] ProtoError),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl Decoder for LinkCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        match decode_frame(src)? {
            Decoded::Incomplete => Ok(None),
            Decoded::Frame(f, used) => {
                src.advance(used);
                Ok(Some(f))
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        match self.decode(src)? {
            Some(f) => Ok(Some(f)),
            None if src.is_empty() => Ok(None),
            None => Err(CodecError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed inside a frame ({} bytes pending)",
                    src.len()
                ),
            ))),
        }
    }
}

impl Encoder<Frame> for LinkCodec {
    type Error = CodecError;
    fn encode(&mut self, item: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        item.encode(dst);
        Ok(())
    }
}

impl Encoder<&Frame> for LinkCodec {
    type Error = CodecError;
    fn encode(&mut self, item: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        item.encode(dst);
        Ok(())
    }
}
