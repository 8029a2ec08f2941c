//! The planner: from an inventory to a decision per resource and an ordered list of deletions.
//!
//! Every resource gets exactly one [`Outcome`] with a reason, checked in this order, first match
//! wins — the order is the safety argument ([`decide`], which the snooze service applies too):
//! 1. tags unreadable → protected;
//! 2. the whitelist protects it → protected (naming the rule);
//! 3. an AWS account outside `allowed_accounts` → protected;
//! 4. part of another resource (a root volume, an instance of an Auto Scaling group): it goes
//!    with its owner, never on its own; if it is protected in its own right (steps 1–3, or its
//!    tags say production, restricted, opted out), its owner is held;
//! 5. any tag violation → `tag-violation`, never deleted;
//! 6. not eligible (prod, auto-teardown=false, restricted data) → protected;
//! 7. otherwise the stage decides: nothing, a warning, or a deletion.
//!
//! Deletions are then ordered per instance (a resource after everything in its `wait_for`) with
//! the kind registry's order breaking ties. A deletion is held back, with the reason, when it
//! waits for a resource which is *not* being deleted (the instance using this security group is
//! protected), when it would take a protected part with it, or when a kind it may depend on could
//! not be listed in its scope (an instance listing that failed holds that region's security
//! groups and volumes). Finally the blast-radius caps are checked per account and per cluster;
//! a resource going with its owner counts as a deletion.

use std::collections::{BTreeMap, HashMap, HashSet};

use common::event::{Finding, Severity};
use jiff::Timestamp;
use serde_json::json;

use inventory::{Estimate, Pricing, Resource};

use crate::config::Caps;
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
    /// Expired, but it waits for a resource this run does not delete, would take a protected part
    /// with it, or may depend on a kind that could not be listed.
    Held(Box<(ResourceTags, Decision)>, String),
    /// Part of another resource that this run keeps: nothing to do (it goes when its owner does).
    /// `protection` says why it is protected in its own right, when it is: that keeps its owner.
    Part {
        /// The owner's id.
        owner: String,
        /// Why the part itself must not go, if it must not.
        protection: Option<String>,
    },
    /// Part of a resource this run deletes: it goes with it (no removal call of its own; the
    /// executor audits it and waits for it to be gone).
    WithOwner(Box<WithOwner>),
}

/// A part that goes with its owner.
#[derive(Debug, Clone, PartialEq)]
pub struct WithOwner {
    /// The owner's id.
    pub owner: String,
    /// The owner's deadline.
    pub deadline: Timestamp,
    /// Why the owner is deleted.
    pub owner_reason: String,
    /// The part's own cost over the horizon.
    pub estimate: Estimate,
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
    /// Why a resource may depend on something that could not be listed (`None`: the listing of
    /// everything it may depend on succeeded).
    pub listing_failure: &'a dyn Fn(&Resource) -> Option<String>,
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
    let waves = order_deletions(&mut items, rules.pricing);
    let cap_breach = check_caps(&items, rules.caps);
    Plan {
        items,
        waves,
        cap_breach,
    }
}

/// The outcome for one resource on its own, before ordering (which may still hold a deletion
/// back or send a part with its owner). The snooze service asks the same question of the
/// resource it is about to extend: only an eligible outcome ([`Outcome::is_eligible`]) may be.
pub fn decide(r: &Resource, rules: &Rules<'_>) -> Outcome {
    if let Some(p) = protection(r, rules) {
        return match &r.part_of {
            Some(owner) if !owner.starts_with("unresolved:") => Outcome::Part {
                owner: owner.clone(),
                protection: Some(p.reason),
            },
            _ => Outcome::Protected(p),
        };
    }
    match &r.part_of {
        Some(owner) if owner.starts_with("unresolved:") => {
            return Outcome::Protected(Protected {
                rule: "part-of-unknown".to_string(),
                reason: format!(
                    "part of {}, which was not found: never removed on its own",
                    owner.trim_start_matches("unresolved:")
                ),
            });
        }
        Some(owner) => {
            // Its own tags only matter when they protect it (root volumes carry none).
            let protection = tags::parse_tags(&r.tags, r.created_fallback, rules.policy, rules.now)
                .ok()
                .map(|t| policy::evaluate(&t, rules.policy, rules.now))
                .filter(|d| !d.eligible)
                .map(|d| d.reason);
            return Outcome::Part {
                owner: owner.clone(),
                protection,
            };
        }
        None => {}
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
        Action::Delete => match (rules.listing_failure)(r) {
            Some(why) => Outcome::Held(Box::new((parsed, decision)), why),
            None => {
                let estimate = rules.pricing.estimate(r);
                Outcome::Delete(Box::new((parsed, decision, estimate)))
            }
        },
        Action::Warn48h | Action::Warn24h => Outcome::Warn(Box::new((parsed, decision))),
        Action::None => Outcome::Nothing(Box::new((parsed, decision))),
    }
}

