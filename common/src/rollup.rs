//! The whole of a sharded run, from its shards' result events on Kafka
//! (`governance-jobs summary`).
//!
//! Shards run as separate pods with separate run ids; what ties them together is the job, the
//! shard count and the time. The roll-up takes, for each shard index, the newest result event of
//! the job within the look-back window, and adds their figures up. A shard with no event in the
//! window is reported missing: the run is then incomplete, and says so.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::config::KafkaConfig;
use crate::event::{ResultEvent, Status};
use crate::kafka::read_recent;

/// One shard's line of the roll-up.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ShardLine {
    /// The shard's index.
    pub index: u32,
    /// Its run.
    pub run_id: String,
    /// How it ended.
    pub status: Status,
    /// When it completed.
    pub completed_at: Timestamp,
    /// Items checked.
    pub checked: u64,
    /// `details.deleted` (ttl-teardown: a list, or a count), 0 when absent.
    pub deleted: u64,
    /// `details.pending`: removals accepted, not finished when the shard ended.
    pub pending: u64,
    /// `details.cost_avoided_usd` (ttl-teardown), when reported.
    pub cost_avoided_usd: Option<f64>,
    /// Its errors.
    pub errors: Vec<String>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RollUp {
    /// The job.
    pub job_name: String,
    /// The shard count the newest events name.
    pub shards: u32,
    /// Every shard with an event, by index.
    pub present: Vec<ShardLine>,
    /// Indexes with no event in the window.
    pub missing: Vec<u32>,
    /// Sums over the present shards.
    pub checked: u64,
    /// Sum of `deleted`.
    pub deleted: u64,
    /// Sum of `pending`.
    pub pending: u64,
    /// Sum of the cost avoided the shards reported.
    pub cost_avoided_usd: f64,
    /// Shards that did not succeed.
    pub failed_shards: Vec<u32>,
    /// Whether the shards were dry runs (the newest event's mode).
    pub dry_run: bool,
}

impl RollUp {
    /// Complete and every shard succeeded.
    pub fn is_success(&self) -> bool {
        self.missing.is_empty() && self.failed_shards.is_empty() && !self.present.is_empty()
    }
}

/// Rolls the sharded result events of `job` up (events of other jobs and unsharded ones are
/// ignored); the shard count is the newest event's. `None` when there is no sharded event.
pub fn roll_up(events: &[ResultEvent], job: &str) -> Option<RollUp> {
    let mut sharded: Vec<&ResultEvent> = events
        .iter()
        .filter(|e| e.job_name == job && e.shard.is_some())
        .collect();
    sharded.sort_by_key(|e| e.completed_at);
    let newest = sharded.last()?;
    let count = newest.shard?.count;
    let dry_run = newest.dry_run;
    let mut latest: BTreeMap<u32, &ResultEvent> = BTreeMap::new();
    for e in sharded {
        match e.shard {
            Some(s) if s.count == count && e.dry_run == dry_run => {
                latest.insert(s.index, e);
            }
            _ => {}
        }
    }
    let present: Vec<ShardLine> = latest
        .iter()
        .map(|(&index, e)| ShardLine {
            index,
            run_id: e.run_id.clone(),
            status: e.status,
            completed_at: e.completed_at,
            checked: e.summary.total_checked,
            deleted: figure(e.details.get("deleted")),
            pending: figure(e.details.get("pending")),
            cost_avoided_usd: e.details.get("cost_avoided_usd").and_then(Value::as_f64),
            errors: e.errors.clone(),
        })
        .collect();
    Some(RollUp {
        job_name: job.to_string(),
        shards: count,
        missing: (0..count).filter(|i| !latest.contains_key(i)).collect(),
        checked: present.iter().map(|l| l.checked).sum(),
        deleted: present.iter().map(|l| l.deleted).sum(),
        pending: present.iter().map(|l| l.pending).sum(),
        cost_avoided_usd: present.iter().filter_map(|l| l.cost_avoided_usd).sum(),
        failed_shards: present
            .iter()
            .filter(|l| l.status != Status::Success)
            .map(|l| l.index)
            .collect(),
        present,
        dry_run,
    })
}

