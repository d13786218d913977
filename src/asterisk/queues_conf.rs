//! Asterisk's `queues.conf` as defaults of the mapping (issue #16: "sensible defaults, from
//! `queues.conf` where it can be read"): each queue's name, `servicelevel`, `wrapuptime`
//! and static `member` lines. [`parse`] reads the text (no I/O); [`load`] reads a file;
//! [`super::Mapping::with_queues_conf`] merges the result under the TOML mapping.
//!
//! # The format, as Asterisk's `main/config.c` reads it
//! - `[name]` begins a section; `[name](!)` a template (never a queue itself);
//!   `[name](tpl1,tpl2)` a section that starts with a copy of those sections' lines, in
//!   that order, its own lines after them (so its own values win: `app_queue` applies a
//!   queue's lines in order); `[name](+)` adds lines to the section defined before;
//!   options combine (`[name](!,tpl)`). An unknown template, a header without `]` or
//!   `)`, a line before any section: errors (Asterisk refuses the file too).
//! - `key = value` and `key => value` are the same; keys are case-insensitive
//!   (`app_queue` compares them with `strcasecmp`); `key += more` appends to the value of
//!   the last `key`; a leading `\` escapes the first character of a key.
//! - `;` starts a comment to the end of the line, `\;` is a literal `;`, `;--` ... `--;`
//!   a comment over several lines.
//! - `#include`, `#tryinclude`, `#exec`: reported as not followed (a note), never an
//!   error; point `--queues-conf` at the included file instead (FreePBX:
//!   `queues_additional.conf`). Another `#` directive: a note, as Asterisk warns.
//! - A line without `=`: a note and skipped, as Asterisk warns and skips it.
//! - `[general]` (any case) holds global options, not a queue; a queue defined twice:
//!   the first one counts, as in `app_queue`'s "Queue 'x' already defined! Skipping!".
//!
//! `member => interface[,penalty[,membername[,state_interface[,ringinuse[,wrapuptime]]]]]`
//! (`app_queue`'s `reload_single_member`): the queue log names the member by
//! `membername`, or by `interface` when it has none. A member's own `wrapuptime`
//! (Asterisk 16+) is not taken: the mapping's wrap-up is per queue (a note says so).
//! Every other key is ignored ([`QueuesConf::ignored`] lists them: a queue has dozens).
//! A `servicelevel` or `wrapuptime` that is not a number of seconds is an error: Asterisk
//! would read it as 0 (`atoi`), and a wrong wrap-up books wrong ACW without a trace.
//!
//! # Why a parser of its own
//! No crate on crates.io parses Asterisk's format (searched: only INI parsers, and an
//! npm package). INI parsers (`rust-ini`, `configparser`) do not know `=>`, templates and
//! their inheritance, `(+)`, `;--` block comments, `\;` or `#include`, and reject or
//! silently misread lines Asterisk accepts; the format is small enough that the rules
//! above, checked against `main/config.c` (`process_text_line`,
//! `config_text_file_load`), are shorter than adapting one.

use std::collections::BTreeSet;
use std::path::Path;

/// One queue of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConf {
    pub name: String,
    /// The line of its `[name]` header.
    pub line: usize,
    /// `servicelevel`, seconds (own or inherited).
    pub service_level: Option<u16>,
    /// `wrapuptime`, seconds (own or inherited).
    pub wrapup_seconds: Option<u32>,
    /// Its static members, in file order (a template's first).
    pub members: Vec<MemberConf>,
}

/// One `member =>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberConf {
    pub interface: String,
    /// The name the queue log writes for it, when it is not the interface.
    pub membername: Option<String>,
    pub line: usize,
}

impl MemberConf {
    /// The member as the queue log names it.
    pub fn log_name(&self) -> &str {
        self.membername.as_deref().unwrap_or(&self.interface)
    }
}

/// What a `queues.conf` says about the queues, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueuesConf {
    pub queues: Vec<QueueConf>,
    /// Lines read but not acted on, with their line number: `#include` not followed, a
    /// line without `=`, a queue defined twice, a member's own wrap-up.
    pub notes: Vec<(usize, String)>,
    /// Keys of queue sections that were ignored (lowercase), for a debug log.
    pub ignored: BTreeSet<String>,
}

/// A line Asterisk's config reader would refuse, or a value the mapping cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ConfError {
    pub line: usize,
    pub reason: String,
}

