//! `cms report`'s three renderings of [`query`](crate::query) rows: a table for people,
//! CSV and JSON for programs (docs/reports.md: the columns, the marks, the formulas).
//!
//! CSV and JSON carry every item and every derived figure of the family under stable
//! column names ([`columns`]); the table shows the main items and the figures. Every
//! format says which rows are not complete: a `status` and a `reasons` column in CSV and
//! JSON, a `*` after the status and a closing count in the table. No I/O.

use crate::domain::GapKind;
use crate::items::TableDef;
use crate::query::{figures, Period, Row};
use crate::report::GapRange;
use std::fmt::Write as _;

/// The output format of `cms report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// The label columns before the items, in CSV and JSON, after `acd` and the entity key.
const LABELS: [&str; 9] = [
    "period",
    "row_date",
    "starttime",
    "intrvl",
    "start_utc",
    "start_local",
    "status",
    "reasons",
    "incomplete_intervals",
];

/// The CSV and JSON column names of a family, in order: `acd`, the entity key, the
/// labels, every item, every derived figure.
pub fn columns(t: &TableDef) -> Vec<&'static str> {
    let mut c = vec!["acd"];
    c.extend(t.keys);
    c.extend(LABELS);
    c.extend(t.items.iter().map(|(n, _)| *n));
    c.extend(figures(t).iter().map(|f| f.name));
    c
}

/// A row's time labels, shared by the rows of the same start (a report's rows come
/// ordered by start, so each is formatted once per start, not once per row).
struct Labels {
    start: i64,
    offset: i32,
    row_date: String,
    starttime: Option<i64>,
    start_utc: String,
    start_local: String,
}

impl Labels {
    fn of(r: &Row) -> Labels {
        use chrono::Timelike;
        let l = r.local();
        Labels {
            start: r.start,
            offset: r.offset,
            row_date: r.row_date(),
            // The local `HHMM` of an interval's start, as `starttime` in the database
            // (09:45 is `945`); `None` for a summary.
            starttime: r.intrvl.map(|_| (l.hour() * 100 + l.minute()) as i64),
            start_utc: r.start_utc(),
            start_local: r.start_local(),
        }
    }

    /// These labels if they are `r`'s, else `r`'s, kept for the next row.
    fn update(last: &mut Option<Labels>, r: &Row) {
        if !last
            .as_ref()
            .is_some_and(|l| l.start == r.start && l.offset == r.offset)
        {
            *last = Some(Labels::of(r));
        }
    }
}

/// One value of a row: a number, a text, a derived figure, or nothing.
enum Cell<'a> {
    Int(i64),
    Text(&'a str),
    Figure(Option<f64>),
    Null,
}

/// One row's values in [`columns`] order.
fn cells<'a>(t: &TableDef, period: Period, r: &'a Row, l: &'a Labels, out: &mut Vec<Cell<'a>>) {
    out.clear();
    out.push(Cell::Int(r.acd.into()));
    out.extend(r.keys.iter().map(|&k| Cell::Int(k)));
    out.push(Cell::Text(period.as_str()));
    out.push(Cell::Text(&l.row_date));
    out.push(l.starttime.map_or(Cell::Null, Cell::Int));
    out.push(r.intrvl.map_or(Cell::Null, |i| Cell::Int(i.into())));
    out.push(Cell::Text(&l.start_utc));
    out.push(Cell::Text(&l.start_local));
    out.push(Cell::Text(r.status.as_str()));
    out.push(Cell::Text(&r.reasons));
    out.push(r.incomplete_intervals.map_or(Cell::Null, Cell::Int));
    out.extend(r.items.iter().map(|&i| Cell::Int(i)));
    let d = r.derived(t);
    out.extend(figures(t).iter().map(|f| Cell::Figure(d.get(f.name))));
}

