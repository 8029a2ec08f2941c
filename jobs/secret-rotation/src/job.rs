//! The `Job` impl: prepare (config, credentials: fail closed), collect and classify, plan, then
//! in `--execute` runs rotate, retire and notify; findings, events, metrics and the table.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, bail};
use common::config::{JobConfig, read_secret_file, relative_to};
use common::event::{Finding, ResultEvent, Severity};
use common::harness::{
    CommonArgs, Job, JobError, LockSpec, Report, RunContext, render_rows, summary_line,
};
use common::metrics::{Labels, Metrics};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use secrecy::SecretString;
use serde_json::json;

use crate::config::{CredentialSource, RotationConfig, TargetRef};
use crate::inventory::{self, Item};
use crate::journal::Step;
use crate::kube::{Kube, Workload};
use crate::locate::config_errors;
use crate::plan::{self, Action, Mode, Planned};
use crate::policy::Phase;
use crate::rotate::{self, Env, Outcome, Result_};
use crate::targets::{self, Target};
use crate::vault::Vault;

fn parse_step(s: &str) -> Result<Step, String> {
    Step::parse(s)
        .filter(|s| Step::ROTATION.contains(s))
        .ok_or_else(|| format!("not a rotation step: {s}"))
}

/// `secret-rotation`'s own options.
#[derive(Debug, Clone, clap::Args)]
pub struct RotationArgs {
    /// The monthly forced run: also rotate every automatic secret that would become due before
    /// the next forced run (job.forced_horizon, default 31d). Manual types are never rotated
    #[arg(long)]
    pub forced: bool,

    /// Classify the secrets of an offline file (JSON lines: name, type, owner, vault,
    /// created_time, custom_metadata) instead of reading Vault; dry run only
    #[arg(long, value_name = "FILE")]
    pub offline: Option<PathBuf>,

    /// Test hook: stop after this rotation step and wait to be killed (kill-and-resume tests)
    #[arg(long, hide = true, value_name = "STEP", value_parser = parse_step)]
    pub pause_after: Option<Step>,
}

/// The admin credentials of the configured servers, read before the run.
#[derive(Default)]
struct Credentials {
    postgres: BTreeMap<String, SecretString>,
    keycloak: BTreeMap<String, SecretString>,
    issuers: BTreeMap<String, SecretString>,
}

type GaugeF = Family<Labels, Gauge<f64, AtomicU64>>;

/// The job.
pub struct SecretRotation {
    args: RotationArgs,
    /// The Vault client (`None` offline or without a `job.vault` section).
    vault: Option<Vault>,
    credentials: Credentials,
    /// The `--offline` snapshot, taken (not copied) by the one run of the process.
    offline: std::sync::Mutex<Option<Vec<Item>>>,
    /// Whether the run classifies an offline snapshot.
    is_offline: bool,
    /// How long reading the offline file took (for the bench's figure).
    offline_load_seconds: f64,
    age: GaugeF,
    due: GaugeF,
    last_success: GaugeF,
    failures: Family<Labels, Gauge>,
    rotations: Family<Labels, Gauge>,
}

fn read_credential(
    config_file: &std::path::Path,
    text: Option<&str>,
    field: &str,
    c: &CredentialSource,
) -> anyhow::Result<SecretString> {
    let located = |message: String| {
        let errors = config_errors(config_file, text, &[(field.to_string(), message)]);
        anyhow::anyhow!("{}", common::Error::Config(errors))
    };
    match (&c.file, &c.env) {
        (Some(f), _) => {
            let path = relative_to(config_file, f);
            read_secret_file(&path).map_err(|e| located(e.to_string()))
        }
        (None, Some(name)) => std::env::var(name)
            .map(|v| SecretString::from(v.trim_end_matches(['\n', '\r']).to_string()))
            .map_err(|_| located(format!("the environment variable {name} is not set"))),
        (None, None) => Err(located("set file or env".into())),
    }
}

