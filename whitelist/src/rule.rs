//! One validated whitelist rule and the section it belongs to.

use std::fmt;

use jiff::Timestamp;

use crate::arn::ArnPattern;
use crate::selector::Selector;

/// The section of the file a rule comes from.
///
/// The order of [`Section::ALL`] is also the order in which sections are consulted by a verdict,
/// so when several rules protect a resource, the one reported is from the earliest section and,
/// within it, has the lowest index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    /// `never_delete.accounts`: AWS account ids whose resources are never touched.
    Accounts,
    /// `never_delete.aws_resources`: ARN patterns.
    AwsResources,
    /// `never_delete.tags`: AWS tags (key, optionally value).
    Tags,
    /// `never_delete.kubernetes.namespaces`: namespaces protected with every object in them.
    Namespaces,
    /// `never_delete.kubernetes.labels`: label selectors over objects and their namespaces.
    Labels,
}

impl Section {
    /// Every section, in verdict order.
    pub const ALL: [Section; 5] = [
        Section::Accounts,
        Section::AwsResources,
        Section::Tags,
        Section::Namespaces,
        Section::Labels,
    ];

    /// The section's name as used in messages: the YAML path below `never_delete`.
    pub fn name(self) -> &'static str {
        match self {
            Section::Accounts => "accounts",
            Section::AwsResources => "aws_resources",
            Section::Tags => "tags",
            Section::Namespaces => "kubernetes.namespaces",
            Section::Labels => "kubernetes.labels",
        }
    }

    pub(crate) fn slot(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a rule matches; private so that every rule in a [`crate::Whitelist`] went through
/// validation.
#[derive(Clone, Debug)]
pub(crate) enum Matcher {
    Account(String),
    Arn(ArnPattern),
    Tag { key: String, value: Option<String> },
    Namespace(String),
    Labels(Selector),
}

/// One validated rule: what it protects, who asked for it and why, and where it is written.
#[derive(Clone, Debug)]
pub struct Rule {
    pub(crate) section: Section,
    pub(crate) index: usize,
    pub(crate) text: String,
    pub(crate) reason: Option<String>,
    pub(crate) owner: Option<String>,
    pub(crate) expires: Option<Timestamp>,
    pub(crate) line: u64,
    pub(crate) column: u64,
    pub(crate) matcher: Matcher,
}

impl Rule {
    /// The section the rule is in.
    pub fn section(&self) -> Section {
        self.section
    }

    /// The rule's position within its section's list (0-based, as in `aws_resources[2]`).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The rule as written: the ARN pattern, namespace name, selector or account id; for a tag
    /// rule `key=value`, or just `key` when any value of the key protects.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Why the protection exists, when the file says.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// Who asked for the protection, when the file says.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// When the protection lapses, if it does.
    pub fn expires(&self) -> Option<Timestamp> {
        self.expires
    }

    /// 1-based line of the rule's main value in the file (0 when unknown).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// 1-based column of the rule's main value in the file (0 when unknown).
    pub fn column(&self) -> u64 {
        self.column
    }

    /// True while the rule protects: it has no `expires`, or `now` is before it. At the instant
    /// `expires` itself the protection has lapsed.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.expires.is_none_or(|e| now < e)
    }
}

impl fmt::Display for Rule {
    /// `aws_resources[0] "arn:aws:ec2:*:*:instance/i-stoa-*"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}] {:?}", self.section, self.index, self.text)
    }
}
