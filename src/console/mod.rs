//! The read-only web console of issue #14 (docs/console.md), served by `cms collect`
//! beside the monitoring endpoints of `web`.
//!
//! Three pages, each a pure function from a read-only database (and the configuration)
//! to an HTML string: [`overview`] (per ACD the link, the intervals, the checkpoint and
//! today's totals; the peer), [`coverage`] (days by intervals, every cell complete,
//! incomplete with its reasons, missing or restored, DST days with their 92 or 100
//! cells) and [`interval_report`] (per skill and day, offered / answered / abandoned and
//! service level as an SVG chart and the table under it). The HTML is server-rendered,
//! with one embedded stylesheet and no script: real tables with captions and headers,
//! a text alternative for every chart, visible focus.
//!
//! Owns the pages' markup and the parsing of their query parameters ([`Params`]); a bad
//! parameter is a [`ConsoleError::BadRequest`] that the router turns into a 400 page
//! saying why. Not here: the queries of `cms status` and `cms gaps` (the pages call
//! `report` and `peer::status`), the HTTP server, its address and its token (that is
//! `web`). Nothing here writes: the database is opened read-only per request.

pub mod coverage;
pub mod html;
pub mod interval_report;
pub mod overview;
mod routes;

use crate::config::Config;
use crate::interval::Grid;
use chrono::NaiveDate;
use std::collections::BTreeMap;
use thiserror::Error;

/// The console's routes, for `web::router` to merge behind its access rule.
pub fn router(state: crate::web::WebState) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route("/", get(routes::overview))
        .route("/coverage", get(routes::coverage))
        .route("/report", get(routes::report))
        .with_state(state)
}

/// Why a page could not be made.
#[derive(Debug, Error)]
pub enum ConsoleError {
    /// The request is wrong (unknown ACD, a bad date, a range too long): a 400 page.
    #[error("{0}")]
    BadRequest(String),
    /// The database could not be read: a 500 page. The message names the database.
    #[error("{0}")]
    Database(String),
}

impl From<crate::report::ReportError> for ConsoleError {
    fn from(e: crate::report::ReportError) -> Self {
        ConsoleError::Database(e.to_string())
    }
}

