//! `cms export --out DIR`: the pending intervals as files (docs/exports.md): the
//! generic CSV layout (an interval list and one file per table family, with headers)
//! and Calabrio WFM's queue data import file (headerless, `;`-separated, one per ACD).
//!
//! Every file is written to a private temporary file in `DIR`, synced and renamed, and
//! the export position moves only after the last rename: a run killed midway leaves no
//! partial file, and the next run writes the same intervals again (named anew). It does
//! not choose the intervals (that is [`super::track`]).

use super::{sql, track, width, ExportError, Format, Interval, Report, RowReader};
use crate::config::Config;
use crate::items::TABLES;
use crate::store::Store;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The target name of a file export into `dir` (its absolute path).
pub fn target_name(dir: &Path) -> String {
    format!("files:{}", dir.display())
}

/// A CSV field: quoted when it holds a comma, a quote or a line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// An interval's start as UTC RFC 3339 (`2026-11-03T08:15:00Z`).
pub fn utc(istart: i64) -> String {
    chrono::DateTime::from_timestamp(istart, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The header of the generic interval list.
pub const INTERVALS_HEADER: &str = "server,acd,interval_start,row_date,starttime,intrvl,status,reasons,source,row_count,checksum,change";

/// The header of a generic family file.
pub fn family_header(fam: usize) -> String {
    let t = TABLES[fam];
    let mut cols = vec!["server", "acd"];
    cols.extend(t.keys);
    cols.extend([
        "interval_start",
        "row_date",
        "starttime",
        "intrvl",
        "status",
        "change",
    ]);
    cols.extend(t.items.iter().map(|(n, _)| *n));
    cols.join(",")
}

/// Calabrio's 16 queue statistics, in file order (fields 6 to 21), from a `hsplit` row
/// (docs/exports.md has the mapping and its sources).
fn calabrio_fields(row: &[i64], intrvl: u32) -> [i64; 16] {
    let t = &crate::items::SPLIT;
    let at = |item: &str| row[t.keys.len() + t.index_of(item).expect("split item")];
    let avail_avg = if intrvl == 0 {
        0
    } else {
        (at("i_availtime") + i64::from(intrvl) * 30) / (i64::from(intrvl) * 60)
    };
    [
        at("callsoffered") - at("inflowcalls"),
        at("inflowcalls"),
        at("abncalls"),
        at("outflowcalls"),
        at("acdcalls"),
        at("anstime"),
        at("abntime"),
        at("acdtime"),
        at("acwtime"),
        0,
        0,
        avail_avg,
        at("acceptable"),
        at("i_availtime"),
        0,
        at("slvlabns"),
    ]
}

/// A file being written: temporary in the destination directory until [`Out::keep`].
struct Out {
    tmp: tempfile::NamedTempFile,
    buf: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
}

impl Out {
    fn create(dir: &Path, name: &str) -> Result<Out, ExportError> {
        let path = dir.join(name);
        let io = |source| ExportError::Io {
            path: path.clone(),
            what: "cannot create the file",
            source,
        };
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.tmp-"))
            .tempfile_in(dir)
            .map_err(io)?;
        let buf = std::io::BufWriter::with_capacity(1 << 20, tmp.reopen().map_err(io)?);
        Ok(Out { tmp, buf, path })
    }
    fn line(&mut self, s: &str) -> Result<(), ExportError> {
        self.buf
            .write_all(s.as_bytes())
            .and_then(|()| self.buf.write_all(b"\n"))
            .map_err(|source| ExportError::Io {
                path: self.path.clone(),
                what: "cannot write",
                source,
            })
    }
    /// Flushes, syncs and renames into place.
    fn keep(self) -> Result<PathBuf, ExportError> {
        let Out { tmp, buf, path } = self;
        let io = |source| ExportError::Io {
            path: path.clone(),
            what: "cannot write",
            source,
        };
        let f = buf.into_inner().map_err(|e| io(e.into_error()))?;
        f.sync_all().map_err(io)?;
        tmp.persist(&path).map_err(|e| io(e.error))?;
        Ok(path)
    }
}

/// Exports the pending intervals of `cfg`'s database into `dir` in `formats`.
///
/// # Errors
/// The database cannot be read, or a file cannot be written (nothing is marked
/// exported then).
pub fn export(
    cfg: &Config,
    store: &Store,
    dir: &Path,
    formats: &[Format],
    acds: &[u16],
) -> Result<Report, ExportError> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(dir).map_err(|source| ExportError::Io {
        path: dir.to_owned(),
        what: "cannot create the directory",
        source,
    })?;
    let dir = dir.canonicalize().map_err(|source| ExportError::Io {
        path: dir.to_owned(),
        what: "cannot resolve the directory",
        source,
    })?;
    let target = target_name(&dir);
    let snap = super::snapshot(store)?;
    let pending = super::pending(&snap, &target, acds)?;
    let e = sql(&store.path);
    let mut report = Report::empty(&target, pending.position);
    if !pending.intervals.is_empty() {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let prefix = format!("cms-{}-{stamp}-p{}", cfg.server_id, pending.position);
        let mut reader = RowReader::new(&snap.conn).map_err(&e)?;
        if formats.contains(&Format::Generic) {
            write_generic(
                cfg,
                &dir,
                &prefix,
                &pending.intervals,
                &mut reader,
                &mut report,
                &e,
            )?;
        }
        if formats.contains(&Format::Calabrio) {
            write_calabrio(
                cfg,
                &snap,
                &dir,
                &prefix,
                &pending.intervals,
                &mut reader,
                &mut report,
            )?;
        }
        for i in &pending.intervals {
            match i.change {
                track::Change::New => report.new += 1,
                track::Change::Correction => report.corrections += 1,
            }
        }
    }
    let now = super::now();
    track::mark_sent(&store.conn, &target, &pending.intervals, now).map_err(&e)?;
    track::finish(&store.conn, &target, pending.position, now).map_err(&e)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn write_generic(
    cfg: &Config,
    dir: &Path,
    prefix: &str,
    intervals: &[Interval],
    reader: &mut RowReader<'_>,
    report: &mut Report,
    e: &impl Fn(rusqlite::Error) -> ExportError,
) -> Result<(), ExportError> {
    let server = field(&cfg.server_id);
    let mut list = Out::create(dir, &format!("{prefix}-intervals.csv"))?;
    list.line(INTERVALS_HEADER)?;
    for i in intervals {
        list.line(&format!(
            "{server},{},{},{},{},{},{},{},{},{},{},{}",
            i.acd,
            utc(i.istart),
            i.row_date,
            i.starttime,
            i.intrvl,
            i.status.as_str(),
            field(&i.reasons),
            field(&i.source),
            i.row_count,
            i.checksum,
            i.change.as_str()
        ))?;
    }
    let mut kept = vec![list.keep()?];
    let mut rows = Vec::new();
    for (fam, t) in TABLES.iter().enumerate() {
        let mut out = Out::create(dir, &format!("{prefix}-{}.csv", t.interval_table()))?;
        out.line(&family_header(fam))?;
        let nk = t.keys.len();
        for i in intervals {
            rows.clear();
            let n = reader.read(fam, i.acd, i.istart, &mut rows).map_err(e)?;
            report.rows += n as u64;
            let common = format!(
                "{},{},{},{},{},{}",
                utc(i.istart),
                i.row_date,
                i.starttime,
                i.intrvl,
                i.status.as_str(),
                i.change.as_str()
            );
            for row in rows.chunks_exact(width(fam)) {
                let mut line = format!("{server},{}", i.acd);
                for k in &row[..nk] {
                    line.push_str(&format!(",{k}"));
                }
                line.push(',');
                line.push_str(&common);
                for v in &row[nk..] {
                    line.push_str(&format!(",{v}"));
                }
                out.line(&line)?;
            }
        }
        kept.push(out.keep()?);
    }
    report.files.extend(kept);
    Ok(())
}

/// Calabrio's characters that would break a field: the separator and line breaks.
fn calabrio_name(s: &str) -> String {
    s.replace([';', '\n', '\r'], " ")
}

fn write_calabrio(
    cfg: &Config,
    store: &Store,
    dir: &Path,
    prefix: &str,
    intervals: &[Interval],
    reader: &mut RowReader<'_>,
    report: &mut Report,
) -> Result<(), ExportError> {
    let e = sql(&store.path);
    let grid = cfg.grid();
    let mut by_acd: BTreeMap<u16, Vec<&Interval>> = BTreeMap::new();
    for i in intervals {
        by_acd.entry(i.acd).or_default().push(i);
    }
    let split = TABLES
        .iter()
        .position(|t| t.name == "split")
        .expect("split family");
    let mut rows = Vec::new();
    for (acd, list) in by_acd {
        // Every administered skill gets a line in every interval ("if there is no data
        // for a specific interval, enter 0"), so a correction that empties a queue's
        // interval is delivered too.
        let mut skills: BTreeMap<i64, String> = BTreeMap::new();
        {
            let mut st = store
                .conn
                .prepare("SELECT skill, name FROM skill_def WHERE acd = ?1")
                .map_err(&e)?;
            let q = st
                .query_map([acd], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .map_err(&e)?;
            for r in q {
                let (k, n) = r.map_err(&e)?;
                skills.insert(k, n);
            }
        }
        let mut out = Out::create(dir, &format!("{prefix}-acd{acd}-calabrio-queue.csv"))?;
        for i in list {
            rows.clear();
            reader.read(split, acd, i.istart, &mut rows).map_err(&e)?;
            let mut lines: BTreeMap<i64, [i64; 16]> =
                skills.keys().map(|k| (*k, [0; 16])).collect();
            for row in rows.chunks_exact(width(split)) {
                lines.insert(row[0], calabrio_fields(row, i.intrvl));
            }
            let local = grid.local(i.istart);
            let date = local.format("%Y%m%d");
            let time = local.format("%H:%M");
            for (queue, f) in lines {
                let name = skills
                    .get(&queue)
                    .filter(|n| !n.is_empty())
                    .map(|n| calabrio_name(n))
                    .unwrap_or_else(|| format!("Skill {queue}"));
                let mut line = format!("{};{date};{time};{queue};{name}", i.intrvl);
                for v in f {
                    line.push_str(&format!(";{v}"));
                }
                out.line(&line)?;
            }
        }
        report.files.push(out.keep()?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(field("replay_gap"), "replay_gap");
        assert_eq!(
            field("replay_gap,call_across_gap"),
            "\"replay_gap,call_across_gap\""
        );
        assert_eq!(field("a\"b"), "\"a\"\"b\"");
    }

    /// The hand-worked example of docs/exports.md: one skill's interval.
    #[test]
    fn calabrio_fields_of_the_documented_example() {
        let t = &crate::items::SPLIT;
        let mut row = vec![0i64; t.keys.len() + t.items.len()];
        row[0] = 7;
        let mut set = |item: &str, v: i64| row[t.keys.len() + t.index_of(item).unwrap()] = v;
        set("callsoffered", 12);
        set("inflowcalls", 2);
        set("abncalls", 1);
        set("outflowcalls", 1);
        set("acdcalls", 10);
        set("anstime", 95);
        set("abntime", 40);
        set("acdtime", 2400);
        set("acwtime", 300);
        set("i_availtime", 2250);
        set("acceptable", 8);
        set("slvlabns", 1);
        assert_eq!(
            calabrio_fields(&row, 15),
            [10, 2, 1, 1, 10, 95, 40, 2400, 300, 0, 0, 3, 8, 2250, 0, 1]
        );
    }
}
