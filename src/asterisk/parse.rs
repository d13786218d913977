//! One line of Asterisk's queue log, decoded. No I/O.
//!
//! The format is Asterisk's own (`docs/Operation/Logging/Queue-Logs.md` in the
//! `asterisk/documentation` repository; the writer is `ast_queue_log` in
//! `apps/app_queue.c`): `time|callid|queue|member|EVENT|data1|data2|...`, one event a
//! line, `|`-separated, `time` in Unix seconds (some builds write `seconds.micros`).
//! `docs/asterisk.md` lists every event and what the bridge books for it.
//!
//! [`parse_line`] turns one line into a [`Line`] or a named [`ParseError`]; the caller
//! counts and skips errors with their line number. An event name this module does not
//! know (dialplans write their own with `QueueLog()`) is not an error: it decodes as
//! [`Event::Other`], which the translator counts and ignores.

/// The call id field: a channel unique id, or one of the two words Asterisk writes when
/// the line concerns no call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallId<'a> {
    /// A channel's unique id (`1366720340.303267`).
    Uid(&'a str),
    /// `NONE`: a member or system event (PAUSE, QUEUESTART, ...).
    None,
    /// `REALTIME`: a member loaded from a realtime database.
    Realtime,
}

/// The event of a line with its typed parameters. Times are in seconds as Asterisk
/// writes them, except `ring_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// The caller entered the queue: `url|callerid|origposition[|calleridname]`.
    EnterQueue { callerid: &'a str },
    /// The caller was bridged to the member: `holdtime|bridged uid|ringtime`
    /// (`ringtime` since Asterisk 1.6; absent before).
    Connect {
        holdtime: i64,
        ringtime: Option<i64>,
    },
    /// The connected call ended, hung up by the caller: `holdtime|calltime|origposition`.
    CompleteCaller { holdtime: i64, calltime: i64 },
    /// The connected call ended, hung up by the member.
    CompleteAgent { holdtime: i64, calltime: i64 },
    /// The caller hung up while waiting: `position|origposition|waittime`.
    Abandon { waittime: i64 },
    /// The queue timed the caller out: `position|origposition|waittime`.
    ExitWithTimeout { waittime: i64 },
    /// No reachable member left: `position|origposition|waittime`.
    ExitEmpty { waittime: i64 },
    /// The caller pressed a key: `key|position|origposition|waittime`.
    ExitWithKey { waittime: i64 },
    /// The member transferred the connected caller (TRANSFER, BLINDTRANSFER,
    /// ATTENDEDTRANSFER): `...|holdtime|calltime|origposition`.
    Transfer { holdtime: i64, calltime: i64 },
    /// A ring attempt at the member ended unanswered after `ring_ms` milliseconds.
    RingNoAnswer { ring_ms: i64 },
    /// The caller hung up while the member's phone rang.
    RingCanceled,
    /// The member hung up during the queue's announcement (AGENTDUMP), or the bridge
    /// failed (SYSCOMPAT): the connected call ends.
    AgentDump,
    /// The member was added to the queue; `paused` when it starts paused (data1
    /// `PAUSED`, Asterisk 13+).
    AddMember { paused: bool },
    /// The member was removed from the queue.
    RemoveMember,
    /// The member was paused in the queue (PAUSE) or in every queue (PAUSEALL), with
    /// the reason the dialplan or the phone gave (may be empty).
    Pause { all: bool, reason: &'a str },
    /// The member was unpaused in the queue (UNPAUSE) or everywhere (UNPAUSEALL).
    Unpause { all: bool },
    /// The number the call came in on, logged by the dialplan before ENTERQUEUE
    /// (`QueueLog(queue,${UNIQUEID},NONE,DID,${FROM_DID})`, as FreePBX does).
    Did { did: &'a str },
    /// The queue system started: Asterisk (re)started.
    QueueStart,
    /// Any other event: chan_agent logins, CONFIGRELOAD, PENALTY, dialplan events.
    Other(&'a str),
}

/// A decoded queue-log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    /// Milliseconds since the Unix epoch (UTC).
    pub ts: i64,
    pub callid: CallId<'a>,
    /// The queue name; `None` for `NONE` (PAUSEALL, QUEUESTART, ...).
    pub queue: Option<&'a str>,
    /// The member (interface or member name); `None` for `NONE`.
    pub member: Option<&'a str>,
    pub event: Event<'a>,
}

/// Why a line is not a queue-log event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("fewer than 5 fields (time|callid|queue|member|event)")]
    TooFewFields,
    #[error("time {0:?} is not Unix seconds")]
    BadTime(String),
    #[error("{event}: parameter {index} {value:?} is not a whole number")]
    BadNumber {
        event: String,
        index: usize,
        value: String,
    },
    #[error("{event}: needs {need} parameters, has {has}")]
    MissingParam {
        event: String,
        need: usize,
        has: usize,
    },
    #[error("{0}: a call event without a call id")]
    NoCallId(String),
    #[error("{0}: an empty event name")]
    NoEvent(String),
}

/// Seconds (`1366720340`) or seconds with a fraction (`1366720340.303267`) to ms.
fn parse_time(s: &str) -> Result<i64, ParseError> {
    let bad = || ParseError::BadTime(s.chars().take(40).collect());
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || int.len() > 12 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs: i64 = int.parse().map_err(|_| bad())?;
    let mut ms = 0i64;
    for (i, b) in frac.bytes().take(3).enumerate() {
        ms += i64::from(b - b'0') * 10i64.pow(2 - i as u32);
    }
    Ok(secs * 1000 + ms)
}

fn word(s: &str) -> Option<&str> {
    (!s.is_empty() && s != "NONE").then_some(s)
}

/// Decodes one line (without its line end; a trailing `\r` is ignored).
///
/// # Errors
/// The line is not an event: see [`ParseError`].
pub fn parse_line(line: &str) -> Result<Line<'_>, ParseError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut f = line.split('|');
    let (Some(time), Some(callid), Some(queue), Some(member), Some(event)) =
        (f.next(), f.next(), f.next(), f.next(), f.next())
    else {
        return Err(ParseError::TooFewFields);
    };
    let ts = parse_time(time)?;
    let data: Vec<&str> = f.collect();
    let callid = match callid {
        "NONE" | "" => CallId::None,
        "REALTIME" => CallId::Realtime,
        u => CallId::Uid(u),
    };
    if event.is_empty() {
        return Err(ParseError::NoEvent(line.chars().take(60).collect()));
    }
    let num = |i: usize| -> Result<i64, ParseError> {
        let v = data
            .get(i)
            .copied()
            .ok_or_else(|| ParseError::MissingParam {
                event: event.into(),
                need: i + 1,
                has: data.len(),
            })?;
        v.trim().parse::<i64>().map_err(|_| ParseError::BadNumber {
            event: event.into(),
            index: i + 1,
            value: v.chars().take(40).collect(),
        })
    };
    let opt_num = |i: usize| -> Result<Option<i64>, ParseError> {
        match data.get(i) {
            None => Ok(None),
            Some(&"") => Ok(None),
            Some(_) => num(i).map(Some),
        }
    };
    let text = |i: usize| data.get(i).copied().unwrap_or("");
    let ev = match event {
        "ENTERQUEUE" => Event::EnterQueue { callerid: text(1) },
        "CONNECT" => Event::Connect {
            holdtime: num(0)?,
            ringtime: opt_num(2)?,
        },
        "COMPLETECALLER" => Event::CompleteCaller {
            holdtime: num(0)?,
            calltime: num(1)?,
        },
        "COMPLETEAGENT" => Event::CompleteAgent {
            holdtime: num(0)?,
            calltime: num(1)?,
        },
        "ABANDON" => Event::Abandon { waittime: num(2)? },
        "EXITWITHTIMEOUT" => Event::ExitWithTimeout { waittime: num(2)? },
        "EXITEMPTY" => Event::ExitEmpty { waittime: num(2)? },
        "EXITWITHKEY" => Event::ExitWithKey { waittime: num(3)? },
        "TRANSFER" | "BLINDTRANSFER" | "ATTENDEDTRANSFER" => Event::Transfer {
            holdtime: num(2)?,
            calltime: num(3)?,
        },
        "RINGNOANSWER" => Event::RingNoAnswer { ring_ms: num(0)? },
        "RINGCANCELED" => Event::RingCanceled,
        "AGENTDUMP" | "SYSCOMPAT" => Event::AgentDump,
        "ADDMEMBER" => Event::AddMember {
            paused: text(0) == "PAUSED",
        },
        "REMOVEMEMBER" => Event::RemoveMember,
        "PAUSE" | "PAUSEALL" => Event::Pause {
            all: event == "PAUSEALL",
            reason: text(0),
        },
        "UNPAUSE" | "UNPAUSEALL" => Event::Unpause {
            all: event == "UNPAUSEALL",
        },
        "DID" => Event::Did { did: text(0) },
        "QUEUESTART" => Event::QueueStart,
        other => Event::Other(other),
    };
    let is_call_event = matches!(
        ev,
        Event::EnterQueue { .. }
            | Event::Connect { .. }
            | Event::CompleteCaller { .. }
            | Event::CompleteAgent { .. }
            | Event::Abandon { .. }
            | Event::ExitWithTimeout { .. }
            | Event::ExitEmpty { .. }
            | Event::ExitWithKey { .. }
            | Event::Transfer { .. }
            | Event::AgentDump
    );
    if is_call_event && !matches!(callid, CallId::Uid(_)) {
        return Err(ParseError::NoCallId(event.into()));
    }
    Ok(Line {
        ts,
        callid,
        queue: word(queue),
        member: word(member),
        event: ev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real excerpts, each cited in the fixture's header: every line decodes.
    #[test]
    fn real_excerpts_decode() {
        for (name, text) in super::super::fixtures::ALL {
            for (n, l) in text.lines().enumerate() {
                if l.starts_with('#') || l.is_empty() {
                    continue;
                }
                if let Err(e) = parse_line(l) {
                    panic!("{name}:{}: {l:?}: {e}", n + 1);
                }
            }
        }
    }

    /// The line Asterisk's own documentation shows (Queue-Logs.md).
    #[test]
    fn the_documentation_line() {
        let l =
            parse_line("1366720340|1366720340.303267|MYQUEUE|SIP/8007|RINGNOANSWER|1000").unwrap();
        assert_eq!(l.ts, 1_366_720_340_000);
        assert_eq!(l.callid, CallId::Uid("1366720340.303267"));
        assert_eq!(l.queue, Some("MYQUEUE"));
        assert_eq!(l.member, Some("SIP/8007"));
        assert_eq!(l.event, Event::RingNoAnswer { ring_ms: 1000 });
    }

    #[test]
    fn parameters_are_typed() {
        let l = parse_line("1596513009|1596512941.163|support|NONE|ABANDON|1|1|68").unwrap();
        assert_eq!(l.event, Event::Abandon { waittime: 68 });
        assert_eq!(l.member, None);
        let l =
            parse_line("1699286240|1699286234.123|8000|7140|CONNECT|6|1699286234.124|3").unwrap();
        assert_eq!(
            l.event,
            Event::Connect {
                holdtime: 6,
                ringtime: Some(3)
            }
        );
        // Asterisk 1.4 wrote CONNECT without the ring time.
        let l =
            parse_line("20|1266833905.2|9000|Local/2004@from-internal/n|CONNECT|1|1266833911.7")
                .unwrap();
        assert_eq!(
            l.event,
            Event::Connect {
                holdtime: 1,
                ringtime: None
            }
        );
        let l = parse_line("1596510480|CLI|sales|SIP/0004f2040001|ADDMEMBER|").unwrap();
        assert_eq!(l.event, Event::AddMember { paused: false });
        let l = parse_line("1596191926|NONE|NONE|NONE|QUEUESTART|").unwrap();
        assert_eq!(l.event, Event::QueueStart);
        assert_eq!(l.queue, None);
        let l = parse_line("1341343687|NONE|q1|Agent/3001|PAUSE|Lunch").unwrap();
        assert_eq!(
            l.event,
            Event::Pause {
                all: false,
                reason: "Lunch"
            }
        );
        // Fractional seconds (the database form some builds write) keep milliseconds.
        let l = parse_line("1341343687.348244|NONE|q2|Agent/3001|UNPAUSE|").unwrap();
        assert_eq!(l.ts, 1_341_343_687_348);
        assert_eq!(l.event, Event::Unpause { all: false });
        let l = parse_line("1700000000|1700000000.5|support|NONE|CUSTOMTHING|x\r").unwrap();
        assert_eq!(l.event, Event::Other("CUSTOMTHING"));
    }

    #[test]
    fn garbage_is_a_named_error() {
        assert_eq!(parse_line("hello world"), Err(ParseError::TooFewFields));
        assert_eq!(parse_line(""), Err(ParseError::TooFewFields));
        assert!(matches!(
            parse_line("13667x|1.2|q|NONE|ENTERQUEUE||1|1"),
            Err(ParseError::BadTime(_))
        ));
        assert!(matches!(
            parse_line("-5|1.2|q|NONE|ENTERQUEUE||1|1"),
            Err(ParseError::BadTime(_))
        ));
        assert_eq!(
            parse_line("1596513009|1596512941.163|support|NONE|ABANDON|1|1|sixty"),
            Err(ParseError::BadNumber {
                event: "ABANDON".into(),
                index: 3,
                value: "sixty".into()
            })
        );
        assert_eq!(
            parse_line("1596513009|1596512941.163|support|NONE|ABANDON|1"),
            Err(ParseError::MissingParam {
                event: "ABANDON".into(),
                need: 3,
                has: 1
            })
        );
        assert_eq!(
            parse_line("1596513009|NONE|support|NONE|ENTERQUEUE||7000|1"),
            Err(ParseError::NoCallId("ENTERQUEUE".into()))
        );
        // A line cut by a crash: the event name is there, its parameters are not.
        assert!(matches!(
            parse_line("1596513009|1596512941.163|support|PJSIP/201|COMPLETECALLER|6"),
            Err(ParseError::MissingParam { .. })
        ));
    }
}
