//! What the AWS and Kubernetes providers have in common: how a removal ends and how a call fails.
//!
//! A provider lists [`Resource`](crate::inventory::Resource)s, writes tags/annotations (to record
//! a warning stage), removes a resource, and reads its current state (to wait, bounded, for a
//! removal to finish before deleting what depended on it).

/// How a removal call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// The resource is gone (or was already gone: removal is idempotent).
    Done,
    /// The provider accepted the removal and the resource is on its way (`shutting-down`,
    /// `deleting`, `Terminating`): dependants must wait until [`State::Gone`].
    Pending {
        /// The provider's state name.
        state: String,
    },
}

/// A resource's current state, as far as deletion ordering cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// It no longer exists (or is in a terminal "deleted" state such as `terminated`).
    Gone,
    /// It still exists, in this provider state.
    Present(String),
}

/// A provider call that failed.
#[derive(Debug, thiserror::Error)]
#[error("{action} {resource}: {message}")]
pub struct ProviderError {
    /// What was attempted (`terminate`, `delete`, `list`, `tag`).
    pub action: String,
    /// The resource id (or the scope, for a list).
    pub resource: String,
    /// The provider's message (error code and text).
    pub message: String,
    /// True when trying again later may succeed (throttling, dependency still in use).
    pub retryable: bool,
}
