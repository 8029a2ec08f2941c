//! Owner notices: one email per owner per run, listing every resource of theirs that reaches a
//! warning stage, each with signed **Snooze +7 days** / **Snooze +14 days** links.
//!
//! Sent only by `--execute` runs. A resource's warning stage is recorded on it only after the
//! SMTP server accepted the owner's email, so an SMTP failure is retried by the next run.
//! Resources with tag violations (no valid owner to write to) go, in one digest, to the
//! configured fallback address.

use std::collections::BTreeMap;

use common::config::Email;
use common::event::{AlertSent, Severity};
use common::harness::RunContext;
use jiff::SignedDuration;

use crate::config::{SnoozeConfig, TtlConfig};
use crate::plan::{Item, Outcome, Plan};
use crate::policy::{Action, Decision};
use crate::snooze::escape_html;
use crate::snooze::token::{Claims, Keyring, extend_link};
use crate::tags::ResourceTags;

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

/// One resource in an owner's email.
struct Line<'a> {
    item: &'a Item,
    tags: &'a ResourceTags,
    decision: &'a Decision,
    /// Estimated cost per month, `None` when the pricing table does not know it.
    monthly_usd: Option<f64>,
    links: Vec<(u32, String)>,
    extensions_left: u8,
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
    let mut by_owner: BTreeMap<&str, Vec<Line<'_>>> = BTreeMap::new();
    for item in &plan.items {
        let Outcome::Warn(b) = &item.outcome else {
            continue;
        };
        let (tags, decision) = (&b.0, &b.1);
        let extensions_left = job
            .policy
            .max_extensions
            .saturating_sub(tags.extension_count);
        let lifetime = tags.ttl + tags.extension();
        let links = SNOOZE_DAYS
            .iter()
            .filter(|_| extensions_left > 0)
            .filter(|d| {
                lifetime + SignedDuration::from_hours(i64::from(**d) * 24)
                    <= job.policy.max_lifetime
            })
            .map(|&days| {
                let claims = Claims {
                    resource: item.resource.id.clone(),
                    days,
                    deadline: decision.deadline,
                    extension_count: tags.extension_count,
                    owner: tags.owner.clone(),
                    // Valid until the resource can be deleted: for a final warning sent
                    // after the deadline, `notice_period` from now.
                    expires: decision.delete_not_before,
                };
                (
                    days,
                    extend_link(
                        snooze.base_url.as_str(),
                        &item.resource.id,
                        days,
                        &keyring.sign(&claims),
                    ),
                )
            })
            .collect();
        by_owner.entry(tags.owner.as_str()).or_default().push(Line {
            item,
            tags,
            decision,
            monthly_usd: job
                .pricing
                .estimate(&item.resource)
                .hourly_usd
                .map(|h| h * inventory::cost::HOURS_PER_MONTH),
            links,
            extensions_left,
        });
    }

    for (owner, lines) in &by_owner {
        let final_warning = lines.iter().any(|l| l.decision.action == Action::Warn24h);
        let subject = format!(
            "[ttl-teardown] {}{} of yours will be deleted {}",
            if final_warning { "final warning: " } else { "" },
            plural(lines.len(), "resource"),
            if final_warning {
                "within 24 hours"
            } else {
                "within 48 hours"
            }
        );
        let (text, html) = render(owner, lines, job.policy.max_extensions);
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
            .send_email(&to, &subject, &text, Some(&html))
            .await;
        let delivered = result.is_ok();
        if delivered {
            sent.notified
                .extend(lines.iter().map(|l| l.item.resource.id.clone()));
        }
        sent.alerts.push(AlertSent {
            channel: "email".into(),
            target: (*owner).to_string(),
            subject,
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
        send_violations_digest(plan, ctx, fallback, &mut sent).await;
    }
    sent
}

/// Resources whose tags are invalid have no owner to write to: one digest to the fallback address.
async fn send_violations_digest(
    plan: &Plan,
    ctx: &RunContext<'_, TtlConfig>,
    fallback: &Email,
    sent: &mut Sent,
) {
    let violations: Vec<&Item> = plan
        .items
        .iter()
        .filter(|i| matches!(i.outcome, Outcome::Violation(_)))
        .collect();
    if violations.is_empty() {
        return;
    }
    let subject = format!(
        "[ttl-teardown] {} with invalid TTL tags",
        plural(violations.len(), "resource")
    );
    let mut text = String::from(
        "These resources carry missing or invalid TTL tags. They are never torn down, and their owners cannot be warned until the tags are fixed.\n\n",
    );
    let mut html = String::from(
        "<p>These resources carry missing or invalid TTL tags. They are never torn down, and their owners cannot be warned until the tags are fixed.</p><ul>",
    );
    for item in &violations {
        text.push_str(&format!(
            "- {} ({}): {}\n",
            item.resource.id,
            item.resource.kind,
            item.reason()
        ));
        html.push_str(&format!(
            "<li><code>{}</code> ({}): {}</li>",
            escape_html(&item.resource.id),
            escape_html(item.resource.kind),
            escape_html(&item.reason())
        ));
    }
    html.push_str("</ul>");
    ctx.acted();
    let result = ctx
        .notifier
        .send_email(std::slice::from_ref(fallback), &subject, &text, Some(&html))
        .await;
    sent.alerts.push(AlertSent {
        channel: "email".into(),
        target: fallback.to_string(),
        subject,
        severity: Severity::Warning,
        sent_at: ctx.clock.now(),
        delivered: result.is_ok(),
        error: result.as_ref().err().map(ToString::to_string),
    });
    if let Err(e) = result {
        sent.errors
            .push(format!("tag-violation digest to {fallback}: {e}"));
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn render(owner: &str, lines: &[Line<'_>], max_extensions: u8) -> (String, String) {
    let mut text = format!(
        "Hello {owner},\n\nThe resources below are yours and will be deleted automatically at their deadline (UTC) unless you extend them. \
         Each may be extended at most {max_extensions} times.\n\n"
    );
    let mut html = format!(
        "<html><body style=\"font-family: sans-serif\"><p>Hello {},</p><p>The resources below are yours and will be deleted automatically at their \
         deadline (UTC) unless you extend them. Each may be extended at most {max_extensions} times.</p>\
         <table cellpadding=\"6\" style=\"border-collapse: collapse\"><tr><th align=\"left\">Resource</th><th align=\"left\">Kind</th>\
         <th align=\"left\">Project</th><th align=\"left\">Deadline (UTC)</th><th align=\"left\">Why it is eligible</th>\
         <th align=\"left\">Est. cost / month</th><th align=\"left\">Extend</th></tr>",
        escape_html(owner)
    );
    for l in lines {
        let r = &l.item.resource;
        let stage = l.decision.action.as_str();
        text.push_str(&format!(
            "- {}\n  kind: {}, project: {}\n  deadline: {} ({stage})\n  why: {}\n  estimated cost: {}/month\n",
            r.id, r.kind, l.tags.project, l.decision.deadline, l.decision.reason, money(l.monthly_usd)
        ));
        let mut cell = String::new();
        if l.links.is_empty() {
            text.push_str("  no extension left: it will be deleted at the deadline\n");
            cell.push_str("no extension left");
        } else {
            text.push_str(&format!(
                "  extensions left: {} of {max_extensions}\n",
                l.extensions_left
            ));
            for (days, link) in &l.links {
                text.push_str(&format!("  Snooze +{days} days: {link}\n"));
                cell.push_str(&format!(
                    "<a href=\"{}\">Snooze +{days} days</a><br>",
                    escape_html(link)
                ));
            }
            cell.push_str(&format!(
                "{} of {max_extensions} extensions left",
                l.extensions_left
            ));
        }
        text.push('\n');
        html.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td><td>{cell}</td></tr>",
            escape_html(&r.id),
            escape_html(r.kind),
            escape_html(&l.tags.project),
            l.decision.deadline,
            escape_html(stage),
            escape_html(&l.decision.reason),
            money(l.monthly_usd)
        ));
    }
    text.push_str("Links open a confirmation page; nothing changes until you confirm there.\n");
    html.push_str("</table><p>Links open a confirmation page; nothing changes until you confirm there.</p></body></html>");
    (text, html)
}

/// `$12.34`, or `unknown` when the pricing table has no price: unknown must not read as free.
fn money(v: Option<f64>) -> String {
    match v {
        Some(v) => format!("${:.2}", inventory::cost::round_cents(v)),
        None => "unknown".to_string(),
    }
}