/// A figure given as a number or as the list of what it counts.
fn figure(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::Array(a)) => a.len() as u64,
        Some(v) => v.as_u64().unwrap_or(0),
        None => 0,
    }
}

/// Reads the result topic back over `lookback` and rolls `job` up.
pub async fn read(
    kafka: &KafkaConfig,
    topic: &str,
    job: &str,
    lookback: Duration,
    timeout: Duration,
) -> Result<Option<RollUp>, crate::Error> {
    let lookback = jiff::SignedDuration::try_from(lookback).unwrap_or(jiff::SignedDuration::MAX);
    let since = Timestamp::now()
        .checked_sub(lookback)
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let payloads = read_recent(kafka, topic, since, timeout).await?;
    let events: Vec<ResultEvent> = payloads
        .iter()
        .filter_map(|p| serde_json::from_slice(p).ok())
        .collect();
    Ok(roll_up(&events, job))
}

/// The roll-up for people.
pub fn table(r: &RollUp) -> String {
    let mut out = format!(
        "{} — {} shards{}: {} present, {} missing\n",
        r.job_name,
        r.shards,
        if r.dry_run { " (dry run)" } else { "" },
        r.present.len(),
        r.missing.len()
    );
    out.push_str(
        "shard  status   checked  deleted  pending  cost avoided  completed              errors\n",
    );
    for l in &r.present {
        out.push_str(&format!(
            "{:<6} {:<8} {:>7}  {:>7}  {:>7}  {:>12}  {}  {}\n",
            l.index,
            l.status.as_str(),
            l.checked,
            l.deleted,
            l.pending,
            l.cost_avoided_usd
                .map(|c| format!("${c:.2}"))
                .unwrap_or_else(|| "—".into()),
            l.completed_at,
            l.errors.len()
        ));
    }
    for i in &r.missing {
        out.push_str(&format!("{i:<6} missing: no result event in the window\n"));
    }
    out.push_str(&format!(
        "total: {} checked, {} deleted, {} pending, ${:.2} cost avoided a month; failed shards: {:?}\n",
        r.checked, r.deleted, r.pending, r.cost_avoided_usd, r.failed_shards
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::Shard;

    fn event(index: u32, count: u32, status: Status, deleted: u64, at: &str) -> ResultEvent {
        let mut details = serde_json::Map::new();
        let ids: Vec<Value> = (0..deleted).map(|i| format!("r{i}").into()).collect();
        details.insert("deleted".into(), ids.into());
        details.insert("cost_avoided_usd".into(), (deleted as f64 * 1.5).into());
        let t: Timestamp = at.parse().expect("ts");
        ResultEvent {
            schema_version: "1".into(),
            job_name: "ttl-teardown".into(),
            run_id: format!("run-{index}-{at}"),
            started_at: t,
            completed_at: t,
            duration_seconds: 1.0,
            status,
            dry_run: false,
            evaluated_at: t,
            shard: Some(Shard { index, count }),
            summary: crate::event::Summary {
                total_checked: 10,
                ..Default::default()
            },
            findings: vec![],
            alerts_sent: vec![],
            errors: vec![],
            details,
        }
    }

    #[test]
    fn the_newest_event_per_shard_adds_up_and_a_missing_shard_is_named() {
        let events = vec![
            event(0, 3, Status::Failure, 9, "2026-12-01T00:00:00Z"),
            event(0, 3, Status::Success, 2, "2026-12-01T01:00:00Z"),
            event(1, 3, Status::Partial, 3, "2026-12-01T01:00:01Z"),
            // An older layout with another count is not part of this run.
            event(2, 4, Status::Success, 7, "2026-11-30T01:00:00Z"),
        ];
        let r = roll_up(&events, "ttl-teardown").expect("sharded events");
        assert_eq!(r.shards, 3);
        assert_eq!(
            r.present.iter().map(|l| l.index).collect::<Vec<_>>(),
            [0, 1]
        );
        assert_eq!(r.missing, [2]);
        assert_eq!((r.checked, r.deleted), (20, 5));
        assert!((r.cost_avoided_usd - 7.5).abs() < 1e-9);
        assert_eq!(r.failed_shards, [1]);
        assert!(!r.is_success());
        assert!(table(&r).contains("missing"));
        assert!(roll_up(&events, "certificate-checker").is_none());
    }
}
