//! The `Job` impl: read the sources (each optional; a failed one makes the run partial), build
//! one [`TenantReport`] per tenant, and render, publish and send each of them.
//!
//! Read-only: nothing here changes a source. `--execute` sends the emails (each tenant's report
//! to its contacts, the platform summary to `notify.email_to`); a dry run builds everything —
//! PDFs and CSVs included, written to `--out-dir` when given — publishes its events marked
//! `dry_run`, and lists the emails it would send.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use common::config::{Email, JobConfig, read_secret_file, relative_to};
use common::event::{AlertSent, Finding, ResultEvent, Severity};
use common::harness::{CommonArgs, Job, JobError, Report, RunContext, render_rows, summary_line};
use common::metrics::Metrics;
use common::notify::Attachment;
use futures::StreamExt;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::config::UsageConfig;
use crate::connect::{self, Health};
use crate::controlplane::{self, ControlPlane};
use crate::error::Error;
use crate::metrics::ReportMetrics;
use crate::period::{Period, PeriodArg, PeriodKind, parse_period_arg};
use crate::prometheus::{self, Prometheus};
use crate::quota::{QuotaState, ResourceUsage};
use crate::report::{self, Inputs, Platform, TenantReport};
use crate::{chart, output, pdf};

/// The environment variable holding the control-plane password when there is no file.
pub const PASSWORD_ENV: &str = "GOV_CONTROL_PLANE_PASSWORD";

/// The event type of each tenant's figures.
pub const TENANT_EVENT: &str = "tenant-usage-report";

/// How many PDFs are rendered at once (typst is CPU-bound; the machines have two cores).
const RENDER_CONCURRENCY: usize = 2;

/// `usage-reporting`'s own options.
#[derive(Debug, Clone, clap::Args)]
pub struct UsageArgs {
    /// Report only this tenant (its slug or its name). The platform summary is not sent
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,

    /// The period to report: daily (yesterday, UTC), weekly (the last full ISO week, Monday to
    /// Monday UTC) or START/END dates with END exclusive, e.g. 2026-11-23/2026-11-30. daily and
    /// weekly count back from --now [default: job.period of the config]
    #[arg(long, value_name = "PERIOD", value_parser = parse_period_arg)]
    pub period: Option<PeriodArg>,

