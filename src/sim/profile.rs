//! Workload profiles: the TOML file that describes a contact centre (skills, VDNs, trunk
//! groups, agents and their shifts, the call mix) and its validation.
//!
//! Owns parsing and checking only; the format is documented in `docs/linksim.md`. The
//! generator (`gen.rs`) turns a profile and a seed into a deterministic event stream.

use super::dist::{Dist, DistError};
use crate::proto::{MAX_AGENT_SKILLS, MAX_STR_LEN, N_PERIODS};
use chrono_tz::Tz;
use serde::Deserialize;
use std::path::Path;

/// A whole profile file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Free text, shown in the summary.
    #[serde(default)]
    pub name: String,
    /// IANA time zone of the site: intervals, shifts and the time-of-day profile use it.
    pub time_zone: String,
    /// ACD number this switch answers to (HELLO with another ACD is rejected).
    #[serde(default = "one")]
    pub acd: u16,
    pub skills: Skills,
    pub vdns: Vdns,
    pub trunks: Trunks,
    pub agents: Agents,
    pub calls: Calls,
}

/// Skills 1..=count, all with the same call profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Skills {
    pub count: u16,
    /// Service-level threshold, seconds (ACCEPTABLE).
    pub service_level: u16,
    /// PERIOD1..PERIOD9 in seconds, ascending.
    pub periods: [u16; N_PERIODS],
    /// Most calls queued to one skill at once; a call whose primary queue is full gets
    /// busy or disconnect (the VDN's `full_action`).
    pub queue_limit: u32,
}

/// What a vector does with a call whose primary queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FullAction {
    Busy,
    Disconnect,
}

/// VDNs 1..=count. VDN v queues to skill ((v-1) mod skills) + 1 and overflows to the next
/// skill; it arrives on trunk group ((v-1) mod groups) + 1.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vdns {
    pub count: u16,
    /// The VDN call profile's service level, seconds (offer to answer).
    pub service_level: u16,
    /// Seconds of vector processing (announcement) before the call is queued.
    #[serde(default)]
    pub vector_delay: u32,
    /// Seconds in the primary queue before the vector also queues to the backup skill;
    /// 0 = never overflow.
    #[serde(default)]
    pub overflow_after: u32,
    #[serde(default = "busy")]
    pub full_action: FullAction,
}

/// Trunk groups 1..=groups, each with the same number of trunks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trunks {
    pub groups: u16,
    pub trunks_per_group: u16,
}

/// One daily shift: agents assigned to it log in at `start` (local time) plus a jitter
/// and log out `hours` later (when idle).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    /// Local time of day, "HH:MM".
    pub start: String,
    pub hours: f64,
    /// Fraction of the agents on this shift (shares are normalised).
    pub share: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agents {
    pub count: u32,
    /// Login ids are `first_id`, `first_id + 1`, ...
    #[serde(default = "first_agent")]
    pub first_id: u32,
    /// Skills per agent (the first at level 1, the others at level 2).
    pub skills_per_agent: u8,
    /// Daily shifts; empty = every agent is logged in for the whole run.
    #[serde(default)]
    pub shifts: Vec<Shift>,
    /// Seconds of random delay after the shift start before an agent logs in.
    #[serde(default)]
    pub login_jitter: u32,
    /// Mean seconds between an agent's breaks (exponential); 0 = no breaks.
    #[serde(default)]
    pub break_every: f64,
    #[serde(default = "default_break")]
    pub break_duration: Dist,
    /// AUX reason codes for breaks, drawn uniformly (0..=9).
    #[serde(default = "default_reasons")]
    pub aux_reasons: Vec<u8>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calls {
    /// Mean arrivals per hour over the whole centre at the time-of-day factor 1.0.
    pub per_hour: f64,
    /// Factor per local hour 0..23 (Poisson rate = per_hour x factor); default flat.
    #[serde(default)]
    pub hourly: Vec<f64>,
    pub talk: Dist,
    /// ACW duration, for the share `acw_share` of calls that have ACW.
    #[serde(default = "zero_dist")]
    pub acw: Dist,
    #[serde(default)]
    pub acw_share: f64,
    /// Time a call rings before the agent answers.
    #[serde(default = "zero_dist")]
    pub ring: Dist,
    /// Caller patience from the offer (or the transfer): the caller abandons in vector,
    /// queue or while ringing when it runs out.
    pub patience: Dist,
    #[serde(default)]
    pub hold_share: f64,
    #[serde(default = "zero_dist")]
    pub hold: Dist,
    #[serde(default)]
    pub conference_share: f64,
    /// Share of answered calls the agent transfers to another skill (once per call).
    #[serde(default)]
    pub transfer_share: f64,
    /// Share of releases done by the caller (the rest by the agent).
    #[serde(default = "half")]
    pub caller_release_share: f64,
}

fn one() -> u16 {
    1
}
fn busy() -> FullAction {
    FullAction::Busy
}
fn first_agent() -> u32 {
    1001
}
fn half() -> f64 {
    0.5
}
fn zero_dist() -> Dist {
    Dist::Const { value: 0.0 }
}
fn default_break() -> Dist {
    Dist::Exp { mean: 600.0 }
}
fn default_reasons() -> Vec<u8> {
    vec![1, 2, 3]
}

/// Why a profile cannot be used. The binary puts the file's name in front.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file cannot be read.
    #[error("{0}")]
    Read(std::io::Error),
    /// Not TOML, or not this format (an unknown or missing field, a wrong type).
    #[error("{0}")]
    Toml(toml::de::Error),
    /// A value outside what the generator and the wire format allow.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Dist(#[from] DistError),
}

