//! Notifications: email (SMTP via lettre, STARTTLS or implicit TLS over rustls), a Slack-compatible
//! chat webhook, and PagerDuty Events v2.
//!
//! Routing by severity is the platform's: critical → email + chat + pager; warning → email + chat;
//! info → chat; ok → nothing. Every attempt, delivered or not, is returned as an
//! [`AlertSent`] for the result event's `alerts_sent`; a channel failure is recorded there, never a
//! panic, and never aborts the run. Webhook URLs and routing keys are secrets and never appear in
//! an `AlertSent`, a log line or an error message.

use std::time::Duration;

use lettre::message::{
    Attachment as MimeAttachment, Mailbox, MultiPart, SinglePart, header::ContentType,
};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::Error;
use crate::clock::Clock;
use crate::config::{Email, NotifyConfig, SmtpConfig, SmtpTls, read_secret_file};
use crate::event::{AlertSent, Severity};

/// A channel a notification can go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// SMTP email.
    Email,
    /// Slack-compatible webhook.
    Chat,
    /// PagerDuty Events v2.
    Pager,
}

impl Channel {
    /// The name recorded in `alerts_sent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Chat => "chat",
            Channel::Pager => "pager",
        }
    }
}

/// The platform's routing: which channels a severity goes to.
pub fn route(severity: Severity) -> &'static [Channel] {
    match severity {
        Severity::Critical => &[Channel::Email, Channel::Chat, Channel::Pager],
        Severity::Warning => &[Channel::Email, Channel::Chat],
        Severity::Info => &[Channel::Chat],
        Severity::Ok => &[],
    }
}

/// What to say, to whom, how urgently.
#[derive(Debug, Clone)]
pub struct Notification {
    /// Drives the routing.
    pub severity: Severity,
    /// Email subject, chat headline, pager summary.
    pub subject: String,
    /// Plain-text body (email text part, chat message).
    pub text: String,
    /// Optional HTML body (email only).
    pub html: Option<String>,
    /// Email recipients; empty means the configured `notify.email_to`.
    pub email_to: Vec<Email>,
    /// PagerDuty dedup key, so repeated runs update one incident instead of opening many.
    pub dedup_key: Option<String>,
}

/// A file attached to an email (a PDF report, a CSV of figures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name the recipient sees; sent RFC 2231-encoded when not ASCII.
    pub filename: String,
    /// Its MIME type, e.g. `application/pdf` or `text/csv; charset=utf-8`.
    pub content_type: String,
    /// The bytes.
    pub data: Vec<u8>,
}

struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
    /// `notify.smtp.timeout`, for a whole message (lettre's async transport bounds only the
    /// connect by it).
    timeout: Duration,
    /// Set once a message got no answer within `timeout`: the run's later emails are not
    /// attempted (each would wait as long). Never reset: a send cut off by the timeout leaves
    /// its pooled connection mid-conversation, and lettre would hand it to the next message.
    unresponsive: std::sync::Mutex<Option<String>>,
}

/// Sends notifications over the configured channels.
pub struct Notifier {
    smtp: Option<Smtp>,
    email_to: Vec<Email>,
    chat: Option<SecretString>,
    pagerduty: Option<(SecretString, String)>,
    /// For the webhooks; built only when one is configured (building it parses the system's
    /// root certificates: a sixth of an empty TTL run's CPU).
    http: Option<reqwest::Client>,
    source: String,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("smtp", &self.smtp.as_ref().map(|s| &s.server))
            .field("chat", &self.chat.is_some())
            .field("pagerduty", &self.pagerduty.is_some())
            .finish()
    }
}

