//! Every other sink or API down, one at a time, against the real components: the checker's
//! documented exit code, result event and message for each, and what the sinks still up got.
//!
//! The bed of every test: one TLS endpoint whose certificate (signed by a root the config
//! trusts) expires in 3 days — a critical `certificate_expiry` finding, so the run sends its
//! digest by email — plus tansu (the result event), the Pushgateway and an aiosmtpd sink. Then:
//!
//! - SMTP not listening: the digest cannot be sent — `partial`, exit 1, the error names the
//!   channel, the recipient and the SMTP server; event on Kafka, metrics pushed.
//! - The Pushgateway answering 503 (the fault proxy in front of the real one): the results
//!   could not all be published — exit 1, the log names the Pushgateway group and its answer;
//!   the event (built before the push, so `success`) is on Kafka, the digest sent; the next run,
//!   the Pushgateway back, pushes.
//! - The Kubernetes API (the fake one, behind the fault proxy) answering 503, or 429 with
//!   `Retry-After`: the source cannot be read — `partial`, exit 1, after a bounded number of
//!   retries (not the listing's 2-minute deadline); the endpoint is still checked and reported.
//! - Vault (OpenBao) sealed, and Vault answering 403 to a real token without the policy: the
//!   source cannot be read — `partial`, exit 1, the error quotes Vault's own reason; the token
//!   appears nowhere. The same token, once its policy exists, reads the mount.
//!
//! None of these is a refusal (exit 2): the checker refuses only what it can know before the
//! run (config, roots, the Vault token file); a source or sink failing during the run is
//! `partial` or unpublished, and every other source and sink still does its part.

use std::net::SocketAddr;
use std::process::Output;
use std::time::{Duration, Instant};

use base64::Engine;
use common::event::{ResultEvent, Severity};
use serde_json::{Value, json};
use testbed::fakekube::FakeKube;
use testbed::faultproxy::{Fault, FaultProxy, Route, Rule};
use testbed::kafka::{Tansu, consume_all};
use testbed::pushgateway::Pushgateway;
use testbed::smtp::SmtpSink;

use crate::certs::{self, NOW, days_from_now};
use crate::{run, text};

const TOPIC: &str = "security-job-results";
const ONCALL: &str = "oncall@example.com";

/// The sinks and the one endpoint every test shares.
struct Bed {
    dir: tempfile::TempDir,
    broker: Tansu,
    pgw: Pushgateway,
    smtp: SmtpSink,
    endpoint: SocketAddr,
    /// How many result events this bed's runs published so far.
    runs: usize,
}

/// One run: its exit code, output and the printed event (its duration goes to the test's log).
struct Ran {
    out: Output,
    stdout: String,
    stderr: String,
    event: ResultEvent,
}

