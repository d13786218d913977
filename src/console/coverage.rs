//! The coverage picture: for one ACD and a range of local days, a grid of days by
//! intervals, each cell complete, incomplete (with its reasons), missing or restored.
//!
//! The statuses are `cms gaps`'s ([`crate::report::gaps`]) over the range, up to what can
//! be known (the interval being collected; nothing after it is missing yet), spread into
//! one cell per interval. The grid's columns are the local clock's interval slots (96 of
//! 15 minutes): on the day DST ends the repeated hour's slots hold two cells each (100
//! intervals), on the day it starts the skipped hour's slots hold none (92), so every
//! column keeps its time of day. Every cell says its local time, zone, status and
//! reasons in a `title` (hover) and in text a screen reader reads; the ranges follow in
//! a table, in the words of `cms gaps`.
//!
//! With a peer configured, the peer's grid follows this server's, column for column, as
//! this server's last sync saw it ([`peer_coverage`], from the view the sync stored:
//! `store::peer::PeerView`): complete, incomplete (the peer's reasons are not sent),
//! missing, or not known since the sync; then the peer's state and totals.

use super::html::{acd_select, esc, legend_item, page, Nav};
use super::{ConsoleError, Params, Result, MAX_DAYS};
use crate::config::Config;
use crate::domain::GapKind;
use crate::interval::Grid;
use crate::store::Store;
use chrono::{NaiveDate, Timelike};
use std::collections::HashMap;
use std::fmt::Write as _;

/// What one cell shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CellKind {
    Complete,
    Incomplete,
    Missing,
    /// Complete, restored from another server.
    Restored,
    /// The interval being collected now.
    Collecting,
    /// After the interval being collected: nothing to know yet.
    Future,
    /// The peer's: a day only the peer holds, not fetched (only its counts are known).
    Unknown,
}

impl CellKind {
    /// The word shown and put in the cell's `data-kind` (the browser test reads it).
    pub const fn as_str(self) -> &'static str {
        match self {
            CellKind::Complete => "complete",
            CellKind::Incomplete => "incomplete",
            CellKind::Missing => "missing",
            CellKind::Restored => "restored",
            CellKind::Collecting => "collecting",
            CellKind::Future => "future",
            CellKind::Unknown => "unknown",
        }
    }
}

/// One interval of the grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// UTC start and end, seconds.
    pub istart: i64,
    pub end: i64,
    pub kind: CellKind,
    /// The reasons of an incomplete interval, the source of a restored one, else empty.
    pub detail: String,
}

/// One local day of the grid.
#[derive(Debug, Clone)]
pub struct Day {
    pub date: NaiveDate,
    /// The day's intervals in time order (92, 96 or 100 of 15 minutes).
    pub cells: Vec<Cell>,
}

/// The grid of one ACD over `[from, to]` (local dates), with `cms gaps`'s ranges.
#[derive(Debug, Clone)]
pub struct Coverage {
    pub acd: u16,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: Vec<Day>,
    /// The missing, incomplete and restored ranges, as `cms gaps` lists them.
    pub ranges: Vec<crate::report::GapRange>,
}

/// The coverage of `acd` over local days `[from, to]`, as known at UTC `now`.
///
/// # Errors
/// A database error.
pub fn coverage(
    store: &Store,
    grid: &Grid,
    acd: u16,
    from: NaiveDate,
    to: NaiveDate,
    now: i64,
) -> Result<Coverage> {
    let (lo, _) = super::day_bounds(grid, from);
    let (_, hi) = super::day_bounds(grid, to);
    let open = crate::store::open_interval(&store.conn, acd).map_err(super::db_error(store))?;
    let m = super::marked(store, grid, acd, (lo, hi), now)?;
    let known = m.known;
    let marked: HashMap<i64, (CellKind, &str)> = m
        .by_interval
        .iter()
        .map(|(t, (k, r))| {
            let kind = match k {
                GapKind::Incomplete => CellKind::Incomplete,
                GapKind::Restored => CellKind::Restored,
                _ => CellKind::Missing,
            };
            (*t, (kind, r.as_str()))
        })
        .collect();
    let mut days = vec![];
    let mut d = from;
    while d <= to {
        let end = grid.day_start(d.succ_opt().expect("date in range"));
        let mut t = grid.day_start(d);
        let mut cells = vec![];
        while t < end {
            let next = grid.next(t);
            let (kind, detail) = if Some(t) == open {
                (CellKind::Collecting, "")
            } else if t >= known {
                (CellKind::Future, "")
            } else {
                marked.get(&t).copied().unwrap_or((CellKind::Complete, ""))
            };
            cells.push(Cell {
                istart: t,
                end: next,
                kind,
                detail: detail.to_owned(),
            });
            t = next;
        }
        days.push(Day { date: d, cells });
        d = d.succ_opt().expect("date in range");
    }
    Ok(Coverage {
        acd,
        from,
        to,
        days,
        ranges: m.ranges,
    })
}

