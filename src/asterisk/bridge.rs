//! `cms-asterisk` itself: follow the queue log, translate it, and serve the stream to
//! the collectors with the simulator's link server (`crate::sim::LinkServer`).
//!
//! Sequence numbers come from the log: event `n` of a file is seq `first_seq + n`,
//! where `first_seq` is kept, with the translator's state at the file's first line, in
//! a small durable index (`index.json` in the state directory, rewritten when a new
//! file begins). After a restart the bridge finds its files again by their
//! fingerprints (`follow::find`), translates them again from the oldest one it still
//! has (the same lines give the same events), and goes on following: a collector that
//! was away for any length of time is replayed from the log itself, back to the
//! oldest file still on disk; before that it gets a pump-up and a GAP. A new epoch
//! begins only with no index, an index of another translation ([`TRANSLATION`]), a
//! changed mapping, or none of the index's files left.

use super::follow::{find, read_whole, Follower, Item};
use super::mapping::Mapping;
use super::translate::Translator;
use crate::proto::{Event, Frame};
use crate::sim::{LinkServer, LinkServerConfig, Notice};
use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tracing::{info, warn};

/// Files remembered in the index, at most.
const MAX_FILES: usize = 64;

/// What `cms-asterisk` was told on its command line.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    pub log: PathBuf,
    pub mapping: Mapping,
    /// The mapping's identity ([`mapping_identity`]), hashed into the index: another
    /// mapping is another stream, so it starts a new epoch.
    pub mapping_text: String,
    pub state_dir: PathBuf,
    pub listen: Vec<(String, SocketAddr)>,
    pub heartbeat_ms: u32,
    pub poll: Duration,
    pub port_file: Option<PathBuf>,
}

/// One file of the log, as the index keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileEntry {
    fingerprint: String,
    first_seq: u64,
    state: Translator,
}

/// The translation's version, kept in the index: raise it whenever the same lines give
/// other events (or the translator's saved state changes shape), so that a bridge
/// upgraded in place starts a new epoch instead of replaying, under sequence numbers the
/// collectors already hold, a stream that differs from the one they took. 2: a member
/// removed from its last queue is forgotten with its pause.
pub const TRANSLATION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Index {
    /// [`TRANSLATION`] of the release that wrote it (absent, 0: before the field).
    #[serde(default)]
    translation: u32,
    epoch: u64,
    mapping: String,
    files: Vec<FileEntry>,
}

/// The part of an index read first: whether this release can read the rest.
#[derive(Deserialize)]
struct IndexHead {
    #[serde(default)]
    translation: u32,
}

/// What the index file holds.
enum Stored {
    Index(Index),
    /// Written by a release that translates differently: a new epoch begins.
    Other(u32),
}

/// Why the bridge stopped.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("{path}: {what}")]
    File { path: PathBuf, what: String },
    #[error("{0}")]
    Listen(String),
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> BridgeError {
    BridgeError::File {
        path: path.to_path_buf(),
        what: e.to_string(),
    }
}

/// What identifies the effective mapping in the index: the mapping file's bytes, and,
/// with a `queues.conf`, the effective mapping it gave (`effective`, as JSON). So a
/// change of a queue's `wrapuptime`, a new queue or member in `queues.conf` starts a new
/// epoch, while a comment or a key the mapping does not read (`musicclass`) does not;
/// and without `queues.conf` the identity is the file's bytes, as before the option.
pub fn mapping_identity(mapping_text: &str, effective: Option<&Mapping>) -> String {
    match effective {
        None => mapping_text.to_string(),
        Some(m) => format!(
            "{mapping_text}\n; with queues.conf, effective: {}",
            serde_json::to_string(m).expect("a mapping serialises")
        ),
    }
}

fn mapping_hash(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex()[..32].to_string()
}

fn load_index(path: &Path) -> Result<Option<Stored>, BridgeError> {
    let bad = |e: serde_json::Error| file_err(path, format!("not a cms-asterisk index: {e}"));
    match std::fs::read(path) {
        Ok(b) => {
            let head: IndexHead = serde_json::from_slice(&b).map_err(bad)?;
            if head.translation != TRANSLATION {
                return Ok(Some(Stored::Other(head.translation)));
            }
            serde_json::from_slice(&b)
                .map(|i| Some(Stored::Index(i)))
                .map_err(bad)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(file_err(path, e)),
    }
}

/// Writes the index whole, synced, then renames it over the old one.
fn save_index(path: &Path, idx: &Index) -> Result<(), BridgeError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec(idx).map_err(|e| file_err(path, e))?;
    let mut f = std::fs::File::create(&tmp).map_err(|e| file_err(&tmp, e))?;
    f.write_all(&bytes).map_err(|e| file_err(&tmp, e))?;
    f.sync_all().map_err(|e| file_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| file_err(path, e))?;
    Ok(())
}

