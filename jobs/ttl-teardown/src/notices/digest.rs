//! The platform digest: resources whose tags are missing or invalid have no owner to write to,
//! so one email to the fallback address lists them, **one row per resource** with its problems
//! said once (`missing: owner, project, ttl`), in an HTML document and a text part.
//!
//! Parts of another resource (a root volume attached with DeleteOnTermination,
//! [`inventory::Resource::part_of`]) are never in it: they go with their owner and need no tags
//! of their own (AWS leaves root volumes untagged by default).

use common::config::Email;
use common::event::{AlertSent, Severity};
use common::harness::RunContext;

use super::Sent;
use super::email::{Rendered, TEXT_COLUMNS, columns, kind_title};
use crate::config::TtlConfig;
use crate::plan::{Item, Outcome, Plan};
use crate::snooze::escape_html;
use crate::tags::{TagViolation, ViolationKind};

/// One resource's problems, said once: `missing: owner, project`, then each other problem.
pub fn problems(violations: &[TagViolation]) -> Vec<String> {
    let mut missing = Vec::new();
    let mut other = Vec::new();
    for v in violations {
        match v.problem {
            ViolationKind::Missing => missing.push(v.tag.clone()),
            _ => other.push(match &v.value {
                Some(value) => format!("{} = {value:?}: {}", v.tag, v.message),
                None => format!("{}: {}", v.tag, v.message),
            }),
        }
    }
    let mut out = Vec::new();
    if !missing.is_empty() {
        out.push(format!("missing: {}", missing.join(", ")));
    }
    // A problem reported twice (the same tag and message) is listed once.
    for p in other {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// The resources the digest lists: tag violations that are not parts of another resource.
pub fn listed(items: &[Item]) -> Vec<(&Item, &[TagViolation])> {
    items
        .iter()
        .filter(|i| i.resource.part_of.is_none())
        .filter_map(|i| match &i.outcome {
            Outcome::Violation(v) => Some((i, v.as_slice())),
            _ => None,
        })
        .collect()
}

/// Subject, text and HTML of the digest.
pub fn render(rows: &[(&Item, &[TagViolation])]) -> Rendered {
    let n = rows.len();
    let subject = format!(
        "[ttl-teardown] {n} resource{} with missing or invalid TTL tags",
        if n == 1 { "" } else { "s" }
    );
    let intro = "These resources have missing or invalid TTL tags. They are never deleted \
                 automatically, and their owners cannot be warned until the tags are fixed.";
    let mut text = String::new();
    for line in wrap_plain(intro) {
        text.push_str(&line);
        text.push('\n');
    }
    let mut html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light\"><title>{}</title></head>\
         <body style=\"margin:0;padding:16px 8px;background-color:#f3f4f6;color:#111827;font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif\">\
         <div style=\"max-width:760px;margin:0 auto;background-color:#f3f4f6;color:#111827\">\
         <p style=\"font-size:15px;line-height:1.5;color:#111827;background-color:#f3f4f6\">{}</p>\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" \
         style=\"width:100%;border-collapse:collapse;font-size:14px;background-color:#ffffff;color:#111827\">\
         <tr><th align=\"left\" style=\"padding:8px;border-bottom:2px solid #d1d5db;background-color:#ffffff;color:#111827\">Resource</th>\
         <th align=\"left\" style=\"padding:8px;border-bottom:2px solid #d1d5db;background-color:#ffffff;color:#111827\">Problems</th></tr>",
        escape_html(&subject),
        escape_html(intro)
    );
    for (item, violations) in rows {
        let r = &item.resource;
        let name = r.display_name().unwrap_or(&r.name);
        let where_ = r.scope.label();
        let problems = problems(violations);
        text.push_str(&format!(
            "\n- {name} ({}, {where_})\n  {}\n",
            kind_title(r.kind),
            r.id
        ));
        for p in &problems {
            for line in wrap_plain(&format!("* {p}")) {
                text.push_str(&format!("    {line}\n"));
            }
        }
        html.push_str(&format!(
            "<tr><td valign=\"top\" style=\"padding:8px;border-bottom:1px solid #e5e7eb;vertical-align:top;background-color:#ffffff;color:#111827\">\
             <strong>{}</strong><br><span style=\"color:#374151\">{} · {}</span><br>\
             <span style=\"font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all;color:#374151\">{}</span></td>\
             <td valign=\"top\" style=\"padding:8px;border-bottom:1px solid #e5e7eb;vertical-align:top;background-color:#ffffff;color:#111827\"><ul style=\"margin:0;padding-left:18px\">",
            escape_html(name),
            escape_html(&kind_title(r.kind)),
            escape_html(&where_),
            escape_html(&r.id)
        ));
        for p in &problems {
            html.push_str(&format!(
                "<li style=\"overflow-wrap:anywhere\">{}</li>",
                escape_html(p)
            ));
        }
        html.push_str("</ul></td></tr>");
    }
    html.push_str("</table></div></body></html>\n");
    Rendered {
        subject,
        text,
        html,
    }
}

fn wrap_plain(text: &str) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("one line");
        if !last.is_empty() && columns(last) + 1 + columns(word) > TEXT_COLUMNS - 6 {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

/// Sends the digest to `fallback` when any resource is listed.
pub async fn send(plan: &Plan, ctx: &RunContext<'_, TtlConfig>, fallback: &Email, sent: &mut Sent) {
    let rows = listed(&plan.items);
    if rows.is_empty() {
        return;
    }
    let mail = render(&rows);
    ctx.acted();
    let result = ctx
        .notifier
        .send_email(
            std::slice::from_ref(fallback),
            &mail.subject,
            &mail.text,
            Some(&mail.html),
        )
        .await;
    sent.alerts.push(AlertSent {
        channel: "email".into(),
        target: fallback.to_string(),
        subject: mail.subject,
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use inventory::{Resource, Scope};

    use super::*;
    use crate::tags::TagPolicy;

    fn resource(id: &str, kind: &'static str, tags: &[(&str, &str)]) -> Resource {
        let mut r = Resource::new(
            kind,
            id.to_string(),
            inventory::resource::short_name(id),
            Scope::Aws {
                account: "123456789012".into(),
                region: "us-east-1".into(),
            },
        );
        r.tags = tags
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect::<BTreeMap<_, _>>();
        r
    }

    fn violations(r: &Resource) -> Outcome {
        let now = "2026-12-02T05:00:00Z".parse().expect("timestamp");
        match crate::tags::parse_tags(&r.tags, None, &TagPolicy::default(), now) {
            Ok(_) => panic!("fixture has valid tags"),
            Err(v) => Outcome::Violation(v),
        }
    }

    #[test]
    fn one_row_per_resource_problems_once_and_no_parts() {
        let untagged = resource(
            "arn:aws:ec2:us-east-1:123456789012:instance/i-1",
            "ec2-instance",
            &[("Name", "alice-build-runner"), ("ttl", "45x")],
        );
        let mut root = resource(
            "arn:aws:ec2:us-east-1:123456789012:volume/vol-1",
            "ebs-volume",
            &[],
        );
        root.part_of = Some(untagged.id.clone());
        let items = vec![
            Item {
                outcome: violations(&untagged),
                resource: untagged.clone(),
            },
            // Even if a root volume's empty tags were judged, it is a part: not listed.
            Item {
                outcome: violations(&root),
                resource: root,
            },
        ];
        let rows = listed(&items);
        assert_eq!(rows.len(), 1);
        let problems = problems(rows[0].1);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("missing: "), "{problems:?}");
        assert!(problems[0].contains("owner") && problems[0].contains("project"));
        assert!(problems[1].starts_with("ttl = \"45x\""), "{problems:?}");
        let mail = render(&rows);
        assert_eq!(
            mail.subject,
            "[ttl-teardown] 1 resource with missing or invalid TTL tags"
        );
        assert!(mail.html.starts_with("<!doctype html>"));
        assert_eq!(mail.html.matches("<tr>").count(), 2, "header + one row");
        assert_eq!(mail.html.matches("missing: ").count(), 1);
        assert!(mail.html.contains("alice-build-runner"));
        assert!(!mail.text.contains("vol-1") && !mail.html.contains("vol-1"));
        assert!(
            mail.text.lines().all(|l| columns(l) <= TEXT_COLUMNS),
            "{}",
            mail.text
        );
    }
}