impl Notifier {
    /// Builds the channels the config names; `source` names the job in pager events.
    pub fn from_config(config: &NotifyConfig, source: &str) -> Result<Self, Error> {
        let smtp = config.smtp.as_ref().map(build_smtp).transpose()?;
        let http = if config.chat.is_some() || config.pagerduty.is_some() {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| Error::Webhook {
                    channel: "chat",
                    message: e.to_string(),
                })?;
            Some(client)
        } else {
            None
        };
        Ok(Notifier {
            smtp,
            email_to: config.email_to.clone(),
            chat: config.chat.as_ref().map(|c| c.webhook_url.clone()),
            pagerduty: config
                .pagerduty
                .as_ref()
                .map(|p| (p.routing_key.clone(), p.url.as_str().to_string())),
            http,
            source: source.to_string(),
        })
    }

    /// True when an SMTP server is configured.
    pub fn has_email(&self) -> bool {
        self.smtp.is_some()
    }

    /// Sends `n` to every channel its severity routes to and that is configured.
    pub async fn send(&self, n: &Notification, clock: &dyn Clock) -> Vec<AlertSent> {
        let mut sent = Vec::new();
        for channel in route(n.severity) {
            let record = |target: String, result: Result<(), Error>| {
                if let Err(e) = &result {
                    tracing::warn!(channel = channel.as_str(), error = %e, subject = %n.subject, "notification not delivered");
                }
                AlertSent {
                    channel: channel.as_str().to_string(),
                    target,
                    subject: n.subject.clone(),
                    severity: n.severity,
                    sent_at: clock.now(),
                    delivered: result.is_ok(),
                    error: result.err().map(|e| e.to_string()),
                }
            };
            match channel {
                Channel::Email if self.smtp.is_some() => {
                    let to = if n.email_to.is_empty() {
                        &self.email_to
                    } else {
                        &n.email_to
                    };
                    if to.is_empty() {
                        tracing::debug!(subject = %n.subject, "no email recipients configured");
                        continue;
                    }
                    let result = self
                        .send_email(to, &n.subject, &n.text, n.html.as_deref())
                        .await;
                    sent.push(record(join_emails(to), result));
                }
                Channel::Chat if self.chat.is_some() => {
                    let result = self.post_chat(n).await;
                    sent.push(record("webhook".to_string(), result));
                }
                Channel::Pager if self.pagerduty.is_some() => {
                    let result = self.post_pager(n).await;
                    sent.push(record("pagerduty".to_string(), result));
                }
                _ => tracing::debug!(channel = channel.as_str(), "channel not configured"),
            }
        }
        sent
    }

    /// Sends one email (multipart text + HTML when `html` is given). `Ok` means the SMTP server
    /// accepted the message for delivery.
    pub async fn send_email(
        &self,
        to: &[Email],
        subject: &str,
        text: &str,
        html: Option<&str>,
    ) -> Result<(), Error> {
        self.send_email_with(to, subject, text, html, &[]).await
    }

    /// Sends one email with attachments: `multipart/mixed` holding the body (text, or text +
    /// HTML as `multipart/alternative`) and then each attachment. `Ok` means the SMTP server
    /// accepted the message for delivery.
    pub async fn send_email_with(
        &self,
        to: &[Email],
        subject: &str,
        text: &str,
        html: Option<&str>,
        attachments: &[Attachment],
    ) -> Result<(), Error> {
        let smtp = self.smtp.as_ref().ok_or_else(|| Error::Smtp {
            server: "-".to_string(),
            message: "no smtp server configured".to_string(),
        })?;
        let message =
            build_message(&smtp.from, to, subject, text, html, attachments).map_err(|message| {
                Error::Smtp {
                    server: smtp.server.clone(),
                    message,
                }
            })?;
        let fail = |message: String| Error::Smtp {
            server: smtp.server.clone(),
            message,
        };
        // A poisoned lock only means another task panicked holding an Option<String>.
        let earlier = smtp
            .unresponsive
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(why) = earlier {
            return Err(fail(format!("not attempted: {why}")));
        }
        // lettre bounds the connect by `timeout`, not the conversation: a server that accepts
        // the connection and never answers would hold the run until its deadline killed it,
        // with no result event (found by usage-reporting's sinks-down test).
        match tokio::time::timeout(smtp.timeout, smtp.transport.send(message)).await {
            Ok(sent) => sent.map(|_| ()).map_err(|e| fail(e.to_string())),
            Err(_) => {
                let limit = crate::config::HumanDuration(smtp.timeout);
                *smtp.unresponsive.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(format!("an earlier email got no answer within {limit}"));
                Err(fail(format!(
                    "no answer within {limit} (notify.smtp.timeout)"
                )))
            }
        }
    }

    async fn post_chat(&self, n: &Notification) -> Result<(), Error> {
        let (Some(url), Some(http)) = (&self.chat, &self.http) else {
            return Ok(());
        };
        let body = json!({ "text": format!("*{}*\n{}", n.subject, n.text) });
        let response = http
            .post(url.expose_secret())
            .json(&body)
            .send()
            .await
            // The URL is the secret: report the error kind, never the reqwest error's URL.
            .map_err(|e| Error::Webhook {
                channel: "chat",
                message: describe_http_error(&e),
            })?;
        check_status("chat", response.status())
    }

    async fn post_pager(&self, n: &Notification) -> Result<(), Error> {
        let (Some((key, url)), Some(http)) = (&self.pagerduty, &self.http) else {
            return Ok(());
        };
        let severity = match n.severity {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info | Severity::Ok => "info",
        };
        let mut body = json!({
            "routing_key": key.expose_secret(),
            "event_action": "trigger",
            "payload": { "summary": n.subject, "source": self.source, "severity": severity,
                         "custom_details": { "text": n.text } },
        });
        if let Some(dedup) = &n.dedup_key {
            body["dedup_key"] = json!(dedup);
        }
        let response = http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| Error::Webhook {
                channel: "pager",
                message: describe_http_error(&e),
            })?;
        check_status("pager", response.status())
    }
}

