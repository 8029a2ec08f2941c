//! The one function every job binary runs through.
//!
//! Order matters and is the point of this module:
//! 1. parse the command line (clap; a usage error exits 2);
//! 2. load and validate the config and let the job prepare (read its whitelist, …) — any error
//!    here exits 2 **before any side effect**;
//! 3. build the sinks; a mode that needs a durable audit (Kafka) and has none, or whose brokers
//!    refuse us (credentials, TLS), exits 2;
//! 4. run the job body with a [`RunContext`];
//! 5. *always* publish the result event and push metrics — in dry-run too, marked as such;
//! 6. exit 0 (success), 1 (partial/failure, or results could not be published) or 2 (aborted).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, FromArgMatches};
use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Error;
use crate::clock::{Clock, FixedClock, SystemClock};
use crate::config::{JobConfig, load_job_config};
use crate::event::{
    AlertSent, Envelope, Finding, ResultEvent, SCHEMA_VERSION, Severity, Status, Summary,
};
use crate::kafka::{Delivery, Publisher};
use crate::logging::{self, LogFormat};
use crate::metrics::{Metrics, Pusher};
use crate::notify::Notifier;

/// Exit code: the run succeeded (a dry run included).
pub const EXIT_OK: u8 = 0;
/// Exit code: the run finished with failures, or its results could not be published.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: fatal before any side effect (bad config, missing required sink, safety cap).
pub const EXIT_FATAL: u8 = 2;

/// How the report on stdout is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A table for people (default on a terminal).
    Table,
    /// The run's result event as one JSON document (default otherwise).
    Json,
}

/// The options every job accepts.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// The job's YAML config file
    #[arg(long, short = 'c', env = "GOV_CONFIG", value_name = "FILE")]
    pub config: PathBuf,

    /// Act on what the run finds. Without this flag the run is a dry run: it takes the same path,
    /// prints the plan, publishes its event marked dry_run, and changes nothing
    #[arg(long)]
    pub execute: bool,

    /// Evaluate the rules as of this instant instead of the current time (what-if), e.g.
    /// 2026-12-01T00:00:00Z
    #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
    pub now: Option<Timestamp>,

    /// Report format on stdout [default: table on a terminal, json otherwise]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,

    /// Log format on stderr
    #[arg(long, value_enum, default_value_t = LogFormat::Auto, value_name = "FORMAT")]
    pub log_format: LogFormat,
}

fn parse_timestamp(s: &str) -> Result<Timestamp, String> {
    s.parse::<Timestamp>()
        .map_err(|e| format!("expected an RFC 3339 instant such as 2026-12-01T00:00:00Z: {e}"))
}

/// What a job body hands back.
#[derive(Debug, Default)]
pub struct Report {
    /// Items examined.
    pub total_checked: u64,
    /// Findings, in the order the job wants them reported.
    pub findings: Vec<Finding>,
    /// Notifications sent.
    pub alerts_sent: Vec<AlertSent>,
    /// Item-level failures; non-empty makes the run `partial` unless [`Report::status`] says more.
    pub errors: Vec<String>,
    /// Run-level job-specific data for the event's `details`.
    pub details: Map<String, Value>,
    /// Overrides the status derived from `errors`.
    pub status: Option<Status>,
}

/// Why a job body stopped early.
#[derive(Debug)]
pub enum JobError {
    /// A safety rule refused the run before it acted (cap exceeded, audit sink down, lease held):
    /// status `failure`, exit 2, the event carries the reason.
    Abort {
        /// One line saying why.
        reason: String,
        /// What was found before stopping (for the event).
        report: Report,
    },
    /// The job could not do its work: status `failure`, exit 1.
    Failed(anyhow::Error),
}

/// Everything a job body may use. Domain code takes the time from `clock`, never from the system.
pub struct RunContext<'a, C> {
    /// The job's name.
    pub job_name: &'static str,
    /// Unique id of this run.
    pub run_id: String,
    /// True unless `--execute` was given.
    pub dry_run: bool,
    /// "Now" for the rules.
    pub clock: &'a dyn Clock,
    /// The validated config.
    pub config: &'a JobConfig<C>,
    /// Events.
    pub publisher: &'a Publisher,
    /// Notifications.
    pub notifier: &'a Notifier,
}

impl<C> RunContext<'_, C> {
    /// Publishes a non-result event (in an [`Envelope`]) and waits for its acknowledgement.
    pub async fn emit<T: Serialize>(
        &self,
        event_type: &str,
        key: &str,
        data: T,
    ) -> Result<Delivery, Error> {
        let envelope = Envelope {
            event_type: event_type.to_string(),
            schema_version: SCHEMA_VERSION.to_string(),
            job_name: self.job_name.to_string(),
            run_id: self.run_id.clone(),
            dry_run: self.dry_run,
            emitted_at: self.clock.now(),
            data,
        };
        self.publisher.publish(event_type, key, &envelope).await
    }
}

