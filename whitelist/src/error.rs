//! The crate's error type and the diagnostics a whitelist file can produce.

use std::fmt;
use std::path::PathBuf;

/// Where a diagnostic is severe enough to refuse the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth fixing, but the file still loads (lapsed rule, rule that can never match, ...).
    Warning,
    /// The file is refused; destructive jobs will not run.
    Error,
}

/// One problem found in a whitelist file, pointing at the place it was found.
///
/// `Display` gives `whitelist.yaml:7:7: never_delete.aws_resources[2]: message`, leaving out
/// the line and column when unknown and the path when the problem is about the whole file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// How serious it is.
    pub severity: Severity,
    /// The file (or other origin) the whitelist came from, as given by the caller.
    pub origin: String,
    /// 1-based line; 0 when unknown.
    pub line: u64,
    /// 1-based column; 0 when unknown.
    pub column: u64,
    /// The YAML path at fault, e.g. `never_delete.aws_resources[2]`; empty for the whole file.
    pub path: String,
    /// What is wrong: lowercase, no trailing period.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Errors from loading a whitelist. Any of them means destructive jobs must refuse to run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read whitelist file {path}")]
    Read {
        /// The path as given.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid whitelist; every problem found is listed, one per
    /// line, in the message.
    #[error("{}", display_problems(.problems))]
    Invalid {
        /// Every error found, in file order (never empty).
        problems: Vec<Diagnostic>,
    },
}

fn display_problems(problems: &[Diagnostic]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl Error {
    /// The problems of an invalid file; empty for a read error.
    pub fn problems(&self) -> &[Diagnostic] {
        match self {
            Error::Invalid { problems } => problems,
            Error::Read { .. } => &[],
        }
    }

    /// A short label for metrics and events.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Read { .. } => "whitelist_unreadable",
            Error::Invalid { .. } => "whitelist_invalid",
        }
    }
}
