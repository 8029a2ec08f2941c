//! The executor: carries out a [`Plan`]'s deletions and warning records, only with `--execute`.
//!
//! For every deletion, in wave order:
//! 1. the run lock must still be held ([`RunContext::check_lock`]): a run that lost it stops
//!    deleting at once (another run may hold it now);
//! 2. a `resource-deleted` **intent** event (resource, tags, rule, deadline, run id) is published
//!    and must be acknowledged by Kafka (`acks=all`) — the write-ahead audit — for the resource
//!    *and every part that goes with it* (an Auto Scaling group's instances, an instance's root
//!    volumes). If one is not acknowledged, the run stops deleting at once: nothing is deleted
//!    without a durable record that it was about to be;
//! 3. the inventory removes the resource after re-reading it and asking the [`RemovalGuard`]
//!    (idempotent: already gone is done); a part has no removal of its own, it is waited for;
//! 4. a `resource-deleted` **outcome** event follows (`deleted`, `pending`, `failed`, `skipped`).
//!
//! A resource that a later deletion waits for and whose removal is still in progress (an
//! instance `shutting-down`) is polled, bounded by `waiting.timeout`, until it is gone; if it is
//! not gone in time, its dependants are skipped this run and picked up by the next one. A
//! resource already on its way out (found `shutting-down`, `deleting`, `Terminating`) is not
//! removed a second time, only waited for, so a run that re-runs after a crash never deletes
//! anything twice.
//!
//! A failure on one resource does not stop the others (except an audit failure or a lost lock,
//! which stop all). Failures the provider calls retryable (a security group still in use while an
//! instance finishes terminating, a bucket written to while it was emptied) get up to
//! `retry.passes` more passes, `retry.interval` apart, together with what was skipped because it
//! waited for them (libnuke's retry of failed items); each attempt has its own intent and
//! outcome.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use common::harness::RunContext;
use inventory::{Providers, Removal, Resource, State};
use serde::Serialize;
use serde_json::Value;

use crate::config::TtlConfig;
use crate::guard::RemovalGuard;
use crate::plan::{Outcome, Plan};

/// Provider states that mean "already being deleted": waited for, never removed again.
pub const DELETING_STATES: &[&str] = &[
    "shutting-down",
    "deleting",
    "Terminating",
    "Delete in progress",
    "DELETING",
];

/// The event type of the deletion audit.
pub const AUDIT_EVENT: &str = "resource-deleted";

/// How long to wait for removals in progress, and how often to retry retryable failures.
#[derive(Debug, Clone, Copy)]
pub struct Waiting {
    /// Give up waiting for one resource after this long (its dependants go next run).
    pub timeout: Duration,
    /// Poll the provider this often.
    pub interval: Duration,
    /// Extra passes over retryable failures (0: none).
    pub retry_passes: u32,
    /// Pause before each extra pass.
    pub retry_interval: Duration,
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
    /// Why it is deleted (the policy's reason; for a part, its owner's).
    pub rule: String,
    /// Its deadline (for a part, its owner's).
    pub deadline: String,
    /// 1-based position in the deletion order.
    pub step: usize,
    /// 1 for the first pass, 2… for retries.
    pub attempt: u32,
    /// For a part: the resource it goes with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with: Option<&'a str>,
    /// For outcomes: `deleted`, `pending`, `failed`, `skipped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'a str>,
    /// For failed or skipped outcomes: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For failed outcomes: whether a later attempt may succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// Cost avoided over the horizon (`null` when unknown).
    pub cost_avoided_usd: Option<f64>,
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
    /// Retries made (attempts after the first), for the event and the log.
    pub retries: u32,
    /// Set when the audit sink failed or the run lock was lost: the run stopped deleting.
    pub audit_failure: Option<String>,
    /// Every audit record published (plan, intents, outcomes), in order, for the archive.
    pub audit: Vec<Value>,
    /// What reconciling earlier runs' open intents did, when there were any.
    pub reconciled: Option<crate::reconcile::Reconciled>,
    /// Earlier runs' open intents on resources of this run's plan, by resource: this run's own
    /// `deleted` outcome lists them in `supersedes` (see [`crate::reconcile`]).
    pub handover: BTreeMap<String, Vec<Value>>,
}

