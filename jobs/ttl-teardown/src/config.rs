//! The `job:` section of the TTL teardown config.

use std::path::PathBuf;

use serde::Deserialize;

use std::time::Duration;

use common::config::HumanDuration;

use inventory::{KubeSource, Pricing};

use crate::tags::TagPolicy;

/// Default rate limit of the snooze service: requests per minute per client on `/v1/` (also
/// the burst size).
pub const DEFAULT_RATE_PER_MINUTE: u32 = 30;

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
    /// The run lock (a Kubernetes Lease), taken by `--execute` runs.
    #[serde(default)]
    pub lock: LockConfig,
    /// How long to wait for removals in progress before deleting what depends on them.
    #[serde(default)]
    pub waiting: WaitingConfig,
    /// Extra passes over deletions that failed with a retryable error.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Where each executed run's audit records (plan, intents, outcomes) are archived, besides
    /// Kafka.
    #[serde(default)]
    pub audit_archive: Option<ArchiveConfig>,
    /// Closing earlier runs' intents that have no outcome (a run killed mid-way).
    #[serde(default)]
    pub reconcile: ReconcileConfig,
    /// Owner notices with snooze links (warning emails are sent only when this is set).
    #[serde(default)]
    pub snooze: Option<SnoozeConfig>,
}

/// Warning emails and the snooze-link service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnoozeConfig {
    /// Public base URL of the snooze service, e.g. `https://snooze.platform.example.com`.
    pub base_url: common::config::HttpUrl,
    /// Directory of signing keys (a mounted Secret: one file per key id).
    pub keys_dir: PathBuf,
    /// The key id new links are signed with.
    pub active_key: String,
    /// Where notices for resources without a valid owner email go.
    #[serde(default)]
    pub fallback_email: Option<common::config::Email>,
    /// Address the service listens on (default `0.0.0.0:8080`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Requests per minute per client on `/v1/`, also the burst (default 30).
    #[serde(default = "default_rate_per_minute")]
    pub rate_per_minute: u32,
    /// The networks of the proxies in front of the service (the ingress controller's pods), as
    /// CIDRs. A request whose TCP peer is in one of them is rate-limited by the client address
    /// its `X-Forwarded-For` names (the rightmost address that is not itself a trusted proxy);
    /// any other request by its TCP peer, whatever headers it sends. Default: none.
    #[serde(default)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Who the warning emails and pages say they come from (default `the platform team`).
    #[serde(default = "default_sender")]
    pub sender: String,
    /// Whom owners ask about a notice, as shown in emails and pages: an address, a chat
    /// channel, a URL (default: `fallback_email`, else the sender).
    #[serde(default)]
    pub contact: Option<String>,
    /// Names to greet owners by, by owner email (`alice@example.com: Alice`); owners not listed
    /// are greeted without a name.
    #[serde(default)]
    pub owner_names: std::collections::BTreeMap<String, String>,
    /// What deletion means, in one or two sentences for owners (default: permanent, the data
    /// goes with it, no snapshot or backup is taken).
    #[serde(default)]
    pub deletion_note: Option<String>,
}

/// The default of [`SnoozeConfig::deletion_note`]: what the executor does (RDS instances are
/// deleted with `SkipFinalSnapshot`, volumes with their instance).
pub const DEFAULT_DELETION_NOTE: &str = "Deletion is permanent: the resource and the data on it are removed, and no snapshot or backup is taken (databases are deleted without a final snapshot, root volumes go with their instance).";

impl SnoozeConfig {
    /// Whom to contact: `contact`, else `fallback_email`, else the sender.
    pub fn contact(&self) -> String {
        self.contact
            .clone()
            .or_else(|| self.fallback_email.as_ref().map(ToString::to_string))
            .unwrap_or_else(|| self.sender.clone())
    }

    /// What deletion means: `deletion_note`, else [`DEFAULT_DELETION_NOTE`].
    pub fn deletion_note(&self) -> &str {
        self.deletion_note
            .as_deref()
            .unwrap_or(DEFAULT_DELETION_NOTE)
    }
}

fn default_sender() -> String {
    "the platform team".to_string()
}

fn default_rate_per_minute() -> u32 {
    DEFAULT_RATE_PER_MINUTE
}

fn default_listen() -> String {
    "0.0.0.0:8080".to_string()
}

/// The Lease that makes `--execute` runs one at a time.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockConfig {
    /// Namespace of the Lease (default `governance-jobs`).
    pub namespace: String,
    /// Name of the Lease (default `ttl-teardown`).
    pub name: String,
    /// How long a holder keeps it without renewing; a run that dies frees it after this.
    pub duration: HumanDuration,
}

impl Default for LockConfig {
    fn default() -> Self {
        LockConfig {
            namespace: "governance-jobs".to_string(),
            name: "ttl-teardown".to_string(),
            duration: HumanDuration(Duration::from_secs(15 * 60)),
        }
    }
}