/// The peer's grid over the days of `cov` (this server's), from `view`, what this
/// server's last sync saw of the peer: a day the sync found equal to this server's (or
/// fetched whole) has this server's states (a restored interval is complete there); a day
/// it drilled into has the peer's own list; a day the peer has nothing of is missing. An
/// interval that had not ended at the sync is "future": the sync could not know it.
pub fn peer_coverage(cov: &Coverage, view: &crate::store::peer::PeerView) -> Coverage {
    use crate::store::peer::PeerDay;
    let days = cov
        .days
        .iter()
        .map(|day| {
            let dn = crate::peer::digest::day_number(&day.date.to_string());
            let listed: HashMap<i64, bool> = match view.days.get(&dn) {
                Some(PeerDay::Listed(rows)) => rows.iter().copied().collect(),
                _ => HashMap::new(),
            };
            let cells = day
                .cells
                .iter()
                .map(|c| {
                    let kind = if c.end > view.at {
                        CellKind::Future
                    } else {
                        match view.days.get(&dn) {
                            None => CellKind::Missing,
                            Some(PeerDay::Held { .. }) => CellKind::Unknown,
                            Some(PeerDay::Listed(_)) => match listed.get(&c.istart) {
                                Some(true) => CellKind::Complete,
                                Some(false) => CellKind::Incomplete,
                                None => CellKind::Missing,
                            },
                            Some(PeerDay::Same) => match c.kind {
                                CellKind::Complete | CellKind::Restored => CellKind::Complete,
                                CellKind::Incomplete => CellKind::Incomplete,
                                _ => CellKind::Missing,
                            },
                        }
                    };
                    Cell {
                        istart: c.istart,
                        end: c.end,
                        kind,
                        detail: String::new(),
                    }
                })
                .collect();
            Day {
                date: day.date,
                cells,
            }
        })
        .collect();
    Coverage {
        acd: cov.acd,
        from: cov.from,
        to: cov.to,
        days,
        ranges: vec![],
    }
}

/// The page's range from its parameters: `from` and `to` (local dates, inclusive), by
/// default the week up to the last day with data.
///
/// # Errors
/// A bad date, `from` after `to`, or more than [`MAX_DAYS`] days.
pub fn range(
    p: &Params,
    store: &Store,
    grid: &Grid,
    acd: u16,
    now: i64,
) -> Result<(NaiveDate, NaiveDate)> {
    let from = p.date("from")?;
    let to = p.date("to")?;
    let (from, to) = match (from, to) {
        (Some(f), Some(t)) => (f, t),
        (Some(f), None) => (f, f + chrono::Days::new(6)),
        (None, Some(t)) => (t - chrono::Days::new(6), t),
        (None, None) => {
            let t = super::latest_date(&store.conn, grid, acd, now)?;
            (t - chrono::Days::new(6), t)
        }
    };
    if from > to {
        return Err(ConsoleError::BadRequest(format!(
            "from {from} is after to {to}"
        )));
    }
    let n = (to - from).num_days() + 1;
    if n > MAX_DAYS {
        return Err(ConsoleError::BadRequest(format!(
            "{from} to {to} is {n} days; one page shows at most {MAX_DAYS}"
        )));
    }
    Ok((from, to))
}

/// The local slot (column) of an interval: minutes since local midnight over the length.
fn slot(grid: &Grid, istart: i64) -> usize {
    let l = grid.local(istart);
    ((l.hour() * 60 + l.minute()) / grid.minutes) as usize
}

/// The words of a cell: `08:15–08:30 EST incomplete: replay_gap`.
fn cell_words(grid: &Grid, c: &Cell) -> String {
    let a = grid.local(c.istart);
    let b = grid.local(c.end);
    let mut w = format!(
        "{}–{} {} {}",
        a.format("%H:%M"),
        b.format("%H:%M"),
        a.format("%Z"),
        c.kind.as_str()
    );
    match c.kind {
        CellKind::Incomplete if !c.detail.is_empty() => w += &format!(": {}", c.detail),
        CellKind::Restored => w += &format!(" ({})", c.detail),
        _ => {}
    }
    w
}

