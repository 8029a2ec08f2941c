//! Owner notices: one email per owner per run, listing every resource of theirs that reaches a
//! warning stage as a card with signed **Snooze +7 days**, **Snooze +14 days** and **Delete
//! now** links ([`email`] renders it).
//!
//! Sent only by `--execute` runs. A resource's warning stage is recorded on it only after the
//! SMTP server accepted the owner's email, so an SMTP failure is retried by the next run.
//! Resources with tag violations (no valid owner to write to) go, in one digest ([`digest`]),
//! to the configured fallback address.

pub mod digest;
pub mod email;

use std::collections::BTreeMap;

use common::config::Email;
use common::event::{AlertSent, Severity};
use common::harness::RunContext;
use jiff::SignedDuration;

use crate::config::{SnoozeConfig, TtlConfig};
use crate::plan::{Outcome, Plan};
use crate::policy::{Action, Decision};
use crate::snooze::token::{Claims, Keyring, LinkAction, link};
use crate::tags::{ResourceTags, TagPolicy};
use email::{Card, Footer, OwnerEmail};

/// The snooze lengths offered, in days.
pub const SNOOZE_DAYS: [u32; 2] = [7, 14];

/// What the notices of a run did.
#[derive(Debug, Default)]
pub struct Sent {
    /// Ids of resources whose owner's email was accepted (their stage may be recorded).
    pub notified: Vec<String>,
    /// One entry per email attempted.
    pub alerts: Vec<AlertSent>,
    /// Failures (the stages of those resources are not recorded: retried next run).
    pub errors: Vec<String>,
}

/// The footer every owner email carries, from the config.
pub fn footer(snooze: &SnoozeConfig, policy: &TagPolicy) -> Footer {
    Footer {
        sender: snooze.sender.clone(),
        contact: snooze.contact(),
        deletion_note: snooze.deletion_note().to_string(),
        opt_out: format!("{}=false", policy.keys.auto_teardown),
        owner_tag: policy.keys.owner.clone(),
    }
}

/// The card of one resource due a warning, with its signed links.
pub fn card(
    r: &inventory::Resource,
    tags: &ResourceTags,
    decision: &Decision,
    policy: &TagPolicy,
    pricing: &inventory::Pricing,
    base_url: &str,
    keyring: &Keyring,
) -> Card {
    let extensions_left = policy.max_extensions.saturating_sub(tags.extension_count);
    let lifetime = tags.ttl + tags.extension();
    let claims = |action| Claims {
        resource: r.id.clone(),
        action,
        deadline: decision.deadline,
        extension_count: tags.extension_count,
        owner: tags.owner.clone(),
        // Valid until the resource can be deleted: for a final warning sent after (or too
        // close to) the deadline, `notice_period` from now.
        expires: decision.delete_not_before,
    };
    let fits = |days: u32| {
        lifetime + SignedDuration::from_hours(i64::from(days) * 24) <= policy.max_lifetime
    };
    let snooze_links: Vec<(u32, String)> = SNOOZE_DAYS
        .iter()
        .copied()
        .filter(|_| extensions_left > 0)
        .filter(|d| fits(*d))
        .map(|days| {
            let action = LinkAction::Extend(days);
            (
                days,
                link(base_url, &r.id, action, &keyring.sign(&claims(action))),
            )
        })
        .collect();
    let snooze_note = if extensions_left == 0 {
        Some(format!(
            "no snooze left; to keep it, set {}=false",
            policy.keys.auto_teardown
        ))
    } else if snooze_links.len() < SNOOZE_DAYS.len() {
        Some(format!(
            "a longer snooze would pass the maximum lifetime of {} days",
            policy.max_lifetime.as_hours() / 24
        ))
    } else {
        None
    };
    let release_link = Some(link(
        base_url,
        &r.id,
        LinkAction::Release,
        &keyring.sign(&claims(LinkAction::Release)),
    ));
    let estimate = pricing.estimate(r);
    let location = match &r.scope {
        inventory::Scope::Aws { account, region } => vec![
            ("Account".to_string(), account.clone()),
            ("Region".to_string(), region.clone()),
        ],
        inventory::Scope::Kubernetes { cluster } => {
            let mut l = vec![("Cluster".to_string(), cluster.clone())];
            if let Some(ns) = &r.namespace {
                l.push(("Namespace".to_string(), ns.clone()));
            }
            l
        }
    };
    Card {
        id: r.id.clone(),
        name: r.display_name().unwrap_or(&r.name).to_string(),
        short_id: r.name.clone(),
        kind: email::kind_title(r.kind),
        location,
        project: tags.project.clone(),
        deadline: decision.deadline,
        delete_at: decision.delete_not_before,
        final_warning: decision.action == Action::Warn24h,
        why: why_eligible(tags, policy),
        monthly_usd: estimate
            .hourly_usd
            .map(|h| inventory::cost::round_cents(h * inventory::cost::HOURS_PER_MONTH)),
        cost_note: estimate.note,
        extensions_used: tags.extension_count,
        max_extensions: policy.max_extensions,
        snooze_links,
        snooze_note,
        release_link,
    }
}