/// Protection that comes before the tags: unreadable tags, the whitelist, the account allowlist.
fn protection(r: &Resource, rules: &Rules<'_>) -> Option<Protected> {
    if let Some(detail) = &r.tags_unreadable {
        return Some(Protected {
            rule: "unreadable-tags".to_string(),
            reason: format!("tags could not be read ({detail}): treated as protected"),
        });
    }
    if let Some(p) = (rules.whitelist)(r) {
        return Some(p);
    }
    if let inventory::Scope::Aws { account, .. } = &r.scope
        && !rules.allowed_accounts.contains(account)
    {
        return Some(Protected {
            rule: "allowed_accounts".to_string(),
            reason: format!("account {account} is not in job.allowed_accounts"),
        });
    }
    None
}

impl Outcome {
    /// Every outcome's [`name`](Outcome::name), for metrics that show zeros too.
    pub const NAMES: [&'static str; 9] = [
        "protected",
        "tag-violation",
        "ineligible",
        "nothing",
        "warn",
        "delete",
        "held",
        "part",
        "with-owner",
    ];

    /// A stable kebab-case name of the outcome, for metric labels.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Protected(_) => "protected",
            Outcome::Violation(_) => "tag-violation",
            Outcome::Ineligible(_) => "ineligible",
            Outcome::Nothing(_) => "nothing",
            Outcome::Warn(_) => "warn",
            Outcome::Delete(_) => "delete",
            Outcome::Held(..) => "held",
            Outcome::Part { .. } => "part",
            Outcome::WithOwner(_) => "with-owner",
        }
    }

    /// Tags and decision, when tags are valid.
    pub fn tags_and_decision(&self) -> Option<(&ResourceTags, &Decision)> {
        match self {
            Outcome::Ineligible(b)
            | Outcome::Nothing(b)
            | Outcome::Warn(b)
            | Outcome::Held(b, _) => Some((&b.0, &b.1)),
            Outcome::Delete(b) => Some((&b.0, &b.1)),
            Outcome::Protected(_)
            | Outcome::Violation(_)
            | Outcome::Part { .. }
            | Outcome::WithOwner(_) => None,
        }
    }

    /// Why the run does what it does with this resource, one line.
    pub fn reason(&self) -> String {
        match self {
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
            Outcome::Part {
                owner,
                protection: None,
            } => format!("part of {owner}: it goes when its owner does"),
            Outcome::Part {
                owner,
                protection: Some(why),
            } => format!("part of {owner}, and protected: {why}"),
            Outcome::WithOwner(w) => format!("goes with {}: {}", w.owner, w.owner_reason),
        }
    }

    /// Whether the resource is eligible for teardown on its own (not protected, tags valid,
    /// opted in, not production or restricted, not a part): what a snooze or a release requires.
    pub fn is_eligible(&self) -> bool {
        matches!(
            self,
            Outcome::Nothing(_) | Outcome::Warn(_) | Outcome::Delete(_) | Outcome::Held(..)
        )
    }
}

