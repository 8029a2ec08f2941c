//! The `Job` impl: prepare (read roots and the Vault token, fail closed), collect from every
//! source, apply the rules, send one digest, record metrics.

use std::sync::atomic::AtomicU64;

use anyhow::{Context, bail};
use common::config::{JobConfig, read_secret_file, relative_to};
use common::event::{Finding, ResultEvent, Severity};
use common::harness::{CommonArgs, Job, JobError, Report, RunContext, render_rows, summary_line};
use common::metrics::{Labels, Metrics};
use common::notify::Notification;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use secrecy::SecretString;
use serde_json::json;

use crate::config::CheckerConfig;
use crate::rules::{self, Evaluated};
use crate::sources::{self, Vault};
use crate::tls::{self, Trust};

/// `certificate-checker` has no options beyond the common ones.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckerArgs {}

/// The job.
pub struct CertificateChecker {
    trust: Trust,
    vault: Option<Vault>,
    not_after: Family<Labels, Gauge<f64, AtomicU64>>,
    certificates: Family<Labels, Gauge>,
}

impl Job for CertificateChecker {
    const NAME: &'static str = "certificate-checker";
    const ABOUT: &'static str = "Find expiring, weak and untrusted TLS certificates.\n\n\
        Reads certificates from Kubernetes Secrets (kubernetes.io/tls: tls.crt and ca.crt, plus \
        job.kubernetes.extra_keys), from the chains HTTPS endpoints present (recorded even when \
        expired, self-signed or for another host) and from Vault PKI mounts. One certificate_expiry \
        finding per distinct certificate (by SHA-256 fingerprint) with every location; separate \
        findings for hostname_mismatch, untrusted_chain, weak_key (RSA < 2048), sha1_signature, \
        handshake_failed and invalid_certificate. One digest notification per run.\n\n\
        Read-only: --execute is accepted for uniformity with the other jobs and changes nothing \
        (the event is then marked dry_run: false).\n\n\
        Exit codes: 0 success, 1 a source could not be read fully, the digest not delivered on \
        a channel, or results not published, 2 refused before any side effect (bad config, \
        unreadable roots or Vault token).";
    type Args = CheckerArgs;
    type Config = CheckerConfig;

