use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use common::clock::FixedClock;
use common::config::{
    ChatConfig, Email, HttpUrl, HumanDuration, NotifyConfig, PagerDutyConfig, SmtpConfig, SmtpTls,
};
use common::event::Severity;
use common::notify::{Attachment, Notification, Notifier};
use secrecy::SecretString;
use testbed::smtp::SmtpSink;

fn smtp(host: &str, port: u16, tls: SmtpTls, ca_file: Option<std::path::PathBuf>) -> SmtpConfig {
    SmtpConfig {
        host: host.to_string(),
        port: Some(port),
        tls,
        ca_file,
        from: "Governance Jobs <jobs@example.com>".to_string(),
        username: None,
        password: None,
        password_file: None,
        timeout: HumanDuration(Duration::from_secs(10)),
    }
}

fn email(s: &str) -> Email {
    Email::parse(s).expect("email")
}

fn clock() -> FixedClock {
    FixedClock("2026-11-23T12:00:00Z".parse().expect("timestamp"))
}

#[tokio::test]
async fn email_has_both_parts_recipients_and_subject() {
    let sink = SmtpSink::start().await.expect("smtp sink");
    let config = NotifyConfig {
        smtp: Some(smtp(sink.host(), sink.port(), SmtpTls::None, None)),
        ..NotifyConfig::default()
    };
    let notifier = Notifier::from_config(&config, "test").expect("notifier");
    notifier
        .send_email(
            &[email("alice@example.com"), email("bob@example.com")],
            "2 resources expire in 24 hours",
            "Plain text: i-1 and i-2",
            Some("<p>HTML: <b>i-1</b> and <b>i-2</b></p>"),
        )
        .await
        .expect("accepted by the server");

    let mails = sink
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("captured");
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(
        m.subject().as_deref(),
        Some("2 resources expire in 24 hours")
    );
    let mut to = m.to();
    to.sort();
    assert_eq!(to, ["alice@example.com", "bob@example.com"]);
    assert!(
        m.from().iter().any(|f| f == "jobs@example.com"),
        "{:?}",
        m.from()
    );
    assert!(
        m.content_type()
            .unwrap_or_default()
            .starts_with("multipart/alternative"),
        "{:?}",
        m.content_type()
    );
    assert!(
        m.text_body()
            .unwrap_or_default()
            .contains("Plain text: i-1 and i-2")
    );
    assert!(m.html_body().unwrap_or_default().contains("<b>i-1</b>"));
}

#[tokio::test]
async fn attachments_arrive_after_both_body_parts() {
    let sink = SmtpSink::start().await.expect("smtp sink");
    let config = NotifyConfig {
        smtp: Some(smtp(sink.host(), sink.port(), SmtpTls::None, None)),
        ..NotifyConfig::default()
    };
    let notifier = Notifier::from_config(&config, "test").expect("notifier");
    let pdf = Attachment {
        filename: "usage-acme-2026-11-23_2026-11-30.pdf".into(),
        content_type: "application/pdf".into(),
        data: b"%PDF-1.7\n%test\n".to_vec(),
    };
    let csv = Attachment {
        filename: "usage-acme-2026-11-23_2026-11-30.csv".into(),
        content_type: "text/csv; charset=utf-8".into(),
        data: "metric,value\ncalls,\"1,234\"\nname,Ωmega\n"
            .as_bytes()
            .to_vec(),
    };
    notifier
        .send_email_with(
            &[email("ops@acme.example.com")],
            "Usage report Ωmega",
            "the text part",
            Some("<p>the html part</p>"),
            &[pdf, csv],
        )
        .await
        .expect("accepted by the server");
    let mails = sink
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("captured");
    let m = &mails[0];
    assert!(
        m.content_type()
            .is_some_and(|c| c.starts_with("multipart/mixed")),
        "{:?}",
        m.content_type()
    );
    assert_eq!(m.subject().as_deref(), Some("Usage report Ωmega"));
    assert_eq!(
        m.text_body().as_deref().map(str::trim_end),
        Some("the text part")
    );
    assert_eq!(
        m.html_body().as_deref().map(str::trim_end),
        Some("<p>the html part</p>")
    );
    assert_eq!(
        m.attachment_names(),
        [
            "usage-acme-2026-11-23_2026-11-30.pdf",
            "usage-acme-2026-11-23_2026-11-30.csv"
        ]
    );
}

#[tokio::test]
async fn starttls_is_required_and_verified_against_the_configured_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    let sink = SmtpSink::start_tls(&cert, &key)
        .await
        .expect("smtp sink with starttls");

    // Trusting the sink's certificate: delivered over STARTTLS.
    let trusted = NotifyConfig {
        smtp: Some(smtp(
            "localhost",
            sink.port(),
            SmtpTls::Starttls,
            Some(cert.clone()),
        )),
        ..NotifyConfig::default()
    };
    Notifier::from_config(&trusted, "test")
        .expect("notifier")
        .send_email(&[email("alice@example.com")], "over tls", "body", None)
        .await
        .expect("delivered over starttls");
    let mails = sink
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("captured");
    assert_eq!(mails[0].subject().as_deref(), Some("over tls"));

    // Without the CA the self-signed certificate is refused: nothing is sent in clear instead.
    let untrusted = NotifyConfig {
        smtp: Some(smtp("localhost", sink.port(), SmtpTls::Starttls, None)),
        ..NotifyConfig::default()
    };
    let err = Notifier::from_config(&untrusted, "test")
        .expect("notifier")
        .send_email(
            &[email("alice@example.com")],
            "must not arrive",
            "body",
            None,
        )
        .await
        .expect_err("certificate not trusted");
    assert!(
        err.to_string()
            .contains(&format!("localhost:{}", sink.port())),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.messages().expect("maildir").len(),
        1,
        "the refused message was not delivered"
    );
}