impl Bed {
    async fn start() -> Bed {
        let root = certs::ca("Sinks Root");
        let leaf = certs::leaf(&root, "localhost", days_from_now(3));
        let endpoint = certs::serve(
            vec![leaf.der().to_vec(), root.cert.der().to_vec()],
            leaf.key.serialize_der(),
        )
        .await;
        let broker = Tansu::start().await.expect("tansu");
        broker.create_topic(TOPIC, 1).await.expect("topic");
        let pgw = Pushgateway::start().await.expect("pushgateway");
        let smtp = SmtpSink::start().await.expect("smtp sink");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("root.pem"), root.cert.pem()).expect("root");
        Bed {
            dir,
            broker,
            pgw,
            smtp,
            endpoint,
            runs: 0,
        }
    }

    fn endpoint_url(&self) -> String {
        format!("https://{}", self.endpoint)
    }

    /// The bed's own SMTP sink as `host:port`.
    fn smtp_address(&self) -> (String, u16) {
        (self.smtp.host().to_string(), self.smtp.port())
    }

    /// Writes `config.yaml`: `shared` top-level sections, SMTP at `smtp`, the endpoint, the
    /// root, and `job` (more lines of the `job:` section, indented by two).
    fn write_config(&self, shared: &str, smtp: (String, u16), job: &str) {
        let (host, port) = smtp;
        let config = format!(
            "{shared}notify:\n  smtp: {{host: {host}, port: {port}, tls: none, from: certs@example.com, timeout: 5s}}\n  email_to: [{ONCALL}]\n\
             job:\n  endpoints: [{{address: \"{ep}\", sni: localhost}}]\n  roots: {{webpki: false, extra_pem_files: [root.pem]}}\n  timeout: 2s\n{job}",
            ep = self.endpoint,
        );
        std::fs::write(self.dir.path().join("config.yaml"), config).expect("config");
    }

    /// Runs the checker (dry run, JSON) with Kafka and the Pushgateway at `pushgateway`.
    async fn run(&mut self, pushgateway: &str) -> Ran {
        let env = [
            ("GOV_KAFKA_BROKERS", self.broker.bootstrap()),
            ("GOV_PUSHGATEWAY_URL", pushgateway.to_string()),
        ];
        let started = Instant::now();
        let out = run(
            self.dir.path(),
            &["--config", "config.yaml", "--now", NOW, "--output", "json"],
            &env,
        )
        .await;
        let took = started.elapsed();
        let (stdout, stderr) = text(&out);
        let event: ResultEvent = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("printed event ({e}):\n{stdout}\nstderr: {stderr}"));
        self.runs += 1;
        eprintln!(
            "observed: exit {:?}, status {}, {:.1} s, errors {:?}",
            out.status.code(),
            event.status.as_str(),
            took.as_secs_f64(),
            event.errors
        );
        Ran {
            out,
            stdout,
            stderr,
            event,
        }
    }

    /// The result event of `ran` as Kafka has it: asserts it is there and equals the printed one.
    async fn assert_on_kafka(&self, ran: &Ran) {
        let records = consume_all(
            &self.broker.bootstrap(),
            TOPIC,
            self.runs,
            Duration::from_secs(20),
        )
        .await
        .expect("consume");
        let events: Vec<ResultEvent> = records
            .iter()
            .filter(|(key, _)| key.as_deref() == Some(b"certificate-checker".as_slice()))
            .map(|(_, payload)| serde_json::from_slice(payload).expect("result event"))
            .collect();
        let consumed = events
            .iter()
            .find(|e| e.run_id == ran.event.run_id)
            .unwrap_or_else(|| {
                panic!(
                    "run {} not on Kafka ({} events)",
                    ran.event.run_id,
                    events.len()
                )
            });
        assert_eq!(consumed, &ran.event, "Kafka carries the printed event");
    }

    /// A gauge of the dry-run group on the real Pushgateway (`None`: never pushed).
    async fn gauge(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.pgw
            .find_metric(
                &[("job", "certificate-checker"), ("mode", "dry-run")],
                metric,
                labels,
            )
            .await
            .expect("pushgateway query")
            .map(|s| s.value)
    }

    /// Asserts the digest for the endpoint's critical finding reached the bed's SMTP sink
    /// (`count` digests so far) and the event says it was delivered.
    async fn assert_digest_sent(&self, ran: &Ran, count: usize) {
        let mails = self
            .smtp
            .wait_for(count, Duration::from_secs(10))
            .await
            .expect("digest email");
        let last = mails.last().expect("a mail");
        assert!(
            last.subject()
                .unwrap_or_default()
                .starts_with("[critical] certificates: "),
            "{:?}",
            last.subject()
        );
        let body = last.text_body().unwrap_or_default();
        assert!(body.contains(&self.endpoint_url()), "{body}");
        let email: Vec<_> = ran
            .event
            .alerts_sent
            .iter()
            .filter(|a| a.channel == "email")
            .collect();
        assert_eq!(email.len(), 1, "{:?}", ran.event.alerts_sent);
        assert!(email[0].delivered, "{:?}", email[0]);
        assert_eq!(email[0].target, ONCALL);
    }

    /// Asserts a run in which only Vault failed: nothing from Vault, the endpoint still
    /// checked, the event on Kafka, the digest sent, the run's failure pushed.
    async fn assert_only_vault_failed(&self, ran: &Ran) {
        assert!(
            !ran.event
                .findings
                .iter()
                .any(|f| f.resource.starts_with("vault:")),
            "nothing read from Vault"
        );
        self.assert_endpoint_checked(ran);
        self.assert_on_kafka(ran).await;
        self.assert_digest_sent(ran, 1).await;
        assert_eq!(
            self.gauge("security_job_last_run_success", &[]).await,
            Some(0.0)
        );
    }

    /// Asserts the endpoint was checked and reported: its certificate, critical, 3 days left.
    fn assert_endpoint_checked(&self, ran: &Ran) {
        let f = ran
            .event
            .findings
            .iter()
            .find(|f| f.kind == "certificate_expiry" && f.resource == self.endpoint_url())
            .unwrap_or_else(|| panic!("no finding for the endpoint: {:#?}", ran.event.findings));
        assert_eq!(
            (f.severity, f.fields["days_remaining"].as_i64()),
            (Severity::Critical, Some(3))
        );
    }
}

