//! The write-ahead journal of a rotation, kept in the secret's own Vault KV `custom_metadata`:
//! one `rotation_id` per rotation, and the step it is at, written *before* the step runs. A run
//! that dies anywhere leaves the journal naming the step it was in; the next run resumes there
//! with the same id (and, read from the pending path, the same value). Every step is
//! idempotent, so redoing the one that was cut short is safe.
//!
//! Keys (all values strings, as Vault requires; at most 512 characters each):
//! `rotation_id`, `rotation_state` (a step name while in progress, `finished`, `failed`),
//! `started_at`, `rotated_by`, `last_rotated`, `rotation_previous_version`,
//! `rotation_promoted_version`, `rotation_failed_step`, `rotation_failure`, `retire_after`,
//! `retire_state` (`pending`, `done`), `retire_ref`, `notice_sent_for`. Other keys (a discovered
//! secret's declaration) are kept as they are.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;

/// The steps of one rotation, in order, plus the two that are not on the straight path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// 1: age against policy (no write).
    Classify,
    /// 2: the journal itself (id, start time, version read).
    Journal,
    /// 3: the new value, kept pending at a create-only path.
    Create,
    /// 4: the value set in the system that owns the credential.
    Set,
    /// 5: the value tested against that system.
    Test,
    /// 6a: the main Vault path written (check-and-set).
    Promote,
    /// 6b: Kubernetes Secrets written, ExternalSecrets synced.
    Propagate,
    /// 7: consumers restarted in waves and verified.
    Restart,
    /// 8: the journal marked finished.
    Finish,
    /// 9: the old credential retired (a later run, after the grace period).
    Retire,
    /// Undoing a rotation whose consumers did not come up on the new value.
    Rollback,
}

impl Step {
    /// The steps of a rotation in order (what `--pause-after` and the kill test walk).
    pub const ROTATION: [Step; 8] = [
        Step::Journal,
        Step::Create,
        Step::Set,
        Step::Test,
        Step::Promote,
        Step::Propagate,
        Step::Restart,
        Step::Finish,
    ];

    /// The name in the journal, findings and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Classify => "classify",
            Step::Journal => "journal",
            Step::Create => "create",
            Step::Set => "set",
            Step::Test => "test",
            Step::Promote => "promote",
            Step::Propagate => "propagate",
            Step::Restart => "restart",
            Step::Finish => "finish",
            Step::Retire => "retire",
            Step::Rollback => "rollback",
        }
    }

    /// Parses a step name.
    pub fn parse(s: &str) -> Option<Step> {
        [
            Step::Classify,
            Step::Journal,
            Step::Create,
            Step::Set,
            Step::Test,
            Step::Promote,
            Step::Propagate,
            Step::Restart,
            Step::Finish,
            Step::Retire,
            Step::Rollback,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the secret's last rotation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Never rotated by the job.
    Idle,
    /// A rotation is at this step (the run doing it may have died).
    InProgress(Step),
    /// The last rotation finished.
    Finished,
    /// The last rotation failed (and was undone as far as it got).
    Failed,
}

impl State {
    fn as_string(self) -> String {
        match self {
            State::Idle => "idle".into(),
            State::InProgress(s) => s.as_str().into(),
            State::Finished => "finished".into(),
            State::Failed => "failed".into(),
        }
    }

    fn parse(s: Option<&str>) -> State {
        match s {
            None | Some("" | "idle") => State::Idle,
            Some("finished") => State::Finished,
            Some("failed") => State::Failed,
            Some(other) => Step::parse(other).map_or(State::Failed, State::InProgress),
        }
    }
}

/// The rotation journal of one secret, as read from (and written back to) `custom_metadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    /// The rotation in progress or last done.
    pub rotation_id: Option<String>,
    /// Its state.
    pub state: State,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// `secret-rotation/<run id>` of the run that last wrote the journal.
    pub rotated_by: Option<String>,
    /// When the last rotation finished: the age of the secret counts from here.
    pub last_rotated: Option<Timestamp>,
    /// The KV version read when the rotation started (the value being replaced).
    pub previous_version: Option<u64>,
    /// The KV version the rotation wrote.
    pub promoted_version: Option<u64>,
    /// Where the last rotation failed.
    pub failed_step: Option<Step>,
    /// Why (never a value).
    pub failure: Option<String>,
    /// When the old credential may be retired.
    pub retire_after: Option<Timestamp>,
    /// `pending` until the old credential is retired, then `done`.
    pub retire_state: Option<String>,
    /// What to retire (an old key id), when the target needs it.
    pub retire_ref: Option<String>,
    /// The due date the last notice was sent for.
    pub notice_sent_for: Option<Timestamp>,
    /// Keys that are not the journal's (a discovered secret's declaration).
    pub others: BTreeMap<String, String>,
}

