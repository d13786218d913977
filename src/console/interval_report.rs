//! The interval report page: for one skill of one ACD and one local day, per interval
//! the calls offered, answered and abandoned and the service level, as an SVG chart and
//! the table under it. Incomplete and missing intervals are marked in both (a hatched
//! band in the chart, a marked row with the reasons in the table).
//!
//! The rows are the skill's `hsplit` rows, read here in the store's style (one
//! statement; `cms report`'s read queries were not on `main` when this was written).
//! The statuses are `cms gaps`'s ([`crate::report::gaps`]). Service level is
//! `100 × acceptable / callsoffered` (abandons, outflows and dequeued calls count
//! against it), none where nothing was offered.

use super::html::{acd_select, esc, num, page, Nav};
use super::{Params, Result};
use crate::config::Config;
use crate::interval::Grid;
use crate::store::Store;
use chrono::NaiveDate;
use rusqlite::params;
use std::collections::HashMap;
use std::fmt::Write as _;

/// One interval of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub istart: i64,
    pub offered: i64,
    pub answered: i64,
    pub abandoned: i64,
    pub acceptable: i64,
    /// `complete`, `incomplete`, `missing`, `restored`, or `not yet` (at or after the
    /// interval being collected).
    pub status: &'static str,
    /// The reasons of an incomplete interval (the source of a restored one).
    pub detail: String,
}

impl Line {
    /// The service level in percent, `None` when nothing was offered.
    pub fn service_level(&self) -> Option<f64> {
        (self.offered > 0).then(|| 100.0 * self.acceptable as f64 / self.offered as f64)
    }

    /// Whether the interval's figures are not exact (incomplete or missing).
    pub fn flagged(&self) -> bool {
        matches!(self.status, "incomplete" | "missing")
    }
}

/// The report of `skill` on `acd` for local day `date`, as known at UTC `now`.
///
/// # Errors
/// A database error.
pub fn lines(
    store: &Store,
    grid: &Grid,
    acd: u16,
    skill: i64,
    date: NaiveDate,
    now: i64,
) -> Result<Vec<Line>> {
    let db = super::db_error(store);
    let (lo, hi) = super::day_bounds(grid, date);
    let mut st = store
        .conn
        .prepare_cached(
            "SELECT istart, callsoffered, acdcalls, abncalls, acceptable FROM hsplit
             WHERE acd = ?1 AND split = ?2 AND istart >= ?3 AND istart < ?4",
        )
        .map_err(&db)?;
    let rows: HashMap<i64, [i64; 4]> = st
        .query_map(params![acd, skill, lo, hi], |r| {
            Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]))
        })
        .map_err(&db)?
        .collect::<rusqlite::Result<_>>()
        .map_err(&db)?;
    let m = super::marked(store, grid, acd, (lo, hi), now)?;
    let known = m.known;
    let mut status = m.by_interval;
    let mut out = vec![];
    let mut t = lo;
    while t < hi {
        let v = rows.get(&t).copied().unwrap_or_default();
        let (word, detail) = if t >= known {
            ("not yet", String::new())
        } else {
            status
                .remove(&t)
                .map(|(k, r)| (k.as_str(), r))
                .unwrap_or(("complete", String::new()))
        };
        out.push(Line {
            istart: t,
            offered: v[0],
            answered: v[1],
            abandoned: v[2],
            acceptable: v[3],
            status: word,
            detail,
        });
        t = grid.next(t);
    }
    Ok(out)
}

/// The skills with rows on `acd` on local day `date`, in order.
///
/// # Errors
/// A database error.
pub fn skills(store: &Store, grid: &Grid, acd: u16, date: NaiveDate) -> Result<Vec<i64>> {
    let db = super::db_error(store);
    let (lo, hi) = super::day_bounds(grid, date);
    let mut st = store
        .conn
        .prepare_cached(
            "SELECT DISTINCT split FROM hsplit WHERE acd = ?1 AND istart >= ?2 AND istart < ?3
             ORDER BY split",
        )
        .map_err(&db)?;
    let v = st
        .query_map(params![acd, lo, hi], |r| r.get(0))
        .map_err(&db)?
        .collect::<rusqlite::Result<Vec<i64>>>()
        .map_err(&db)?;
    Ok(v)
}

