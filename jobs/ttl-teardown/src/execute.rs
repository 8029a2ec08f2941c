//! The executor: carries out a [`Plan`]'s deletions and warning records, only with `--execute`.
//!
//! For every deletion, in wave order:
//! 1. a `resource-deleted` **intent** event (resource, tags, rule, deadline, run id) is published
//!    and must be acknowledged by Kafka (`acks=all`) — the write-ahead audit. If it is not, the run
//!    stops deleting at once: nothing is deleted without a durable record that it was about to be;
//! 2. the provider removes the resource (idempotent: already gone is done);
//! 3. a `resource-deleted` **outcome** event follows (`deleted`, `pending`, `failed`, `skipped`).
//!
//! A resource that another deletion waits for and whose removal is still in progress (an instance
//! `shutting-down`) is polled, bounded by `wait_timeout`, until it is gone; if it is not gone in
//! time, its dependants are skipped this run and picked up by the next one. A resource already on
//! its way out (found `shutting-down`, `deleting`, `Terminating`) is not removed a second time,
//! only waited for, so a run that re-runs after a crash never deletes anything twice.
//! A failure on one resource does not stop the others (except an audit failure, which stops all).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use common::harness::RunContext;
use serde::Serialize;

use crate::config::TtlConfig;
use crate::inventory::Resource;
use crate::plan::{Outcome, Plan};
use crate::provider::{ProviderError, Removal, State};

/// Provider states that mean "already being deleted": waited for, never removed again.
pub const DELETING_STATES: &[&str] = &["shutting-down", "deleting", "Terminating"];

/// Whatever can change resources: the providers, dispatched by the resource's scope.
pub trait Actuator {
    /// Writes tags (AWS) or prefixed annotations (Kubernetes).
    fn set_tags(
        &self,
        r: &Resource,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<(), ProviderError>>;
    /// Removes a resource.
    fn remove(&self, r: &Resource) -> impl Future<Output = Result<Removal, ProviderError>>;
    /// Reads a resource's current state.
    fn state(&self, r: &Resource) -> impl Future<Output = Result<State, ProviderError>>;
}

/// How long to wait for removals in progress.
#[derive(Debug, Clone, Copy)]
pub struct Waiting {
    /// Give up waiting for one resource after this long (its dependants go next run).
    pub timeout: Duration,
    /// Poll the provider this often.
    pub interval: Duration,
}

/// The `resource-deleted` event, in both phases.
#[derive(Debug, Clone, Serialize)]
pub struct DeletionEvent<'a> {
    /// `intent` (before) or `outcome` (after).
    pub phase: &'a str,
    /// The resource id.
    pub resource: &'a str,
    /// Registry kind.
    pub kind: &'a str,
    /// Its tags when planned.
    pub tags: &'a BTreeMap<String, String>,
    /// Why it is deleted (the policy's reason).
    pub rule: String,
    /// Its deadline.
    pub deadline: String,
    /// 1-based position in the deletion order.
    pub step: usize,
    /// For outcomes: `deleted`, `pending`, `failed`, `skipped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'a str>,
    /// For failed or skipped outcomes: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Cost avoided over the horizon.
    pub cost_avoided_usd: f64,
}

/// What the executor did, per resource id.
#[derive(Debug, Default)]
pub struct Executed {
    /// Resources confirmed gone, in order.
    pub deleted: Vec<String>,
    /// Removals accepted but not finished when the run ended.
    pub pending: Vec<String>,
    /// Resource id → why it was not deleted this run (failed, skipped).
    pub not_deleted: BTreeMap<String, String>,
    /// Warning stages recorded on resources.
    pub stages_recorded: Vec<String>,
    /// Owner notices sent (for the event's `alerts_sent`).
    pub alerts: Vec<common::event::AlertSent>,
    /// Item-level errors for the event.
    pub errors: Vec<String>,
    /// Set when the audit sink failed or the run lock was lost: the run stopped deleting.
    pub audit_failure: Option<String>,
}

