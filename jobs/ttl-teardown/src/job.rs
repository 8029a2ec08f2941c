//! The TTL teardown job on the shared harness: prepare (fail closed), plan, report.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, bail};
use common::config::{JobConfig, relative_to};
use common::event::ResultEvent;
use common::harness::{CommonArgs, Job, JobError, Report, RunContext};
use common::metrics::{Labels, Metrics};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use serde_json::json;

use crate::config::TtlConfig;
use crate::execute::{self, Executed, Waiting, record_warnings};
use crate::inventory::{self, Resource, Scope};
use crate::lease::RunLock;
use crate::live::Live;
use crate::notices;
use crate::plan::{self, Outcome, Plan, Protected, Rules};
use crate::policy::Action;
use crate::snooze::token::Keyring;
use std::collections::HashSet;

/// Options of `ttl-teardown` beyond the common ones.
#[derive(Debug, Clone, clap::Args)]
pub struct TtlArgs {
    /// Read resources from this offline inventory file (YAML) instead of AWS and Kubernetes. Shows
    /// what the rules would do, e.g. in a pull request that changes tags; read-only
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
}

/// The job.
pub struct TtlTeardown {
    whitelist: whitelist::Whitelist,
    /// Signing keys for snooze links, when owner notices are configured.
    keyring: Option<Keyring>,
    /// The offline inventory, when that is the source; otherwise the live providers.
    inventory: Option<PathBuf>,
    cost_avoided: Family<Labels, Counter<f64, AtomicU64>>,
    deleted: Family<Labels, Counter>,
    /// Resources of the run's plan per outcome (the cost dashboard's "tag violations blocked").
    by_outcome: Family<Labels, Gauge>,
}

impl Job for TtlTeardown {
    const NAME: &'static str = "ttl-teardown";
    const ABOUT: &'static str = "Tear down expired non-production AWS and Kubernetes resources.\n\n\
        A resource's deadline is created_at + ttl + granted extensions, from its tags. Owners are \
        warned 48 h and 24 h before; expired resources are deleted in dependency order. Never \
        touched: production, data-class=restricted, auto-teardown=false, anything the whitelist \
        protects, accounts outside job.allowed_accounts, and resources with invalid tags (reported \
        as tag violations). Dry run unless --execute.\n\n\
        Exit codes: 0 success (dry run included), 1 finished with failures, 2 refused before any \
        side effect (bad config or whitelist, missing audit sink, blast-radius cap).";
    type Args = TtlArgs;
    type Config = TtlConfig;

