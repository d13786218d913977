//! Read-only reports over a database: `cms status`, `cms gaps` and `cms compare`.
//!
//! Owns the queries and their human and JSON renderings. Never writes.

use crate::domain::{GapKind, IntervalStatus, LinkState};
use crate::interval::Grid;
use crate::items::TABLES;
use crate::store::{intervals::now_secs, select_columns, Store, StoreError};
use chrono::NaiveDate;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::collections::BTreeMap;
use thiserror::Error;

/// Why a report could not be made: the database could not be read. The message is the
/// database's own (a [`StoreError`] names the database file).
#[derive(Debug, Error)]
pub enum ReportError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, ReportError>;

#[derive(Debug, Serialize)]
pub struct AcdStatus {
    pub acd: u16,
    pub link_state: LinkState,
    pub link_since: Option<String>,
    pub peer: String,
    pub detail: String,
    pub epoch: u64,
    pub last_seq: u64,
    pub current_interval: Option<String>,
    pub last_complete_interval: Option<String>,
    pub checkpoint_age_seconds: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct Status {
    /// The server id the collector recorded in this database; `None` when no collector
    /// has run on it (a database that only ever received restores).
    pub server_id: Option<String>,
    /// The server id of this configuration, shown when the database has none or another.
    pub configured_server_id: String,
    pub database: String,
    pub database_bytes: u64,
    pub acds: Vec<AcdStatus>,
    /// Restores that did not finish (see [`unfinished_restores`]).
    pub unfinished_restores: Vec<UnfinishedRestore>,
}

fn fmt_local(grid: &Grid, istart: i64) -> String {
    grid.local(istart).format("%Y-%m-%d %H:%M %Z").to_string()
}

fn fmt_ts(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The start of the last complete interval of `acd` (UTC seconds), if any.
///
/// # Errors
/// A database error.
pub fn last_complete(store: &Store, acd: u16) -> Result<Option<i64>> {
    Ok(store.conn.query_row(
        "SELECT MAX(istart) FROM interval_status WHERE acd = ?1 AND status = ?2",
        params![acd, IntervalStatus::Complete],
        |r| r.get(0),
    )?)
}

/// Status of every configured ACD.
///
/// # Errors
/// A database error.
pub fn status(
    store: &Store,
    grid: &Grid,
    acds: &[u16],
    configured_server_id: &str,
) -> Result<Status> {
    let mut out = vec![];
    let now = now_secs();
    for &acd in acds {
        let link: Option<(LinkState, i64, String, String)> = store
            .conn
            .query_row(
                "SELECT state, since, peer, detail FROM link_state WHERE acd = ?1",
                [acd],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let ck: Option<(i64, i64, i64, i64)> = store
            .conn
            .query_row(
                "SELECT epoch, seq, open_istart, saved_at FROM checkpoint WHERE acd = ?1",
                [acd],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let last_complete = last_complete(store, acd)?;
        let (state, since, peer, detail) =
            link.unwrap_or((LinkState::NeverConnected, 0, String::new(), String::new()));
        out.push(AcdStatus {
            acd,
            link_state: state,
            link_since: (since > 0).then(|| fmt_ts(since)),
            peer,
            detail,
            epoch: ck.map(|c| c.0 as u64).unwrap_or(0),
            last_seq: ck.map(|c| c.1 as u64).unwrap_or(0),
            current_interval: ck.filter(|c| c.2 > 0).map(|c| fmt_local(grid, c.2)),
            last_complete_interval: last_complete.map(|t| fmt_local(grid, t)),
            checkpoint_age_seconds: ck.map(|c| now - c.3),
        });
    }
    let mut bytes = 0;
    for ext in ["", "-wal"] {
        let p = format!("{}{ext}", store.path.display());
        bytes += std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    }
    Ok(Status {
        server_id: store.setting("server_id")?,
        configured_server_id: configured_server_id.to_owned(),
        database: store.path.display().to_string(),
        database_bytes: bytes,
        acds: out,
        unfinished_restores: unfinished_restores(&store.conn)?,
    })
}

/// A restore whose record says it did not finish (killed, or still running), and that no
/// later restore of the same file finished after.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UnfinishedRestore {
    pub file: String,
    pub source_server: String,
    pub started_at: String,
    /// Intervals its plan was to write (filled, replaced or improved).
    pub planned: u64,
    /// Of those, the ones written from that source since it started.
    pub written: u64,
}

/// The restores that did not finish: a restore records its plan before its first write
/// and its results when it ends (`merge::restore`); one killed in between leaves its
/// record with `finished_at` 0.
///
/// # Errors
/// A database error.
pub fn unfinished_restores(conn: &Connection) -> rusqlite::Result<Vec<UnfinishedRestore>> {
    let has_log: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'restore_log')",
        [],
        |r| r.get(0),
    )?;
    if !has_log {
        return Ok(vec![]);
    }
    let mut st = conn.prepare(
        "SELECT r.file, r.source_server, r.started_at, r.filled + r.replaced,
           (SELECT COUNT(*) FROM interval_status s
             WHERE s.source = 'restored:' || r.source_server AND s.updated_at >= r.started_at)
         FROM restore_log r
         WHERE r.finished_at = 0 AND NOT EXISTS (SELECT 1 FROM restore_log l
           WHERE l.file = r.file AND l.id > r.id AND l.finished_at > 0)
         ORDER BY r.id",
    )?;
    let rows = st.query_map([], |r| {
        let planned: i64 = r.get(3)?;
        let written: i64 = r.get(4)?;
        Ok(UnfinishedRestore {
            file: r.get(0)?,
            source_server: r.get(1)?,
            started_at: fmt_ts(r.get(2)?),
            planned: planned.max(0) as u64,
            written: written.clamp(0, planned.max(0)) as u64,
        })
    })?;
    rows.collect()
}

/// The warning `cms gaps` and `cms status` print for each restore that did not finish.
pub fn render_unfinished(u: &[UnfinishedRestore]) -> String {
    let mut o = String::new();
    for r in u {
        o += &format!(
            "WARNING: the restore of {} (server {}) started {} did not finish: {} of its plan \
             of {} not written; run `cms restore {}` again\n",
            r.file,
            r.source_server,
            r.started_at,
            plural(r.planned - r.written, "interval"),
            r.planned,
            r.file
        );
    }
    o
}

pub fn render_status(s: &Status) -> String {
    let server = match s.server_id.as_deref() {
        Some(id) if id == s.configured_server_id => id.to_owned(),
        Some(id) => format!("{id} (this configuration says {})", s.configured_server_id),
        None => format!(
            "{} (from the configuration: no collector has run on this database yet)",
            s.configured_server_id
        ),
    };
    let mut o = format!(
        "server {server}  database {} ({:.1} MB)\n",
        s.database,
        s.database_bytes as f64 / 1e6
    );
    o += &render_unfinished(&s.unfinished_restores);
    for a in &s.acds {
        o += &format!(
            "ACD {}: link {}{}{}\n",
            a.acd,
            a.link_state,
            a.link_since
                .as_ref()
                .map(|t| format!(" since {t}"))
                .unwrap_or_default(),
            if a.peer.is_empty() {
                String::new()
            } else {
                format!(" ({})", a.peer)
            }
        );
        if !a.detail.is_empty() {
            o += &format!("  last error: {}\n", a.detail);
        }
        o += &format!(
            "  current interval {}  last complete {}  epoch {} seq {}  checkpoint {}\n",
            a.current_interval.as_deref().unwrap_or("-"),
            a.last_complete_interval.as_deref().unwrap_or("-"),
            a.epoch,
            a.last_seq,
            a.checkpoint_age_seconds
                .map(|s| format!("{s} s ago"))
                .unwrap_or_else(|| "never".into())
        );
    }
    o
}

/// One run of consecutive intervals that are missing, or incomplete for the same
/// reasons, or restored from the same source.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GapRange {
    pub acd: u16,
    /// UTC start of the first interval and end of the last, seconds.
    pub from: i64,
    pub to: i64,
    pub from_local: String,
    pub to_local: String,
    pub intervals: u32,
    /// `missing`, `incomplete` or `restored` here, `summary_only` in a restore's report
    /// (serialised as those words).
    pub kind: GapKind,
    pub reasons: String,
}