/// Records the warning stages of the plan on their resources, once their warning went out:
/// `notified` lists the resources whose owner's email was accepted (`None`: no emails are
/// configured, the `resource-expiring` event was the warning).
pub async fn record_warnings<A: Actuator>(
    plan: &Plan,
    actuator: &A,
    ctx: &RunContext<'_, TtlConfig>,
    notified: Option<&HashSet<String>>,
    out: &mut Executed,
) {
    let stage_key = ctx.config.job.policy.keys.notified_stage.as_str();
    for item in &plan.items {
        let Outcome::Warn(b) = &item.outcome else {
            continue;
        };
        if notified.is_some_and(|n| !n.contains(&item.resource.id)) {
            continue;
        }
        let Some(value) = b.1.notified_tag_value() else {
            continue;
        };
        if let Err(lost) = ctx.check_lock() {
            out.errors
                .push(format!("warning stages not recorded: {lost}"));
            return;
        }
        ctx.acted();
        match actuator
            .set_tags(&item.resource, &[(stage_key.to_string(), value)])
            .await
        {
            Ok(()) => out.stages_recorded.push(item.resource.id.clone()),
            Err(e) => out.errors.push(format!("record warning stage: {e}")),
        }
    }
}

/// Carries out the plan's deletions, wave by wave.
pub async fn delete<A: Actuator>(
    plan: &Plan,
    actuator: &A,
    ctx: &RunContext<'_, TtlConfig>,
    waiting: Waiting,
) -> Executed {
    let mut out = Executed::default();
    // Ids some later deletion waits for: only these need waiting on after their removal.
    let awaited: HashSet<&str> = plan
        .items
        .iter()
        .flat_map(|i| i.resource.wait_for.iter().map(String::as_str))
        .collect();
    let in_plan: HashMap<&str, usize> = plan
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.resource.id.as_str(), i))
        .collect();
    let mut not_gone: HashSet<String> = HashSet::new();
    let mut step = 0;

    for wave in &plan.waves {
        let mut to_wait: Vec<&Resource> = Vec::new();
        for &i in wave {
            step += 1;
            let item = &plan.items[i];
            let r = &item.resource;
            let Outcome::Delete(b) = &item.outcome else {
                continue;
            };
            let (decision, estimate) = (&b.1, &b.2);
            let event = |phase, result, error| DeletionEvent {
                phase,
                resource: &r.id,
                kind: r.kind,
                tags: &r.tags,
                rule: decision.reason.clone(),
                deadline: decision.deadline.to_string(),
                step,
                result,
                error,
                cost_avoided_usd: estimate.avoided_usd,
            };

            if let Some(blocker) = r.wait_for.iter().find(|w| not_gone.contains(*w)) {
                let why = format!("waits for {blocker}, which is not gone yet: retried next run");
                tracing::warn!(resource = %r.id, %why, "deletion skipped");
                out.not_deleted.insert(r.id.clone(), why.clone());
                not_gone.insert(r.id.clone());
                let _ = ctx
                    .emit(
                        "resource-deleted",
                        &r.id,
                        event("outcome", Some("skipped"), Some(why)),
                    )
                    .await;
                continue;
            }
            if let Some(why) = &out.audit_failure {
                out.not_deleted.insert(r.id.clone(), stopped_reason(why));
                not_gone.insert(r.id.clone());
                continue;
            }
            // The run lock, before the intent: a run that lost it must not act any more (another
            // run may hold it now and plan the same resources).
            if let Err(lost) = ctx.check_lock() {
                let why = format!("{lost}; deletions stopped");
                tracing::error!(%why);
                out.audit_failure = Some(why);
                out.not_deleted.insert(r.id.clone(), "run lock lost".into());
                not_gone.insert(r.id.clone());
                continue;
            }

            // Write-ahead: no acknowledged intent, no deletion.
            if let Err(e) = ctx
                .emit("resource-deleted", &r.id, event("intent", None, None))
                .await
            {
                let why = format!(
                    "write-ahead audit for {} not acknowledged, deletions stopped: {e}",
                    r.id
                );
                tracing::error!(%why);
                out.audit_failure = Some(why);
                out.not_deleted
                    .insert(r.id.clone(), "audit sink failed".into());
                not_gone.insert(r.id.clone());
                continue;
            }

            let already_deleting = r
                .state
                .as_deref()
                .is_some_and(|s| DELETING_STATES.contains(&s));
            ctx.acted();
            let removal = if already_deleting {
                tracing::info!(resource = %r.id, state = r.state.as_deref().unwrap_or_default(), "already being deleted: waiting, not removing again");
                Ok(Removal::Pending {
                    state: r.state.clone().unwrap_or_default(),
                })
            } else {
                actuator.remove(r).await
            };
            match removal {
                Ok(Removal::Done) => {
                    tracing::info!(resource = %r.id, "deleted");
                    out.deleted.push(r.id.clone());
                    publish_outcome(
                        ctx,
                        &mut out,
                        &r.id,
                        event("outcome", Some("deleted"), None),
                    )
                    .await;
                }
                Ok(Removal::Pending { state }) => {
                    tracing::info!(resource = %r.id, %state, "removal in progress");
                    if awaited.contains(r.id.as_str()) {
                        to_wait.push(r);
                    } else if let Ok(State::Gone) = actuator.state(r).await {
                        // Nothing waits for it, so no polling; one look tells whether it is
                        // already gone (a namespace deleted at once), for an accurate outcome.
                        out.deleted.push(r.id.clone());
                        let done = event("outcome", Some("deleted"), None);
                        publish_outcome(ctx, &mut out, &r.id, done).await;
                    } else {
                        out.pending.push(r.id.clone());
                        let pending = event("outcome", Some("pending"), Some(state));
                        publish_outcome(ctx, &mut out, &r.id, pending).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(resource = %r.id, error = %e, "deletion failed");
                    out.errors.push(e.to_string());
                    out.not_deleted.insert(r.id.clone(), e.to_string());
                    not_gone.insert(r.id.clone());
                    publish_outcome(
                        ctx,
                        &mut out,
                        &r.id,
                        event("outcome", Some("failed"), Some(e.to_string())),
                    )
                    .await;
                }
            }
        }

        // Bounded wait for removals that later waves depend on.
        for r in to_wait {
            let Some(&i) = in_plan.get(r.id.as_str()) else {
                continue;
            };
            let Outcome::Delete(b) = &plan.items[i].outcome else {
                continue;
            };
            let event = |result, error| DeletionEvent {
                phase: "outcome",
                resource: &r.id,
                kind: r.kind,
                tags: &r.tags,
                rule: b.1.reason.clone(),
                deadline: b.1.deadline.to_string(),
                step: 0,
                result,
                error,
                cost_avoided_usd: b.2.avoided_usd,
            };
            match wait_gone(actuator, r, waiting).await {
                Ok(()) => {
                    out.deleted.push(r.id.clone());
                    publish_outcome(ctx, &mut out, &r.id, event(Some("deleted"), None)).await;
                }
                Err(why) => {
                    tracing::warn!(resource = %r.id, %why, "removal did not finish in time");
                    out.pending.push(r.id.clone());
                    not_gone.insert(r.id.clone());
                    publish_outcome(ctx, &mut out, &r.id, event(Some("pending"), Some(why))).await;
                }
            }
        }
    }
    out
}