/// A `queues.conf` that cannot be used, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct QueuesConfError {
    pub file: String,
    pub reason: String,
}

/// A section as read: its lines after inheritance, each (key lowercase, value, line).
#[derive(Debug)]
struct Section {
    name: String,
    line: usize,
    template: bool,
    vars: Vec<(String, String, usize)>,
}

/// Removes comments from one line; `depth` carries a `;-- ... --;` comment across
/// lines (they nest, as in Asterisk).
fn strip_comments(line: &str, depth: &mut u32) -> String {
    let b = line.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let block_start = |i: usize| b[i..].starts_with(b";--") && !b[i..].starts_with(b";---");
    let mut i = 0;
    while i < b.len() {
        if *depth > 0 {
            if b[i..].starts_with(b"--;") {
                *depth -= 1;
                i += 3;
            } else if block_start(i) {
                *depth += 1;
                i += 3;
            } else {
                i += 1;
            }
            continue;
        }
        match b[i] {
            b'\\' if b.get(i + 1) == Some(&b';') => {
                out.push(b';');
                i += 2;
            }
            b';' if block_start(i) => {
                *depth += 1;
                i += 3;
            }
            b';' => break,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Only ASCII bytes were removed: still UTF-8.
    String::from_utf8(out).expect("comment removal keeps UTF-8")
}

/// Reads a `queues.conf` text. See the module doc for the rules.
///
/// # Errors
/// A line Asterisk would refuse (no closing `]` or `)`, an unknown template, a line
/// before any section, an empty escape), a `member` without an interface, a
/// `servicelevel` or `wrapuptime` that is not a number of seconds: the error names the
/// line.
pub fn parse(text: &str) -> Result<QueuesConf, ConfError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = QueuesConf::default();
    let mut sections: Vec<Section> = Vec::new();
    let mut cur: Option<usize> = None;
    let mut depth = 0u32;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let err = |reason: String| ConfError { line: n, reason };
        let stripped = strip_comments(raw, &mut depth);
        let l = stripped.trim();
        if l.is_empty() {
            continue;
        }
        if let Some(rest) = l.strip_prefix('[') {
            let (name, after) = rest
                .split_once(']')
                .ok_or_else(|| err("no closing ']' in the section header".into()))?;
            let mut sec = Section {
                name: name.to_string(),
                line: n,
                template: false,
                vars: Vec::new(),
            };
            let mut append_to = None;
            if let Some(opts) = after.strip_prefix('(') {
                let (opts, _) = opts
                    .split_once(')')
                    .ok_or_else(|| err("no closing ')' after the section's options".into()))?;
                for o in opts.split(',') {
                    if o == "!" {
                        sec.template = true;
                    } else if o.starts_with('+') {
                        append_to = Some(
                            sections
                                .iter()
                                .position(|s| s.name.eq_ignore_ascii_case(name))
                                .ok_or_else(|| {
                                    err(format!(
                                        "[{name}](+) adds to a section that is not defined before it"
                                    ))
                                })?,
                        );
                    } else {
                        let base = sections
                            .iter()
                            .find(|s| s.name.eq_ignore_ascii_case(o))
                            .ok_or_else(|| {
                                err(format!(
                                    "[{name}] inherits from '{o}', which is not defined before it"
                                ))
                            })?;
                        sec.vars.extend(base.vars.iter().cloned());
                    }
                }
            }
            match append_to {
                Some(k) => {
                    sections[k].template |= sec.template;
                    sections[k].vars.append(&mut sec.vars);
                    cur = Some(k);
                }
                None => {
                    sections.push(sec);
                    cur = Some(sections.len() - 1);
                }
            }
        } else if let Some(d) = l.strip_prefix('#') {
            let (word, arg) = d.split_once(|c: char| c <= ' ').unwrap_or((d, ""));
            let note = match word.to_ascii_lowercase().as_str() {
                "include" | "tryinclude" | "exec" => {
                    format!("#{word} {} not followed", arg.trim())
                }
                _ => format!("unknown directive #{word}, skipped"),
            };
            out.notes.push((n, note));
        } else {
            let Some(k) = cur else {
                return Err(err("a setting before any [section]".into()));
            };
            let (escaped, body) = match l.strip_prefix('\\') {
                Some(b) if b.bytes().next().is_some_and(|c| c > b' ') => (true, b),
                Some(_) => return Err(err("an escape '\\' with nothing after it".into())),
                None => (false, l),
            };
            let Some(eq) = body[usize::from(escaped)..]
                .find('=')
                .map(|p| p + usize::from(escaped))
            else {
                out.notes.push((n, "no '=' in the line, skipped".into()));
                continue;
            };
            let (key, value, append) = if eq > 0 && body.as_bytes()[eq - 1] == b'+' {
                (&body[..eq - 1], &body[eq + 1..], true)
            } else {
                let v = &body[eq + 1..];
                (&body[..eq], v.strip_prefix('>').unwrap_or(v), false)
            };
            let key = key.trim().to_ascii_lowercase();
            if key.is_empty() {
                out.notes.push((n, "no key before '=', skipped".into()));
                continue;
            }
            let vars = &mut sections[k].vars;
            match vars.iter_mut().rev().find(|v| v.0 == key) {
                // As Asterisk: the text after "+=" as it is, blanks at the end trimmed.
                Some(last) if append => last.1 = format!("{}{value}", last.1).trim_end().into(),
                _ => vars.push((key, value.trim().to_string(), n)),
            }
        }
    }
    for s in &sections {
        if s.template || s.name.eq_ignore_ascii_case("general") {
            continue;
        }
        if out
            .queues
            .iter()
            .any(|q| q.name.eq_ignore_ascii_case(&s.name))
        {
            out.notes.push((
                s.line,
                format!(
                    "queue '{}' already defined, skipped (as Asterisk does)",
                    s.name
                ),
            ));
            continue;
        }
        out.queues.push(queue(s, &mut out.notes, &mut out.ignored)?);
    }
    out.notes.sort_by_key(|n| n.0);
    Ok(out)
}