/// The grid as an HTML table: a row per day, a column per local slot.
pub fn grid_table(grid: &Grid, cov: &Coverage, server: &str) -> String {
    let slots = (24 * 60 / grid.minutes) as usize;
    let per_hour = (60 / grid.minutes) as usize;
    let mut o = String::with_capacity(cov.days.len() * slots * 160);
    let _ = write!(
        o,
        "<div class=\"grid-wrap\"><table class=\"coverage\" data-server=\"{s}\" data-acd=\"{}\">\n\
         <caption>Coverage of ACD {} on {s}, {} to {}: one row per day, one cell per \
         {}-minute interval (local time, {})</caption>\n<thead><tr><th scope=\"col\">Day</th>",
        cov.acd,
        cov.acd,
        cov.from,
        cov.to,
        grid.minutes,
        esc(grid.tz.name()),
        s = esc(server),
    );
    for h in 0..24 {
        let _ = write!(
            o,
            "<th scope=\"colgroup\" colspan=\"{per_hour}\" class=\"hour\">{h:02}</th>"
        );
    }
    o += "<th scope=\"col\">Summary</th></tr></thead>\n<tbody>\n";
    let mut by_slot: Vec<Vec<&Cell>> = vec![vec![]; slots];
    for day in &cov.days {
        for v in by_slot.iter_mut() {
            v.clear();
        }
        for c in &day.cells {
            by_slot[slot(grid, c.istart).min(slots - 1)].push(c);
        }
        let n = day.cells.len();
        let dst = if n as i64 * grid.len_secs() != 86_400 {
            format!(" <span class=\"dst\">DST: {n} intervals</span>")
        } else {
            String::new()
        };
        let _ = write!(
            o,
            "<tr><th scope=\"row\" class=\"day\">{}{dst}</th>",
            day.date
        );
        for (i, cells) in by_slot.iter().enumerate() {
            if cells.is_empty() {
                let _ = write!(
                    o,
                    "<td class=\"slot none\" title=\"{:02}:{:02}: no such local time (DST)\">\
                     <span class=\"sr\">no such local time</span></td>",
                    i * grid.minutes as usize / 60,
                    i * grid.minutes as usize % 60
                );
                continue;
            }
            let cls = if cells.len() > 1 { "slot two" } else { "slot" };
            let _ = write!(o, "<td class=\"{cls}\">");
            for c in cells {
                let words = esc(&cell_words(grid, c));
                let _ = write!(
                    o,
                    "<span class=\"iv k-{k}\" data-istart=\"{}\" data-kind=\"{k}\" \
                     title=\"{words}\"><span class=\"sr\">{words}</span></span>",
                    c.istart,
                    k = c.kind.as_str(),
                );
            }
            o += "</td>";
        }
        let mut counts = [0usize; 7];
        for c in &day.cells {
            counts[c.kind as usize] += 1;
        }
        let mut parts = vec![];
        for k in [
            CellKind::Complete,
            CellKind::Restored,
            CellKind::Incomplete,
            CellKind::Missing,
        ] {
            if counts[k as usize] > 0 {
                parts.push(format!("{} {}", counts[k as usize], k.as_str()));
            }
        }
        if parts.is_empty() {
            parts.push("not yet collected".into());
        }
        let _ = writeln!(o, "<td class=\"sum\">{}</td></tr>", parts.join(", "));
    }
    o += "</tbody>\n</table></div>\n";
    o
}

/// The ranges of `cms gaps` as a table.
fn ranges_table(cov: &Coverage) -> String {
    if cov.ranges.is_empty() {
        return format!(
            "<p id=\"ranges\">No interval of ACD {} from {} to {} is missing, incomplete or \
             restored.</p>\n",
            cov.acd, cov.from, cov.to
        );
    }
    let mut o = format!(
        "<table class=\"data\" id=\"ranges\">\n<caption>Missing, incomplete and restored \
         intervals of ACD {}, {} to {} (as <code>cms gaps</code> lists them)</caption>\n\
         <thead><tr><th scope=\"col\">From</th><th scope=\"col\">To</th>\
         <th scope=\"col\">Intervals</th><th scope=\"col\">Kind</th>\
         <th scope=\"col\">Reasons or source</th></tr></thead>\n<tbody>\n",
        cov.acd, cov.from, cov.to
    );
    for g in &cov.ranges {
        let _ = writeln!(
            o,
            "<tr class=\"k-{k}\"><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{k}</td>\
             <td>{}</td></tr>",
            esc(&g.from_local),
            esc(&g.to_local),
            g.intervals,
            esc(&g.reasons),
            k = esc(g.kind.as_str()),
        );
    }
    o + "</tbody>\n</table>\n"
}

