//! What a queue log can give, item by item, as data: the "exact" and "configured"
//! columns of docs/asterisk.md's table "Item by item: what a queue log can give".
//!
//! The chain proof (`tests/asterisk_chain.rs`, the simulator's queue-log output in
//! `sim::queuelog`) compares a collector fed by the bridge with the simulator's truth on
//! these items only; everything else a queue log does not hold. `htkgrp` has no exact
//! item. A unit test keeps every name a real item of `items::TABLES`.

/// One table family's claims.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    /// The family (`items::TableDef::name`): `split`, `agent`, `vdn`.
    pub table: &'static str,
    /// Items that are what Asterisk did, to the second.
    pub exact: &'static [&'static str],
    /// Items that are exact when the mapping's `wrapup_seconds` is Asterisk's
    /// `wrapuptime` (the ACW the bridge books), else the configured value.
    pub configured: &'static [&'static str],
}

/// docs/asterisk.md's table, row by row (`htkgrp` has no exact or configured item).
pub const CLAIMS: [Claim; 3] = [
    Claim {
        table: "split",
        exact: &[
            "callsoffered",
            "acdcalls",
            "abncalls",
            "abntime",
            "anstime",
            "maxocwtime",
            "acceptable",
            "slvlabns",
            "acdcalls1",
            "acdcalls2",
            "acdcalls3",
            "acdcalls4",
            "acdcalls5",
            "acdcalls6",
            "acdcalls7",
            "acdcalls8",
            "acdcalls9",
            "acdcalls10",
            "abncalls1",
            "abncalls2",
            "abncalls3",
            "abncalls4",
            "abncalls5",
            "abncalls6",
            "abncalls7",
            "abncalls8",
            "abncalls9",
            "abncalls10",
            "transferred",
            "outflowcalls",
            "inflowcalls",
            "dequecalls",
            "i_arrived",
            "i_stafftime",
            "i_auxtime",
            "i_auxtime0",
            "i_auxtime1",
            "i_auxtime2",
            "i_auxtime3",
            "i_auxtime4",
            "i_auxtime5",
            "i_auxtime6",
            "i_auxtime7",
            "i_auxtime8",
            "i_auxtime9",
            "i_acdtime",
            "maxstaffed",
        ],
        configured: &["acwtime", "i_acwtime"],
    },
    Claim {
        table: "agent",
        exact: &[
            "acdcalls",
            "transferred",
            "i_stafftime",
            "i_acdtime",
            "i_auxtime",
            "i_auxtime0",
            "i_auxtime1",
            "i_auxtime2",
            "i_auxtime3",
            "i_auxtime4",
            "i_auxtime5",
            "i_auxtime6",
            "i_auxtime7",
            "i_auxtime8",
            "i_auxtime9",
        ],
        configured: &["acwtime", "i_acwtime"],
    },
    Claim {
        table: "vdn",
        exact: &[
            "incalls",
            "acdcalls",
            "abncalls",
            "transferred",
            "disccalls",
        ],
        configured: &["acwtime"],
    },
];

/// Whether `item` of family `table` (`split`, or `hsplit`) is exact from a queue log;
/// with `configured`, the configured items count as exact too (the mapping's wrap-up
/// equals Asterisk's).
pub fn is_exact(table: &str, item: &str, configured: bool) -> bool {
    let table = table.strip_prefix('h').unwrap_or(table);
    CLAIMS.iter().any(|c| {
        c.table == table && (c.exact.contains(&item) || configured && c.configured.contains(&item))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_claim_is_a_real_item() {
        for c in CLAIMS {
            let def = crate::items::TABLES
                .iter()
                .find(|t| t.name == c.table)
                .unwrap_or_else(|| panic!("no table {}", c.table));
            for i in c.exact.iter().chain(c.configured) {
                assert!(
                    def.items.iter().any(|(n, _)| n == i),
                    "{}.{i} is not an item",
                    c.table
                );
            }
        }
        assert!(is_exact("hsplit", "acdcalls", false));
        assert!(!is_exact("hsplit", "acwtime", false));
        assert!(is_exact("hsplit", "acwtime", true));
        assert!(!is_exact("hagent", "i_availtime", true));
        assert!(!is_exact("htkgrp", "incalls", true));
    }

    /// The table in docs/asterisk.md says the same as [`CLAIMS`].
    #[test]
    fn the_manual_says_the_same() {
        let doc = include_str!("../../docs/asterisk.md");
        for c in CLAIMS {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `h{}` |", c.table)))
                .unwrap_or_else(|| panic!("no row for h{}", c.table));
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            // cells: "", table, exact, configured, approximation, not available, ""
            let names = |cell: &str| -> Vec<String> {
                let mut out = Vec::new();
                let mut depth = 0;
                let mut cur = String::new();
                for ch in cell.chars() {
                    match ch {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        ',' if depth == 0 => {
                            out.push(std::mem::take(&mut cur).trim().to_string());
                        }
                        _ if depth == 0 => cur.push(ch),
                        _ => {}
                    }
                }
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                // `acdcalls1..10` stands for ten items.
                out.into_iter()
                    .flat_map(|n| match n.split_once("..") {
                        Some((head, hi)) => {
                            let stem = head.trim_end_matches(|c: char| c.is_ascii_digit());
                            let lo: u32 = head[stem.len()..].parse().unwrap();
                            let hi: u32 = hi.parse().unwrap();
                            (lo..=hi).map(|i| format!("{stem}{i}")).collect::<Vec<_>>()
                        }
                        None => vec![n],
                    })
                    .collect()
            };
            let mut doc_exact = names(cells[2]);
            let mut ours: Vec<String> = c.exact.iter().map(|s| s.to_string()).collect();
            doc_exact.sort();
            ours.sort();
            assert_eq!(doc_exact, ours, "h{} exact", c.table);
            let mut doc_conf = names(cells[3]);
            let mut ours: Vec<String> = c.configured.iter().map(|s| s.to_string()).collect();
            doc_conf.sort();
            ours.sort();
            assert_eq!(doc_conf, ours, "h{} configured", c.table);
        }
    }
}