impl Job for SecretRotation {
    const NAME: &'static str = "secret-rotation";
    const ABOUT: &'static str = "Rotate secrets before they get old, and prove every consumer runs on the new value.\n\n\
        Each managed secret (declared in job.secrets, or in Vault metadata under job.discover) has a \
        type whose policy says how old it may get: api-key 30d, oauth-client-secret 90d, \
        database-password 90d, service-account 180d, encryption-key 365d (manual: never rotated by \
        the job, only noticed). Its Vault KV v2 path is the source of truth. A due secret is rotated \
        in steps, each journaled in the secret's Vault custom_metadata before it runs, so a run that \
        dies is resumed by the next with the same rotation id and the same value: journal, create \
        (a new value from the OS RNG, kept pending at a create-only path), set (in PostgreSQL, RDS, \
        Keycloak or an API-key issuer, the old value still valid where the target allows), test (a \
        real login or grant), promote (Vault, check-and-set), propagate (Kubernetes Secrets with \
        resourceVersion; ExternalSecrets are made to sync), restart (the consumers found from pod \
        templates, in waves, verified like kubectl rollout status; a failed rollout rolls everything \
        back), finish. The old credential is retired after job.grace_period by a later run.\n\n\
        Without --execute the run is a dry run: it prints the plan (which secrets are due, which \
        consumers would restart) and changes nothing. --execute needs Kafka (an intent event is \
        acknowledged before a credential changes) and takes the run lock. Owners get one notice per \
        due date. No secret value ever appears in a log, event, error, metric or table.\n\n\
        Exit codes: 0 success, 1 a secret failed (the others were still handled) or results not \
        published, 2 refused before any side effect (bad config, unreadable credentials, Vault sealed \
        or unreachable, no Kafka for --execute, run lock held).";
    type Args = RotationArgs;
    type Config = RotationConfig;

    fn prepare(
        args: RotationArgs,
        common: &CommonArgs,
        config: &JobConfig<RotationConfig>,
    ) -> anyhow::Result<Self> {
        let file = &common.config;
        let text = std::fs::read_to_string(file).ok();
        let job = &config.job;
        let problems = job.validate(&config.aws.regions);
        if !problems.is_empty() {
            bail!(
                "invalid config\n{}",
                common::Error::Config(config_errors(file, text.as_deref(), &problems))
            );
        }
        if args.offline.is_some() && common.execute {
            bail!(
                "--offline classifies a snapshot and changes nothing: it cannot be combined with --execute"
            );
        }
        let load_started = std::time::Instant::now();
        let offline = match &args.offline {
            Some(path) => {
                Some(inventory::load_offline(path).map_err(|e| anyhow::anyhow!("--offline: {e}"))?)
            }
            None => None,
        };
        let offline_load_seconds = load_started.elapsed().as_secs_f64();
        let mut credentials = Credentials::default();
        let mut vault = None;
        if offline.is_none() {
            for (name, s) in &job.targets.postgres {
                let field = format!("job.targets.postgres.{name}.admin_password");
                credentials.postgres.insert(
                    name.clone(),
                    read_credential(file, text.as_deref(), &field, &s.admin_password)?,
                );
            }
            for (name, s) in &job.targets.keycloak {
                let field = format!("job.targets.keycloak.{name}.admin_secret");
                credentials.keycloak.insert(
                    name.clone(),
                    read_credential(file, text.as_deref(), &field, &s.admin_secret)?,
                );
            }
            for (name, s) in &job.targets.api_key_issuers {
                let field = format!("job.targets.api_key_issuers.{name}.admin_token");
                credentials.issuers.insert(
                    name.clone(),
                    read_credential(file, text.as_deref(), &field, &s.admin_token)?,
                );
            }
            if let Some(v) = &job.vault {
                let source = CredentialSource {
                    file: v.token_file.clone(),
                    env: Some(v.token_env.clone().unwrap_or_else(|| "VAULT_TOKEN".into())),
                };
                let source = if source.file.is_some() {
                    CredentialSource {
                        env: None,
                        ..source
                    }
                } else {
                    source
                };
                let field = if v.token_file.is_some() {
                    "job.vault.token_file"
                } else {
                    "job.vault"
                };
                let token = read_credential(file, text.as_deref(), field, &source)?;
                let ca = match &v.ca_file {
                    Some(ca) => {
                        let path = relative_to(file, ca);
                        Some(std::fs::read(&path).with_context(|| {
                            format!(
                                "{}: job.vault.ca_file: cannot read {}",
                                file.display(),
                                path.display()
                            )
                        })?)
                    }
                    None => None,
                };
                vault = Some(
                    Vault::new(v.address.as_str(), token, ca.as_deref(), v.timeout.0)
                        .map_err(|e| anyhow::anyhow!("{}: job.vault: {e}", file.display()))?,
                );
            }
        }
        Ok(SecretRotation {
            args,
            vault,
            credentials,
            is_offline: offline.is_some(),
            offline: std::sync::Mutex::new(offline),
            offline_load_seconds,
            age: Family::default(),
            due: Family::default(),
            last_success: Family::default(),
            failures: Family::default(),
            rotations: Family::default(),
        })
    }

