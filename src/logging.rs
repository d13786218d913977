//! The log output of every `cms` command (`log_format` in the configuration): plain
//! lines (the default) or one JSON object per line for log shippers (issue #14).
//!
//! Owns the format's parsing and the installation of the logger on stderr; the filter is
//! `$CMS_LOG`, else the command's default level. The Windows service logs to its own file
//! ([`crate::winsvc`]).

/// How log events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One plain line per event (ANSI colours only on a terminal).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields` (`message` and the
    /// event's fields).
    Json,
}

impl LogFormat {
    /// Parses the `log_format` key.
    ///
    /// # Errors
    /// Anything but `text` or `json`, named in the message.
    pub fn parse(s: &str) -> Result<LogFormat, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "log_format = {other:?}: must be \"text\" or \"json\""
            )),
        }
    }
}

/// Logs to stderr in `format`, at `default` level unless `$CMS_LOG` says otherwise.
pub fn init(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CMS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => b
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => b.json().with_ansi(false).init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_text_or_json() {
        assert_eq!(LogFormat::parse("json"), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse("text"), Ok(LogFormat::Text));
        let e = LogFormat::parse("JSON").unwrap_err();
        assert_eq!(e, "log_format = \"JSON\": must be \"text\" or \"json\"");
    }
}
