//! Fault scripts: what goes wrong, on which link, at which switch time.
//!
//! Owns the fault grammar (the one-line `--faults` form and the script file, one item per
//! line) and its resolution to switch seconds; documented in `docs/linksim.md`. Applying
//! a fault is the switch's business (`switch.rs`).
//!
//! ```text
//! item    = [link ":"] kind "@" time ["-" time] ["=" value]
//! link    = link name (as in --listen) | "*"         (every link)
//! kind    = down | halfopen | slow | garbage | truncate | restart | clock
//! time    = HH:MM[:SS]           next such local time at or after the start
//!         | YYYY-MM-DDTHH:MM[:SS] local date-time
//!         | +DURATION            after the start, e.g. +90s, +10m, +1h30m
//! ```

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The link is down for the window: connections closed, the listener dropped (new
    /// connections are refused) and bound again when the window ends.
    Down,
    /// The link stops sending (no events, no heartbeats) without closing, for the window.
    HalfOpen,
    /// Sends are throttled to `value` events per second for the window.
    Slow(u32),
    /// Garbage bytes are written on the link's connection.
    Garbage,
    /// Half a frame is written, then the connection is closed.
    Truncate,
    /// Switch restart: new epoch, seq back to 1, buffers cleared, every link dropped.
    Restart,
    /// The switch clock is set forward (positive) or back (negative) by this many seconds.
    Clock(i64),
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultKind::Down => write!(f, "down"),
            FaultKind::HalfOpen => write!(f, "half-open"),
            FaultKind::Slow(n) => write!(f, "slow ({n} events/s)"),
            FaultKind::Garbage => write!(f, "garbage"),
            FaultKind::Truncate => write!(f, "truncated frame"),
            FaultKind::Restart => write!(f, "switch restart"),
            FaultKind::Clock(d) => write!(f, "clock {d:+} s"),
        }
    }
}

impl std::fmt::Display for LinkSel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkSel::Switch => write!(f, "the switch"),
            LinkSel::All => write!(f, "every link"),
            LinkSel::Name(n) => write!(f, "link {n}"),
        }
    }
}

impl FaultKind {
    fn windowed(self) -> bool {
        matches!(
            self,
            FaultKind::Down | FaultKind::HalfOpen | FaultKind::Slow(_)
        )
    }
    fn per_link(self) -> bool {
        !matches!(self, FaultKind::Restart | FaultKind::Clock(_))
    }
}

/// Which links a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkSel {
    /// Not a per-link fault (restart, clock).
    Switch,
    All,
    Name(String),
}

/// A time as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    /// Seconds after local midnight: the next such time at or after the start.
    TimeOfDay(u32),
    Local(NaiveDateTime),
    /// Seconds after the start.
    After(i64),
}

/// One parsed fault item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub link: LinkSel,
    pub kind: FaultKind,
    pub at: TimeSpec,
    pub until: Option<TimeSpec>,
}

/// What is wrong with a fault script or a fault's resolution; each names the item (or
/// the line, or the link) it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// An item that does not follow the grammar, with what is wrong with it.
    #[error("fault {item:?}: {why}")]
    Item { item: String, why: String },
    /// A script line holding a bad item (1-based line number).
    #[error("line {line}: {source}")]
    Line {
        line: usize,
        source: Box<FaultError>,
    },
    /// A fault on a link the switch does not serve.
    #[error("fault on link {link:?}: no such link (links: {links})")]
    UnknownLink { link: String, links: String },
    /// A window whose end is not after its start, once resolved.
    #[error("fault {fault}: window ends before it starts")]
    Backwards { fault: String },
}

/// A fault with its instants resolved to switch seconds (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub link: LinkSel,
    pub kind: FaultKind,
    pub at: i64,
    /// End of the window (windowed kinds only).
    pub until: Option<i64>,
}

/// Parses the one-line form: items separated by commas.
///
/// # Errors
/// A message naming the item and what is wrong with it.
pub fn parse_line(s: &str) -> Result<Vec<Fault>, FaultError> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(parse_item)
        .collect()
}

/// Parses a script file's text: one or more items per line (comma-separated), `#` starts
/// a comment.
///
/// # Errors
/// A message naming the line and the item.
pub fn parse_script(text: &str) -> Result<Vec<Fault>, FaultError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        out.extend(parse_line(line).map_err(|e| FaultError::Line {
            line: n + 1,
            source: Box::new(e),
        })?);
    }
    Ok(out)
}