    fn needs_durable_audit(_config: &JobConfig<RotationConfig>, dry_run: bool) -> bool {
        !dry_run
    }

    /// `--execute` runs hold the Lease `job.lock`: one rotating run at a time.
    fn run_lock(&self, config: &JobConfig<RotationConfig>, dry_run: bool) -> Option<LockSpec> {
        let lock = &config.job.lock;
        (!dry_run).then(|| LockSpec {
            namespace: lock.namespace.clone(),
            name: lock.name.clone(),
            duration: lock.duration.0,
        })
    }

    fn register_metrics(&mut self, metrics: &mut Metrics) {
        let r = metrics.registry_mut();
        r.register(
            "secret_age_seconds",
            "Age of a managed secret (since its last rotation or creation)",
            self.age.clone(),
        );
        r.register(
            "secret_rotation_due_timestamp_seconds",
            "Unix time a managed secret is due for rotation",
            self.due.clone(),
        );
        r.register(
            "secret_rotation_last_success_timestamp_seconds",
            "Unix time of a managed secret's last finished rotation",
            self.last_success.clone(),
        );
        r.register(
            "secret_rotation_failures",
            "Rotations of this run that failed, by the step they failed at",
            self.failures.clone(),
        );
        r.register(
            "secret_rotation_rotations",
            "Secrets of this run by what happened to them (rotated, resumed, failed, planned, deferred, retired, noticed)",
            self.rotations.clone(),
        );
    }