/// Escapes text for an HTML body (`&`, `<`, `>`, `"`, `'`): every value a job puts into the
/// HTML of an email goes through this.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The MIME message: the body alone without attachments, else `multipart/mixed` with the body
/// first. Errors are one line for [`Error::Smtp`].
fn build_message(
    from: &Mailbox,
    to: &[Email],
    subject: &str,
    text: &str,
    html: Option<&str>,
    attachments: &[Attachment],
) -> Result<Message, String> {
    let mut builder = Message::builder().from(from.clone()).subject(subject);
    for addr in to {
        let mailbox: Mailbox = addr
            .as_str()
            .parse()
            .map_err(|e| format!("recipient {addr}: {e}"))?;
        builder = builder.to(mailbox);
    }
    let plain = || {
        SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_string())
    };
    let built = match (html, attachments.is_empty()) {
        (Some(html), true) => builder.multipart(MultiPart::alternative_plain_html(
            text.to_string(),
            html.to_string(),
        )),
        (None, true) => builder.singlepart(plain()),
        (html, false) => {
            let mut mixed = match html {
                Some(html) => MultiPart::mixed().multipart(MultiPart::alternative_plain_html(
                    text.to_string(),
                    html.to_string(),
                )),
                None => MultiPart::mixed().singlepart(plain()),
            };
            for a in attachments {
                let content_type = ContentType::parse(&a.content_type).map_err(|e| {
                    format!(
                        "attachment {}: content type {:?}: {e}",
                        a.filename, a.content_type
                    )
                })?;
                mixed = mixed.singlepart(
                    MimeAttachment::new(a.filename.clone()).body(a.data.clone(), content_type),
                );
            }
            builder.multipart(mixed)
        }
    };
    built.map_err(|e| format!("cannot build message: {e}"))
}

fn describe_http_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "request timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    }
}

fn check_status(channel: &'static str, status: reqwest::StatusCode) -> Result<(), Error> {
    if status.is_success() {
        Ok(())
    } else {
        Err(Error::Webhook {
            channel,
            message: format!("answered {status}"),
        })
    }
}

fn join_emails(to: &[Email]) -> String {
    to.iter().map(Email::as_str).collect::<Vec<_>>().join(",")
}