/// Bounded waiting on removals in progress.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WaitingConfig {
    /// Per resource (default 5m); dependants of a slower removal go next run.
    pub timeout: HumanDuration,
    /// Poll interval (default 5s).
    pub interval: HumanDuration,
}

impl Default for WaitingConfig {
    fn default() -> Self {
        WaitingConfig {
            timeout: HumanDuration(Duration::from_secs(300)),
            interval: HumanDuration(Duration::from_secs(5)),
        }
    }
}

/// Retries within a run (libnuke's later pass over failed items).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Extra passes over retryable failures (default 2; 0 turns retries off).
    pub passes: u32,
    /// Pause before each extra pass (default 10s: long enough for an instance to release a
    /// security group).
    pub interval: HumanDuration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            passes: 2,
            interval: HumanDuration(Duration::from_secs(10)),
        }
    }
}

/// How an executing run reads the audit topic back to close earlier runs' open intents.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcileConfig {
    /// How far back to read (default 7d, by the broker's timestamps); an intent older than this
    /// stays open.
    pub lookback: HumanDuration,
    /// Longest the whole read may take (default 30s).
    pub timeout: HumanDuration,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            lookback: HumanDuration(crate::reconcile::DEFAULT_LOOKBACK),
            timeout: HumanDuration(Duration::from_secs(30)),
        }
    }
}

/// The audit archive: one JSONL object per executed run at
/// `s3://<bucket>/<prefix>/<yyyy>/<mm>/<dd>/<run_id>.jsonl`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// The bucket.
    pub bucket: String,
    /// Key prefix (default `ttl-teardown/audit`).
    #[serde(default = "default_archive_prefix")]
    pub prefix: String,
    /// The account whose credentials write it (one of `aws.accounts`, to use its role); default:
    /// the ambient credentials.
    #[serde(default)]
    pub account: Option<String>,
    /// The bucket's region (default: the first of `aws.regions`).
    #[serde(default)]
    pub region: Option<String>,
}

fn default_archive_prefix() -> String {
    "ttl-teardown/audit".to_string()
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
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sources {
    /// An offline inventory file (also `--inventory`); when set, it is the only source.
    pub inventory: Option<PathBuf>,
    /// Read AWS: every (account, region) of the `aws:` section.
    pub aws: bool,
    /// Read Kubernetes: namespaces and labelled objects of the cluster in `kubernetes:`.
    pub kubernetes: Option<KubeSource>,
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
        if let Some(k) = &self.sources.kubernetes {
            problems.extend(
                k.validate()
                    .into_iter()
                    .map(|p| format!("job.sources.kubernetes.{p}")),
            );
        }
        if let Some(a) = &self.audit_archive {
            if a.bucket.trim().is_empty() {
                problems.push("job.audit_archive.bucket: must not be empty".to_string());
            }
            if a.prefix.starts_with('/') || a.prefix.ends_with('/') {
                problems.push(format!(
                    "job.audit_archive.prefix: no leading or trailing `/`, got {:?}",
                    a.prefix
                ));
            }
        }
        if let Some(snooze) = &self.snooze {
            if snooze.rate_per_minute == 0 {
                problems.push("job.snooze.rate_per_minute: must be at least 1".to_string());
            }
            for (i, net) in snooze.trusted_proxies.iter().enumerate() {
                if net.prefix_len() == 0 {
                    problems.push(format!(
                        "job.snooze.trusted_proxies[{i}]: {net} trusts every address, so any \
                         client could choose its own rate-limit bucket; name the proxies' networks"
                    ));
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snooze(extra: &str) -> Result<TtlConfig, common::Error> {
        common::config::parse_str(
            &format!(
                "whitelist: w.yaml\nsnooze:\n  base_url: https://snooze.test\n  keys_dir: keys\n  active_key: k1\n{extra}"
            ),
            "config.yaml",
        )
    }

    #[test]
    fn trusted_proxies_are_cidrs_and_never_everything() {
        let c = snooze("  trusted_proxies: [10.0.0.0/8, \"fd00::/8\"]\n").expect("valid");
        let s = c.snooze.as_ref().expect("snooze");
        assert_eq!(s.trusted_proxies.len(), 2);
        assert_eq!(s.rate_per_minute, 30);
        assert!(c.validate().is_empty(), "{:?}", c.validate());

        let e = snooze("  trusted_proxies: [10.0.0.300/8]\n").expect_err("bad cidr");
        assert!(
            e.to_string().contains("snooze.trusted_proxies[0]"),
            "the error names the field: {e}"
        );

        let c = snooze("  trusted_proxies: [0.0.0.0/0]\n  rate_per_minute: 0\n").expect("parses");
        let problems = c.validate();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("job.snooze.rate_per_minute"));
        assert!(problems[1].starts_with("job.snooze.trusted_proxies[0]: 0.0.0.0/0 trusts every"));
    }
}
