//! The one function every job binary runs through.
//!
//! Order matters and is the point of this module:
//! 1. parse the command line (clap; a usage error exits 2);
//! 2. load and validate the config and let the job prepare (read its whitelist, …) — any error
//!    here exits 2 **before any side effect**;
//! 3. build the sinks; a mode that needs a durable audit (Kafka) and has none, or whose brokers
//!    refuse us (credentials, TLS), exits 2;
//! 4. take the run lock the job asks for ([`Job::run_lock`]), renewed in the background on the
//!    system clock until the run ends, then released; held by another run → refused, exit 2;
//! 5. run the job body with a [`RunContext`], which fixes the evaluation instant once (`--now`,
//!    or the start of the run) so every rule and the event's `evaluated_at` agree;
//! 6. *always* publish the result event and push metrics — in dry-run too, marked as such;
//! 7. exit 0 (success), 1 (partial/failure, or results could not be published) or 2 (refused
//!    before any side effect). A job that refuses ([`JobError::Abort`]) *after* it reported a
//!    side effect ([`RunContext::acted`]) ends `partial` with exit 1: it did not refuse, it
//!    stopped half-way.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
use crate::lock::{Renewal, RunLock};
use crate::logging::{self, LogFormat};
use crate::metrics::{Metrics, Pusher};
use crate::notify::Notifier;
use crate::shard::Shard;

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

    /// Run as shard INDEX of COUNT (e.g. 0/3): this run takes every COUNT-th (account, region)
    /// pair of the sorted aws: section from INDEX, and shard 0 also the Kubernetes cluster. In an
    /// Indexed Job the chart sets JOB_COMPLETION_INDEX and GOV_SHARD_COUNT instead. Jobs that do
    /// not split their work refuse it
    #[arg(long, value_name = "INDEX/COUNT")]
    pub shard: Option<String>,
}

impl CommonArgs {
    /// The shard of this run: `--shard`, else the Indexed Job's environment; `None` unsharded.
    pub fn shard(&self) -> Result<Option<Shard>, crate::shard::ShardError> {
        match &self.shard {
            Some(s) => Shard::parse(s),
            None => Shard::from_env(|k| std::env::var(k).ok()),
        }
    }
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
    /// A safety rule refused the run before it acted (cap exceeded, audit sink down): status
    /// `failure`, exit 2, the event carries the reason. Returned after [`RunContext::acted`] it
    /// becomes a `partial` run with exit 1 instead (the run did act).
    Abort {
        /// One line saying why.
        reason: String,
        /// What was found before stopping (for the event).
        report: Report,
    },
    /// The job could not do its work: status `failure`, exit 1.
    Failed(anyhow::Error),
}

/// The run lock a job needs: a `coordination.k8s.io/v1` Lease in the cluster of the config's
/// `kubernetes:` section, held by the run id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockSpec {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// How long a claim lasts without renewal: a run that dies frees the lock after this. The
    /// harness renews every third of it.
    pub duration: Duration,
}

/// A side effect was attempted while the run lock was not (or no longer) held.
#[derive(Debug, Clone, thiserror::Error)]
#[error("run lock {lease} is no longer held (valid until {valid_until}): stopping")]
pub struct LockLost {
    /// `namespace/name` of the Lease.
    pub lease: String,
    /// When the last successful renewal's claim ran out.
    pub valid_until: Timestamp,
}

/// Everything a job body may use. Domain code takes the time from `clock`, never from the system.
pub struct RunContext<'a, C> {
    /// The job's name.
    pub job_name: &'static str,
    /// Unique id of this run.
    pub run_id: String,
    /// True unless `--execute` was given.
    pub dry_run: bool,
    /// "Now" for the rules: one instant for the whole run (`--now`, or when the run started).
    pub clock: &'a dyn Clock,
    /// The validated config.
    pub config: &'a JobConfig<C>,
    /// Events.
    pub publisher: &'a Publisher,
    /// Notifications.
    pub notifier: &'a Notifier,
    /// The run lock, when the job asked for one ([`Job::run_lock`]).
    pub lock: Option<&'a Renewal>,
    /// This run's shard, when sharded (only for jobs with [`Job::SHARDS`]).
    pub shard: Option<Shard>,
    /// Set by [`RunContext::acted`].
    acted: AtomicBool,
}