/// Translates `lines` (numbered from `first_line`), encoding every event with the
/// next seqs into `buf`; returns the log time.
fn translate_into(
    tr: &mut Translator,
    next_seq: u64,
    first_line: u64,
    lines: &[String],
    buf: &mut BytesMut,
) -> i64 {
    let mut evs = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Err(e) = tr.line(first_line + i as u64, l, &mut evs) {
            warn!(error = %e, "queue log line skipped");
        }
    }
    for (i, (ts, kind)) in evs.into_iter().enumerate() {
        Frame::Event(Event {
            seq: next_seq + i as u64,
            ts,
            kind,
        })
        .encode(buf);
    }
    tr.log_time().unwrap_or(0)
}

/// Where the bridge goes on from after a restart: the files to read again, the index.
struct Resume {
    index: Index,
    /// (path, entry index) of each file still found, oldest first.
    files: Vec<(PathBuf, usize)>,
}

fn plan_resume(cfg: &BridgeConfig, index_path: &Path) -> Result<Option<Resume>, BridgeError> {
    let index = match load_index(index_path)? {
        None => return Ok(None),
        Some(Stored::Other(v)) => {
            warn!(
                "the index was written by a release that translates the log differently \
                 (translation {v}, this release's {TRANSLATION}): a new epoch begins"
            );
            return Ok(None);
        }
        Some(Stored::Index(i)) => i,
    };
    if index.mapping != mapping_hash(&cfg.mapping_text) {
        warn!("the mapping changed: a new epoch begins");
        return Ok(None);
    }
    let mut files = Vec::new();
    for (i, e) in index.files.iter().enumerate() {
        match find(&cfg.log, &e.fingerprint) {
            Some(p) => files.push((p, i)),
            None => files.clear(),
        }
    }
    // Only an unbroken run of files up to the newest one can be read again.
    if files.last().map(|f| f.1) != Some(index.files.len().saturating_sub(1)) {
        warn!("the log files of the index are gone: a new epoch begins");
        return Ok(None);
    }
    Ok(Some(Resume { index, files }))
}

