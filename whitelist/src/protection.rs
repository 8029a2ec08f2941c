//! The answer to "may this resource be touched?" when it is "no", with the reason.

use std::fmt;
use std::sync::Arc;

use crate::rule::Rule;

/// Why a resource must not be touched. `Display` gives the one-line reason that goes into the
/// plan, the log and the result event.
#[derive(Clone, Debug)]
pub enum Protection {
    /// A whitelist rule matches the resource.
    Rule {
        /// The matching rule.
        rule: Arc<Rule>,
        /// What about the resource matched it.
        matched: MatchedOn,
    },
    /// The resource's tags could not be read, so a protecting tag cannot be ruled out.
    UnreadableTags {
        /// What went wrong reading them.
        detail: String,
    },
    /// The resource's ARN is not `arn:partition:service:region:account:resource`, so ARN rules
    /// cannot be evaluated for it.
    InvalidArn {
        /// The ARN as given.
        arn: String,
    },
}

/// What about a resource a rule matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchedOn {
    /// The account part of the ARN, or the resource's explicit account.
    Account,
    /// The ARN.
    Arn,
    /// An AWS tag.
    Tag,
    /// The object is in (or is) a protected namespace.
    Namespace,
    /// The object's own labels.
    ObjectLabels,
    /// The labels of the object's namespace.
    NamespaceLabels,
}

impl Protection {
    /// The verdict for a resource whose tags could not be read: protected, saying why.
    pub fn unreadable_tags(detail: impl Into<String>) -> Self {
        Protection::UnreadableTags {
            detail: detail.into(),
        }
    }

    /// The rule behind the protection, when it is a rule.
    pub fn rule(&self) -> Option<&Rule> {
        match self {
            Protection::Rule { rule, .. } => Some(rule),
            _ => None,
        }
    }

    /// A short machine-friendly label for metrics and events: the section name, or
    /// `unreadable_tags` / `invalid_arn`.
    pub fn kind(&self) -> &'static str {
        match self {
            Protection::Rule { rule, .. } => rule.section().name(),
            Protection::UnreadableTags { .. } => "unreadable_tags",
            Protection::InvalidArn { .. } => "invalid_arn",
        }
    }
}

/// Two protections are equal when they name the same rule (by section and index) matched the
/// same way, or the same fail-closed cause; the property tests compare matchers with it.
impl PartialEq for Protection {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Protection::Rule {
                    rule: a,
                    matched: ma,
                },
                Protection::Rule {
                    rule: b,
                    matched: mb,
                },
            ) => a.section() == b.section() && a.index() == b.index() && ma == mb,
            (
                Protection::UnreadableTags { detail: a },
                Protection::UnreadableTags { detail: b },
            ) => a == b,
            (Protection::InvalidArn { arn: a }, Protection::InvalidArn { arn: b }) => a == b,
            _ => false,
        }
    }
}

impl Eq for Protection {}

impl fmt::Display for Protection {
    /// `whitelist rule aws_resources[0] "arn:aws:ec2:*:*:instance/i-stoa-*" (reason: stoa core fleet)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protection::Rule { rule, matched } => {
                write!(f, "whitelist rule {rule}")?;
                match matched {
                    MatchedOn::ObjectLabels => f.write_str(" on the object's labels")?,
                    MatchedOn::NamespaceLabels => f.write_str(" on its namespace's labels")?,
                    _ => {}
                }
                match (rule.reason(), rule.owner()) {
                    (Some(r), Some(o)) => write!(f, " (reason: {r}; owner: {o})"),
                    (Some(r), None) => write!(f, " (reason: {r})"),
                    (None, Some(o)) => write!(f, " (owner: {o})"),
                    (None, None) => Ok(()),
                }
            }
            Protection::UnreadableTags { detail } => {
                write!(
                    f,
                    "tags could not be read, so the resource is treated as protected ({detail})"
                )
            }
            Protection::InvalidArn { arn } => write!(
                f,
                "ARN {arn:?} is not arn:partition:service:region:account:resource, so the resource is treated as protected"
            ),
        }
    }
}