    fn prepare(
        args: TtlArgs,
        common: &CommonArgs,
        config: &JobConfig<TtlConfig>,
    ) -> anyhow::Result<Self> {
        let file = common.config.display().to_string();
        let problems = config.job.validate();
        if !problems.is_empty() {
            bail!(
                "invalid config\n{}",
                problems
                    .iter()
                    .map(|p| format!("{file}: {p}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        let whitelist_path = relative_to(&common.config, &config.job.whitelist);
        // Fail closed: no whitelist, no run — a dry run's plan without it would be a lie.
        let whitelist = whitelist::Whitelist::load(&whitelist_path).with_context(|| {
            format!(
                "whitelist {} is not usable, refusing to run",
                whitelist_path.display()
            )
        })?;
        let inventory = args.inventory.or_else(|| {
            config
                .job
                .sources
                .inventory
                .as_ref()
                .map(|p| relative_to(&common.config, p))
        });
        let sources = &config.job.sources;
        match (&inventory, common.execute) {
            (Some(path), true) => bail!(
                "--execute with the offline inventory {}: an inventory file is read-only, it only shows the plan",
                path.display()
            ),
            (None, _) if !sources.aws && sources.kubernetes.is_none() => bail!(
                "{file}: job.sources: no resource source; set inventory, aws: true and/or kubernetes (or pass --inventory FILE)"
            ),
            _ => {}
        }
        // Fail closed here too: notices configured but no usable signing keys is a bad config.
        let keyring = match &config.job.snooze {
            Some(snooze) => {
                let dir = relative_to(&common.config, &snooze.keys_dir);
                Some(
                    Keyring::load(&dir, &snooze.active_key)
                        .with_context(|| format!("{file}: job.snooze"))?,
                )
            }
            None => None,
        };
        Ok(TtlTeardown {
            whitelist,
            keyring,
            inventory,
            cost_avoided: Family::default(),
            deleted: Family::default(),
            by_outcome: Family::default(),
        })
    }

    fn needs_durable_audit(_config: &JobConfig<TtlConfig>, dry_run: bool) -> bool {
        !dry_run
    }

    fn register_metrics(&mut self, metrics: &mut Metrics) {
        let registry = metrics.registry_mut();
        registry.register(
            "ttl_cost_avoided_usd",
            "Cost avoided by deletions over the pricing horizon, USD (planned, in a dry run)",
            self.cost_avoided.clone(),
        );
        registry.register(
            "ttl_resources_deleted",
            "Resources deleted (planned, in a dry run)",
            self.deleted.clone(),
        );
        registry.register(
            "ttl_resources_by_outcome",
            "Resources of the run's plan by outcome (protected, tag-violation, ineligible, nothing, warn, delete, held)",
            self.by_outcome.clone(),
        );
    }

    async fn run(&self, ctx: &RunContext<'_, TtlConfig>) -> Result<Report, JobError> {
        let live = match &self.inventory {
            Some(_) => None,
            None => Some(Live::connect(ctx.config).await.map_err(JobError::Failed)?),
        };
        // One executing run at a time: the lease is taken before anything is listed or changed,
        // and released on every way out (a run that dies leaves it to expire).
        let lock = match (&live, ctx.dry_run) {
            (Some(live), false) => Some(take_lock(ctx, live).await?),
            _ => None,
        };
        let result = self.run_with(ctx, live.as_ref()).await;
        if let Some(lock) = lock
            && let Err(e) = lock.release().await
        {
            tracing::warn!(error = %e, "run lock not released (it expires by itself)");
        }
        result
    }

    fn render_table(&self, event: &ResultEvent) -> String {
        crate::report::table(event)
    }
}

/// Takes the run lock, or refuses the run (exit 2) saying who holds it.
async fn take_lock(ctx: &RunContext<'_, TtlConfig>, live: &Live) -> Result<RunLock, JobError> {
    let lock = &ctx.config.job.lock;
    let abort = |reason: String| JobError::Abort {
        reason,
        report: Report::default(),
    };
    let client = live
        .lock_client(ctx.config)
        .await
        .map_err(|e| abort(format!("cannot reach kubernetes for the run lock: {e}")))?;
    RunLock::acquire(
        client,
        &lock.namespace,
        &lock.name,
        &ctx.run_id,
        lock.duration.0,
        ctx.clock.now(),
    )
    .await
    .map_err(|e| abort(format!("run lock {}/{}: {e}", lock.namespace, lock.name)))
}

impl TtlTeardown {
    /// Sets `ttl_resources_by_outcome` from the plan; every outcome gets a series, zeros included,
    /// so a dashboard shows 0 rather than nothing.
    fn count_outcomes(&self, plan: &Plan) {
        const OUTCOMES: [&str; 7] = [
            "protected",
            "tag-violation",
            "ineligible",
            "nothing",
            "warn",
            "delete",
            "held",
        ];
        let mut counts = [0i64; OUTCOMES.len()];
        for item in &plan.items {
            let i = match &item.outcome {
                Outcome::Protected(_) => 0,
                Outcome::Violation(_) => 1,
                Outcome::Ineligible(_) => 2,
                Outcome::Nothing(_) => 3,
                Outcome::Warn(_) => 4,
                Outcome::Delete(_) => 5,
                Outcome::Held(..) => 6,
            };
            counts[i] += 1;
        }
        for (outcome, n) in OUTCOMES.iter().zip(counts) {
            self.by_outcome
                .get_or_create(&vec![("outcome".to_string(), (*outcome).to_string())])
                .set(n);
        }
    }

    async fn run_with(
        &self,
        ctx: &RunContext<'_, TtlConfig>,
        live: Option<&Live>,
    ) -> Result<Report, JobError> {
        let now = ctx.clock.now();
        let job = &ctx.config.job;
        let mut report = Report::default();
        let resources = match (&self.inventory, live) {
            (Some(path), _) => {
                inventory::load_file(path).map_err(|e| JobError::Failed(e.into()))?
            }
            (None, Some(live)) => {
                let (resources, errors) = live.list().await;
                report
                    .errors
                    .extend(errors.into_iter().map(|e| format!("inventory: {e}")));
                resources
            }
            (None, None) => Vec::new(),
        };
        let verdict = |r: &Resource| whitelist_verdict(&self.whitelist, r, now);
        let rules = Rules {
            policy: &job.policy,
            allowed_accounts: &job.allowed_accounts,
            caps: &job.caps,
            pricing: &job.pricing,
            whitelist: &verdict,
            now,
        };
        let plan = plan::plan(resources, &rules);
        self.count_outcomes(&plan);
        report.total_checked = plan.items.len() as u64;
        report.findings = plan.items.iter().filter_map(plan::Item::finding).collect();
        report.details = details(&plan);

        // Expiring and tag-violation events go out on their own topics, in dry runs too (marked).
        for item in &plan.items {
            let event_type = match (&item.outcome, item.action()) {
                (Outcome::Violation(_), _) => "tag-violation",
                (_, Action::Warn48h | Action::Warn24h) => "resource-expiring",
                _ => continue,
            };
            if let Some(f) = item.finding()
                && let Err(e) = ctx.emit(event_type, &item.resource.id, &f).await
            {
                report
                    .errors
                    .push(format!("{event_type} event for {}: {e}", item.resource.id));
            }
        }

        if let Some(reason) = plan.cap_breach.clone() {
            return Err(JobError::Abort { reason, report });
        }

        let deleted: Vec<String> = match (ctx.dry_run, live) {
            (true, _) | (false, None) => plan
                .waves
                .iter()
                .flatten()
                .map(|&i| plan.items[i].resource.id.clone())
                .collect(),
            (false, Some(live)) => {
                let mut executed = self.execute(ctx, &plan, live).await?;
                report.errors.extend(executed.errors.iter().cloned());
                report.alerts_sent.append(&mut executed.alerts);
                report
                    .details
                    .insert("deleted".into(), json!(executed.deleted));
                report
                    .details
                    .insert("pending".into(), json!(executed.pending));
                report
                    .details
                    .insert("not_deleted".into(), json!(executed.not_deleted));
                report
                    .details
                    .insert("stages_recorded".into(), json!(executed.stages_recorded));
                if let Some(reason) = executed.audit_failure {
                    return Err(JobError::Abort { reason, report });
                }
                for (id, why) in &executed.not_deleted {
                    report.errors.push(format!("{id} not deleted: {why}"));
                }
                executed.deleted
            }
        };
        let deleted: std::collections::HashSet<&str> = deleted.iter().map(String::as_str).collect();
        for item in &plan.items {
            if let (Outcome::Delete(b), true) =
                (&item.outcome, deleted.contains(item.resource.id.as_str()))
            {
                let project = b.0.project.clone();
                let labels: Labels = vec![("project".into(), project.clone())];
                self.cost_avoided
                    .get_or_create(&labels)
                    .inc_by(b.2.avoided_usd);
                self.deleted
                    .get_or_create(&vec![
                        ("kind".into(), item.resource.kind.to_string()),
                        ("project".into(), project),
                    ])
                    .inc();
            }
        }
        Ok(report)
    }

    /// The `--execute` part, under the run lock: record the plan durably (the audit sink must
    /// be up before anything changes), record warning stages, delete.
    async fn execute(
        &self,
        ctx: &RunContext<'_, TtlConfig>,
        plan: &Plan,
        live: &Live,
    ) -> Result<Executed, JobError> {
        let job = &ctx.config.job;
        let planned: Vec<&str> = plan
            .waves
            .iter()
            .flatten()
            .map(|&i| plan.items[i].resource.id.as_str())
            .collect();
        let record = json!({"phase": "plan", "resource": "*", "planned": planned});
        if let Err(e) = ctx.emit("resource-deleted", "plan", &record).await {
            return Err(JobError::Abort {
                reason: format!("audit sink unavailable, nothing changed: {e}"),
                report: Report::default(),
            });
        }
        let mut executed = Executed::default();
        let notified: Option<HashSet<String>> = match (&job.snooze, &self.keyring) {
            (Some(snooze), Some(keyring)) => {
                let sent = notices::send(plan, ctx, snooze, keyring).await;
                executed.alerts = sent.alerts;
                executed.errors.extend(sent.errors);
                Some(sent.notified.into_iter().collect())
            }
            _ => None,
        };
        record_warnings(
            plan,
            live,
            &job.policy.keys.notified_stage,
            notified.as_ref(),
            &mut executed,
        )
        .await;
        let waiting = Waiting {
            timeout: job.waiting.timeout.0,
            interval: job.waiting.interval.0,
        };
        let deletions = execute::delete(plan, live, ctx, waiting).await;
        executed.deleted = deletions.deleted;
        executed.pending = deletions.pending;
        executed.not_deleted = deletions.not_deleted;
        executed.errors.extend(deletions.errors);
        executed.audit_failure = deletions.audit_failure;
        Ok(executed)
    }
}

/// The whitelist's verdict for a resource, as the planner's [`Protected`]. Kubernetes objects
/// are also matched by their annotation-derived tags: a tag rule such as `environment=prod`
/// protects them too (more protection is the safe side).
fn whitelist_verdict(
    wl: &whitelist::Whitelist,
    r: &Resource,
    now: jiff::Timestamp,
) -> Option<Protected> {
    let mut subject = whitelist::Resource {
        tags: r.tags.clone(),
        tags_unreadable: r.tags_unreadable.clone(),
        ..whitelist::Resource::default()
    };
    match &r.scope {
        Scope::Aws { account, .. } => {
            subject.arn = Some(r.id.clone());
            subject.account = Some(account.clone());
        }
        Scope::Kubernetes { .. } => {
            subject.kubernetes = Some(whitelist::KubeObject {
                kind: kube_kind(r.kind).to_string(),
                namespace: r.namespace.clone().filter(|_| r.kind != "k8s-namespace"),
                name: r.name.clone(),
                labels: r.labels.clone(),
                namespace_labels: r.namespace_labels.clone(),
            });
        }
    }
    wl.verdict(&subject, now).map(|p| Protected {
        rule: p
            .rule()
            .map(|rule| format!("{}[{}]", rule.section().name(), rule.index()))
            .unwrap_or_else(|| p.kind().to_string()),
        reason: p.to_string(),
    })
}

/// The Kubernetes kind of a registry kind name.
fn kube_kind(kind: &str) -> &'static str {
    match kind {
        "k8s-namespace" => "Namespace",
        "k8s-deployment" => "Deployment",
        "k8s-service" => "Service",
        "k8s-configmap" => "ConfigMap",
        _ => "Unknown",
    }
}

/// Run-level numbers for the event's `details`: cost avoided per project and in total, the
/// deletion order, counts per action.
fn details(plan: &Plan) -> serde_json::Map<String, serde_json::Value> {
    let mut by_project: std::collections::BTreeMap<String, f64> = Default::default();
    for it in &plan.items {
        if let Outcome::Delete(b) = &it.outcome {
            *by_project.entry(b.0.project.clone()).or_default() += b.2.avoided_usd;
        }
    }
    let total: f64 = by_project.values().sum();
    let order: Vec<Vec<&str>> = plan
        .waves
        .iter()
        .map(|w| {
            w.iter()
                .map(|&i| plan.items[i].resource.id.as_str())
                .collect()
        })
        .collect();
    let count = |a: Action| plan.items.iter().filter(|i| i.action() == a).count();
    let round = |v: f64| (v * 100.0).round() / 100.0;
    let mut m = serde_json::Map::new();
    m.insert("cost_avoided_usd".into(), json!(round(total)));
    m.insert(
        "cost_avoided_by_project".into(),
        json!(
            by_project
                .into_iter()
                .map(|(k, v)| (k, round(v)))
                .collect::<std::collections::BTreeMap<_, _>>()
        ),
    );
    m.insert("deletion_waves".into(), json!(order));
    m.insert(
        "actions".into(),
        json!({"delete": count(Action::Delete), "warn-48h": count(Action::Warn48h), "warn-24h": count(Action::Warn24h)}),
    );
    if let Some(c) = &plan.cap_breach {
        m.insert("cap_breach".into(), json!(c));
    }
    m
}
