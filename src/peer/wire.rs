//! The peer-sync message format (proto/peer-sync.md): encode and decode, no I/O.
//!
//! A message is `u32 length L` (big-endian, counting the type byte and the payload),
//! `u8 type`, `L - 1` payload bytes. Every length and count is checked against a named
//! maximum before anything is allocated. [`decode`] returns `Ok(None)` while the bytes
//! of a whole message have not all arrived, and an error for bytes that can never become
//! a valid message (the session then ends). [`PeerCodec`] is the thin tokio-util wrapper.

use bytes::{Buf, BufMut, BytesMut};
use thiserror::Error;

/// The protocol versions this release speaks (proto/peer-sync.md, "Versioning").
pub const VERSION_MIN: u16 = 1;
pub const VERSION_MAX: u16 = 1;

/// Largest `L` (type byte + payload): the biggest message, a DIGEST of the longest
/// retention, fits with room to spare; anything longer is refused from its four length
/// bytes alone.
pub const MAX_MESSAGE_LEN: u32 = 1 << 20;
/// Largest DATA payload: the sender cuts the backup stream into pieces of at most this.
pub const MAX_DATA_LEN: usize = 256 * 1024;
/// Most days in one DIGEST (over 27 years of one ACD).
pub const MAX_DAYS: usize = 10_000;
/// Most intervals in one DAY (a 25-hour DST day of 15-minute intervals is 100).
pub const MAX_DAY_INTERVALS: usize = 200;
/// Most ACDs in a HELLO (the configuration allows 1 to 8).
pub const MAX_ACDS: usize = 8;
/// Longest `server_id` (as the configuration allows).
pub const MAX_SERVER_ID: usize = 64;
/// Longest ERROR reason, in bytes.
pub const MAX_REASON: usize = 1024;

pub mod t {
    pub const HELLO: u8 = 0x01;
    pub const DIGEST_REQ: u8 = 0x02;
    pub const DIGEST: u8 = 0x03;
    pub const DAY_REQ: u8 = 0x04;
    pub const DAY: u8 = 0x05;
    pub const FETCH: u8 = 0x06;
    pub const WORKING: u8 = 0x07;
    pub const DATA: u8 = 0x08;
    pub const END: u8 = 0x09;
    pub const DONE: u8 = 0x0A;
    pub const ERROR: u8 = 0x0F;
}

/// ERROR codes (proto/peer-sync.md, "Errors").
pub mod code {
    /// No protocol version in common.
    pub const VERSION: u16 = 1;
    /// The two servers' interval lengths differ.
    pub const INTERVAL: u16 = 2;
    /// A request names an ACD the holder does not collect.
    pub const ACD: u16 = 3;
    /// The holder cannot read its database (locked, permission denied, corrupt).
    pub const CANNOT_READ: u16 = 4;
    /// The holder cannot produce the stream (disk full, cannot create its spool file).
    pub const CANNOT_PRODUCE: u16 = 5;
    /// A message that is valid on its own but not at this point of the session.
    pub const UNEXPECTED: u16 = 6;
    /// The receiver cannot take the stream (its own disk, verification, restore).
    pub const CANNOT_TAKE: u16 = 7;
    /// The server is stopping.
    pub const SHUTDOWN: u16 = 8;
}

/// One day's digest of one ACD: how many closed intervals, how many complete, and a
/// 16-byte digest of their `(istart, status, checksum)` in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayDigest {
    /// Local date as days since 1970-01-01.
    pub day: u32,
    pub intervals: u16,
    pub complete: u16,
    pub digest: [u8; 16],
}

/// One closed interval in a DAY answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalSum {
    /// UTC seconds.
    pub istart: i64,
    pub complete: bool,
    /// The interval's content checksum (`interval_status.checksum`).
    pub checksum: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    Hello {
        version_min: u16,
        version_max: u16,
        interval_minutes: u8,
        server_id: String,
        acds: Vec<u16>,
    },
    DigestReq {
        acd: u16,
    },
    Digest {
        acd: u16,
        days: Vec<DayDigest>,
    },
    DayReq {
        acd: u16,
        day: u32,
    },
    Day {
        acd: u16,
        day: u32,
        intervals: Vec<IntervalSum>,
    },
    Fetch {
        acd: u16,
        from_day: u32,
        to_day: u32,
    },
    /// The holder is still preparing the stream (sent at least every second).
    Working,
    Data(Vec<u8>),
    End {
        bytes: u64,
    },
    /// The asker is done; `your_turn`: the holder may now ask in the same session.
    Done {
        your_turn: bool,
    },
    Error {
        code: u16,
        reason: String,
    },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("empty message (length 0)")]
    Empty,
    #[error("message of {0} bytes is longer than the limit of {MAX_MESSAGE_LEN}")]
    TooLong(u32),
    #[error("unknown message type 0x{0:02x}")]
    UnknownType(u8),
    #[error("message type 0x{0:02x} ends before its last field")]
    Truncated(u8),
    #[error("message type 0x{ty:02x} has {extra} bytes after its last field")]
    Trailing { ty: u8, extra: usize },
    #[error("message type 0x{ty:02x}: {what} {n} is over the limit of {max}")]
    Limit {
        ty: u8,
        what: &'static str,
        n: usize,
        max: usize,
    },
    #[error("message type 0x{0:02x}: a text field is not UTF-8")]
    Utf8(u8),
    #[error("message type 0x{ty:02x}: {what}")]
    Invalid { ty: u8, what: &'static str },
}

