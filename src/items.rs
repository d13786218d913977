//! The item catalogue: which interval tables exist, their key columns and their items.
//!
//! This is the table *layout* shared by everything that reads or writes interval rows:
//! the collector's aggregation, the simulator's ground truth, the summaries, the
//! checksums and the backup format. It holds no counting logic: what each item means
//! and when it is booked is defined in `docs/data-items.md`, and implemented twice,
//! independently (`agg` for the collector, `sim::truth` for the simulator).

/// How an item combines into daily/weekly/monthly summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// Cumulative count or seconds: summaries add.
    Sum,
    /// Maximum: summaries take the largest interval value.
    Max,
}

/// One interval table family (intrahour `h*`, summaries `d*`, `w*`, `m*`).
#[derive(Debug)]
pub struct TableDef {
    /// Family name: `split`, `agent`, `vdn`, `tkgrp`. Tables are `h{name}`,
    /// `d{name}`, `w{name}`, `m{name}`.
    pub name: &'static str,
    /// Entity key columns after `acd` (e.g. `["split"]`, `["agent", "split"]`).
    pub keys: &'static [&'static str],
    /// Item columns, in storage order.
    pub items: &'static [(&'static str, Combine)],
}

impl TableDef {
    pub fn interval_table(&self) -> String {
        format!("h{}", self.name)
    }
    pub fn index_of(&self, item: &str) -> Option<usize> {
        self.items.iter().position(|(n, _)| *n == item)
    }
    pub fn n_items(&self) -> usize {
        self.items.len()
    }
}

use Combine::{Max, Sum};

macro_rules! items {
    ($($name:literal : $c:ident),* $(,)?) => { &[$(($name, $c)),*] };
}

pub const SPLIT: TableDef = TableDef {
    name: "split",
    keys: &["split"],
    items: items![
        "callsoffered": Sum, "acdcalls": Sum, "abncalls": Sum, "abntime": Sum, "anstime": Sum,
        "maxocwtime": Max, "acceptable": Sum, "slvlabns": Sum,
        "acdcalls1": Sum, "acdcalls2": Sum, "acdcalls3": Sum, "acdcalls4": Sum, "acdcalls5": Sum,
        "acdcalls6": Sum, "acdcalls7": Sum, "acdcalls8": Sum, "acdcalls9": Sum, "acdcalls10": Sum,
        "abncalls1": Sum, "abncalls2": Sum, "abncalls3": Sum, "abncalls4": Sum, "abncalls5": Sum,
        "abncalls6": Sum, "abncalls7": Sum, "abncalls8": Sum, "abncalls9": Sum, "abncalls10": Sum,
        "acdtime": Sum, "acwtime": Sum, "holdtime": Sum, "holdcalls": Sum, "transferred": Sum,
        "conference": Sum, "outflowcalls": Sum, "inflowcalls": Sum, "dequecalls": Sum,
        "i_arrived": Sum, "maxinqueue": Max,
        "i_stafftime": Sum, "i_availtime": Sum, "i_acdtime": Sum, "i_acwtime": Sum,
        "i_ringtime": Sum, "i_othertime": Sum, "i_auxtime": Sum,
        "i_auxtime0": Sum, "i_auxtime1": Sum, "i_auxtime2": Sum, "i_auxtime3": Sum,
        "i_auxtime4": Sum, "i_auxtime5": Sum, "i_auxtime6": Sum, "i_auxtime7": Sum,
        "i_auxtime8": Sum, "i_auxtime9": Sum, "maxstaffed": Max,
    ],
};

pub const AGENT: TableDef = TableDef {
    name: "agent",
    keys: &["agent", "split"],
    items: items![
        "acdcalls": Sum, "acdtime": Sum, "acwtime": Sum, "ringcalls": Sum, "ringtime": Sum,
        "abncalls": Sum, "holdcalls": Sum, "holdacdtime": Sum, "transferred": Sum,
        "conference": Sum,
        "i_stafftime": Sum, "i_availtime": Sum, "i_acdtime": Sum, "i_acwtime": Sum,
        "i_ringtime": Sum, "i_othertime": Sum, "i_auxtime": Sum,
        "i_auxtime0": Sum, "i_auxtime1": Sum, "i_auxtime2": Sum, "i_auxtime3": Sum,
        "i_auxtime4": Sum, "i_auxtime5": Sum, "i_auxtime6": Sum, "i_auxtime7": Sum,
        "i_auxtime8": Sum, "i_auxtime9": Sum,
    ],
};

pub const VDN: TableDef = TableDef {
    name: "vdn",
    keys: &["vdn"],
    items: items![
        "incalls": Sum, "acdcalls": Sum, "abncalls": Sum, "abntime": Sum, "anstime": Sum,
        "acceptable": Sum, "acdtime": Sum, "acwtime": Sum, "holdtime": Sum,
        "transferred": Sum, "busycalls": Sum, "disccalls": Sum, "maxocwtime": Max,
    ],
};

pub const TKGRP: TableDef = TableDef {
    name: "tkgrp",
    keys: &["tkgrp"],
    items: items![
        "incalls": Sum, "intime": Sum, "abncalls": Sum, "i_inocc": Sum, "allinusetime": Sum,
    ],
};

/// Every table family, in the canonical order used by checksums and backups.
pub const TABLES: [&TableDef; 4] = [&SPLIT, &AGENT, &VDN, &TKGRP];

/// Items whose values are seconds (accrued in milliseconds, stored as whole seconds,
/// rounded down once per row at interval close).
pub fn is_seconds(item: &str) -> bool {
    item.ends_with("time") || item.starts_with("i_auxtime") || item == "i_inocc"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn item_names_are_unique_per_table() {
        for t in TABLES {
            let set: HashSet<_> = t.items.iter().map(|(n, _)| n).collect();
            assert_eq!(set.len(), t.items.len(), "{}", t.name);
        }
    }
}