/// Why a resource is due, in plain words: its time to live and its opt-in, no internal terms.
pub fn why_eligible(tags: &ResourceTags, policy: &TagPolicy) -> String {
    let snoozed = match tags.extended_days {
        0 => String::new(),
        1 => " plus 1 day of snoozes".to_string(),
        d => format!(" plus {d} days of snoozes"),
    };
    format!(
        "Its time to live of {}{snoozed}, counted from {}, runs out. It is a {} resource \
         (not production) with {}=true, so it is deleted automatically.",
        human_duration(tags.ttl),
        email::human_time(tags.created_at),
        tags.environment,
        policy.keys.auto_teardown
    )
}

/// `7 days`, `1 day`, `12 hours`.
fn human_duration(d: SignedDuration) -> String {
    let hours = d.as_hours();
    if hours % 24 == 0 {
        match hours / 24 {
            1 => "1 day".to_string(),
            n => format!("{n} days"),
        }
    } else if hours == 1 {
        "1 hour".to_string()
    } else {
        format!("{hours} hours")
    }
}

/// Sends this run's owner notices.
pub async fn send(
    plan: &Plan,
    ctx: &RunContext<'_, TtlConfig>,
    snooze: &SnoozeConfig,
    keyring: &Keyring,
) -> Sent {
    let job = &ctx.config.job;
    let mut sent = Sent::default();
    let mut by_owner: BTreeMap<&str, Vec<Card>> = BTreeMap::new();
    for item in &plan.items {
        let Outcome::Warn(b) = &item.outcome else {
            continue;
        };
        let (tags, decision) = (&b.0, &b.1);
        by_owner.entry(tags.owner.as_str()).or_default().push(card(
            &item.resource,
            tags,
            decision,
            &job.policy,
            &job.pricing,
            snooze.base_url.as_str(),
            keyring,
        ));
    }

    let footer = footer(snooze, &job.policy);
    for (owner, cards) in by_owner {
        let final_warning = cards.iter().any(|c| c.final_warning);
        let ids: Vec<String> = cards.iter().map(|c| c.id.clone()).collect();
        let mail = OwnerEmail {
            owner: owner.to_string(),
            greeting_name: snooze.owner_names.get(owner).cloned(),
            cards,
            now: ctx.clock.now(),
            footer: footer.clone(),
        }
        .sorted()
        .render();
        let to = match Email::parse(owner) {
            Ok(e) => vec![e],
            Err(e) => {
                sent.errors.push(format!("notice for {owner}: {e}"));
                continue;
            }
        };
        ctx.acted();
        let result = ctx
            .notifier
            .send_email(&to, &mail.subject, &mail.text, Some(&mail.html))
            .await;
        let delivered = result.is_ok();
        if delivered {
            sent.notified.extend(ids);
        }
        sent.alerts.push(AlertSent {
            channel: "email".into(),
            target: owner.to_string(),
            subject: mail.subject,
            severity: if final_warning {
                Severity::Critical
            } else {
                Severity::Warning
            },
            sent_at: ctx.clock.now(),
            delivered,
            error: result.as_ref().err().map(ToString::to_string),
        });
        if let Err(e) = result {
            sent.errors.push(format!(
                "notice to {owner} not accepted, retried next run: {e}"
            ));
        }
    }

    if let Some(fallback) = &snooze.fallback_email {
        digest::send(plan, ctx, fallback, &mut sent).await;
    }
    sent
}