    async fn run(&self, ctx: &RunContext<'_, RotationConfig>) -> Result<Report, JobError> {
        let job = &ctx.config.job;
        let now = ctx.clock.now();
        let policies = job.policies();
        let mut report = Report::default();
        let vault = self.vault.as_ref();
        let collect_started = std::time::Instant::now();
        let snapshot = self
            .offline
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let items = match (snapshot, vault) {
            (Some(items), _) => items,
            (None, Some(vault)) => {
                // A sealed or unreachable Vault refuses the run before anything is read or
                // changed (exit 2), rather than making every secret a problem of a run that
                // ends `partial`.
                if let Err(e) = vault.check_available().await {
                    return Err(JobError::Abort {
                        reason: format!("vault unavailable: {e}: nothing was read or changed"),
                        report,
                    });
                }
                let (items, errors) = inventory::collect(vault, job, &ctx.config.aws.regions).await;
                report.errors.extend(errors);
                items
            }
            (None, None) => Vec::new(),
        };
        let collect_seconds = collect_started.elapsed().as_secs_f64();
        let classify_started = std::time::Instant::now();
        let mode = Mode {
            forced: self.args.forced,
            horizon: job.forced_horizon.0,
            overdue_after: job.overdue_after.0,
        };
        let mut lines = plan::plan(items, &policies, mode, now);
        let classify_seconds = classify_started.elapsed().as_secs_f64();

        // Consumers of what will rotate (in dry runs too: the plan names them).
        let needs_kube = lines.iter().any(|l| {
            l.rotates() && (!l.item.decl.kubernetes.is_empty() || !l.item.decl.consumers.is_empty())
        });
        let kube = if needs_kube {
            match common::clients::kube_client(&ctx.config.kubernetes).await {
                Ok(client) => Some(Kube::new(
                    client,
                    job.rollout.poll_interval.0,
                    job.rollout.timeout.0,
                    job.rollout.sync_timeout.0,
                )),
                Err(e) => {
                    report.errors.push(format!("kubernetes: {e}"));
                    None
                }
            }
        } else {
            None
        };
        let mut consumers: BTreeMap<usize, Vec<Workload>> = BTreeMap::new();
        for (i, l) in lines.iter_mut().enumerate() {
            if !l.rotates() {
                continue;
            }
            let d = &l.item.decl;
            if d.kubernetes.is_empty() && d.consumers.is_empty() {
                consumers.insert(i, Vec::new());
                continue;
            }
            let Some(kube) = &kube else {
                l.action =
                    Action::Problem("needs kubernetes access, which is not available".into());
                continue;
            };
            match kube.consumers(&d.kubernetes, &d.consumers).await {
                Ok(found) => {
                    // A new rotation whose consumers cannot be restarted is refused before it
                    // changes anything; a resumed one must go on (its consumers are between two
                    // values) and fails at the restart step instead.
                    if l.action == Action::Rotate {
                        for w in &found {
                            match kube.unrestartable(w).await {
                                Ok(Some(why)) => {
                                    l.action = Action::Problem(format!("consumer {w}: {why}"));
                                    break;
                                }
                                Ok(None) => {}
                                Err(e) => {
                                    l.action = Action::Problem(format!("consumer {w}: {e}"));
                                    break;
                                }
                            }
                        }
                    }
                    consumers.insert(i, found);
                }
                Err(e) => l.action = Action::Problem(format!("finding consumers: {e}")),
            }
        }

        plan::cap(&mut lines, &job.caps);

        // Due events go out in dry runs too (marked): the platform sees what is coming. Not for
        // an offline snapshot, which is a what-if report, not the state of Vault now.
        for l in lines.iter().filter(|_| !self.is_offline) {
            if let Some(c) = &l.class
                && c.phase >= Phase::Notice
                && !matches!(l.action, Action::Problem(_))
            {
                let d = &l.item.decl;
                let data = json!({
                    "resource": d.vault.resource(), "secret": d.name, "secret_type": d.kind.as_str(),
                    "owner": d.owner.as_str(), "age_days": c.age_days(), "due_at": c.due_at.to_string(),
                    "state": c.phase.as_str(), "action": l.action.as_str(),
                });
                if let Err(e) = ctx
                    .emit("secret-rotation-due", &d.vault.resource(), data)
                    .await
                {
                    report
                        .errors
                        .push(format!("secret-rotation-due event for {}: {e}", d.name));
                }
            }
        }

        let mut outcomes: BTreeMap<usize, Outcome> = BTreeMap::new();
        let mut noticed = std::collections::BTreeSet::new();
        let mut stop: Option<String> = None;
        if !ctx.dry_run
            && let Some(vault) = vault
        {
            let env = Env {
                vault,
                kube: kube.as_ref(),
                pending_prefix: job
                    .vault
                    .as_ref()
                    .map_or("_rotation", |v| v.pending_prefix.as_str()),
                wave: job.caps.max_restarts_per_wave,
                grace: job.grace_period.0,
                pause_after: self.args.pause_after,
                on_call: &ctx.config.notify.email_to,
            };
            let mut rds_clients = BTreeMap::new();
            for (i, l) in lines.iter().enumerate() {
                if !(l.rotates() || l.action == Action::Retire) {
                    continue;
                }
                let Some(meta) = &l.item.meta else { continue };
                let target = match self.target(ctx, &l.item.decl, &mut rds_clients).await {
                    Ok(t) => t,
                    Err(e) => {
                        report
                            .errors
                            .push(format!("{}: target: {e}", l.item.decl.name));
                        continue;
                    }
                };
                let outcome = if l.action == Action::Retire {
                    rotate::retire(ctx, &env, &l.item.decl, &target, meta).await
                } else {
                    let found = consumers.get(&i).cloned().unwrap_or_default();
                    rotate::rotate(ctx, &env, &l.item.decl, &target, meta, found).await
                };
                // Failure alerts (delivered or not) are listed in the event like notices.
                report.alerts_sent.extend(outcome.alerts.iter().cloned());
                let halt = outcome
                    .audit_failure
                    .clone()
                    .or_else(|| outcome.lock_lost.as_ref().map(ToString::to_string));
                outcomes.insert(i, outcome);
                if let Some(why) = halt {
                    stop = Some(why);
                    break;
                }
            }
            if stop.is_none() {
                for (i, l) in lines.iter().enumerate() {
                    if !l.notice || matches!(l.action, Action::Problem(_)) {
                        continue;
                    }
                    if let Err(lost) = ctx.check_lock() {
                        stop = Some(lost.to_string());
                        break;
                    }
                    match crate::notices::send(ctx, vault, l).await {
                        Ok(alert) => {
                            report.alerts_sent.push(alert);
                            noticed.insert(i);
                        }
                        Err((alert, e)) => {
                            report.alerts_sent.extend(alert);
                            report
                                .errors
                                .push(format!("notice for {}: {e}", l.item.decl.name));
                        }
                    }
                }
            }
        }

        self.record(ctx, &lines, &outcomes, &noticed, &consumers, &mut report);
        report.total_checked = lines.len() as u64;
        report
            .details
            .insert("forced".into(), json!(self.args.forced));
        report
            .details
            .insert("classify_seconds".into(), json!(classify_seconds));
        report
            .details
            .insert("collect_seconds".into(), json!(collect_seconds));
        if let Some(p) = &self.args.offline {
            report
                .details
                .insert("offline".into(), json!(p.display().to_string()));
            report
                .details
                .insert("load_seconds".into(), json!(self.offline_load_seconds));
        }
        if let Some(why) = stop {
            return Err(JobError::Abort {
                reason: why,
                report,
            });
        }
        Ok(report)
    }