/// The mapping's part of one queue section.
fn queue(
    s: &Section,
    notes: &mut Vec<(usize, String)>,
    ignored: &mut BTreeSet<String>,
) -> Result<QueueConf, ConfError> {
    let mut q = QueueConf {
        name: s.name.clone(),
        line: s.line,
        service_level: None,
        wrapup_seconds: None,
        members: Vec::new(),
    };
    for (key, value, line) in &s.vars {
        let bad = |what: &str| ConfError {
            line: *line,
            reason: format!("{key} = {value:?}: not {what}"),
        };
        match key.as_str() {
            "servicelevel" => {
                q.service_level = Some(
                    value
                        .parse()
                        .map_err(|_| bad("a number of seconds 0..=65535"))?,
                );
            }
            "wrapuptime" => {
                q.wrapup_seconds = Some(value.parse().map_err(|_| bad("a number of seconds"))?);
            }
            "member" => {
                let f: Vec<&str> = value.split(',').map(str::trim).collect();
                let interface = f[0].trim_matches('"');
                if interface.is_empty() {
                    return Err(ConfError {
                        line: *line,
                        reason: "member: no interface".into(),
                    });
                }
                let name = f.get(2).map(|m| m.trim_matches('"')).unwrap_or("");
                if f.get(5).is_some_and(|w| !w.is_empty()) {
                    notes.push((
                        *line,
                        format!(
                            "member {interface}'s own wrapuptime not used: the mapping's \
                             wrap-up is per queue"
                        ),
                    ));
                }
                q.members.push(MemberConf {
                    interface: interface.to_string(),
                    membername: (!name.is_empty() && name != interface).then(|| name.to_string()),
                    line: *line,
                });
            }
            _ => {
                ignored.insert(key.clone());
            }
        }
    }
    Ok(q)
}

