//! Following the queue log: complete lines only, through logrotate's rotations.
//!
//! A file is known by its *fingerprint*, the blake3 digest of its first complete line
//! (which carries a time and a call id or member), not by its name or inode: after a
//! rename rotation (`queue_log` -> `queue_log.1`) and after `copytruncate` (the content
//! copied to `queue_log.1`, the file emptied in place) the same fingerprint finds the
//! same content again (`find`).
//!
//! - A line is handed out only once its `\n` is there: a last line Asterisk is still
//!   writing (or one cut by a crash) waits.
//! - A rename rotation: the path names a new file. The old one is read to its end, and
//!   the new one is followed once it has a complete line (by then Asterisk writes to
//!   it, not to the old one).
//! - A truncation (`copytruncate`, or the file emptied by hand): the file is shorter
//!   than what was read. It is followed again from its start, as a new file.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Most bytes of a line; a longer "line" is cut there and handed out (it is garbage).
const MAX_LINE: usize = 64 * 1024;

/// What the follower read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A new file begins, with this fingerprint; its first line follows.
    File(String),
    /// One complete line, without its `\n`.
    Line(String),
}

/// The fingerprint of a file whose first complete line is `first_line` (with its `\n`).
pub fn fingerprint(first_line: &[u8]) -> String {
    blake3::hash(first_line).to_hex()[..32].to_string()
}

