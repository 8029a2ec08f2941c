//! Kafka Connect: every connector with its state and its tasks' states, in one request
//! (`GET /connectors?expand=status&expand=info`), grouped per department by the naming
//! convention `<department>.<name>`.
//!
//! The answer is a JSON object keyed by connector name; each value has `info` (`name`, `config`,
//! `tasks: [{connector, task}]`, `type`) and `status` (`name`, `connector: {state, worker_id,
//! trace?}`, `tasks: [{id, state, worker_id, trace?}]`, `type`). Apache Kafka's worker leaves a
//! connector out when it is deleted while the listing runs, and either part may be missing for
//! one being created: such entries are kept with state `UNKNOWN`, never dropped silently.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// One task of a connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskState {
    /// Task id.
    pub id: i64,
    /// `RUNNING`, `FAILED`, `PAUSED`, `UNASSIGNED`, `RESTARTING`, or `UNKNOWN`.
    pub state: String,
    /// The first line of the failure trace of a failed task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One connector as the worker reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connector {
    /// Full name (`dept.orders-sink`).
    pub name: String,
    /// `source`, `sink` or `unknown`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The connector's own state.
    pub state: String,
    /// Its tasks, by id.
    pub tasks: Vec<TaskState>,
}

impl Connector {
    /// Healthy: the connector and every task `RUNNING` (or paused on purpose).
    pub fn healthy(&self) -> bool {
        let ok = |s: &str| s == "RUNNING" || s == "PAUSED";
        ok(&self.state) && self.tasks.iter().all(|t| ok(&t.state))
    }
}

#[derive(Deserialize)]
struct Expanded {
    #[serde(default)]
    info: Option<Info>,
    #[serde(default)]
    status: Option<Status>,
}

#[derive(Deserialize)]
struct Info {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    tasks: Vec<InfoTask>,
}

#[derive(Deserialize)]
struct InfoTask {
    task: i64,
}

#[derive(Deserialize)]
struct Status {
    connector: StateInfo,
    #[serde(default)]
    tasks: Vec<TaskStatus>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct StateInfo {
    state: String,
}

#[derive(Deserialize)]
struct TaskStatus {
    id: i64,
    state: String,
    #[serde(default)]
    trace: Option<String>,
}

/// Lists every connector of the worker at `base_url`.
pub async fn list(base_url: &str, timeout: Duration) -> Result<Vec<Connector>, Error> {
    let url = format!("{base_url}/connectors?expand=status&expand=info");
    let fail = |message: String| Error::Connect {
        url: url.clone(),
        message,
    };
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let response = http
        .get(&url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| {
            fail(if e.is_timeout() {
                "timed out".to_string()
            } else {
                format!("request failed: {e}")
            })
        })?;
    let status = response.status();
    let body = response.text().await.map_err(|e| fail(e.to_string()))?;
    if !status.is_success() {
        let snippet: String = body.chars().take(200).collect();
        return Err(fail(format!("answered {status}: {snippet}")));
    }
    let raw: BTreeMap<String, Expanded> = serde_json::from_str(&body)
        .map_err(|e| fail(format!("not the expanded connector listing: {e}")))?;
    Ok(raw
        .into_iter()
        .map(|(name, e)| {
            let kind = e
                .status
                .as_ref()
                .and_then(|s| s.kind.clone())
                .or_else(|| e.info.as_ref().and_then(|i| i.kind.clone()))
                .unwrap_or_else(|| "unknown".to_string());
            let state = e
                .status
                .as_ref()
                .map_or("UNKNOWN".to_string(), |s| s.connector.state.clone());
            // Tasks the config declares but the status lacks are UNKNOWN, not absent.
            let mut tasks: BTreeMap<i64, TaskState> = e
                .info
                .iter()
                .flat_map(|i| &i.tasks)
                .map(|t| {
                    (
                        t.task,
                        TaskState {
                            id: t.task,
                            state: "UNKNOWN".to_string(),
                            error: None,
                        },
                    )
                })
                .collect();
            for t in e.status.iter().flat_map(|s| &s.tasks) {
                tasks.insert(
                    t.id,
                    TaskState {
                        id: t.id,
                        state: t.state.clone(),
                        error: t
                            .trace
                            .as_deref()
                            .and_then(|tr| tr.lines().next())
                            .map(str::to_string),
                    },
                );
            }
            Connector {
                name,
                kind,
                state,
                tasks: tasks.into_values().collect(),
            }
        })
        .collect())
}

/// The department of a connector by the naming convention: the part before the first `.`
/// (`None` when there is no `.`).
pub fn department(name: &str) -> Option<&str> {
    name.split_once('.')
        .map(|(d, _)| d)
        .filter(|d| !d.is_empty())
}

/// One department's connectors and their health.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Its connectors, by name.
    pub connectors: Vec<Connector>,
}