impl Msg {
    pub fn type_code(&self) -> u8 {
        match self {
            Msg::Hello { .. } => t::HELLO,
            Msg::DigestReq { .. } => t::DIGEST_REQ,
            Msg::Digest { .. } => t::DIGEST,
            Msg::DayReq { .. } => t::DAY_REQ,
            Msg::Day { .. } => t::DAY,
            Msg::Fetch { .. } => t::FETCH,
            Msg::Working => t::WORKING,
            Msg::Data(_) => t::DATA,
            Msg::End { .. } => t::END,
            Msg::Done { .. } => t::DONE,
            Msg::Error { .. } => t::ERROR,
        }
    }

    /// Appends the whole message (length, type, payload) to `out`.
    ///
    /// # Panics
    /// A message over the limits (the callers build them within the limits).
    pub fn encode(&self, out: &mut BytesMut) {
        let at = out.len();
        out.put_u32(0);
        out.put_u8(self.type_code());
        match self {
            Msg::Hello {
                version_min,
                version_max,
                interval_minutes,
                server_id,
                acds,
            } => {
                out.put_u16(*version_min);
                out.put_u16(*version_max);
                out.put_u8(*interval_minutes);
                assert!(server_id.len() <= MAX_SERVER_ID && acds.len() <= MAX_ACDS);
                out.put_u8(server_id.len() as u8);
                out.put_slice(server_id.as_bytes());
                out.put_u8(acds.len() as u8);
                for a in acds {
                    out.put_u16(*a);
                }
            }
            Msg::DigestReq { acd } => out.put_u16(*acd),
            Msg::Digest { acd, days } => {
                assert!(days.len() <= MAX_DAYS);
                out.put_u16(*acd);
                out.put_u16(days.len() as u16);
                for d in days {
                    out.put_u32(d.day);
                    out.put_u16(d.intervals);
                    out.put_u16(d.complete);
                    out.put_slice(&d.digest);
                }
            }
            Msg::DayReq { acd, day } => {
                out.put_u16(*acd);
                out.put_u32(*day);
            }
            Msg::Day {
                acd,
                day,
                intervals,
            } => {
                assert!(intervals.len() <= MAX_DAY_INTERVALS);
                out.put_u16(*acd);
                out.put_u32(*day);
                out.put_u16(intervals.len() as u16);
                for i in intervals {
                    out.put_i64(i.istart);
                    out.put_u8(if i.complete { 1 } else { 2 });
                    out.put_slice(&i.checksum);
                }
            }
            Msg::Fetch {
                acd,
                from_day,
                to_day,
            } => {
                out.put_u16(*acd);
                out.put_u32(*from_day);
                out.put_u32(*to_day);
            }
            Msg::Working => {}
            Msg::Data(b) => {
                assert!(!b.is_empty() && b.len() <= MAX_DATA_LEN);
                out.put_slice(b);
            }
            Msg::End { bytes } => out.put_u64(*bytes),
            Msg::Done { your_turn } => out.put_u8(u8::from(*your_turn)),
            Msg::Error { code, reason } => {
                out.put_u16(*code);
                let r = truncate(reason, MAX_REASON);
                out.put_u16(r.len() as u16);
                out.put_slice(r.as_bytes());
            }
        }
        let len = (out.len() - at - 4) as u32;
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = BytesMut::new();
        self.encode(&mut b);
        b.to_vec()
    }