/// A CronJob binary's behaviour; the harness does everything around it.
pub trait Job: Sized {
    /// The job's name: the binary, the Kafka key, the metrics' `job_name`.
    const NAME: &'static str;
    /// One paragraph for `--help`.
    const ABOUT: &'static str;
    /// Options of this job beyond [`CommonArgs`].
    type Args: Args;
    /// The job's `job:` config section.
    type Config: DeserializeOwned;

    /// Checks and loads what the run needs, before any side effect; an error exits 2.
    fn prepare(
        args: Self::Args,
        common: &CommonArgs,
        config: &JobConfig<Self::Config>,
    ) -> anyhow::Result<Self>;

    /// Whether this mode needs every event acknowledged by a broker (a write-ahead audit). Asked
    /// right after the config is loaded, so a missing sink is refused before anything else.
    fn needs_durable_audit(_config: &JobConfig<Self::Config>, _dry_run: bool) -> bool {
        false
    }

    /// Registers the job's own metric families.
    fn register_metrics(&mut self, _metrics: &mut Metrics) {}

    /// The job body.
    fn run(
        &self,
        ctx: &RunContext<'_, Self::Config>,
    ) -> impl Future<Output = Result<Report, JobError>>;

    /// The report for people; by default one line per finding.
    fn render_table(&self, event: &ResultEvent) -> String {
        default_table(event)
    }
}