type Captured = Arc<Mutex<Vec<serde_json::Value>>>;

async fn capture(
    State(store): State<Captured>,
    Json(body): Json<serde_json::Value>,
) -> &'static str {
    store.lock().expect("lock").push(body);
    "ok"
}

/// A loopback HTTP server recording JSON bodies POSTed to `/chat` and `/pager`.
async fn webhook_server() -> (String, Captured, Captured) {
    let chat: Captured = Arc::default();
    let pager: Captured = Arc::default();
    let app = axum::Router::new()
        .route("/chat", post(capture).with_state(chat.clone()))
        .route("/pager", post(capture).with_state(pager.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, chat, pager)
}

#[tokio::test]
async fn routing_by_severity_reaches_each_channel_and_records_alerts_without_secrets() {
    let sink = SmtpSink::start().await.expect("smtp sink");
    let (url, chat, pager) = webhook_server().await;
    let config = NotifyConfig {
        smtp: Some(smtp(sink.host(), sink.port(), SmtpTls::None, None)),
        email_to: vec![email("oncall@example.com")],
        chat: Some(ChatConfig {
            webhook_url: SecretString::from(format!("{url}/chat")),
        }),
        pagerduty: Some(PagerDutyConfig {
            routing_key: SecretString::from("R0UT1NG-KEY-SECRET".to_string()),
            url: HttpUrl::parse(&format!("{url}/pager")).expect("url"),
        }),
    };
    let notifier = Notifier::from_config(&config, "cert-check").expect("notifier");
    let note = |severity, subject: &str| Notification {
        severity,
        subject: subject.to_string(),
        text: "details".to_string(),
        html: None,
        email_to: vec![],
        dedup_key: Some("cert-check-digest".to_string()),
    };

    let critical = notifier
        .send(&note(Severity::Critical, "critical digest"), &clock())
        .await;
    let warning = notifier
        .send(&note(Severity::Warning, "warning digest"), &clock())
        .await;
    let info = notifier
        .send(&note(Severity::Info, "info digest"), &clock())
        .await;
    let ok = notifier
        .send(&note(Severity::Ok, "nothing"), &clock())
        .await;

    let channels =
        |a: &[common::event::AlertSent]| a.iter().map(|x| x.channel.clone()).collect::<Vec<_>>();
    assert_eq!(channels(&critical), ["email", "chat", "pager"]);
    assert_eq!(channels(&warning), ["email", "chat"]);
    assert_eq!(channels(&info), ["chat"]);
    assert!(ok.is_empty());
    assert!(
        critical
            .iter()
            .chain(&warning)
            .chain(&info)
            .all(|a| a.delivered),
        "{critical:?}"
    );
    assert_eq!(critical[0].target, "oncall@example.com");

    let mails = sink
        .wait_for(2, Duration::from_secs(10))
        .await
        .expect("captured");
    let mut subjects: Vec<String> = mails.iter().filter_map(|m| m.subject()).collect();
    subjects.sort();
    assert_eq!(subjects, ["critical digest", "warning digest"]);
    let chat = chat.lock().expect("lock").clone();
    assert_eq!(chat.len(), 3);
    assert!(
        chat[2]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("info digest")
    );
    let pager = pager.lock().expect("lock").clone();
    assert_eq!(pager.len(), 1);
    assert_eq!(pager[0]["routing_key"], "R0UT1NG-KEY-SECRET");
    assert_eq!(pager[0]["payload"]["severity"], "critical");
    assert_eq!(pager[0]["dedup_key"], "cert-check-digest");

    // The alerts that go into the event never carry the webhook URL or the routing key.
    let recorded = serde_json::to_string(&[critical, warning, info]).expect("json");
    assert!(!recorded.contains("R0UT1NG-KEY-SECRET"), "{recorded}");
    assert!(
        !recorded.contains("/chat") && !recorded.contains("/pager"),
        "{recorded}"
    );
}

#[tokio::test]
async fn an_unreachable_channel_is_recorded_as_not_delivered() {
    let port = testbed::process::free_port().expect("port");
    let config = NotifyConfig {
        chat: Some(ChatConfig {
            webhook_url: SecretString::from(format!(
                "http://127.0.0.1:{port}/hook-with-secret-token"
            )),
        }),
        ..NotifyConfig::default()
    };
    let notifier = Notifier::from_config(&config, "x").expect("notifier");
    let n = Notification {
        severity: Severity::Info,
        subject: "s".into(),
        text: "t".into(),
        html: None,
        email_to: vec![],
        dedup_key: None,
    };
    let sent = notifier.send(&n, &clock()).await;
    assert_eq!(sent.len(), 1);
    assert!(!sent[0].delivered);
    let error = sent[0].error.clone().unwrap_or_default();
    assert!(error.contains("cannot connect"), "{error}");
    assert!(
        !error.contains("secret-token"),
        "the webhook url is a secret: {error}"
    );
}
