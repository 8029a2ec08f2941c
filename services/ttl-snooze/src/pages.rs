//! The HTML pages of the service: confirmation, success and refusal for **Snooze** and
//! **Delete now**. Server-rendered, no JavaScript, one column that fits a 320 px phone (every
//! field and button at most the page's width, long names and ids wrap), the same facts as the
//! email card (name, kind, account/region, owner, project, cost, deadline), and what happens
//! next on every page.
//!
//! Everything interpolated is escaped. The refusal page for a bad link interpolates nothing
//! from the request: it is the same bytes for every refusal (the opaque 403).

use jiff::Timestamp;
use ttl_teardown::notices::email::{human_time, kind_title, relative};
use ttl_teardown::snooze::escape_html;

/// What every page may say about whom to ask and how to opt out: from the config, the same for
/// every request.
#[derive(Debug, Clone)]
pub struct Help {
    /// Who runs this (`the platform team`).
    pub sender: String,
    /// Whom to ask.
    pub contact: String,
    /// `auto-teardown=false`.
    pub opt_out: String,
    /// The tags that make the deadline (`created_at`, `ttl`, `ttl-extended-days`).
    pub deadline_tags: String,
    /// The release tag (`ttl-released-at`), to undo a release before the next run.
    pub released_tag: String,
    /// Longest reason accepted, in characters.
    pub max_reason: usize,
}

/// The facts of a resource, as on its email card.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The `Name` tag, else the short id.
    pub name: String,
    /// The short id (instance id, object name).
    pub short_id: String,
    /// The kind, for people.
    pub kind: String,
    /// The full id.
    pub id: String,
    /// (label, value): account and region, or cluster and namespace.
    pub location: Vec<(String, String)>,
    /// The owner tag.
    pub owner: String,
    /// The project tag.
    pub project: String,
    /// `about $61.32 a month`, or `unknown (…)`.
    pub cost: String,
    /// The current deadline.
    pub deadline: Timestamp,
    /// When it is deleted if nothing is done.
    pub delete_at: Timestamp,
    /// Snoozes used, allowed.
    pub extensions: (u8, u8),
}

impl Facts {
    /// The facts of `r` with its parsed tags and the cost estimate.
    pub fn new(
        r: &inventory::Resource,
        tags: &ttl_teardown::tags::ResourceTags,
        estimate: &inventory::cost::Estimate,
        deadline: Timestamp,
        delete_at: Timestamp,
        max_extensions: u8,
    ) -> Facts {
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
        let cost = match estimate.hourly_usd {
            Some(h) => format!(
                "about ${:.2} a month",
                inventory::cost::round_cents(h * inventory::cost::HOURS_PER_MONTH)
            ),
            None => match &estimate.note {
                Some(n) => format!("unknown ({n})"),
                None => "unknown".to_string(),
            },
        };
        Facts {
            name: r.display_name().unwrap_or(&r.name).to_string(),
            short_id: r.name.clone(),
            kind: kind_title(r.kind),
            id: r.id.clone(),
            location,
            owner: tags.owner.clone(),
            project: tags.project.clone(),
            cost,
            deadline,
            delete_at,
            extensions: (tags.extension_count, max_extensions),
        }
    }
}

const STYLE: &str = "\
*{box-sizing:border-box}\
html{-webkit-text-size-adjust:100%}\
body{margin:0;padding:16px;background:#f3f4f6;color:#111827;font:16px/1.5 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}\
main{max-width:36em;margin:0 auto;background:#fff;color:#111827;border:1px solid #d1d5db;border-radius:8px;padding:16px}\
h1{font-size:1.35em;line-height:1.3;margin:0 0 12px;overflow-wrap:anywhere}\
h2{font-size:1.05em;margin:18px 0 6px}\
table{border-collapse:collapse;width:100%;margin:8px 0}\
th,td{text-align:left;vertical-align:top;padding:4px 0;overflow-wrap:anywhere;word-break:break-word}\
th{width:8.5em;padding-right:10px;color:#374151;font-weight:normal}\
code{font:13px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}\
.due{background:#fef3c7;color:#78350f;border-radius:6px;padding:8px 10px;font-weight:bold}\
.ok{background:#dcfce7;color:#14532d;border-radius:6px;padding:8px 10px;font-weight:bold}\
.bad{background:#fee2e2;color:#7f1d1d;border-radius:6px;padding:8px 10px;font-weight:bold}\
label{display:block;font-weight:bold;margin:12px 0 4px}\
input[type=text]{display:block;width:100%;max-width:100%;font:inherit;padding:8px;border:1px solid #6b7280;border-radius:6px;background:#fff;color:#111827}\
button,.button{display:inline-block;font:inherit;font-weight:bold;padding:10px 18px;margin:12px 8px 4px 0;border-radius:6px;border:2px solid #1d4ed8;background:#1d4ed8;color:#fff;text-decoration:none;cursor:pointer;max-width:100%}\
button.danger{background:#991b1b;border-color:#991b1b}\
.button.secondary{background:#fff;color:#1d4ed8}\
ul{padding-left:1.2em;margin:6px 0}\
small{color:#374151}";

