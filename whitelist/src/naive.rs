//! The reference matcher: every rule checked one after the other, with the plain glob matcher
//! [`crate::arn::glob_match`] instead of regular expressions.
//!
//! It is deliberately simple, so that it is obviously right; it is the oracle the property
//! tests compare the compiled matcher with, and the baseline the benchmark measures. Jobs use
//! [`Whitelist::verdict`], never this: it costs time proportional to the number of rules.

use jiff::Timestamp;

use crate::arn::glob_match;
use crate::compiled::resource_arn_parts;
use crate::protection::{MatchedOn, Protection};
use crate::resource::Resource;
use crate::rule::{Matcher, Rule, Section};
use crate::whitelist::{Whitelist, fail_closed};

/// What about `resource` the rule matches, if anything (expiry is not considered here).
/// `arn_parts` is the resource's ARN split once by the caller (`None` when absent or
/// malformed).
fn rule_matches(
    rule: &Rule,
    resource: &Resource,
    arn_parts: Option<&[&str; 6]>,
) -> Option<MatchedOn> {
    let kube = resource.kubernetes.as_ref();
    match &rule.matcher {
        Matcher::Account(id) => {
            let from_arn = arn_parts.is_some_and(|p| p[4] == id);
            let explicit = resource.account.as_deref() == Some(id);
            (from_arn || explicit).then_some(MatchedOn::Account)
        }
        Matcher::Arn(pattern) => {
            let parts = arn_parts?;
            (0..6)
                .all(|i| glob_match(pattern.part(i), parts[i]))
                .then_some(MatchedOn::Arn)
        }
        Matcher::Tag { key, value } => {
            let present = resource.tags.get(key)?;
            value
                .as_ref()
                .is_none_or(|v| v == present)
                .then_some(MatchedOn::Tag)
        }
        Matcher::Namespace(name) => {
            (kube?.effective_namespace()? == name).then_some(MatchedOn::Namespace)
        }
        Matcher::Labels(selector) => {
            let kube = kube?;
            if selector.matches(&kube.labels) {
                Some(MatchedOn::ObjectLabels)
            } else if selector.matches(&kube.namespace_labels) {
                Some(MatchedOn::NamespaceLabels)
            } else {
                None
            }
        }
    }
}

/// The verdict, computed rule by rule: the first active matching rule in section order
/// ([`Section::ALL`]) and index order, then the fail-closed causes (malformed ARN, unreadable
/// tags). Must always equal [`Whitelist::verdict`].
pub fn verdict(whitelist: &Whitelist, resource: &Resource, now: Timestamp) -> Option<Protection> {
    let arn_parts = resource.arn.as_deref().and_then(resource_arn_parts);
    for section in Section::ALL {
        for rule in whitelist.rules(section) {
            if !rule.is_active(now) {
                continue;
            }
            if let Some(matched) = rule_matches(rule, resource, arn_parts.as_ref()) {
                return Some(Protection::Rule {
                    rule: rule.clone(),
                    matched,
                });
            }
        }
    }
    fail_closed(resource)
}

/// Every rule matching `resource`, active or lapsed, in section and index order. Must always
/// equal [`Whitelist::matching_rules`].
pub fn matching_rules(whitelist: &Whitelist, resource: &Resource) -> Vec<Protection> {
    let arn_parts = resource.arn.as_deref().and_then(resource_arn_parts);
    let mut found = Vec::new();
    for section in Section::ALL {
        for rule in whitelist.rules(section) {
            if let Some(matched) = rule_matches(rule, resource, arn_parts.as_ref()) {
                found.push(Protection::Rule {
                    rule: rule.clone(),
                    matched,
                });
            }
        }
    }
    found
}