    /// A short name for messages and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Msg::Hello { .. } => "HELLO",
            Msg::DigestReq { .. } => "DIGEST_REQ",
            Msg::Digest { .. } => "DIGEST",
            Msg::DayReq { .. } => "DAY_REQ",
            Msg::Day { .. } => "DAY",
            Msg::Fetch { .. } => "FETCH",
            Msg::Working => "WORKING",
            Msg::Data(_) => "DATA",
            Msg::End { .. } => "END",
            Msg::Done { .. } => "DONE",
            Msg::Error { .. } => "ERROR",
        }
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A cursor over one message's payload that fails with `Truncated` at the end.
struct Rd<'a> {
    ty: u8,
    b: &'a [u8],
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.b.len() < n {
            return Err(WireError::Truncated(self.ty));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn i64(&mut self) -> Result<i64, WireError> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn count(&mut self, wide: bool, what: &'static str, max: usize) -> Result<usize, WireError> {
        let n = if wide {
            self.u16()? as usize
        } else {
            self.u8()? as usize
        };
        if n > max {
            return Err(WireError::Limit {
                ty: self.ty,
                what,
                n,
                max,
            });
        }
        Ok(n)
    }
    fn text(&mut self, n: usize) -> Result<String, WireError> {
        let ty = self.ty;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| WireError::Utf8(ty))
    }

    /// A HELLO body.
    fn hello(&mut self) -> Result<Msg, WireError> {
        let version_min = self.u16()?;
        let version_max = self.u16()?;
        let interval_minutes = self.u8()?;
        let n = self.count(false, "server_id length", MAX_SERVER_ID)?;
        let server_id = self.text(n)?;
        let k = self.count(false, "ACD count", MAX_ACDS)?;
        let mut acds = Vec::with_capacity(k);
        for _ in 0..k {
            acds.push(self.u16()?);
        }
        if version_min > version_max {
            return Err(WireError::Invalid {
                ty: self.ty,
                what: "version_min is above version_max",
            });
        }
        Ok(Msg::Hello {
            version_min,
            version_max,
            interval_minutes,
            server_id,
            acds,
        })
    }

    /// A DIGEST body: per day its interval counts and digest.
    fn digest(&mut self) -> Result<Msg, WireError> {
        let acd = self.u16()?;
        let k = self.count(true, "day count", MAX_DAYS)?;
        let mut days = Vec::with_capacity(k);
        for _ in 0..k {
            let day = self.u32()?;
            let intervals = self.u16()?;
            let complete = self.u16()?;
            let digest = self.take(16)?.try_into().unwrap();
            if complete > intervals {
                return Err(WireError::Invalid {
                    ty: self.ty,
                    what: "a day has more complete intervals than intervals",
                });
            }
            days.push(DayDigest {
                day,
                intervals,
                complete,
                digest,
            });
        }
        Ok(Msg::Digest { acd, days })
    }

    /// A DAY body: per interval its start, status and checksum.
    fn day(&mut self) -> Result<Msg, WireError> {
        let acd = self.u16()?;
        let day = self.u32()?;
        let k = self.count(true, "interval count", MAX_DAY_INTERVALS)?;
        let mut intervals = Vec::with_capacity(k);
        for _ in 0..k {
            let istart = self.i64()?;
            let complete = match self.u8()? {
                1 => true,
                2 => false,
                _ => {
                    return Err(WireError::Invalid {
                        ty: self.ty,
                        what: "interval status is neither 1 (complete) nor 2 (incomplete)",
                    })
                }
            };
            let checksum = self.take(32)?.try_into().unwrap();
            intervals.push(IntervalSum {
                istart,
                complete,
                checksum,
            });
        }
        Ok(Msg::Day {
            acd,
            day,
            intervals,
        })
    }

    /// A DATA body: the bytes of the stream, at most `MAX_DATA_LEN`.
    fn data(&mut self) -> Result<Msg, WireError> {
        let n = self.b.len();
        if n == 0 {
            return Err(WireError::Invalid {
                ty: self.ty,
                what: "DATA carries no bytes",
            });
        }
        if n > MAX_DATA_LEN {
            return Err(WireError::Limit {
                ty: self.ty,
                what: "DATA length",
                n,
                max: MAX_DATA_LEN,
            });
        }
        Ok(Msg::Data(self.take(n)?.to_vec()))
    }
}

