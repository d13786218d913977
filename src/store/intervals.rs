//! Writing closed intervals, their status and the collector checkpoint, in one short
//! transaction per commit.

use super::{interval_checksum, sql_err, Result, Store};
use crate::agg::ClosedInterval;
use crate::domain::{IntervalStatus, LinkState, Reason};
use crate::interval::Grid;
use crate::items::TABLES;
use crate::proto::{SkillDef, TrunkGroupDef, VdnDef};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, Transaction};

/// The collector's durable position, as stored.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub epoch: u64,
    pub seq: u64,
    pub ts: i64,
    pub open_istart: i64,
    pub state: Vec<u8>,
    pub saved_at: i64,
}

/// What one commit makes durable together.
pub struct Commit<'a> {
    pub acd: u16,
    pub grid: &'a Grid,
    pub closed: &'a [ClosedInterval],
    pub checkpoint: Option<Checkpoint>,
    /// Translations to record as ACD administration data.
    pub admin: Option<(Vec<SkillDef>, Vec<VdnDef>, Vec<TrunkGroupDef>)>,
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Insert statement for an interval table.
pub(crate) fn insert_sql(table: &str, t: &crate::items::TableDef) -> String {
    insert_rows_sql(table, t, 1)
}

/// Insert statement for `rows` rows of an interval table at once, each row's parameters
/// `acd, keys..., istart, row_date, starttime, intrvl, items...` after the previous row's.
pub(crate) fn insert_rows_sql(table: &str, t: &crate::items::TableDef, rows: usize) -> String {
    let mut cols: Vec<&str> = vec!["acd"];
    cols.extend(t.keys);
    cols.extend(["istart", "row_date", "starttime", "intrvl"]);
    cols.extend(t.items.iter().map(|(n, _)| *n));
    let row = format!("({})", vec!["?"; cols.len()].join(", "));
    format!(
        "INSERT INTO {table} ({}) VALUES {}",
        cols.join(", "),
        vec![row; rows].join(", ")
    )
}

impl Store {
    /// Makes closed intervals, the checkpoint and translations durable in one
    /// transaction. A complete interval already stored (restored from the peer) is never
    /// replaced by an incomplete one.
    ///
    /// A commit that carries a checkpoint may be acknowledged to the switch once this
    /// returns (`collect` sends the ACK then), and the switch forgets what is
    /// acknowledged: that commit runs with `synchronous = FULL`, so it is on disk (the
    /// WAL synced), not only in the page cache, when this returns (proto/acd-link.md,
    /// "Heartbeats, ACK and the replay buffer"). A commit without a checkpoint keeps the
    /// connection's `NORMAL`.
    ///
    /// # Errors
    /// Any database error; nothing of the commit is applied then.
    pub fn commit(&mut self, c: Commit<'_>) -> Result<()> {
        if c.checkpoint.is_none() {
            return self.commit_tx(c);
        }
        self.set_synchronous("FULL")?;
        let r = self.commit_tx(c);
        let back = self.set_synchronous("NORMAL");
        r.and(back)
    }

    /// The same transaction as [`Store::commit`] but not synced (`synchronous = NORMAL`):
    /// for a commit that is **not** acknowledged, such as the collector's flush of closed
    /// intervals during a fast replay (memory stays bounded without an fsync per flush).
    /// It survives a crash of the process; a power cut may roll it back (never half of
    /// it), and the collector then resumes from the last synced checkpoint, which the
    /// switch still holds because only synced checkpoints are acknowledged.
    ///
    /// # Errors
    /// Any database error; nothing of the commit is applied then.
    pub fn commit_unsynced(&mut self, c: Commit<'_>) -> Result<()> {
        self.commit_tx(c)
    }

    fn commit_tx(&mut self, c: Commit<'_>) -> Result<()> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| sql_err(&path, e))?;
        for ci in c.closed {
            write_interval(&tx, c.acd, c.grid, ci, "collected").map_err(|e| sql_err(&path, e))?;
        }
        if let Some((skills, vdns, tkgrps)) = &c.admin {
            write_admin(&tx, c.acd, skills, vdns, tkgrps).map_err(|e| sql_err(&path, e))?;
        }
        if let Some(ck) = &c.checkpoint {
            tx.execute(
                "INSERT INTO checkpoint (acd, epoch, seq, ts, open_istart, state, saved_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (acd) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq,
                   ts = excluded.ts, open_istart = excluded.open_istart, state = excluded.state,
                   saved_at = excluded.saved_at",
                params![
                    c.acd,
                    ck.epoch as i64,
                    ck.seq as i64,
                    ck.ts,
                    ck.open_istart,
                    ck.state,
                    ck.saved_at
                ],
            )
            .map_err(|e| sql_err(&path, e))?;
        }
        tx.commit().map_err(|e| sql_err(&path, e))
    }