/// Parses the process's arguments and runs `J`; the whole life of a job binary.
pub fn main<J: Job>() -> ExitCode {
    let matches = command::<J>()
        .version(env!("CARGO_PKG_VERSION"))
        .get_matches();
    let parsed = CommonArgs::from_arg_matches(&matches)
        .and_then(|c| Ok((c, J::Args::from_arg_matches(&matches)?)));
    let (common, job_args) = match parsed {
        Ok(p) => p,
        Err(e) => e.exit(),
    };
    logging::init(common.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fatal(&format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(run::<J>(common, job_args))
}

/// The command line of `J`: its own options, then the common ones. The about text is set last
/// because deriving `Args` sets it from each struct's doc comment.
fn command<J: Job>() -> clap::Command {
    let short = J::ABOUT.lines().next().unwrap_or(J::NAME);
    CommonArgs::augment_args(J::Args::augment_args(clap::Command::new(J::NAME)))
        .about(short)
        .long_about(J::ABOUT)
}

fn fatal(message: &str) -> ExitCode {
    tracing::error!(reason = message, "run refused before any side effect");
    eprintln!("error: {message}");
    ExitCode::from(EXIT_FATAL)
}

/// Runs `J` with already-parsed arguments (what [`main`] does after parsing).
pub async fn run<J: Job>(common: CommonArgs, job_args: J::Args) -> ExitCode {
    let started_at = Timestamp::now();
    let started = Instant::now();
    let dry_run = !common.execute;

    // Everything up to the job body is validation: no side effect happens before it succeeds.
    let config: JobConfig<J::Config> = match load_job_config(&common.config) {
        Ok(c) => c,
        Err(e) => return fatal(&format!("invalid config\n{e}")),
    };
    let publisher = match Publisher::for_run(&config.kafka) {
        Ok(p) => p,
        Err(e) => return fatal(&e.to_string()),
    };
    if J::needs_durable_audit(&config, dry_run) {
        if !publisher.is_durable() {
            return fatal(&format!(
                "--execute needs a durable audit sink, but events go to {}: configure kafka.brokers (or GOV_KAFKA_BROKERS)",
                publisher.describe()
            ));
        }
        // Brokers that refuse our credentials or certificate must refuse the run here, before
        // anything happens, not at its first audit record.
        if let Err(e) = publisher.probe().await {
            return fatal(&format!("--execute refused: audit sink unavailable: {e}"));
        }
    }
    let pusher = match config.pushgateway.as_ref().map(Pusher::from_config) {
        Some(Err(e)) => return fatal(&e.to_string()),
        Some(Ok(p)) => Some(p),
        None => None,
    };
    let mut job = match J::prepare(job_args, &common, &config) {
        Ok(j) => j,
        Err(e) => return fatal(&format!("{e:#}")),
    };
    let notifier = match Notifier::from_config(&config.notify, J::NAME) {
        Ok(n) => n,
        Err(e) => return fatal(&e.to_string()),
    };
    let mut metrics = Metrics::new(J::NAME);
    job.register_metrics(&mut metrics);

    let system_clock = SystemClock;
    let fixed_clock;
    let clock: &dyn Clock = match common.now {
        Some(t) => {
            fixed_clock = FixedClock(t);
            &fixed_clock
        }
        None => &system_clock,
    };
    let run_id = uuid::Uuid::now_v7().to_string();
    tracing::info!(job = J::NAME, %run_id, dry_run, evaluated_at = %clock.now(), events = %publisher.describe(), "run started");
    if config.pushgateway.is_none() {
        tracing::info!("pushgateway not configured: metrics will not be pushed");
    }

    let ctx = RunContext {
        job_name: J::NAME,
        run_id: run_id.clone(),
        dry_run,
        clock,
        config: &config,
        publisher: &publisher,
        notifier: &notifier,
    };
    let (report, status, aborted) = match job.run(&ctx).await {
        Ok(report) => {
            let derived = if report.errors.is_empty() {
                Status::Success
            } else {
                Status::Partial
            };
            let status = report.status.unwrap_or(derived);
            (report, status, false)
        }
        Err(JobError::Abort { reason, mut report }) => {
            tracing::error!(%reason, "run aborted");
            report.errors.insert(0, format!("aborted: {reason}"));
            (report, Status::Failure, true)
        }
        Err(JobError::Failed(e)) => {
            tracing::error!(error = %format!("{e:#}"), "run failed");
            let report = Report {
                errors: vec![format!("{e:#}")],
                ..Report::default()
            };
            (report, Status::Failure, false)
        }
    };

    let completed_at = Timestamp::now();
    let elapsed = started.elapsed();
    let event = ResultEvent {
        schema_version: SCHEMA_VERSION.to_string(),
        job_name: J::NAME.to_string(),
        run_id,
        started_at,
        completed_at,
        duration_seconds: elapsed.as_secs_f64(),
        status,
        dry_run,
        evaluated_at: clock.now(),
        summary: Summary::from_findings(report.total_checked, &report.findings),
        findings: report.findings,
        alerts_sent: report.alerts_sent,
        errors: report.errors,
        details: report.details,
    };

    let output = common.output.unwrap_or(if std::io::stdout().is_terminal() {
        OutputFormat::Table
    } else {
        OutputFormat::Json
    });
    match output {
        OutputFormat::Table => print!("{}", job.render_table(&event)),
        OutputFormat::Json => match serde_json::to_string_pretty(&event) {
            Ok(json) => println!("{json}"),
            Err(e) => tracing::error!(error = %e, "cannot print the result event"),
        },
    }

    let mut publish_failed = false;
    match publisher.publish_result(&event).await {
        Ok(d) => tracing::info!(topic = %d.topic, "result event published"),
        Err(e) => {
            tracing::error!(error = %e, "result event not published");
            publish_failed = true;
        }
    }
    let severities = [
        Severity::Critical,
        Severity::Warning,
        Severity::Info,
        Severity::Ok,
    ];
    let counts: Vec<(Severity, u64)> = severities
        .iter()
        .map(|s| {
            (
                *s,
                event.findings.iter().filter(|f| f.severity == *s).count() as u64,
            )
        })
        .collect();
    metrics.record_run(status, elapsed, completed_at, &counts);
    if let Some(pusher) = &pusher {
        match metrics.push(pusher, dry_run).await {
            Ok(()) => tracing::info!(url = pusher.url(), "metrics pushed"),
            Err(e) => {
                tracing::error!(error = %e, "metrics not pushed");
                publish_failed = true;
            }
        }
    }
    publisher.flush();
    tracing::info!(
        status = status.as_str(),
        findings = event.findings.len(),
        "run finished"
    );

    ExitCode::from(if aborted {
        EXIT_FATAL
    } else if status != Status::Success || publish_failed {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

/// One line per finding: severity, type, resource, message.
pub fn default_table(event: &ResultEvent) -> String {
    let mut rows = vec![
        ["SEVERITY", "TYPE", "RESOURCE", "MESSAGE"]
            .map(String::from)
            .to_vec(),
    ];
    for f in &event.findings {
        rows.push(vec![
            f.severity.as_str().to_string(),
            f.kind.clone(),
            f.resource.clone(),
            f.message.clone(),
        ]);
    }
    let mut out = render_rows(&rows);
    out.push_str(&summary_line(event));
    out
}

/// The closing line of every table: mode, status, counts.
pub fn summary_line(event: &ResultEvent) -> String {
    let s = &event.summary;
    let mut line = format!(
        "\n{} run {} ({}): {} checked, {} critical, {} warning, {} info, {} ok\n",
        if event.dry_run { "dry" } else { "executed" },
        event.status.as_str(),
        event.run_id,
        s.total_checked,
        s.critical,
        s.warning,
        s.info,
        s.ok
    );
    for e in &event.errors {
        line.push_str(&format!("error: {e}\n"));
    }
    line
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub fn render_rows(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_aligned() {
        let rows = vec![
            vec!["A".to_string(), "BB".to_string(), "C".to_string()],
            vec!["aaa".to_string(), "b".to_string(), "c c".to_string()],
        ];
        assert_eq!(render_rows(&rows), "A    BB  C\naaa  b   c c\n");
    }
}