/// Decodes one message from the front of `buf`: `Ok(Some((msg, used)))`, `Ok(None)` when
/// more bytes are needed, or the reason the bytes are not a valid message.
///
/// # Errors
/// See [`WireError`]; the session ends on any of them.
pub fn decode(buf: &[u8]) -> Result<Option<(Msg, usize)>, WireError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes(buf[..4].try_into().unwrap());
    if len == 0 {
        return Err(WireError::Empty);
    }
    if len > MAX_MESSAGE_LEN {
        return Err(WireError::TooLong(len));
    }
    let total = 4 + len as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let ty = buf[4];
    let mut r = Rd {
        ty,
        b: &buf[5..total],
    };
    let msg = match ty {
        t::HELLO => r.hello()?,
        t::DIGEST_REQ => Msg::DigestReq { acd: r.u16()? },
        t::DIGEST => r.digest()?,
        t::DAY_REQ => Msg::DayReq {
            acd: r.u16()?,
            day: r.u32()?,
        },
        t::DAY => r.day()?,
        t::FETCH => {
            let (acd, from_day, to_day) = (r.u16()?, r.u32()?, r.u32()?);
            if from_day > to_day {
                return Err(WireError::Invalid {
                    ty,
                    what: "from_day is after to_day",
                });
            }
            Msg::Fetch {
                acd,
                from_day,
                to_day,
            }
        }
        t::WORKING => Msg::Working,
        t::DATA => r.data()?,
        t::END => Msg::End { bytes: r.u64()? },
        t::DONE => Msg::Done {
            your_turn: match r.u8()? {
                0 => false,
                1 => true,
                _ => {
                    return Err(WireError::Invalid {
                        ty,
                        what: "your_turn is neither 0 nor 1",
                    })
                }
            },
        },
        t::ERROR => {
            let code = r.u16()?;
            let n = r.count(true, "reason length", MAX_REASON)?;
            Msg::Error {
                code,
                reason: r.text(n)?,
            }
        }
        other => return Err(WireError::UnknownType(other)),
    };
    if !r.b.is_empty() {
        return Err(WireError::Trailing {
            ty,
            extra: r.b.len(),
        });
    }
    Ok(Some((msg, total)))
}

/// The tokio-util codec over [`decode`] and [`Msg::encode`].
#[derive(Debug, Default)]
pub struct PeerCodec;

impl tokio_util::codec::Decoder for PeerCodec {
    type Item = Msg;
    type Error = std::io::Error;
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Msg>, std::io::Error> {
        match decode(src) {
            Ok(Some((m, used))) => {
                src.advance(used);
                Ok(Some(m))
            }
            Ok(None) => {
                // Reserve for the message being received (its length is checked).
                if src.len() >= 4 {
                    let len = u32::from_be_bytes(src[..4].try_into().unwrap()) as usize;
                    src.reserve((4 + len).saturating_sub(src.len()));
                }
                Ok(None)
            }
            Err(e) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        }
    }
}

impl tokio_util::codec::Encoder<Msg> for PeerCodec {
    type Error = std::io::Error;
    fn encode(&mut self, m: Msg, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        m.encode(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Msg> {
        vec![
            Msg::Hello {
                version_min: 1,
                version_max: 1,
                interval_minutes: 15,
                server_id: "srv-a".into(),
                acds: vec![1, 2],
            },
            Msg::DigestReq { acd: 1 },
            Msg::Digest {
                acd: 1,
                days: vec![DayDigest {
                    day: 20_761,
                    intervals: 96,
                    complete: 95,
                    digest: [7; 16],
                }],
            },
            Msg::DayReq { acd: 1, day: 3 },
            Msg::Day {
                acd: 1,
                day: 3,
                intervals: vec![IntervalSum {
                    istart: -5,
                    complete: false,
                    checksum: [9; 32],
                }],
            },
            Msg::Fetch {
                acd: 2,
                from_day: 1,
                to_day: 9,
            },
            Msg::Working,
            Msg::Data(vec![1, 2, 3]),
            Msg::End { bytes: 3 },
            Msg::Done { your_turn: true },
            Msg::Error {
                code: code::CANNOT_READ,
                reason: "database is locked".into(),
            },
        ]
    }

    #[test]
    fn every_message_round_trips_and_every_prefix_is_incomplete() {
        for m in all() {
            let b = m.to_bytes();
            assert_eq!(decode(&b), Ok(Some((m.clone(), b.len()))), "{m:?}");
            for cut in 0..b.len() {
                assert_eq!(decode(&b[..cut]), Ok(None), "{m:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn lengths_are_checked_before_anything_is_read() {
        assert_eq!(decode(&[0, 0, 0, 0]), Err(WireError::Empty));
        assert_eq!(
            decode(&[0, 0x10, 0, 1]),
            Err(WireError::TooLong(0x0010_0001))
        );
        // A DIGEST claiming more days than the limit fails on the count, not on a read.
        let mut b = vec![0, 0, 0, 5, t::DIGEST, 0, 1, 0xff, 0xff];
        b[3] = 5;
        assert!(matches!(
            decode(&b),
            Err(WireError::Limit {
                what: "day count",
                ..
            })
        ));
    }

    #[test]
    fn trailing_and_unknown_are_errors() {
        let mut b = Msg::DigestReq { acd: 1 }.to_bytes();
        b.push(0);
        b[3] += 1;
        assert_eq!(
            decode(&b),
            Err(WireError::Trailing {
                ty: t::DIGEST_REQ,
                extra: 1
            })
        );
        assert_eq!(
            decode(&[0, 0, 0, 1, 0x55]),
            Err(WireError::UnknownType(0x55))
        );
    }
}
