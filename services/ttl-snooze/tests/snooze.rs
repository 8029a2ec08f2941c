//! The snooze-link service over real HTTP: the in-process server on a loopback port, moto for
//! AWS, the fake Kubernetes API, and a real Kafka peer (tansu). Tokens are signed with the same
//! keyring the job's warning emails use.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use common::clock::FixedClock;
use common::config::JobConfig;
use inventory::aws::AwsScope;
use inventory::{KubeScope, KubeSource, Providers};
use jiff::{SignedDuration, Timestamp};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use testbed::fakekube::FakeKube;
use testbed::kafka::{Tansu, consume_all};
use testbed::moto::Moto;
use ttl_snooze::{AppState, Backends, Limits, serve_until};
use ttl_teardown::config::TtlConfig;
use ttl_teardown::snooze::token::{Claims, Keyring, LinkAction, extend_link};

#[path = "browser/mod.rs"]
mod browser;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const NOW: &str = "2026-11-23T12:00:00Z";
const TOPIC: &str = "resource-ttl-extended";
const OWNER: &str = "dev@example.com";
const PREFIX: &str = "ttl.governance.io/";
/// Where the per-resource apply Leases live (the default `job.lock.namespace`).
const LEASE_NS: &str = "governance-jobs";

/// The whitelist every server of these tests loads: an ARN rule, a tag rule, a namespace.
const WHITELIST: &str = "never_delete:\n  aws_resources:\n    - arn: \"arn:aws:ec2:*:*:instance/i-stoa-*\"\n      reason: stoa core fleet\n  tags:\n    - key: critical\n      value: \"true\"\n  kubernetes:\n    namespaces: [stoa-system]\n";

fn whitelist(extra_arn: Option<&str>) -> whitelist::Whitelist {
    let text = match extra_arn {
        Some(arn) => WHITELIST.replace(
            "  tags:\n",
            &format!("    - arn: \"{arn}\"\n      reason: pinned by the test\n  tags:\n"),
        ),
        None => WHITELIST.to_string(),
    };
    whitelist::Whitelist::from_yaml_str(&text, "whitelist.yaml").expect("whitelist")
}

/// A Kubernetes client for tests whose requests never take an apply Lease.
fn no_kube() -> kube::Client {
    let config = kube::Config::new("http://127.0.0.1:1".parse().expect("url"));
    kube::Client::try_from(config).expect("client")
}