fn parse_item(item: &str) -> Result<Fault, FaultError> {
    let err = |why: &str| FaultError::Item {
        item: item.to_owned(),
        why: why.to_owned(),
    };
    let (head, time) = item
        .split_once('@')
        .ok_or_else(|| err("expected KIND@TIME"))?;
    let (link, kind) = match head.split_once(':') {
        Some((l, k)) => (Some(l.trim()), k.trim()),
        None => (None, head.trim()),
    };
    let (time, value) = match time.split_once('=') {
        Some((t, v)) => (t.trim(), Some(v.trim())),
        None => (time.trim(), None),
    };
    let kind = match (kind, value) {
        ("down", None) => FaultKind::Down,
        ("halfopen", None) => FaultKind::HalfOpen,
        ("slow", None) => FaultKind::Slow(50),
        ("slow", Some(v)) => FaultKind::Slow(
            v.parse()
                .ok()
                .filter(|&x| x > 0)
                .ok_or_else(|| err("slow rate must be a positive number of events/s"))?,
        ),
        ("garbage", None) => FaultKind::Garbage,
        ("truncate", None) => FaultKind::Truncate,
        ("restart", None) => FaultKind::Restart,
        ("clock", Some(v)) => {
            let (sign, rest) = match v.as_bytes().first() {
                Some(b'-') => (-1, &v[1..]),
                Some(b'+') => (1, &v[1..]),
                _ => return Err(err("clock needs =+DURATION or =-DURATION")),
            };
            let d = parse_duration(rest).ok_or_else(|| err("bad clock duration"))?;
            if d == 0 {
                return Err(err("clock change of 0"));
            }
            FaultKind::Clock(sign * d)
        }
        ("clock", None) => return Err(err("clock needs =+DURATION or =-DURATION")),
        (k, Some(_)) if ["down", "halfopen", "garbage", "truncate", "restart"].contains(&k) => {
            return Err(err("this kind takes no =value"))
        }
        (k, _) => return Err(err(&format!("unknown kind {k:?}"))),
    };
    let link = match (kind.per_link(), link) {
        (true, Some("*")) => LinkSel::All,
        (true, Some(l)) if !l.is_empty() => LinkSel::Name(l.to_string()),
        (true, _) => return Err(err("needs a link: A:KIND@... or *:KIND@...")),
        (false, None) => LinkSel::Switch,
        (false, Some(_)) => return Err(err("restart and clock apply to the whole switch")),
    };
    // Local date-times contain '-': a window's separator is the '-' after the 'T'.
    let (at, until) = match time.find('T') {
        Some(p) => match time[p..].find('-') {
            Some(q) => (&time[..p + q], Some(&time[p + q + 1..])),
            None => (time, None),
        },
        None => match time.split_once('-') {
            Some((a, b)) => (a, Some(b)),
            None => (time, None),
        },
    };
    let at = parse_time(at.trim()).ok_or_else(|| err("bad time"))?;
    let until = match until {
        Some(u) => Some(parse_time(u.trim()).ok_or_else(|| err("bad end time"))?),
        None => None,
    };
    match (kind.windowed(), until) {
        (true, None) => return Err(err("needs a window: @FROM-TO")),
        (false, Some(_)) => return Err(err("takes a single time, not a window")),
        _ => {}
    }
    Ok(Fault {
        link,
        kind,
        at,
        until,
    })
}

/// `90s`, `10m`, `1h30m`, `2h`, or plain seconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<i64>() {
        return (n >= 0).then_some(n);
    }
    let mut total = 0i64;
    let mut num = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
        } else {
            let n: i64 = num.parse().ok()?;
            num.clear();
            total += n * match ch {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                _ => return None,
            };
        }
    }
    num.is_empty().then_some(total)
}

fn parse_time(s: &str) -> Option<TimeSpec> {
    if let Some(d) = s.strip_prefix('+') {
        return parse_duration(d).map(TimeSpec::After);
    }
    if s.contains('T') {
        for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
            if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
                return Some(TimeSpec::Local(t));
            }
        }
        return None;
    }
    for f in ["%H:%M:%S", "%H:%M"] {
        if let Ok(t) = NaiveTime::parse_from_str(s, f) {
            use chrono::Timelike;
            return Some(TimeSpec::TimeOfDay(t.num_seconds_from_midnight()));
        }
    }
    None
}

fn resolve_time(t: TimeSpec, start: i64, tz: &Tz) -> i64 {
    let local = |n: NaiveDateTime| {
        tz.from_local_datetime(&n)
            .earliest()
            .map(|x| x.timestamp())
            // In a spring-forward gap: the instant an hour later.
            .unwrap_or_else(|| {
                tz.from_local_datetime(&(n + chrono::Duration::hours(1)))
                    .earliest()
                    .map(|x| x.timestamp())
                    .unwrap_or(start)
            })
    };
    match t {
        TimeSpec::After(d) => start + d,
        TimeSpec::Local(n) => local(n),
        TimeSpec::TimeOfDay(secs) => {
            let day0: NaiveDate = tz
                .timestamp_opt(start, 0)
                .single()
                .expect("unique")
                .date_naive();
            for d in 0..3 {
                let n = (day0 + chrono::Duration::days(d))
                    .and_hms_opt(0, 0, 0)
                    .expect("midnight")
                    + chrono::Duration::seconds(secs as i64);
                let x = local(n);
                if x >= start {
                    return x;
                }
            }
            unreachable!("a time of day recurs within three days")
        }
    }
}

