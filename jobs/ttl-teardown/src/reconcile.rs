//! Closing the audit trail of earlier runs: every `resource-deleted` intent gets an outcome.
//!
//! An intent without an outcome means "not done" — until a run is killed between the removal
//! call and its outcome event. Then the resource may be gone (an instance terminated), the next
//! run no longer lists it, and the audit would say forever that it was never deleted. So an
//! executing run first reads the audit topic back over `job.reconcile.lookback` (by the
//! broker's timestamps, on the system clock) and finds the intents of other runs with no final
//! outcome for the same run, resource and attempt (nor a record closing them: a reconciliation
//! `reconciles: {run_id, attempt}`, or a `deleted` outcome listing them in `supersedes`).
//!
//! Leaving an orphan open is always safe (a later run looks again); closing it wrongly is not.
//! So, per resource, as it is now:
//! - **gone or on its way out, and in this run's deletion order** (its listing saw it) →
//!   nothing is published now: the orphans are handed to the executor, and this run's own
//!   `deleted` outcome, when it comes, lists them in `supersedes` — one event recording the
//!   removal once and closing them with it. If this run does not get there (killed, audit sink
//!   down, skipped, failed, still pending), they stay open for the next run. (Closing them up
//!   front, the fault suite's kill sweep and a review found, recorded the removal twice or, if
//!   this run then stopped, not at all.)
//! - **on its way out, not planned** → left open until it is gone (or planned again);
//! - **gone** → the newest orphan `deleted`, older ones `superseded`, and one after which
//!   another run recorded `deleted` (its reconciliation could not read the topic) `superseded`:
//!   one removal, one `deleted`;
//! - **still there and live** → `not-done`: the earlier run stopped before removing it (this
//!   run may delete it, with an intent and outcome of its own);
//! - in no configured scope, or unreadable → left open (logged): nothing is claimed that was
//!   not seen.
//!
//! Every record is published under the run lock (checked before each), as deletions are.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::harness::RunContext;
use inventory::Providers;
use serde_json::{Value, json};

use crate::config::TtlConfig;
use crate::execute::{AUDIT_EVENT, DELETING_STATES, Executed, audit};

/// An intent of an earlier run with no outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// The run that published the intent.
    pub run_id: String,
    /// The resource.
    pub resource: String,
    /// Its kind.
    pub kind: String,
    /// The attempt of the intent.
    pub attempt: u64,
    /// Whether a `deleted` outcome for the resource (of another run) came after the intent.
    pub deleted_later: bool,
}

impl Orphan {
    /// The reference a closing record carries: `{run_id, attempt}`.
    pub fn reference(&self) -> Value {
        json!({"run_id": self.run_id, "attempt": self.attempt})
    }
}

