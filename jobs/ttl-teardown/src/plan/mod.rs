//! The planner: from an inventory to a decision per resource and an ordered list of deletions.
//!
//! Every resource gets exactly one [`Outcome`] with a reason, checked in this order, first match
//! wins — the order is the safety argument:
//! 1. tags unreadable → protected;
//! 2. the whitelist protects it → protected (naming the rule);
//! 3. an AWS account outside `allowed_accounts` → protected;
//! 4. any tag violation → `tag-violation`, never deleted;
//! 5. not eligible (prod, auto-teardown=false, restricted data) → protected;
//! 6. otherwise the stage decides: nothing, a warning, or a deletion.
//!
//! Deletions are then ordered per instance (a resource after everything in its `wait_for`) with
//! the kind registry's order breaking ties. A deletion that waits for a resource which is *not*
//! being deleted (the instance using this security group is protected) is held back with that
//! reason. Finally the blast-radius caps are checked per account and per cluster.

use std::collections::{BTreeMap, HashMap, HashSet};

use common::event::{Finding, Severity};
use jiff::Timestamp;
use serde_json::json;

use crate::config::Caps;
use crate::cost::{Estimate, Pricing};
use crate::inventory::Resource;
use crate::kinds;
use crate::policy::{self, Action, Decision, Stage};
use crate::tags::{self, ResourceTags, TagPolicy, TagViolation};

/// Finding types (the platform's names).
pub mod finding_type {
    /// An eligible resource past its deadline.
    pub const EXPIRED: &str = "resource-expired";
    /// An eligible resource within 48 hours of its deadline.
    pub const EXPIRING: &str = "resource-expiring";
    /// Missing or invalid tags.
    pub const TAG_VIOLATION: &str = "tag-violation";
    /// Never torn down: whitelist, account, production, restricted, opted out, unreadable tags.
    pub const PROTECTED: &str = "protected";
}

/// Why a resource is spared by something other than its own tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Protected {
    /// Which rule (whitelist rule text, `allowed_accounts`, `unreadable-tags`).
    pub rule: String,
    /// One line for people.
    pub reason: String,
}

/// What the run does with one resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Spared by the whitelist, the account allowlist or unreadable tags.
    Protected(Protected),
    /// Tags missing or invalid: reported, never deleted.
    Violation(Vec<TagViolation>),
    /// Tags valid, but never eligible (production, restricted, opted out).
    Ineligible(Box<(ResourceTags, Decision)>),
    /// Eligible; this run does nothing (not due, or already warned for this deadline).
    Nothing(Box<(ResourceTags, Decision)>),
    /// Eligible and due a warning.
    Warn(Box<(ResourceTags, Decision)>),
    /// Eligible, expired: to be deleted.
    Delete(Box<(ResourceTags, Decision, Estimate)>),
    /// Expired, but it waits for a resource this run does not delete.
    Held(Box<(ResourceTags, Decision)>, String),
}

/// One resource and what the run does with it.
#[derive(Debug, Clone)]
pub struct Item {
    /// The resource.
    pub resource: Resource,
    /// The decision.
    pub outcome: Outcome,
}

/// The whole plan of a run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every resource, in inventory order.
    pub items: Vec<Item>,
    /// Indices into `items` of the deletions, grouped in waves: everything in a wave may go once
    /// the previous waves are gone.
    pub waves: Vec<Vec<usize>>,
    /// Set when a cap refuses the run: no deletion at all.
    pub cap_breach: Option<String>,
}

/// The inputs of the planner besides the inventory.
pub struct Rules<'a> {
    /// Tagging standard.
    pub policy: &'a TagPolicy,
    /// AWS accounts the job may act in.
    pub allowed_accounts: &'a [String],
    /// Caps.
    pub caps: &'a Caps,
    /// Prices.
    pub pricing: &'a Pricing,
    /// The whitelist verdict for a resource (`None`: not protected).
    pub whitelist: &'a dyn Fn(&Resource) -> Option<Protected>,
    /// "Now".
    pub now: Timestamp,
}

/// Decides every resource, orders the deletions, checks the caps.
pub fn plan(resources: Vec<Resource>, rules: &Rules<'_>) -> Plan {
    let mut items: Vec<Item> = resources
        .into_iter()
        .map(|resource| {
            let outcome = decide(&resource, rules);
            Item { resource, outcome }
        })
        .collect();
    let waves = order_deletions(&mut items);
    let cap_breach = check_caps(&items, rules.caps);
    Plan {
        items,
        waves,
        cap_breach,
    }
}