/// Resolves times against the run's start (UTC seconds) in the profile's zone and checks
/// the link names.
///
/// # Errors
/// An unknown link name, or a window that ends before it starts.
pub fn resolve(
    faults: &[Fault],
    start: i64,
    tz: &Tz,
    links: &[String],
) -> Result<Vec<Resolved>, FaultError> {
    let mut out = Vec::new();
    for f in faults {
        if let LinkSel::Name(n) = &f.link {
            if !links.contains(n) {
                return Err(FaultError::UnknownLink {
                    link: n.clone(),
                    links: links.join(", "),
                });
            }
        }
        let at = resolve_time(f.at, start, tz);
        let until = f.until.map(|u| resolve_time(u, start, tz));
        if let Some(u) = until {
            if u <= at {
                return Err(FaultError::Backwards {
                    fault: format!("{f:?}"),
                });
            }
        }
        out.push(Resolved {
            link: f.link.clone(),
            kind: f.kind,
            at,
            until,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example_parses() {
        let f = parse_line(
            "A:down@10:15-10:50,B:garbage@11:00,restart@12:00,A:halfopen@13:00-13:20,\
             clock@14:00=-10m,*:down@15:00-15:05",
        )
        .unwrap();
        assert_eq!(f.len(), 6);
        assert_eq!(
            f[0],
            Fault {
                link: LinkSel::Name("A".into()),
                kind: FaultKind::Down,
                at: TimeSpec::TimeOfDay(10 * 3600 + 15 * 60),
                until: Some(TimeSpec::TimeOfDay(10 * 3600 + 50 * 60)),
            }
        );
        assert_eq!(f[1].kind, FaultKind::Garbage);
        assert_eq!(f[1].until, None);
        assert_eq!(f[2].link, LinkSel::Switch);
        assert_eq!(f[2].kind, FaultKind::Restart);
        assert_eq!(f[3].kind, FaultKind::HalfOpen);
        assert_eq!(f[4].kind, FaultKind::Clock(-600));
        assert_eq!(f[4].at, TimeSpec::TimeOfDay(14 * 3600));
        assert_eq!(f[5].link, LinkSel::All);
    }

    #[test]
    fn relative_and_absolute_times() {
        let f = parse_line("A:slow@+1h30m-+2h=200,B:truncate@2024-03-04T10:00:30").unwrap();
        assert_eq!(f[0].kind, FaultKind::Slow(200));
        assert_eq!(f[0].at, TimeSpec::After(5400));
        assert_eq!(f[0].until, Some(TimeSpec::After(7200)));
        assert!(matches!(f[1].at, TimeSpec::Local(_)));
        let f = parse_line("A:down@2024-03-04T10:00-2024-03-04T10:05").unwrap();
        assert!(matches!(f[0].until, Some(TimeSpec::Local(_))));
    }

    #[test]
    fn errors_name_the_item() {
        for bad in [
            "down@10:00-10:05",        // no link
            "A:down@10:00",            // no window
            "A:garbage@10:00-10:05",   // window on an instant fault
            "A:restart@10:00",         // restart is switch-wide
            "clock@10:00",             // no amount
            "A:explode@10:00",         // unknown kind
            "A:down@25:00-26:00",      // bad time
            "A:slow@10:00-10:05=fast", // bad rate
        ] {
            let e = parse_line(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn resolution_uses_the_zone_and_the_start() {
        let tz: Tz = "Europe/London".parse().unwrap();
        // 2024-01-15 09:00:00 UTC = 09:00 local.
        let start = 1_705_309_200;
        let f = parse_line("A:down@10:15-10:50,B:garbage@08:00,restart@+90s").unwrap();
        let r = resolve(&f, start, &tz, &["A".into(), "B".into()]).unwrap();
        assert_eq!(r[0].at, start + 75 * 60);
        assert_eq!(r[0].until, Some(start + 110 * 60));
        // 08:00 has passed on the start day: the next day's.
        assert_eq!(r[1].at, start + 23 * 3600);
        assert_eq!(r[2].at, start + 90);
        assert!(resolve(
            &parse_line("C:garbage@10:00").unwrap(),
            start,
            &tz,
            &["A".into()]
        )
        .unwrap_err()
        .to_string()
        .contains("C"));
    }

    #[test]
    fn script_with_comments() {
        let f =
            parse_script("# faults\nA:down@+10m-+20m  # first\n\nrestart@+30m, B:garbage@+31m\n")
                .unwrap();
        assert_eq!(f.len(), 3);
        assert!(parse_script("ok@1\n")
            .unwrap_err()
            .to_string()
            .starts_with("line 1"));
    }
}