    fn prepare(
        _args: CheckerArgs,
        common: &CommonArgs,
        config: &JobConfig<CheckerConfig>,
    ) -> anyhow::Result<Self> {
        let file = common.config.display().to_string();
        let job = &config.job;
        let problems = job.validate();
        if !problems.is_empty() {
            bail!(
                "invalid config\n{}",
                problems
                    .iter()
                    .map(|(field, message)| format!("{file}: {field}: {message}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        let mut extra = Vec::new();
        for (i, p) in job.roots.extra_pem_files.iter().enumerate() {
            let path = relative_to(&common.config, p);
            let pem = std::fs::read(&path).with_context(|| {
                format!(
                    "{file}: job.roots.extra_pem_files[{i}]: cannot read {}",
                    path.display()
                )
            })?;
            let ders = crate::cert::pem_certificates(&pem).map_err(|e| {
                anyhow::anyhow!(
                    "{file}: job.roots.extra_pem_files[{i}]: {}: {e}",
                    path.display()
                )
            })?;
            extra.extend(ders);
        }
        let trust = Trust::new(job.roots.webpki, &extra)
            .map_err(|e| anyhow::anyhow!("{file}: job.roots: {e}"))?;
        let vault = match &job.vault {
            None => None,
            Some(v) => {
                let token: SecretString = match (&v.token_file, &v.token_env) {
                    (Some(f), _) => {
                        let path = relative_to(&common.config, f);
                        read_secret_file(&path)
                            .map_err(|e| anyhow::anyhow!("{file}: job.vault.token_file: {e}"))?
                    }
                    (None, env) => {
                        let name = env.as_deref().unwrap_or("VAULT_TOKEN");
                        let value = std::env::var(name).map_err(|_| {
                            anyhow::anyhow!(
                                "{file}: job.vault: no token: set token_file, or the environment variable {name}"
                            )
                        })?;
                        SecretString::from(value.trim().to_string())
                    }
                };
                let ca = match &v.ca_file {
                    Some(p) => {
                        let path = relative_to(&common.config, p);
                        Some(std::fs::read(&path).with_context(|| {
                            format!("{file}: job.vault.ca_file: cannot read {}", path.display())
                        })?)
                    }
                    None => None,
                };
                Some(
                    Vault::new(v, token, ca.as_deref(), job.timeout.0)
                        .map_err(|e| anyhow::anyhow!("{file}: job.vault: {e}"))?,
                )
            }
        };
        Ok(CertificateChecker {
            trust,
            vault,
            not_after: Family::default(),
            certificates: Family::default(),
        })
    }

    fn register_metrics(&mut self, metrics: &mut Metrics) {
        let registry = metrics.registry_mut();
        registry.register(
            "certificate_not_after_timestamp_seconds",
            "Unix time a certificate expires, per location",
            self.not_after.clone(),
        );
        registry.register(
            "certificate_checker_certificates",
            "Distinct certificates of the run by expiry severity",
            self.certificates.clone(),
        );
    }

    async fn run(&self, ctx: &RunContext<'_, CheckerConfig>) -> Result<Report, JobError> {
        let job = &ctx.config.job;
        let now = ctx.clock.now();
        let mut errors = Vec::new();
        let mut sightings = Vec::new();

        if job.kubernetes.enabled {
            let listed = match common::clients::kube_client(&ctx.config.kubernetes).await {
                Ok(client) => {
                    let deadline = job.kubernetes.list_timeout.0;
                    match tokio::time::timeout(
                        deadline,
                        sources::kubernetes(client, &job.kubernetes),
                    )
                    .await
                    {
                        Ok(listed) => listed.map_err(|e| {
                            format!(
                                "kubernetes: listing secrets: {}",
                                common::clients::describe_kube_error(&e)
                            )
                        }),
                        Err(_) => Err(format!(
                            "kubernetes: listing secrets did not finish within {deadline:?} \
                             (job.kubernetes.list_timeout)"
                        )),
                    }
                }
                Err(e) => Err(format!("kubernetes: {e}")),
            };
            match listed {
                Ok(c) => {
                    sightings.extend(c.sightings);
                    errors.extend(c.errors);
                }
                Err(e) => errors.push(e),
            }
        }
        if let (Some(vault), Some(cfg)) = (&self.vault, &job.vault) {
            let c = vault.collect(&cfg.mounts).await;
            sightings.extend(c.sightings);
            errors.extend(c.errors);
        }
        let probes = tls::probe_all(&job.endpoints, job.concurrency, job.timeout.0).await;
        let outcome = rules::evaluate(sightings, &probes, &self.trust, &job.thresholds, now);

        for c in &outcome.certificates {
            for (source, location) in &c.locations {
                self.not_after
                    .get_or_create(&vec![
                        ("source".to_string(), source.as_str().to_string()),
                        ("location".to_string(), location.clone()),
                        ("subject".to_string(), c.info.subject.clone()),
                    ])
                    .set(c.info.not_after.as_second() as f64);
            }
        }
        for s in [
            Severity::Critical,
            Severity::Warning,
            Severity::Info,
            Severity::Ok,
        ] {
            let n = outcome
                .certificates
                .iter()
                .filter(|c| c.severity == s)
                .count();
            self.certificates
                .get_or_create(&vec![("severity".to_string(), s.as_str().to_string())])
                .set(n as i64);
        }

        let mut report = Report {
            total_checked: outcome.certificates.len() as u64,
            errors,
            ..Report::default()
        };
        report
            .details
            .insert("endpoints_probed".into(), json!(probes.len()));
        report.details.insert(
            "certificates_by_severity".into(),
            json!(severity_counts(&outcome.certificates)),
        );
        if let Some(n) = digest(&outcome.findings, ctx.dry_run) {
            // The digest is what the run is for: a channel that did not take it makes the run
            // partial (exit 1), named in the errors, so the failure is seen (last_run_success 0)
            // instead of a silent success nobody was told about.
            ctx.acted();
            let sent = ctx.notifier.send(&n, ctx.clock).await;
            for a in sent.iter().filter(|a| !a.delivered) {
                report.errors.push(format!(
                    "digest not delivered by {} to {}: {}",
                    a.channel,
                    a.target,
                    a.error.as_deref().unwrap_or("no reason given")
                ));
            }
            report.alerts_sent = sent;
        }
        report.findings = outcome.findings;
        Ok(report)
    }

    fn render_table(&self, event: &ResultEvent) -> String {
        let mut rows = vec![
            [
                "SEVERITY",
                "TYPE",
                "DAYS",
                "NOT AFTER",
                "SUBJECT",
                "RESOURCE",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for f in &event.findings {
            let field = |k: &str| match f.fields.get(k) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) if !v.is_null() => v.to_string(),
                _ => "-".to_string(),
            };
            let subject = field("subject");
            let subject = subject
                .split(", ")
                .find_map(|p| p.strip_prefix("CN="))
                .map(String::from)
                .unwrap_or(subject);
            let extra = match f.fields.get("locations").and_then(|l| l.as_array()) {
                Some(l) if l.len() > 1 => format!(" (+{} more)", l.len() - 1),
                _ => String::new(),
            };
            rows.push(vec![
                f.severity.as_str().to_string(),
                f.kind.clone(),
                field("days_remaining"),
                field("not_after"),
                subject,
                format!("{}{extra}", f.resource),
            ]);
        }
        let mut out = render_rows(&rows);
        out.push_str(&summary_line(event));
        out
    }
}

fn severity_counts(certs: &[Evaluated]) -> serde_json::Map<String, serde_json::Value> {
    [
        Severity::Critical,
        Severity::Warning,
        Severity::Info,
        Severity::Ok,
    ]
    .iter()
    .map(|s| {
        (
            s.as_str().to_string(),
            json!(certs.iter().filter(|c| c.severity == *s).count()),
        )
    })
    .collect()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The run's one notification: every non-ok finding, most urgent first, routed by the highest
/// severity among them. `None` when everything is ok.
pub fn digest(findings: &[Finding], dry_run: bool) -> Option<Notification> {
    let notable: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.severity != Severity::Ok)
        .collect();
    let highest = notable.iter().map(|f| f.severity).max()?;
    let count = |s: Severity| notable.iter().filter(|f| f.severity == s).count();
    let subject = format!(
        "[{}] certificates: {} critical, {} warning, {} info",
        highest.as_str(),
        count(Severity::Critical),
        count(Severity::Warning),
        count(Severity::Info)
    );
    let mut text = format!("{subject}\n\n");
    let mut html = format!(
        "<h2>{}</h2>\n<table>\n<tr><th>Severity</th><th>Type</th><th>Resource</th><th>Finding</th></tr>\n",
        escape(&subject)
    );
    for f in &notable {
        let others = match f.fields.get("locations").and_then(|l| l.as_array()) {
            Some(l) if l.len() > 1 => format!(
                " [also at: {}]",
                l.iter()
                    .skip(1)
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => String::new(),
        };
        text.push_str(&format!(
            "- {} {} {}: {}{}\n",
            f.severity.as_str(),
            f.kind,
            f.resource,
            f.message,
            others
        ));
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>\n",
            f.severity.as_str(),
            escape(&f.kind),
            escape(&f.resource),
            escape(&f.message),
            escape(&others)
        ));
    }
    html.push_str("</table>\n");
    if dry_run {
        text.push_str("\n(certificate-checker is read-only; this run changed nothing.)\n");
    }
    Some(Notification {
        severity: highest,
        subject,
        text,
        html: Some(html),
        email_to: Vec::new(),
        dedup_key: Some("certificate-checker".to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_takes_the_highest_severity_and_skips_ok() {
        let f = |s, r: &str| Finding::new("certificate_expiry", s, r, format!("{r} <msg>"));
        let n = digest(
            &[
                f(Severity::Warning, "k8s:secret/a/b"),
                f(Severity::Critical, "https://x:443"),
                f(Severity::Ok, "vault:pki/1"),
            ],
            true,
        )
        .expect("digest");
        assert_eq!(n.severity, Severity::Critical);
        assert_eq!(
            n.subject,
            "[critical] certificates: 1 critical, 1 warning, 0 info"
        );
        assert!(n.text.contains("https://x:443"));
        assert!(!n.text.contains("vault:pki/1"));
        assert!(n.html.as_deref().unwrap_or("").contains("&lt;msg&gt;"));
        assert!(digest(&[f(Severity::Ok, "vault:pki/1")], true).is_none());
    }
}
