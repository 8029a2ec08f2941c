//! The TTL teardown job on the shared harness: prepare (fail closed), list, plan, report, and
//! with `--execute` act under the run lock the harness holds.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, bail};
use common::config::{JobConfig, SourceMap, relative_to};
use common::event::ResultEvent;
use common::harness::{CommonArgs, Job, JobError, LockSpec, Report, RunContext};
use common::metrics::{Labels, Metrics};
use common::shard::Shard;
use inventory::{Listing, Providers, Resource, Scope};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use serde_json::json;

use crate::config::TtlConfig;
use crate::execute::{self, Executed, Waiting, record_warnings};
use crate::notices;
use crate::plan::{self, Outcome, Plan, Protected, Rules};
use crate::policy::Action;
use crate::snooze::token::Keyring;

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
    const SHARDS: bool = true;
    const ABOUT: &'static str = "Tear down expired non-production AWS and Kubernetes resources.\n\n\
        A resource's deadline is created_at + ttl + granted extensions, from its tags. Owners are \
        warned 48 h and 24 h before; expired resources are deleted in dependency order (IAM \
        roles, Auto Scaling groups, EKS node groups, EC2 instances, load balancers and target \
        groups, S3 buckets, Lambda functions, RDS snapshots and instances, EBS volumes, security \
        groups, Kubernetes objects and namespaces). Never touched: production, \
        data-class=restricted, auto-teardown=false, anything the whitelist protects, accounts \
        outside job.allowed_accounts, and resources with invalid tags (reported as tag \
        violations). Dry run unless --execute.\n\n\
        Exit codes: 0 success (dry run included), 1 finished with failures (or stopped after it \
        acted), 2 refused before any side effect (bad config or whitelist, missing audit sink, \
        run lock held, blast-radius cap).";
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
            let located = SourceMap::read(&common.config).errors(&problems);
            bail!("invalid config\n{located}");
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
        if inventory.is_some() && matches!(common.shard(), Ok(Some(_))) {
            bail!(
                "an offline inventory with a shard: it is not split by (account, region); run it unsharded"
            );
        }
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

    /// `--execute` runs over live providers hold the Lease `job.lock`: one deleting run at a time.
    fn run_lock(&self, config: &JobConfig<TtlConfig>, dry_run: bool) -> Option<LockSpec> {
        let lock = &config.job.lock;
        (!dry_run && self.inventory.is_none()).then(|| LockSpec {
            namespace: lock.namespace.clone(),
            name: lock.name.clone(),
            duration: lock.duration.0,
        })
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
        let providers = match &self.inventory {
            Some(_) => None,
            None => Some(
                connect_shard(ctx.config, ctx.shard)
                    .await
                    .map_err(JobError::Failed)?,
            ),
        };
        self.run_with(ctx, providers.as_ref()).await
    }

    fn render_table(&self, event: &ResultEvent) -> String {
        crate::report::table(event)
    }
}

/// The live providers the config's sources name.
pub async fn connect(config: &JobConfig<TtlConfig>) -> anyhow::Result<Providers> {
    connect_shard(config, None).await
}

/// The providers of one shard's slice (see `common::shard`); `None`: everything.
pub async fn connect_shard(
    config: &JobConfig<TtlConfig>,
    shard: Option<Shard>,
) -> anyhow::Result<Providers> {
    let sources = &config.job.sources;
    let kubernetes = sources
        .kubernetes
        .as_ref()
        .map(|source| (&config.kubernetes, source));
    Providers::connect_shard(sources.aws.then_some(&config.aws), kubernetes, shard)
        .await
        .context("cannot build the resource providers")
}

impl TtlTeardown {
    /// The plan of `listing`: the job's rules, the whitelist, and the listing's failures
    /// holding back what may depend on what was not listed.
    fn plan(&self, job: &TtlConfig, listing: &Listing, now: jiff::Timestamp) -> Plan {
        let verdict = |r: &Resource| whitelist_verdict(&self.whitelist, r, now);
        let listing_failure = |r: &Resource| {
            listing.blocking_failure(r).map(|f| {
                format!(
                    "{} could not be listed in {} and it may depend on one ({})",
                    f.kind,
                    f.scope.label(),
                    f.error.message
                )
            })
        };
        let rules = Rules {
            policy: &job.policy,
            allowed_accounts: &job.allowed_accounts,
            caps: &job.caps,
            pricing: &job.pricing,
            whitelist: &verdict,
            listing_failure: &listing_failure,
            now,
        };
        plan::plan(listing.resources.clone(), &rules)
    }

    /// Sets `ttl_resources_by_outcome` from the plan; every outcome gets a series, zeros included,
    /// so a dashboard shows 0 rather than nothing.
    fn count_outcomes(&self, plan: &Plan) {
        let mut counts: BTreeMap<&str, i64> = Outcome::NAMES.iter().map(|n| (*n, 0)).collect();
        for item in &plan.items {
            *counts.entry(item.outcome.name()).or_default() += 1;
        }
        for (outcome, n) in counts {
            self.by_outcome
                .get_or_create(&vec![("outcome".to_string(), outcome.to_string())])
                .set(n);
        }
    }

