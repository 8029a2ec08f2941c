//! An SMTP sink: aiosmtpd on a free loopback port, keeping every message in a Maildir.
//!
//! `$GOV_VENV/bin/python -m aiosmtpd -n -l 127.0.0.1:PORT -c aiosmtpd.handlers.Mailbox DIR`
//! accepts any sender and recipient and writes each message to `DIR/new/`. [`SmtpSink::messages`]
//! reads them back as [`CapturedMail`], which decodes MIME with `mail-parser`.
//!
//! Observed behaviour (aiosmtpd 1.4.6):
//! - The Mailbox handler creates the Maildir only if `DIR` does not exist yet; given an existing
//!   empty directory it answers every `DATA` with 500 (no `DIR/tmp`). We pass a fresh sub-path.
//! - It prepends `X-Peer`, `X-MailFrom` and `X-RcptTo` headers: the SMTP envelope, exposed as
//!   [`CapturedMail::envelope_from`] and [`CapturedMail::envelope_to`].
//! - Stored messages use LF line endings, whatever the client sent.
//! - With a STARTTLS certificate ([`SmtpSink::start_tls`]) TLS is required: `MAIL` before
//!   `STARTTLS` gets `530 Must issue a STARTTLS command first`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mail_parser::{Address, MessageParser, MimeHeaders, PartType};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::process::{Error, ManagedProcess, Result, free_port, locate, venv_dir};

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The Maildir's name inside the sink's temporary directory.
const MAILDIR: &str = "maildir";

/// A running aiosmtpd, stopped when dropped; its Maildir is removed on drop.
#[derive(Debug)]
pub struct SmtpSink {
    // Declared before `dir` so the server stops before its Maildir is removed.
    process: ManagedProcess,
    port: u16,
    tls: bool,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts a plain SMTP sink (no TLS, no authentication) and waits for its `220` greeting.
    pub async fn start() -> Result<SmtpSink> {
        Self::start_with(None).await
    }

    /// Starts a sink that offers STARTTLS with the given PEM certificate and key, and requires it
    /// before `MAIL`. The caller generates the certificate (e.g. with `rcgen`, for `127.0.0.1`
    /// and/or `localhost`) and makes its client trust it.
    pub async fn start_tls(cert_pem: &Path, key_pem: &Path) -> Result<SmtpSink> {
        Self::start_with(Some((cert_pem, key_pem))).await
    }

    async fn start_with(tls: Option<(&Path, &Path)>) -> Result<SmtpSink> {
        let python = locate(
            "python (aiosmtpd venv)",
            "GOV_VENV",
            venv_dir().join("bin/python"),
        )?;
        let dir = tempfile::Builder::new()
            .prefix("testbed-smtp-")
            .tempdir()
            .map_err(|source| Error::Io {
                service: "smtp".into(),
                action: "create the Maildir's parent directory".into(),
                source,
            })?;
        // Must not exist yet: see the module docs.
        let maildir = dir.path().join(MAILDIR);
        let port = free_port()?;
        let mut args = vec![
            "-m".into(),
            "aiosmtpd".into(),
            "-n".into(),
            "-l".into(),
            format!("127.0.0.1:{port}"),
        ];
        if let Some((cert, key)) = tls {
            args.extend([
                "--tlscert".into(),
                cert.display().to_string(),
                "--tlskey".into(),
                key.display().to_string(),
            ]);
        }
        args.extend([
            "-c".into(),
            "aiosmtpd.handlers.Mailbox".into(),
            maildir.display().to_string(),
        ]);
        let process = ManagedProcess::spawn("smtp", &python, &args, &[])?;
        process
            .wait_until("it greets with 220", START_TIMEOUT, || greeting(port))
            .await?;
        Ok(SmtpSink {
            process,
            port,
            tls: tls.is_some(),
            dir,
        })
    }

    /// The host to connect to: always `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The SMTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether this sink was started with [`start_tls`](Self::start_tls).
    pub fn requires_starttls(&self) -> bool {
        self.tls
    }

