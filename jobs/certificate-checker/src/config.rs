//! The job's own `job:` config section and its validation.

use std::path::PathBuf;
use std::time::Duration;

use common::config::{HostPort, HttpUrl, HumanDuration};
use serde::Deserialize;

/// The `job:` section of `certificate-checker`'s config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckerConfig {
    /// Kubernetes Secrets to scan (the shared `kubernetes:` section says how to connect).
    #[serde(default)]
    pub kubernetes: KubeSource,
    /// HTTPS endpoints to connect to.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// Vault PKI mounts to list.
    #[serde(default)]
    pub vault: Option<VaultSource>,
    /// Days-remaining thresholds of the expiry rule.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// The roots endpoint chains must lead to.
    #[serde(default)]
    pub roots: Roots,
    /// How many endpoint handshakes run at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Connect + handshake timeout per endpoint, and the timeout of each Vault request.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

fn default_concurrency() -> usize {
    64
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}

/// Which Secrets to read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeSource {
    /// Off by default, so a config with only endpoints never needs cluster access.
    #[serde(default)]
    pub enabled: bool,
    /// A label selector (`app=web,tier!=db`); all Secrets in all namespaces when absent.
    #[serde(default)]
    pub label_selector: Option<String>,
    /// Data keys holding PEM certificates in Secrets of any type (besides `tls.crt`/`ca.crt` of
    /// `kubernetes.io/tls` Secrets), for example `cert.pem` in Opaque Secrets.
    #[serde(default)]
    pub extra_keys: Vec<String>,
    /// The deadline of the whole listing (all pages, kube-rs retries included); past it the
    /// source is reported as failed and the run is partial.
    #[serde(default = "default_list_timeout")]
    pub list_timeout: HumanDuration,
}

impl Default for KubeSource {
    fn default() -> Self {
        KubeSource {
            enabled: false,
            label_selector: None,
            extra_keys: Vec::new(),
            list_timeout: default_list_timeout(),
        }
    }
}

fn default_list_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(120))
}

/// One HTTPS endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// `host:port` to connect to.
    pub address: HostPort,
    /// The server name to send (SNI) and to check the certificate against; default: the host.
    #[serde(default)]
    pub sni: Option<String>,
}

impl Endpoint {
    /// `https://host:port`, the finding's resource.
    pub fn resource(&self) -> String {
        format!("https://{}", self.address.as_str())
    }

    /// The host part of the address, without IPv6 brackets.
    pub fn host(&self) -> &str {
        let (host, _) = self
            .address
            .as_str()
            .rsplit_once(':')
            .unwrap_or((self.address.as_str(), ""));
        host.trim_start_matches('[').trim_end_matches(']')
    }

    /// The name the certificate must be valid for.
    pub fn server_name(&self) -> &str {
        self.sni.as_deref().unwrap_or_else(|| self.host())
    }
}

/// A Vault server with PKI mounts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSource {
    /// `https://vault.example:8200`.
    pub address: HttpUrl,
    /// PKI mount paths, for example `pki` or `pki_int`.
    pub mounts: Vec<String>,
    /// A file holding the token (a mounted Secret); trailing whitespace ignored.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The environment variable holding the token, when there is no file (default `VAULT_TOKEN`).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Extra PEM roots for Vault's own HTTPS certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// Days-remaining thresholds: below `critical_days` (or expired) is critical, below
/// `warning_days` a warning, below `info_days` info, anything else ok.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Default 7.
    #[serde(default = "default_critical")]
    pub critical_days: i64,
    /// Default 30.
    #[serde(default = "default_warning")]
    pub warning_days: i64,
    /// Default 60.
    #[serde(default = "default_info")]
    pub info_days: i64,
}

fn default_critical() -> i64 {
    7
}
fn default_warning() -> i64 {
    30
}
fn default_info() -> i64 {
    60
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            critical_days: default_critical(),
            warning_days: default_warning(),
            info_days: default_info(),
        }
    }
}

/// Trust anchors for endpoint chains.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roots {
    /// Mozilla's roots (the `webpki-roots` crate); default true.
    #[serde(default = "yes")]
    pub webpki: bool,
    /// PEM files of further roots (a private CA); relative to the config file.
    #[serde(default)]
    pub extra_pem_files: Vec<PathBuf>,
}