fn decide(r: &Resource, rules: &Rules<'_>) -> Outcome {
    if let Some(detail) = &r.tags_unreadable {
        return Outcome::Protected(Protected {
            rule: "unreadable-tags".to_string(),
            reason: format!("tags could not be read ({detail}): treated as protected"),
        });
    }
    if let Some(p) = (rules.whitelist)(r) {
        return Outcome::Protected(p);
    }
    if let crate::inventory::Scope::Aws { account, .. } = &r.scope
        && !rules.allowed_accounts.contains(account)
    {
        return Outcome::Protected(Protected {
            rule: "allowed_accounts".to_string(),
            reason: format!("account {account} is not in job.allowed_accounts"),
        });
    }
    let parsed = match tags::parse_tags(&r.tags, r.created_fallback, rules.policy, rules.now) {
        Ok(t) => t,
        Err(violations) => return Outcome::Violation(violations),
    };
    let decision = policy::evaluate(&parsed, rules.policy, rules.now);
    if !decision.eligible {
        return Outcome::Ineligible(Box::new((parsed, decision)));
    }
    match decision.action {
        Action::Delete => {
            let estimate = rules.pricing.estimate(r);
            Outcome::Delete(Box::new((parsed, decision, estimate)))
        }
        Action::Warn48h | Action::Warn24h => Outcome::Warn(Box::new((parsed, decision))),
        Action::None => Outcome::Nothing(Box::new((parsed, decision))),
    }
}

