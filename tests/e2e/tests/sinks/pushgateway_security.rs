//! The metrics push to a Pushgateway that wants credentials over TLS: the real Debian
//! Pushgateway with its own `--web.config.file` (TLS, bcrypt basic auth), and for bearer tokens,
//! which the Pushgateway itself does not check, an authenticating proxy of the kind deployed in
//! front of it (ours, a few lines of axum behind stunnel for TLS) forwarding to the real one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use common::config::{BasicAuth, HttpUrl, PushgatewayConfig};
use common::event::Status;
use common::metrics::{Metrics, Pusher};
use testbed::pki::Pki;
use testbed::process::free_port;
use testbed::pushgateway::{Pushgateway, WebConfig};
use testbed::stunnel::{Stunnel, StunnelConfig};

const USER: &str = "metrics-pusher";
const PASSWORD: &str = "Pgw-Pa55w0rd-do-not-leak";
const TOKEN: &str = "pgw-B3arer-T0ken-do-not-leak";

fn secret_file(dir: &Path, name: &str, value: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{value}\n")).expect("write secret");
    path
}

fn metrics() -> Metrics {
    let m = Metrics::new("secure-push");
    let completed: jiff::Timestamp = "2026-11-23T12:00:00Z".parse().expect("timestamp");
    m.record_run(Status::Success, Duration::from_secs(2), completed, &[]);
    m
}

fn config(url: &str) -> PushgatewayConfig {
    PushgatewayConfig::new(HttpUrl::parse(url).expect("url"))
}

async fn runs(pgw: &Pushgateway) -> Option<f64> {
    pgw.find_metric(
        &[("job", "secure-push")],
        "security_job_runs_total",
        &[("status", "success")],
    )
    .await
    .expect("query")
    .map(|s| s.value)
}

fn assert_no_secret(text: &str) {
    for secret in [PASSWORD, TOKEN] {
        assert!(!text.contains(secret), "a secret leaked: {text}");
    }
}

#[tokio::test]
async fn basic_auth_over_tls_to_the_real_pushgateway() {
    let pki = Pki::generate().expect("pki");
    let dir = tempfile::tempdir().expect("tempdir");
    let pgw = Pushgateway::start_with(&WebConfig {
        tls: Some(pki.server.clone()),
        basic_auth: Some((USER.into(), PASSWORD.into())),
        ca: Some(pki.ca.clone()),
    })
    .await
    .expect("pushgateway with TLS and basic auth");
    assert!(pgw.url().starts_with("https://"), "{}", pgw.url());

    let good = PushgatewayConfig {
        basic_auth: Some(BasicAuth {
            username: USER.into(),
            password_file: secret_file(dir.path(), "password", PASSWORD),
        }),
        ca_file: Some(pki.ca.clone()),
        ..config(&pgw.url())
    };
    let pusher = Pusher::from_config(&good).expect("pusher");
    assert_no_secret(&format!("{pusher:?}"));
    metrics().push(&pusher, false).await.expect("pushed");
    assert_eq!(runs(&pgw).await, Some(1.0));

    // A wrong password: the Pushgateway answers 401, and the error does not repeat it.
    let wrong = PushgatewayConfig {
        basic_auth: Some(BasicAuth {
            username: USER.into(),
            password_file: secret_file(dir.path(), "wrong", "not-the-password"),
        }),
        ca_file: Some(pki.ca.clone()),
        ..config(&pgw.url())
    };
    let err = metrics()
        .push(&Pusher::from_config(&wrong).expect("pusher"), false)
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("401"), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");

    // Without the CA file the Pushgateway's certificate is not trusted.
    let untrusting = PushgatewayConfig {
        ca_file: None,
        ..good
    };
    let err = metrics()
        .push(&Pusher::from_config(&untrusting).expect("pusher"), false)
        .await
        .expect_err("untrusted certificate");
    let text = err.to_string();
    assert!(
        text.to_lowercase().contains("certificate"),
        "the error says why: {text}"
    );
    assert_no_secret(&text);
}

#[tokio::test]
async fn refusals_before_the_run_credentials_in_the_clear_or_an_unreadable_file() {
    let plain = PushgatewayConfig {
        bearer_token_file: Some(PathBuf::from("/run/token")),
        ..config("http://pushgateway:9091")
    };
    let err = Pusher::from_config(&plain).expect_err("refused");
    assert!(err.to_string().contains("use an https:// url"), "{err}");
    let missing = PushgatewayConfig {
        bearer_token_file: Some(PathBuf::from("/nonexistent/token")),
        ..config("https://pushgateway:9091")
    };
    let err = Pusher::from_config(&missing).expect_err("refused");
    assert!(
        err.to_string()
            .starts_with("cannot read /nonexistent/token"),
        "{err}"
    );
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
}

/// Forwards a push to the Pushgateway when it carries the bearer token, else 401.
async fn forward(State(proxy): State<Proxy>, request: Request) -> axum::response::Response {
    let authorized = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"));
    if !authorized {
        return (StatusCode::UNAUTHORIZED, "bearer token required\n").into_response();
    }
    let path = request.uri().path().to_string();
    let content_type = request
        .headers()
        .get("content-type")
        .cloned()
        .unwrap_or_else(|| axum::http::HeaderValue::from_static("text/plain"));
    let Ok(body) = axum::body::to_bytes(request.into_body(), 1 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    match proxy
        .http
        .put(format!("{}{path}", proxy.upstream))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
    {
        Ok(r) => StatusCode::from_u16(r.status().as_u16())
            .unwrap_or(StatusCode::BAD_GATEWAY)
            .into_response(),
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

#[tokio::test]
async fn a_bearer_token_over_tls_reaches_an_authenticating_proxy_in_front_of_the_pushgateway() {
    let pki = Pki::generate().expect("pki");
    let dir = tempfile::tempdir().expect("tempdir");
    let pgw = Pushgateway::start().await.expect("pushgateway");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let proxy_addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(forward).with_state(Proxy {
        upstream: pgw.url(),
        http: reqwest::Client::new(),
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let tls = Stunnel::start(&StunnelConfig {
        accept_port: free_port().expect("port"),
        connect: proxy_addr.to_string(),
        cert: pki.server.cert.clone(),
        key: pki.server.key.clone(),
        client_ca: None,
    })
    .await
    .expect("stunnel in front of the proxy");

    let with_token = |token: &str| PushgatewayConfig {
        bearer_token_file: Some(secret_file(dir.path(), "token", token)),
        ca_file: Some(pki.ca.clone()),
        ..config(&format!("https://{}", tls.address()))
    };
    let pusher = Pusher::from_config(&with_token(TOKEN)).expect("pusher");
    metrics()
        .push(&pusher, false)
        .await
        .expect("pushed through the proxy");
    assert_eq!(runs(&pgw).await, Some(1.0), "it reached the Pushgateway");
    assert_no_secret(&format!("{pusher:?}"));

    let err = metrics()
        .push(
            &Pusher::from_config(&with_token("a-wrong-token")).expect("pusher"),
            false,
        )
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("401"), "{err}");
    assert!(!err.to_string().contains("a-wrong-token"), "{err}");
    server.abort();
}