/// Publishes an audit record, keeps it for the archive, and says whether Kafka acknowledged it.
pub async fn audit<T: Serialize>(
    ctx: &RunContext<'_, TtlConfig>,
    out: &mut Executed,
    key: &str,
    record: &T,
) -> Result<(), common::Error> {
    let result = ctx.emit(AUDIT_EVENT, key, record).await;
    if let Ok(mut value) = serde_json::to_value(record)
        && let Some(map) = value.as_object_mut()
    {
        map.insert("run_id".into(), Value::String(ctx.run_id.clone()));
        map.insert("acknowledged".into(), Value::Bool(result.is_ok()));
        out.audit.push(value);
    }
    result.map(|_| ())
}

/// Records the warning stages of the plan on their resources, once their warning went out:
/// `notified` lists the resources whose owner's email was accepted (`None`: no emails are
/// configured, the `resource-expiring` event was the warning).
pub async fn record_warnings(
    plan: &Plan,
    providers: &Providers,
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
        match providers
            .write_tags(&item.resource, &[(stage_key.to_string(), value)], &[])
            .await
        {
            Ok(()) => out.stages_recorded.push(item.resource.id.clone()),
            Err(e) => out.errors.push(format!("record warning stage: {e}")),
        }
    }
}

/// How one resource ended in one pass.
#[derive(Debug, Clone, PartialEq)]
enum Ended {
    Deleted,
    /// Accepted and on its way; nothing this run waits for it.
    Pending,
    /// Accepted, but not gone within `waiting.timeout` while something waits for it: pending,
    /// and its dependants wait for the next run.
    Unfinished,
    Failed {
        retryable: bool,
    },
    Skipped,
}

/// Carries out the plan's deletions, wave by wave, with retry passes for retryable failures.
pub async fn delete(
    plan: &Plan,
    providers: &Providers,
    ctx: &RunContext<'_, TtlConfig>,
    waiting: Waiting,
    out: &mut Executed,
) {
    let guard = RemovalGuard::new(&ctx.config.job.policy);
    let order: Vec<usize> = plan.waves.iter().flatten().copied().collect();
    let step_of: HashMap<usize, usize> =
        order.iter().enumerate().map(|(s, &i)| (i, s + 1)).collect();
    let mut todo = order.clone();
    let mut ended: HashMap<usize, Ended> = HashMap::new();
    for attempt in 1..=waiting.retry_passes + 1 {
        if attempt > 1 {
            out.retries += todo.len() as u32;
            tracing::info!(
                attempt,
                resources = todo.len(),
                "retrying retryable failures"
            );
            tokio::time::sleep(waiting.retry_interval).await;
        }
        let this_pass: HashSet<usize> = todo.iter().copied().collect();
        let pass = Pass {
            plan,
            providers,
            ctx,
            guard: &guard,
            waiting,
            attempt,
            step_of: &step_of,
        };
        pass.run(&order, &this_pass, &mut ended, out).await;
        if out.audit_failure.is_some() {
            break;
        }
        // Retried: retryable failures, and what was skipped because it waited for one.
        let retry: HashSet<usize> = this_pass
            .iter()
            .copied()
            .filter(|i| matches!(ended.get(i), Some(Ended::Failed { retryable: true })))
            .collect();
        if retry.is_empty() {
            break;
        }
        todo = order
            .iter()
            .copied()
            .filter(|i| {
                retry.contains(i)
                    || (this_pass.contains(i) && ended.get(i) == Some(&Ended::Skipped))
            })
            .collect();
    }
    for &i in &order {
        let id = plan.items[i].resource.id.clone();
        match ended.get(&i) {
            Some(Ended::Deleted) => out.deleted.push(id),
            Some(Ended::Pending | Ended::Unfinished) => out.pending.push(id),
            _ => {}
        }
    }
}