impl<'a, C> RunContext<'a, C> {
    /// A context for driving a job body outside [`run`] (tests, tools): no lock.
    pub fn new(
        job_name: &'static str,
        run_id: String,
        dry_run: bool,
        clock: &'a dyn Clock,
        config: &'a JobConfig<C>,
        publisher: &'a Publisher,
        notifier: &'a Notifier,
    ) -> Self {
        RunContext {
            job_name,
            run_id,
            dry_run,
            clock,
            config,
            publisher,
            notifier,
            lock: None,
            shard: None,
            acted: AtomicBool::new(false),
        }
    }

    /// Records that the run is about to change something outside itself (a deletion, a tag
    /// write, an email). From then on a failure is `partial` (exit 1), never a refusal (exit 2).
    pub fn acted(&self) {
        self.acted.store(true, Ordering::SeqCst);
    }

    /// Whether [`RunContext::acted`] was called.
    pub fn has_acted(&self) -> bool {
        self.acted.load(Ordering::SeqCst)
    }

    /// `Ok` when the run holds its lock now (or needs none); call it before every side effect
    /// and stop acting on `Err`.
    pub fn check_lock(&self) -> Result<(), LockLost> {
        match self.lock {
            Some(renewal) if !renewal.is_held() => Err(LockLost {
                lease: renewal.lease().to_string(),
                valid_until: renewal.valid_until(),
            }),
            _ => Ok(()),
        }
    }

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
            // When it was emitted, not the evaluation instant (which `--now` may move).
            emitted_at: Timestamp::now(),
            shard: self.shard,
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
    /// Whether the job splits its work by shard (`--shard`, Indexed Jobs; see [`crate::shard`]).
    /// A job that does not is refused a shard count above 1: every pod would do the whole run.
    const SHARDS: bool = false;
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