/// Holds back deletions that cannot go this run, sends parts with their deleted owners, then
/// sorts what is removed in waves (Kahn's algorithm over per-instance edges; kind order and id
/// break ties).
fn order_deletions(items: &mut [Item], pricing: &Pricing) -> Vec<Vec<usize>> {
    let index: HashMap<String, usize> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.resource.id.clone(), i))
        .collect();
    // Parts of each owner.
    let mut parts: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        if let Some(owner) = it.resource.part_of.as_ref().and_then(|o| index.get(o)) {
            parts.entry(*owner).or_default().push(i);
        }
    }
    // Holding one deletion back can make another wait on it, and change what goes with whom:
    // repeat until nothing changes.
    loop {
        let gone: HashSet<usize> = removals(items).collect();
        let mut changed = false;
        for i in 0..items.len() {
            let hold = match &items[i].outcome {
                Outcome::Delete(_) => {
                    let waits = items[i]
                        .resource
                        .wait_for
                        .iter()
                        .find(|w| index.get(*w).is_some_and(|j| !gone.contains(j)))
                        .map(|b| format!("waits for {b}, which this run does not delete"));
                    waits.or_else(|| protected_part(items, &parts, i))
                }
                _ => None,
            };
            if let Some(why) = hold {
                hold_back(&mut items[i], why);
                changed = true;
                continue;
            }
            // A part follows its owner: with it when the owner goes, kept when it stays.
            let owner = items[i]
                .resource
                .part_of
                .as_ref()
                .and_then(|o| index.get(o))
                .copied();
            let Some(owner) = owner else { continue };
            let owner_goes = gone.contains(&owner);
            let next = match (&items[i].outcome, owner_goes) {
                (
                    Outcome::Part {
                        protection: None, ..
                    },
                    true,
                ) => Some(with_owner(&items[owner], &items[i].resource, pricing)),
                (Outcome::WithOwner(w), false) => Some(Outcome::Part {
                    owner: w.owner.clone(),
                    protection: None,
                }),
                _ => None,
            };
            if let Some(next) = next {
                items[i].outcome = next;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    let kind_rank: HashMap<&str, usize> = inventory::kinds::deletion_order()
        .into_iter()
        .enumerate()
        .map(|(i, k)| (k, i))
        .collect();
    let mut remaining: Vec<usize> = removals(items).collect();
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
                hold_back(
                    &mut items[i],
                    "dependency cycle in the inventory".to_string(),
                );
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

/// Turns a deletion into a hold with `why`; a part going with it stays a part.
fn hold_back(item: &mut Item, why: String) {
    let outcome = std::mem::replace(
        &mut item.outcome,
        Outcome::Part {
            owner: String::new(),
            protection: None,
        },
    );
    item.outcome = match outcome {
        Outcome::Delete(boxed) => {
            let (t, d, _) = *boxed;
            Outcome::Held(Box::new((t, d)), why)
        }
        Outcome::WithOwner(w) => Outcome::Part {
            owner: w.owner,
            protection: None,
        },
        other => other,
    };
}

/// Why deleting `owner` would take a protected part with it, looking through parts of parts (an
/// Auto Scaling group's instance's root volume).
fn protected_part(
    items: &[Item],
    parts: &HashMap<usize, Vec<usize>>,
    owner: usize,
) -> Option<String> {
    let mut stack: Vec<usize> = parts.get(&owner).cloned().unwrap_or_default();
    let mut seen: HashSet<usize> = HashSet::new();
    while let Some(p) = stack.pop() {
        if !seen.insert(p) {
            continue;
        }
        if let Outcome::Part {
            protection: Some(why),
            ..
        } = &items[p].outcome
        {
            return Some(format!(
                "deleting it would also delete {}, which is protected: {why}",
                items[p].resource.id
            ));
        }
        stack.extend(parts.get(&p).into_iter().flatten().copied());
    }
    None
}

/// The outcome of a part whose owner is being deleted (or goes with its own owner).
fn with_owner(owner: &Item, part: &Resource, pricing: &Pricing) -> Outcome {
    let (deadline, owner_reason) = match &owner.outcome {
        Outcome::Delete(b) => (b.1.deadline, b.1.reason.clone()),
        Outcome::WithOwner(w) => (w.deadline, format!("it goes with {}", w.owner)),
        _ => (Timestamp::MAX, String::new()),
    };
    Outcome::WithOwner(Box::new(WithOwner {
        owner: owner.resource.id.clone(),
        deadline,
        owner_reason,
        estimate: pricing.estimate(part),
    }))
}

/// What this run removes: deletions and the parts going with them.
fn removals(items: &[Item]) -> impl Iterator<Item = usize> + '_ {
    items
        .iter()
        .enumerate()
        .filter(|(_, it)| matches!(it.outcome, Outcome::Delete(_) | Outcome::WithOwner(_)))
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
            Outcome::Delete(_) | Outcome::WithOwner(_) => {
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
            Outcome::Delete(_) | Outcome::WithOwner(_) => Action::Delete,
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
        self.outcome.tags_and_decision()
    }

    /// Why the run does what it does with this resource, one line.
    pub fn reason(&self) -> String {
        self.outcome.reason()
    }

    /// The cost avoided by this run's removal of it, when it is removed.
    pub fn estimate(&self) -> Option<&Estimate> {
        match &self.outcome {
            Outcome::Delete(b) => Some(&b.2),
            Outcome::WithOwner(w) => Some(&w.estimate),
            _ => None,
        }
    }

    /// The deadline that makes it go this run, when it is removed.
    pub fn removal_deadline(&self) -> Option<Timestamp> {
        match &self.outcome {
            Outcome::Delete(b) => Some(b.1.deadline),
            Outcome::WithOwner(w) => Some(w.deadline),
            _ => None,
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
            Outcome::Delete(_) | Outcome::Held(..) | Outcome::WithOwner(_) => {
                (finding_type::EXPIRED, Severity::Critical)
            }
            // A part its owner keeps: nothing to say about it (a root volume is no violation).
            Outcome::Part {
                protection: None, ..
            } => return None,
            Outcome::Part { .. } => (finding_type::PROTECTED, Severity::Info),
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
                // A production resource without a ttl has no deadline at all.
                let deadline = (d.deadline != Timestamp::MAX).then(|| d.deadline.to_string());
                f = f
                    .with("deadline", deadline)
                    .with("stage", d.stage.as_str())
                    .with("owner", t.owner.clone())
                    .with("project", t.project.clone());
            }
            None => {
                f = f
                    .with("deadline", self.removal_deadline().map(|d| d.to_string()))
                    .with("owner", r.tags.get("owner").cloned())
                    .with("project", r.tags.get("project").cloned());
            }
        }
        if let Some(name) = r.display_name() {
            f = f.with("name", name);
        }
        let part_of = match &self.outcome {
            Outcome::Part { owner, .. } => Some(owner.clone()),
            Outcome::WithOwner(w) => Some(w.owner.clone()),
            _ => None,
        };
        if let Some(owner) = part_of {
            f = f.with("part_of", owner);
        }
        let estimate = self.estimate();
        f = f.with("cost_avoided_usd", estimate.and_then(|e| e.avoided_usd));
        if let Some(note) = estimate.and_then(|e| e.note.clone()) {
            f = f.with("cost_note", note);
        }
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