/// [`ProfileError::Invalid`] for `field`.
fn invalid(field: &'static str, reason: impl Into<String>) -> ProfileError {
    ProfileError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl Profile {
    /// Reads and validates a profile file.
    ///
    /// # Errors
    /// The file cannot be read, is not valid TOML for this format, or fails validation (`validate`).
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(ProfileError::Read)?;
        Profile::parse(&text)
    }

    /// Parses and validates profile text.
    ///
    /// # Errors
    /// Not valid TOML for this format, or fails [`Profile::validate`].
    pub fn parse(text: &str) -> Result<Profile, ProfileError> {
        let p: Profile = toml::from_str(text).map_err(ProfileError::Toml)?;
        p.validate()?;
        Ok(p)
    }

    /// The profile's time zone.
    pub fn tz(&self) -> Tz {
        self.time_zone.parse().expect("validated")
    }

    /// Checks every limit the generator and the wire format rely on.
    ///
    /// # Errors
    /// A message naming the offending field.
    pub fn validate(&self) -> Result<(), ProfileError> {
        self.time_zone.parse::<Tz>().map_err(|_| {
            invalid(
                "time_zone",
                format!("unknown IANA zone {:?}", self.time_zone),
            )
        })?;
        if self.name.len() > MAX_STR_LEN {
            return Err(invalid("name", "longer than 64 bytes"));
        }
        let s = &self.skills;
        if s.count == 0 {
            return Err(invalid("skills.count", "must be at least 1"));
        }
        if s.periods.windows(2).any(|w| w[0] > w[1]) {
            return Err(invalid("skills.periods", "must be ascending"));
        }
        if self.vdns.count == 0 || self.trunks.groups == 0 || self.trunks.trunks_per_group == 0 {
            return Err(invalid(
                "vdns.count, trunks.groups and trunks.trunks_per_group",
                "must be at least 1",
            ));
        }
        let a = &self.agents;
        if a.skills_per_agent == 0
            || a.skills_per_agent as usize > MAX_AGENT_SKILLS
            || a.skills_per_agent as u16 > s.count
        {
            return Err(invalid(
                "agents.skills_per_agent",
                format!(
                    "must be 1..={} and at most skills.count",
                    MAX_AGENT_SKILLS.min(s.count as usize)
                ),
            ));
        }
        if a.first_id == 0 || (a.first_id as u64 + a.count as u64) > u32::MAX as u64 {
            return Err(invalid("agents.first_id", "ids must be non-zero u32"));
        }
        for sh in &a.shifts {
            parse_hhmm(&sh.start).ok_or_else(|| {
                invalid(
                    "agents.shifts.start",
                    format!("{:?} is not HH:MM", sh.start),
                )
            })?;
            if sh.hours <= 0.0 || sh.hours > 24.0 || !sh.hours.is_finite() || !nonneg(sh.share) {
                return Err(invalid(
                    "agents.shifts",
                    "hours must be in (0, 24], share >= 0",
                ));
            }
        }
        if !a.shifts.is_empty() && a.shifts.iter().map(|s| s.share).sum::<f64>() <= 0.0 {
            return Err(invalid("agents.shifts", "shares add up to 0"));
        }
        if a.aux_reasons.is_empty() || a.aux_reasons.iter().any(|&r| r > 9) {
            return Err(invalid(
                "agents.aux_reasons",
                "need at least one code, each 0..=9",
            ));
        }
        if !nonneg(a.break_every) {
            return Err(invalid("agents.break_every", "must be >= 0"));
        }
        a.break_duration.validate("agents.break_duration")?;
        let c = &self.calls;
        if !nonneg(c.per_hour) || c.per_hour == 0.0 {
            return Err(invalid("calls.per_hour", "must be > 0"));
        }
        if !c.hourly.is_empty() && (c.hourly.len() != 24 || c.hourly.iter().any(|&f| !nonneg(f))) {
            return Err(invalid("calls.hourly", "need 24 factors >= 0"));
        }
        for (n, d) in [
            ("calls.talk", &c.talk),
            ("calls.acw", &c.acw),
            ("calls.ring", &c.ring),
            ("calls.hold", &c.hold),
        ] {
            d.validate(n)?;
            if matches!(d, Dist::Infinite) {
                return Err(invalid(n, "cannot be infinite"));
            }
        }
        c.patience.validate("calls.patience")?;
        for (n, v) in [
            ("calls.acw_share", c.acw_share),
            ("calls.hold_share", c.hold_share),
            ("calls.conference_share", c.conference_share),
            ("calls.transfer_share", c.transfer_share),
            ("calls.caller_release_share", c.caller_release_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(invalid(n, "must be between 0 and 1"));
            }
        }
        Ok(())
    }

    /// The time-of-day factor for local hour `h`.
    pub fn hourly_factor(&self, h: u32) -> f64 {
        if self.calls.hourly.is_empty() {
            1.0
        } else {
            self.calls.hourly[h as usize % 24]
        }
    }
}

/// Finite and not negative (NaN is neither).
fn nonneg(x: f64) -> bool {
    x.is_finite() && x >= 0.0
}

/// "HH:MM" to seconds after local midnight.
pub fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    (h < 24 && m < 60 && s.len() <= 5).then_some(h * 3600 + m * 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_profiles_parse() {
        for f in ["tiny", "reference", "large", "asterisk"] {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("profiles/{f}.toml"));
            Profile::load(&p).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }

    #[test]
    fn bad_zone_is_named() {
        let t = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/tiny.toml"),
        )
        .unwrap();
        let t = t.replace("Europe/London", "Mars/Olympus");
        let e = Profile::parse(&t).unwrap_err().to_string();
        assert!(e.contains("time_zone") && e.contains("Mars/Olympus"), "{e}");
    }
}