/// A loopback port nothing listens on (bound, then closed): connections are refused.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn assert_code(ran: &Ran, code: i32) {
    assert_eq!(
        ran.out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        ran.stdout,
        ran.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_makes_the_run_partial_naming_the_server_and_kafka_and_the_pushgateway_still_get_the_run()
 {
    let mut bed = Bed::start().await;
    let port = dead_port();
    bed.write_config("", ("127.0.0.1".to_string(), port), "");
    let pgw = bed.pgw.url();
    let ran = bed.run(&pgw).await;

    // The digest is the run's one output to people: not sending it is a failure of the run.
    assert_code(&ran, 1);
    assert_eq!(ran.event.status.as_str(), "partial");
    let server = format!("smtp 127.0.0.1:{port}: ");
    assert_eq!(ran.event.errors.len(), 1, "{:?}", ran.event.errors);
    assert!(
        ran.event.errors[0].starts_with(&format!("digest not delivered by email to {ONCALL}: "))
            && ran.event.errors[0].contains(&server),
        "the error names the channel, the recipient and the SMTP server: {:?}",
        ran.event.errors
    );
    let email: Vec<_> = ran
        .event
        .alerts_sent
        .iter()
        .filter(|a| a.channel == "email")
        .collect();
    assert_eq!(email.len(), 1, "{:?}", ran.event.alerts_sent);
    assert!(!email[0].delivered);
    assert!(
        email[0].error.as_deref().unwrap_or("").contains(&server),
        "{:?}",
        email[0]
    );
    assert!(
        ran.stderr.contains("notification not delivered") && ran.stderr.contains(&server),
        "the log says so too:\n{}",
        ran.stderr
    );
    // Everything else happened: the finding, the event on Kafka, the metrics (a failed run).
    bed.assert_endpoint_checked(&ran);
    bed.assert_on_kafka(&ran).await;
    assert_eq!(
        bed.gauge("security_job_last_run_success", &[]).await,
        Some(0.0),
        "pushed, as a run that did not succeed"
    );
    assert_eq!(
        bed.gauge(
            "certificate_checker_certificates",
            &[("severity", "critical")]
        )
        .await,
        Some(1.0)
    );
    assert!(
        bed.smtp.messages().expect("messages").is_empty(),
        "nothing reached the bed's sink"
    );

    // SMTP back: the same run sends its digest and succeeds.
    bed.write_config("", bed.smtp_address(), "");
    let ran = bed.run(&pgw).await;
    assert_code(&ran, 0);
    bed.assert_digest_sent(&ran, 1).await;
    assert_eq!(
        bed.gauge("security_job_last_run_success", &[]).await,
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushgateway_503_is_exit_1_naming_the_group_with_the_event_on_kafka_and_the_digest_sent() {
    let mut bed = Bed::start().await;
    let proxy = FaultProxy::start(&bed.pgw.url(), 1).await.expect("proxy");
    proxy.set_rules(vec![Rule::new(Route::Any, Fault::Status(503), 1.0)]);
    bed.write_config("", bed.smtp_address(), "");
    let ran = bed.run(&proxy.endpoint()).await;

    // The results could not all be published: exit 1. The event was built (and published)
    // before the push, so it says success; the log says what failed.
    assert_code(&ran, 1);
    assert_eq!(ran.event.status.as_str(), "success");
    assert!(ran.event.errors.is_empty(), "{:?}", ran.event.errors);
    let group = format!(
        "pushgateway {}/metrics/job/certificate-checker/mode/dry-run: 503",
        proxy.endpoint()
    );
    assert!(
        ran.stderr.contains("metrics not pushed") && ran.stderr.contains(&group),
        "the log names the Pushgateway group and its answer ({group}):\n{}",
        ran.stderr
    );
    assert_eq!(
        proxy.stats().total_requests(),
        1,
        "one PUT of the run's group, refused; no success group after it"
    );
    assert_eq!(proxy.stats().total("status"), 1);
    bed.assert_endpoint_checked(&ran);
    bed.assert_on_kafka(&ran).await;
    bed.assert_digest_sent(&ran, 1).await;
    assert_eq!(
        bed.gauge("security_job_last_run_success", &[]).await,
        None,
        "nothing reached the real Pushgateway"
    );

    // The Pushgateway back: the next run pushes and exits 0.
    proxy.set_rules(vec![]);
    let ran = bed.run(&proxy.endpoint()).await;
    assert_code(&ran, 0);
    assert_eq!(
        bed.gauge("security_job_last_run_success", &[]).await,
        Some(1.0)
    );
    assert_eq!(
        bed.gauge(
            "certificate_checker_certificates",
            &[("severity", "critical")]
        )
        .await,
        Some(1.0)
    );
    bed.assert_on_kafka(&ran).await;
    bed.assert_digest_sent(&ran, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_503_or_429_through_the_proxy_is_partial_after_bounded_retries_and_endpoints_are_reported()
 {
    let mut bed = Bed::start().await;
    // The fake API server with one labelled TLS Secret (a warning: 20 days).
    let kube = FakeKube::start().await.expect("fakekube");
    kube.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}))
        .expect("namespace");
    let root = certs::ca("Cluster Root");
    let web = certs::leaf(&root, "web.example", days_from_now(20));
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    kube.insert(json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                       "metadata": {"name": "web-tls", "namespace": "apps", "labels": {"team": "platform"}},
                       "data": {"tls.crt": b64(web.pem())}}))
        .expect("secret");
    let proxy = FaultProxy::start(&kube.url(), 1).await.expect("proxy");
    let kubeconfig = bed.dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        kube.kubeconfig_yaml()
            .replace(&kube.url(), &proxy.endpoint()),
    )
    .expect("kubeconfig");
    // The default list_timeout (2 minutes): the retries end it, not the deadline.
    bed.write_config(
        "kubernetes:\n  kubeconfig: kubeconfig\n",
        bed.smtp_address(),
        "  kubernetes: {enabled: true, label_selector: team=platform}\n",
    );
    let pgw = bed.pgw.url();

    let mut digests = 0;
    for (fault, code) in [(Fault::Status(503), "503"), (Fault::Throttle, "429")] {
        proxy.set_rules(vec![Rule::new(Route::Any, fault.clone(), 1.0)]);
        let before = proxy.stats().total_requests();
        let ran = bed.run(&pgw).await;
        assert_code(&ran, 1);
        assert_eq!(ran.event.status.as_str(), "partial", "{fault:?}");
        assert_eq!(
            ran.event.errors.len(),
            1,
            "{fault:?}: {:?}",
            ran.event.errors
        );
        let error = &ran.event.errors[0];
        assert!(
            error.starts_with(&format!(
                "kubernetes: listing secrets: API answered {code} "
            )),
            "{fault:?}: the error names the source and the API's answer: {error}"
        );
        assert!(
            !error.contains("list_timeout"),
            "{fault:?}: given up by the bounded retries, not at the 2-minute deadline: {error}"
        );
        let calls = proxy.stats().total_requests() - before;
        assert_eq!(
            calls,
            u64::from(1 + common::clients::KUBE_RETRIES),
            "{fault:?}: the LIST and its bounded retries"
        );
        assert!(
            !ran.event
                .findings
                .iter()
                .any(|f| f.resource.starts_with("k8s:")),
            "{fault:?}: nothing read from the cluster"
        );
        bed.assert_endpoint_checked(&ran);
        bed.assert_on_kafka(&ran).await;
        digests += 1;
        bed.assert_digest_sent(&ran, digests).await;
        assert_eq!(
            bed.gauge("security_job_last_run_success", &[]).await,
            Some(0.0),
            "{fault:?}"
        );
    }

    // The API back, through the same proxy: the Secret is read and the run succeeds.
    proxy.set_rules(vec![]);
    let ran = bed.run(&pgw).await;
    assert_code(&ran, 0);
    let f = ran
        .event
        .findings
        .iter()
        .find(|f| f.kind == "certificate_expiry" && f.resource == "k8s:secret/apps/web-tls")
        .unwrap_or_else(|| panic!("{:#?}", ran.event.findings));
    assert_eq!(f.severity, Severity::Warning);
    bed.assert_endpoint_checked(&ran);
    bed.assert_on_kafka(&ran).await;
    bed.assert_digest_sent(&ran, digests + 1).await;
    kube.shutdown().await;
}

