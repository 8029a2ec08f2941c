//! Notifications: email (SMTP via lettre, STARTTLS or implicit TLS over rustls), a Slack-compatible
//! chat webhook, and PagerDuty Events v2.
//!
//! Routing by severity is the platform's: critical → email + chat + pager; warning → email + chat;
//! info → chat; ok → nothing. Every attempt, delivered or not, is returned as an
//! [`AlertSent`] for the result event's `alerts_sent`; a channel failure is recorded there, never a
//! panic, and never aborts the run. Webhook URLs and routing keys are secrets and never appear in
//! an `AlertSent`, a log line or an error message.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
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

struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
}

/// Sends notifications over the configured channels.
pub struct Notifier {
    smtp: Option<Smtp>,
    email_to: Vec<Email>,
    chat: Option<SecretString>,
    pagerduty: Option<(SecretString, String)>,
    http: reqwest::Client,
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
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Webhook {
                channel: "chat",
                message: e.to_string(),
            })?;
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
        let smtp = self.smtp.as_ref().ok_or_else(|| Error::Smtp {
            server: "-".to_string(),
            message: "no smtp server configured".to_string(),
        })?;
        let err = |message: String| Error::Smtp {
            server: smtp.server.clone(),
            message,
        };
        let mut builder = Message::builder().from(smtp.from.clone()).subject(subject);
        for addr in to {
            let mailbox: Mailbox = addr
                .as_str()
                .parse()
                .map_err(|e| err(format!("recipient {addr}: {e}")))?;
            builder = builder.to(mailbox);
        }
        let message = match html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                text.to_string(),
                html.to_string(),
            )),
            None => builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(text.to_string()),
            ),
        }
        .map_err(|e| err(format!("cannot build message: {e}")))?;
        smtp.transport
            .send(message)
            .await
            .map_err(|e| err(e.to_string()))?;
        Ok(())
    }

    async fn post_chat(&self, n: &Notification) -> Result<(), Error> {
        let Some(url) = &self.chat else { return Ok(()) };
        let body = json!({ "text": format!("*{}*\n{}", n.subject, n.text) });
        let response = self
            .http
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
        let Some((key, url)) = &self.pagerduty else {
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
        let response =
            self.http
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