/// The intervals of `[from, to)` (UTC seconds) that are missing or incomplete, and the
/// ones restored from another server, grouped into ranges.
///
/// # Errors
/// A database error.
pub fn gaps(conn: &Connection, grid: &Grid, acd: u16, from: i64, to: i64) -> Result<Vec<GapRange>> {
    let mut st = conn.prepare(
        "SELECT istart, status, reasons, source FROM interval_status
         WHERE acd = ?1 AND istart >= ?2 AND istart < ?3",
    )?;
    let rows: BTreeMap<i64, (IntervalStatus, String, String)> = st
        .query_map(params![acd, from, to], |r| {
            Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut out: Vec<GapRange> = vec![];
    let mut t = grid.start_of(from);
    while t < to {
        let (kind, reasons) = match rows.get(&t) {
            None => (GapKind::Missing, String::new()),
            Some((IntervalStatus::Incomplete, r, _)) => (GapKind::Incomplete, r.clone()),
            Some((_, _, src)) if src.starts_with("restored") => (GapKind::Restored, src.clone()),
            Some(_) => {
                t = grid.next(t);
                continue;
            }
        };
        let end = grid.next(t);
        match out.last_mut() {
            Some(g) if g.to == t && g.kind == kind && g.reasons == reasons => {
                g.to = end;
                g.to_local = fmt_local(grid, end);
                g.intervals += 1;
            }
            _ => out.push(GapRange {
                acd,
                from: t,
                to: end,
                from_local: fmt_local(grid, t),
                to_local: fmt_local(grid, end),
                intervals: 1,
                kind,
                reasons,
            }),
        }
        t = end;
    }
    Ok(out)
}

/// The default range for `cms gaps`: from the first interval ever recorded (or the
/// given date) to the interval being collected (or the end of the given date, but never
/// past the interval being collected, or on a server not collecting, the present).
pub fn gap_range(
    conn: &Connection,
    grid: &Grid,
    acd: u16,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Option<(i64, i64)>> {
    let first: Option<i64> = conn.query_row(
        "SELECT MIN(istart) FROM interval_status WHERE acd = ?1",
        [acd],
        |r| r.get(0),
    )?;
    let open = crate::store::open_interval(conn, acd)?;
    let last: Option<i64> = conn.query_row(
        "SELECT MAX(istart) FROM interval_status WHERE acd = ?1",
        [acd],
        |r| r.get(0),
    )?;
    let start = match from {
        Some(d) => grid.day_start(d),
        None => match first {
            Some(f) => f,
            None => return Ok(None),
        },
    };
    let end = match to {
        // Clamped to what can be known: nothing at or after the interval being collected
        // (or, on a server not collecting, the interval of the present) is missing yet.
        Some(d) => grid
            .day_start(d.succ_opt().expect("date in range"))
            .min(open.unwrap_or_else(|| grid.start_of(now_secs())))
            .max(start),
        None => match (open, last) {
            (Some(o), _) => o,
            (None, Some(l)) => grid.next(l),
            (None, None) => return Ok(None),
        },
    };
    Ok(Some((start, end)))
}

/// `1 interval`, `2 intervals`: a count and its word, singular or plural.
pub fn plural(n: impl Into<u64>, word: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The text of `cms gaps` for one ACD: the intervals missing or incomplete under their
/// count, then the ones restored from another server under theirs.
pub fn render_gaps(acd: u16, ranges: &[GapRange]) -> String {
    let (restored, bad): (Vec<&GapRange>, Vec<&GapRange>) =
        ranges.iter().partition(|g| g.kind == GapKind::Restored);
    let count = |v: &[&GapRange]| v.iter().map(|g| g.intervals).sum::<u32>();
    let line = |g: &GapRange| {
        format!(
            "  {} .. {}  {:>4} {:<9}  {:<10} {}\n",
            g.from_local,
            g.to_local,
            g.intervals,
            if g.intervals == 1 {
                "interval"
            } else {
                "intervals"
            },
            g.kind,
            g.reasons
        )
    };
    let mut o = if bad.is_empty() {
        format!("ACD {acd}: no missing or incomplete intervals\n")
    } else {
        format!(
            "ACD {acd}: {} missing or incomplete\n",
            plural(count(&bad), "interval")
        )
    };
    for g in &bad {
        o += &line(g);
    }
    if !restored.is_empty() {
        o += &format!(
            "ACD {acd}: {} restored from another server\n",
            plural(count(&restored), "interval")
        );
        for g in &restored {
            o += &line(g);
        }
    }
    o
}

/// One difference between two databases.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Diff {
    pub acd: u16,
    pub istart: i64,
    /// `h{table}` and the row key, or `status` for the interval as a whole.
    pub table: String,
    pub key: Vec<i64>,
    pub item: String,
    pub left: Option<i64>,
    pub right: Option<i64>,
}

/// One line of `cms compare` in words: `ACD 1 2026-11-02 10:15 interval: incomplete
/// here, complete there`, `ACD 1 2026-11-02 10:15 hsplit split 1 acdcalls: 3 here, no row
/// there`.
pub fn render_diff(grid: &Grid, d: &Diff) -> String {
    let when = grid.local(d.istart).format("%Y-%m-%d %H:%M");
    if d.table == "status" {
        let state = |v: Option<i64>| match v {
            None => GapKind::Missing.as_str(),
            Some(c) => IntervalStatus::of(c != 0).as_str(),
        };
        return format!(
            "ACD {} {when} interval: {} here, {} there",
            d.acd,
            state(d.left),
            state(d.right)
        );
    }
    let names = TABLES
        .iter()
        .find(|t| d.table.get(1..) == Some(t.name))
        .map(|t| t.keys)
        .unwrap_or(&[]);
    let key: Vec<String> = d
        .key
        .iter()
        .enumerate()
        .map(|(i, k)| match names.get(i) {
            Some(n) => format!("{n} {k}"),
            None => k.to_string(),
        })
        .collect();
    let value = |v: Option<i64>| v.map_or_else(|| "no row".to_string(), |v| v.to_string());
    format!(
        "ACD {} {when} {} {} {}: {} here, {} there",
        d.acd,
        d.table,
        key.join(" "),
        d.item,
        value(d.left),
        value(d.right)
    )
}

/// What `cms compare` found between this server's database and another (the peer's, or a
/// ground truth), over every interval of the chosen ACDs. [`Comparison::render`] is its
/// text; its JSON is [`Comparison::diffs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The two databases, as their paths are shown.
    pub mine: String,
    pub theirs: String,
    /// By ACD and interval: item differences of intervals complete in both, and status
    /// differences of intervals stored in both (with `strict`, also complete in one and
    /// missing in the other).
    pub diffs: Vec<Diff>,
}

impl Comparison {
    /// Compares `acds` in `mine` and `theirs`: [`compare`], and without `strict` also
    /// [`compare_status`] (complete here and incomplete there is a difference even when
    /// the items agree; `strict` already includes it).
    ///
    /// # Errors
    /// A database error.
    pub fn of(mine: &Store, theirs: &Store, acds: &[u16], strict: bool) -> rusqlite::Result<Self> {
        let mut diffs = vec![];
        for &a in acds {
            diffs.extend(compare(
                &mine.conn,
                &theirs.conn,
                a,
                i64::MIN,
                i64::MAX,
                strict,
            )?);
            if !strict {
                diffs.extend(compare_status(
                    &mine.conn,
                    &theirs.conn,
                    a,
                    i64::MIN,
                    i64::MAX,
                )?);
            }
        }
        diffs.sort_by_key(|d| (d.acd, d.istart));
        Ok(Comparison {
            mine: mine.path.display().to_string(),
            theirs: theirs.path.display().to_string(),
            diffs,
        })
    }

    /// The text of `cms compare`: one line saying the two agree, or the first 200
    /// differences in words ([`render_diff`]) and their count.
    pub fn render(&self, grid: &Grid) -> String {
        if self.diffs.is_empty() {
            return format!(
                "{} and {} agree on the status of every interval stored in both and on every \
                 item of those complete in both\n",
                self.mine, self.theirs
            );
        }
        let mut o = String::new();
        for d in self.diffs.iter().take(200) {
            o += &render_diff(grid, d);
            o.push('\n');
        }
        o + &plural(self.diffs.len() as u64, "difference") + "\n"
    }
}

/// Status of every interval of an ACD in `[from, to)`: istart -> (complete, checksum).
pub fn interval_states(
    conn: &Connection,
    acd: u16,
    from: i64,
    to: i64,
) -> rusqlite::Result<BTreeMap<i64, (bool, String)>> {
    let mut st = conn.prepare(
        "SELECT istart, status, checksum FROM interval_status
         WHERE acd = ?1 AND istart >= ?2 AND istart < ?3",
    )?;
    let rows = st.query_map(params![acd, from, to], |r| {
        let status: IntervalStatus = r.get(1)?;
        Ok((r.get(0)?, (status.is_complete(), r.get(2)?)))
    })?;
    rows.collect()
}

fn interval_rows(
    conn: &Connection,
    acd: u16,
    istart: i64,
    t: &crate::items::TableDef,
) -> rusqlite::Result<BTreeMap<Vec<i64>, Vec<i64>>> {
    let sql = format!(
        "SELECT {} FROM h{} WHERE acd = ?1 AND istart = ?2",
        select_columns(t),
        t.name
    );
    let mut st = conn.prepare_cached(&sql)?;
    let nk = t.keys.len();
    let rows = st.query_map(params![acd, istart], |r| {
        let mut key = vec![];
        for i in 0..nk {
            key.push(r.get::<_, i64>(1 + i)?);
        }
        let mut items = vec![];
        for i in 0..t.items.len() {
            items.push(r.get::<_, i64>(2 + nk + i)?);
        }
        Ok((key, items))
    })?;
    rows.collect()
}

/// Item-by-item differences of one interval between two databases.
pub fn diff_interval(
    a: &Connection,
    b: &Connection,
    acd: u16,
    istart: i64,
) -> rusqlite::Result<Vec<Diff>> {
    let mut out = vec![];
    for t in TABLES {
        let ra = interval_rows(a, acd, istart, t)?;
        let rb = interval_rows(b, acd, istart, t)?;
        let keys: std::collections::BTreeSet<&Vec<i64>> = ra.keys().chain(rb.keys()).collect();
        for k in keys {
            let va = ra.get(k);
            let vb = rb.get(k);
            for (i, (name, _)) in t.items.iter().enumerate() {
                let x = va.map(|v| v[i]).unwrap_or(0);
                let y = vb.map(|v| v[i]).unwrap_or(0);
                if x != y {
                    out.push(Diff {
                        acd,
                        istart,
                        table: format!("h{}", t.name),
                        key: k.clone(),
                        item: name.to_string(),
                        left: va.map(|v| v[i]),
                        right: vb.map(|v| v[i]),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Status differences of `[from, to)`: every interval stored in both databases that is
/// complete in one and incomplete in the other, as a `status` [`Diff`] (`left`/`right` 1
/// for complete, 0 for incomplete). Equal items do not make equal statuses: one server
/// may know that an interval is not exact where the other believes it is.
pub fn compare_status(
    a: &Connection,
    b: &Connection,
    acd: u16,
    from: i64,
    to: i64,
) -> rusqlite::Result<Vec<Diff>> {
    let sa = interval_states(a, acd, from, to)?;
    let sb = interval_states(b, acd, from, to)?;
    Ok(sa
        .iter()
        .filter_map(|(t, (ca, _))| {
            let (cb, _) = sb.get(t)?;
            (ca != cb).then(|| Diff {
                acd,
                istart: *t,
                table: "status".into(),
                key: vec![],
                item: "complete".into(),
                left: Some(*ca as i64),
                right: Some(*cb as i64),
            })
        })
        .collect())
}

/// Compares every interval of `[from, to)` that is complete in both databases; returns
/// the differences. With `strict`, an interval complete in one database and incomplete or
/// missing in the other is a `status` difference too (incomplete in both is not).
pub fn compare(
    a: &Connection,
    b: &Connection,
    acd: u16,
    from: i64,
    to: i64,
    strict: bool,
) -> rusqlite::Result<Vec<Diff>> {
    let sa = interval_states(a, acd, from, to)?;
    let sb = interval_states(b, acd, from, to)?;
    let mut out = vec![];
    let all: std::collections::BTreeSet<i64> = sa.keys().chain(sb.keys()).copied().collect();
    for t in all {
        match (sa.get(&t), sb.get(&t)) {
            (Some((true, ca)), Some((true, cb))) if ca != cb => {
                out.extend(diff_interval(a, b, acd, t)?);
            }
            (Some((true, _)), Some((true, _))) => {}
            (Some((false, _)), Some((false, _))) => {}
            (x, y) if strict => {
                let st = |v: Option<&(bool, String)>| v.map(|(c, _)| *c as i64);
                out.push(Diff {
                    acd,
                    istart: t,
                    table: "status".into(),
                    key: vec![],
                    item: "complete".into(),
                    left: st(x),
                    right: st(y),
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_their_word_in_the_singular_or_plural() {
        assert_eq!(plural(0u64, "interval"), "0 intervals");
        assert_eq!(plural(1u64, "interval"), "1 interval");
        assert_eq!(plural(2u32, "day"), "2 days");
        let g = GapRange {
            acd: 1,
            from: 0,
            to: 900,
            from_local: "a".into(),
            to_local: "b".into(),
            intervals: 1,
            kind: GapKind::Missing,
            reasons: String::new(),
        };
        assert_eq!(
            render_gaps(1, &[g]),
            "ACD 1: 1 interval missing or incomplete\n  a .. b     1 interval   missing    \n"
        );
    }
}