/// The runs of consecutive intervals not exact, in words: `08:00–09:30 incomplete (6)`,
/// `10:15 missing`.
fn runs(grid: &Grid, ls: &[Line]) -> Vec<String> {
    let mut out = vec![];
    let mut i = 0;
    while i < ls.len() {
        if !ls[i].flagged() {
            i += 1;
            continue;
        }
        let mut j = i;
        while j + 1 < ls.len() && ls[j + 1].flagged() && ls[j + 1].status == ls[i].status {
            j += 1;
        }
        let from = grid.local(ls[i].istart).format("%H:%M");
        out.push(if i == j {
            format!("{from} {}", ls[i].status)
        } else {
            let to = grid.local(grid.next(ls[j].istart)).format("%H:%M");
            format!("{from}–{to} {} ({})", ls[i].status, j - i + 1)
        });
        i = j + 1;
    }
    out
}

/// `1.5` -> `1.5 %`, `None` -> `–`.
fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:.1} %"))
}

/// Chart geometry: the plot's size inside the view box and its margins.
const W: f64 = 960.0;
const H: f64 = 320.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 56.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

/// The least "nice" axis maximum (1, 2 or 5 times a power of ten) at or above `v`.
fn nice_max(v: i64) -> i64 {
    let v = v.max(1);
    let mut p = 1;
    loop {
        for m in [1, 2, 5] {
            if m * p >= v {
                return m * p;
            }
        }
        p *= 10;
    }
}

/// The chart: per interval a bar of answered calls with abandoned ones stacked on it and
/// a tick at the calls offered (left axis), the service level as a line (right axis,
/// 0–100 %), incomplete and missing intervals as hatched bands; `title` and `desc` are
/// its text alternative.
pub fn chart(grid: &Grid, lines: &[Line], title: &str, desc: &str) -> String {
    let n = lines.len().max(1) as f64;
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let bw = pw / n;
    let max = nice_max(
        lines
            .iter()
            .map(|l| l.offered.max(l.answered + l.abandoned))
            .max()
            .unwrap_or(0),
    );
    let y = |v: f64| TOP + ph - ph * v / max as f64;
    let ysl = |v: f64| TOP + ph - ph * v / 100.0;
    let mut o = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" \
         aria-labelledby=\"chart-title chart-desc\" preserveAspectRatio=\"xMidYMid meet\">\n\
         <title id=\"chart-title\">{}</title>\n<desc id=\"chart-desc\">{}</desc>\n\
         <defs><pattern id=\"hatch\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\" \
         patternTransform=\"rotate(45)\"><rect width=\"8\" height=\"8\" fill=\"#fff3d6\"/>\
         <line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"8\" stroke=\"#b35c00\" stroke-width=\"3\"/>\
         </pattern></defs>\n",
        esc(title),
        esc(desc)
    );
    // Bands behind everything: what is not exact is seen before the bars.
    for (i, l) in lines.iter().enumerate() {
        if l.flagged() {
            let _ = writeln!(
                o,
                "<rect class=\"band\" x=\"{:.1}\" y=\"{TOP}\" width=\"{bw:.1}\" height=\"{ph}\" \
                 fill=\"url(#hatch)\" data-istart=\"{}\"><title>{} {}{}</title></rect>",
                LEFT + bw * i as f64,
                l.istart,
                grid.local(l.istart).format("%H:%M %Z"),
                l.status,
                if l.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", esc(&l.detail))
                }
            );
        }
    }
    // Axes and gridlines: 0, half and the maximum on the left; 0, 50, 100 % on the right.
    for f in [0.0, 0.5, 1.0] {
        let v = max as f64 * f;
        let yy = y(v);
        let _ = writeln!(
            o,
            "<line class=\"gridline\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
             <text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <text class=\"axis sl\" x=\"{}\" y=\"{:.1}\">{} %</text>",
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            v.round() as i64,
            W - RIGHT + 6.0,
            yy + 4.0,
            (f * 100.0) as i64
        );
    }
    let per_hour = (60 / grid.minutes) as usize;
    for (i, l) in lines.iter().enumerate() {
        let x = LEFT + bw * i as f64;
        let local = grid.local(l.istart);
        if i % (per_hour * 2) == 0 {
            let _ = writeln!(
                o,
                "<text class=\"axis\" x=\"{x:.1}\" y=\"{}\">{}</text>",
                H - BOTTOM + 16.0,
                local.format("%H:%M")
            );
        }
        if l.answered + l.abandoned + l.offered == 0 {
            continue;
        }
        let (ya, yb) = (y(l.answered as f64), y((l.answered + l.abandoned) as f64));
        let _ = writeln!(
            o,
            "<g class=\"iv\"><title>{} {}: offered {}, answered {}, abandoned {}, service \
             level {}</title>\
             <rect class=\"answered\" x=\"{:.1}\" y=\"{ya:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>\
             <rect class=\"abandoned\" x=\"{:.1}\" y=\"{yb:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>\
             <line class=\"offered\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{yo:.1}\" y2=\"{yo:.1}\"/></g>",
            local.format("%H:%M %Z"),
            l.status,
            l.offered,
            l.answered,
            l.abandoned,
            pct(l.service_level()),
            x + 1.0,
            (bw - 2.0).max(0.5),
            TOP + ph - ya,
            x + 1.0,
            (bw - 2.0).max(0.5),
            ya - yb,
            x,
            x + bw,
            yo = y(l.offered as f64),
        );
    }
    let pts: Vec<String> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            l.service_level()
                .map(|s| format!("{:.1},{:.1}", LEFT + bw * (i as f64 + 0.5), ysl(s)))
        })
        .collect();
    if !pts.is_empty() {
        let _ = writeln!(
            o,
            "<polyline class=\"slline\" points=\"{}\"/>",
            pts.join(" ")
        );
    }
    let _ = writeln!(
        o,
        "<line class=\"axisline\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>\n</svg>",
        W - RIGHT,
        TOP + ph,
        TOP + ph
    );
    o
}