/// Runs the bridge until `stop` resolves.
///
/// # Errors
/// The state directory or the log cannot be used, or a link cannot be bound.
pub async fn run(
    cfg: BridgeConfig,
    notices: impl Fn(Notice) + Send + Sync + 'static,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), BridgeError> {
    std::fs::create_dir_all(&cfg.state_dir).map_err(|e| file_err(&cfg.state_dir, e))?;
    let index_path = cfg.state_dir.join("index.json");
    let resume = plan_resume(&cfg, &index_path)?;
    let (mut index, start_tr, first_seq) = match &resume {
        Some(r) => {
            let e = &r.index.files[r.files[0].1];
            (r.index.clone(), e.state.clone(), e.first_seq)
        }
        None => {
            let epoch = loop {
                let e: u64 = rand::random();
                if e != 0 {
                    break e;
                }
            };
            let idx = Index {
                translation: TRANSLATION,
                epoch,
                mapping: mapping_hash(&cfg.mapping_text),
                files: Vec::new(),
            };
            save_index(&index_path, &idx)?;
            (idx, Translator::new(cfg.mapping.clone()), 1)
        }
    };
    info!(epoch = index.epoch, first_seq, "cms-asterisk starting");
    let server = LinkServer::start(
        &LinkServerConfig {
            listen: cfg.listen.clone(),
            acd: cfg.mapping.acd,
            heartbeat_ms: cfg.heartbeat_ms,
            epoch: index.epoch,
            first_seq,
            clock_ms: start_tr.log_time().unwrap_or(0).max(0),
        },
        start_tr,
        notices,
    )
    .await
    .map_err(|e| BridgeError::Listen(e.to_string()))?;
    if let Some(p) = &cfg.port_file {
        let tmp = p.with_extension("tmp");
        std::fs::write(&tmp, server.ports()).map_err(|e| file_err(&tmp, e))?;
        std::fs::rename(&tmp, p).map_err(|e| file_err(p, e))?;
    }
    // Read the files again, oldest first; follow on from the end of the newest.
    let mut follower = Follower::new(&cfg.log);
    let mut line_no = 0u64;
    if let Some(r) = resume {
        let last = r.files.len() - 1;
        for (k, (path, _)) in r.files.iter().enumerate() {
            let (_, lines, bytes, file) = read_whole(path).map_err(|e| file_err(path, e))?;
            server.feed(|tr, next, buf| (translate_into(tr, next, 1, &lines, buf), ()));
            if k == last {
                line_no = lines.len() as u64;
                if path == &cfg.log {
                    follower =
                        Follower::resume(&cfg.log, file, bytes).map_err(|e| file_err(path, e))?;
                } else {
                    // Rotated while the bridge was down: what the path holds now is new.
                    info!(file = %path.display(), "the log was rotated meanwhile");
                }
            }
        }
        info!(head = server.head(), "log read again");
    }
    let mut items = Vec::new();
    tokio::pin!(stop);
    loop {
        items.clear();
        if let Err(e) = follower.poll(&mut items) {
            warn!(log = %cfg.log.display(), error = %e, "cannot read the queue log");
        }
        let mut lines: Vec<String> = Vec::new();
        for it in items.drain(..) {
            match it {
                Item::Line(l) => lines.push(l),
                Item::File(fp) => {
                    if !lines.is_empty() {
                        let ls = std::mem::take(&mut lines);
                        let n = line_no + 1;
                        server.feed(|tr, next, buf| (translate_into(tr, next, n, &ls, buf), ()));
                    }
                    // A new file: its first seq and the state it starts from.
                    let entry = server.feed(|tr, next, _| {
                        (
                            tr.log_time().unwrap_or(0),
                            FileEntry {
                                fingerprint: fp.clone(),
                                first_seq: next,
                                state: tr.clone(),
                            },
                        )
                    });
                    info!(fingerprint = %fp, first_seq = entry.first_seq, "a new log file begins");
                    index.files.push(entry);
                    if index.files.len() > MAX_FILES {
                        index.files.remove(0);
                    }
                    save_index(&index_path, &index)?;
                    line_no = 0;
                }
            }
        }
        if !lines.is_empty() {
            let n = line_no + 1;
            server.feed(|tr, next, buf| (translate_into(tr, next, n, &lines, buf), ()));
            line_no += lines.len() as u64;
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(cfg.poll) => {}
        }
    }
    server.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> BridgeConfig {
        let text = "wrapup_seconds = 60\n[queues.support]\nskill = 1\n".to_string();
        BridgeConfig {
            log: dir.join("queue_log"),
            mapping: Mapping::parse(&text).unwrap(),
            mapping_text: text,
            state_dir: dir.join("state"),
            listen: vec![],
            heartbeat_ms: 1000,
            poll: Duration::from_millis(50),
            port_file: None,
        }
    }

    /// The mapping's identity in the index: the file's bytes alone without queues.conf
    /// (indexes written before the option still resume); with it, what queues.conf
    /// changed in the effective mapping, not its comments or unused keys.
    #[test]
    fn queues_conf_values_are_part_of_the_mapping_identity() {
        let text = "wrapup_seconds = 60\n";
        let m = Mapping::parse(text).unwrap();
        assert_eq!(mapping_identity(text, None), text);
        let eff = |conf: &str| {
            let qc = super::super::queues_conf::parse(conf).unwrap();
            mapping_hash(&mapping_identity(
                text,
                Some(&m.with_queues_conf(&qc).unwrap()),
            ))
        };
        let base = eff("[support]\nwrapuptime = 15\n");
        assert_ne!(base, mapping_hash(text));
        assert_eq!(
            base,
            eff("; FreePBX\n[support]\nwrapuptime = 15 ; s\nmusicclass = x\n")
        );
        assert_ne!(base, eff("[support]\nwrapuptime = 20\n"));
        assert_ne!(base, eff("[support]\nwrapuptime = 15\n[sales]\n"));
    }

    #[test]
    fn an_index_of_another_translation_starts_a_new_epoch_and_a_bad_one_is_named() {
        let d = tempfile::tempdir().unwrap();
        let cfg = config(d.path());
        std::fs::write(&cfg.log, "1700000000|NONE|NONE|NONE|QUEUESTART|\n").unwrap();
        let first = std::fs::read(&cfg.log).unwrap();
        let fp = super::super::follow::fingerprint(&first);
        let idx = |translation: u32| Index {
            translation,
            epoch: 7,
            mapping: mapping_hash(&cfg.mapping_text),
            files: vec![FileEntry {
                fingerprint: fp.clone(),
                first_seq: 1,
                state: Translator::new(cfg.mapping.clone()),
            }],
        };
        let path = d.path().join("index.json");
        // This release's index: resumed.
        save_index(&path, &idx(TRANSLATION)).unwrap();
        let r = plan_resume(&cfg, &path).unwrap().expect("resumed");
        assert_eq!(r.index.epoch, 7);
        // An older release's (and one from before the field): a new epoch.
        save_index(&path, &idx(TRANSLATION - 1)).unwrap();
        assert!(plan_resume(&cfg, &path).unwrap().is_none());
        let mut old = serde_json::to_value(idx(TRANSLATION)).unwrap();
        old.as_object_mut().unwrap().remove("translation");
        // Its translator state of another shape is never read.
        old["files"][0]["state"] = serde_json::json!({"shape": "of another release"});
        std::fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();
        assert!(plan_resume(&cfg, &path).unwrap().is_none());
        // A damaged index of this release is an error naming the file.
        std::fs::write(
            &path,
            format!("{{\"translation\": {TRANSLATION}, \"epoch\": "),
        )
        .unwrap();
        let e = plan_resume(&cfg, &path).err().expect("refused").to_string();
        assert!(
            e.contains("index.json") && e.contains("not a cms-asterisk index"),
            "{e}"
        );
    }
}