fn now() -> Timestamp {
    NOW.parse().expect("timestamp")
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

fn keyring() -> Keyring {
    Keyring::from_keys(vec![("k1".into(), vec![7; 32])], "k1").expect("keys")
}

/// Valid dev tags: `ttl`, created `age_days` before NOW, with extensions already granted.
fn tags(ttl_days: i64, age_days: i64, count: u8, extended: u32) -> BTreeMap<String, String> {
    let mut t: BTreeMap<String, String> = [
        ("environment", "dev"),
        ("owner", OWNER),
        ("project", "checkout"),
        ("cost-center", "cc-1"),
        ("auto-teardown", "true"),
        ("data-class", "internal"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    t.insert("ttl".into(), format!("{ttl_days}d"));
    t.insert("created_at".into(), (now() - days(age_days)).to_string());
    if count > 0 {
        t.insert("ttl-extension-count".into(), count.to_string());
        t.insert("ttl-extended-days".into(), extended.to_string());
    }
    t
}

/// The deadline those tags give.
fn deadline_of(ttl_days: i64, age_days: i64, extended: u32) -> Timestamp {
    now() - days(age_days) + days(ttl_days) + days(i64::from(extended))
}

fn claims(resource: &str, d: u32, deadline: Timestamp, count: u8) -> Claims {
    Claims {
        resource: resource.to_string(),
        action: LinkAction::Extend(d),
        deadline,
        extension_count: count,
        owner: OWNER.to_string(),
        expires: deadline,
    }
}

fn config_yaml(brokers: &str) -> JobConfig<TtlConfig> {
    let text = format!(
        "kafka:\n  brokers: [\"{brokers}\"]\n  delivery_timeout: 5s\njob:\n  whitelist: whitelist.yaml\n  allowed_accounts: [\"{ACCOUNT}\"]\n"
    );
    common::config::parse_str(&text, "test-config.yaml").expect("config")
}

/// A running server and its address.
struct Server {
    base: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// What a server is built from besides the broker and its limits.
struct Parts {
    providers: Providers,
    lease_client: kube::Client,
    whitelist: whitelist::Whitelist,
}

async fn start_server(brokers: &str, parts: Parts, limits: Limits) -> Server {
    let config = config_yaml(brokers);
    let publisher = common::kafka::Publisher::from_config(&config.kafka).expect("publisher");
    let backends = Backends {
        providers: parts.providers,
        publisher,
        keyring: keyring(),
        whitelist: parts.whitelist,
        lease_client: parts.lease_client,
    };
    let state = AppState::with_limits(&config, backends, Arc::new(FixedClock(now())), limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        serve_until(listener, state, async {
            let _ = rx.await;
        })
        .await
        .expect("serve");
    });
    Server {
        base,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        stop: Some(tx),
    }
}

impl Server {
    fn link(&self, resource: &str, d: u32, token: &str) -> String {
        extend_link(&self.base, resource, d, token)
    }

    async fn get(&self, url: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let r = self.http.get(url).send().await.expect("get");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.expect("body"))
    }

    async fn post(&self, resource: &str, d: &str, token: &str, reason: &str) -> (u16, String) {
        let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        let body = format!(
            "days={}&token={}&reason={}",
            enc(d),
            enc(token),
            enc(reason)
        );
        let url = format!("{}/v1/resources/{}/extend", self.base, enc(resource));
        let r = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("post");
        (r.status().as_u16(), r.text().await.expect("body"))
    }

    async fn patch(&self, resource: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let url = format!(
            "{}/v1/resources/{}/ttl",
            self.base,
            utf8_percent_encode(resource, NON_ALPHANUMERIC)
        );
        let mut req = self.http.patch(url).json(&body);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let r = req.send().await.expect("patch");
        let status = r.status().as_u16();
        (status, r.json().await.expect("json body"))
    }
}

/// moto + tansu (+ the fake Kubernetes API), with clients to look behind the server's back.
struct Bed {
    _moto: Moto,
    broker: Tansu,
    kube: FakeKube,
    ec2: aws_sdk_ec2::Client,
    sdk: aws_config::SdkConfig,
}

impl Bed {
    async fn start() -> Bed {
        let (moto, broker, kube) = tokio::join!(Moto::start(), Tansu::start(), FakeKube::start());
        let (moto, broker, kube) = (
            moto.expect("moto"),
            broker.expect("tansu"),
            kube.expect("fake kube"),
        );
        broker.create_topic(TOPIC, 1).await.expect("topic");
        kube.insert(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NS}}),
        )
        .expect("lease namespace");
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(moto.endpoint())
            .credentials_provider(Credentials::new("testing", "testing", None, None, "static"))
            .load()
            .await;
        Bed {
            ec2: aws_sdk_ec2::Client::new(&sdk),
            sdk,
            _moto: moto,
            broker,
            kube,
        }
    }

    fn parts(&self, whitelist: whitelist::Whitelist) -> Parts {
        let aws = AwsScope::new(&self.sdk, ACCOUNT, REGION, true);
        let kube = KubeScope::new(
            self.kube.client().expect("kube client"),
            "test",
            &KubeSource::default(),
        );
        Parts {
            providers: Providers::from_scopes(vec![aws], Some(kube)),
            lease_client: self.kube.client().expect("kube client"),
            whitelist,
        }
    }

    async fn server(&self) -> Server {
        self.server_with(whitelist(None)).await
    }

    async fn server_with(&self, whitelist: whitelist::Whitelist) -> Server {
        start_server(
            &self.broker.bootstrap(),
            self.parts(whitelist),
            Limits::default(),
        )
        .await
    }

    /// Seeds an instance and returns its ARN.
    async fn instance(&self, tags: &BTreeMap<String, String>) -> String {
        let images = self.ec2.describe_images().send().await.expect("images");
        let ami = images.images()[0].image_id().expect("ami").to_string();
        let spec = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .build();
        let out = self
            .ec2
            .run_instances()
            .image_id(ami)
            .min_count(1)
            .max_count(1)
            .tag_specifications(spec)
            .send()
            .await
            .expect("run instance");
        let id = out.instances()[0].instance_id().expect("id");
        format!("arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{id}")
    }

    async fn instance_tags(&self, arn: &str) -> BTreeMap<String, String> {
        let id = arn.rsplit('/').next().expect("instance id");
        let out = self
            .ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .expect("describe");
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .flat_map(|i| i.tags())
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// The events on the topic (asks for one more than `at_least` to see there are no more).
    async fn events(&self, at_least: usize) -> Vec<Value> {
        let wait = if at_least == 0 { 2 } else { 5 };
        consume_all(
            &self.broker.bootstrap(),
            TOPIC,
            at_least + 1,
            Duration::from_secs(wait),
        )
        .await
        .expect("consume")
        .into_iter()
        .map(|(_, p)| serde_json::from_slice(&p).expect("json"))
        .collect()
    }
}