/// A derived figure as CSV and the table show it: two decimals, empty when undefined.
fn figure_text(x: Option<f64>) -> String {
    x.map(|x| format!("{x:.2}")).unwrap_or_default()
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// CSV with a header line of [`columns`]; figures with two decimals.
pub fn csv(t: &TableDef, period: Period, rows: &[Row]) -> String {
    let cols = columns(t);
    let ncols = cols.len();
    let mut out = cols.join(",");
    out.push('\n');
    let mut last = None;
    for r in rows {
        Labels::update(&mut last, r);
        let mut buf = Vec::with_capacity(ncols);
        cells(t, period, r, last.as_ref().expect("set"), &mut buf);
        for (i, c) in buf.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match c {
                Cell::Int(x) => {
                    let _ = write!(out, "{x}");
                }
                Cell::Text(s) => out.push_str(&csv_field(s)),
                Cell::Figure(x) => out.push_str(&figure_text(*x)),
                Cell::Null => {}
            }
        }
        out.push('\n');
    }
    out
}

/// A JSON array of objects keyed by [`columns`], one object a line; figures unrounded,
/// `null` when undefined.
pub fn json(t: &TableDef, period: Period, rows: &[Row]) -> String {
    let cols = columns(t);
    let ncols = cols.len();
    let mut out: Vec<u8> = b"[".to_vec();
    let mut last = None;
    for (n, r) in rows.iter().enumerate() {
        Labels::update(&mut last, r);
        let mut buf = Vec::with_capacity(ncols);
        cells(t, period, r, last.as_ref().expect("set"), &mut buf);
        out.extend_from_slice(if n == 0 { b"\n{" } else { b",\n{" });
        for (i, (c, v)) in cols.iter().zip(&buf).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(c.as_bytes());
            out.extend_from_slice(b"\":");
            let written = match v {
                Cell::Int(x) => serde_json::to_writer(&mut out, x),
                Cell::Text(s) => serde_json::to_writer(&mut out, s),
                Cell::Figure(x) => serde_json::to_writer(&mut out, x),
                Cell::Null => serde_json::to_writer(&mut out, &()),
            };
            written.expect("JSON into memory");
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"\n]\n");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// The items the table shows per family (CSV and JSON carry them all).
fn table_items(t: &TableDef) -> &'static [&'static str] {
    match t.name {
        "split" => &["callsoffered", "acdcalls", "abncalls", "i_stafftime"],
        "agent" => &["acdcalls", "acdtime", "acwtime", "i_stafftime", "i_auxtime"],
        "vdn" => &["incalls", "acdcalls", "abncalls", "busycalls", "disccalls"],
        _ => &["incalls", "intime", "abncalls", "i_inocc", "allinusetime"],
    }
}