impl From<crate::store::StoreError> for ConsoleError {
    fn from(e: crate::store::StoreError) -> Self {
        ConsoleError::Database(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, ConsoleError>;

/// The longest date range one coverage page shows: a year of days is still one
/// readable page (35 000 cells of 15 minutes) and renders in well under a second.
pub const MAX_DAYS: i64 = 366;

/// A page's query parameters, by name (the last value of a repeated name wins).
#[derive(Debug, Clone, Default)]
pub struct Params(pub BTreeMap<String, String>);

impl Params {
    /// Parameters from `name=value` pairs (as the router's query extractor gives them).
    pub fn of<I, K, V>(pairs: I) -> Params
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Params(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The value of `name`, `None` when absent or empty (an empty form field).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    /// The ACD of `acd=`: one of the configured ACDs, the first configured when absent.
    ///
    /// # Errors
    /// Not a number, or not an ACD this server collects.
    pub fn acd(&self, cfg: &Config) -> Result<u16> {
        let known: Vec<u16> = cfg.acds.iter().map(|a| a.acd).collect();
        let Some(s) = self.get("acd") else {
            return known.first().copied().ok_or_else(|| {
                ConsoleError::BadRequest(format!("{}: no ACD is configured", cfg.origin()))
            });
        };
        let list = known
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let acd: u16 = s.parse().map_err(|_| {
            ConsoleError::BadRequest(format!(
                "acd {s:?} is not an ACD number (this server collects ACD {list})"
            ))
        })?;
        if !known.contains(&acd) {
            return Err(ConsoleError::BadRequest(format!(
                "ACD {acd} is not collected by this server (it collects ACD {list})"
            )));
        }
        Ok(acd)
    }

    /// The date of `name=` (`YYYY-MM-DD`), `None` when absent.
    ///
    /// # Errors
    /// Not a date of that form.
    pub fn date(&self, name: &str) -> Result<Option<NaiveDate>> {
        self.get(name)
            .map(|s| {
                NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| {
                    ConsoleError::BadRequest(format!(
                        "{name} {s:?} is not a date of the form YYYY-MM-DD ({e})"
                    ))
                })
            })
            .transpose()
    }

    /// The number of `name=`, `None` when absent.
    ///
    /// # Errors
    /// Not a whole number in range.
    pub fn number(&self, name: &str) -> Result<Option<u32>> {
        self.get(name)
            .map(|s| {
                s.parse().map_err(|_| {
                    ConsoleError::BadRequest(format!("{name} {s:?} is not a whole number"))
                })
            })
            .transpose()
    }
}

/// The local date of the last interval recorded for `acd`, or of the present when none
/// is: where a page without a date starts.
///
/// # Errors
/// A database error.
pub fn latest_date(
    conn: &rusqlite::Connection,
    grid: &Grid,
    acd: u16,
    now: i64,
) -> Result<NaiveDate> {
    let last: Option<i64> = conn
        .query_row(
            "SELECT MAX(istart) FROM interval_status WHERE acd = ?1",
            [acd],
            |r| r.get(0),
        )
        .map_err(|e| ConsoleError::Database(e.to_string()))?;
    Ok(grid.local_date(last.unwrap_or(now)))
}

/// The first instant of local day `date` and of the day after: the day's UTC bounds.
pub fn day_bounds(grid: &Grid, date: NaiveDate) -> (i64, i64) {
    let next = date.succ_opt().expect("date in range");
    (grid.day_start(date), grid.day_start(next))
}

/// A database error of `store`, naming its file.
pub fn db_error(store: &crate::store::Store) -> impl Fn(rusqlite::Error) -> ConsoleError + '_ {
    move |e| ConsoleError::Database(format!("{}: {e}", store.path.display()))
}

/// What `cms gaps` says of `[lo, hi)` of one ACD, up to what can be known, spread to one
/// entry per interval.
#[derive(Debug, Clone)]
pub struct Marked {
    /// The ranges as `cms gaps` lists them.
    pub ranges: Vec<crate::report::GapRange>,
    /// Interval start -> its kind and its reasons (the source of a restored one).
    pub by_interval: std::collections::HashMap<i64, (crate::domain::GapKind, String)>,
    /// [`known_end`]: nothing at or after it is missing yet.
    pub known: i64,
}

/// [`crate::report::gaps`] of `acd` over `[lo, hi)` up to [`known_end`] at `now`, with
/// each range's intervals listed.
///
/// # Errors
/// A database error.
pub fn marked(
    store: &crate::store::Store,
    grid: &Grid,
    acd: u16,
    (lo, hi): (i64, i64),
    now: i64,
) -> Result<Marked> {
    let known = known_end(&store.conn, grid, acd, now)?;
    let ranges = if known > lo {
        crate::report::gaps(&store.conn, grid, acd, lo, hi.min(known))?
    } else {
        vec![]
    };
    let mut by_interval = std::collections::HashMap::new();
    for g in &ranges {
        let kind = g.kind;
        let mut t = g.from;
        while t < g.to {
            by_interval.insert(t, (kind, g.reasons.clone()));
            t = grid.next(t);
        }
    }
    Ok(Marked {
        ranges,
        by_interval,
        known,
    })
}

/// The end of what can be known of `acd` at `now`: the interval being collected, or on
/// a server not collecting, the interval of the present. Nothing at or after it is
/// missing yet (as `report::gap_range` clamps `cms gaps`).
///
/// # Errors
/// A database error.
pub fn known_end(conn: &rusqlite::Connection, grid: &Grid, acd: u16, now: i64) -> Result<i64> {
    let open = crate::store::open_interval(conn, acd)
        .map_err(|e| ConsoleError::Database(e.to_string()))?;
    Ok(open.unwrap_or_else(|| grid.start_of(now)))
}

#[cfg(test)]
mod tests;