    fn render_table(&self, event: &ResultEvent) -> String {
        table(event)
    }
}

impl SecretRotation {
    /// The target of a secret, ready to call.
    async fn target(
        &self,
        ctx: &RunContext<'_, RotationConfig>,
        decl: &crate::config::SecretDecl,
        rds_clients: &mut BTreeMap<(String, String), aws_sdk_rds::Client>,
    ) -> Result<Target, String> {
        let job = &ctx.config.job;
        let t = decl
            .target
            .as_ref()
            .ok_or_else(|| "no target: a manual type is never written".to_string())?;
        Ok(match t {
            TargetRef::Postgres {
                server,
                role,
                roles,
            } => {
                let s = job.targets.postgres.get(server).ok_or("unknown server")?;
                let mode = match (role, roles) {
                    (Some(r), _) => targets::postgres::Mode::Single(r.clone()),
                    (None, Some(r)) if r.len() == 2 => {
                        targets::postgres::Mode::Alternating([r[0].clone(), r[1].clone()])
                    }
                    _ => return Err("set role or two roles".into()),
                };
                Target::Postgres(targets::postgres::Postgres {
                    server: server.clone(),
                    host: s.host.clone(),
                    port: s.port,
                    database: s.database.clone(),
                    admin_user: s.admin_user.clone(),
                    admin_password: self
                        .credentials
                        .postgres
                        .get(server)
                        .cloned()
                        .ok_or("no credential")?,
                    timeout: s.connect_timeout.0,
                    mode,
                })
            }
            TargetRef::Rds {
                instance,
                region,
                account,
            } => {
                let region = region
                    .clone()
                    .or_else(|| ctx.config.aws.regions.first().cloned())
                    .ok_or("no region")?;
                let key = (account.clone().unwrap_or_default(), region.clone());
                let client = match rds_clients.get(&key) {
                    Some(c) => c.clone(),
                    None => {
                        let role_arn = account.as_ref().and_then(|a| {
                            ctx.config
                                .aws
                                .accounts
                                .iter()
                                .find(|x| &x.id == a)
                                .and_then(|x| x.role_arn.clone())
                        });
                        let sdk = common::clients::aws_sdk_config(
                            &ctx.config.aws,
                            &common::clients::AwsTarget {
                                account: key.0.clone(),
                                region: region.clone(),
                                role_arn,
                            },
                        )
                        .await;
                        let c = aws_sdk_rds::Client::new(&sdk);
                        rds_clients.insert(key, c.clone());
                        c
                    }
                };
                Target::Rds(targets::rds::Rds {
                    client,
                    instance: instance.clone(),
                    poll_interval: job.rollout.poll_interval.0,
                    timeout: job.rollout.timeout.0,
                })
            }
            TargetRef::Keycloak { server, client_id } => {
                let s = job.targets.keycloak.get(server).ok_or("unknown server")?;
                Target::Keycloak(targets::keycloak::Keycloak {
                    server: server.clone(),
                    url: s.url.as_str().to_string(),
                    realm: s.realm.clone(),
                    admin_realm: s.admin_realm.clone(),
                    admin_client_id: s.admin_client_id.clone(),
                    admin_secret: self
                        .credentials
                        .keycloak
                        .get(server)
                        .cloned()
                        .ok_or("no credential")?,
                    client_id: client_id.clone(),
                    http: targets::keycloak::Keycloak::http(s.timeout.0)?,
                })
            }
            TargetRef::ApiKeyIssuer { server, principal } => {
                let s = job
                    .targets
                    .api_key_issuers
                    .get(server)
                    .ok_or("unknown server")?;
                Target::ApiKey(targets::api_key::ApiKeyIssuer {
                    server: server.clone(),
                    url: s.url.as_str().to_string(),
                    admin_token: self
                        .credentials
                        .issuers
                        .get(server)
                        .cloned()
                        .ok_or("no credential")?,
                    principal: principal.clone(),
                    http: targets::keycloak::Keycloak::http(s.timeout.0)?,
                })
            }
        })
    }

