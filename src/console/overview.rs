//! The overview page: per ACD the link state, the interval being collected and the last
//! complete one, the checkpoint's age and today's totals; the peer's state when a peer
//! is configured.
//!
//! The links, intervals and checkpoint are `cms status`'s ([`crate::report::status`]),
//! the peer is `cms status`'s peer section ([`crate::peer::status::peer_status`]); this
//! page adds only today's totals (the skills' calls of the local day so far, and its
//! intervals by status, through `store::status`).

use super::html::{esc, num, page, Nav};
use super::Result;
use crate::config::Config;
use crate::domain::LinkState;
use crate::interval::Grid;
use crate::store::Store;
use rusqlite::params;
use std::fmt::Write as _;

/// Today's figures of one ACD (the local day of `now`, up to now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Today {
    pub date: chrono::NaiveDate,
    /// Intervals of the day stored here, and of those the complete ones.
    pub intervals: u64,
    pub complete: i64,
    /// The skills' `callsoffered`, `acdcalls` and `abncalls` summed over the day's
    /// intervals stored so far.
    pub offered: i64,
    pub answered: i64,
    pub abandoned: i64,
}

/// Today's figures of `acd` at UTC `now`.
///
/// # Errors
/// A database error.
pub fn today(store: &Store, grid: &Grid, acd: u16, now: i64) -> Result<Today> {
    let db = super::db_error(store);
    let date = grid.local_date(grid.start_of(now));
    let (lo, hi) = super::day_bounds(grid, date);
    let (_, intervals) = crate::store::status::totals(&store.conn, acd, lo, hi).map_err(&db)?;
    let complete = crate::store::status::complete_count(&store.conn, acd, lo, hi).map_err(&db)?;
    let (offered, answered, abandoned) = store
        .conn
        .query_row(
            "SELECT COALESCE(SUM(callsoffered), 0), COALESCE(SUM(acdcalls), 0),
                    COALESCE(SUM(abncalls), 0)
             FROM hsplit WHERE acd = ?1 AND istart >= ?2 AND istart < ?3",
            params![acd, lo, hi],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(&db)?;
    Ok(Today {
        date,
        intervals,
        complete,
        offered,
        answered,
        abandoned,
    })
}

/// The CSS class of a link state: all is well, on its way, or down.
fn link_class(s: LinkState) -> &'static str {
    match s {
        LinkState::DataTransfer => "ok",
        LinkState::Connecting | LinkState::Handshake => "warn",
        _ => "bad",
    }
}