/// The intents in `payloads` (envelopes of `resource-deleted` events, ordered here by their
/// `emitted_at`) that no final outcome follows: neither the run's own for that attempt, nor a reconciliation record,
/// nor a `deleted` outcome naming it in `supersedes`. The current run's own records and dry
/// runs are ignored. Oldest intent first.
pub fn orphans(payloads: &[Vec<u8>], job_name: &str, current_run: &str) -> Vec<Orphan> {
    // (run, resource, attempt) → (position of the intent, the orphan)
    let mut open: BTreeMap<(String, String, u64), (usize, Orphan)> = BTreeMap::new();
    let closing = |v: &Value| {
        (
            v["run_id"].as_str().unwrap_or_default().to_string(),
            v["attempt"].as_u64().unwrap_or(1),
        )
    };
    // In the order they were emitted: the topic's order holds per partition only.
    let mut events: Vec<(Option<jiff::Timestamp>, Value)> = payloads
        .iter()
        .filter_map(|p| serde_json::from_slice::<Value>(p).ok())
        .map(|e| (e["emitted_at"].as_str().and_then(|t| t.parse().ok()), e))
        .collect();
    events.sort_by_key(|(at, _)| *at);
    for (at, (_, e)) in events.into_iter().enumerate() {
        if e["event_type"] != AUDIT_EVENT || e["job_name"] != job_name || e["dry_run"] != false {
            continue;
        }
        let (Some(run), Some(resource)) = (e["run_id"].as_str(), e["resource"].as_str()) else {
            continue;
        };
        let attempt = e["attempt"].as_u64().unwrap_or(1);
        match e["phase"].as_str() {
            Some("intent") if run != current_run => {
                open.insert(
                    (run.to_string(), resource.to_string(), attempt),
                    (
                        at,
                        Orphan {
                            run_id: run.to_string(),
                            resource: resource.to_string(),
                            kind: e["kind"].as_str().unwrap_or_default().to_string(),
                            attempt,
                            deleted_later: false,
                        },
                    ),
                );
            }
            // "pending" says a removal was accepted, not that it finished: the intent stays
            // open until its final outcome (or a reconciliation that saw the resource gone).
            Some("outcome") if e["result"] != "pending" => {
                let (r, a) = if e["reconciles"].is_object() {
                    closing(&e["reconciles"])
                } else {
                    (run.to_string(), attempt)
                };
                open.remove(&(r, resource.to_string(), a));
                let supersedes = e["supersedes"]
                    .as_array()
                    .filter(|_| e["result"] == "deleted");
                for earlier in supersedes.into_iter().flatten() {
                    let (r, a) = closing(earlier);
                    open.remove(&(r, resource.to_string(), a));
                }
                if e["result"] == "deleted" && !e["reconciles"].is_object() {
                    for ((_, res, _), (intent_at, o)) in open.iter_mut() {
                        if res == resource && *intent_at < at {
                            o.deleted_later = true;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut found: Vec<(usize, Orphan)> = open.into_values().collect();
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, o)| o).collect()
}

/// A resource of an orphan as reconciling finds it.
enum Seen {
    Gone,
    /// In one of [`DELETING_STATES`].
    Removing(String),
    Live(String),
}

/// What reconciling did (the event's `details.reconciled`).
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Reconciled {
    /// Orphans found.
    pub found: usize,
    /// Closed as `deleted`.
    pub deleted: usize,
    /// Closed as `not-done`.
    pub not_done: usize,
    /// Closed as `superseded` (an older orphan of a removal, or one recorded deleted later).
    pub superseded: usize,
    /// Handed to this run's executor: in its deletion order.
    pub handed_over: usize,
    /// Left open (not in a configured scope, unreadable, or its removal still under way).
    pub left_open: usize,
}

/// Reads the audit topic back and closes the orphans it finds (see the module docs); `planned`
/// is this run's deletion order. The orphans of planned resources go to `out.handover`. An error
/// reading the topic is returned for the run's report; it changes nothing.
pub async fn reconcile(
    ctx: &RunContext<'_, TtlConfig>,
    providers: &Providers,
    planned: &HashSet<&str>,
    out: &mut Executed,
) -> Result<Reconciled, String> {
    let settings = &ctx.config.job.reconcile;
    let lookback =
        jiff::SignedDuration::try_from(settings.lookback.0).unwrap_or(jiff::SignedDuration::MAX);
    let since = jiff::Timestamp::now()
        .checked_sub(lookback)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let topic = ctx.publisher.topic_for(AUDIT_EVENT);
    let payloads = common::kafka::read_recent(&ctx.config.kafka, &topic, since, settings.timeout.0)
        .await
        .map_err(|e| format!("reconciling earlier runs' intents: {e}"))?;
    let orphans = orphans(&payloads, ctx.job_name, &ctx.run_id);
    let mut done = Reconciled {
        found: orphans.len(),
        ..Reconciled::default()
    };
    // Per resource, oldest orphan first.
    let mut by_resource: BTreeMap<&str, Vec<&Orphan>> = BTreeMap::new();
    for o in &orphans {
        by_resource.entry(o.resource.as_str()).or_default().push(o);
    }
    for (resource, group) in by_resource {
        if !providers.covers(resource) {
            tracing::warn!(
                resource,
                "earlier intent left open: no configured scope covers it"
            );
            done.left_open += group.len();
            continue;
        }
        let state = match providers.get(resource).await {
            Ok(None) => Seen::Gone,
            Ok(Some(r)) => match r.state.as_deref() {
                Some(s) if DELETING_STATES.contains(&s) => Seen::Removing(s.to_string()),
                state => Seen::Live(state.unwrap_or("present").to_string()),
            },
            Err(e) => {
                tracing::warn!(resource, error = %e, "earlier intent left open: cannot read the resource");
                done.left_open += group.len();
                continue;
            }
        };
        // (whether the removal was made, what was seen)
        let (removed, seen) = match state {
            // Gone or going, and planned by this run (its listing saw it): this run's own
            // `deleted` closes them.
            Seen::Gone | Seen::Removing(_) if planned.contains(resource) => {
                tracing::info!(
                    resource,
                    orphans = group.len(),
                    "earlier intent handed to this run: its own outcome closes it"
                );
                out.handover.insert(
                    resource.to_string(),
                    group.iter().map(|o| o.reference()).collect(),
                );
                done.handed_over += group.len();
                continue;
            }
            // Not finished, and not this run's to finish: closed once it is seen gone (or by
            // the run that plans it again), so that one removal has one `deleted`.
            Seen::Removing(s) => {
                tracing::info!(resource, state = %s, "earlier intent left open: its removal is still under way");
                done.left_open += group.len();
                continue;
            }
            Seen::Gone => (true, "gone when reconciled".to_string()),
            Seen::Live(s) => (
                false,
                format!(
                    "still there when reconciled ({s}): the earlier run stopped before removing it"
                ),
            ),
        };
        let newest = group.len() - 1;
        for (n, o) in group.iter().enumerate() {
            let (result, detail) = if o.deleted_later {
                ("superseded", "a later run recorded it deleted".to_string())
            } else if !removed {
                ("not-done", seen.clone())
            } else if n < newest || group.iter().any(|g| g.deleted_later) {
                (
                    "superseded",
                    format!("{seen}; one removal, recorded once, with a later intent"),
                )
            } else {
                ("deleted", seen.clone())
            };
            if let Err(lost) = ctx.check_lock() {
                return Err(format!("reconciling stopped: {lost}"));
            }
            let record = json!({
                "phase": "outcome",
                "resource": o.resource,
                "kind": o.kind,
                "result": result,
                "error": detail,
                "step": 0,
                "attempt": o.attempt,
                "reconciles": o.reference(),
            });
            if let Err(e) = audit(ctx, out, &o.resource, &record).await {
                return Err(format!("reconciling {}: {e}", o.resource));
            }
            tracing::info!(resource = %o.resource, run = %o.run_id, result, "earlier intent reconciled");
            match result {
                "deleted" => done.deleted += 1,
                "superseded" => done.superseded += 1,
                _ => done.not_done += 1,
            }
        }
    }
    Ok(done)
}

/// The default look-back: a week of runs.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(7 * 24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    fn e(run: &str, phase: &str, resource: &str, attempt: u64, extra: Value) -> Vec<u8> {
        let mut v = json!({"event_type": "resource-deleted", "job_name": "ttl-teardown",
            "dry_run": false, "run_id": run, "phase": phase, "resource": resource,
            "kind": "ec2-instance", "attempt": attempt});
        if let (Some(m), Some(x)) = (v.as_object_mut(), extra.as_object()) {
            m.extend(x.clone());
        }
        serde_json::to_vec(&v).expect("json")
    }

    #[test]
    fn an_intent_is_open_until_its_outcome_or_a_reconciliation_closes_it() {
        let log = vec![
            e("r1", "intent", "a", 1, json!({})),
            e("r1", "outcome", "a", 1, json!({"result": "deleted"})),
            e("r1", "intent", "b", 1, json!({})),
            e("r1", "intent", "c", 1, json!({})),
            e("r1", "outcome", "c", 1, json!({"result": "failed"})),
            e("r1", "intent", "c", 2, json!({})),
            e("r1", "outcome", "c", 2, json!({"result": "pending"})),
            e(
                "r2",
                "outcome",
                "b",
                1,
                json!({"result": "deleted", "reconciles": {"run_id": "r1", "attempt": 1}}),
            ),
            e("r3", "intent", "d", 1, json!({})),
            e("r3", "intent", "e", 1, json!({})),
            e(
                "r4",
                "outcome",
                "e",
                1,
                json!({"result": "superseded", "reconciles": {"run_id": "r3", "attempt": 1}}),
            ),
            // A dry run's and the current run's records are not the trail to close.
            e("r4", "intent", "x", 1, json!({"dry_run": true})),
            e("now", "intent", "y", 1, json!({})),
        ];
        let open = orphans(&log, "ttl-teardown", "now");
        let keys: Vec<(&str, &str, u64)> = open
            .iter()
            .map(|o| (o.run_id.as_str(), o.resource.as_str(), o.attempt))
            .collect();
        assert_eq!(keys, [("r1", "c", 2), ("r3", "d", 1)]);
    }

    #[test]
    fn the_trail_is_read_in_the_order_it_was_emitted_not_the_order_of_partitions() {
        let at = |t: &str| json!({"emitted_at": t});
        let mut outcome = at("2026-12-01T10:00:02.5Z");
        outcome["result"] = json!("deleted");
        // Read back partition by partition: the outcome's partition first.
        let log = vec![
            e("r1", "outcome", "a", 1, outcome),
            e("r1", "intent", "a", 1, at("2026-12-01T10:00:01.25Z")),
        ];
        assert!(orphans(&log, "ttl-teardown", "now").is_empty());
    }

    #[test]
    fn a_deleted_outcome_closes_what_it_supersedes_and_marks_older_orphans() {
        let log = vec![
            e("r1", "intent", "a", 1, json!({})),
            e("r2", "intent", "a", 1, json!({})),
            // r2's run recorded the removal once, closing r1's orphan with it.
            e(
                "r2",
                "outcome",
                "a",
                1,
                json!({"result": "deleted", "supersedes": [{"run_id": "r1", "attempt": 1}]}),
            ),
            e("r1", "intent", "b", 1, json!({})),
            // r3 deleted b without seeing r1's orphan (its reconciliation failed).
            e("r3", "intent", "b", 1, json!({})),
            e("r3", "outcome", "b", 1, json!({"result": "deleted"})),
            e("r4", "intent", "b", 1, json!({})),
        ];
        let open = orphans(&log, "ttl-teardown", "now");
        let got: Vec<(&str, &str, bool)> = open
            .iter()
            .map(|o| (o.run_id.as_str(), o.resource.as_str(), o.deleted_later))
            .collect();
        assert_eq!(got, [("r1", "b", true), ("r4", "b", false)]);
    }
}
