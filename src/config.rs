//! The TOML configuration, its documented defaults and the embedded default used when
//! no file is given.
//!
//! Owns parsing and validation only: every value is checked here once, so the rest of
//! the program works with a [`Config`] it can trust. The annotated reference file is
//! `packaging/cms.toml` (installed as `/etc/cms/cms.toml`).

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The configuration named explicitly: `--config FILE`, else `$CMS_CONFIG` (when set and
/// not empty). A file named explicitly must be readable; there is no falling back.
pub fn explicit_config_path(cli: Option<&Path>) -> Option<PathBuf> {
    cli.map(Path::to_owned).or_else(|| {
        std::env::var_os("CMS_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// Where `cms` looks for its configuration when none is named explicitly, in order; the
/// first that exists is used, and with none the embedded default.
pub fn default_config_paths() -> Vec<PathBuf> {
    #[cfg(unix)]
    let v = vec![PathBuf::from("/etc/cms/cms.toml")];
    #[cfg(windows)]
    let v = std::env::var_os("ProgramData")
        .map(|pd| PathBuf::from(pd).join("cms").join("cms.toml"))
        .into_iter()
        .collect();
    #[cfg(not(any(unix, windows)))]
    let v = vec![];
    v
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from (`None` = embedded default), for messages.
    pub source: Option<PathBuf>,
    /// This server's identity: recorded in backups and in restored intervals' source.
    pub server_id: String,
    pub data_dir: PathBuf,
    pub interval_minutes: u32,
    pub time_zone: chrono_tz::Tz,
    pub week_start: chrono::Weekday,
    /// How often the open interval and the aggregation state are made durable, ms.
    pub checkpoint_ms: u64,
    pub heartbeat_ms: u64,
    /// Reconnect backoff cap, ms.
    pub backoff_max_ms: u64,
    pub retention: Retention,
    pub acds: Vec<AcdConfig>,
    /// Optional site key file for authenticated backups (a relative path is resolved
    /// against the configuration file's folder, like `data_dir`).
    pub site_key_file: Option<PathBuf>,
    /// The `[peer]` section: peer sync (proto/peer-sync.md); `None`: no peer configured.
    pub peer: Option<crate::peer::PeerConfig>,
    /// The `[http]` section: `/livez`, `/readyz`, `/metrics` and the console
    /// ([`crate::web`]).
    pub http: crate::web::HttpConfig,
}

/// The longest retention of any kind, in days: 100 years, far beyond the classic maxima
/// (370 days of intervals, 1825 days, 520 weeks, 120 months) and well inside the calendar.
pub const MAX_RETENTION_DAYS: u32 = 36_525;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub intrahour_days: u32,
    pub daily_days: u32,
    pub weekly_weeks: u32,
    pub monthly_months: u32,
}

#[derive(Debug, Clone)]
pub struct AcdConfig {
    pub acd: u16,
    pub primary: SocketAddr,
    pub secondary: Option<SocketAddr>,
}

impl Config {
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("cms.db")
    }
    pub fn grid(&self) -> crate::interval::Grid {
        crate::interval::Grid::new(self.time_zone, self.interval_minutes)
    }
    /// A short description of where the config came from.
    pub fn origin(&self) -> String {
        match &self.source {
            Some(p) => p.display().to_string(),
            None => "embedded default".to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server_id: Option<String>,
    data_dir: Option<PathBuf>,
    interval_minutes: Option<u32>,
    time_zone: Option<String>,
    week_start: Option<String>,
    checkpoint_seconds: Option<f64>,
    heartbeat_ms: Option<u64>,
    backoff_max_seconds: Option<f64>,
    site_key_file: Option<PathBuf>,
    #[serde(default)]
    retention: RawRetention,
    #[serde(default, rename = "acd")]
    acds: Vec<RawAcd>,
    peer: Option<crate::peer::RawPeer>,
    #[serde(default)]
    http: crate::web::RawHttp,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    intrahour_days: Option<u32>,
    daily_days: Option<u32>,
    weekly_weeks: Option<u32>,
    monthly_months: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAcd {
    id: u16,
    switch: String,
    secondary: Option<String>,
}

/// A configuration problem: names the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {msg}")]
pub struct ConfigError {
    pub origin: String,
    pub msg: String,
}

impl Config {
    /// The embedded default: data in `./cms-data`, one ACD, switch at 127.0.0.1:5001.
    pub fn embedded_default() -> Config {
        Config::parse_str("", None).expect("the embedded default is valid")
    }

    /// Loads the file named by `path` (`--config`) or `$CMS_CONFIG`, which must be
    /// readable; with neither, the first default location that exists, or the embedded
    /// default.
    ///
    /// # Errors
    /// The file cannot be read or is not a valid configuration.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let chosen = match explicit_config_path(path) {
            Some(p) => Some(p),
            None => default_config_paths().into_iter().find(|p| p.exists()),
        };
        match chosen {
            None => Ok(Config::embedded_default()),
            Some(p) => {
                let text = std::fs::read_to_string(&p).map_err(|e| ConfigError {
                    origin: p.display().to_string(),
                    msg: format!("cannot read configuration: {e}"),
                })?;
                let mut c = Config::parse_str(&text, Some(&p))?;
                // A relative data_dir or site_key_file is relative to the config file's
                // directory, not to wherever the command happens to run.
                if let Some(dir) = p.parent() {
                    if c.data_dir.is_relative() {
                        c.data_dir = dir.join(&c.data_dir);
                    }
                    if let Some(k) = c.site_key_file.as_mut().filter(|k| k.is_relative()) {
                        *k = dir.join(&*k);
                    }
                    let peer_identity = c.peer.as_mut().and_then(|p| p.identity.as_mut());
                    if let Some(k) = peer_identity.filter(|k| k.is_relative()) {
                        *k = dir.join(&*k);
                    }
                }
                Ok(c)
            }
        }
    }

    /// Parses configuration text. `origin` is only used for messages.
    ///
    /// # Errors
    /// Syntax errors, unknown keys and out-of-range values, naming the key.
    pub fn parse_str(text: &str, origin: Option<&Path>) -> Result<Config, ConfigError> {
        let o = origin
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "embedded default".into());
        let err = |msg: String| ConfigError {
            origin: o.clone(),
            msg,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let (interval_minutes, time_zone, week_start) = parse_calendar(&raw, &err)?;
        let (checkpoint_ms, backoff_max_ms, heartbeat_ms) = parse_timers(&raw, &err)?;
        let server_id = raw.server_id.clone().unwrap_or_else(default_server_id);
        if server_id.is_empty() || server_id.len() > crate::proto::MAX_STR_LEN {
            return Err(err(format!(
                "server_id {server_id:?}: must be 1 to {} bytes",
                crate::proto::MAX_STR_LEN
            )));
        }
        let retention = parse_retention(&raw.retention, &err)?;
        let acds = parse_acds(raw.acds, &err)?;
        let data_dir = raw.data_dir.unwrap_or_else(|| PathBuf::from("cms-data"));
        if data_dir.as_os_str().is_empty() {
            return Err(err(
                "data_dir = \"\": must name a directory (leave it out for ./cms-data)".into(),
            ));
        }
        if raw
            .site_key_file
            .as_ref()
            .is_some_and(|k| k.as_os_str().is_empty())
        {
            return Err(err(
                "site_key_file = \"\": must name a file (leave it out for no site key)".into(),
            ));
        }
        let peer = raw.peer.map(|p| p.validate()).transpose().map_err(err)?;
        let http = raw.http.validate().map_err(err)?;
        Ok(Config {
            source: origin.map(Path::to_owned),
            server_id,
            data_dir,
            interval_minutes,
            time_zone,
            week_start,
            checkpoint_ms,
            heartbeat_ms,
            backoff_max_ms,
            retention,
            acds,
            site_key_file: raw.site_key_file,
            peer,
            http,
        })
    }
}

/// Builds a [`ConfigError`] naming the configuration's origin.
type ErrAt<'a> = dyn Fn(String) -> ConfigError + 'a;

/// `interval_minutes`, `time_zone` and `week_start`.
fn parse_calendar(
    raw: &RawConfig,
    err: &ErrAt<'_>,
) -> Result<(u32, chrono_tz::Tz, chrono::Weekday), ConfigError> {
    let interval_minutes = raw.interval_minutes.unwrap_or(15);
    if !matches!(interval_minutes, 15 | 30 | 60) {
        return Err(err(format!(
            "interval_minutes = {interval_minutes}: must be 15, 30 or 60"
        )));
    }
    let tzname = raw.time_zone.clone().unwrap_or_else(|| "UTC".into());
    let time_zone: chrono_tz::Tz = tzname.parse().map_err(|_| {
        err(format!(
            "time_zone = {tzname:?}: not an IANA time zone name"
        ))
    })?;
    let ws = raw.week_start.clone().unwrap_or_else(|| "monday".into());
    let week_start: chrono::Weekday = ws
        .parse()
        .map_err(|_| err(format!("week_start = {ws:?}: not a day of the week")))?;
    Ok((interval_minutes, time_zone, week_start))
}

/// `checkpoint_seconds`, `backoff_max_seconds` and `heartbeat_ms`, in ms.
fn parse_timers(raw: &RawConfig, err: &ErrAt<'_>) -> Result<(u64, u64, u64), ConfigError> {
    let secs = |name: &str, v: Option<f64>, def: f64, lo: f64, hi: f64| {
        let v = v.unwrap_or(def);
        if !(lo..=hi).contains(&v) {
            return Err(err(format!("{name} = {v}: must be between {lo} and {hi}")));
        }
        Ok((v * 1000.0) as u64)
    };
    let checkpoint_ms = secs(
        "checkpoint_seconds",
        raw.checkpoint_seconds,
        2.0,
        0.05,
        60.0,
    )?;
    let backoff_max_ms = secs(
        "backoff_max_seconds",
        raw.backoff_max_seconds,
        10.0,
        0.2,
        300.0,
    )?;
    let heartbeat_ms = raw.heartbeat_ms.unwrap_or(1000);
    if !(100..=60_000).contains(&heartbeat_ms) {
        return Err(err(format!(
            "heartbeat_ms = {heartbeat_ms}: must be between 100 and 60000"
        )));
    }
    Ok((checkpoint_ms, backoff_max_ms, heartbeat_ms))
}

/// The `[retention]` table, each kind within [`MAX_RETENTION_DAYS`].
fn parse_retention(r: &RawRetention, err: &ErrAt<'_>) -> Result<Retention, ConfigError> {
    let retention = Retention {
        intrahour_days: r.intrahour_days.unwrap_or(62),
        daily_days: r.daily_days.unwrap_or(1825),
        weekly_weeks: r.weekly_weeks.unwrap_or(520),
        monthly_months: r.monthly_months.unwrap_or(120),
    };
    if retention.intrahour_days == 0 || retention.daily_days == 0 {
        return Err(err("retention: days must be at least 1".into()));
    }
    // The purge computes "today minus the retention" as a calendar date: a value
    // beyond any calendar would end collection at the first midnight (issue #17).
    let (days, rt) = (MAX_RETENTION_DAYS, &retention);
    for (key, v, max) in [
        ("intrahour_days", rt.intrahour_days, days),
        ("daily_days", rt.daily_days, days),
        ("weekly_weeks", rt.weekly_weeks, days / 7),
        ("monthly_months", rt.monthly_months, days / 31),
    ] {
        if v > max {
            return Err(err(format!(
                "retention.{key} = {v}: must be at most {max} (100 years)"
            )));
        }
    }
    Ok(retention)
}

/// The `[[acd]]` tables (one ACD at 127.0.0.1:5001 when there are none): ids 1 to 8,
/// each once, switch addresses `IP:PORT` with a real port.
fn parse_acds(raw: Vec<RawAcd>, err: &ErrAt<'_>) -> Result<Vec<AcdConfig>, ConfigError> {
    let mut acds = vec![];
    let raw_acds = if raw.is_empty() {
        vec![RawAcd {
            id: 1,
            switch: "127.0.0.1:5001".into(),
            secondary: None,
        }]
    } else {
        raw
    };
    for a in raw_acds {
        if !(1..=8).contains(&a.id) {
            return Err(err(format!("acd id {}: must be 1 to 8", a.id)));
        }
        if acds.iter().any(|x: &AcdConfig| x.acd == a.id) {
            return Err(err(format!("acd id {} is configured twice", a.id)));
        }
        let parse = |s: &str| -> Result<SocketAddr, ConfigError> {
            let addr: SocketAddr = s
                .parse()
                .map_err(|_| err(format!("acd {}: switch address {s:?} is not IP:PORT", a.id)))?;
            if addr.port() == 0 {
                return Err(err(format!(
                    "acd {}: switch address {s:?} has port 0 (a switch listens on a real port)",
                    a.id
                )));
            }
            Ok(addr)
        };
        acds.push(AcdConfig {
            acd: a.id,
            primary: parse(&a.switch)?,
            secondary: a.secondary.as_deref().map(parse).transpose()?,
        });
    }
    Ok(acds)
}

impl Config {
    /// The site key for authenticated backups, read from `site_key_file`; `None` when no
    /// key file is configured.
    ///
    /// The file must be a regular file readable only by its owner (on Unix no group or
    /// other permission bits, as ssh demands of a private key: anyone who can read it can
    /// forge backups) and hold at least [`crate::archive::MIN_KEY_FILE_LEN`] bytes of key
    /// material.
    ///
    /// # Errors
    /// The file is missing, unreadable, open to group or others, or too short; the error
    /// names the file.
    pub fn site_key(&self) -> Result<Option<[u8; 32]>, ConfigError> {
        let Some(p) = &self.site_key_file else {
            return Ok(None);
        };
        let err = |msg: String| ConfigError {
            origin: p.display().to_string(),
            msg,
        };
        let md = std::fs::metadata(p).map_err(|e| {
            err(format!(
                "cannot read site key (site_key_file in {}): {e}",
                self.origin()
            ))
        })?;
        if !md.is_file() {
            return Err(err("site key is not a regular file".into()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = md.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(err(format!(
                    "site key is accessible by group or others (mode {mode:04o}); \
                     anyone who can read it can forge backups: chmod 600 it"
                )));
            }
        }
        let bytes = std::fs::read(p).map_err(|e| err(format!("cannot read site key: {e}")))?;
        crate::archive::site_key_from_key_file(&bytes)
            .map(Some)
            .map_err(|e| err(e.to_string()))
    }
}

fn default_server_id() -> String {
    let h = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "cms".into());
    h.chars().take(crate::proto::MAX_STR_LEN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_matches_the_docs() {
        let c = Config::embedded_default();
        assert_eq!(c.data_dir, PathBuf::from("cms-data"));
        assert_eq!(c.acds.len(), 1);
        assert_eq!(c.acds[0].primary, "127.0.0.1:5001".parse().unwrap());
        assert_eq!(c.interval_minutes, 15);
        assert_eq!(c.retention.intrahour_days, 62);
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::parse_str("interval_minutes = 20", Some(Path::new("/x.toml")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/x.toml") && e.contains("interval_minutes"),
            "{e}"
        );
        let e = Config::parse_str("time_zone = \"Mars/Base\"", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("time_zone"), "{e}");
        let e = Config::parse_str("bogus = 1", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = Config::parse_str("[[acd]]\nid = 1\nswitch = \"nowhere\"", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nowhere"), "{e}");
    }
}