    /// The Maildir (messages arrive in its `new/` subdirectory).
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join(MAILDIR)
    }

    /// Every message received so far, in delivery order.
    pub fn messages(&self) -> Result<Vec<CapturedMail>> {
        let new = self.maildir().join("new");
        let io_error = |action: String| {
            move |source| Error::Io {
                service: "smtp".into(),
                action,
                source,
            }
        };
        let entries =
            std::fs::read_dir(&new).map_err(io_error(format!("list {}", new.display())))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(io_error(format!("list {}", new.display())))?
                .path();
            files.push((delivery_number(&path), path));
        }
        files.sort();
        files
            .into_iter()
            .map(|(_, path)| {
                let bytes =
                    std::fs::read(&path).map_err(io_error(format!("read {}", path.display())))?;
                Ok(CapturedMail {
                    raw: String::from_utf8_lossy(&bytes).into_owned(),
                    path,
                })
            })
            .collect()
    }

    /// Waits until at least `count` messages have arrived and returns them all, or fails after
    /// `timeout` saying how many did arrive.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Result<Vec<CapturedMail>> {
        let started = Instant::now();
        loop {
            let messages = self.messages()?;
            if messages.len() >= count {
                return Ok(messages);
            }
            if started.elapsed() >= timeout {
                return Err(Error::Unexpected {
                    service: "smtp".into(),
                    action: format!("wait {timeout:?} for {count} message(s)"),
                    detail: format!(
                        "{} arrived; last lines of its log:\n{}",
                        messages.len(),
                        self.process.log_tail(40)
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The underlying process, e.g. for its log.
    pub fn process(&self) -> &ManagedProcess {
        &self.process
    }
}

/// Python's Maildir names files `<secs>.M<usecs>P<pid>Q<n>.<host>`, `n` counting deliveries in
/// the server process; the microseconds are not zero-padded, so names do not sort by time.
fn delivery_number(path: &Path) -> u64 {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split_once('Q'))
        .and_then(|(_, rest)| rest.split('.').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

/// Connects and reads the greeting; fine when it starts with `220`.
async fn greeting(port: u16) -> std::result::Result<(), String> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let mut stream = BufReader::new(stream);
        let mut line = String::new();
        stream
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        // Be polite so the server does not log an aborted session for every probe.
        let _ = stream.get_mut().write_all(b"QUIT\r\n").await;
        if line.starts_with("220") {
            Ok(())
        } else {
            Err(format!("greeting {:?}", line.trim_end()))
        }
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .unwrap_or_else(|_| Err("no greeting within 2s".to_owned()))
}

/// One message as the sink stored it: aiosmtpd's envelope headers followed by the message.
#[derive(Debug, Clone)]
pub struct CapturedMail {
    /// The stored text (LF line endings), decoded lossily as UTF-8.
    pub raw: String,
    /// The Maildir file it was read from.
    pub path: PathBuf,
}

impl CapturedMail {
    fn parsed(&self) -> Option<mail_parser::Message<'_>> {
        MessageParser::default().parse(self.raw.as_bytes())
    }

    /// The raw text.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The header called `name` (case-insensitive; the last one if repeated) as written, unfolded
    /// and trimmed, but not decoded (an RFC 2047 `=?utf-8?…?=` subject stays encoded: use
    /// [`subject`](Self::subject)).
    pub fn header(&self, name: &str) -> Option<String> {
        let parsed = self.parsed()?;
        let raw = parsed.header_raw(name)?;
        Some(
            raw.split(['\r', '\n'])
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        )
    }

    /// The SMTP `MAIL FROM` address (aiosmtpd's `X-MailFrom` header).
    pub fn envelope_from(&self) -> Option<String> {
        self.header("X-MailFrom")
    }

    /// The SMTP `RCPT TO` addresses (aiosmtpd's `X-RcptTo` header), Bcc recipients included.
    pub fn envelope_to(&self) -> Vec<String> {
        self.header("X-RcptTo")
            .map(|v| {
                v.split(',')
                    .map(|a| a.trim().to_owned())
                    .filter(|a| !a.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The decoded `Subject`.
    pub fn subject(&self) -> Option<String> {
        self.parsed()?.subject().map(str::to_owned)
    }

    /// The addresses of the `From` header.
    pub fn from(&self) -> Vec<String> {
        self.parsed()
            .and_then(|m| m.from().map(addresses))
            .unwrap_or_default()
    }

    /// The addresses of the `To` header.
    pub fn to(&self) -> Vec<String> {
        self.parsed()
            .and_then(|m| m.to().map(addresses))
            .unwrap_or_default()
    }

    /// The addresses of the `Cc` header.
    pub fn cc(&self) -> Vec<String> {
        self.parsed()
            .and_then(|m| m.cc().map(addresses))
            .unwrap_or_default()
    }

    /// The top-level `Content-Type` header as written (e.g. `multipart/alternative; boundary=…`).
    pub fn content_type(&self) -> Option<String> {
        self.header("Content-Type")
    }

    /// The first `text/plain` body part, transfer-decoded. `None` if the message has none
    /// (unlike `mail-parser`'s `body_text`, this never converts HTML to text).
    pub fn text_body(&self) -> Option<String> {
        let parsed = self.parsed()?;
        (0..parsed.text_body_count()).find_map(|i| {
            let part = parsed.text_part(u32::try_from(i).ok()?)?;
            match &part.body {
                PartType::Text(text) => Some(text.to_string()),
                _ => None,
            }
        })
    }

    /// The first `text/html` body part, transfer-decoded. `None` if the message has none
    /// (this never converts plain text to HTML).
    pub fn html_body(&self) -> Option<String> {
        let parsed = self.parsed()?;
        (0..parsed.html_body_count()).find_map(|i| {
            let part = parsed.html_part(u32::try_from(i).ok()?)?;
            match &part.body {
                PartType::Html(html) => Some(html.to_string()),
                _ => None,
            }
        })
    }

    /// The file names of the attachments (unnamed ones are skipped).
    pub fn attachment_names(&self) -> Vec<String> {
        self.parsed()
            .map(|m| {
                m.attachments()
                    .filter_map(|a| a.attachment_name().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn addresses(address: &Address<'_>) -> Vec<String> {
    address
        .iter()
        .filter_map(|a| a.address.as_deref().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTIPART: &str = "X-Peer: ('127.0.0.1', 1)\nX-MailFrom: bot@example.org\n\
        X-RcptTo: ops@example.org, audit@example.org\n\
        From: Governance <bot@example.org>\nTo: ops@example.org\nCc: a@example.org, b@example.org\n\
        Subject: =?utf-8?q?3_resources_deleted_=E2=9C=93?=\nMIME-Version: 1.0\n\
        Content-Type: multipart/mixed; boundary=\"outer\"\n\n\
        --outer\nContent-Type: multipart/alternative; boundary=\"inner\"\n\n\
        --inner\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n\
        caf=C3=A9 deleted\n\
        --inner\nContent-Type: text/html; charset=utf-8\n\n<p>deleted</p>\n--inner--\n\
        --outer\nContent-Type: text/csv\nContent-Disposition: attachment; filename=\"plan.csv\"\n\n\
        id,kind\n--outer--\n";

    #[test]
    fn decodes_headers_bodies_and_envelope() {
        let mail = CapturedMail {
            raw: MULTIPART.to_owned(),
            path: PathBuf::from("x"),
        };
        assert_eq!(mail.subject().as_deref(), Some("3 resources deleted ✓"));
        assert_eq!(mail.from(), ["bot@example.org"]);
        assert_eq!(mail.to(), ["ops@example.org"]);
        assert_eq!(mail.cc(), ["a@example.org", "b@example.org"]);
        assert_eq!(mail.envelope_from().as_deref(), Some("bot@example.org"));
        assert_eq!(mail.envelope_to(), ["ops@example.org", "audit@example.org"]);
        assert!(mail.content_type().unwrap().starts_with("multipart/mixed"));
        assert_eq!(mail.text_body().unwrap().trim_end(), "café deleted");
        assert_eq!(mail.html_body().unwrap().trim_end(), "<p>deleted</p>");
        assert_eq!(mail.attachment_names(), ["plan.csv"]);
    }

    #[test]
    fn plain_text_mail_has_no_html_body() {
        let mail = CapturedMail {
            raw: "Subject: hi\nTo: x@example.org\n\nbody\n".to_owned(),
            path: PathBuf::from("x"),
        };
        assert_eq!(mail.text_body().unwrap().trim_end(), "body");
        assert_eq!(mail.html_body(), None);
    }

    #[test]
    fn delivery_number_orders_by_counter_not_name() {
        let a = Path::new("1795431618.M99P1Q9.host");
        let b = Path::new("1795431618.M504878P1Q10.host");
        assert!(delivery_number(a) < delivery_number(b));
    }
}