/// The page around `body_html` (already escaped).
pub fn page(title: &str, body_html: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light\">\
         <title>{title}</title><style>{STYLE}</style></head>\
         <body><main><h1>{title}</h1>\n{body_html}\n</main></body></html>\n",
        title = escape_html(title),
    )
}

fn facts_table(f: &Facts, now: Timestamp, rows_after: &str) -> String {
    let mut h = String::from("<table>");
    let row = |label: &str, value: String| {
        format!(
            "<tr><th scope=\"row\">{}</th><td>{value}</td></tr>",
            escape_html(label)
        )
    };
    let kind = if f.short_id == f.name {
        escape_html(&f.kind)
    } else {
        format!("{} · {}", escape_html(&f.kind), escape_html(&f.short_id))
    };
    h.push_str(&row("Kind", kind));
    for (label, value) in &f.location {
        h.push_str(&row(label, escape_html(value)));
    }
    h.push_str(&row("Owner", escape_html(&f.owner)));
    h.push_str(&row("Project", escape_html(&f.project)));
    h.push_str(&row("Cost", escape_html(&f.cost)));
    h.push_str(&row(
        "Current deadline",
        format!(
            "{} <small>({})</small><br><small>{}</small>",
            escape_html(&human_time(f.deadline)),
            escape_html(&relative(now, f.deadline)),
            escape_html(&f.deadline.to_string())
        ),
    ));
    if f.delete_at > f.deadline {
        h.push_str(&row(
            "Deleted not before",
            format!(
                "{} <small>({}; you get this notice first)</small>",
                escape_html(&human_time(f.delete_at)),
                escape_html(&relative(now, f.delete_at))
            ),
        ));
    }
    h.push_str(&row(
        "Snoozes used",
        format!("{} of {}", f.extensions.0, f.extensions.1),
    ));
    h.push_str(rows_after);
    h.push_str(&row("Id", format!("<code>{}</code>", escape_html(&f.id))));
    h.push_str("</table>");
    h
}

fn contact_line(help: &Help) -> String {
    format!(
        "<p><small>Questions? Contact {}.</small></p>",
        escape_html(&help.contact)
    )
}

/// `GET …/extend`: asks to confirm a snooze of `days`, offers the other lengths (`alternatives`
/// are relative links), and says what happens if nothing is confirmed.
pub fn confirm_extend(
    f: &Facts,
    days: u32,
    new_deadline: Timestamp,
    token: &str,
    alternatives: &[(u32, String)],
    now: Timestamp,
    help: &Help,
) -> String {
    let max_reason = help.max_reason;
    let new_row = format!(
        "<tr><th scope=\"row\">New deadline</th><td><strong>{}</strong> <small>({})</small><br><small>{}</small></td></tr>",
        escape_html(&human_time(new_deadline)),
        escape_html(&relative(now, new_deadline)),
        escape_html(&new_deadline.to_string())
    );
    let mut b = format!(
        "<p class=\"due\">{} is due for deletion {}.</p>",
        escape_html(&f.name),
        escape_html(&relative(now, f.delete_at))
    );
    b.push_str(&facts_table(f, now, &new_row));
    b.push_str(&format!(
        "<form method=\"post\" action=\"extend\">\
         <input type=\"hidden\" name=\"days\" value=\"{days}\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <label for=\"reason\">Reason (optional, kept on the resource)</label>\
         <input type=\"text\" id=\"reason\" name=\"reason\" maxlength=\"{max_reason}\" placeholder=\"e.g. demo on Friday\">\
         <button type=\"submit\">Confirm: snooze +{days} days</button>\
         </form>",
        token = escape_html(token),
    ));
    for (other, href) in alternatives {
        b.push_str(&format!(
            "<a class=\"button secondary\" href=\"{}\">Snooze +{other} days instead</a>",
            escape_html(href)
        ));
    }
    b.push_str(&format!(
        "<h2>What happens next</h2><ul>\
         <li>If you do not confirm, nothing changes: it is deleted {} ({}).</li>\
         <li>After you confirm, you get a new warning with fresh links before the new deadline.</li>\
         <li>To keep it for good, set its tag <code>{}</code> instead.</li></ul>",
        escape_html(&human_time(f.delete_at)),
        escape_html(&relative(now, f.delete_at)),
        escape_html(&help.opt_out),
    ));
    b.push_str(&contact_line(help));
    page(&format!("Snooze {} by {days} days?", f.name), &b)
}

