//! The owner's warning email, as a pure function of what it says: [`OwnerEmail`] in, subject,
//! text part and HTML part out. `notices::send` gathers the facts; tests (and the browser tests
//! of `services/ttl-snooze`) render every variant from hand-made [`Card`]s.
//!
//! The HTML is built for mail clients, which strip `<style>` blocks, scripts and external
//! resources: **inline CSS only**, no images, no scripts, one column of cards at most 600 px
//! wide that shrinks to 320 px, buttons as padded links that wrap onto the next line rather than
//! overflow. Every element that shows text sets both its colour and its background, so a client
//! that forces dark mode inverts a coherent pair (and `color-scheme: light` asks those that
//! honour it not to). The text part says the same; its prose lines are at most
//! [`TEXT_COLUMNS`] columns, each link is alone on its line (a URL cannot be folded without
//! breaking it, so a link line may be longer).

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::snooze::escape_html;

/// Longest prose line of the text part, in terminal columns (East Asian wide characters
/// count two).
pub const TEXT_COLUMNS: usize = 78;

/// One resource in an owner's email.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    /// The resource id (ARN or `k8s:…`).
    pub id: String,
    /// What people call it: the `Name` tag, else the id-derived name.
    pub name: String,
    /// The id-derived short name (instance id, object name), shown beside a `Name` tag.
    pub short_id: String,
    /// The kind, for people (`EC2 instance`).
    pub kind: String,
    /// Where it lives, one line each: `Account 123456789012`, `Region us-east-1`, or
    /// `Cluster …`, `Namespace …`, as (label, value).
    pub location: Vec<(String, String)>,
    /// The project tag.
    pub project: String,
    /// The deadline (created_at + ttl + snoozes).
    pub deadline: Timestamp,
    /// The earliest instant it can be deleted: the deadline, or later when this warning is
    /// late (the notice period after it). The links are valid until then.
    pub delete_at: Timestamp,
    /// Whether this is its final warning (24 hours or less, or late).
    pub final_warning: bool,
    /// Why it is eligible, in plain words (one or two sentences).
    pub why: String,
    /// Estimated cost per month; `None` when unknown.
    pub monthly_usd: Option<f64>,
    /// Why the cost is unknown, in plain words, when it is.
    pub cost_note: Option<String>,
    /// Snoozes used and allowed.
    pub extensions_used: u8,
    /// Most snoozes allowed.
    pub max_extensions: u8,
    /// The snooze links offered, by days (none when no snooze is left).
    pub snooze_links: Vec<(u32, String)>,
    /// Why no (or only a shorter) snooze is offered, when that is so.
    pub snooze_note: Option<String>,
    /// The **Delete now** link.
    pub release_link: Option<String>,
}

/// What the footer says.
#[derive(Debug, Clone, PartialEq)]
pub struct Footer {
    /// Who sends it (`the platform team`).
    pub sender: String,
    /// Whom to ask.
    pub contact: String,
    /// What deletion means.
    pub deletion_note: String,
    /// The tag that opts a resource out for good, as `key=value` (`auto-teardown=false`).
    pub opt_out: String,
    /// The owner tag's key (why the reader gets this), e.g. `owner`.
    pub owner_tag: String,
}

/// Everything one owner's email says.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnerEmail {
    /// The owner's address.
    pub owner: String,
    /// The name to greet them by, when known.
    pub greeting_name: Option<String>,
    /// The resources (sorted by [`OwnerEmail::sorted`]).
    pub cards: Vec<Card>,
    /// When the email is sent (for "in 20 h").
    pub now: Timestamp,
    /// The footer.
    pub footer: Footer,
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The text/plain part.
    pub text: String,
    /// The text/html part.
    pub html: String,
}

impl OwnerEmail {
    /// Sorts the cards by earliest deletion, then id: what goes first comes first.
    pub fn sorted(mut self) -> OwnerEmail {
        self.cards
            .sort_by(|a, b| (a.delete_at, &a.id).cmp(&(b.delete_at, &b.id)));
        self
    }

