//! Maintenance backup and merge-restore between the two servers of a pair.
//!
//! - [`backup`]: one consistent snapshot of the database into a backup file.
//! - [`plan`]: the pure per-interval decision (fill, replace, keep, conflict, skip).
//! - [`restore`]: verifies a backup file, plans, and applies in short transactions that
//!   interleave with a running collector.
//!
//! This module owns the rules of promises 2-4 and 6 of DOMAIN.md; the file format itself
//! is `archive`, the tables and their SQL are `store` (`store::status`, `store::merge`).
//! Its errors are one type, [`Error`], each naming the file, database or peer and the
//! reason.

pub mod backup;
mod error;
pub mod plan;
pub mod restore;

pub(crate) use error::{bail, msg, Context};
pub use error::{Error, Result};

use crate::archive;
use crate::interval::Grid;
use chrono::NaiveDate;

bitflags::bitflags! {
    /// Data categories, as in the classic product; the bits are the backup header's
    /// (`archive::category`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Categories: u8 {
        /// Interval and summary tables with their status.
        const HISTORY = archive::category::HISTORY;
        /// ACD administration data: dictionary names, call profiles, service levels.
        const ADMIN = archive::category::ADMIN;
        /// Local system administration data: this server's identity and settings.
        const LOCAL = archive::category::LOCAL;
    }
}

/// The categories by name, in the order `names` says them.
const CATEGORY_NAMES: [(&str, Categories); 3] = [
    ("history", Categories::HISTORY),
    ("admin", Categories::ADMIN),
    ("local", Categories::LOCAL),
];

impl Categories {
    /// Parses `history,admin,local` (any subset).
    ///
    /// # Errors
    /// An unknown name.
    pub fn parse(s: &str) -> std::result::Result<Categories, String> {
        let mut c = Categories::empty();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match CATEGORY_NAMES.iter().find(|(n, _)| *n == part) {
                Some((_, bit)) => c |= *bit,
                None => {
                    return Err(format!(
                        "unknown data category {part:?} (history, admin, local)"
                    ))
                }
            }
        }
        Ok(c)
    }

    /// `history,admin,local`, as far as they are set.
    pub fn names(&self) -> String {
        CATEGORY_NAMES
            .iter()
            .filter(|(_, bit)| self.contains(*bit))
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The time as backup and restore stamp it: UTC seconds now. The real one is
/// `store::intervals::now_secs`; tests pass their own (`backup::SnapshotOptions::clock`,
/// `restore::restore_at_with_clock`) instead of sleeping past a second.
pub type Clock = fn() -> i64;

/// What a backup or restore is about: ACDs, local dates, categories.
#[derive(Debug, Clone)]
pub struct Selection {
    pub acds: Vec<u16>,
    pub from: Option<NaiveDate>,
    /// Inclusive.
    pub to: Option<NaiveDate>,
    pub grid: Grid,
    pub categories: Categories,
}

impl Selection {
    /// `[lo, hi)` in UTC seconds.
    pub fn utc_range(&self) -> (i64, i64) {
        let lo = self
            .from
            .map(|d| self.grid.day_start(d))
            .unwrap_or(i64::MIN);
        let hi = self
            .to
            .and_then(|d| d.succ_opt())
            .map(|d| self.grid.day_start(d))
            .unwrap_or(i64::MAX);
        (lo, hi)
    }

    /// `[lo, hi)` as `YYYY-MM-DD` strings for summary rows.
    pub fn date_range_strings(&self) -> (String, String) {
        (
            self.from
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "0000-00-00".into()),
            self.to
                .and_then(|d| d.succ_opt())
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "9999-99-99".into()),
        )
    }
}
