//! The table directory: which tables a backup holds, their columns by name and type, and
//! how a reader maps a file's columns onto this release's (by name; unknown columns are
//! ignored, missing ones read as 0 or the empty string).

use crate::domain::PeriodKind;
use crate::items::TABLES;

/// What kind of rows a table holds, and so which block kind carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    /// Intrahour `h*` table: rows belong to one ACD interval.
    Interval,
    /// Daily, weekly or monthly summary.
    Summary,
    /// ACD administration data.
    Admin,
    /// Local system administration data.
    Local,
}

impl TableKind {
    pub(crate) fn code(self) -> u8 {
        match self {
            TableKind::Interval => 1,
            TableKind::Summary => 2,
            TableKind::Admin => 3,
            TableKind::Local => 4,
        }
    }
    pub(crate) fn from_code(c: u8) -> Option<TableKind> {
        Some(match c {
            1 => TableKind::Interval,
            2 => TableKind::Summary,
            3 => TableKind::Admin,
            4 => TableKind::Local,
            _ => return None,
        })
    }
}

/// A column's storage type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// Signed 64-bit integer, little-endian, 8 bytes.
    Int,
    /// UTF-8 string: u32 length, then the bytes.
    Text,
}

impl ColumnType {
    pub(crate) fn code(self) -> u8 {
        match self {
            ColumnType::Int => 1,
            ColumnType::Text => 2,
        }
    }
    pub(crate) fn from_code(c: u8) -> Option<ColumnType> {
        match c {
            1 => Some(ColumnType::Int),
            2 => Some(ColumnType::Text),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
}

/// One table of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub kind: TableKind,
    /// The SQL table name (`hsplit`, `dagent`, `skill_def`, `local_settings`).
    pub name: String,
    /// How many leading columns form the row's key. Interval tables: `acd`, the entity
    /// keys, `istart` (so the last key column is `istart`); summaries: `acd`, the entity
    /// keys, `row_date`; admin: `acd` and the entity; local: `key`.
    pub key_columns: u16,
    pub columns: Vec<Column>,
}

impl TableSchema {
    pub(crate) fn all_int(&self) -> bool {
        self.columns.iter().all(|c| c.ty == ColumnType::Int)
    }
    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }
}

fn ints(names: &[&str]) -> Vec<Column> {
    names
        .iter()
        .map(|n| Column {
            name: (*n).to_owned(),
            ty: ColumnType::Int,
        })
        .collect()
}

fn typed(cols: &[(&str, ColumnType)]) -> Vec<Column> {
    cols.iter()
        .map(|(n, ty)| Column {
            name: (*n).to_owned(),
            ty: *ty,
        })
        .collect()
}

/// This release's table directory, in the order the writer records it: the `h*` tables
/// in `items::TABLES` order (the content checksum depends on it), then the daily, weekly
/// and monthly summaries, the ACD administration tables and `local_settings`.
///
/// Interval rows are `acd, keys..., istart, items...` (`row_date`, `starttime` and
/// `intrvl` are the interval's, stored once in its manifest entry). Summary rows are
/// `acd, keys..., row_date, items..., incomplete` with `row_date` as the integer
/// `YYYYMMDD` ([`super::date_to_i64`]).
pub fn release_tables() -> Vec<TableSchema> {
    use ColumnType::{Int, Text};
    let mut out = Vec::new();
    for t in TABLES {
        let mut cols = vec!["acd"];
        cols.extend(t.keys);
        cols.push("istart");
        cols.extend(t.items.iter().map(|(n, _)| *n));
        out.push(TableSchema {
            kind: TableKind::Interval,
            name: format!("h{}", t.name),
            key_columns: (t.keys.len() + 2) as u16,
            columns: ints(&cols),
        });
    }
    for &period in PeriodKind::ALL {
        for t in TABLES {
            let mut cols = vec!["acd"];
            cols.extend(t.keys);
            cols.push("row_date");
            cols.extend(t.items.iter().map(|(n, _)| *n));
            cols.push("incomplete");
            out.push(TableSchema {
                kind: TableKind::Summary,
                name: period.table(t.name),
                key_columns: (t.keys.len() + 2) as u16,
                columns: ints(&cols),
            });
        }
    }
    let admin: [(&str, Vec<Column>); 3] = [
        (
            "skill_def",
            typed(&[
                ("acd", Int),
                ("skill", Int),
                ("service_level", Int),
                ("periods", Text),
                ("name", Text),
            ]),
        ),
        (
            "vdn_def",
            typed(&[
                ("acd", Int),
                ("vdn", Int),
                ("service_level", Int),
                ("name", Text),
            ]),
        ),
        (
            "tkgrp_def",
            typed(&[
                ("acd", Int),
                ("tkgrp", Int),
                ("trunks", Int),
                ("name", Text),
            ]),
        ),
    ];
    for (name, columns) in admin {
        out.push(TableSchema {
            kind: TableKind::Admin,
            name: name.to_owned(),
            key_columns: 2,
            columns,
        });
    }
    out.push(TableSchema {
        kind: TableKind::Local,
        name: "local_settings".to_owned(),
        key_columns: 1,
        columns: typed(&[("key", Text), ("value", Text)]),
    });
    out
}

/// How one of this release's tables is read from a file's table.
#[derive(Debug, Clone)]
pub(crate) struct Mapping {
    /// Index of the release table in `release_tables()`.
    pub release: usize,
    /// For each release column, the file column it comes from (`None`: default).
    pub cols: Vec<Option<usize>>,
}

/// For each file table, the release table it maps to (`None`: unknown table, skipped).
///
/// A file column maps to the release column of the same name when the types agree; a
/// column whose type changed is treated as missing (read as the default), which keeps
/// "map by name" total.
pub(crate) fn map_tables(file: &[TableSchema], release: &[TableSchema]) -> Vec<Option<Mapping>> {
    file.iter()
        .map(|ft| {
            let ri = release
                .iter()
                .position(|rt| rt.name == ft.name && rt.kind == ft.kind)?;
            let rt = &release[ri];
            let cols = rt
                .columns
                .iter()
                .map(|rc| {
                    ft.columns
                        .iter()
                        .position(|fc| fc.name == rc.name && fc.ty == rc.ty)
                })
                .collect();
            Some(Mapping { release: ri, cols })
        })
        .collect()
}
