//! How a provider call fails, and how the offline inventory file can be wrong.

/// A provider call that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{action} {resource}: {message}")]
pub struct ProviderError {
    /// What was attempted (`terminate`, `delete`, `list ec2-instance`, `tag`).
    pub action: String,
    /// The resource id (or the scope, for a list).
    pub resource: String,
    /// The provider's message (error code and text), or why we refused.
    pub message: String,
    /// True when trying again later may succeed (throttling, a dependency still in use). The
    /// SDKs have already retried throttling with backoff by the time this is set; a caller
    /// retries in a later pass, never in a loop.
    pub retryable: bool,
}

impl ProviderError {
    /// A refusal or an inconsistency: never retried.
    pub fn refusal(action: &str, resource: &str, message: impl Into<String>) -> ProviderError {
        ProviderError {
            action: action.to_string(),
            resource: resource.to_string(),
            message: message.into(),
            retryable: false,
        }
    }

    /// A stable label for metrics: `retryable` or `permanent`.
    pub fn metric_label(&self) -> &'static str {
        if self.retryable {
            "retryable"
        } else {
            "permanent"
        }
    }
}

/// A problem in an offline inventory file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read or is not YAML of the expected shape. The message says what
    /// shape was expected; the source (the loader's error, naming file, line and column) says
    /// what is wrong.
    #[error(
        "{file} is not a usable offline inventory (expected a mapping with `resources:`, a list \
         of entries such as `{{kind: ec2-instance, id: \"arn:aws:ec2:…\", tags: {{…}}}}`; see \
         examples/inventory.yaml)"
    )]
    Load {
        /// The inventory file.
        file: String,
        /// What the YAML loader said.
        #[source]
        source: common::Error,
    },
    /// A resource entry is inconsistent.
    #[error("{file}: resources[{index}] ({id}): {message}")]
    Entry {
        /// The inventory file.
        file: String,
        /// Index of the entry.
        index: usize,
        /// The entry's id.
        id: String,
        /// What is wrong.
        message: String,
    },
}