    /// The subject, accurate for a mix of final and first warnings.
    pub fn subject(&self) -> String {
        let n = self.cards.len();
        let finals = self.cards.iter().filter(|c| c.final_warning).count();
        let when = self.when_range();
        let what = if n == 1 {
            format!("{} will be deleted {when}", self.cards[0].name)
        } else {
            format!("{n} of your resources will be deleted {when}")
        };
        let prefix = if finals == n { "Final warning: " } else { "" };
        let suffix = if finals > 0 && finals < n {
            format!(" (final warning for {finals})")
        } else {
            String::new()
        };
        format!("[ttl-teardown] {prefix}{what}{suffix}")
    }

    /// `in 20 h`, or `in 20–40 h` across the cards.
    fn when_range(&self) -> String {
        let first = self.cards.iter().map(|c| c.delete_at).min();
        let last = self.cards.iter().map(|c| c.delete_at).max();
        match (first, last) {
            (Some(a), Some(b)) => {
                let (a, b) = (relative(self.now, a), relative(self.now, b));
                if a == b {
                    a
                } else {
                    // "in 20 h" and "in 40 h" → "in 20–40 h" when the units agree.
                    match (a.rsplit_once(' '), b.rsplit_once(' ')) {
                        (Some((na, ua)), Some((nb, ub))) if ua == ub => {
                            format!("{na}–{} {ua}", nb.trim_start_matches("in "))
                        }
                        _ => format!("{a} to {}", b.trim_start_matches("in ")),
                    }
                }
            }
            _ => String::new(),
        }
    }

    /// Renders subject, text and HTML.
    pub fn render(&self) -> Rendered {
        Rendered {
            subject: self.subject(),
            text: self.text(),
            html: self.html(),
        }
    }

    fn greeting(&self) -> String {
        match &self.greeting_name {
            Some(name) => format!("Hello {name},"),
            None => "Hello,".to_string(),
        }
    }

    fn intro(&self) -> String {
        let n = self.cards.len();
        let first = self.cards.iter().map(|c| c.delete_at).min();
        let first = first.map(|t| relative(self.now, t)).unwrap_or_default();
        if n == 1 {
            format!(
                "A resource you own is due for automatic deletion {first}. Nothing is needed if \
                 you are done with it. To keep it, snooze it below; each link asks you to \
                 confirm before anything changes."
            )
        } else {
            format!(
                "{n} resources you own are due for automatic deletion, the first {first}. \
                 Nothing is needed if you are done with them. To keep one, snooze it below; \
                 each link asks you to confirm before anything changes."
            )
        }
    }

    fn footer_lines(&self) -> Vec<String> {
        let f = &self.footer;
        vec![
            format!(
                "Sent by {} (the ttl-teardown job) to you, as the owner named in the {} tag of \
                 these resources: they are opted in to automatic teardown and their time to \
                 live is running out.",
                f.sender, f.owner_tag
            ),
            format!(
                "To keep a resource for good, set its tag {} (production and restricted-data \
                 resources are never deleted).",
                f.opt_out
            ),
            f.deletion_note.clone(),
            format!("Questions: {}.", f.contact.trim_end_matches('.')),
        ]
    }