/// The coverage page for the request `p` at UTC `now`.
///
/// # Errors
/// A bad parameter ([`ConsoleError::BadRequest`]) or a database error.
pub fn render(cfg: &Config, store: &Store, p: &Params, now: i64) -> Result<String> {
    let grid = cfg.grid();
    let acd = p.acd(cfg)?;
    let (from, to) = range(p, store, &grid, acd, now)?;
    let cov = coverage(store, &grid, acd, from, to, now)?;
    let acds: Vec<u16> = cfg.acds.iter().map(|a| a.acd).collect();
    let mut b = format!(
        "<form class=\"pick\" method=\"get\" action=\"/coverage\">{}\n\
         <label for=\"from\">From</label> <input id=\"from\" name=\"from\" type=\"date\" value=\"{from}\">\n\
         <label for=\"to\">To</label> <input id=\"to\" name=\"to\" type=\"date\" value=\"{to}\">\n\
         <button type=\"submit\">Show</button></form>\n",
        acd_select(&acds, acd)
    );
    b += "<ul class=\"legend\" aria-label=\"What the cells mean\">";
    for (k, w) in [
        (
            CellKind::Complete,
            "complete: exactly what the switch's stream implies",
        ),
        (
            CellKind::Restored,
            "restored: complete, merged from the other server",
        ),
        (
            CellKind::Incomplete,
            "incomplete: stored but not exact (reason on the cell)",
        ),
        (CellKind::Missing, "missing: nothing collected or restored"),
        (CellKind::Collecting, "being collected"),
        (
            CellKind::Future,
            "not yet (for the peer: not ended at the last sync)",
        ),
        (
            CellKind::Unknown,
            "the peer's, unknown: a day only the peer holds, not fetched",
        ),
    ] {
        b += &legend_item(&format!("k-{}", k.as_str()), w);
    }
    b += &legend_item("none", "no such local time (DST)");
    b += "</ul>\n";
    let (mut bad, mut restored) = (0u32, 0u32);
    for g in &cov.ranges {
        if g.kind == GapKind::Restored {
            restored += g.intervals;
        } else {
            bad += g.intervals;
        }
    }
    let _ = writeln!(
        b,
        "<p id=\"coverage-summary\">ACD {acd}, {from} to {to}: {} missing or incomplete, {} \
         restored from another server.</p>",
        crate::report::plural(bad, "interval"),
        crate::report::plural(restored, "interval")
    );
    let server = store
        .setting("server_id")?
        .unwrap_or_else(|| cfg.server_id.clone());
    match &cfg.peer {
        Some(pc) => {
            let peer = crate::peer::status::peer_status(&store.conn, &pc.address)
                .map_err(super::db_error(store))?;
            let day = |d: NaiveDate| crate::peer::digest::day_number(&d.to_string());
            let view = crate::store::peer::load_view(&store.conn, acd, (day(from), day(to)))
                .map_err(super::db_error(store))?;
            let name = if peer.stored.peer_server.is_empty() {
                pc.address.clone()
            } else {
                peer.stored.peer_server.clone()
            };
            let _ = write!(
                b,
                "<section aria-labelledby=\"this-server\"><h2 id=\"this-server\">This \
                 server, {}</h2>\n{}</section>\n\
                 <section aria-labelledby=\"peer-server\"><h2 id=\"peer-server\">The peer, \
                 {}</h2>\n",
                esc(&server),
                grid_table(&grid, &cov, &server),
                esc(&name),
            );
            match view {
                Some(v) => {
                    let at = grid.local(v.at).format("%Y-%m-%d %H:%M:%S %Z");
                    let _ = write!(
                        b,
                        "<p id=\"peer-view\" data-at=\"{}\">As this server's last sync saw \
                         it, at {at}. Every interval missing or incomplete here and complete \
                         there is fetched by the next sync; the peer fetches the other way \
                         round.</p>\n{}",
                        v.at,
                        grid_table(&grid, &peer_coverage(&cov, &v), &name)
                    );
                }
                None => {
                    b += "<p id=\"peer-view\">No sync has seen the peer's intervals of this \
                          ACD yet.</p>\n";
                }
            }
            b += &super::overview::peer_table(&peer);
            b += "</section>\n";
        }
        None => b += &grid_table(&grid, &cov, &server),
    }
    b += &ranges_table(&cov);
    Ok(page(
        &format!("Coverage of ACD {acd}"),
        &cfg.server_id,
        Nav::Coverage,
        &b,
    ))
}