/// `GET …/release`: asks to confirm deletion at the next run.
pub fn confirm_release(
    f: &Facts,
    token: &str,
    alternatives: &[(u32, String)],
    now: Timestamp,
    help: &Help,
) -> String {
    let max_reason = help.max_reason;
    let mut b = format!(
        "<p class=\"bad\">{} will be deleted at the next run of the job, instead of {}.</p>",
        escape_html(&f.name),
        escape_html(&relative(now, f.delete_at))
    );
    b.push_str(&facts_table(f, now, ""));
    b.push_str(&format!(
        "<form method=\"post\" action=\"release\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <label for=\"reason\">Reason (optional, kept on the resource)</label>\
         <input type=\"text\" id=\"reason\" name=\"reason\" maxlength=\"{max_reason}\" placeholder=\"e.g. done with the test\">\
         <button type=\"submit\" class=\"danger\">Confirm: delete at the next run</button>\
         </form>",
        token = escape_html(token),
    ));
    for (days, href) in alternatives {
        b.push_str(&format!(
            "<a class=\"button secondary\" href=\"{}\">Keep it: snooze +{days} days instead</a>",
            escape_html(href)
        ));
    }
    b.push_str(&format!(
        "<h2>What happens next</h2><ul>\
         <li>If you do not confirm, nothing changes: it is deleted {} ({}) as planned.</li>\
         <li>After you confirm, no further warning is sent: your confirmation is the consent. \
         Deletion is permanent, and the data on it goes with it.</li>\
         <li>Production, restricted-data and protected resources are never deleted this way.</li></ul>",
        escape_html(&human_time(f.delete_at)),
        escape_html(&relative(now, f.delete_at)),
    ));
    b.push_str(&contact_line(help));
    page(&format!("Delete {} now?", f.name), &b)
}

/// After a snooze.
pub fn extended(
    f: &Facts,
    new_deadline: Timestamp,
    count: u8,
    reason: &str,
    now: Timestamp,
    help: &Help,
) -> String {
    let mut b = format!(
        "<p class=\"ok\">The deadline of {} moved to {} ({}).</p>",
        escape_html(&f.name),
        escape_html(&human_time(new_deadline)),
        escape_html(&relative(now, new_deadline))
    );
    let rows = format!(
        "<tr><th scope=\"row\">Old deadline</th><td>{}<br><small>{}</small></td></tr>\
         <tr><th scope=\"row\">New deadline</th><td><strong>{}</strong><br><small>{}</small></td></tr>\
         <tr><th scope=\"row\">Reason</th><td>{}</td></tr>\
         <tr><th scope=\"row\">Snoozes used</th><td>{count} of {}</td></tr>",
        escape_html(&human_time(f.deadline)),
        escape_html(&f.deadline.to_string()),
        escape_html(&human_time(new_deadline)),
        escape_html(&new_deadline.to_string()),
        if reason.is_empty() {
            "<small>none given</small>".to_string()
        } else {
            escape_html(reason)
        },
        f.extensions.1,
    );
    b.push_str(&rows_table(f, &rows));
    b.push_str(&format!(
        "<h2>What happens next</h2><ul>\
         <li>You will get a new warning, with fresh links, before the new deadline.</li>\
         <li>The other links in the email you used (the other snooze and Delete now) no longer \
         work: they were for the old deadline.</li>\
         <li>To keep it for good, set its tag <code>{}</code>.</li></ul>",
        escape_html(&help.opt_out)
    ));
    b.push_str(&contact_line(help));
    page("Snoozed", &b)
}