    /// The run lock this run must hold, if any. The harness takes it before the body runs (held
    /// by another run: refused, exit 2), renews it in the background on the system clock, and
    /// releases it at the end; the body checks [`RunContext::check_lock`] before each side
    /// effect.
    fn run_lock(&self, _config: &JobConfig<Self::Config>, _dry_run: bool) -> Option<LockSpec> {
        None
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
    let shard = match common.shard() {
        Ok(Some(_)) if !J::SHARDS => {
            return fatal(&format!(
                "{} does not split its work by shard: run it as one pod (no --shard, jobs.{}.sharding.enabled: false)",
                J::NAME,
                J::NAME
            ));
        }
        Ok(s) => s,
        Err(e) => return fatal(&e.to_string()),
    };
    let config: JobConfig<J::Config> = match load_job_config(&common.config) {
        Ok(c) => c,
        Err(e) => return fatal(&format!("invalid config\n{e}")),
    };
    let publisher = match Publisher::for_run(&config.kafka) {
        Ok(p) => p,
        Err(e) => return fatal(&e.to_string()),
    };
    if J::needs_durable_audit(&config, dry_run) && !publisher.is_durable() {
        return fatal(&format!(
            "--execute needs a durable audit sink, but events go to {}: configure kafka.brokers (or GOV_KAFKA_BROKERS)",
            publisher.describe()
        ));
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
    // Brokers that refuse our credentials or certificate must refuse the run here, before
    // anything happens, not at its first audit record. After `prepare`: a mistake in the
    // command line or the job's files is reported as such, not as a broker problem.
    if J::needs_durable_audit(&config, dry_run)
        && let Err(e) = publisher.probe().await
    {
        return fatal(&format!("--execute refused: audit sink unavailable: {e}"));
    }
    let notifier = match Notifier::from_config(&config.notify, J::NAME) {
        Ok(n) => n,
        Err(e) => return fatal(&e.to_string()),
    };
    let mut metrics = Metrics::new(J::NAME);
    metrics.set_shard(shard);
    job.register_metrics(&mut metrics);

    // One instant for every rule of the run, and for the event's `evaluated_at`.
    let clock = FixedClock(common.now.unwrap_or(started_at));
    let run_id = uuid::Uuid::now_v7().to_string();
    let shard_text = shard
        .map(|s| s.to_string())
        .unwrap_or_else(|| "none".into());
    tracing::info!(job = J::NAME, %run_id, dry_run, evaluated_at = %clock.now(), events = %publisher.describe(), shard = %shard_text, "run started");
    if config.pushgateway.is_none() {
        tracing::info!("pushgateway not configured: metrics will not be pushed");
    }

    let lock = match job.run_lock(&config, dry_run) {
        None => Ok(None),
        Some(mut spec) => {
            // One lock per shard: shards run in parallel, two runs of one shard never do.
            if let Some(s) = shard {
                spec.name = format!("{}-shard-{}", spec.name, s.index);
            }
            take_lock(&config, &spec, &run_id).await.map(Some)
        }
    };
    let (report, status, aborted) = match &lock {
        Err(reason) => {
            tracing::error!(%reason, "run refused");
            let report = Report {
                errors: vec![format!("aborted: {reason}")],
                ..Report::default()
            };
            (report, Status::Failure, true)
        }
        Ok(renewal) => {
            let mut ctx = RunContext::new(
                J::NAME,
                run_id.clone(),
                dry_run,
                &clock,
                &config,
                &publisher,
                &notifier,
            );
            ctx.lock = renewal.as_ref();
            ctx.shard = shard;
            let result = job.run(&ctx).await;
            settle(result, ctx.has_acted())
        }
    };
    if let Ok(Some(renewal)) = lock {
        release_lock(renewal).await;
    }

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
        shard,
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

/// The status, the report and whether the run was refused, from what the job body returned.
fn settle(result: Result<Report, JobError>, acted: bool) -> (Report, Status, bool) {
    match result {
        Ok(report) => {
            let derived = if report.errors.is_empty() {
                Status::Success
            } else {
                Status::Partial
            };
            let status = report.status.unwrap_or(derived);
            (report, status, false)
        }
        Err(JobError::Abort { reason, mut report }) if acted => {
            // It acted before it stopped: not a refusal, a run that stopped half-way.
            tracing::error!(%reason, "run stopped after it had acted");
            report.errors.insert(0, format!("stopped: {reason}"));
            (report, Status::Partial, false)
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
    }
}

/// Takes the run lock on the system clock (never the `--now` instant: the Lease is about the
/// time other runs see) and starts renewing it; the reason it could not, for the event.
async fn take_lock(
    config: &JobConfig<impl Sized>,
    spec: &LockSpec,
    run_id: &str,
) -> Result<Renewal, String> {
    let lease = format!("{}/{}", spec.namespace, spec.name);
    let client = crate::clients::kube_client(&config.kubernetes)
        .await
        .map_err(|e| format!("cannot reach kubernetes for the run lock {lease}: {e}"))?;
    let lock = RunLock::acquire(
        client,
        &spec.namespace,
        &spec.name,
        run_id,
        spec.duration,
        Timestamp::now(),
    )
    .await
    .map_err(|e| format!("run lock: {e}"))?;
    tracing::info!(lease = %lease, valid_until = %lock.valid_until(), "run lock taken");
    Ok(lock.spawn_renewal(Arc::new(SystemClock)))
}

/// Stops renewing and frees the Lease for the next run (a failure only delays it: the Lease
/// expires by itself).
async fn release_lock(renewal: Renewal) {
    let lease = renewal.lease().to_string();
    match renewal.stop().await {
        Ok(lock) => match lock.release().await {
            Ok(()) => tracing::info!(%lease, "run lock released"),
            Err(e) => tracing::warn!(error = %e, "run lock not released (it expires by itself)"),
        },
        Err(e) => tracing::warn!(error = %e, "run lock was lost during the run"),
    }
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
