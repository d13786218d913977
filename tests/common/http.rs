//! A plain HTTP/1.1 GET of a running collector's endpoints (`/livez`, `/readyz`,
//! `/metrics`, the console), and the address the collector said it serves on.
//! Loopback only: the tests never send to any other address.

use super::collector::Collector;
use super::wait::until;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Bound of one request: connect, write, read to the end.
const TIMEOUT: Duration = Duration::from_secs(10);

/// An answer: status code and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The status line and headers as sent (hyper sends header names in lower case).
    pub head: String,
    pub body: String,
}

/// `GET path` on `addr`, with `Authorization: Bearer token` when given.
///
/// # Panics
/// `addr` is not loopback, or the request fails or is not HTTP.
pub fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Answer {
    try_get(addr, path, token).unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
}

/// [`get`], with the failure as an error (the server not yet listening).
///
/// # Errors
/// Cannot connect, time-out, or an answer that is not HTTP/1.1.
pub fn try_get(addr: SocketAddr, path: &str, token: Option<&str>) -> std::io::Result<Answer> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    request(addr, path, &auth)
}

/// [`get`] with HTTP Basic credentials, as a browser sends them.
pub fn get_basic(addr: SocketAddr, path: &str, user: &str, password: &str) -> Answer {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    request(addr, path, &format!("Authorization: Basic {b}\r\n"))
        .unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
}

/// One GET with `auth` (a whole header line, or empty).
fn request(addr: SocketAddr, path: &str, auth: &str) -> std::io::Result<Answer> {
    assert!(
        addr.ip().is_loopback(),
        "tests send only to loopback, not {addr}"
    );
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let bad = || std::io::Error::other(format!("not an HTTP answer: {text:?}"));
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(bad)?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(Answer {
        status,
        head: head.to_string(),
        body,
    })
}

/// The body of a chunked answer.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The address the collector logged it serves HTTP on ("serving HTTP ... addr=IP:PORT"),
/// as a loopback address with that port (a collector bound to 0.0.0.0 is reached
/// through 127.0.0.1).
pub fn served_addr(c: &Collector) -> SocketAddr {
    until(
        Duration::from_secs(20),
        || format!("the collector to log where it serves HTTP\n{}", c.log()),
        || {
            let log = c.log();
            let line = log.lines().find(|l| l.contains("serving HTTP"))?;
            let a = line.split("addr=").nth(1)?.split_whitespace().next()?;
            let a: SocketAddr = a.parse().ok()?;
            Some(SocketAddr::from(([127, 0, 0, 1], a.port())))
        },
    )
}