    async fn run_with(
        &self,
        ctx: &RunContext<'_, TtlConfig>,
        providers: Option<&Providers>,
    ) -> Result<Report, JobError> {
        let now = ctx.clock.now();
        let job = &ctx.config.job;
        let mut report = Report::default();
        let mut listing = match (&self.inventory, providers) {
            (Some(path), _) => Listing {
                resources: inventory::file::load_file(path)
                    .map_err(|e| JobError::Failed(e.into()))?,
                failures: Vec::new(),
            },
            (None, Some(providers)) => providers.list_candidates().await,
            (None, None) => Listing::default(),
        };
        let mut plan = self.plan(job, &listing, now);
        if let (None, Some(providers)) = (&self.inventory, providers) {
            // The parts of what goes (an instance's root volumes) were not listed: read them now
            // and plan again with them, so a protected part holds its owner and the cost avoided
            // counts them. A part's owner may be a part itself (a group's instance): a round
            // per level, three at most (group, instance, volume).
            for _ in 0..3 {
                let going: Vec<&str> = plan
                    .waves
                    .iter()
                    .flatten()
                    .map(|&i| plan.items[i].resource.id.as_str())
                    .collect();
                if !providers.read_parts(&mut listing, &going).await {
                    break;
                }
                plan = self.plan(job, &listing, now);
            }
        }
        for f in &listing.failures {
            report.errors.push(format!(
                "inventory: {} could not be listed in {}: {}",
                f.kind,
                f.scope.label(),
                f.error
            ));
        }
        // A resource whose tags could not be read is protected (a finding says so), and the
        // run did not do all its work: an error, so the run is `partial` and alerts see it
        // (a throttled ListTags that ran out of retries must not end as a quiet success).
        for r in listing
            .resources
            .iter()
            .filter(|r| r.tags_unreadable.is_some())
        {
            report.errors.push(format!(
                "inventory: the tags of {} could not be read ({}): left alone this run",
                r.id,
                r.tags_unreadable.as_deref().unwrap_or_default()
            ));
        }
        self.count_outcomes(&plan);
        report.total_checked = plan.items.len() as u64;
        report.findings = plan.items.iter().filter_map(plan::Item::finding).collect();
        report.details = details(&plan, &listing);

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

        let removed: Vec<String> = match (ctx.dry_run, providers) {
            (true, _) | (false, None) => plan
                .waves
                .iter()
                .flatten()
                .map(|&i| plan.items[i].resource.id.clone())
                .collect(),
            (false, Some(providers)) => {
                let mut executed = self.execute(ctx, &plan, providers).await?;
                report.errors.extend(executed.errors.iter().cloned());
                report.alerts_sent.append(&mut executed.alerts);
                let d = &mut report.details;
                d.insert("deleted".into(), json!(executed.deleted));
                d.insert("pending".into(), json!(executed.pending));
                d.insert("not_deleted".into(), json!(executed.not_deleted));
                d.insert("stages_recorded".into(), json!(executed.stages_recorded));
                d.insert("retries".into(), json!(executed.retries));
                if let Some(r) = &executed.reconciled {
                    d.insert("reconciled".into(), json!(r));
                }
                self.archive(ctx, &executed, &mut report).await;
                if let Some(reason) = executed.audit_failure {
                    return Err(JobError::Abort { reason, report });
                }
                for (id, why) in &executed.not_deleted {
                    report.errors.push(format!("{id} not deleted: {why}"));
                }
                executed.deleted
            }
        };
        let removed: HashSet<&str> = removed.iter().map(String::as_str).collect();
        for item in &plan.items {
            let (Some(estimate), true) =
                (item.estimate(), removed.contains(item.resource.id.as_str()))
            else {
                continue;
            };
            let project = project_of(item);
            let labels: Labels = vec![("project".into(), project.clone())];
            self.cost_avoided
                .get_or_create(&labels)
                .inc_by(estimate.avoided_or_zero());
            self.deleted
                .get_or_create(&vec![
                    ("kind".into(), item.resource.kind.to_string()),
                    ("project".into(), project),
                ])
                .inc();
        }
        Ok(report)
    }