/// The table for people: the entity, the local date and time (with its offset, so the
/// repeated hour of a DST day reads twice, distinctly), the status (`*` when not
/// complete), the main items, the figures and the reasons; then the count of incomplete
/// rows.
pub fn table(t: &TableDef, period: Period, rows: &[Row]) -> String {
    let figs = figures(t);
    let items = table_items(t);
    let mut head: Vec<String> = vec!["acd".into()];
    head.extend(t.keys.iter().map(|k| k.to_string()));
    head.push("date".into());
    if period == Period::Interval {
        head.push("time".into());
    }
    head.push("status".into());
    head.extend(items.iter().map(|i| i.to_string()));
    head.extend(figs.iter().map(|f| f.name.to_string()));
    head.push("reasons".into());
    let mut lines: Vec<Vec<String>> = vec![head];
    for r in rows {
        let mut l: Vec<String> = vec![r.acd.to_string()];
        l.extend(r.keys.iter().map(|k| k.to_string()));
        l.push(r.row_date());
        if period == Period::Interval {
            l.push(r.local().format("%H:%M%:z").to_string());
        }
        l.push(if r.status.is_complete() {
            "complete".into()
        } else {
            "incomplete*".into()
        });
        l.extend(
            items
                .iter()
                .map(|i| r.item(t, i).unwrap_or_default().to_string()),
        );
        let d = r.derived(t);
        l.extend(figs.iter().map(|f| match d.get(f.name) {
            Some(x) => format!("{x:.2}"),
            None => "-".into(),
        }));
        l.push(r.reasons.clone());
        lines.push(l);
    }
    let ncol = lines[0].len();
    let width: Vec<usize> = (0..ncol)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    // Text columns align left, numbers right.
    let text_cols =
        1 + t.keys.len()..1 + t.keys.len() + 2 + usize::from(period == Period::Interval);
    let mut out = String::new();
    for l in &lines {
        let mut s = String::new();
        for (c, v) in l.iter().enumerate() {
            if c > 0 {
                s.push_str("  ");
            }
            if c == ncol - 1 || text_cols.contains(&c) {
                let _ = write!(s, "{v:<w$}", w = width[c]);
            } else {
                let _ = write!(s, "{v:>w$}", w = width[c]);
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    }
    let bad = rows.iter().filter(|r| !r.status.is_complete()).count();
    let what = match period {
        Period::Interval => "interval",
        Period::Daily => "day",
        Period::Weekly => "week",
        Period::Monthly => "month",
    };
    let _ = writeln!(
        out,
        "{} rows ({what}), {bad} incomplete (marked *: not exact, see reasons)",
        rows.len()
    );
    out
}

/// The closing note of a report whose range holds intervals that are incomplete or
/// missing altogether: an interval with no rows (nothing collected, or nothing of this
/// family) shows in no row, so the report says how many there are. `None` when there
/// are none. The table ends with it; CSV and JSON print it on stderr.
pub fn gap_note(acd: u16, gaps: &[GapRange]) -> Option<String> {
    let count = |k: GapKind| -> u32 {
        gaps.iter()
            .filter(|g| g.kind == k)
            .map(|g| g.intervals)
            .sum()
    };
    let (bad, missing) = (count(GapKind::Incomplete), count(GapKind::Missing));
    (bad + missing > 0).then(|| {
        format!(
            "ACD {acd}: the range holds {bad} incomplete and {missing} missing intervals \
             (`cms gaps` lists them)\n"
        )
    })
}

/// `rows` in `format`.
pub fn render(format: Format, t: &TableDef, period: Period, rows: &[Row]) -> String {
    match format {
        Format::Table => table(t, period, rows),
        Format::Csv => csv(t, period, rows),
        Format::Json => json(t, period, rows),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::IntervalStatus;
    use crate::items::TKGRP;
    use serde_json::Value;

    fn row(status: IntervalStatus, reasons: &str) -> Row {
        Row {
            acd: 1,
            keys: vec![3],
            start: 1_792_891_800, // 2026-10-25T01:30:00Z
            offset: 0,
            intrvl: Some(15),
            status,
            reasons: reasons.into(),
            incomplete_intervals: None,
            items: vec![4, 600, 1, 300, 0],
        }
    }

    #[test]
    fn docs_list_every_familys_columns() {
        let doc = include_str!("../docs/reports.md");
        let list = |c: &[&str]| {
            c.iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for t in crate::items::TABLES {
            let cols = columns(t);
            let (k, rest) = cols.split_at(1 + t.keys.len());
            let (labels, rest) = rest.split_at(LABELS.len());
            assert_eq!(labels, LABELS);
            let (items, figs) = rest.split_at(t.n_items());
            for (group, c) in [("key", k), ("items", items), ("figures", figs)] {
                let line = format!("| {group} | {} |", list(c));
                assert!(doc.contains(&line), "docs/reports.md lacks {line}");
            }
        }
        for l in LABELS {
            assert!(doc.contains(&format!("| `{l}` |")), "{l}");
        }
    }

    #[test]
    fn csv_quotes_reasons_and_keeps_its_columns() {
        let rows = [
            row(IntervalStatus::Complete, ""),
            row(IntervalStatus::Incomplete, "replay_gap,call_across_gap"),
        ];
        let out = csv(&TKGRP, Period::Interval, &rows);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "acd,tkgrp,period,row_date,starttime,intrvl,start_utc,start_local,status,reasons,\
             incomplete_intervals,incalls,intime,abncalls,i_inocc,allinusetime,abandon_pct"
        );
        assert_eq!(
            lines[2],
            "1,3,interval,2026-10-25,130,15,2026-10-25T01:30:00Z,2026-10-25T01:30:00+00:00,\
             incomplete,\"replay_gap,call_across_gap\",,4,600,1,300,0,25.00"
        );
        let j: Value = serde_json::from_str(&json(&TKGRP, Period::Interval, &rows)).unwrap();
        assert_eq!(j[1]["reasons"], "replay_gap,call_across_gap");
        assert_eq!(j[1]["abandon_pct"], 25.0);
        assert_eq!(j[0]["incomplete_intervals"], Value::Null);
    }
}