    fn text(&self) -> String {
        let mut out = Vec::new();
        out.push(self.greeting());
        out.push(String::new());
        out.extend(wrap(&self.intro(), TEXT_COLUMNS, ""));
        for (i, c) in self.cards.iter().enumerate() {
            out.push(String::new());
            let head = format!("{}. ", i + 1);
            let pad = " ".repeat(head.len());
            out.extend(wrap(&format!("{head}{}", c.name), TEXT_COLUMNS, &pad));
            let field = |label: &str, value: &str| {
                let lead = format!("{pad}{label:<10} ");
                let cont = " ".repeat(lead.chars().count());
                let mut lines = wrap(value, TEXT_COLUMNS - cont.len(), "");
                for (j, l) in lines.iter_mut().enumerate() {
                    *l = format!("{}{l}", if j == 0 { &lead } else { &cont });
                }
                lines
            };
            let kind = if c.short_id == c.name {
                c.kind.clone()
            } else {
                format!("{} {}", c.kind, c.short_id)
            };
            out.extend(field("Kind:", &kind));
            for (label, value) in &c.location {
                out.extend(field(&format!("{label}:"), value));
            }
            out.extend(field("Project:", &c.project));
            out.extend(field("Deletion:", &deletion_text(c, self.now)));
            out.extend(field("Why:", &c.why));
            out.extend(field("Cost:", &cost_text(c)));
            out.extend(field("Snoozes:", &snoozes_text(c)));
            out.extend(field("Id:", &c.id));
            for (days, link) in &c.snooze_links {
                out.push(format!("{pad}Snooze +{days} days:"));
                out.push(link.clone());
            }
            if let Some(link) = &c.release_link {
                out.push(format!("{pad}Delete now (done with it):"));
                out.push(link.clone());
            }
        }
        out.push(String::new());
        out.extend(wrap(
            "Each link opens a page that asks you to confirm; nothing changes until you do. \
             Links are single use and stop working once the resource's deadline changes.",
            TEXT_COLUMNS,
            "",
        ));
        out.push(String::new());
        out.push("-- ".to_string());
        for line in self.footer_lines() {
            out.extend(wrap(&line, TEXT_COLUMNS, ""));
        }
        let mut text = out.join("\n");
        text.push('\n');
        text
    }

    fn html(&self) -> String {
        let mut h = String::new();
        h.push_str(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"color-scheme\" content=\"light\">\
             <meta name=\"supported-color-schemes\" content=\"light\">",
        );
        h.push_str(&format!(
            "<title>{}</title></head>",
            escape_html(&self.subject())
        ));
        h.push_str(&format!(
            "<body style=\"margin:0;padding:0;background-color:{BG};color:{FG};{FONT}\">"
        ));
        h.push_str(&format!(
            "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" \
             border=\"0\" style=\"background-color:{BG};color:{FG};width:100%\"><tr>\
             <td align=\"center\" style=\"padding:16px 8px;background-color:{BG};color:{FG}\">\
             <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" \
             border=\"0\" style=\"max-width:600px;width:100%;background-color:{BG};color:{FG}\">\
             <tr><td style=\"background-color:{BG};color:{FG};text-align:left\">"
        ));
        h.push_str(&format!(
            "<p style=\"margin:0 0 12px;font-size:16px;color:{FG};background-color:{BG}\">{}</p>\
             <p style=\"margin:0 0 16px;font-size:15px;line-height:1.5;color:{FG};background-color:{BG}\">{}</p>",
            escape_html(&self.greeting()),
            escape_html(&self.intro())
        ));
        for c in &self.cards {
            h.push_str(&card_html(c, self.now));
        }
        h.push_str(&format!(
            "<p style=\"margin:8px 0 16px;font-size:14px;line-height:1.5;color:{FG};background-color:{BG}\">\
             Each button opens a page that asks you to confirm; nothing changes until you do. \
             Links are single use and stop working once the resource&#39;s deadline changes.</p>"
        ));
        h.push_str(&format!(
            "<div style=\"border-top:1px solid {LINE};padding-top:12px;margin-top:8px;background-color:{BG}\">"
        ));
        for line in self.footer_lines() {
            h.push_str(&format!(
                "<p style=\"margin:0 0 8px;font-size:13px;line-height:1.5;color:{MUTED};background-color:{BG}\">{}</p>",
                escape_html(&line)
            ));
        }
        h.push_str("</div></td></tr></table></td></tr></table></body></html>\n");
        h
    }
}

const BG: &str = "#f3f4f6";
const FG: &str = "#111827";
const CARD: &str = "#ffffff";
const MUTED: &str = "#374151";
const LINE: &str = "#d1d5db";
const FONT: &str = "font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif";