/// The interval report page for the request `p` at UTC `now`.
///
/// # Errors
/// A bad parameter ([`super::ConsoleError::BadRequest`]) or a database error.
pub fn render(cfg: &Config, store: &Store, p: &Params, now: i64) -> Result<String> {
    let grid = cfg.grid();
    let acd = p.acd(cfg)?;
    let date = match p.date("date")? {
        Some(d) => d,
        None => super::latest_date(&store.conn, &grid, acd, now)?,
    };
    let known = skills(store, &grid, acd, date)?;
    let skill = match p.number("skill")? {
        Some(s) => s as i64,
        None => known.first().copied().unwrap_or(1),
    };
    let acds: Vec<u16> = cfg.acds.iter().map(|a| a.acd).collect();
    let mut b = format!(
        "<form class=\"pick\" method=\"get\" action=\"/report\">{}\n\
         <label for=\"date\">Day</label> <input id=\"date\" name=\"date\" type=\"date\" value=\"{date}\">\n\
         <label for=\"skill\">Skill</label> <select id=\"skill\" name=\"skill\">",
        acd_select(&acds, acd)
    );
    let mut choice = known.clone();
    if !choice.contains(&skill) {
        choice.push(skill);
        choice.sort_unstable();
    }
    for s in &choice {
        let sel = if *s == skill { " selected" } else { "" };
        let _ = write!(b, "<option value=\"{s}\"{sel}>{s}</option>");
    }
    b += "</select>\n<button type=\"submit\">Show</button></form>\n";
    if known.is_empty() {
        let _ = writeln!(b, "<p>No skill has rows on ACD {acd} on {date}.</p>");
    } else if !known.contains(&skill) {
        let _ = writeln!(
            b,
            "<p>Skill {skill} has no rows on ACD {acd} on {date} (the skills with rows: {}).</p>",
            known
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let ls = lines(store, &grid, acd, skill, date, now)?;
    let tot = |f: fn(&Line) -> i64| ls.iter().map(f).sum::<i64>();
    let (offered, answered, abandoned, acceptable) = (
        tot(|l| l.offered),
        tot(|l| l.answered),
        tot(|l| l.abandoned),
        tot(|l| l.acceptable),
    );
    let day_sl = (offered > 0).then(|| 100.0 * acceptable as f64 / offered as f64);
    let flagged: Vec<&Line> = ls.iter().filter(|l| l.flagged()).collect();
    let flagged_words = if flagged.is_empty() {
        "No interval is incomplete or missing.".to_string()
    } else {
        format!(
            "{} not exact, hatched: {}.",
            crate::report::plural(flagged.len() as u64, "interval"),
            runs(&grid, &ls).join(", ")
        )
    };
    let title = format!("Skill {skill}, ACD {acd}, {date}: calls per interval");
    let desc = format!(
        "Bars: calls answered, with calls abandoned stacked on them; a tick at the calls \
         offered; a line: the service level (right axis). Day total: offered {offered}, \
         answered {answered}, abandoned {abandoned}, service level {}. {flagged_words} \
         The table below lists every value.",
        pct(day_sl)
    );
    let _ = writeln!(
        b,
        "<figure>\n{}<figcaption>{} <span class=\"key\"><span class=\"swatch answered\" \
         aria-hidden=\"true\"></span> answered <span class=\"swatch abandoned\" \
         aria-hidden=\"true\"></span> abandoned <span class=\"swatch offered\" \
         aria-hidden=\"true\"></span> offered <span class=\"swatch slline\" \
         aria-hidden=\"true\"></span> service level <span class=\"swatch hatch\" \
         aria-hidden=\"true\"></span> not exact</span></figcaption>\n</figure>",
        chart(&grid, &ls, &title, &desc),
        esc(&flagged_words)
    );
    let _ = writeln!(
        b,
        "<table class=\"data report\" id=\"report\" data-acd=\"{acd}\" data-skill=\"{skill}\" \
         data-date=\"{date}\">\n<caption>Skill {skill}, ACD {acd}, {date} ({}): calls per \
         {}-minute interval</caption>\n<thead><tr><th scope=\"col\">Interval</th>\
         <th scope=\"col\">Offered</th><th scope=\"col\">Answered</th>\
         <th scope=\"col\">Abandoned</th><th scope=\"col\">Service level</th>\
         <th scope=\"col\">Status</th></tr></thead>\n<tbody>",
        esc(grid.tz.name()),
        grid.minutes
    );
    for l in &ls {
        let cls = if l.flagged() {
            " class=\"flagged\""
        } else {
            ""
        };
        let status = if l.detail.is_empty() {
            l.status.to_string()
        } else {
            format!("{}: {}", l.status, esc(&l.detail))
        };
        let mark = if l.flagged() { "⚠ " } else { "" };
        let _ = writeln!(
            b,
            "<tr{cls} data-istart=\"{}\"><th scope=\"row\">{}</th><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td>{mark}{status}</td></tr>",
            l.istart,
            grid.local(l.istart).format("%H:%M %Z"),
            l.offered,
            l.answered,
            l.abandoned,
            pct(l.service_level()),
        );
    }
    let _ = writeln!(
        b,
        "</tbody>\n<tfoot><tr><th scope=\"row\">Day</th><td class=\"n\">{}</td>\
         <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td>\
         </tr></tfoot>\n</table>",
        num(offered),
        num(answered),
        num(abandoned),
        pct(day_sl),
        if flagged.is_empty() {
            "all exact".to_string()
        } else {
            format!(
                "{} not exact",
                crate::report::plural(flagged.len() as u64, "interval")
            )
        }
    );
    Ok(page(
        &format!("Interval report: skill {skill}, ACD {acd}, {date}"),
        &cfg.server_id,
        Nav::Report,
        &b,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_group_consecutive_intervals_of_one_status() {
        let g = Grid::new(chrono_tz::UTC, 15);
        let l = |i: i64, status: &'static str| Line {
            istart: i * 900,
            offered: 0,
            answered: 0,
            abandoned: 0,
            acceptable: 0,
            status,
            detail: String::new(),
        };
        let ls = [
            l(0, "missing"),
            l(1, "missing"),
            l(2, "complete"),
            l(3, "incomplete"),
            l(4, "missing"),
            l(5, "incomplete"),
            l(6, "incomplete"),
            l(7, "incomplete"),
            l(8, "not yet"),
        ];
        assert_eq!(
            runs(&g, &ls),
            [
                "00:00–00:30 missing (2)",
                "00:45 incomplete",
                "01:00 missing",
                "01:15–02:00 incomplete (3)"
            ]
        );
    }
}
