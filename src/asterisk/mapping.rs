//! The mapping from Asterisk's names to the ACD link's numbers (a TOML file, every key
//! optional): queues to skills, members to agents, DIDs to VDNs, pause reasons to AUX
//! codes, and the wrap-up time booked as ACW. `docs/asterisk.md` is its manual;
//! `packaging/asterisk.toml` the annotated reference. No I/O but [`Mapping::load`].
//!
//! Names the file does not list get a number by a fixed rule, so the same log always
//! gives the same stream: a queue or member whose name is a number (FreePBX queue
//! `8000`, member `PJSIP/201`) keeps it; any other gets the next free automatic number
//! in the order the log first names it ([`AUTO_SKILL_BASE`], [`AUTO_AGENT_BASE`]).
//!
//! [`Mapping::with_queues_conf`] puts Asterisk's `queues.conf` under the file: its
//! queues become listed queues (numbered by the same rule, the automatic ones in the
//! file's order, so before any queue the log names), with their `servicelevel` and
//! `wrapuptime`; its members named by a `membername` get their interface's number.
//! What the TOML file says always wins.

use super::queues_conf::QueuesConf;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// First automatic skill number (queue names that are not numbers).
pub const AUTO_SKILL_BASE: u16 = 60001;
/// First automatic agent number (member names without an extension number).
pub const AUTO_AGENT_BASE: u32 = 900_000_001;

/// One queue's skill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueMap {
    pub skill: u16,
    /// Seconds: the skill's ACCEPTABLE threshold (queues.conf `servicelevel`).
    #[serde(default)]
    pub service_level: Option<u16>,
    /// Seconds of ACW after each call of this queue (queues.conf `wrapuptime`).
    #[serde(default)]
    pub wrapup_seconds: Option<u32>,
}

/// The whole mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The ACD number the bridge answers HELLOs for.
    #[serde(default = "one")]
    pub acd: u16,
    /// Service level of a queue that does not set one (Asterisk's default is 0).
    #[serde(default)]
    pub service_level: u16,
    /// PERIOD1..9 of every skill, seconds, ascending.
    #[serde(default = "default_periods")]
    pub periods: [u16; 9],
    /// ACW after each call, seconds, for a queue that does not set one (queues.conf
    /// `wrapuptime`; 0 = none).
    #[serde(default)]
    pub wrapup_seconds: u32,
    /// The VDN of a call with no DID line, or with a DID the `dids` table does not list.
    #[serde(default = "one")]
    pub default_vdn: u16,
    /// Service level of every VDN, seconds.
    #[serde(default)]
    pub vdn_service_level: u16,
    /// A step back in the log's time larger than this many seconds is a clock change
    /// (CLOCK_CHANGE); a smaller one is a line written out of order.
    #[serde(default = "default_clock_step")]
    pub clock_step_seconds: u32,
    /// A call that left a queue (EXITWITHTIMEOUT, EXITEMPTY, EXITWITHKEY) and enters
    /// another within this many seconds moved between queues (an overflow); otherwise
    /// it ends this long after it left.
    #[serde(default = "default_move_window")]
    pub move_window_seconds: u32,
    #[serde(default)]
    pub queues: BTreeMap<String, QueueMap>,
    /// Member (interface or member name, as the log writes it) -> agent number.
    #[serde(default)]
    pub agents: BTreeMap<String, u32>,
    /// DID -> VDN.
    #[serde(default)]
    pub dids: BTreeMap<String, u16>,
    /// Pause reason -> AUX reason code 1..=9 (a pause without a listed reason is AUX 0).
    #[serde(default)]
    pub aux_codes: BTreeMap<String, u8>,
}

fn one() -> u16 {
    1
}
fn default_periods() -> [u16; 9] {
    [5, 10, 15, 20, 30, 45, 60, 90, 120]
}
fn default_clock_step() -> u32 {
    60
}
fn default_move_window() -> u32 {
    10
}

impl Default for Mapping {
    fn default() -> Mapping {
        Mapping::parse("").expect("the empty mapping is valid")
    }
}

/// A mapping file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct MappingError {
    pub file: String,
    pub reason: String,
}

impl Mapping {
    /// Parses and validates a mapping.
    ///
    /// # Errors
    /// Bad TOML, an unknown key, or a value out of range (the message names it).
    pub fn parse(text: &str) -> Result<Mapping, String> {
        let m: Mapping = toml::from_str(text).map_err(|e| e.to_string())?;
        m.validate()?;
        Ok(m)
    }