fn card_html(c: &Card, now: Timestamp) -> String {
    let (badge_bg, badge_fg) = if c.final_warning {
        ("#fee2e2", "#7f1d1d")
    } else {
        ("#fef3c7", "#78350f")
    };
    let mut h = format!(
        "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" \
         style=\"width:100%;margin:0 0 16px;background-color:{CARD};color:{FG};border:1px solid {LINE};border-radius:8px\">\
         <tr><td style=\"padding:16px;background-color:{CARD};color:{FG}\">"
    );
    h.push_str(&format!(
        "<div style=\"font-size:18px;font-weight:bold;line-height:1.3;color:{FG};background-color:{CARD};overflow-wrap:anywhere;word-break:break-word\">{}</div>",
        escape_html(&c.name)
    ));
    let kind = if c.short_id == c.name {
        escape_html(&c.kind)
    } else {
        format!("{} · {}", escape_html(&c.kind), escape_html(&c.short_id))
    };
    h.push_str(&format!(
        "<div style=\"font-size:14px;color:{MUTED};background-color:{CARD};margin:2px 0 10px;overflow-wrap:anywhere;word-break:break-word\">{kind}</div>"
    ));
    h.push_str(&format!(
        "<div style=\"font-size:15px;font-weight:bold;color:{badge_fg};background-color:{badge_bg};padding:8px 10px;border-radius:6px;margin:0 0 10px\">Deleted {}</div>",
        escape_html(&deletion_time(c, now))
    ));
    if let Some(note) = late_note(c, now) {
        h.push_str(&format!(
            "<div style=\"font-size:14px;color:{MUTED};background-color:{CARD};margin:0 0 10px\">{}</div>",
            escape_html(&note)
        ));
    }
    h.push_str("<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"width:100%;font-size:14px;line-height:1.4\">");
    let row = |label: &str, value: String| {
        format!(
            "<tr><td valign=\"top\" style=\"padding:3px 10px 3px 0;width:6.5em;color:{MUTED};background-color:{CARD};vertical-align:top\">{}</td>\
             <td valign=\"top\" style=\"padding:3px 0;color:{FG};background-color:{CARD};vertical-align:top;overflow-wrap:anywhere;word-break:break-word\">{value}</td></tr>",
            escape_html(label)
        )
    };
    for (label, value) in &c.location {
        h.push_str(&row(label, escape_html(value)));
    }
    h.push_str(&row("Project", escape_html(&c.project)));
    h.push_str(&row("Why", escape_html(&c.why)));
    h.push_str(&row("Cost", escape_html(&cost_text(c))));
    h.push_str(&row("Snoozes", escape_html(&snoozes_text(c))));
    h.push_str(&row(
        "Id",
        format!(
            "<span style=\"font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all;color:{FG};background-color:{CARD}\">{}</span>",
            escape_html(&c.id)
        ),
    ));
    h.push_str("</table><div style=\"margin-top:12px\">");
    for (days, link) in &c.snooze_links {
        h.push_str(&format!(
            "<a href=\"{}\" style=\"display:inline-block;margin:4px 8px 4px 0;padding:10px 16px;border-radius:6px;background-color:#1d4ed8;color:#ffffff;border:2px solid #1d4ed8;font-size:15px;font-weight:bold;text-decoration:none\">Snooze +{days} days</a>",
            escape_html(link)
        ));
    }
    if let Some(link) = &c.release_link {
        h.push_str(&format!(
            "<a href=\"{}\" style=\"display:inline-block;margin:4px 8px 4px 0;padding:10px 16px;border-radius:6px;background-color:#ffffff;color:#991b1b;border:2px solid #991b1b;font-size:15px;font-weight:bold;text-decoration:none\">Delete now</a>",
            escape_html(link)
        ));
    }
    h.push_str("</div></td></tr></table>");
    h
}