/// The Vault source of the config: the OpenBao PKI mount, the token from `vault-token`.
fn vault_job(address: &str) -> String {
    format!("  vault: {{address: \"{address}\", mounts: [pki], token_file: vault-token}}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_answering_403_to_a_token_without_the_policy_is_partial_and_never_shows_the_token() {
    let mut bed = Bed::start().await;
    let (bao, serial) = crate::vault::openbao_pki("vaulted.example", days_from_now(25)).await;
    // A real token of OpenBao's, with a policy that does not exist yet: Vault answers 403.
    let created = bao
        .request(
            reqwest::Method::POST,
            "auth/token/create",
            Some(json!({"policies": ["cert-reader"], "no_default_policy": true, "ttl": "1h"})),
        )
        .await
        .expect("token");
    let token = created["auth"]["client_token"]
        .as_str()
        .expect("client_token")
        .to_string();
    std::fs::write(bed.dir.path().join("vault-token"), format!("{token}\n")).expect("token");
    bed.write_config("", bed.smtp_address(), &vault_job(&bao.address()));
    let pgw = bed.pgw.url();
    let ran = bed.run(&pgw).await;

    assert_code(&ran, 1);
    assert_eq!(ran.event.status.as_str(), "partial");
    assert_eq!(
        ran.event.errors,
        [format!(
            // OpenBao's (and Vault's) own multi-error text, on one line.
            "vault LIST {}/v1/pki/certs: 403 Forbidden: 1 error occurred: * permission denied",
            bao.address()
        )],
        "the error names Vault, the call and Vault's reason"
    );
    // Checked without printing it: the token is nowhere in the output, the event or the log.
    assert!(
        !ran.stdout.contains(&token) && !ran.stderr.contains(&token),
        "the Vault token appears in the output"
    );
    bed.assert_only_vault_failed(&ran).await;

    // The policy the token names, written: the same token reads the mount.
    bao.request(
        reqwest::Method::PUT,
        "sys/policies/acl/cert-reader",
        Some(json!({"policy": "path \"pki/certs\" { capabilities = [\"list\"] }\npath \"pki/cert/*\" { capabilities = [\"read\"] }\n"})),
    )
    .await
    .expect("policy");
    let ran = bed.run(&pgw).await;
    assert_code(&ran, 0);
    let f = ran
        .event
        .findings
        .iter()
        .find(|f| f.kind == "certificate_expiry" && f.resource == format!("vault:pki/{serial}"))
        .unwrap_or_else(|| panic!("{:#?}", ran.event.findings));
    assert_eq!(f.fields["days_remaining"].as_i64(), Some(25));
    assert!(!ran.stdout.contains(&token) && !ran.stderr.contains(&token));
    bed.assert_on_kafka(&ran).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_sealed_is_partial_with_vaults_reason_and_the_other_sources_and_sinks_carry_on() {
    let mut bed = Bed::start().await;
    let (bao, _serial) = crate::vault::openbao_pki("vaulted.example", days_from_now(25)).await;
    std::fs::write(
        bed.dir.path().join("vault-token"),
        format!("{}\n", bao.token()),
    )
    .expect("token");
    // Really sealed, through its API.
    bao.request(reqwest::Method::PUT, "sys/seal", None)
        .await
        .expect("seal");
    let status = bao
        .request(reqwest::Method::GET, "sys/seal-status", None)
        .await
        .expect("seal status");
    assert_eq!(status["sealed"], Value::Bool(true), "{status}");
    bed.write_config("", bed.smtp_address(), &vault_job(&bao.address()));
    let pgw = bed.pgw.url();
    let ran = bed.run(&pgw).await;

    assert_code(&ran, 1);
    assert_eq!(ran.event.status.as_str(), "partial");
    assert_eq!(
        ran.event.errors,
        [format!(
            "vault LIST {}/v1/pki/certs: 503 Service Unavailable: Vault is sealed",
            bao.address()
        )],
        "the error names Vault, the call and that it is sealed"
    );
    bed.assert_only_vault_failed(&ran).await;
    assert_eq!(
        bed.gauge(
            "certificate_checker_certificates",
            &[("severity", "critical")]
        )
        .await,
        Some(1.0)
    );
}