/// One pass over the deletion order.
struct Pass<'a> {
    plan: &'a Plan,
    providers: &'a Providers,
    ctx: &'a RunContext<'a, TtlConfig>,
    guard: &'a RemovalGuard<'a>,
    waiting: Waiting,
    attempt: u32,
    step_of: &'a HashMap<usize, usize>,
}

impl Pass<'_> {
    async fn run(
        &self,
        order: &[usize],
        this_pass: &HashSet<usize>,
        ended: &mut HashMap<usize, Ended>,
        out: &mut Executed,
    ) {
        let plan = self.plan;
        let index: HashMap<&str, usize> = plan
            .items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.resource.id.as_str(), i))
            .collect();
        // Ids some later removal waits for: only these need waiting on after their removal.
        let awaited: HashSet<&str> = plan
            .items
            .iter()
            .flat_map(|i| i.resource.wait_for.iter().map(String::as_str))
            .collect();
        // Parts going with each owner (transitively: a group's instances' root volumes).
        let mut parts: HashMap<usize, Vec<usize>> = HashMap::new();
        for &i in order {
            if let Outcome::WithOwner(w) = &plan.items[i].outcome
                && let Some(&owner) = index.get(w.owner.as_str())
            {
                parts.entry(owner).or_default().push(i);
            }
        }
        let not_gone = |ended: &HashMap<usize, Ended>, id: &str| {
            index
                .get(id)
                .and_then(|j| ended.get(j))
                .is_some_and(|e| !matches!(e, Ended::Deleted | Ended::Pending))
        };
        for wave in &plan.waves {
            let mut to_wait: Vec<usize> = Vec::new();
            for &i in wave {
                if !this_pass.contains(&i) {
                    continue;
                }
                let r = &plan.items[i].resource;
                if let Some(blocker) = r.wait_for.iter().find(|w| not_gone(ended, w)) {
                    let why = format!("waits for {blocker}, which is not gone yet: retried later");
                    tracing::warn!(resource = %r.id, %why, "deletion skipped");
                    let _ = self
                        .outcome(out, i, "skipped", Some(why.clone()), None)
                        .await;
                    out.not_deleted.insert(r.id.clone(), why);
                    ended.insert(i, Ended::Skipped);
                    continue;
                }
                if let Some(why) = &out.audit_failure {
                    out.not_deleted.insert(r.id.clone(), stopped_reason(why));
                    ended.insert(i, Ended::Skipped);
                    continue;
                }
                if let Outcome::WithOwner(w) = &plan.items[i].outcome {
                    // Its intent went out with its owner's; the owner's removal takes it. An
                    // owner not on its way (not reached, skipped, failed: the part's outcome
                    // then went out with the owner's) leaves nothing to settle here.
                    let owner_on_its_way = index.get(w.owner.as_str()).is_some_and(|o| {
                        matches!(
                            ended.get(o),
                            Some(Ended::Deleted | Ended::Pending | Ended::Unfinished)
                        )
                    });
                    if !owner_on_its_way {
                        continue;
                    }
                    if awaited.contains(r.id.as_str()) {
                        to_wait.push(i);
                    } else {
                        self.settle_without_waiting(out, ended, i).await;
                    }
                    continue;
                }
                // The run lock, before the intent: a run that lost it must not act any more.
                if let Err(lost) = self.ctx.check_lock() {
                    self.stop(
                        out,
                        ended,
                        i,
                        format!("{lost}; deletions stopped"),
                        "run lock lost",
                    );
                    continue;
                }
                // Write-ahead: no acknowledged intent (its own, and its parts'), no deletion.
                let mut with = vec![i];
                let mut k = 0;
                while k < with.len() {
                    with.extend(parts.get(&with[k]).into_iter().flatten().copied());
                    k += 1;
                }
                let mut acknowledged = true;
                for &j in &with {
                    if let Err(e) = self.intent(out, j).await {
                        let why = format!(
                            "write-ahead audit for {} not acknowledged, deletions stopped: {e}",
                            plan.items[j].resource.id
                        );
                        self.stop(out, ended, i, why, "audit sink failed");
                        acknowledged = false;
                        break;
                    }
                }
                if !acknowledged {
                    continue;
                }
                self.ctx.acted();
                let already_deleting = r
                    .state
                    .as_deref()
                    .is_some_and(|s| DELETING_STATES.contains(&s));
                let removal = if already_deleting {
                    tracing::info!(resource = %r.id, state = r.state.as_deref().unwrap_or_default(), "already being deleted: waiting, not removing again");
                    Ok(Removal::Pending {
                        state: r.state.clone().unwrap_or_default(),
                    })
                } else {
                    self.providers.remove(r, self.guard).await
                };
                if removal.is_ok() {
                    // The parts are on their way with it: say so now, their final outcome comes
                    // when they are gone.
                    for &j in with.iter().skip(1) {
                        let _ = self
                            .outcome(
                                out,
                                j,
                                "pending",
                                Some(format!("goes with {}, whose removal was accepted", r.id)),
                                None,
                            )
                            .await;
                    }
                }
                match removal {
                    Ok(Removal::Done) => {
                        tracing::info!(resource = %r.id, "deleted");
                        self.finish(out, ended, i, Ended::Deleted, None).await;
                    }
                    Ok(Removal::Pending { state }) => {
                        tracing::info!(resource = %r.id, %state, "removal in progress");
                        if awaited.contains(r.id.as_str()) {
                            // Said at once, not after the wait: a run killed while it waits
                            // leaves an audit that matches what AWS was asked to do.
                            let _ = self
                                .outcome(
                                    out,
                                    i,
                                    "pending",
                                    Some(format!("removal accepted ({state}); waiting for it")),
                                    None,
                                )
                                .await;
                            to_wait.push(i);
                        } else {
                            self.settle_without_waiting(out, ended, i).await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(resource = %r.id, error = %e, retryable = e.retryable, "deletion failed");
                        let retry_later = e.retryable && self.attempt <= self.waiting.retry_passes;
                        if !retry_later {
                            out.errors.push(e.to_string());
                        }
                        out.not_deleted.insert(r.id.clone(), e.to_string());
                        ended.insert(
                            i,
                            Ended::Failed {
                                retryable: e.retryable,
                            },
                        );
                        let _ = self
                            .outcome(out, i, "failed", Some(e.to_string()), Some(e.retryable))
                            .await;
                        // Its parts' intents went out with its own: they end with it.
                        for &j in with.iter().skip(1) {
                            ended.insert(
                                j,
                                Ended::Failed {
                                    retryable: e.retryable,
                                },
                            );
                            let why = format!("goes with {}, whose removal failed: {e}", r.id);
                            let _ = self
                                .outcome(out, j, "failed", Some(why), Some(e.retryable))
                                .await;
                        }
                    }
                }
            }
            // Bounded wait for removals that later waves depend on.
            for i in to_wait {
                let r = &plan.items[i].resource;
                match wait_gone(self.providers, r, self.waiting).await {
                    Ok(()) => self.finish(out, ended, i, Ended::Deleted, None).await,
                    Err(why) => {
                        tracing::warn!(resource = %r.id, %why, "removal did not finish in time");
                        // Not gone: what waits for it goes next run.
                        ended.insert(i, Ended::Unfinished);
                        let _ = self.outcome(out, i, "pending", Some(why), None).await;
                    }
                }
            }
        }
    }

    /// A removal that nothing waits for: one look tells whether it is already gone (a namespace
    /// deleted at once), for an accurate outcome; otherwise it is pending and the next run
    /// finishes it.
    async fn settle_without_waiting(
        &self,
        out: &mut Executed,
        ended: &mut HashMap<usize, Ended>,
        i: usize,
    ) {
        let r = &self.plan.items[i].resource;
        match self.providers.state(r).await {
            Ok(State::Gone) => self.finish(out, ended, i, Ended::Deleted, None).await,
            Ok(State::Present(state)) => {
                self.finish(out, ended, i, Ended::Pending, Some(state))
                    .await
            }
            Err(e) => {
                self.finish(out, ended, i, Ended::Pending, Some(e.to_string()))
                    .await
            }
        }
    }

    async fn finish(
        &self,
        out: &mut Executed,
        ended: &mut HashMap<usize, Ended>,
        i: usize,
        how: Ended,
        detail: Option<String>,
    ) {
        let id = self.plan.items[i].resource.id.clone();
        out.not_deleted.remove(&id);
        let result = if how == Ended::Deleted {
            "deleted"
        } else {
            "pending"
        };
        ended.insert(i, how);
        if let Err(e) = self.outcome(out, i, result, detail, None).await {
            out.errors.push(format!("outcome event for {id}: {e}"));
        }
    }

    /// Stops every further deletion of this run.
    fn stop(
        &self,
        out: &mut Executed,
        ended: &mut HashMap<usize, Ended>,
        i: usize,
        why: String,
        short: &str,
    ) {
        tracing::error!(%why);
        out.audit_failure = Some(why);
        out.not_deleted
            .insert(self.plan.items[i].resource.id.clone(), short.to_string());
        ended.insert(i, Ended::Skipped);
    }

    fn event<'e>(
        &self,
        i: usize,
        phase: &'e str,
        result: Option<&'e str>,
        error: Option<String>,
        retryable: Option<bool>,
    ) -> DeletionEvent<'e>
    where
        Self: 'e,
    {
        let item = &self.plan.items[i];
        let (rule, with) = match &item.outcome {
            Outcome::Delete(b) => (b.1.reason.clone(), None),
            Outcome::WithOwner(w) => (
                format!("goes with {}: {}", w.owner, w.owner_reason),
                Some(w.owner.as_str()),
            ),
            _ => (item.reason(), None),
        };
        DeletionEvent {
            phase,
            resource: &item.resource.id,
            kind: item.resource.kind,
            tags: &item.resource.tags,
            rule,
            deadline: item
                .removal_deadline()
                .map(|d| d.to_string())
                .unwrap_or_default(),
            step: self.step_of.get(&i).copied().unwrap_or(0),
            attempt: self.attempt,
            with,
            result,
            error,
            retryable,
            cost_avoided_usd: item.estimate().and_then(|e| e.avoided_usd),
        }
    }

    async fn intent(&self, out: &mut Executed, i: usize) -> Result<(), common::Error> {
        let event = self.event(i, "intent", None, None, None);
        audit(self.ctx, out, &self.plan.items[i].resource.id, &event).await
    }

    async fn outcome(
        &self,
        out: &mut Executed,
        i: usize,
        result: &str,
        error: Option<String>,
        retryable: Option<bool>,
    ) -> Result<(), common::Error> {
        let event = self.event(i, "outcome", Some(result), error, retryable);
        let id = &self.plan.items[i].resource.id;
        // The removal recorded once: the earlier runs' open intents on it close with it.
        let earlier = match result {
            "deleted" => out.handover.remove(id),
            _ => None,
        };
        let with_supersedes = earlier.as_ref().and_then(|refs| {
            let mut record = serde_json::to_value(&event).ok()?;
            record
                .as_object_mut()?
                .insert("supersedes".into(), Value::Array(refs.clone()));
            Some(record)
        });
        let r = match &with_supersedes {
            Some(record) => audit(self.ctx, out, id, record).await,
            None => audit(self.ctx, out, id, &event).await,
        };
        if let Some(refs) = earlier
            && (r.is_err() || with_supersedes.is_none())
        {
            // Not closed with it: they stay open for the next run.
            out.handover.insert(id.clone(), refs);
        }
        if let Err(e) = &r {
            out.errors.push(format!(
                "outcome event for {}: {e}",
                self.plan.items[i].resource.id
            ));
        }
        r
    }
}

/// What a deletion skipped after the run stopped acting is told.
fn stopped_reason(why: &str) -> String {
    if why.contains("run lock") {
        "run lock lost earlier in this run".to_string()
    } else {
        "audit sink failed earlier in this run".to_string()
    }
}

/// Polls until the resource is gone, bounded by `waiting.timeout`.
async fn wait_gone(providers: &Providers, r: &Resource, waiting: Waiting) -> Result<(), String> {
    let started = Instant::now();
    loop {
        match providers.state(r).await {
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