/// `Thu 3 Dec 2026, 01:11 UTC (in 20 h)`.
fn deletion_time(c: &Card, now: Timestamp) -> String {
    format!(
        "{} ({})",
        human_time(c.delete_at),
        relative(now, c.delete_at)
    )
}

/// For a warning sent late (less than the notice period before the deadline, or after it):
/// why deletion comes after the deadline.
fn late_note(c: &Card, now: Timestamp) -> Option<String> {
    (c.delete_at > c.deadline).then(|| {
        format!(
            "Its deadline {} {}; it is kept until the time above so that you have time to act \
             on this notice.",
            if c.deadline <= now { "was" } else { "is" },
            human_time(c.deadline)
        )
    })
}

/// The text part's deletion field.
fn deletion_text(c: &Card, now: Timestamp) -> String {
    match late_note(c, now) {
        Some(note) => format!("{}. {note}", deletion_time(c, now)),
        None => deletion_time(c, now),
    }
}

fn cost_text(c: &Card) -> String {
    match c.monthly_usd {
        Some(v) => format!("about ${v:.2} a month"),
        None => match &c.cost_note {
            Some(note) => format!("unknown ({note})"),
            None => "unknown".to_string(),
        },
    }
}

fn snoozes_text(c: &Card) -> String {
    let left = c.max_extensions.saturating_sub(c.extensions_used);
    let mut s = format!("{left} of {} left", c.max_extensions);
    if let Some(note) = &c.snooze_note {
        s.push_str(&format!(": {note}"));
    }
    s
}

/// `Thu 3 Dec 2026, 01:11 UTC`.
pub fn human_time(t: Timestamp) -> String {
    if t == Timestamp::MAX {
        return "never".to_string();
    }
    t.to_zoned(TimeZone::UTC)
        .strftime("%a %-d %b %Y, %H:%M UTC")
        .to_string()
}

/// `in 20 h`, `in 45 min`, `in 3 days`, or `now` for an instant that has come.
pub fn relative(now: Timestamp, t: Timestamp) -> String {
    if t <= now {
        return "now".to_string();
    }
    let left = t.duration_since(now);
    let mins = left.as_secs() / 60;
    if left < SignedDuration::from_hours(1) {
        format!("in {} min", mins.max(1))
    } else if left < SignedDuration::from_hours(72) {
        format!("in {} h", mins / 60)
    } else {
        format!("in {} days", mins / (60 * 24))
    }
}

/// Terminal columns of `s`: East Asian wide and fullwidth characters count two.
pub fn columns(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let u = u32::from(c);
            let wide = matches!(u,
                0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF
                | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
                | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x1F300..=0x1FAFF
                | 0x20000..=0x3FFFD);
            if wide { 2 } else { 1 }
        })
        .sum()
}