    /// Findings, errors and metrics of every line.
    fn record(
        &self,
        ctx: &RunContext<'_, RotationConfig>,
        lines: &[Planned],
        outcomes: &BTreeMap<usize, Outcome>,
        noticed: &std::collections::BTreeSet<usize>,
        consumers: &BTreeMap<usize, Vec<Workload>>,
        report: &mut Report,
    ) {
        let mut by_result: BTreeMap<&'static str, i64> = BTreeMap::new();
        let mut failures: BTreeMap<&'static str, i64> = BTreeMap::new();
        for (i, l) in lines.iter().enumerate() {
            let d = &l.item.decl;
            let outcome = outcomes.get(&i);
            let found: Vec<String> = match outcome {
                Some(o) if !o.consumers.is_empty() => o.consumers.clone(),
                _ => consumers
                    .get(&i)
                    .map(|c| c.iter().map(ToString::to_string).collect())
                    .unwrap_or_else(|| {
                        d.consumers
                            .iter()
                            .map(|c| Workload::from(c).to_string())
                            .collect()
                    }),
            };
            let (result, severity, step, message) =
                describe(ctx.dry_run, l, outcome, noticed.contains(&i));
            *by_result.entry(result).or_default() += 1;
            if let Some(Outcome {
                result: Result_::Failed { step, .. } | Result_::Interrupted { step, .. },
                ..
            }) = outcome
            {
                *failures.entry(step.as_str()).or_default() += 1;
            }
            match (&l.action, outcome.map(|o| &o.result)) {
                (Action::Problem(p), _) => report.errors.push(format!("{}: {p}", d.name)),
                (_, Some(Result_::Failed { step, reason, .. })) => report
                    .errors
                    .push(format!("{}: rotation failed at {step}: {reason}", d.name)),
                (_, Some(Result_::Interrupted { step, reason }))
                    if outcome.is_some_and(|o| rotate::not_started(*step, o.resumed)) =>
                {
                    report.errors.push(format!(
                        "{}: rotation stopped before any credential changed: {reason}",
                        d.name
                    ))
                }
                (_, Some(Result_::Interrupted { step, reason })) => report.errors.push(format!(
                    "{}: rotation interrupted at {step}: {reason}",
                    d.name
                )),
                _ => {}
            }
            let mut f = Finding::new("secret_rotation", severity, d.vault.resource(), message)
                .with("secret", d.name.clone())
                .with("secret_type", d.kind.as_str())
                .with("owner", d.owner.as_str())
                .with("origin", l.item.origin.as_str())
                .with("action", l.action.as_str())
                .with("result", result)
                .with("consumers", json!(found))
                .with("step", step);
            if let Some(c) = &l.class {
                f = f
                    .with("age_days", c.age_days())
                    .with("due_at", c.due_at.to_string())
                    .with("state", c.phase.as_str());
                // An offline snapshot is not the platform's state now: no per-secret series.
                if !self.is_offline {
                    let labels: Labels = vec![
                        ("secret".into(), d.name.clone()),
                        ("type".into(), d.kind.as_str().into()),
                    ];
                    self.age.get_or_create(&labels).set(c.age.as_secs_f64());
                    self.due
                        .get_or_create(&labels)
                        .set(c.due_at.as_second() as f64);
                }
            }
            if let Some(t) = &d.target {
                f = f.with("target", t.kind());
            }
            let rotation_id = outcome
                .map(|o| o.rotation_id.clone())
                .filter(|id| !id.is_empty())
                .or_else(|| l.journal.in_progress().and(l.journal.rotation_id.clone()));
            if let Some(id) = rotation_id {
                f = f.with("rotation_id", id);
            }
            if let Some(o) = outcome {
                f = f.with("disruptive", o.disruptive);
                if o.resumed {
                    f = f.with("resumed", true);
                }
            } else if d.target.as_ref().is_some_and(TargetRef::disruptive) && l.rotates() {
                f = f.with("disruptive", true);
            }
            let last_success = match outcome.map(|o| &o.result) {
                Some(Result_::Rotated { .. }) => Some(ctx.clock.now()),
                _ => l.journal.last_rotated,
            };
            if let Some(t) = last_success.filter(|_| !self.is_offline) {
                self.last_success
                    .get_or_create(&vec![("secret".into(), d.name.clone())])
                    .set(t.as_second() as f64);
            }
            report.findings.push(f);
        }
        for (result, n) in &by_result {
            self.rotations
                .get_or_create(&vec![("result".into(), (*result).into())])
                .set(*n);
        }
        for step in Step::ROTATION
            .iter()
            .chain([Step::Rollback, Step::Retire].iter())
        {
            self.failures
                .get_or_create(&vec![("step".into(), step.as_str().into())])
                .set(failures.get(step.as_str()).copied().unwrap_or(0));
        }
        // Most urgent first, then by name.
        report.findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.resource.cmp(&b.resource))
        });
        report.details.insert("by_result".into(), json!(by_result));
    }
}