impl Health {
    /// Number of connectors.
    pub fn connector_count(&self) -> u64 {
        self.connectors.len() as u64
    }

    /// Number of tasks of all its connectors.
    pub fn task_count(&self) -> u64 {
        self.connectors.iter().map(|c| c.tasks.len() as u64).sum()
    }

    /// Connectors and tasks counted by state: `(connectors, tasks)`.
    pub fn by_state(&self) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
        let mut connectors = BTreeMap::new();
        let mut tasks = BTreeMap::new();
        for c in &self.connectors {
            *connectors.entry(c.state.clone()).or_insert(0) += 1;
            for t in &c.tasks {
                *tasks.entry(t.state.clone()).or_insert(0) += 1;
            }
        }
        (connectors, tasks)
    }
}

/// Groups connectors by department; those without a department prefix, or with one no tenant
/// has, are returned separately (for the platform summary).
pub fn by_department(
    connectors: Vec<Connector>,
    departments: &[&str],
) -> (BTreeMap<String, Health>, Vec<Connector>) {
    let mut out: BTreeMap<String, Health> = departments
        .iter()
        .map(|d| (d.to_string(), Health::default()))
        .collect();
    let mut unassigned = Vec::new();
    for c in connectors {
        match department(&c.name).and_then(|d| out.get_mut(d)) {
            Some(h) => h.connectors.push(c),
            None => unassigned.push(c),
        }
    }
    (out, unassigned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn department_is_the_prefix_before_the_first_dot() {
        assert_eq!(department("sales.orders.sink"), Some("sales"));
        assert_eq!(department("orders"), None);
        assert_eq!(department(".x"), None);
    }

    #[test]
    fn grouping_keeps_unassigned_connectors_apart() {
        let c = |name: &str, state: &str, tasks: &[&str]| Connector {
            name: name.into(),
            kind: "sink".into(),
            state: state.into(),
            tasks: tasks
                .iter()
                .enumerate()
                .map(|(i, s)| TaskState {
                    id: i as i64,
                    state: s.to_string(),
                    error: None,
                })
                .collect(),
        };
        let (by, unassigned) = by_department(
            vec![
                c("sales.a", "RUNNING", &["RUNNING", "FAILED"]),
                c("sales.b", "RUNNING", &["RUNNING"]),
                c("hr.x", "RUNNING", &[]),
                c("legacy", "FAILED", &[]),
            ],
            &["sales", "ops"],
        );
        assert_eq!(by["sales"].connector_count(), 2);
        assert_eq!(by["sales"].task_count(), 3);
        assert!(!by["sales"].connectors[0].healthy());
        assert_eq!(by["ops"].connector_count(), 0);
        let names: Vec<&str> = unassigned.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["hr.x", "legacy"]);
        let (cs, ts) = by["sales"].by_state();
        assert_eq!(cs["RUNNING"], 2);
        assert_eq!((ts["RUNNING"], ts["FAILED"]), (2, 1));
    }
}