/// After a release.
pub fn released(f: &Facts, by: &str, reason: &str, now: Timestamp, help: &Help) -> String {
    let mut b = format!(
        "<p class=\"ok\">{} is marked for deletion at the next run of the job.</p>",
        escape_html(&f.name)
    );
    let rows = format!(
        "<tr><th scope=\"row\">Requested by</th><td>{}</td></tr>\
         <tr><th scope=\"row\">At</th><td>{}<br><small>{}</small></td></tr>\
         <tr><th scope=\"row\">Reason</th><td>{}</td></tr>",
        escape_html(by),
        escape_html(&human_time(now)),
        escape_html(&now.to_string()),
        if reason.is_empty() {
            "<small>none given</small>".to_string()
        } else {
            escape_html(reason)
        },
    );
    b.push_str(&rows_table(f, &rows));
    b.push_str(&format!(
        "<h2>What happens next</h2><ul>\
         <li>The next run deletes it, without a further warning. Deletion is permanent.</li>\
         <li>The snooze links in the email you used no longer work.</li>\
         <li>Changed your mind? Remove the tag <code>{}</code> from the resource before the \
         next run, or contact {}.</li></ul>",
        escape_html(&help.released_tag),
        escape_html(&help.contact)
    ));
    page("Marked for deletion", &b)
}

fn rows_table(f: &Facts, rows: &str) -> String {
    let mut h = String::from("<table>");
    let kind = if f.short_id == f.name {
        escape_html(&f.kind)
    } else {
        format!("{} · {}", escape_html(&f.kind), escape_html(&f.short_id))
    };
    h.push_str(&format!(
        "<tr><th scope=\"row\">Kind</th><td>{kind}</td></tr>"
    ));
    for (label, value) in &f.location {
        h.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            escape_html(label),
            escape_html(value)
        ));
    }
    h.push_str(&format!(
        "<tr><th scope=\"row\">Owner</th><td>{}</td></tr><tr><th scope=\"row\">Project</th><td>{}</td></tr>\
         <tr><th scope=\"row\">Cost</th><td>{}</td></tr>",
        escape_html(&f.owner),
        escape_html(&f.project),
        escape_html(&f.cost)
    ));
    h.push_str(rows);
    h.push_str(&format!(
        "<tr><th scope=\"row\">Id</th><td><code>{}</code></td></tr></table>",
        escape_html(&f.id)
    ));
    h
}

/// The opaque refusal of a bad, expired, used or foreign link: `message` is the same for every
/// refusal and nothing from the request is shown.
pub fn refused(message: &str, help: &Help) -> String {
    let b = format!(
        "<p class=\"bad\">{}</p>\
         <h2>What you can do</h2><ul>\
         <li>See the resource&#39;s current deadline in its tags: <code>{}</code> \
         (deadline = created_at + ttl + snoozed days), or in your cloud console.</li>\
         <li>Each link works once: after a snooze or a Delete now, the other links of the same \
         email stop working, and links expire when the resource can be deleted.</li>\
         <li>The next warning email (48 and 24 hours before the deadline) brings fresh links.</li>\
         <li>To keep a resource for good, set its tag <code>{}</code>.</li>\
         <li>Questions, or a resource you cannot find: contact {}.</li></ul>",
        escape_html(message),
        escape_html(&help.deadline_tags),
        escape_html(&help.opt_out),
        escape_html(&help.contact),
    );
    page("This link does not work", &b)
}

/// A limit refusal (max snoozes, max lifetime) for the holder of a valid current link.
pub fn limit(message: &str, help: &Help) -> String {
    let b = format!(
        "<p class=\"bad\">{}</p><h2>What you can do</h2><ul>\
         <li>To keep the resource for good, set its tag <code>{}</code>.</li>\
         <li>Or ask {} for an exception.</li></ul>",
        escape_html(message),
        escape_html(&help.opt_out),
        escape_html(&help.contact)
    );
    page("Snooze not possible", &b)
}

/// A 400, 413 or 503 with its message.
pub fn plain(title: &str, message: &str, help: &Help) -> String {
    let b = format!(
        "<p class=\"bad\">{}</p>{}",
        escape_html(message),
        contact_line(help)
    );
    page(title, &b)
}