/// The finding's result, severity, step reached and message for one line.
fn describe(
    dry_run: bool,
    l: &Planned,
    outcome: Option<&Outcome>,
    noticed: bool,
) -> (&'static str, Severity, &'static str, String) {
    let d = &l.item.decl;
    let phase_severity = match l.class.map(|c| c.phase) {
        Some(Phase::Overdue) => Severity::Critical,
        Some(Phase::Due) => Severity::Warning,
        Some(Phase::Notice) => Severity::Info,
        Some(Phase::Ok) | None => Severity::Ok,
    };
    let due = l
        .class
        .map(|c| format!("due {}", c.due_at.strftime("%Y-%m-%d")))
        .unwrap_or_default();
    let age = l.class.map(|c| c.age_days()).unwrap_or(0);
    if let Some(o) = outcome {
        return match &o.result {
            Result_::Rotated { version } => (
                "rotated",
                Severity::Info,
                "finish",
                format!(
                    "{} rotated{}: Vault version {version}, {} consumer(s) restarted and verified",
                    d.name,
                    if o.resumed { " (resumed)" } else { "" },
                    o.consumers.len()
                ),
            ),
            Result_::Failed {
                step,
                reason,
                rolled_back,
            } => (
                if rolled_back.is_some() {
                    "rolled_back"
                } else {
                    "failed"
                },
                Severity::Critical,
                step.as_str(),
                format!("{} rotation failed at {step}: {reason}", d.name),
            ),
            Result_::Interrupted { step, reason } => (
                "interrupted",
                Severity::Critical,
                step.as_str(),
                if rotate::not_started(*step, o.resumed) {
                    format!(
                        "{} rotation stopped before any credential changed (the journal could not be written; the next run tries again): {reason}",
                        d.name
                    )
                } else {
                    format!(
                        "{} rotation interrupted at {step} (the next run resumes it): {reason}",
                        d.name
                    )
                },
            ),
            Result_::Retired => (
                "retired",
                Severity::Ok,
                "retire",
                format!("{} old credential retired after the grace period", d.name),
            ),
        };
    }
    let would = if dry_run { "would " } else { "" };
    match &l.action {
        Action::Problem(p) => (
            "problem",
            Severity::Warning,
            "classify",
            format!("{}: {p}", d.name),
        ),
        Action::Rotate => (
            "planned",
            phase_severity,
            "classify",
            format!("{} is {age} days old ({due}): {would}rotate", d.name),
        ),
        Action::Resume(step) => (
            "planned",
            Severity::Warning,
            step.as_str(),
            format!(
                "{} rotation was interrupted at {step}: {would}resume it",
                d.name
            ),
        ),
        Action::Retire => (
            "planned",
            Severity::Ok,
            "retire",
            format!(
                "{}: {would}retire the old credential (grace period over)",
                d.name
            ),
        ),
        Action::Deferred(why) => (
            "deferred",
            phase_severity,
            "classify",
            format!(
                "{} is {age} days old ({due}): rotation deferred: {why}",
                d.name
            ),
        ),
        Action::Manual => (
            if noticed {
                "noticed"
            } else {
                "action_required"
            },
            phase_severity.max(Severity::Info),
            "classify",
            format!(
                "{} is {age} days old ({due}): action required, {} secrets are rotated by hand{}",
                d.name,
                d.kind,
                notice_note(dry_run, l.notice, noticed)
            ),
        ),
        Action::Notice => (
            if noticed { "noticed" } else { "notice" },
            Severity::Info,
            "classify",
            format!(
                "{} is {age} days old ({due}): rotated automatically when due{}",
                d.name,
                notice_note(dry_run, l.notice, noticed)
            ),
        ),
        Action::None => (
            "none",
            Severity::Ok,
            "classify",
            format!("{} is {age} days old ({due})", d.name),
        ),
    }
}

