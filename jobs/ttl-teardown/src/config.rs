//! The `job:` section of the TTL teardown config.

use std::path::PathBuf;

use serde::Deserialize;

use crate::cost::Pricing;
use crate::tags::TagPolicy;

/// Everything the TTL job reads from its config file's `job:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtlConfig {
    /// The never-delete rules. Required: with no readable, valid whitelist nothing is deleted.
    pub whitelist: PathBuf,
    /// The tagging standard.
    #[serde(default)]
    pub policy: TagPolicy,
    /// AWS accounts the job may delete in; a resource in any other account is protected.
    #[serde(default)]
    pub allowed_accounts: Vec<String>,
    /// Blast-radius caps.
    #[serde(default)]
    pub caps: Caps,
    /// Prices for the cost-avoided report.
    #[serde(default)]
    pub pricing: Pricing,
    /// Where resources come from.
    #[serde(default)]
    pub sources: Sources,
}

/// Limits on how much one run may delete, per AWS account and per cluster. Over a cap, the run
/// deletes nothing at all and exits 2.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Caps {
    /// At most this many deletions per account or cluster per run (default 25).
    pub max_deletions: usize,
    /// At most this percentage of the eligible inventory of an account or cluster (default 20).
    pub max_percent: f64,
    /// The percentage cap applies only above this many deletions (default 5), so that a small
    /// inventory with two expired resources out of five is not refused.
    pub percent_applies_above: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_deletions: 25,
            max_percent: 20.0,
            percent_applies_above: 5,
        }
    }
}

/// The providers to read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sources {
    /// An offline inventory file (also `--inventory`); when set, it is the only source.
    pub inventory: Option<PathBuf>,
}

impl TtlConfig {
    /// Cross-field checks the types cannot express; every problem as `field: message`.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = self.policy.validate() {
            for p in e.problems {
                problems.push(format!("job.policy: {p}"));
            }
        }
        if let Err(e) = self.pricing.validate() {
            problems.push(format!("job.pricing: {e}"));
        }
        if !(self.caps.max_percent > 0.0 && self.caps.max_percent <= 100.0) {
            problems.push(format!(
                "job.caps.max_percent: must be in (0, 100], got {}",
                self.caps.max_percent
            ));
        }
        for (i, a) in self.allowed_accounts.iter().enumerate() {
            if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
                problems.push(format!(
                    "job.allowed_accounts[{i}]: expected a 12-digit account id, got {a:?}"
                ));
            }
        }
        problems
    }
}
