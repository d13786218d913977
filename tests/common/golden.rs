//! Golden output: a command's rendered output compared whole with the text it must be,
//! as ripgrep's test macros do (`eqnice!`), so that a changed word, a lost line or a
//! reordered field fails the test and shows both texts.
//!
//! What varies from run to run is replaced by a placeholder in one place,
//! [`Normaliser::apply`], and nowhere else:
//! - a path or value the test knows (its temporary directory, a backup's creation time),
//!   registered with [`Normaliser::text`] → the name given, e.g. `[DIR]`;
//! - a time taken, `0.10 s`, `12.3 s` → `[SECS] s`;
//! - a rate, `749850 events/s` → `[RATE] events/s`.
//!
//! Everything else, counts, interval times, file names under `[DIR]`, must match as is.

use regex::Regex;
use std::path::Path;

/// Replaces the varying parts of an output by placeholders (see the module doc).
#[derive(Default)]
pub struct Normaliser {
    /// Exact texts and their placeholders; the longest is replaced first, so a path
    /// inside another registered path is not cut in two.
    exact: Vec<(String, String)>,
}

impl Normaliser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces every occurrence of `value` with `name`.
    pub fn text(mut self, value: impl Into<String>, name: &str) -> Self {
        self.exact.push((value.into(), name.to_string()));
        self.exact.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
        self
    }

    /// Replaces the path `p` (as `Path::display` shows it) with `name`.
    pub fn path(self, p: &Path, name: &str) -> Self {
        self.text(p.display().to_string(), name)
    }

    /// The output with its varying parts replaced.
    pub fn apply(&self, out: &str) -> String {
        let mut s = out.to_string();
        for (v, name) in &self.exact {
            s = s.replace(v.as_str(), name);
        }
        let secs = Regex::new(r"\b\d+\.\d+ s\b").unwrap();
        let rate = Regex::new(r"\b\d+ events/s\b").unwrap();
        let s = secs.replace_all(&s, "[SECS] s");
        rate.replace_all(&s, "[RATE] events/s").into_owned()
    }
}

/// # Panics
/// Unless `got` equals `want` whole; the message shows both and the first line that
/// differs.
pub fn assert_golden(what: &str, got: &str, want: &str) {
    if got == want {
        return;
    }
    let first = got
        .lines()
        .zip(want.lines())
        .position(|(g, w)| g != w)
        .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
    panic!(
        "{what}: the output differs from the golden text at line {}\n\
         ---- got ----\n{got}\n---- want ----\n{want}\n-------------",
        first + 1
    );
}
