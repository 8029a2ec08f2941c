//! The loaded whitelist and its verdicts.

use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;

use crate::compiled::{Compiled, resource_arn_parts};
use crate::error::{Diagnostic, Error, Severity};
use crate::load::{self, Sections};
use crate::protection::{MatchedOn, Protection};
use crate::resource::Resource;
use crate::rule::{Matcher, Rule, Section};

/// A validated, compiled set of never-delete rules.
///
/// Built only by [`Whitelist::load`], [`Whitelist::from_yaml_str`] or [`Whitelist::empty`], so
/// every rule in it passed validation. Cheap to share: rules are reference-counted and the
/// matcher is immutable (`Send + Sync`).
#[derive(Clone, Debug)]
pub struct Whitelist {
    origin: String,
    sections: Sections,
    compiled: Compiled,
}

impl Whitelist {
    /// Reads and validates a whitelist file. Any error means destructive mode must be refused.
    ///
    /// Messages name the path as given, e.g.
    /// `whitelist.yaml:7:7: never_delete.aws_resources[2]: ARN pattern has 4 parts, expected 6
    /// (arn:partition:service:region:account:resource)`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let src = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml_str(&src, &path.display().to_string())
    }

    /// Validates a whitelist given as YAML text; `origin` names it in messages (a file name).
    pub fn from_yaml_str(src: &str, origin: &str) -> Result<Self, Error> {
        let sections = load::load(src, origin).map_err(|problems| Error::Invalid { problems })?;
        let compiled = Compiled::build(&sections).map_err(|e| Error::Invalid {
            problems: vec![Diagnostic {
                severity: Severity::Error,
                origin: origin.to_owned(),
                line: 0,
                column: 0,
                path: "never_delete.aws_resources".to_owned(),
                message: format!("cannot compile the ARN patterns: {e}"),
            }],
        })?;
        Ok(Self {
            origin: origin.to_owned(),
            sections,
            compiled,
        })
    }

    /// A whitelist with no rules, for tests and read-only callers. Destructive jobs require a
    /// file and must not fall back to this.
    pub fn empty() -> Self {
        let sections = Sections::default();
        Self {
            origin: "<empty>".to_owned(),
            compiled: Compiled::build(&sections).expect("no patterns, no regex to build"),
            sections,
        }
    }

    /// Where the rules came from (the path as given to [`Whitelist::load`]).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The rules of one section, in file order (`rules(s)[i].index() == i`).
    pub fn rules(&self, section: Section) -> &[Arc<Rule>] {
        &self.sections[section.slot()]
    }

    /// Every rule, in section order ([`Section::ALL`]) and file order within a section.
    pub fn all_rules(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.sections.iter().flatten()
    }

    /// The number of rules, lapsed ones included.
    pub fn len(&self) -> usize {
        self.sections.iter().map(Vec::len).sum()
    }

    /// True when there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `resource` must be spared as of `now`, and why; `None` means the whitelist does
    /// not protect it.
    ///
    /// Rules that lapsed (`expires` at or before `now`) no longer protect. When several rules
    /// protect, the one reported is the first in section order ([`Section::ALL`]) and file
    /// order. A resource no rule protects is still protected when its ARN is malformed or its
    /// tags could not be read (fail closed).
    pub fn verdict(&self, resource: &Resource, now: Timestamp) -> Option<Protection> {
        let mut found = None;
        self.visit(resource, &mut |rule, matched| {
            if rule.is_active(now) {
                found = Some(Protection::Rule {
                    rule: rule.clone(),
                    matched,
                });
                true
            } else {
                false
            }
        });
        found.or_else(|| fail_closed(resource))
    }

    /// The verdict for a resource whose tags could not be read: a protecting rule if one
    /// matches on what is known, else [`Protection::UnreadableTags`]. Never `None`.
    pub fn verdict_unreadable(
        &self,
        resource: &Resource,
        detail: &str,
        now: Timestamp,
    ) -> Protection {
        let mut resource = resource.clone();
        resource.tags_unreadable = Some(detail.to_owned());
        self.verdict(&resource, now)
            .unwrap_or_else(|| Protection::unreadable_tags(detail))
    }

    /// Every rule that matches `resource`, active or lapsed, in section and file order (no
    /// fail-closed causes). For explaining a verdict: `whitelist explain` shows them all.
    pub fn matching_rules(&self, resource: &Resource) -> Vec<Protection> {
        let mut found = Vec::new();
        self.visit(resource, &mut |rule, matched| {
            found.push(Protection::Rule {
                rule: rule.clone(),
                matched,
            });
            false
        });
        found
    }

    /// Calls `f` on each rule matching `resource`, in section and file order, until it returns
    /// true.
    fn visit(&self, resource: &Resource, f: &mut dyn FnMut(&Arc<Rule>, MatchedOn) -> bool) {
        let arn_parts = resource.arn.as_deref().and_then(resource_arn_parts);
        let mut ids = Vec::new();

        // Accounts: the ARN's account part and the explicit account.
        let accounts = self.rules(Section::Accounts);
        ids.extend(arn_parts.and_then(|p| self.compiled.account(p[4])));
        ids.extend(
            resource
                .account
                .as_deref()
                .and_then(|a| self.compiled.account(a)),
        );
        if visit_ids(accounts, &mut ids, MatchedOn::Account, f) {
            return;
        }

        if let Some(parts) = &arn_parts {
            self.compiled.arn_candidates(parts, &mut ids);
            if visit_ids(
                self.rules(Section::AwsResources),
                &mut ids,
                MatchedOn::Arn,
                f,
            ) {
                return;
            }
        }

        for (key, value) in &resource.tags {
            self.compiled.tag(key, value, &mut ids);
        }
        if visit_ids(self.rules(Section::Tags), &mut ids, MatchedOn::Tag, f) {
            return;
        }

        let Some(kube) = &resource.kubernetes else {
            return;
        };
        ids.extend(
            kube.effective_namespace()
                .and_then(|ns| self.compiled.namespace(ns)),
        );
        if visit_ids(
            self.rules(Section::Namespaces),
            &mut ids,
            MatchedOn::Namespace,
            f,
        ) {
            return;
        }

        // Only selectors whose anchor label is present on the object or its namespace (plus
        // those without an anchor) can match; evaluate those in file order.
        let selectors = self.rules(Section::Labels);
        if selectors.is_empty() {
            return;
        }
        self.compiled.selector_candidates(&kube.labels, &mut ids);
        self.compiled
            .selector_candidates(&kube.namespace_labels, &mut ids);
        ids.extend(self.compiled.unanchored_selectors());
        ids.sort_unstable();
        ids.dedup();
        for &i in &ids {
            let rule = &selectors[i];
            let Matcher::Labels(selector) = &rule.matcher else {
                unreachable!("kubernetes.labels holds selector rules only")
            };
            let matched = if selector.matches(&kube.labels) {
                MatchedOn::ObjectLabels
            } else if selector.matches(&kube.namespace_labels) {
                MatchedOn::NamespaceLabels
            } else {
                continue;
            };
            if f(rule, matched) {
                return;
            }
        }
    }

    /// Every warning about the rules as of `now`: rules that can never match, lapsed
    /// protections, duplicates after normalisation, patterns that protect everything. See
    /// `whitelist check`.
    pub fn warnings(&self, now: Timestamp) -> Vec<Diagnostic> {
        crate::lint::warnings(self, now)
    }
}

/// Visits the rules at `ids` (sorted, deduplicated, then cleared) until `f` returns true.
fn visit_ids(
    rules: &[Arc<Rule>],
    ids: &mut Vec<usize>,
    matched: MatchedOn,
    f: &mut dyn FnMut(&Arc<Rule>, MatchedOn) -> bool,
) -> bool {
    ids.sort_unstable();
    ids.dedup();
    let stop = ids.iter().any(|&i| f(&rules[i], matched));
    ids.clear();
    stop
}

/// The protections that hold without any rule: a malformed ARN, unreadable tags.
/// (The production path and the naive oracle share it; it lives with the production path so
/// that nothing but tests and the benchmark depends on the oracle.)
pub(crate) fn fail_closed(resource: &Resource) -> Option<Protection> {
    if let Some(arn) = &resource.arn
        && resource_arn_parts(arn).is_none()
    {
        return Some(Protection::InvalidArn { arn: arn.clone() });
    }
    resource
        .tags_unreadable
        .as_ref()
        .map(|detail| Protection::unreadable_tags(detail.clone()))
}