fn yes() -> bool {
    true
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            webpki: true,
            extra_pem_files: Vec::new(),
        }
    }
}

impl CheckerConfig {
    /// Cross-field problems, each as `(field, message)`; empty when valid.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let t = &self.thresholds;
        if t.critical_days < 0 {
            problems.push((
                "job.thresholds.critical_days".into(),
                format!("must not be negative, got {}", t.critical_days),
            ));
        }
        if !(t.critical_days <= t.warning_days && t.warning_days <= t.info_days) {
            problems.push((
                "job.thresholds".into(),
                format!(
                    "expected critical_days <= warning_days <= info_days, got {} / {} / {}",
                    t.critical_days, t.warning_days, t.info_days
                ),
            ));
        }
        if self.concurrency == 0 {
            problems.push(("job.concurrency".into(), "must be at least 1".into()));
        }
        if self.timeout.0.is_zero() {
            problems.push(("job.timeout".into(), "must be longer than 0s".into()));
        }
        if self.kubernetes.list_timeout.0.is_zero() {
            problems.push((
                "job.kubernetes.list_timeout".into(),
                "must be longer than 0s".into(),
            ));
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            if let Some(sni) = &e.sni
                && rustls_pki_types::ServerName::try_from(sni.as_str()).is_err()
            {
                problems.push((
                    format!("job.endpoints[{i}].sni"),
                    format!("not a valid server name: {sni:?}"),
                ));
            }
        }
        if let Some(v) = &self.vault {
            if v.mounts.is_empty() {
                problems.push(("job.vault.mounts".into(), "name at least one mount".into()));
            }
            for (i, m) in v.mounts.iter().enumerate() {
                if m.is_empty() || m.starts_with('/') || m.contains("..") {
                    problems.push((
                        format!("job.vault.mounts[{i}]"),
                        format!("expected a mount path such as pki, got {m:?}"),
                    ));
                }
            }
            if v.token_file.is_some() && v.token_env.is_some() {
                problems.push((
                    "job.vault".into(),
                    "set token_file or token_env, not both".into(),
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<CheckerConfig, common::Error> {
        common::config::parse_str(yaml, "test.yaml")
    }

    #[test]
    fn defaults_match_the_issue() {
        let c = parse("{}").expect("parse");
        assert_eq!(
            c.thresholds,
            Thresholds {
                critical_days: 7,
                warning_days: 30,
                info_days: 60
            }
        );
        assert_eq!(c.concurrency, 64);
        assert_eq!(c.timeout.0, Duration::from_secs(5));
        assert!(c.roots.webpki);
        assert!(!c.kubernetes.enabled);
        assert!(c.validate().is_empty());
    }

    #[test]
    fn unknown_fields_and_bad_addresses_are_errors() {
        let e = parse("endpoints:\n  - address: example.com\n").expect_err("no port");
        assert!(e.to_string().contains("expected host:port"), "{e}");
        let e = parse("thresholds: {critical: 3}\n").expect_err("typo");
        assert!(e.to_string().contains("critical"), "{e}");
    }

    #[test]
    fn thresholds_must_be_ordered() {
        let c = parse("thresholds: {critical_days: 40, warning_days: 30}\nconcurrency: 0\n")
            .expect("parse");
        let fields: Vec<String> = c.validate().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["job.thresholds", "job.concurrency"]);
    }

    #[test]
    fn the_example_config_is_valid() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/certificate-checker.yaml");
        let c: common::config::JobConfig<CheckerConfig> =
            common::config::load_job_config(&path).expect("examples/certificate-checker.yaml");
        assert!(c.job.validate().is_empty(), "{:?}", c.job.validate());
        assert!(c.job.kubernetes.enabled);
        assert_eq!(c.job.endpoints.len(), 2);
        assert_eq!(c.job.vault.as_ref().map(|v| v.mounts.len()), Some(2));
    }

    #[test]
    fn endpoint_names_default_to_the_host() {
        let c = parse(
            "endpoints:\n  - address: 127.0.0.1:8443\n  - address: a.example:443\n    sni: b.example\n",
        )
        .expect("parse");
        assert_eq!(c.endpoints[0].server_name(), "127.0.0.1");
        assert_eq!(c.endpoints[0].resource(), "https://127.0.0.1:8443");
        assert_eq!(c.endpoints[1].server_name(), "b.example");
    }
}
