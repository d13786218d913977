//! Random durations for the workload model: the distributions a profile may name, sampled
//! in whole seconds from the simulator's seeded generator.
//!
//! Owns only sampling. Which duration is drawn when is the generator's business
//! (`gen.rs`); the profile format is documented in `docs/linksim.md`.

use rand::Rng;
use serde::Deserialize;

/// A distribution whose parameters cannot be sampled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: invalid distribution parameters {dist:?}")]
pub struct DistError {
    /// The profile field that holds it (`calls.talk`).
    pub field: String,
    pub dist: Dist,
}

/// "Never": patience that never runs out, a timer that never fires.
pub const NEVER: i64 = i64::MAX / 4;

/// A duration distribution in seconds, as written in a profile:
/// `{ dist = "exp", mean = 180 }`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
pub enum Dist {
    /// Always `value` seconds.
    Const { value: f64 },
    /// Exponential with the given mean (memoryless: Erlang C talk times and patience).
    Exp { mean: f64 },
    /// Log-normal with the given mean and standard deviation (realistic talk times).
    Lognormal { mean: f64, sd: f64 },
    /// Uniform between `min` and `max` seconds.
    Uniform { min: f64, max: f64 },
    /// Never happens ([`NEVER`]): infinite patience.
    Infinite,
}

impl Dist {
    /// Checks the parameters; `what` names the field for the message.
    ///
    /// # Errors
    /// A negative or non-finite parameter, or `min > max`.
    pub fn validate(&self, what: &str) -> Result<(), DistError> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        let good = match *self {
            Dist::Const { value } => ok(value),
            Dist::Exp { mean } => ok(mean),
            Dist::Lognormal { mean, sd } => ok(mean) && ok(sd) && mean > 0.0,
            Dist::Uniform { min, max } => ok(min) && ok(max) && min <= max,
            Dist::Infinite => true,
        };
        if good {
            Ok(())
        } else {
            Err(DistError {
                field: what.to_string(),
                dist: *self,
            })
        }
    }

    /// Draws a duration in whole seconds (rounded to nearest, never negative).
    pub fn sample<R: Rng>(&self, rng: &mut R) -> i64 {
        let x = match *self {
            Dist::Const { value } => value,
            Dist::Exp { mean } => exp(rng, mean),
            Dist::Lognormal { mean, sd } => {
                // Parameters of the underlying normal from the wanted mean and sd.
                let s2 = (1.0 + (sd * sd) / (mean * mean)).ln();
                let mu = mean.ln() - s2 / 2.0;
                (mu + s2.sqrt() * std_normal(rng)).exp()
            }
            Dist::Uniform { min, max } => min + (max - min) * rng.gen::<f64>(),
            Dist::Infinite => return NEVER,
        };
        if x.is_finite() {
            (x.round() as i64).clamp(0, NEVER)
        } else {
            NEVER
        }
    }

    /// The distribution's mean in seconds (for sanity checks and documentation).
    pub fn mean(&self) -> f64 {
        match *self {
            Dist::Const { value } => value,
            Dist::Exp { mean } | Dist::Lognormal { mean, .. } => mean,
            Dist::Uniform { min, max } => (min + max) / 2.0,
            Dist::Infinite => f64::INFINITY,
        }
    }
}

/// Exponential variate with the given mean, in (fractional) seconds.
pub fn exp<R: Rng>(rng: &mut R, mean: f64) -> f64 {
    // 1 - u is in (0, 1]: ln never sees 0.
    -mean * (1.0 - rng.gen::<f64>()).ln()
}

/// Standard normal variate (Box-Muller; one of the pair is discarded for simplicity).
fn std_normal<R: Rng>(rng: &mut R) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, SeedableRng};

    #[test]
    fn means_are_close() {
        let mut rng = SmallRng::seed_from_u64(7);
        for d in [
            Dist::Exp { mean: 100.0 },
            Dist::Lognormal {
                mean: 200.0,
                sd: 100.0,
            },
            Dist::Uniform {
                min: 10.0,
                max: 30.0,
            },
        ] {
            let n = 200_000;
            let sum: i64 = (0..n).map(|_| d.sample(&mut rng)).sum();
            let m = sum as f64 / n as f64;
            assert!((m - d.mean()).abs() / d.mean() < 0.02, "{d:?}: {m}");
        }
        assert_eq!(Dist::Infinite.sample(&mut rng), NEVER);
    }
}