    pub fn load_checkpoint(&self, acd: u16) -> Result<Option<Checkpoint>> {
        self.conn
            .query_row(
                "SELECT epoch, seq, ts, open_istart, state, saved_at FROM checkpoint WHERE acd = ?1",
                [acd],
                |r| {
                    Ok(Checkpoint {
                        epoch: r.get::<_, i64>(0)? as u64,
                        seq: r.get::<_, i64>(1)? as u64,
                        ts: r.get(2)?,
                        open_istart: r.get(3)?,
                        state: r.get(4)?,
                        saved_at: r.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(|e| sql_err(&self.path, e))
    }

    /// Records the link state for `cms status`.
    pub fn set_link_state(
        &self,
        acd: u16,
        state: LinkState,
        peer: &str,
        detail: &str,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO link_state (acd, state, since, peer, detail) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (acd) DO UPDATE SET
                   since = CASE WHEN link_state.state = excluded.state THEN link_state.since
                                ELSE excluded.since END,
                   state = excluded.state, peer = excluded.peer, detail = excluded.detail",
                params![acd, state, now_secs(), peer, detail],
            )
            .map(|_| ())
            .map_err(|e| sql_err(&self.path, e))
    }
}

/// Replaces one interval's rows and status. Returns false when it kept a complete
/// interval instead of an incomplete one.
pub(crate) fn write_interval(
    tx: &Transaction<'_>,
    acd: u16,
    grid: &Grid,
    ci: &ClosedInterval,
    source: &str,
) -> rusqlite::Result<bool> {
    let existing: Option<IntervalStatus> = tx
        .query_row(
            "SELECT status FROM interval_status WHERE acd = ?1 AND istart = ?2",
            params![acd, ci.istart],
            |r| r.get(0),
        )
        .optional()?;
    if existing == Some(IntervalStatus::Complete) && !ci.complete() {
        return Ok(false);
    }
    let (row_date, starttime) = grid.labels(ci.istart);
    for (ti, t) in TABLES.iter().enumerate() {
        let table = t.interval_table();
        tx.prepare_cached(&format!(
            "DELETE FROM {table} WHERE acd = ?1 AND istart = ?2"
        ))?
        .execute(params![acd, ci.istart])?;
        let mut ins = tx.prepare_cached(&insert_sql(&table, t))?;
        for (keys, items) in &ci.rows[ti] {
            let mut vals: Vec<Value> = Vec::with_capacity(6 + keys.len() + items.len());
            vals.push(Value::Integer(acd as i64));
            vals.extend(keys.iter().map(|k| Value::Integer(*k)));
            vals.push(Value::Integer(ci.istart));
            vals.push(Value::Text(row_date.clone()));
            vals.push(Value::Integer(starttime));
            vals.push(Value::Integer(ci.intrvl as i64));
            vals.extend(items.iter().map(|v| Value::Integer(*v)));
            ins.execute(params_from_iter(vals))?;
        }
    }
    let (rows, sum) = interval_checksum(tx, acd, ci.istart)?;
    let reasons = Reason::join(&ci.reasons);
    super::status::upsert(
        tx,
        &super::status::StatusRow {
            acd,
            istart: ci.istart,
            intrvl: ci.intrvl,
            row_date: &row_date,
            starttime,
            status: IntervalStatus::of(ci.complete()),
            reasons: &reasons,
            epoch: ci.epoch as i64,
            first_seq: ci.first_seq as i64,
            last_seq: ci.last_seq as i64,
            source,
            row_count: rows,
            checksum: &sum,
            updated_at: now_secs(),
        },
    )?;
    Ok(true)
}

pub(crate) fn write_admin(
    tx: &Transaction<'_>,
    acd: u16,
    skills: &[SkillDef],
    vdns: &[VdnDef],
    tkgrps: &[TrunkGroupDef],
) -> rusqlite::Result<()> {
    let mut s = tx.prepare_cached(
        "INSERT OR REPLACE INTO skill_def (acd, skill, service_level, periods, name)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for d in skills {
        let periods: Vec<String> = d.periods.iter().map(|p| p.to_string()).collect();
        s.execute(params![
            acd,
            d.skill,
            d.service_level,
            periods.join(","),
            d.name
        ])?;
    }
    let mut v = tx.prepare_cached(
        "INSERT OR REPLACE INTO vdn_def (acd, vdn, service_level, name) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for d in vdns {
        v.execute(params![acd, d.vdn, d.service_level, d.name])?;
    }
    let mut t = tx.prepare_cached(
        "INSERT OR REPLACE INTO tkgrp_def (acd, tkgrp, trunks, name) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for d in tkgrps {
        t.execute(params![acd, d.tkgrp, d.trunks, d.name])?;
    }
    Ok(())
}