    /// Reads and validates a mapping file.
    ///
    /// # Errors
    /// The file cannot be read or is not a valid mapping; the error names the file.
    pub fn load(path: &Path) -> Result<Mapping, MappingError> {
        let err = |reason: String| MappingError {
            file: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Mapping::parse(&text).map_err(err)
    }

    fn validate(&self) -> Result<(), String> {
        if self.acd == 0 {
            return Err("acd: must be 1 or more".into());
        }
        if self.default_vdn == 0 {
            return Err("default_vdn: must be 1 or more".into());
        }
        if self.periods.windows(2).any(|w| w[0] > w[1]) {
            return Err("periods: must be ascending".into());
        }
        for (name, q) in &self.queues {
            if q.skill == 0 {
                return Err(format!("queues.{name}.skill: must be 1 or more"));
            }
        }
        for (name, a) in &self.agents {
            if *a == 0 {
                return Err(format!("agents.{name:?}: must be 1 or more"));
            }
        }
        for (name, v) in &self.dids {
            if *v == 0 {
                return Err(format!("dids.{name:?}: must be 1 or more"));
            }
        }
        for (name, c) in &self.aux_codes {
            if !(1..=9).contains(c) {
                return Err(format!("aux_codes.{name:?}: must be 1..=9, is {c}"));
            }
        }
        Ok(())
    }

    /// The fixed skill of a queue: listed, or its name when that is a number 1..=65535.
    pub fn fixed_skill(&self, queue: &str) -> Option<u16> {
        if let Some(q) = self.queues.get(queue) {
            return Some(q.skill);
        }
        queue.parse::<u16>().ok().filter(|&s| s > 0)
    }

    /// The fixed agent of a member: listed, or its extension number (`PJSIP/201` ->
    /// 201, `Local/2004@from-internal/n` -> 2004, `Agent/3001` -> 3001, `7140` -> 7140).
    pub fn fixed_agent(&self, member: &str) -> Option<u32> {
        if let Some(a) = self.agents.get(member) {
            return Some(*a);
        }
        let rest = member.split_once('/').map_or(member, |(_, r)| r);
        let ext = rest.split(['@', '/', '-']).next().unwrap_or("");
        if ext.is_empty() || !ext.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        ext.parse::<u32>().ok().filter(|&a| a > 0)
    }

    pub fn service_level(&self, queue: &str) -> u16 {
        self.queues
            .get(queue)
            .and_then(|q| q.service_level)
            .unwrap_or(self.service_level)
    }

    /// ACW after a call of `queue`, in ms.
    pub fn wrapup_ms(&self, queue: &str) -> i64 {
        i64::from(
            self.queues
                .get(queue)
                .and_then(|q| q.wrapup_seconds)
                .unwrap_or(self.wrapup_seconds),
        ) * 1000
    }

    pub fn vdn(&self, did: Option<&str>) -> u16 {
        did.and_then(|d| self.dids.get(d).copied())
            .unwrap_or(self.default_vdn)
    }

    /// The AUX reason of a pause reason: listed, else 0.
    pub fn aux(&self, reason: &str) -> u8 {
        self.aux_codes.get(reason).copied().unwrap_or(0)
    }

    /// This mapping with `queues.conf`'s defaults under it: what the mapping says wins,
    /// `queues.conf` fills in the rest (docs/asterisk.md, "queues.conf").
    ///
    /// - Every queue of `qc` becomes a listed queue. A queue the mapping lists keeps its
    ///   skill and gets `queues.conf`'s `servicelevel` / `wrapuptime` where the mapping
    ///   does not set its own. Another keeps its number when its name is one (1..=65535);
    ///   the rest get [`AUTO_SKILL_BASE`], ... in the file's order, skipping every skill
    ///   taken. Listed, they are defined at the log's first line and numbered before any
    ///   queue the log names: the numbers depend on the two files only, never on which
    ///   queue the log names first, so they are the same after every restart.
    /// - A queue `queues.conf` does not set a value for takes the mapping's top-level
    ///   `service_level` / `wrapup_seconds` (whose own default is Asterisk's, 0).
    /// - A member the log names by its `membername` ("Bob Jones"), which the mapping does
    ///   not list and which holds no extension number itself, is its interface's agent
    ///   (`Local/202@from-queue/n` -> 202, or the interface's entry in `[agents]`). A
    ///   name that already has a fixed number keeps it: `queues.conf` renumbers nothing.
    ///
    /// # Errors
    /// A queue of `queues.conf` whose name is the number of a skill the mapping gives
    /// another queue (the message names both), or no automatic skill number left.
    pub fn with_queues_conf(&self, qc: &QueuesConf) -> Result<Mapping, String> {
        let mut m = self.clone();
        let mut taken: BTreeMap<u16, String> = self
            .queues
            .iter()
            .map(|(n, q)| (q.skill, n.clone()))
            .collect();
        let mut auto = Vec::new();
        for q in &qc.queues {
            if let Some(listed) = m.queues.get_mut(&q.name) {
                listed.service_level = listed.service_level.or(q.service_level);
                listed.wrapup_seconds = listed.wrapup_seconds.or(q.wrapup_seconds);
                continue;
            }
            let skill = match q.name.parse::<u16>().ok().filter(|&s| s > 0) {
                Some(s) => {
                    if let Some(other) = taken.get(&s) {
                        return Err(format!(
                            "queue '{}' (line {}) is skill {s}, which is queue '{other}' \
                             already: list it under [queues] with another skill",
                            q.name, q.line
                        ));
                    }
                    taken.insert(s, q.name.clone());
                    s
                }
                None => {
                    auto.push(q.name.clone());
                    0
                }
            };
            m.queues.insert(
                q.name.clone(),
                QueueMap {
                    skill,
                    service_level: q.service_level,
                    wrapup_seconds: q.wrapup_seconds,
                },
            );
        }
        let used: BTreeSet<u16> = taken.keys().copied().collect();
        let mut free = (AUTO_SKILL_BASE..=u16::MAX).filter(|s| !used.contains(s));
        for name in auto {
            let s = free
                .next()
                .ok_or_else(|| format!("queue '{name}': no automatic skill number left"))?;
            m.queues.get_mut(&name).expect("inserted above").skill = s;
        }
        for q in &qc.queues {
            for mem in &q.members {
                let name = mem.log_name();
                if m.agents.contains_key(name) || self.fixed_agent(name).is_some() {
                    continue;
                }
                if let Some(a) = self.fixed_agent(&mem.interface) {
                    m.agents.insert(name.to_string(), a);
                }
            }
        }
        m.validate()?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_fixed_numbers() {
        let m = Mapping::default();
        assert_eq!(m.acd, 1);
        assert_eq!(m.default_vdn, 1);
        assert_eq!(m.fixed_skill("8000"), Some(8000));
        assert_eq!(m.fixed_skill("support"), None);
        assert_eq!(m.fixed_skill("0"), None);
        assert_eq!(m.fixed_skill("70000"), None);
        assert_eq!(m.fixed_agent("PJSIP/201"), Some(201));
        assert_eq!(m.fixed_agent("SIP/8007"), Some(8007));
        assert_eq!(m.fixed_agent("Local/2004@from-internal/n"), Some(2004));
        assert_eq!(m.fixed_agent("Agent/3001"), Some(3001));
        assert_eq!(m.fixed_agent("7140"), Some(7140));
        assert_eq!(m.fixed_agent("SIP/0004f2040001"), None);
        assert_eq!(m.fixed_agent("PJSIP/alice"), None);
        assert_eq!(m.aux("Lunch"), 0);
        assert_eq!(m.wrapup_ms("support"), 0);
    }

    #[test]
    fn a_full_mapping() {
        let m = Mapping::parse(
            r#"
            acd = 3
            wrapup_seconds = 10
            default_vdn = 9
            [queues.support]
            skill = 1
            service_level = 20
            wrapup_seconds = 30
            [queues.sales]
            skill = 2
            [agents]
            "SIP/0004f2040001" = 101
            [dids]
            "5551234" = 2
            [aux_codes]
            Lunch = 1
            Training = 4
            "#,
        )
        .unwrap();
        assert_eq!(m.acd, 3);
        assert_eq!(m.fixed_skill("support"), Some(1));
        assert_eq!(m.service_level("support"), 20);
        assert_eq!(m.service_level("sales"), 0);
        assert_eq!(m.wrapup_ms("support"), 30_000);
        assert_eq!(m.wrapup_ms("sales"), 10_000);
        assert_eq!(m.fixed_agent("SIP/0004f2040001"), Some(101));
        assert_eq!(m.vdn(Some("5551234")), 2);
        assert_eq!(m.vdn(Some("5559999")), 9);
        assert_eq!(m.vdn(None), 9);
        assert_eq!(m.aux("Training"), 4);
    }

    /// The annotated reference the package installs is a valid mapping, and says
    /// what it sets.
    #[test]
    fn the_packaged_reference_is_valid() {
        let m = Mapping::parse(include_str!("../../packaging/asterisk.toml")).unwrap();
        let want = Mapping {
            service_level: 20,
            vdn_service_level: 20,
            ..Mapping::default()
        };
        assert_eq!(m, want);
    }

    fn conf(text: &str) -> QueuesConf {
        super::super::queues_conf::parse(text).unwrap()
    }

    /// The mapping wins, queues.conf fills in, the top-level defaults last; queues.conf's
    /// queues are numbered in file order, before the log's.
    #[test]
    fn queues_conf_under_the_mapping() {
        let m = Mapping::parse(
            r#"
            service_level = 20
            wrapup_seconds = 5
            [queues.support]
            skill = 60001
            wrapup_seconds = 30
            [agents]
            "Ann" = 555
            "#,
        )
        .unwrap();
        let qc = conf(
            "[general]\n\
             [tpl](!)\n\
             wrapuptime = 12\n\
             [support](tpl)\n\
             servicelevel = 40\n\
             [zeta]\n\
             member => PJSIP/alice,0,Alice\n\
             [8000](tpl)\n\
             servicelevel = 60\n\
             member => Local/201@from-queue/n,0,Bob Jones,hint:201@ext-local\n\
             member => PJSIP/202,0,Ann\n\
             member => PJSIP/203,0,7140\n\
             [alpha]\n\
             member => PJSIP/204\n",
        );
        let e = m.with_queues_conf(&qc).unwrap();
        let q = |n: &str| {
            let q = &e.queues[n];
            (q.skill, e.service_level(n), e.wrapup_ms(n) / 1000)
        };
        // Listed: its skill and wrap-up; queues.conf's service level fills in.
        assert_eq!(q("support"), (60001, 40, 30));
        // Automatic numbers in file order (zeta before alpha), skipping 60001.
        assert_eq!(q("zeta"), (60002, 20, 5));
        assert_eq!(q("alpha"), (60003, 20, 5));
        assert_eq!(q("8000"), (8000, 60, 12));
        assert_eq!(e.fixed_agent("Bob Jones"), Some(201));
        // Listed, or a number of its own, or nothing to go by: unchanged.
        assert_eq!(e.fixed_agent("Ann"), Some(555));
        assert_eq!(e.fixed_agent("7140"), Some(7140));
        assert_eq!(e.fixed_agent("Alice"), None);
        assert_eq!(e.fixed_agent("PJSIP/204"), Some(204));
        assert_eq!(e.agents.len(), 2, "{:?}", e.agents);
        // The same files give the same mapping, whatever the log says first.
        assert_eq!(m.with_queues_conf(&qc).unwrap(), e);
        // The reference mapping's top-level values do not hide queues.conf's.
        let r = Mapping::parse(include_str!("../../packaging/asterisk.toml")).unwrap();
        let r = r.with_queues_conf(&conf("[q]\nwrapuptime = 9\n")).unwrap();
        assert_eq!(r.wrapup_ms("q"), 9000);
    }

    #[test]
    fn a_queues_conf_queue_on_a_listed_skill_is_refused() {
        let m = Mapping::parse("[queues.sales]\nskill = 8000\n").unwrap();
        let e = m
            .with_queues_conf(&conf("[general]\n[8000]\nwrapuptime = 1\n"))
            .unwrap_err();
        assert!(
            e.contains("'8000' (line 2)") && e.contains("'sales'"),
            "{e}"
        );
    }

    #[test]
    fn bad_mappings_name_the_key() {
        let e = Mapping::parse("[aux_codes]\nLunch = 12\n").unwrap_err();
        assert!(e.contains("aux_codes.\"Lunch\""), "{e}");
        let e = Mapping::parse("[queues.q]\nskill = 0\n").unwrap_err();
        assert!(e.contains("queues.q.skill"), "{e}");
        let e = Mapping::parse("periods = [5, 4, 6, 7, 8, 9, 10, 11, 12]\n").unwrap_err();
        assert!(e.contains("periods"), "{e}");
        let e = Mapping::parse("wrapup = 5\n").unwrap_err();
        assert!(e.contains("wrapup"), "{e}");
        let e = Mapping::load(Path::new("/nonexistent/asterisk.toml")).unwrap_err();
        assert!(
            e.to_string().starts_with("/nonexistent/asterisk.toml: "),
            "{e}"
        );
    }
}