    /// The `--execute` part, under the run lock: record the plan durably (the audit sink must
    /// be up before anything changes), send notices, record warning stages, delete.
    async fn execute(
        &self,
        ctx: &RunContext<'_, TtlConfig>,
        plan: &Plan,
        providers: &Providers,
    ) -> Result<Executed, JobError> {
        let job = &ctx.config.job;
        let mut executed = Executed::default();
        let planned: Vec<&str> = plan
            .waves
            .iter()
            .flatten()
            .map(|&i| plan.items[i].resource.id.as_str())
            .collect();
        let record = json!({"phase": "plan", "resource": "*", "planned": planned});
        if let Err(e) = execute::audit(ctx, &mut executed, "plan", &record).await {
            return Err(JobError::Abort {
                reason: format!("audit sink unavailable, nothing changed: {e}"),
                report: Report::default(),
            });
        }
        let planned: HashSet<&str> = planned.into_iter().collect();
        match crate::reconcile::reconcile(ctx, providers, &planned, &mut executed).await {
            Ok(r) if r.found > 0 => {
                tracing::info!(
                    found = r.found,
                    deleted = r.deleted,
                    not_done = r.not_done,
                    superseded = r.superseded,
                    handed_over = r.handed_over,
                    left_open = r.left_open,
                    "earlier runs' intents reconciled"
                );
                executed.reconciled = Some(r);
            }
            Ok(_) => {}
            Err(e) => executed.errors.push(e),
        }
        let notified: Option<HashSet<String>> = match (&job.snooze, &self.keyring) {
            (Some(snooze), Some(keyring)) => {
                let sent = notices::send(plan, ctx, snooze, keyring).await;
                executed.alerts = sent.alerts;
                executed.errors.extend(sent.errors);
                Some(sent.notified.into_iter().collect())
            }
            _ => None,
        };
        record_warnings(plan, providers, ctx, notified.as_ref(), &mut executed).await;
        let waiting = Waiting {
            timeout: job.waiting.timeout.0,
            interval: job.waiting.interval.0,
            retry_passes: job.retry.passes,
            retry_interval: job.retry.interval.0,
        };
        execute::delete(plan, providers, ctx, waiting, &mut executed).await;
        Ok(executed)
    }

    /// Writes the run's audit records to the archive, when one is configured; a failure makes
    /// the run partial.
    async fn archive(
        &self,
        ctx: &RunContext<'_, TtlConfig>,
        executed: &Executed,
        report: &mut Report,
    ) {
        let Some(archive) = &ctx.config.job.audit_archive else {
            return;
        };
        // Dated when the run really happened (the system clock, as the lock's), never the
        // `--now` instant a what-if run evaluates its rules at: the archive is a record of
        // deletions, found by the day they were made.
        match crate::archive::write(
            archive,
            &ctx.config.aws,
            &ctx.run_id,
            common::clock::Clock::now(&common::clock::SystemClock),
            &executed.audit,
        )
        .await
        {
            Ok(uri) => {
                tracing::info!(%uri, records = executed.audit.len(), "audit archived");
                report.details.insert("audit_archive".into(), json!(uri));
            }
            Err(e) => {
                tracing::error!(error = %e, records = executed.audit.len(), "audit not archived (the Kafka copy stands)");
                report.errors.push(e.to_string());
            }
        }
    }
}

/// The project a removal is counted under: its own tag, or its owner's for a part.
fn project_of(item: &plan::Item) -> String {
    match &item.outcome {
        Outcome::Delete(b) => b.0.project.clone(),
        _ => item
            .resource
            .tags
            .get("project")
            .cloned()
            .unwrap_or_else(|| "unknown".to_string()),
    }
}

/// The whitelist's verdict for a resource, as the planner's [`Protected`]. Kubernetes objects
/// are also matched by their annotation-derived tags: a tag rule such as `environment=prod`
/// protects them too (more protection is the safe side).
pub fn whitelist_verdict(
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
            let kind = inventory::kinds::by_name(r.kind).and_then(|k| k.kube());
            subject.kubernetes = Some(whitelist::KubeObject {
                kind: kind.map_or("Unknown", |k| k.kube_kind()).to_string(),
                namespace: r
                    .namespace
                    .clone()
                    .filter(|_| kind.is_some_and(|k| k.id_segment().is_some())),
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

/// Run-level numbers for the event's `details`: cost avoided per project and in total (and how
/// many removals have no known price), the deletion order, counts per action, the kinds that
/// could not be listed.
fn details(plan: &Plan, listing: &Listing) -> serde_json::Map<String, serde_json::Value> {
    let mut by_project: BTreeMap<String, f64> = Default::default();
    let mut unknown = 0;
    for it in &plan.items {
        if let Some(e) = it.estimate() {
            *by_project.entry(project_of(it)).or_default() += e.avoided_or_zero();
            unknown += usize::from(e.avoided_usd.is_none());
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
    let round = inventory::cost::round_cents;
    let mut m = serde_json::Map::new();
    m.insert("cost_avoided_usd".into(), json!(round(total)));
    m.insert(
        "cost_avoided_by_project".into(),
        json!(
            by_project
                .into_iter()
                .map(|(k, v)| (k, round(v)))
                .collect::<BTreeMap<_, _>>()
        ),
    );
    m.insert("cost_unknown".into(), json!(unknown));
    m.insert("deletion_waves".into(), json!(order));
    m.insert(
        "actions".into(),
        json!({"delete": count(Action::Delete), "warn-48h": count(Action::Warn48h), "warn-24h": count(Action::Warn24h)}),
    );
    if !listing.failures.is_empty() {
        m.insert(
            "not_listed".into(),
            json!(
                listing
                    .failures
                    .iter()
                    .map(|f| json!({"scope": f.scope.label(), "kind": f.kind, "error": f.error.to_string()}))
                    .collect::<Vec<_>>()
            ),
        );
    }
    if let Some(c) = &plan.cap_breach {
        m.insert("cap_breach".into(), json!(c));
    }
    m
}