#[cfg(unix)]
fn ident(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}
/// Elsewhere a rename rotation is not seen (only copytruncate is): cms-asterisk runs on
/// the Asterisk host, Linux, and is not in the Windows installer.
#[cfg(not(unix))]
fn ident(_m: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

struct Cur {
    file: File,
    ident: (u64, u64),
    /// Bytes read from the file.
    read: u64,
    partial: Vec<u8>,
    /// The file's first line has been handed out.
    started: bool,
    /// Its fingerprint, once started.
    fp: Option<String>,
}

/// Follows one log path.
pub struct Follower {
    path: PathBuf,
    cur: Option<Cur>,
}

impl Follower {
    /// A follower of `path`, which need not exist yet.
    pub fn new(path: &Path) -> Follower {
        Follower {
            path: path.to_path_buf(),
            cur: None,
        }
    }

    /// A follower of `path` that has already handed out the first `bytes` bytes of the
    /// file open as `file` (a restart that read them again).
    pub fn resume(path: &Path, file: File, bytes: u64) -> std::io::Result<Follower> {
        let m = file.metadata()?;
        let file_for_fp = file.try_clone()?;
        let mut file = file;
        file.seek(SeekFrom::Start(bytes))?;
        Ok(Follower {
            path: path.to_path_buf(),
            cur: Some(Cur {
                file,
                ident: ident(&m),
                read: bytes,
                partial: Vec::new(),
                started: bytes > 0,
                fp: handle_fp(&file_for_fp),
            }),
        })
    }

    /// Reads what is new: the rest of the current file, and the next file after a
    /// rotation.
    ///
    /// # Errors
    /// The log cannot be read (a missing file is not an error: nothing is new).
    pub fn poll(&mut self, out: &mut Vec<Item>) -> std::io::Result<()> {
        if self.cur.is_none() {
            match File::open(&self.path) {
                Ok(f) => {
                    let m = f.metadata()?;
                    self.cur = Some(Cur {
                        file: f,
                        ident: ident(&m),
                        read: 0,
                        partial: Vec::new(),
                        started: false,
                        fp: None,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        let cur = self.cur.as_mut().expect("opened");
        // Truncated in place: what is there now is a new file (shorter than what was
        // read, or, grown again since, with another first line).
        let len = cur.file.metadata()?.len();
        if len < cur.read || (cur.started && len > cur.read && handle_fp(&cur.file) != cur.fp) {
            cur.file.seek(SeekFrom::Start(0))?;
            cur.read = 0;
            cur.partial.clear();
            cur.started = false;
            cur.fp = None;
        }
        read_lines(cur, out)?;
        // Rotated by rename: follow the new file once it has a complete line.
        if let Ok(m) = std::fs::metadata(&self.path) {
            if ident(&m) != cur.ident && m.len() > 0 {
                let f = File::open(&self.path)?;
                let m = f.metadata()?;
                let mut next = Cur {
                    file: f,
                    ident: ident(&m),
                    read: 0,
                    partial: Vec::new(),
                    started: false,
                    fp: None,
                };
                let mut items = Vec::new();
                read_lines(&mut next, &mut items)?;
                if next.started {
                    if !cur.partial.is_empty() {
                        // The old file's cut last line never gets its end.
                        out.push(Item::Line(
                            String::from_utf8_lossy(&std::mem::take(&mut cur.partial)).into_owned(),
                        ));
                    }
                    out.extend(items);
                    self.cur = Some(next);
                }
            }
        }
        Ok(())
    }
}

fn read_lines(cur: &mut Cur, out: &mut Vec<Item>) -> std::io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = cur.file.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        cur.read += n as u64;
        let mut rest = &buf[..n];
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            cur.partial.extend_from_slice(&rest[..=i]);
            rest = &rest[i + 1..];
            emit(cur, out);
        }
        cur.partial.extend_from_slice(rest);
        if cur.partial.len() > MAX_LINE {
            emit(cur, out);
        }
    }
}

fn emit(cur: &mut Cur, out: &mut Vec<Item>) {
    let line = std::mem::take(&mut cur.partial);
    if !cur.started {
        cur.started = true;
        let fp = fingerprint(&line);
        cur.fp = Some(fp.clone());
        out.push(Item::File(fp));
    }
    let text = line.strip_suffix(b"\n").unwrap_or(&line);
    out.push(Item::Line(String::from_utf8_lossy(text).into_owned()));
}

/// Every complete line of the file at `path` and the byte count they take, with its
/// fingerprint (`None` for a file with no complete line).
///
/// # Errors
/// The file cannot be read.
pub fn read_whole(path: &Path) -> std::io::Result<(Option<String>, Vec<String>, u64, File)> {
    let mut f = File::open(path)?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let fp = bytes[..end]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| fingerprint(&bytes[..=i]));
    let lines = bytes[..end]
        .split(|&b| b == b'\n')
        .take(bytes[..end].iter().filter(|&&b| b == b'\n').count())
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    Ok((fp, lines, end as u64, f))
}

/// The file beside `log` (the log itself or a rotated copy: a name starting with the
/// log's name, not compressed) whose fingerprint is `fp`.
pub fn find(log: &Path, fp: &str) -> Option<PathBuf> {
    let dir = log.parent().filter(|d| !d.as_os_str().is_empty())?;
    let base = log.file_name()?.to_str()?;
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(base) && !n.ends_with(".gz") && !n.ends_with(".xz"))
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .find(|p| first_line_fp(p).as_deref() == Some(fp))
}

fn first_line_fp(p: &Path) -> Option<String> {
    handle_fp(&File::open(p).ok()?)
}

/// The fingerprint of the file open as `f`, read from its start without moving its
/// position.
fn handle_fp(f: &File) -> Option<String> {
    let mut f = f.try_clone().ok()?;
    let pos = f.stream_position().ok()?;
    let r = first_fp(&mut f);
    f.seek(SeekFrom::Start(pos)).ok()?;
    r
}

fn first_fp(f: &mut File) -> Option<String> {
    f.seek(SeekFrom::Start(0)).ok()?;
    let mut buf = vec![0u8; MAX_LINE];
    let mut have = 0;
    loop {
        let n = f.read(&mut buf[have..]).ok()?;
        if n == 0 {
            return None;
        }
        have += n;
        if let Some(i) = buf[..have].iter().position(|&b| b == b'\n') {
            return Some(fingerprint(&buf[..=i]));
        }
        if have == buf.len() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines(out: &[Item]) -> Vec<&str> {
        out.iter()
            .filter_map(|i| match i {
                Item::Line(l) => Some(l.as_str()),
                _ => None,
            })
            .collect()
    }

    // A rename rotation is seen by the file's identity, which only Unix gives ([`ident`]).
    #[cfg(unix)]
    #[test]
    fn a_cut_line_waits_and_rotations_are_followed() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("queue_log");
        let mut fw = Follower::new(&log);
        let mut out = vec![];
        fw.poll(&mut out).unwrap();
        assert!(out.is_empty());
        let mut f = File::create(&log).unwrap();
        f.write_all(b"1|NONE|NONE|NONE|QUEUESTART|\n2|NONE|q|PJSIP/1|PAU")
            .unwrap();
        fw.poll(&mut out).unwrap();
        assert_eq!(lines(&out), ["1|NONE|NONE|NONE|QUEUESTART|"]);
        assert_eq!(
            out[0],
            Item::File(fingerprint(b"1|NONE|NONE|NONE|QUEUESTART|\n"))
        );
        out.clear();
        f.write_all(b"SE|\n").unwrap();
        fw.poll(&mut out).unwrap();
        assert_eq!(lines(&out), ["2|NONE|q|PJSIP/1|PAUSE|"]);
        // Rename rotation: the old file gets one more line, then the new one starts.
        out.clear();
        std::fs::rename(&log, d.path().join("queue_log.1")).unwrap();
        f.write_all(b"3|NONE|q|PJSIP/1|UNPAUSE|\n").unwrap();
        fw.poll(&mut out).unwrap();
        assert_eq!(lines(&out), ["3|NONE|q|PJSIP/1|UNPAUSE|"]);
        out.clear();
        let mut g = File::create(&log).unwrap();
        fw.poll(&mut out).unwrap();
        assert!(out.is_empty(), "{out:?}");
        g.write_all(b"4|NONE|NONE|NONE|QUEUESTART|\n").unwrap();
        fw.poll(&mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert!(matches!(out[0], Item::File(_)));
        assert_eq!(lines(&out), ["4|NONE|NONE|NONE|QUEUESTART|"]);
        // The rotated file is found again by its fingerprint.
        let fp = fingerprint(b"1|NONE|NONE|NONE|QUEUESTART|\n");
        assert_eq!(find(&log, &fp), Some(d.path().join("queue_log.1")));
        // copytruncate: the file is emptied in place and written again.
        out.clear();
        g.set_len(0).unwrap();
        let mut g = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        g.write_all(b"50|NONE|NONE|NONE|QUEUESTART|\n").unwrap();
        fw.poll(&mut out).unwrap();
        assert!(matches!(out[0], Item::File(_)));
        assert_eq!(lines(&out), ["50|NONE|NONE|NONE|QUEUESTART|"]);
        let (fp5, all, bytes, _) = read_whole(&log).unwrap();
        assert_eq!(fp5, Some(fingerprint(b"50|NONE|NONE|NONE|QUEUESTART|\n")));
        assert_eq!(all, ["50|NONE|NONE|NONE|QUEUESTART|"]);
        assert_eq!(bytes, 30);
        // ... and emptied again, to less than was read.
        out.clear();
        g.set_len(0).unwrap();
        g.write_all(b"6|x|\n").unwrap();
        fw.poll(&mut out).unwrap();
        assert_eq!(lines(&out), ["6|x|"]);
    }
}
