//! The test's [`Guard`]: it refuses what currently says `keep=true` and records every question,
//! so a test can tell what the inventory re-read and whether it asked at all.
//!
//! The TTL job's real guard (production, restricted data, changed tags) is unit-tested in
//! `jobs/ttl-teardown/src/guard.rs`; here only the mechanism is under test: the inventory re-reads
//! the resource just before the delete call and lets the caller decide on what it read.

use std::collections::BTreeMap;
use std::sync::Mutex;

use inventory::{Current, Guard, Resource};

/// One question the guard was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// The resource id (the planned resource's, or the contained object's).
    pub id: String,
    /// The state the re-read saw (`None` for a contained object).
    pub state: Option<String>,
    /// The tags the re-read saw.
    pub tags: BTreeMap<String, String>,
    /// The tags the plan saw (`None` for a contained object).
    pub planned: Option<BTreeMap<String, String>>,
}

/// Refuses when the current tags hold `keep=true`; records every question.
#[derive(Debug, Default)]
pub struct KeepGuard {
    asked: Mutex<Vec<Asked>>,
}

/// The reason the guard gives.
pub const KEPT: &str = "current tag keep=true";

impl KeepGuard {
    /// Every question so far, in order.
    pub fn asked(&self) -> Vec<Asked> {
        self.asked.lock().expect("guard lock").clone()
    }

    /// The questions about `id`.
    pub fn asked_about(&self, id: &str) -> Vec<Asked> {
        self.asked().into_iter().filter(|a| a.id == id).collect()
    }

    fn record(&self, asked: Asked) -> Option<String> {
        let keep = asked.tags.get("keep").is_some_and(|v| v == "true");
        self.asked.lock().expect("guard lock").push(asked);
        keep.then(|| KEPT.to_string())
    }
}

impl Guard for KeepGuard {
    fn refuses(&self, planned: &Resource, current: &Current) -> Option<String> {
        // The scopes refuse unreadable tags themselves, before asking.
        let tags = current
            .tags
            .clone()
            .unwrap_or_else(|e| panic!("{} asked with unreadable tags: {e}", planned.id));
        self.record(Asked {
            id: planned.id.clone(),
            state: Some(current.state.clone()),
            tags,
            planned: Some(planned.tags.clone()),
        })
    }

    fn refuses_contained(&self, id: &str, tags: &BTreeMap<String, String>) -> Option<String> {
        self.record(Asked {
            id: id.to_string(),
            state: None,
            tags: tags.clone(),
            planned: None,
        })
    }
}