/// What a deletion skipped after the run stopped acting is told.
fn stopped_reason(why: &str) -> String {
    if why.contains("run lock") {
        "run lock lost earlier in this run".to_string()
    } else {
        "audit sink failed earlier in this run".to_string()
    }
}

async fn publish_outcome(
    ctx: &RunContext<'_, TtlConfig>,
    out: &mut Executed,
    id: &str,
    event: DeletionEvent<'_>,
) {
    if let Err(e) = ctx.emit("resource-deleted", id, event).await {
        out.errors.push(format!("outcome event for {id}: {e}"));
    }
}

/// Polls until the resource is gone, bounded by `waiting.timeout`.
async fn wait_gone<A: Actuator>(
    actuator: &A,
    r: &Resource,
    waiting: Waiting,
) -> Result<(), String> {
    let started = Instant::now();
    loop {
        match actuator.state(r).await {
            Ok(State::Gone) => return Ok(()),
            Ok(State::Present(s)) if started.elapsed() >= waiting.timeout => {
                return Err(format!(
                    "still {s} after {:?}: dependants wait for the next run",
                    waiting.timeout
                ));
            }
            Err(e) if started.elapsed() >= waiting.timeout => return Err(e.to_string()),
            _ => tokio::time::sleep(waiting.interval).await,
        }
    }
}