/// The overview page at UTC `now`.
///
/// # Errors
/// A database error.
pub fn render(cfg: &Config, store: &Store, now: i64) -> Result<String> {
    let grid = cfg.grid();
    let acds: Vec<u16> = cfg.acds.iter().map(|a| a.acd).collect();
    let st = crate::report::status(store, &grid, &acds, &cfg.server_id)?;
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<p>Server <strong>{}</strong>, database <code>{}</code> ({:.1} MB), \
         {}-minute intervals in {}.</p>",
        esc(st.server_id.as_deref().unwrap_or(&st.configured_server_id)),
        esc(&st.database),
        st.database_bytes as f64 / 1e6,
        cfg.interval_minutes,
        esc(cfg.time_zone.name()),
    );
    for u in &st.unfinished_restores {
        let _ = writeln!(
            b,
            "<p class=\"error\" role=\"alert\">The restore of <code>{}</code> (server {}) \
             started {} did not finish: {} of its plan of {} intervals not written. Run \
             <code>cms restore {}</code> again.</p>",
            esc(&u.file),
            esc(&u.source_server),
            esc(&u.started_at),
            u.planned - u.written,
            u.planned,
            esc(&u.file)
        );
    }
    b += "<table class=\"data\">\n<caption>The links to the switch and where collection \
          stands, per ACD</caption>\n<thead><tr><th scope=\"col\">ACD</th>\
          <th scope=\"col\">Link</th><th scope=\"col\">Current interval</th>\
          <th scope=\"col\">Last complete interval</th><th scope=\"col\">Checkpoint</th>\
          <th scope=\"col\">Epoch / seq</th></tr></thead>\n<tbody>\n";
    for a in &st.acds {
        let since = a
            .link_since
            .as_deref()
            .map(|s| format!(" since {}", esc(s)))
            .unwrap_or_default();
        let peer = if a.peer.is_empty() {
            String::new()
        } else {
            format!(" ({})", esc(&a.peer))
        };
        let detail = if a.detail.is_empty() {
            String::new()
        } else {
            format!(
                "<br><span class=\"detail\">last error: {}</span>",
                esc(&a.detail)
            )
        };
        let _ = writeln!(
            b,
            "<tr><th scope=\"row\">{acd}</th><td><span class=\"state {cls}\">{state}</span>{since}{peer}{detail}</td>\
             <td>{cur}</td><td>{last}</td><td>{ck}</td><td>{} / {}</td></tr>",
            a.epoch,
            a.last_seq,
            acd = a.acd,
            cls = link_class(a.link_state),
            state = esc(a.link_state.as_str()),
            cur = esc(a.current_interval.as_deref().unwrap_or("none")),
            last = esc(a.last_complete_interval.as_deref().unwrap_or("none")),
            ck = a
                .checkpoint_age_seconds
                .map(|s| format!("{s} s ago"))
                .unwrap_or_else(|| "never".into()),
        );
    }
    b += "</tbody>\n</table>\n";

    let mut rows = String::new();
    let mut date = None;
    for &acd in &acds {
        let t = today(store, &grid, acd, now)?;
        date = Some(t.date);
        let _ = writeln!(
            rows,
            "<tr><th scope=\"row\">{acd}</th><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td><a href=\"/coverage?acd={acd}&amp;from={d}&amp;to={d}\">coverage</a>, \
             <a href=\"/report?acd={acd}&amp;date={d}\">report</a></td></tr>",
            t.intervals,
            t.complete,
            num(t.offered),
            num(t.answered),
            num(t.abandoned),
            d = t.date,
        );
    }
    if let Some(d) = date {
        let _ = writeln!(
            b,
            "<table class=\"data\" id=\"today\">\n<caption>Today, {d} ({}): every skill's \
             calls so far</caption>\n<thead><tr><th scope=\"col\">ACD</th>\
             <th scope=\"col\">Intervals stored</th><th scope=\"col\">of them complete</th>\
             <th scope=\"col\">Offered</th><th scope=\"col\">Answered</th>\
             <th scope=\"col\">Abandoned</th><th scope=\"col\">Pages</th></tr></thead>\n\
             <tbody>\n{rows}</tbody>\n</table>",
            esc(cfg.time_zone.name())
        );
    }

    if let Some(pc) = &cfg.peer {
        let p = crate::peer::status::peer_status(&store.conn, &pc.address)
            .map_err(super::db_error(store))?;
        b += &peer_table(&p);
    }
    Ok(page("Overview", &cfg.server_id, Nav::Overview, &b))
}

/// The peer's state as `cms status` shows it, as a table (shared with the coverage page).
pub fn peer_table(p: &crate::peer::status::PeerStatus) -> String {
    let s = &p.stored;
    let cls = match p.state.as_str() {
        "connected" => "ok",
        _ => "bad",
    };
    let who = if s.peer_server.is_empty() {
        String::new()
    } else {
        format!(" ({})", esc(&s.peer_server))
    };
    let reason = if s.reason.is_empty() {
        String::new()
    } else {
        format!(": {}", esc(&s.reason))
    };
    let last = match p.last_sync_age_seconds {
        Some(age) => format!(
            "{} ({age} s ago)",
            chrono::DateTime::from_timestamp(s.last_sync, 0)
                .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_default()
        ),
        None => "no sync completed yet".into(),
    };
    let lacks = if s.peer_lacks > 0 {
        format!("{} (from {})", s.peer_lacks, esc(&s.peer_lacks_from))
    } else {
        "0".into()
    };
    format!(
        "<table class=\"data\" id=\"peer\">\n<caption>The peer server (peer sync, \
         docs/peer-sync.md)</caption>\n<tbody>\n\
         <tr><th scope=\"row\">Peer</th><td>{addr}{who}: <span class=\"state {cls}\">{state}</span>{reason}</td></tr>\n\
         <tr><th scope=\"row\">Last sync</th><td>{last}</td></tr>\n\
         <tr><th scope=\"row\">Intervals healed from the peer</th><td class=\"n\">{}</td></tr>\n\
         <tr><th scope=\"row\">Pending (the peer has them not complete either)</th><td class=\"n\">{}</td></tr>\n\
         <tr><th scope=\"row\">Conflicts (complete on both, different contents)</th><td class=\"n\">{}</td></tr>\n\
         <tr><th scope=\"row\">Complete here, lacking on the peer</th><td>{lacks}</td></tr>\n\
         </tbody>\n</table>\n",
        s.healed,
        s.pending,
        s.conflicts,
        addr = esc(&p.address),
        state = esc(&p.state),
    )
}
