//! Closing the audit trail of earlier runs: every `resource-deleted` intent gets an outcome.
//!
//! An intent without an outcome means "not done" — until a run is killed between the removal
//! call and its outcome event. Then the resource may be gone (an instance terminated), the next
//! run no longer lists it, and the audit would say forever that it was never deleted. So an
//! executing run first reads the audit topic back over `job.reconcile.lookback` (by the
//! broker's timestamps, on the system clock), finds the intents of other runs with no outcome
//! for the same run, resource and attempt (and no reconciliation record already closing them),
//! looks at each resource as it is now, and publishes the outcome that is true, marked
//! `reconciles: {run_id, attempt}`:
//! - gone, or on its way out (a removal in progress) → `deleted`: the earlier run's removal was
//!   made;
//! - gone or on its way out, but in this run's deletion order (its listing saw it before it
//!   went) → `superseded`: this run carries the removal through with an intent and outcome of
//!   its own, so the resource still ends with exactly one `deleted` (found by the fault suite's
//!   kill sweep: both runs used to record it);
//! - still there and live → `not-done`: the earlier run stopped before removing it (this run
//!   may delete it, with an intent and outcome of its own);
//! - in no configured scope, or unreadable → left open (logged): nothing is claimed that was not
//!   seen.

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
}

/// The intents in `payloads` (envelopes of `resource-deleted` events, oldest first) that no
/// final outcome follows: neither the run's own for that attempt, nor a reconciliation record. The
/// current run's own records and dry runs are ignored.
pub fn orphans(payloads: &[Vec<u8>], job_name: &str, current_run: &str) -> Vec<Orphan> {
    let mut open: BTreeMap<(String, String, u64), Orphan> = BTreeMap::new();
    for payload in payloads {
        let Ok(e) = serde_json::from_slice::<Value>(payload) else {
            continue;
        };
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
                    Orphan {
                        run_id: run.to_string(),
                        resource: resource.to_string(),
                        kind: e["kind"].as_str().unwrap_or_default().to_string(),
                        attempt,
                    },
                );
            }
            // "pending" says a removal was accepted, not that it finished: the intent stays
            // open until its final outcome (or a reconciliation that saw the resource gone).
            Some("outcome") if e["result"] != "pending" => {
                let closes = match e["reconciles"]["run_id"].as_str() {
                    Some(earlier) => (
                        earlier.to_string(),
                        e["reconciles"]["attempt"].as_u64().unwrap_or(1),
                    ),
                    None => (run.to_string(), attempt),
                };
                open.remove(&(closes.0, resource.to_string(), closes.1));
            }
            _ => {}
        }
    }
    open.into_values().collect()
}

/// What reconciling did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Orphans found.
    pub found: usize,
    /// Closed as `deleted`.
    pub deleted: usize,
    /// Closed as `not-done`.
    pub not_done: usize,
    /// Closed as `superseded`: this run planned the resource and records its outcome.
    pub superseded: usize,
    /// Left open (not in a configured scope, unreadable).
    pub left_open: usize,
}

/// Reads the audit topic back and closes the orphans it finds (see the module docs); `planned`
/// is this run's deletion order. An error reading the topic is returned for the run's report;
/// it changes nothing.
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
    for o in orphans {
        if !providers.covers(&o.resource) {
            tracing::warn!(resource = %o.resource, run = %o.run_id, "earlier intent left open: no configured scope covers it");
            done.left_open += 1;
            continue;
        }
        // (whether the earlier removal was made, what was seen)
        let (removed, seen) = match providers.get(&o.resource).await {
            Ok(None) => (true, "gone when reconciled".to_string()),
            Ok(Some(r)) => match r.state.as_deref() {
                Some(s) if DELETING_STATES.contains(&s) => {
                    (true, format!("removal under way when reconciled ({s})"))
                }
                state => (
                    false,
                    format!(
                        "still there when reconciled ({}): the earlier run stopped before removing it",
                        state.unwrap_or("present")
                    ),
                ),
            },
            Err(e) => {
                tracing::warn!(resource = %o.resource, error = %e, "earlier intent left open: cannot read the resource");
                done.left_open += 1;
                continue;
            }
        };
        let (result, detail) = if !removed {
            ("not-done", seen)
        } else if planned.contains(o.resource.as_str()) {
            // The listing this run planned from saw it before it went: this run's own intent
            // and outcome record the removal, once.
            (
                "superseded",
                format!("{seen}; this run planned it and records its outcome"),
            )
        } else {
            ("deleted", seen)
        };
        let record = json!({
            "phase": "outcome",
            "resource": o.resource,
            "kind": o.kind,
            "result": result,
            "error": detail,
            "step": 0,
            "attempt": o.attempt,
            "reconciles": {"run_id": o.run_id, "attempt": o.attempt},
        });
        match audit(ctx, out, &o.resource, &record).await {
            Ok(()) => {
                tracing::info!(resource = %o.resource, run = %o.run_id, result, "earlier intent reconciled");
                match result {
                    "deleted" => done.deleted += 1,
                    "superseded" => done.superseded += 1,
                    _ => done.not_done += 1,
                }
            }
            Err(e) => return Err(format!("reconciling {}: {e}", o.resource)),
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
}