fn build_smtp(c: &SmtpConfig) -> Result<Smtp, Error> {
    let port = c.effective_port();
    let server = format!("{}:{port}", c.host);
    let err = |message: String| Error::Smtp {
        server: server.clone(),
        message,
    };
    let from: Mailbox = c
        .from
        .parse()
        .map_err(|e| err(format!("from address {:?}: {e}", c.from)))?;
    let tls = match c.tls {
        SmtpTls::None => Tls::None,
        mode => {
            let mut params = TlsParameters::builder(c.host.clone());
            if let Some(ca) = &c.ca_file {
                let pem = std::fs::read(ca).map_err(|source| Error::ReadFile {
                    path: ca.clone(),
                    source,
                })?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| err(format!("ca_file {}: {e}", ca.display())))?;
                params = params.add_root_certificate(cert);
            }
            let params = params
                .build_rustls()
                .map_err(|e| err(format!("tls setup: {e}")))?;
            if mode == SmtpTls::Implicit {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host)
        .port(port)
        .tls(tls)
        .timeout(Some(c.timeout.0));
    let password = match (&c.password, &c.password_file) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(file)) => Some(read_secret_file(file)?),
        (None, None) => None,
    };
    if let Some(user) = &c.username {
        let password = password.ok_or_else(|| {
            err(format!(
                "username {user:?} is set but no password or password_file"
            ))
        })?;
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose_secret().to_string(),
        ));
    }
    Ok(Smtp {
        transport: builder.build(),
        from,
        server,
        timeout: c.timeout.0,
        unresponsive: std::sync::Mutex::new(None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_make_a_mixed_message_with_the_body_first() {
        let from: Mailbox = "Jobs <jobs@example.com>".parse().expect("from");
        let to = [Email::parse("a@example.com").expect("to")];
        let pdf = Attachment {
            filename: "report.pdf".into(),
            content_type: "application/pdf".into(),
            data: b"%PDF-1.7 test".to_vec(),
        };
        let csv = Attachment {
            filename: "figures.csv".into(),
            content_type: "text/csv; charset=utf-8".into(),
            data: b"a,b\n1,2\n".to_vec(),
        };
        let m = build_message(&from, &to, "s", "text", Some("<p>html</p>"), &[pdf, csv])
            .expect("message");
        let raw = String::from_utf8(m.formatted()).expect("utf-8");
        let mixed = raw.find("multipart/mixed").expect("mixed");
        let alternative = raw.find("multipart/alternative").expect("alternative");
        let first_attachment = raw.find("filename=\"report.pdf\"").expect("pdf attachment");
        assert!(
            mixed < alternative && alternative < first_attachment,
            "{raw}"
        );
        assert!(raw.contains("filename=\"figures.csv\""), "{raw}");
        let bad = Attachment {
            filename: "x".into(),
            content_type: "not a type".into(),
            data: Vec::new(),
        };
        let e = build_message(&from, &to, "s", "t", None, &[bad]).expect_err("bad type");
        assert!(e.contains("attachment x"), "{e}");
        // Without attachments the message stays what it was.
        let plain = build_message(&from, &to, "s", "t", Some("<p>h</p>"), &[]).expect("message");
        let raw = String::from_utf8(plain.formatted()).expect("utf-8");
        assert!(!raw.contains("multipart/mixed") && raw.contains("multipart/alternative"));
    }

    #[tokio::test]
    async fn a_server_that_never_answers_costs_one_timeout_and_the_rest_are_not_attempted() {
        // Accepts connections and holds them without a greeting.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn);
            }
        });
        let config: NotifyConfig = serde_json::from_value(json!({
            "smtp": {"host": "127.0.0.1", "port": port, "tls": "none",
                     "from": "jobs@example.com", "timeout": "300ms"},
        }))
        .expect("config");
        let notifier = Notifier::from_config(&config, "test").expect("notifier");
        let to: Vec<Email> = serde_json::from_value(json!(["a@example.com"])).expect("to");
        let first = notifier.send_email(&to, "s", "t", None).await;
        let first = first.expect_err("no answer").to_string();
        assert_eq!(
            first,
            format!("smtp 127.0.0.1:{port}: no answer within 300ms (notify.smtp.timeout)")
        );
        let second = notifier.send_email(&to, "s", "t", None).await;
        assert_eq!(
            second.expect_err("not attempted").to_string(),
            format!(
                "smtp 127.0.0.1:{port}: not attempted: an earlier email got no answer within 300ms"
            )
        );
    }

    #[test]
    fn routing_follows_the_platform_table() {
        assert_eq!(
            route(Severity::Critical),
            [Channel::Email, Channel::Chat, Channel::Pager]
        );
        assert_eq!(route(Severity::Warning), [Channel::Email, Channel::Chat]);
        assert_eq!(route(Severity::Info), [Channel::Chat]);
        assert!(route(Severity::Ok).is_empty());
    }
}
