//! The errors of the usage-reporting job.

use std::path::PathBuf;

/// What can go wrong reading a source or rendering a report, one variant per cause.
///
/// Messages are lowercase, name the source (and query, URL or file) at fault, and never contain
/// a password.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The control-plane database could not be reached or queried.
    #[error("postgres {server}: {action}: {message}")]
    Postgres {
        /// `host:port/dbname`.
        server: String,
        /// What we were doing.
        action: String,
        /// The server's message (code and text) or the client's.
        message: String,
    },

    /// The control-plane schema is not the one this job reads.
    #[error("postgres {server}: {message} (apply migrations/ from the repository)")]
    Schema {
        /// `host:port/dbname`.
        server: String,
        /// What is missing or too old.
        message: String,
    },

    /// A Prometheus query failed (HTTP error, timeout, or an error answer).
    #[error("prometheus {url}: query {query}: {message}")]
    Prometheus {
        /// Base URL.
        url: String,
        /// The PromQL expression.
        query: String,
        /// What went wrong.
        message: String,
    },

    /// The Kafka Connect REST API failed.
    #[error("kafka connect {url}: {message}")]
    Connect {
        /// The URL requested.
        url: String,
        /// What went wrong.
        message: String,
    },

    /// The inventory could not be listed.
    #[error("inventory: {message}")]
    Inventory {
        /// What went wrong.
        message: String,
    },

    /// A report could not be rendered.
    #[error("rendering {what} for tenant {tenant}: {message}")]
    Render {
        /// `pdf`, `chart`, `csv`.
        what: &'static str,
        /// The tenant's slug.
        tenant: String,
        /// The renderer's message.
        message: String,
    },

    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A short label for the metric of failed sources.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Postgres { .. } | Error::Schema { .. } => "postgres",
            Error::Prometheus { .. } => "prometheus",
            Error::Connect { .. } => "kafka_connect",
            Error::Inventory { .. } => "inventory",
            Error::Render { .. } => "render",
            Error::Io { .. } => "io",
        }
    }
}