    /// Write each tenant's PDF and CSV into this directory (created if missing)
    /// [default: job.reports.out_dir, or not written]
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// The job.
pub struct UsageReporting {
    tenant: Option<String>,
    period: PeriodArg,
    out_dir: Option<PathBuf>,
    password: Option<SecretString>,
    roots: Vec<CertificateDer<'static>>,
    prometheus: Option<Prometheus>,
    metrics: ReportMetrics,
}

fn invalid(file: &str, problems: &[(String, String)]) -> anyhow::Error {
    anyhow::anyhow!(
        "invalid config\n{}",
        problems
            .iter()
            .map(|(field, message)| format!("{file}: {field}: {message}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

impl Job for UsageReporting {
    const NAME: &'static str = "usage-reporting";
    const ABOUT: &'static str = "Per-tenant usage and quota reports: one computation, a PDF and an email per tenant.\n\n\
        For every active tenant of the control-plane PostgreSQL database it reads API usage from \
        Prometheus (calls, failed calls, error rate, bandwidth, latency average and P50/P95/P99 \
        with the histogram bucket each falls in), Kafka Connect connectors of its department \
        (<department>.<name>) with their tasks' states, and compares them with its quotas \
        (platform defaults or its own), with a forecast of when each will be hit. Each tenant's \
        figures feed, unchanged, its PDF (weekly and explicit periods; daily with \
        job.reports.daily_pdf), its email (HTML + text, the PDF and a CSV attached), a \
        tenant-usage-report event, the result event's findings (quota_exceeded critical, \
        quota_near warning) and the pushed metrics.\n\n\
        Read-only. --execute sends the emails: each tenant's report to its contacts (weekly and \
        explicit periods always; daily runs only when a quota is near or exceeded, or with \
        job.reports.daily_email) and the platform summary to notify.email_to. A dry run builds \
        everything the same way, writes the PDFs and CSVs to --out-dir when given, publishes its \
        events marked dry_run, and lists the emails it would send instead of sending them.\n\n\
        Exit codes: 0 success, 1 a source, a render, an event or an email failed (the other \
        tenants are still reported) or results not published, 2 refused before any side effect \
        (bad config, unreadable password or CA file, --tenant naming no tenant).";
    type Args = UsageArgs;
    type Config = UsageConfig;

    fn prepare(
        args: UsageArgs,
        common: &CommonArgs,
        config: &JobConfig<UsageConfig>,
    ) -> anyhow::Result<Self> {
        let file = common.config.display().to_string();
        let job = &config.job;
        let problems = job.validate();
        if !problems.is_empty() {
            return Err(invalid(&file, &problems));
        }
        if common.execute && config.notify.smtp.is_none() {
            bail!(
                "{file}: notify.smtp: --execute sends the reports by email, but no SMTP server is \
                 configured (a dry run needs none)"
            );
        }
        let pg = &job.postgres;
        let password = match &pg.password_file {
            Some(p) => {
                let path = relative_to(&common.config, p);
                Some(
                    read_secret_file(&path)
                        .map_err(|e| anyhow::anyhow!("{file}: job.postgres.password_file: {e}"))?,
                )
            }
            None => std::env::var(PASSWORD_ENV)
                .ok()
                .map(|v| SecretString::from(v.trim_end_matches(['\n', '\r']).to_string())),
        };
        let roots = match &pg.ca_file {
            Some(p) => {
                let path = relative_to(&common.config, p);
                let pem = std::fs::read(&path).with_context(|| {
                    format!(
                        "{file}: job.postgres.ca_file: cannot read {}",
                        path.display()
                    )
                })?;
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<_, _>>()
                    .map_err(|e| {
                        anyhow::anyhow!("{file}: job.postgres.ca_file: {}: {e}", path.display())
                    })?;
                if certs.is_empty() {
                    bail!(
                        "{file}: job.postgres.ca_file: {} holds no PEM certificate",
                        path.display()
                    );
                }
                certs
            }
            None => Vec::new(),
        };
        let prometheus = job
            .prometheus
            .as_ref()
            .map(|p| Prometheus::new(p.url.as_str(), p.timeout.0))
            .transpose()
            .map_err(|e| anyhow::anyhow!("{file}: job.prometheus: {e}"))?;
        let out_dir = args.out_dir.or_else(|| {
            job.reports
                .out_dir
                .as_ref()
                .map(|d| relative_to(&common.config, d))
        });
        if let Some(dir) = &out_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("--out-dir: cannot create {}", dir.display()))?;
        }
        Ok(UsageReporting {
            tenant: args.tenant,
            period: args.period.unwrap_or(PeriodArg::Relative(job.period)),
            out_dir,
            password,
            roots,
            prometheus,
            metrics: ReportMetrics::default(),
        })
    }

    fn register_metrics(&mut self, metrics: &mut Metrics) {
        self.metrics.register(metrics);
    }

    async fn run(&self, ctx: &RunContext<'_, UsageConfig>) -> Result<Report, JobError> {
        let job = &ctx.config.job;
        let period = Period::resolve(&self.period, ctx.clock.now());
        tracing::info!(%period, kind = period.kind.as_str(), "reporting period");
        let mut errors = Vec::new();

        // The control plane says who the tenants are: without it there is nothing to report.
        let server = controlplane::server_name(&job.postgres);
        let control_plane = async {
            let client =
                controlplane::connect(&job.postgres, self.password.as_ref(), &self.roots).await?;
            controlplane::load(&client, &server, self.tenant.as_deref()).await
        }
        .await;
        self.metrics.source("postgres", control_plane.is_ok());
        let control_plane = control_plane.map_err(|e| JobError::Failed(e.into()))?;
        if let Some(name) = &self.tenant
            && control_plane.tenants.is_empty()
        {
            return Err(JobError::Abort {
                reason: format!("--tenant {name:?}: no active tenant has that slug or name"),
                report: Report::default(),
            });
        }

        // The other sources, at once; each may fail on its own.
        let owners = control_plane.application_owners();
        let api = async {
            match (&job.prometheus, &self.prometheus) {
                (Some(source), Some(prom)) => Some(
                    prometheus::collect(prom, source, &period, &owners)
                        .await
                        .map_err(|e| e.to_string()),
                ),
                _ => None,
            }
        };
        let connectors = async {
            match &job.kafka_connect {
                Some(c) => Some(
                    connect::list(c.url.as_str(), c.timeout.0)
                        .await
                        .map_err(|e| e.to_string()),
                ),
                None => None,
            }
        };
        let resources = async {
            match &job.inventory {
                Some(source) => Some(
                    crate::resources::collect(source, ctx.config)
                        .await
                        .map_err(|e| e.to_string()),
                ),
                None => None,
            }
        };
        let (api, connectors, resources) = tokio::join!(api, connectors, resources);
        let departments: Vec<&str> = control_plane
            .tenants
            .iter()
            .map(|t| t.department.as_str())
            .collect();
        let mut platform = Platform::default();
        let connect: Option<Result<BTreeMap<String, Health>, String>> = connectors.map(|r| {
            r.map(|list| {
                let (by, unassigned) = connect::by_department(list, &departments);
                platform.unassigned_connectors = unassigned.into_iter().map(|c| c.name).collect();
                by
            })
        });
        if let Some(Ok(u)) = &api {
            platform.unattributed_calls = u.unattributed.clone();
        }
        for (source, state) in [
            ("prometheus", api.as_ref().map(|r| r.as_ref().map(drop))),
            (
                "kafka_connect",
                connect.as_ref().map(|r| r.as_ref().map(drop)),
            ),
        ] {
            if let Some(r) = state {
                self.metrics.source(source, r.is_ok());
                if let Err(e) = r {
                    errors.push(e.clone());
                }
            }
        }
        // A kind not listed somewhere is down too, for `usage_report_source_up`: the run is
        // partial because of it, and its dimension is missing from every report.
        let mut inventory_complete = true;
        let resources: Option<Result<ResourceUsage, String>> = resources.map(|r| {
            r.map(|(usage, listing_errors)| {
                inventory_complete = listing_errors.is_empty();
                errors.extend(listing_errors);
                usage
            })
        });
        if let Some(r) = &resources {
            self.metrics
                .source("inventory", r.is_ok() && inventory_complete);
            if let Err(e) = r {
                errors.push(e.clone());
            }
        }

        let inputs = Inputs {
            period: &period,
            evaluated_at: ctx.clock.now(),
            near_ratio: job.quotas.near_ratio,
            control_plane: &control_plane,
            api: api.as_ref().map(|r| r.as_ref().map_err(Clone::clone)),
            resources: resources.as_ref().map(|r| r.as_ref().map_err(Clone::clone)),
            connect: connect.as_ref().map(|r| r.as_ref().map_err(Clone::clone)),
        };
        let reports: Vec<TenantReport> = control_plane
            .tenants
            .iter()
            .map(|t| report::build(t, &inputs))
            .collect();
        let mut findings: Vec<Finding> = Vec::new();
        for (r, t) in reports.iter().zip(&control_plane.tenants) {
            findings.extend(r.findings(&t.invalid_contacts));
        }

        let with_pdf = period.kind != PeriodKind::Daily || job.reports.daily_pdf;
        let delivered = self
            .deliver(
                ctx,
                &reports,
                &control_plane,
                &platform,
                with_pdf,
                &period,
                &mut errors,
            )
            .await;

        let window = format!("{}d", period.days());
        self.metrics.record(&reports, &window);

        let mut report = Report {
            total_checked: reports.len() as u64,
            findings,
            errors,
            ..Report::default()
        };
        report.alerts_sent = delivered.alerts;
        report.details.insert(
            "period".into(),
            json!({"kind": period.kind.as_str(), "start": period.start, "end": period.end,
                   "label": period.to_string()}),
        );
        report.details.insert(
            "tenants".into(),
            Value::Array(
                reports
                    .iter()
                    .map(|r| tenant_summary(r, delivered.emails.get(&r.tenant.slug)))
                    .collect(),
            ),
        );
        report
            .details
            .insert("files".into(), json!(delivered.files));
        report.details.insert(
            "platform".into(),
            serde_json::to_value(&platform).unwrap_or(Value::Null),
        );
        if let Some(s) = delivered.summary {
            report.details.insert("platform_summary".into(), s);
        }
        let pdfs = &delivered.pdf_seconds;
        report.details.insert(
            "pdf_render".into(),
            json!({"count": pdfs.len(), "total_seconds": pdfs.iter().sum::<f64>(),
                   "max_seconds": pdfs.iter().copied().fold(0.0, f64::max)}),
        );
        Ok(report)
    }

    fn render_table(&self, event: &ResultEvent) -> String {
        let mut rows = vec![
            [
                "TENANT",
                "CALLS",
                "FAILED",
                "ERRORS",
                "P95",
                "WORST QUOTA",
                "EMAIL",
            ]
            .map(String::from)
            .to_vec(),
        ];
        let empty = Vec::new();
        let tenants = event
            .details
            .get("tenants")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        for t in tenants {
            let s = |k: &str| match t.get(k) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => "-".to_string(),
                Some(v) => v.to_string(),
            };
            rows.push(vec![
                s("tenant"),
                s("calls"),
                s("failed"),
                s("error_rate"),
                s("p95"),
                s("worst_quota"),
                s("email"),
            ]);
        }
        let mut out = match event.details.get("period").and_then(|p| p.get("label")) {
            Some(Value::String(l)) => format!("period {l}\n\n"),
            _ => String::new(),
        };
        out.push_str(&render_rows(&rows));
        let findings: Vec<&Finding> = event
            .findings
            .iter()
            .filter(|f| f.severity != Severity::Ok)
            .collect();
        if !findings.is_empty() {
            out.push('\n');
            for f in findings {
                out.push_str(&format!(
                    "{} {}: {}\n",
                    f.severity.as_str(),
                    f.kind,
                    f.message
                ));
            }
        }
        out.push_str(&summary_line(event));
        out
    }
}

/// What delivering the reports did.
#[derive(Default)]
struct Delivered {
    alerts: Vec<AlertSent>,
    /// Per tenant: `sent`, `would send`, `not sent: …`.
    emails: BTreeMap<String, String>,
    files: Vec<String>,
    summary: Option<Value>,
    /// How long each PDF took to render (chart included), for the benchmark's figures.
    pdf_seconds: Vec<f64>,
}

fn tenant_summary(r: &TenantReport, email: Option<&String>) -> Value {
    let worst = r
        .breaches()
        .first()
        .map(|q| format!("{} {} ({})", q.label, q.used_percent(), q.state.as_str()))
        .unwrap_or_else(|| "ok".to_string());
    let pct = |v: f64| format!("{}%", crate::forecast::fmt_num(v * 100.0));
    json!({
        "tenant": r.tenant.slug,
        "name": r.tenant.name,
        "calls": r.api.as_ref().map(|a| a.calls),
        "failed": r.api.as_ref().map(|a| a.failed),
        "error_rate": r.api.as_ref().map(|a| pct(a.error_rate)),
        "p95": r.latency.as_ref().and_then(|l| l.percentiles.get("p95")).map(|q| format!("{:.3} s", q.value)),
        "worst_quota": worst,
        "email": email.cloned().unwrap_or_else(|| "-".to_string()),
    })
}

/// The severity an email about `r` is recorded with: its worst quota state.
fn email_severity(r: &TenantReport) -> Severity {
    match r.breaches().first().map(|q| q.state) {
        Some(QuotaState::Exceeded) => Severity::Critical,
        Some(QuotaState::Near) => Severity::Warning,
        _ => Severity::Info,
    }
}

impl UsageReporting {
    /// Renders, writes, publishes and (with `--execute`) mails every report, in tenant order;
    /// one tenant's failure is an error of the run, never the end of it.
    #[allow(clippy::too_many_arguments)]
    async fn deliver(
        &self,
        ctx: &RunContext<'_, UsageConfig>,
        reports: &[TenantReport],
        control_plane: &ControlPlane,
        platform: &Platform,
        with_pdf: bool,
        period: &Period,
        errors: &mut Vec<String>,
    ) -> Delivered {
        let job = &ctx.config.job;
        let mut out = Delivered::default();
        let mut rendered = futures::stream::iter(reports.iter().cloned())
            .map(|r| {
                tokio::task::spawn_blocking(move || {
                    let pdf = if with_pdf {
                        let started = std::time::Instant::now();
                        let svg = if r.daily.is_empty() {
                            None
                        } else {
                            match chart::calls_per_day(&r.daily) {
                                Ok(svg) => Some(svg),
                                Err(e) => return (r, Err(format!("chart: {e}")), None),
                            }
                        };
                        let pdf = pdf::render(&r, svg.as_deref()).map_err(|e| format!("pdf: {e}"));
                        Some(pdf.map(|p| (p, started.elapsed().as_secs_f64())))
                    } else {
                        None
                    };
                    let csv = output::csv(&r).map_err(|e| format!("csv: {e}"));
                    match pdf {
                        Some(Err(e)) => (r, Err(e), None),
                        other => (r, csv, other.and_then(Result::ok)),
                    }
                })
            })
            .buffered(RENDER_CONCURRENCY);
        let mut all_csv: Vec<u8> = Vec::new();
        let mut index = 0usize;
        while let Some(joined) = rendered.next().await {
            let tenant = &control_plane.tenants[index];
            index += 1;
            let (report, csv, pdf) = match joined {
                Ok((report, csv, pdf)) => {
                    let pdf = pdf.map(|(bytes, seconds)| {
                        out.pdf_seconds.push(seconds);
                        bytes
                    });
                    (report, csv, pdf)
                }
                Err(e) => {
                    errors.push(format!(
                        "tenant {}: rendering task failed: {e}",
                        tenant.slug
                    ));
                    continue;
                }
            };
            let slug = report.tenant.slug.clone();
            let csv = match csv {
                Ok(c) => c,
                Err(e) => {
                    let e = Error::Render {
                        what: "report",
                        tenant: slug.clone(),
                        message: e,
                    };
                    tracing::error!(error = %e, "report not rendered");
                    errors.push(e.to_string());
                    out.emails.insert(slug, "not sent: not rendered".into());
                    continue;
                }
            };
            // The combined CSV for the platform summary: one header.
            let skip = if all_csv.is_empty() {
                0
            } else {
                csv.iter().position(|b| *b == b'\n').map_or(0, |p| p + 1)
            };
            all_csv.extend_from_slice(&csv[skip..]);

            let stem = output::file_stem(&report);
            if let Some(dir) = &self.out_dir {
                let mut files = vec![(format!("{stem}.csv"), &csv)];
                if let Some(p) = &pdf {
                    files.push((format!("{stem}.pdf"), p));
                }
                for (name, bytes) in files {
                    let path = dir.join(&name);
                    match std::fs::write(&path, bytes) {
                        Ok(()) => out.files.push(path.display().to_string()),
                        Err(source) => errors.push(
                            Error::Io {
                                action: "write",
                                path,
                                source,
                            }
                            .to_string(),
                        ),
                    }
                }
            }

            if let Err(e) = ctx.emit(TENANT_EVENT, &slug, &report).await {
                errors.push(format!("tenant {slug}: {TENANT_EVENT} event: {e}"));
            }

            let wants_email = period.kind != PeriodKind::Daily
                || job.reports.daily_email
                || !report.breaches().is_empty();
            let status = if !wants_email {
                "not sent: daily run without quota warnings".to_string()
            } else if tenant.contacts.is_empty() {
                "not sent: no contacts".to_string()
            } else if ctx.dry_run {
                format!("would send to {}", join(&tenant.contacts))
            } else {
                let mut attachments = Vec::new();
                if let Some(p) = &pdf {
                    attachments.push(Attachment {
                        filename: format!("{stem}.pdf"),
                        content_type: "application/pdf".into(),
                        data: p.clone(),
                    });
                }
                attachments.push(Attachment {
                    filename: format!("{stem}.csv"),
                    content_type: "text/csv; charset=utf-8".into(),
                    data: csv.clone(),
                });
                ctx.acted();
                let subject = output::subject(&report);
                let result = ctx
                    .notifier
                    .send_email_with(
                        &tenant.contacts,
                        &subject,
                        &output::text(&report, pdf.is_some()),
                        Some(&output::html(&report)),
                        &attachments,
                    )
                    .await;
                if let Err(e) = &result {
                    errors.push(format!("tenant {slug}: email: {e}"));
                }
                out.alerts.push(AlertSent {
                    channel: "email".into(),
                    target: join(&tenant.contacts),
                    subject,
                    severity: email_severity(&report),
                    sent_at: ctx.clock.now(),
                    delivered: result.is_ok(),
                    error: result.as_ref().err().map(ToString::to_string),
                });
                match result {
                    Ok(()) => "sent".to_string(),
                    Err(_) => "failed".to_string(),
                }
            };
            out.emails.insert(slug, status);
        }

        // The platform summary: full runs only (a --tenant re-render is not news for the team).
        if self.tenant.is_none() {
            let to = &ctx.config.notify.email_to;
            let (subject, text) = output::platform_summary(reports, platform, &period.to_string());
            let status = if to.is_empty() {
                "not sent: notify.email_to is empty".to_string()
            } else if ctx.dry_run {
                format!("would send to {}", join(to))
            } else {
                ctx.acted();
                let attachment = Attachment {
                    filename: format!("usage-summary-{}.csv", period.slug()),
                    content_type: "text/csv; charset=utf-8".into(),
                    data: all_csv,
                };
                let result = ctx
                    .notifier
                    .send_email_with(to, &subject, &text, None, &[attachment])
                    .await;
                if let Err(e) = &result {
                    errors.push(format!("platform summary: email: {e}"));
                }
                out.alerts.push(AlertSent {
                    channel: "email".into(),
                    target: join(to),
                    subject: subject.clone(),
                    severity: Severity::Info,
                    sent_at: ctx.clock.now(),
                    delivered: result.is_ok(),
                    error: result.as_ref().err().map(ToString::to_string),
                });
                if result.is_ok() { "sent" } else { "failed" }.to_string()
            };
            out.summary = Some(json!({"subject": subject, "email": status}));
        }
        out
    }
}

fn join(to: &[Email]) -> String {
    to.iter().map(Email::as_str).collect::<Vec<_>>().join(",")
}
