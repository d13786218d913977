//! Maintenance backup and merge-restore between the two servers of a pair.
//!
//! - [`backup`]: one consistent snapshot of the database into a backup file.
//! - [`plan`]: the pure per-interval decision (fill, replace, keep, conflict, skip).
//! - [`restore`]: verifies a backup file, plans, and applies in short transactions that
//!   interleave with a running collector.
//!
//! This module owns the rules of promises 2-4 and 6 of DOMAIN.md; the file format itself
//! is `archive`, the tables are `store`.

pub mod backup;
pub mod plan;
pub mod restore;

use crate::archive;
use crate::interval::Grid;
use chrono::NaiveDate;

/// Data categories, as in the classic product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Categories {
    /// Interval and summary tables with their status.
    pub history: bool,
    /// ACD administration data: dictionary names, call profiles, service levels.
    pub admin: bool,
    /// Local system administration data: this server's identity and settings.
    pub local: bool,
}

impl Categories {
    /// Parses `history,admin,local` (any subset).
    ///
    /// # Errors
    /// An unknown name.
    pub fn parse(s: &str) -> Result<Categories, String> {
        let mut c = Categories {
            history: false,
            admin: false,
            local: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "history" => c.history = true,
                "admin" => c.admin = true,
                "local" => c.local = true,
                other => {
                    return Err(format!(
                        "unknown data category {other:?} (history, admin, local)"
                    ))
                }
            }
        }
        Ok(c)
    }

    pub fn names(&self) -> String {
        let mut v = vec![];
        if self.history {
            v.push("history");
        }
        if self.admin {
            v.push("admin");
        }
        if self.local {
            v.push("local");
        }
        v.join(",")
    }
}

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

impl Categories {
    /// The header's category bits (`archive::category`).
    pub fn bits(&self) -> u8 {
        (if self.history {
            archive::category::HISTORY
        } else {
            0
        }) | (if self.admin {
            archive::category::ADMIN
        } else {
            0
        }) | (if self.local {
            archive::category::LOCAL
        } else {
            0
        })
    }
}