/// Wraps `text` at word boundaries into lines of at most `width` columns, each continuation
/// line starting with `indent` (counted in the width). A word longer than a line is cut.
fn wrap(text: &str, width: usize, indent: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let indent_cols = columns(indent);
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        loop {
            let lead = if lines.is_empty() { 0 } else { indent_cols };
            let room = width.saturating_sub(lead).max(1);
            let sep = usize::from(!line.is_empty());
            if columns(&line) + sep + columns(&word) <= room {
                if sep == 1 {
                    line.push(' ');
                }
                line.push_str(&word);
                break;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A single word wider than the line: cut it.
            let mut head = String::new();
            let mut rest = word.chars();
            for c in rest.by_ref() {
                // At least one character per line, even one wider than the line.
                if !head.is_empty() && columns(&head) + columns(&c.to_string()) > room {
                    let tail: String = std::iter::once(c).chain(rest).collect();
                    lines.push(head);
                    word = tail;
                    head = String::new();
                    break;
                }
                head.push(c);
            }
            if !head.is_empty() {
                line = head;
                break;
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    for l in lines.iter_mut().skip(1) {
        *l = format!("{indent}{l}");
    }
    lines
}

/// The kind's registry name for people: `ec2-instance` → `EC2 instance`, `k8s-deployment` →
/// `Kubernetes deployment`. Word by word, so no kind is named here.
pub fn kind_title(kind: &str) -> String {
    let words: Vec<String> = kind
        .split('-')
        .map(|w| match w {
            "k8s" => "Kubernetes".to_string(),
            w if w.len() <= 3 && w.chars().any(|c| c.is_ascii_digit()) => w.to_uppercase(),
            "ebs" | "rds" | "iam" | "eks" | "sns" | "sqs" | "vpc" => w.to_uppercase(),
            w => w.to_string(),
        })
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn relative_times_read_like_people_say_them() {
        let now = ts("2026-12-02T05:00:00Z");
        let h = |n| now + SignedDuration::from_mins(n);
        assert_eq!(relative(now, h(20 * 60 + 30)), "in 20 h");
        assert_eq!(relative(now, h(45)), "in 45 min");
        assert_eq!(relative(now, h(5 * 24 * 60)), "in 5 days");
        assert_eq!(relative(now, now), "now");
        assert_eq!(
            human_time(ts("2026-12-03T01:11:39Z")),
            "Thu 3 Dec 2026, 01:11 UTC"
        );
    }

    #[test]
    fn wrapping_respects_columns_and_indents() {
        let text = "one two three four five six seven eight nine ten eleven twelve";
        for l in wrap(text, 20, "  ") {
            assert!(columns(&l) <= 20, "{l:?}");
        }
        assert_eq!(wrap("short", 20, "  "), ["short"]);
        // CJK counts double; a word longer than the line is cut.
        let cjk = "構築ランナー構築ランナー構築ランナー構築ランナー";
        let lines = wrap(cjk, 20, "");
        assert!(lines.iter().all(|l| columns(l) <= 20), "{lines:?}");
        assert_eq!(lines.concat(), cjk);
    }

    fn card(name: &str, hours: i64, final_warning: bool) -> Card {
        let now = ts("2026-12-02T05:00:00Z");
        let at = now + SignedDuration::from_hours(hours);
        let id = format!("arn:aws:ec2:us-east-1:123456789012:instance/i-{hours:04}");
        Card {
            id: id.clone(),
            name: name.to_string(),
            short_id: format!("i-{hours:04}"),
            kind: "EC2 instance".into(),
            location: vec![
                ("Account".into(), "123456789012".into()),
                ("Region".into(), "us-east-1".into()),
            ],
            project: "checkout".into(),
            deadline: at,
            delete_at: at,
            final_warning,
            why: "Its time to live of 7 days runs out.".into(),
            monthly_usd: Some(59.9),
            cost_note: None,
            extensions_used: 0,
            max_extensions: 2,
            snooze_links: vec![
                (
                    7,
                    format!(
                        "https://snooze.example.com/v1/resources/{id}/extend?days=7&token=v2.k1.abcdefghijklmnopqrstuvwxyz0123456789.ABCDEFGHIJKLMNOPQRSTUV"
                    ),
                ),
                (
                    14,
                    format!(
                        "https://snooze.example.com/v1/resources/{id}/extend?days=14&token=v2.k1.abcdefghijklmnopqrstuvwxyz0123456789.ABCDEFGHIJKLMNOPQRSTUV"
                    ),
                ),
            ],
            snooze_note: None,
            release_link: Some(format!(
                "https://snooze.example.com/v1/resources/{id}/release?token=v2.k1.abc.def"
            )),
        }
    }

    fn mail(cards: Vec<Card>) -> OwnerEmail {
        OwnerEmail {
            owner: "alice@example.com".into(),
            greeting_name: Some("Alice".into()),
            cards,
            now: ts("2026-12-02T05:00:00Z"),
            footer: Footer {
                sender: "the platform team".into(),
                contact: "#platform-help".into(),
                deletion_note: "Deletion is permanent.".into(),
                opt_out: "auto-teardown=false".into(),
                owner_tag: "owner".into(),
            },
        }
        .sorted()
    }

    #[test]
    fn subjects_say_what_is_final_and_when() {
        let one = mail(vec![card("alice-build-runner", 20, true)]);
        assert_eq!(
            one.subject(),
            "[ttl-teardown] Final warning: alice-build-runner will be deleted in 20 h"
        );
        let mixed = mail(vec![
            card("a", 40, false),
            card("b", 20, true),
            card("c", 30, false),
            card("d", 23, true),
        ]);
        assert_eq!(
            mixed.subject(),
            "[ttl-teardown] 4 of your resources will be deleted in 20–40 h (final warning for 2)"
        );
        let first = mail(vec![card("a", 40, false), card("b", 30, false)]);
        assert_eq!(
            first.subject(),
            "[ttl-teardown] 2 of your resources will be deleted in 30–40 h"
        );
        // Sorted by deletion.
        let names: Vec<&str> = mixed.cards.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["b", "d", "c", "a"]);
    }

    #[test]
    fn every_variant_keeps_prose_within_78_columns_and_lists_every_link() {
        let long = "x".repeat(120);
        let mut late = card("late-one", 24, true);
        late.deadline = late.delete_at - SignedDuration::from_hours(3);
        let mut unpriced = card("unpriced", 30, false);
        unpriced.monthly_usd = None;
        unpriced.cost_note = Some("no price for instance type t3.nano".into());
        let mut spent = card("spent", 22, true);
        spent.snooze_links.clear();
        spent.extensions_used = 2;
        spent.snooze_note = Some("no snooze left; to keep it, set auto-teardown=false".into());
        let variants = [
            vec![card("alice-build-runner", 20, true)],
            vec![late.clone()],
            vec![unpriced.clone()],
            vec![spent.clone()],
            vec![card(&long, 30, false)],
            vec![card(
                "構築ランナー・テスト環境（東京）ビルド用の長い名前です",
                40,
                false,
            )],
            vec![card("a", 20, true), late, unpriced, spent],
        ];
        for cards in variants {
            let links: Vec<String> = cards
                .iter()
                .flat_map(|c| {
                    c.snooze_links
                        .iter()
                        .map(|(_, l)| l.clone())
                        .chain(c.release_link.clone())
                })
                .collect();
            let r = mail(cards).render();
            for line in r.text.lines() {
                let link_line = line.starts_with("https://") && !line.contains(' ');
                assert!(
                    link_line || columns(line) <= TEXT_COLUMNS,
                    "{} columns: {line:?}",
                    columns(line)
                );
            }
            for l in &links {
                assert!(r.text.lines().any(|line| line == l), "{l} in {}", r.text);
                assert!(r.html.contains(&escape_html(l)), "{l}");
            }
            for word in [
                "$0.00",
                "warn-24h",
                "warn-48h",
                "eligible:",
                "<script",
                "<style",
                "src=",
            ] {
                assert!(!r.text.contains(word) && !r.html.contains(word), "{word}");
            }
            assert!(r.text.starts_with("Hello Alice,\n"));
            assert!(r.text.contains("auto-teardown=false") && r.text.contains("#platform-help"));
        }
        let late = mail(vec![{
            let mut c = card("late-one", 24, true);
            c.deadline = c.delete_at - SignedDuration::from_hours(3);
            c
        }])
        .render();
        assert!(late.text.contains("(in 24 h)"), "{}", late.text);
        assert!(late.text.contains("Its deadline is"), "{}", late.text);
    }

    #[test]
    fn kinds_read_as_words() {
        assert_eq!(kind_title("ec2-instance"), "EC2 instance");
        assert_eq!(kind_title("k8s-deployment"), "Kubernetes deployment");
        assert_eq!(kind_title("rds-instance"), "RDS instance");
        assert_eq!(kind_title("s3-bucket"), "S3 bucket");
    }
}