/// Reads and parses a `queues.conf` file.
///
/// # Errors
/// The file cannot be read, or [`parse`] refuses it; the error names the file and the
/// line.
pub fn load(path: &Path) -> Result<QueuesConf, QueuesConfError> {
    let err = |reason: String| QueuesConfError {
        file: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    // Asterisk reads bytes; a name in Latin-1 must not stop the bridge.
    parse(&String::from_utf8_lossy(&bytes)).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../tests/fixtures/asterisk/queues.conf.sample-excerpt");
    const FREEPBX: &str = include_str!("../../tests/fixtures/asterisk/queues_additional.conf");

    fn err(text: &str) -> ConfError {
        parse(text).unwrap_err()
    }

    /// Asterisk's sample as shipped: every queue setting is commented out, so only
    /// `[general]` is left, which is not a queue.
    #[test]
    fn asterisk_sample_as_shipped_has_no_queue() {
        let c = parse(SAMPLE).unwrap();
        assert_eq!(c.queues, vec![]);
        assert_eq!(c.notes, vec![]);
    }

    /// The sample with its `[markq]` example switched on, as an operator does: remove
    /// the `;` before the header, `servicelevel`, `wrapuptime` and the `member` lines.
    #[test]
    fn asterisk_sample_with_markq_on() {
        let text: String = SAMPLE
            .lines()
            .map(|l| {
                let on = ["[markq]", "servicelevel", "wrapuptime", "member =>"]
                    .iter()
                    .any(|k| l.strip_prefix(';').is_some_and(|r| r.starts_with(k)));
                if on {
                    format!("{}\n", &l[1..])
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let c = parse(&text).unwrap();
        assert_eq!(c.queues.len(), 1, "{c:?}");
        let q = &c.queues[0];
        assert_eq!(q.name, "markq");
        assert_eq!(q.service_level, Some(60));
        assert_eq!(q.wrapup_seconds, Some(15));
        let names: Vec<(&str, &str)> = q
            .members
            .iter()
            .map(|m| (m.interface.as_str(), m.log_name()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("DAHDI/1", "DAHDI/1"),
                ("DAHDI/2", "DAHDI/2"),
                ("DAHDI/3", "Bob Johnson"),
                ("Local/1001@agents", "May Flowers"),
                ("Local/1002@agents", "John Doe"),
                ("Local/1000@default", "John Smith"),
                ("Local/2000@default", "Lorem Ipsum"),
            ]
        );
    }

    #[test]
    fn freepbx_queues_additional() {
        let c = parse(FREEPBX).unwrap();
        let q: Vec<(&str, Option<u16>, Option<u32>, usize)> = c
            .queues
            .iter()
            .map(|q| {
                (
                    q.name.as_str(),
                    q.service_level,
                    q.wrapup_seconds,
                    q.members.len(),
                )
            })
            .collect();
        assert_eq!(
            q,
            vec![
                ("8000", Some(30), Some(15), 3),
                ("8001", Some(60), Some(0), 2)
            ]
        );
        let m = &c.queues[0].members;
        assert_eq!(m[0].log_name(), "Local/201@from-queue/n");
        assert_eq!(m[1].log_name(), "Bob Jones");
        assert_eq!(m[2].log_name(), "203");
        // ";----...;" lines are plain comments, not the start of a ";--" block.
        assert!(c.ignored.contains("strategy") && c.ignored.contains("context"));
        assert!(!c.ignored.contains("member") && !c.ignored.contains("wrapuptime"));
    }

    #[test]
    fn templates_inherit_and_own_lines_win() {
        let c = parse(
            "[general]\n\
             persistentmembers = yes\n\
             [base](!)\n\
             wrapuptime = 10\n\
             servicelevel = 20\n\
             member => PJSIP/100\n\
             [sla](!)\n\
             servicelevel = 45\n\
             [support](base)\n\
             wrapuptime = 30\n\
             [sales](base,sla)\n\
             member => PJSIP/101\n\
             [billing](!,base)\n\
             [BILLING-2](billing)\n",
        )
        .unwrap();
        type Row<'a> = (&'a str, Option<u16>, Option<u32>, Vec<&'a str>);
        let q: Vec<Row> = c
            .queues
            .iter()
            .map(|q| {
                let m = q.members.iter().map(|m| m.interface.as_str()).collect();
                (q.name.as_str(), q.service_level, q.wrapup_seconds, m)
            })
            .collect();
        assert_eq!(
            q,
            vec![
                ("support", Some(20), Some(30), vec!["PJSIP/100"]),
                ("sales", Some(45), Some(10), vec!["PJSIP/100", "PJSIP/101"]),
                ("BILLING-2", Some(20), Some(10), vec!["PJSIP/100"]),
            ]
        );
    }

    #[test]
    fn comments_arrows_escapes_appends_and_directives() {
        let c = parse(
            "#include \"queues_custom.conf\"\n\
             [q;1] ; a name with an escaped semicolon? no: the comment cuts it\n\
             [q\\;2]\n\
             wrapuptime=>5 ; five\n\
             ;-- a block comment\n\
             wrapuptime = 99\n\
             still in it --; servicelevel = 7\n\
             WrapUpTime += 0\n\
             member=>PJSIP/300,0,Ann\\; B,PJSIP/300,no,20\n\
             this line has no equal sign\n\
             #exec /usr/bin/make-queues\n\
             #frobnicate\n\
             [q\\;2]\n\
             wrapuptime = 1\n\
             [q\\;2](+)\n\
             musicclass = default\n",
        )
        .unwrap_err();
        // "[q;1]": the comment cuts the header before its ']'.
        assert_eq!(c.line, 2, "{c}");
        assert!(c.reason.contains("no closing ']'"), "{c}");
        let c = parse(
            "#include \"queues_custom.conf\"\n\
             [q\\;2]\n\
             wrapuptime=>5 ; five\n\
             ;-- a block comment\n\
             wrapuptime = 99\n\
             still in it --; servicelevel = 7\n\
             WrapUpTime +=0\n\
             member=>PJSIP/300,0,Ann\\; B,PJSIP/300,no,20\n\
             this line has no equal sign\n\
             #exec /usr/bin/make-queues\n\
             #frobnicate\n\
             [q\\;2]\n\
             wrapuptime = 1\n\
             [q\\;2](+)\n\
             musicclass = default\n",
        )
        .unwrap();
        assert_eq!(c.queues.len(), 1);
        let q = &c.queues[0];
        assert_eq!(q.name, "q;2");
        assert_eq!(q.service_level, Some(7));
        // "5" then "+=0": "50".
        assert_eq!(q.wrapup_seconds, Some(50));
        assert_eq!(q.members[0].log_name(), "Ann; B");
        assert_eq!(c.ignored, BTreeSet::from(["musicclass".to_string()]));
        let notes: Vec<usize> = c.notes.iter().map(|n| n.0).collect();
        assert_eq!(notes, vec![1, 8, 9, 10, 11, 12], "{:?}", c.notes);
        assert!(c.notes[0]
            .1
            .contains("#include \"queues_custom.conf\" not followed"));
        assert!(c.notes[1].1.contains("own wrapuptime"), "{:?}", c.notes);
        assert!(c.notes[2].1.contains("no '='"));
        assert!(c.notes[3].1.contains("#exec"));
        assert!(c.notes[4].1.contains("unknown directive #frobnicate"));
        assert!(c.notes[5].1.contains("already defined"));
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("wrapuptime = 5\n", 1, "before any [section]"),
            ("[a]\nwrapuptime = 5\n[b\n", 3, "no closing ']'"),
            ("[a](!\n", 1, "no closing ')'"),
            ("[a]\n\n[b](nosuch)\n", 3, "inherits from 'nosuch'"),
            ("[a](+)\n", 1, "not defined before it"),
            ("[a]\n;\nwrapuptime = 1O\n", 3, "wrapuptime = \"1O\""),
            ("[a]\nservicelevel = -1\n", 2, "servicelevel"),
            ("[a]\nservicelevel = 70000\n", 2, "0..=65535"),
            ("[a]\nmember => ,0,Ann\n", 2, "no interface"),
            ("[a]\n\\\n", 2, "escape"),
        ];
        for (text, line, what) in cases {
            let e = err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.reason.contains(what), "{text:?}: {e}");
        }
        // A bad value inherited from a template is found at the template's line.
        let e = err("[t](!)\nwrapuptime = x\n[q](t)\n");
        assert_eq!(e.line, 2, "{e}");
        // A template's bad value alone is no error: a template is never a queue.
        assert!(parse("[t](!)\nwrapuptime = x\n").is_ok());
    }

    #[test]
    fn load_names_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("queues.conf");
        std::fs::write(&p, "[support]\nwrapuptime = soon\n").unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: line 2: wrapuptime = \"soon\": not a number of seconds",
                p.display()
            )
        );
        let e = load(&d.path().join("nosuch.conf")).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: ", d.path().join("nosuch.conf").display())));
        // Latin-1 bytes in a member name do not stop the reader.
        std::fs::write(&p, b"[support]\nmember => PJSIP/201,0,Jos\xe9\n").unwrap();
        assert_eq!(load(&p).unwrap().queues[0].members.len(), 1);
    }
}