fn assert_security_headers(h: &reqwest::header::HeaderMap) {
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert_eq!(
        get("content-security-policy"),
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
    );
    assert_eq!(get("x-content-type-options"), "nosniff");
    assert_eq!(get("x-frame-options"), "DENY");
    assert_eq!(get("referrer-policy"), "no-referrer");
    assert_eq!(get("cache-control"), "no-store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_confirms_without_changing_post_extends_and_links_are_single_use() {
    let bed = Bed::start().await;
    let seeded = tags(7, 5, 0, 0);
    let arn = bed.instance(&seeded).await;
    let server = bed.server().await;
    let ring = keyring();
    let deadline = deadline_of(7, 5, 0);
    let token = ring.sign(&claims(&arn, 7, deadline, 0));

    // GET: the confirmation page, and nothing changes.
    let (status, headers, page) = server.get(&server.link(&arn, 7, &token)).await;
    assert_eq!(status, 200, "{page}");
    assert_security_headers(&headers);
    assert!(page.contains(&arn), "{page}");
    assert!(page.contains(&deadline.to_string()), "{page}");
    assert!(page.contains(&(deadline + days(7)).to_string()), "{page}");
    assert!(
        page.contains("<form method=\"post\" action=\"extend\">"),
        "{page}"
    );
    assert_eq!(
        bed.instance_tags(&arn).await,
        seeded,
        "GET changed the tags"
    );
    assert!(bed.events(0).await.is_empty(), "GET published an event");

    // POST: extends by 7 days and publishes the event.
    let (status, page) = server
        .post(&arn, "7", &token, "demo on friday <b>&\"")
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&(deadline + days(7)).to_string()), "{page}");
    let now_tags = bed.instance_tags(&arn).await;
    assert_eq!(now_tags["ttl-extension-count"], "1");
    assert_eq!(now_tags["ttl-extended-days"], "7");
    assert_eq!(now_tags["ttl-extended-by"], OWNER);
    assert_eq!(now_tags["ttl-extension-reason"], "demo on friday b");
    let events = bed.events(1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["event_type"], TOPIC);
    assert_eq!(e["job_name"], "ttl-snooze");
    assert_eq!(e["resource_id"], arn.as_str());
    assert_eq!(e["old_deadline"], deadline.to_string());
    assert_eq!(e["new_deadline"], (deadline + days(7)).to_string());
    assert_eq!(e["extended_by"], OWNER);
    assert_eq!(e["reason"], "demo on friday b");
    assert_eq!(e["extension_count"], 1);
    assert_eq!(e["request_id"], e["run_id"]);
    assert_eq!(e["dry_run"], false);

    // The same link is now refused, on GET and POST, and nothing more changes.
    let (status, _, _) = server.get(&server.link(&arn, 7, &token)).await;
    assert_eq!(status, 403);
    let (status, _) = server.post(&arn, "7", &token, "again").await;
    assert_eq!(status, 403);
    assert_eq!(bed.instance_tags(&arn).await, now_tags);

    // A fresh link for the new state: the second extension works.
    let deadline2 = deadline + days(7);
    let token2 = ring.sign(&claims(&arn, 14, deadline2, 1));
    let (status, page) = server.post(&arn, "14", &token2, "").await;
    assert_eq!(status, 200, "{page}");
    let t = bed.instance_tags(&arn).await;
    assert_eq!(
        (
            t["ttl-extension-count"].as_str(),
            t["ttl-extended-days"].as_str()
        ),
        ("2", "21")
    );

    // A third is refused (max 2 extensions), even with a link for the current state.
    let deadline3 = deadline2 + days(14);
    let token3 = ring.sign(&claims(&arn, 7, deadline3, 2));
    let (status, _, page) = server.get(&server.link(&arn, 7, &token3)).await;
    assert_eq!(status, 403);
    assert!(page.contains("maximum of 2 extensions"), "{page}");
    let (status, page) = server.post(&arn, "7", &token3, "").await;
    assert_eq!(status, 403);
    assert!(page.contains("maximum of 2 extensions"), "{page}");
    assert_eq!(bed.instance_tags(&arn).await, t);
    assert_eq!(bed.events(2).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifetime_cap_is_enforced() {
    let bed = Bed::start().await;
    // ttl 30d + 28 days granted = 58; +7 would be 65 > 60. One extension so far (< 2).
    let seeded = tags(30, 50, 1, 28);
    let arn = bed.instance(&seeded).await;
    let server = bed.server().await;
    let deadline = deadline_of(30, 50, 28);
    let token = keyring().sign(&claims(&arn, 7, deadline, 1));
    let (status, page) = server.post(&arn, "7", &token, "").await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("maximum lifetime of 60d"), "{page}");
    assert_eq!(bed.instance_tags(&arn).await, seeded);
    assert!(bed.events(0).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_ineligible_resources_get_one_opaque_403_and_change_nothing() {
    let bed = Bed::start().await;
    let seeded = tags(7, 5, 0, 0);
    let arn = bed.instance(&seeded).await;
    let mut prod_tags = tags(7, 5, 0, 0);
    prod_tags.insert("environment".into(), "prod".into());
    let prod = bed.instance(&prod_tags).await;
    // Protected by the whitelist the TTL job loads: by an ARN rule (pinned after the link was
    // "mailed") and by a tag rule. The service must refuse them exactly like the job spares them.
    let pinned = bed.instance(&seeded).await;
    let mut critical_tags = seeded.clone();
    critical_tags.insert("critical".into(), "true".into());
    let critical = bed.instance(&critical_tags).await;
    let server = bed.server_with(whitelist(Some(&pinned))).await;
    let ring = keyring();
    let deadline = deadline_of(7, 5, 0);
    let missing = format!("arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0000000000000dead");

    let good = ring.sign(&claims(&arn, 7, deadline, 0));
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = {
        use base64::Engine;
        // The claims of a +14 link for the same state, under the +7 link's MAC.
        let other = format!(
            "14~{}~0~{}~{OWNER}",
            deadline.as_second(),
            deadline.as_second()
        );
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(other);
        format!("{}.{}.{}.{}", parts[0], parts[1], body, parts[3])
    };
    let wrong_key = Keyring::from_keys(vec![("k1".into(), vec![9; 32])], "k1")
        .expect("keys")
        .sign(&claims(&arn, 7, deadline, 0));
    let mut expired_claims = claims(&arn, 7, deadline, 0);
    expired_claims.expires = now() - SignedDuration::from_hours(1);
    let expired = ring.sign(&expired_claims);
    let other_resource = ring.sign(&claims(&missing, 7, deadline, 0));
    let other_days = ring.sign(&claims(&arn, 14, deadline, 0));
    let stale = ring.sign(&claims(&arn, 7, deadline - days(1), 0));

    // (name, resource in the url, days, token)
    let cases: Vec<(&str, &str, u32, String)> = vec![
        ("forged", &arn, 7, "v1.k1.e30.AAAA".to_string()),
        ("garbage", &arn, 7, "garbage".to_string()),
        ("empty", &arn, 7, String::new()),
        ("tampered", &arn, 14, tampered),
        ("wrong key", &arn, 7, wrong_key),
        ("expired", &arn, 7, expired),
        ("other resource", &arn, 7, other_resource.clone()),
        ("other days", &arn, 7, other_days),
        ("stale deadline", &arn, 7, stale),
        (
            "bad token, missing resource",
            &missing,
            7,
            "v1.k1.e30.AAAA".into(),
        ),
        ("good token, missing resource", &missing, 7, other_resource),
        (
            "prod resource",
            &prod,
            7,
            ring.sign(&claims(&prod, 7, deadline, 0)),
        ),
        (
            "whitelisted by ARN",
            &pinned,
            7,
            ring.sign(&claims(&pinned, 7, deadline, 0)),
        ),
        (
            "whitelisted by tag",
            &critical,
            7,
            ring.sign(&claims(&critical, 7, deadline, 0)),
        ),
    ];
    let mut get_bodies = Vec::new();
    let mut post_bodies = Vec::new();
    for (name, resource, d, token) in &cases {
        let (status, headers, body) = server.get(&server.link(resource, *d, token)).await;
        assert_eq!(status, 403, "GET {name}: {body}");
        assert_security_headers(&headers);
        get_bodies.push(body);
        let (status, body) = server.post(resource, &d.to_string(), token, "x").await;
        assert_eq!(status, 403, "POST {name}: {body}");
        post_bodies.push(body);
    }
    for (i, (name, ..)) in cases.iter().enumerate() {
        assert_eq!(get_bodies[i], get_bodies[0], "GET body differs for {name}");
        assert_eq!(
            post_bodies[i], post_bodies[0],
            "POST body differs for {name}"
        );
    }
    assert!(!get_bodies[0].contains(&arn), "the 403 names the resource");

    // Days outside {7, 14} are a 400 before anything else.
    let (status, _, _) = server.get(&server.link(&arn, 30, &good)).await;
    assert_eq!(status, 400);
    // No redirects anywhere.
    let (status, _, _) = server.get(&format!("{}/", server.base)).await;
    assert_eq!(status, 404);

    assert_eq!(bed.instance_tags(&arn).await, seeded);
    assert_eq!(bed.instance_tags(&prod).await, prod_tags);
    assert_eq!(bed.instance_tags(&pinned).await, seeded);
    assert_eq!(bed.instance_tags(&critical).await, critical_tags);
    assert!(
        bed.events(0).await.is_empty(),
        "a refusal published an event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_outside_the_allowlist_is_refused() {
    let bed = Bed::start().await;
    let seeded = tags(7, 5, 0, 0);
    let arn = bed.instance(&seeded).await;
    // The same service, configured for another account only.
    let text = format!(
        "kafka:\n  brokers: [\"{}\"]\n  delivery_timeout: 5s\njob:\n  whitelist: w.yaml\n  allowed_accounts: [\"999999999999\"]\n",
        bed.broker.bootstrap()
    );
    let config: JobConfig<TtlConfig> = common::config::parse_str(&text, "c.yaml").expect("config");
    let parts = bed.parts(whitelist(None));
    let backends = Backends {
        providers: parts.providers,
        publisher: common::kafka::Publisher::from_config(&config.kafka).expect("publisher"),
        keyring: keyring(),
        whitelist: parts.whitelist,
        lease_client: parts.lease_client,
    };
    let state = AppState::new(&config, backends, Arc::new(FixedClock(now())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_until(listener, state, async {
        let _ = rx.await;
    }));
    let server = Server {
        base,
        http: reqwest::Client::new(),
        stop: Some(tx),
    };
    let token = keyring().sign(&claims(&arn, 7, deadline_of(7, 5, 0), 0));
    let (status, _, page) = server.get(&server.link(&arn, 7, &token)).await;
    assert_eq!(status, 403, "{page}");
    let (status, _) = server.post(&arn, "7", &token, "").await;
    assert_eq!(status, 403);
    assert_eq!(bed.instance_tags(&arn).await, seeded);
    assert!(bed.events(0).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_racing_on_one_link_extend_exactly_once() {
    let bed = Bed::start().await;
    let seeded = tags(7, 5, 0, 0);
    let arn = bed.instance(&seeded).await;
    // Two instances of the service, as the chart runs them: same broker, cloud and cluster.
    let (a, b) = tokio::join!(bed.server(), bed.server());
    let token = keyring().sign(&claims(&arn, 7, deadline_of(7, 5, 0), 0));
    let clicks = (0..25).flat_map(|_| [&a, &b]).map(|server| {
        let (arn, token) = (arn.clone(), token.clone());
        async move { server.post(&arn, "7", &token, "race").await.0 }
    });
    let statuses = futures::future::join_all(clicks).await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(ok, 1, "exactly one click applies: {statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 403),
        "the others find the link spent: {statuses:?}"
    );
    let t = bed.instance_tags(&arn).await;
    assert_eq!(t["ttl-extension-count"], "1");
    assert_eq!(t["ttl-extended-days"], "7");
    assert_eq!(bed.events(1).await.len(), 1, "exactly one event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_extends_a_kubernetes_namespace() {
    let bed = Bed::start().await;
    let annotations: serde_json::Map<String, Value> = tags(7, 5, 0, 0)
        .into_iter()
        .map(|(k, v)| (format!("{PREFIX}{k}"), Value::String(v)))
        .collect();
    bed.kube
        .insert(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "preview-1", "annotations": annotations}}))
        .expect("namespace");
    let server = bed.server().await;
    let id = "k8s:preview-1";
    let deadline = deadline_of(7, 5, 0);
    let token = keyring().sign(&claims(id, 14, deadline, 0));

    // Without the bearer token, or with a bad body: refused, nothing written.
    let (status, body) = server
        .patch(id, None, json!({"extend_days": 14, "reason": "x"}))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"],
        "This link is invalid, expired or already used."
    );
    let (status, _) = server
        .patch(id, Some(&token), json!({"extend_days": 10}))
        .await;
    assert_eq!(status, 400);

    let (status, body) = server
        .patch(
            id,
            Some(&token),
            json!({"extend_days": 14, "reason": "load test, see JIRA-12"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["resource_id"], id);
    assert_eq!(body["old_deadline"], deadline.to_string());
    assert_eq!(body["new_deadline"], (deadline + days(14)).to_string());
    assert_eq!(body["extension_count"], 1);
    assert_eq!(body["extended_days"], 14);

    let ns = bed
        .kube
        .get("namespaces", None, "preview-1")
        .expect("namespace still there");
    let a = &ns["metadata"]["annotations"];
    assert_eq!(a[format!("{PREFIX}ttl-extension-count")], "1");
    assert_eq!(a[format!("{PREFIX}ttl-extended-days")], "14");
    assert_eq!(a[format!("{PREFIX}ttl-extended-by")], OWNER);
    assert_eq!(
        a[format!("{PREFIX}ttl-extension-reason")],
        "load test see JIRA-12"
    );
    let events = bed.events(1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["resource_id"], id);
    assert_eq!(events[0]["new_deadline"], (deadline + days(14)).to_string());

    // Replaying the same request is refused.
    let (status, _) = server
        .patch(id, Some(&token), json!({"extend_days": 14}))
        .await;
    assert_eq!(status, 403);

    // One resource per click, read by name: the namespace list always carries a field selector
    // for that name, never a listing of the cluster.
    let reads: Vec<_> = bed
        .kube
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/api/v1/namespaces")
        .collect();
    assert!(!reads.is_empty(), "the namespace was read");
    assert!(
        reads.iter().all(
            |r| r.query.contains("fieldSelector=metadata.name%3Dpreview-1")
                || r.query.contains("fieldSelector=metadata.name=preview-1")
        ),
        "{reads:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_publish_answers_503_and_puts_the_annotations_back() {
    // Kafka is unreachable (nothing listens on the broker port): the snooze must not stand.
    let kube = FakeKube::start().await.expect("fake kube");
    let annotations: serde_json::Map<String, Value> = tags(7, 5, 0, 0)
        .into_iter()
        .map(|(k, v)| (format!("{PREFIX}{k}"), Value::String(v)))
        .collect();
    kube.insert(json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "preview-2", "annotations": annotations}}))
        .expect("namespace");
    kube.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NS}}))
        .expect("lease namespace");
    let providers = Providers::from_scopes(
        vec![],
        Some(KubeScope::new(
            kube.client().expect("client"),
            "test",
            &KubeSource::default(),
        )),
    );
    let dead = format!("127.0.0.1:{}", testbed::process::free_port().expect("port"));
    let text = format!(
        "kafka:\n  brokers: [\"{dead}\"]\n  delivery_timeout: 1s\njob:\n  whitelist: w.yaml\n"
    );
    let config: JobConfig<TtlConfig> = common::config::parse_str(&text, "c.yaml").expect("config");
    let publisher = common::kafka::Publisher::from_config(&config.kafka).expect("publisher");
    let backends = Backends {
        providers,
        publisher,
        keyring: keyring(),
        whitelist: whitelist(None),
        lease_client: kube.client().expect("client"),
    };
    let state = AppState::new(&config, backends, Arc::new(FixedClock(now())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_until(listener, state, async {
        let _ = rx.await;
    }));
    let server = Server {
        base,
        http: reqwest::Client::new(),
        stop: Some(tx),
    };
    let id = "k8s:preview-2";
    let token = keyring().sign(&claims(id, 7, deadline_of(7, 5, 0), 0));
    let (status, page) = server.post(id, "7", &token, "").await;
    assert_eq!(status, 503, "{page}");
    let ns = kube
        .get("namespaces", None, "preview-2")
        .expect("namespace");
    // Every annotation the attempt wrote is gone again: they were absent before it.
    let a = ns["metadata"]["annotations"]
        .as_object()
        .expect("annotations");
    for tag in [
        "ttl-extension-count",
        "ttl-extended-days",
        "ttl-extended-by",
        "ttl-extension-reason",
    ] {
        assert!(
            !a.contains_key(&format!("{PREFIX}{tag}")),
            "{tag} left behind after the failed publish: {a:?}"
        );
    }
    assert_eq!(a.len(), tags(7, 5, 0, 0).len(), "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_headers_and_probes() {
    // No resources are needed: the limits apply before any lookup. The publisher points at a
    // port nothing listens on; building it does not contact the broker.
    let dead = format!("127.0.0.1:{}", testbed::process::free_port().expect("port"));
    let server = start_server(
        &dead,
        Parts {
            providers: Providers::from_scopes(vec![], None),
            lease_client: no_kube(),
            whitelist: whitelist(None),
        },
        Limits {
            rate_per_minute: 5,
            body_bytes: 1024,
            trusted_proxies: Vec::new(),
        },
    )
    .await;

    let (status, headers, body) = server.get(&format!("{}/healthz", server.base)).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert_security_headers(&headers);
    let (status, _, _) = server.get(&format!("{}/readyz", server.base)).await;
    assert_eq!(status, 200);

    // Body over the limit: 413 (form and JSON).
    let (status, _) = server.post("k8s:x", "7", "t", &"a".repeat(4096)).await;
    assert_eq!(status, 413);
    let (status, _) = server
        .patch(
            "k8s:x",
            Some("t"),
            json!({"extend_days": 7, "reason": "a".repeat(4096)}),
        )
        .await;
    assert_eq!(status, 413);

    // Rate limit: 5 per minute per client IP on /v1/ (2 used above), then 429.
    let link = server.link("k8s:x", 7, "t");
    for _ in 0..3 {
        let (status, _, _) = server.get(&link).await;
        assert_eq!(status, 403);
    }
    let (status, headers, _) = server.get(&link).await;
    assert_eq!(status, 429);
    assert_security_headers(&headers);
    // Probes are not rate limited.
    let (status, _, _) = server.get(&format!("{}/healthz", server.base)).await;
    assert_eq!(status, 200);

    let (status, _, metrics) = server.get(&format!("{}/metrics", server.base)).await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("ttl_snooze_requests_total{route=\"get-extend\",outcome=\"forbidden\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ttl_snooze_requests_total{route=\"v1\",outcome=\"rate-limited\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ttl_snooze_extensions_applied_total 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
    let dead = format!("127.0.0.1:{}", testbed::process::free_port().expect("port"));
    let limited = |trusted: &str| Limits {
        rate_per_minute: 2,
        body_bytes: 1024,
        trusted_proxies: vec![trusted.parse().expect("cidr")],
    };
    let status_as = |server: &Server, forwarded: &'static str| {
        let request = server
            .http
            .get(server.link("k8s:x", 7, "t"))
            .header("x-forwarded-for", forwarded);
        async move { request.send().await.expect("get").status().as_u16() }
    };

    // The test client connects from 127.0.0.1: here it is the trusted ingress.
    let server = start_server(
        &dead,
        Parts {
            providers: Providers::from_scopes(vec![], None),
            lease_client: no_kube(),
            whitelist: whitelist(None),
        },
        limited("127.0.0.0/8"),
    )
    .await;
    for _ in 0..2 {
        assert_eq!(status_as(&server, "203.0.113.1").await, 403);
    }
    assert_eq!(status_as(&server, "203.0.113.1").await, 429);
    // Another client behind the same ingress is not affected…
    assert_eq!(status_as(&server, "203.0.113.2").await, 403);
    // …and the first cannot escape by prepending an address of its own choosing.
    assert_eq!(status_as(&server, "198.51.100.1, 203.0.113.1").await, 429);

    // Not a trusted proxy: the header changes nothing, every request shares the peer's bucket.
    let server = start_server(
        &dead,
        Parts {
            providers: Providers::from_scopes(vec![], None),
            lease_client: no_kube(),
            whitelist: whitelist(None),
        },
        limited("10.0.0.0/8"),
    )
    .await;
    assert_eq!(status_as(&server, "203.0.113.1").await, 403);
    assert_eq!(status_as(&server, "203.0.113.2").await, 403);
    assert_eq!(status_as(&server, "203.0.113.3").await, 429);
}

#[tokio::test]
async fn the_binary_refuses_to_start_without_kafka_brokers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).expect("mkdir");
    std::fs::write(keys.join("k1"), [b'x'; 32]).expect("key");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "job:\n  whitelist: whitelist.yaml\n  snooze:\n    base_url: https://snooze.example.com\n    keys_dir: keys\n    active_key: k1\n    listen: 127.0.0.1:0\n",
    )
    .expect("config");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ttl-snooze"));
    cmd.arg("--config").arg(&config);
    for (k, _) in std::env::vars() {
        if k.starts_with("GOV_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().await.expect("run ttl-snooze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("kafka.brokers"), "{stderr}");
    assert!(!stderr.contains("xxxxxxxx"), "the key leaked: {stderr}");

    // Without job.snooze: refused too, saying so.
    std::fs::write(&config, "job:\n  whitelist: whitelist.yaml\n").expect("config");
    let out = cmd.output().await.expect("run ttl-snooze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("job.snooze"), "{stderr}");
}

/// Loopback load, bounded: `GOV_SNOOZE_LOAD_CLIENTS` clients (default 200), each with its own
/// address behind the trusted ingress, requesting for `GOV_SNOOZE_LOAD_SECS` (default 3; the
/// record figure in README.md is 30) as fast as answers come — one in ten a valid link's
/// confirmation page (a lookup in moto), the rest a bad link (403). No answer may be a 5xx or
/// a dropped connection, and no client gets more than its rate limit answered. Then the same
/// valid link POSTed 50 times at once: exactly one extension, one event. The figures (p50/p99,
/// requests per second) are printed, not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_load_no_5xx_each_clients_limit_holds_and_one_link_extends_once() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (clients, secs) = (
        env("GOV_SNOOZE_LOAD_CLIENTS", 200),
        env("GOV_SNOOZE_LOAD_SECS", 3),
    );
    let bed = Bed::start().await;
    let arn = bed.instance(&tags(7, 5, 0, 0)).await;
    let limit: u32 = 10;
    let server = start_server(
        &bed.broker.bootstrap(),
        bed.parts(whitelist(None)),
        Limits {
            rate_per_minute: limit,
            body_bytes: 16 * 1024,
            trusted_proxies: vec!["127.0.0.0/8".parse().expect("cidr")],
        },
    )
    .await;
    let token = keyring().sign(&claims(&arn, 7, deadline_of(7, 5, 0), 0));
    let good = server.link(&arn, 7, &token);
    let bad = server.link(&arn, 7, "v2.k1.AAAA.BBBB");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients as usize)
        .build()
        .expect("client");
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (http, good, bad) = (http.clone(), good.clone(), bad.clone());
            tokio::spawn(async move {
                let ip = format!("10.0.{}.{}", c / 250, c % 250 + 1);
                let mut out: Vec<(bool, u16, Duration)> = Vec::new();
                let mut i = 0u64;
                while std::time::Instant::now() < until {
                    let valid = i.is_multiple_of(10);
                    let url = if valid { &good } else { &bad };
                    let t = std::time::Instant::now();
                    let status = match http.get(url).header("x-forwarded-for", &ip).send().await {
                        Ok(r) => r.status().as_u16(),
                        Err(_) => 0,
                    };
                    out.push((valid, status, t.elapsed()));
                    i += 1;
                }
                out
            })
        })
        .collect();
    let mut all: Vec<(bool, u16, Duration)> = Vec::new();
    let mut most_answered = 0;
    for t in tasks {
        let mine = t.await.expect("client");
        let answered = mine.iter().filter(|(_, s, _)| *s != 429).count();
        most_answered = most_answered.max(answered);
        all.extend(mine);
    }
    let failed: Vec<_> = all
        .iter()
        .filter(|(_, s, _)| *s == 0 || *s >= 500)
        .collect();
    assert!(
        failed.is_empty(),
        "{} 5xx or dropped: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    let wrong: Vec<_> = all
        .iter()
        .filter(|(valid, s, _)| *s != 429 && *s != if *valid { 200 } else { 403 })
        .collect();
    assert!(wrong.is_empty(), "{:?}", &wrong[..wrong.len().min(5)]);
    // The bucket holds `limit` and refills `limit` per minute.
    let allowed = limit as usize + (limit as usize * secs as usize).div_ceil(60) + 1;
    assert!(
        most_answered <= allowed,
        "a client got {most_answered} answers past a limit of {limit}/min"
    );
    let limited = all.iter().filter(|(_, s, _)| *s == 429).count();
    assert!(limited > 0, "the clients outran their limit");
    let mut latencies: Vec<Duration> = all.iter().map(|(_, _, d)| *d).collect();
    latencies.sort_unstable();
    let q = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    let mut valid: Vec<Duration> = all
        .iter()
        .filter(|(v, s, _)| *v && *s == 200)
        .map(|(_, _, d)| *d)
        .collect();
    valid.sort_unstable();
    let vq = |p: f64| {
        valid
            .get(((valid.len().max(1) - 1) as f64 * p) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };

    // One link, 50 clicks at once (each from its own address, so no limit applies).
    let clicks = (0..50).map(|c| {
        let (http, url, token) = (
            http.clone(),
            format!(
                "{}/v1/resources/{}/extend",
                server.base,
                utf8_percent_encode(&arn, NON_ALPHANUMERIC)
            ),
            token.clone(),
        );
        async move {
            let body = format!(
                "days=7&token={}&reason=load",
                utf8_percent_encode(&token, NON_ALPHANUMERIC)
            );
            http.post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-forwarded-for", format!("10.9.0.{}", c + 1))
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    });
    let statuses = futures::future::join_all(clicks).await;
    let applied = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(applied, 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 403),
        "{statuses:?}"
    );
    assert_eq!(bed.instance_tags(&arn).await["ttl-extension-count"], "1");
    assert_eq!(bed.events(1).await.len(), 1, "exactly one event");

    println!(
        "snooze under load: {clients} clients for {secs} s, {} requests ({:.0}/s): p50 {:.1} ms, \
         p99 {:.1} ms (valid links, looked up in moto: p50 {:.1} ms, p99 {:.1} ms); 0 5xx, \
         {limited} rate-limited, at most {most_answered} answered per client (limit {limit}/min); \
         50 concurrent POSTs of one link: {applied} extension, 1 event",
        all.len(),
        all.len() as f64 / secs as f64,
        q(0.5),
        q(0.99),
        vq(0.5),
        vq(0.99),
    );
}