/// Holds back deletions whose `wait_for` includes a resource that stays, then sorts the rest in
/// waves (Kahn's algorithm over per-instance edges; kind order and id break ties).
fn order_deletions(items: &mut [Item]) -> Vec<Vec<usize>> {
    let index: HashMap<String, usize> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.resource.id.clone(), i))
        .collect();
    // Holding one deletion back can make another wait on it: repeat until nothing changes.
    loop {
        let deleting: HashSet<usize> = deletions(items).collect();
        let mut changed = false;
        for &i in &deleting {
            let blocker = items[i]
                .resource
                .wait_for
                .iter()
                .find(|w| index.get(*w).is_some_and(|j| !deleting.contains(j)))
                .cloned();
            if let Some(b) = blocker {
                let outcome =
                    std::mem::replace(&mut items[i].outcome, Outcome::Protected(placeholder()));
                if let Outcome::Delete(boxed) = outcome {
                    let (t, d, _) = *boxed;
                    items[i].outcome = Outcome::Held(
                        Box::new((t, d)),
                        format!("waits for {b}, which this run does not delete"),
                    );
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }

    let kind_rank: HashMap<&str, usize> = kinds::deletion_order()
        .into_iter()
        .enumerate()
        .map(|(i, k)| (k, i))
        .collect();
    let mut remaining: Vec<usize> = deletions(items).collect();
    let mut waves = Vec::new();
    let mut gone: HashSet<usize> = HashSet::new();
    while !remaining.is_empty() {
        let mut wave: Vec<usize> = remaining
            .iter()
            .copied()
            .filter(|&i| {
                items[i]
                    .resource
                    .wait_for
                    .iter()
                    .filter_map(|w| index.get(w))
                    .all(|j| gone.contains(j))
            })
            .collect();
        if wave.is_empty() {
            // A per-instance cycle (inconsistent inventory): hold every remaining deletion.
            for &i in &remaining {
                let outcome =
                    std::mem::replace(&mut items[i].outcome, Outcome::Protected(placeholder()));
                if let Outcome::Delete(boxed) = outcome {
                    let (t, d, _) = *boxed;
                    items[i].outcome = Outcome::Held(
                        Box::new((t, d)),
                        "dependency cycle in the inventory".to_string(),
                    );
                }
            }
            break;
        }
        wave.sort_by_key(|&i| {
            (
                kind_rank
                    .get(items[i].resource.kind)
                    .copied()
                    .unwrap_or(usize::MAX),
                items[i].resource.id.clone(),
            )
        });
        gone.extend(wave.iter().copied());
        remaining.retain(|i| !gone.contains(i));
        waves.push(wave);
    }
    waves
}

fn placeholder() -> Protected {
    Protected {
        rule: String::new(),
        reason: String::new(),
    }
}

fn deletions(items: &[Item]) -> impl Iterator<Item = usize> + '_ {
    items
        .iter()
        .enumerate()
        .filter(|(_, it)| matches!(it.outcome, Outcome::Delete(_)))
        .map(|(i, _)| i)
}

/// Checks deletions against the caps per account / cluster. The percentage is of the *eligible*
/// inventory of that scope (resources with valid tags that the job may ever tear down).
fn check_caps(items: &[Item], caps: &Caps) -> Option<String> {
    let mut deleting: BTreeMap<String, usize> = BTreeMap::new();
    let mut eligible: BTreeMap<String, usize> = BTreeMap::new();
    for it in items {
        let key = it.resource.scope.cap_key();
        match &it.outcome {
            Outcome::Delete(_) => {
                *deleting.entry(key.clone()).or_default() += 1;
                *eligible.entry(key).or_default() += 1;
            }
            Outcome::Nothing(_) | Outcome::Warn(_) | Outcome::Held(..) => {
                *eligible.entry(key).or_default() += 1
            }
            _ => {}
        }
    }
    let mut breaches = Vec::new();
    for (scope, n) in &deleting {
        let total = eligible.get(scope).copied().unwrap_or(*n);
        let percent = 100.0 * *n as f64 / total as f64;
        if *n > caps.max_deletions {
            breaches.push(format!(
                "{scope}: {n} deletions exceed job.caps.max_deletions = {}",
                caps.max_deletions
            ));
        } else if *n > caps.percent_applies_above && percent > caps.max_percent {
            breaches.push(format!(
                "{scope}: {n} deletions are {percent:.0}% of {total} eligible resources, above job.caps.max_percent = {}%",
                caps.max_percent
            ));
        }
    }
    (!breaches.is_empty()).then(|| {
        format!(
            "blast-radius cap exceeded, nothing deleted: {}",
            breaches.join("; ")
        )
    })
}

impl Item {
    /// The action this run takes.
    pub fn action(&self) -> Action {
        match &self.outcome {
            Outcome::Delete(_) => Action::Delete,
            Outcome::Warn(b) => b.1.action,
            _ => Action::None,
        }
    }

    /// The stage, when tags are valid.
    pub fn stage(&self) -> Option<Stage> {
        self.tags_and_decision().map(|(_, d)| d.stage)
    }

    /// Tags and decision, when tags are valid.
    pub fn tags_and_decision(&self) -> Option<(&ResourceTags, &Decision)> {
        match &self.outcome {
            Outcome::Ineligible(b)
            | Outcome::Nothing(b)
            | Outcome::Warn(b)
            | Outcome::Held(b, _) => Some((&b.0, &b.1)),
            Outcome::Delete(b) => Some((&b.0, &b.1)),
            Outcome::Protected(_) | Outcome::Violation(_) => None,
        }
    }

    /// Why the run does what it does with this resource, one line.
    pub fn reason(&self) -> String {
        match &self.outcome {
            Outcome::Protected(p) => p.reason.clone(),
            Outcome::Violation(v) => v
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
            Outcome::Ineligible(b) => b.1.reason.clone(),
            Outcome::Nothing(b) | Outcome::Warn(b) => b.1.action_reason.clone(),
            Outcome::Delete(b) => format!("{}; {}", b.1.action_reason, b.1.reason),
            Outcome::Held(_, why) => format!("expired but held: {why}"),
        }
    }

    /// The finding for the event, or `None` for a resource that needs no mention (eligible, not due).
    pub fn finding(&self) -> Option<Finding> {
        let r = &self.resource;
        let (kind, severity) = match &self.outcome {
            Outcome::Protected(_) | Outcome::Ineligible(_) => {
                (finding_type::PROTECTED, Severity::Info)
            }
            Outcome::Violation(_) => (finding_type::TAG_VIOLATION, Severity::Warning),
            // Expired, waiting out the notice period after a late warning: reported, not acted on.
            Outcome::Nothing(b) if b.1.stage == Stage::Expired => {
                (finding_type::EXPIRED, Severity::Warning)
            }
            Outcome::Nothing(_) => return None,
            Outcome::Warn(_) => (finding_type::EXPIRING, Severity::Warning),
            Outcome::Delete(_) | Outcome::Held(..) => (finding_type::EXPIRED, Severity::Critical),
        };
        let reason = self.reason();
        let mut f = Finding::new(
            kind,
            severity,
            &r.id,
            format!("{} {}: {reason}", r.kind, r.name),
        )
        .with("kind", r.kind)
        .with("action", self.action().as_str())
        .with("reason", reason.clone());
        match self.tags_and_decision() {
            Some((t, d)) => {
                f = f
                    .with("deadline", d.deadline.to_string())
                    .with("stage", d.stage.as_str())
                    .with("owner", t.owner.clone())
                    .with("project", t.project.clone());
            }
            None => {
                f = f
                    .with("deadline", serde_json::Value::Null)
                    .with("owner", r.tags.get("owner").cloned())
                    .with("project", r.tags.get("project").cloned());
            }
        }
        let cost = match &self.outcome {
            Outcome::Delete(b) => Some(b.2.avoided_usd),
            _ => None,
        };
        f = f.with("cost_avoided_usd", cost);
        match &self.outcome {
            Outcome::Protected(p) => f = f.with("rule", p.rule.clone()),
            Outcome::Violation(v) => {
                f = f.with("violations", json!(v.iter().map(|v| json!({"tag": v.tag, "value": v.value, "problem": v.problem, "message": v.message})).collect::<Vec<_>>()));
            }
            _ => {}
        }
        Some(f)
    }
}

#[cfg(test)]
mod tests;