const KEYS: [&str; 13] = [
    "rotation_id",
    "rotation_state",
    "started_at",
    "rotated_by",
    "last_rotated",
    "rotation_previous_version",
    "rotation_promoted_version",
    "rotation_failed_step",
    "rotation_failure",
    "retire_after",
    "retire_state",
    "retire_ref",
    "notice_sent_for",
];

/// Vault's limit on a custom_metadata value.
const MAX_VALUE: usize = 512;

impl Journal {
    /// Reads the journal from `custom_metadata` (absent or unparsable fields are `None`).
    pub fn from_metadata(m: &BTreeMap<String, String>) -> Journal {
        let get = |k: &str| m.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let time = |k: &str| get(k).and_then(|v| v.parse::<Timestamp>().ok());
        let num = |k: &str| get(k).and_then(|v| v.parse::<u64>().ok());
        Journal {
            rotation_id: get("rotation_id").map(String::from),
            state: State::parse(get("rotation_state")),
            started_at: time("started_at"),
            rotated_by: get("rotated_by").map(String::from),
            last_rotated: time("last_rotated"),
            previous_version: num("rotation_previous_version"),
            promoted_version: num("rotation_promoted_version"),
            failed_step: get("rotation_failed_step").and_then(Step::parse),
            failure: get("rotation_failure").map(String::from),
            retire_after: time("retire_after"),
            retire_state: get("retire_state").map(String::from),
            retire_ref: get("retire_ref").map(String::from),
            notice_sent_for: time("notice_sent_for"),
            others: m
                .iter()
                .filter(|(k, _)| !KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// The `custom_metadata` to write: the other keys, then the journal's set fields.
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let mut m = self.others.clone();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(mut v) = v {
                if v.len() > MAX_VALUE {
                    let mut end = MAX_VALUE;
                    while !v.is_char_boundary(end) {
                        end -= 1;
                    }
                    v.truncate(end);
                }
                m.insert(k.to_string(), v);
            }
        };
        put("rotation_id", self.rotation_id.clone());
        put("rotation_state", Some(self.state.as_string()));
        put("started_at", self.started_at.map(|t| t.to_string()));
        put("rotated_by", self.rotated_by.clone());
        put("last_rotated", self.last_rotated.map(|t| t.to_string()));
        put(
            "rotation_previous_version",
            self.previous_version.map(|v| v.to_string()),
        );
        put(
            "rotation_promoted_version",
            self.promoted_version.map(|v| v.to_string()),
        );
        put(
            "rotation_failed_step",
            self.failed_step.map(|s| s.as_str().to_string()),
        );
        put("rotation_failure", self.failure.clone());
        put("retire_after", self.retire_after.map(|t| t.to_string()));
        put("retire_state", self.retire_state.clone());
        put("retire_ref", self.retire_ref.clone());
        put(
            "notice_sent_for",
            self.notice_sent_for.map(|t| t.to_string()),
        );
        m
    }

    /// The step an interrupted rotation is at, if one is.
    pub fn in_progress(&self) -> Option<Step> {
        match self.state {
            State::InProgress(step) if self.rotation_id.is_some() => Some(step),
            _ => None,
        }
    }

    /// Whether the old credential of the last rotation still waits to be retired.
    pub fn retire_due(&self, now: Timestamp) -> bool {
        self.state == State::Finished
            && self.retire_state.as_deref() == Some("pending")
            && self.retire_after.is_some_and(|t| t <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_round_trips_and_keeps_other_keys() {
        let mut m = BTreeMap::new();
        m.insert("type".to_string(), "api-key".to_string());
        m.insert("rotation_id".to_string(), "0197-id".to_string());
        m.insert("rotation_state".to_string(), "promote".to_string());
        m.insert("rotation_previous_version".to_string(), "3".to_string());
        m.insert(
            "last_rotated".to_string(),
            "2026-11-01T00:00:00Z".to_string(),
        );
        let j = Journal::from_metadata(&m);
        assert_eq!(j.in_progress(), Some(Step::Promote));
        assert_eq!(j.previous_version, Some(3));
        assert_eq!(j.others.get("type").map(String::as_str), Some("api-key"));
        let back = j.to_metadata();
        for (k, v) in &m {
            assert_eq!(back.get(k), Some(v), "{k}");
        }
        let mut long = j.clone();
        long.failure = Some("é".repeat(400));
        assert!(long.to_metadata()["rotation_failure"].len() <= 512);
    }

    #[test]
    fn unknown_states_are_not_resumed() {
        let m: BTreeMap<String, String> = [
            ("rotation_id".to_string(), "x".to_string()),
            ("rotation_state".to_string(), "exploded".to_string()),
        ]
        .into();
        assert_eq!(Journal::from_metadata(&m).in_progress(), None);
        assert_eq!(Journal::from_metadata(&BTreeMap::new()).state, State::Idle);
    }
}