fn notice_note(dry_run: bool, due: bool, sent: bool) -> &'static str {
    match (due, sent, dry_run) {
        (false, _, _) => "; owner already notified for this due date",
        (true, true, _) => "; owner notified",
        (true, false, true) => "; the owner would be notified",
        (true, false, false) => "; owner notice not sent",
    }
}

/// The table for people: one line per secret.
pub fn table(event: &ResultEvent) -> String {
    let mut rows = vec![
        [
            "SEVERITY",
            "ACTION",
            "RESULT",
            "TYPE",
            "AGE",
            "DUE",
            "STEP",
            "CONSUMERS",
            "SECRET",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for f in &event.findings {
        let text = |k: &str| match f.fields.get(k) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) if !v.is_null() => v.to_string(),
            _ => "-".to_string(),
        };
        let consumers = f
            .fields
            .get("consumers")
            .and_then(|c| c.as_array())
            .map(|c| {
                c.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "-".into());
        rows.push(vec![
            f.severity.as_str().to_string(),
            text("action"),
            text("result"),
            text("secret_type"),
            f.fields
                .get("age_days")
                .map(|a| format!("{a}d"))
                .unwrap_or_else(|| "-".into()),
            text("due_at").chars().take(10).collect(),
            text("step"),
            consumers,
            format!("{} ({})", text("secret"), f.resource),
        ]);
    }
    let mut out = render_rows(&rows);
    out.push_str(&summary_line(event));
    out
}
