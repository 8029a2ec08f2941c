//! Each kind of target against its real server (or our stand-in where none can be had):
//! PostgreSQL with one user and with alternating users, Keycloak's rotated-secret window, an RDS
//! master password through moto, and a Secret owned by an ExternalSecret.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use testbed::fakekube::Rollout;
use testbed::keycloak::RotationPolicy;
use testbed::moto::Moto;

use crate::bed::{Bed, Needs, finding, unique};
use crate::text;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_db_password_rotated_logs_in_and_the_old_one_dies_single_or_lives_alternating() {
    let bed = Bed::start(Needs {
        postgres: true,
        ..Needs::default()
    })
    .await;
    let pg = bed.postgres.as_ref().expect("postgres");
    let (old_app, old_clone, old_solo) =
        (unique("app-old"), unique("clone-old"), unique("solo-old"));
    pg.execute(
        "postgres",
        &format!(
            "CREATE ROLE app LOGIN PASSWORD '{old_app}'; CREATE ROLE app_clone LOGIN PASSWORD '{old_clone}'; \
             CREATE ROLE solo LOGIN PASSWORD '{old_solo}'"
        ),
    )
    .await
    .expect("roles");
    bed.seed(
        "db/orders",
        json!({"username": "app", "password": old_app}),
        100,
        json!({}),
    )
    .await;
    bed.seed(
        "db/solo",
        json!({"username": "solo", "password": old_solo}),
        95,
        json!({}),
    )
    .await;
    bed.kube_secret(
        "orders-db",
        &[("username", "app"), ("password", &old_app)],
        None,
    );
    bed.workload(
        "Deployment",
        "orders",
        "orders-db",
        true,
        Rollout::Completes { after_reads: 1 },
    );
    let config = bed.config(
        "  secrets:\n\
         \x20   - name: orders-db\n      type: database-password\n      owner: orders@example.com\n      vault: secret/db/orders\n\
         \x20     target: {kind: postgres, server: orders, roles: [app, app_clone]}\n\
         \x20     kubernetes: [{namespace: shop, name: orders-db}]\n\
         \x20   - name: solo-db\n      type: database-password\n      owner: solo@example.com\n      vault: secret/db/solo\n\
         \x20     target: {kind: postgres, server: orders, role: solo}\n",
    );
    let (plan, dry) = bed.run_ok(&config, false, &[], 0).await;
    assert_eq!(
        finding(&plan, "solo-db")["disruptive"],
        true,
        "the plan flags a single user"
    );
    let (event, out) = bed.run_ok(&config, true, &[], 0).await;
    for name in ["orders-db", "solo-db"] {
        assert_eq!(finding(&event, name)["result"], "rotated", "{event:#}");
    }

    // Alternating: the idle user got the new password; consumers moved to it; the previous
    // user still works with its password until the next cycle.
    let (alt, _) = bed.data("db/orders").await;
    assert_eq!(alt["username"], "app_clone");
    let new_alt = alt["password"].as_str().expect("password").to_string();
    assert!(
        pg.can_login("app_clone", &new_alt, "postgres").await,
        "the new one logs in"
    );
    assert!(
        pg.can_login("app", &old_app, "postgres").await,
        "the old one still does"
    );
    assert!(!pg.can_login("app_clone", &old_clone, "postgres").await);
    assert_eq!(bed.kube_secret_data("orders-db")["username"], "app_clone");
    assert_eq!(bed.kube_secret_data("orders-db")["password"], new_alt);
    assert_eq!(finding(&event, "orders-db")["disruptive"], false);

    // Single: the new one logs in, the old one does not.
    let (solo, _) = bed.data("db/solo").await;
    assert_eq!(solo["username"], "solo");
    let new_solo = solo["password"].as_str().expect("password").to_string();
    assert!(pg.can_login("solo", &new_solo, "postgres").await);
    assert!(!pg.can_login("solo", &old_solo, "postgres").await);
    assert_eq!(finding(&event, "solo-db")["disruptive"], true);

    // The server stored a SCRAM verifier: the plaintext never travelled as SQL.
    let su = pg.superuser("postgres").await.expect("superuser");
    let row = su
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'solo'",
            &[],
        )
        .await
        .expect("pg_authid");
    let stored: String = row.get(0);
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");

    // The next cycle moves back to the first user.
    let later = bed
        .run(&config, true, &["--now", "2027-03-15T00:00:00Z"])
        .await;
    assert_eq!(later.status.code(), Some(0), "{}", text(&later).1);
    let (alt2, _) = bed.data("db/orders").await;
    assert_eq!(alt2["username"], "app");
    let new_alt2 = alt2["password"].as_str().expect("password").to_string();
    assert!(pg.can_login("app", &new_alt2, "postgres").await);
    assert!(!pg.can_login("app", &old_app, "postgres").await);
    assert!(
        pg.can_login("app_clone", &new_alt, "postgres").await,
        "the previous cycle's user lives on"
    );

    let mut values = bed.all_values("db/orders").await;
    values.extend(bed.all_values("db/solo").await);
    values.push(old_clone);
    values.push(pg.superuser_password().to_string());
    bed.leak_scan(&[&dry, &out, &later], &values).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keycloak_client_secret_is_regenerated_tested_and_its_rotated_secret_retired() {
    let bed = Bed::start(Needs {
        keycloak: true,
        ..Needs::default()
    })
    .await;
    let kc = bed.keycloak.as_ref().expect("keycloak");
    kc.add_realm(
        "apps",
        Some(RotationPolicy {
            expiration_period: Duration::from_secs(90 * 86_400),
            rotated_expiration_period: Duration::from_secs(30 * 86_400),
        }),
    );
    let old = unique("orders-client-old");
    kc.add_client("apps", "orders", &old);
    bed.seed(
        "oauth/orders",
        json!({"client_id": "orders", "client_secret": old}),
        91,
        json!({}),
    )
    .await;
    let config = bed.config(
        "  secrets:\n    - {name: orders-oauth, type: oauth-client-secret, owner: orders@example.com,\n        vault: secret/oauth/orders, target: {kind: keycloak, server: sso, client_id: orders}}\n",
    );
    let (event, out) = bed.run_ok(&config, true, &[], 0).await;
    let f = finding(&event, "orders-oauth");
    assert_eq!(f["result"], "rotated", "{f:#}");
    assert_eq!(
        f["disruptive"], false,
        "the realm keeps the old secret for a window"
    );
    let (data, version) = bed.data("oauth/orders").await;
    assert_eq!(version, 2);
    let new = data["client_secret"].as_str().expect("secret").to_string();
    assert_eq!(
        kc.issued_secrets(),
        [new.as_str()],
        "Keycloak's own value, regenerated once"
    );
    assert_eq!(kc.current_secret("apps", "orders"), Some(new.clone()));
    assert_eq!(
        kc.attributes("apps", "orders")["client.secret.rotated"],
        old,
        "old still valid"
    );
    assert_eq!(bed.custom("oauth/orders").await["retire_ref"], "rotated");

    // After the grace period: the rotated secret is deleted, the old one stops working.
    let (retired, out2) = bed
        .run_ok(&config, true, &["--now", "2026-12-09T00:00:00Z"], 0)
        .await;
    assert_eq!(finding(&retired, "orders-oauth")["result"], "retired");
    assert!(
        !kc.attributes("apps", "orders")
            .contains_key("client.secret.rotated")
    );
    let deleted = kc
        .requests()
        .iter()
        .filter(|(m, p)| m == "DELETE" && p.ends_with("/client-secret/rotated"))
        .count();
    assert_eq!(deleted, 1);

    let mut values = bed.all_values("oauth/orders").await;
    values.push(kc.admin_credentials().1.to_string());
    bed.leak_scan(&[&out, &out2], &values).await;
}

/// A recording proxy in front of moto: forwards every request and keeps the form bodies, so a
/// test can assert what the job *sent* (moto accepts any master password and never shows it).
async fn recording_proxy(moto: &str) -> (String, Arc<Mutex<Vec<String>>>) {
    let bodies = Arc::new(Mutex::new(Vec::<String>::new()));
    let kept = bodies.clone();
    let upstream = moto.to_string();
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(
        move |method: axum::http::Method,
              uri: axum::http::Uri,
              headers: axum::http::HeaderMap,
              body: axum::body::Bytes| {
            let (http, upstream, kept) = (http.clone(), upstream.clone(), kept.clone());
            async move {
                kept.lock()
                    .expect("lock")
                    .push(String::from_utf8_lossy(&body).into_owned());
                let mut req = http
                    .request(method, format!("{upstream}{uri}"))
                    .body(body.to_vec());
                for (k, v) in &headers {
                    if k != "host" && k != "content-length" {
                        req = req.header(k, v);
                    }
                }
                let resp = req.send().await.expect("moto");
                let status = resp.status();
                let ct = resp.headers().get("content-type").cloned();
                let bytes = resp.bytes().await.expect("body");
                let mut r = axum::response::Response::new(axum::body::Body::from(bytes));
                *r.status_mut() = status;
                if let Some(ct) = ct {
                    r.headers_mut().insert("content-type", ct);
                }
                r
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), bodies)
}

fn form_value(body: &str, key: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rds_master_password_is_modified_with_the_new_value() {
    let bed = Bed::start(Needs::default()).await;
    let moto = Moto::start().await.expect("moto");
    let old = unique("rds-old");
    moto.query(
        "rds",
        &[
            ("Action", "CreateDBInstance"),
            ("Version", "2014-10-31"),
            ("DBInstanceIdentifier", "orders-db"),
            ("Engine", "postgres"),
            ("DBInstanceClass", "db.t3.micro"),
            ("MasterUsername", "master"),
            ("MasterUserPassword", &old),
            ("AllocatedStorage", "20"),
        ],
    )
    .await
    .expect("create instance");
    let (proxy, bodies) = recording_proxy(&moto.endpoint()).await;
    bed.seed(
        "db/rds",
        json!({"username": "master", "password": old}),
        91,
        json!({}),
    )
    .await;
    let job = "  secrets:\n    - {name: orders-rds, type: database-password, owner: dba@example.com, vault: secret/db/rds,\n        target: {kind: rds, instance: orders-db}}\n";
    let config = bed.config(job);
    let text_cfg = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        format!("aws:\n  regions: [us-east-1]\n  endpoint_url: \"{proxy}\"\n{text_cfg}"),
    )
    .expect("config");
    let mut env = bed.env();
    env.extend(
        moto.env()
            .into_iter()
            .filter(|(k, _)| *k != "AWS_ENDPOINT_URL"),
    );
    let out = crate::run(bed.dir.path(), &Bed::args(&config, true, &[]), &env).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let event: Value = serde_json::from_str(&stdout).expect("event");
    let f = finding(&event, "orders-rds");
    assert_eq!(f["result"], "rotated", "{f:#}");
    assert_eq!(f["disruptive"], true);
    let (data, _) = bed.data("db/rds").await;
    let new = data["password"].as_str().expect("password").to_string();
    assert!(
        new.len() <= 41 && !new.contains(['/', '"', '@', ' ']),
        "RDS's rules"
    );
    let sent = bodies.lock().expect("lock").clone();
    let modify: Vec<&String> = sent
        .iter()
        .filter(|b| form_value(b, "Action").as_deref() == Some("ModifyDBInstance"))
        .collect();
    assert_eq!(modify.len(), 1, "one ModifyDBInstance");
    assert_eq!(
        form_value(modify[0], "MasterUserPassword"),
        Some(new.clone()),
        "the call carried the new value"
    );
    assert_eq!(
        form_value(modify[0], "ApplyImmediately").as_deref(),
        Some("true")
    );
    assert_eq!(
        form_value(modify[0], "DBInstanceIdentifier").as_deref(),
        Some("orders-db")
    );
    assert!(
        sent.iter()
            .any(|b| form_value(b, "Action").as_deref() == Some("DescribeDBInstances")),
        "it polled until the change was no longer pending"
    );
    // What the chart's iam/secret-rotation.json grants (checked against it by `iam`'s test) is
    // exactly what went over the wire: every request here is a query-protocol RDS call.
    let called: std::collections::BTreeSet<String> = sent
        .iter()
        .filter_map(|b| form_value(b, "Action"))
        .map(|a| format!("rds:{a}"))
        .collect();
    assert_eq!(
        called,
        secret_rotation::targets::rds::IAM_ACTIONS
            .iter()
            .map(|a| a.to_string())
            .collect(),
        "the RDS calls are exactly the declared IAM actions"
    );
    bed.leak_scan(&[&out], &bed.all_values("db/rds").await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_owned_by_an_external_secret_is_synced_not_written() {
    let bed = Arc::new(
        Bed::start(Needs {
            issuer: true,
            ..Needs::default()
        })
        .await,
    );
    let old = unique("eso-old");
    bed.issuer
        .as_ref()
        .expect("issuer")
        .add_key("billing", "k0", &old);
    bed.seed(
        "apps/billing",
        json!({"api_key": old, "key_id": "k0"}),
        31,
        json!({}),
    )
    .await;
    bed.kube_secret(
        "billing-key",
        &[("api_key", &old), ("key_id", "k0")],
        Some("billing-key"),
    );
    bed.kube
        .insert(
            json!({"apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret",
            "metadata": {"name": "billing-key", "namespace": "shop"},
            "spec": {"secretStoreRef": {"name": "vault", "kind": "ClusterSecretStore"},
                     "target": {"name": "billing-key"},
                     "dataFrom": [{"extract": {"key": "apps/billing"}}]}}),
        )
        .expect("external secret");
    bed.workload(
        "Deployment",
        "billing",
        "billing-key",
        false,
        Rollout::Completes { after_reads: 0 },
    );

    // The External Secrets operator, played by the test: a new force-sync annotation makes it
    // copy Vault's current data into the Secret (written directly, not through the API).
    let operator = {
        let bed = bed.clone();
        tokio::spawn(async move {
            let mut seen: Option<String> = None;
            loop {
                let es = bed
                    .kube
                    .get("externalsecrets", Some("shop"), "billing-key")
                    .expect("es");
                let sync = es["metadata"]["annotations"]["force-sync"]
                    .as_str()
                    .map(String::from);
                if sync.is_some() && sync != seen {
                    let (data, _) = bed.data("apps/billing").await;
                    let pairs: Vec<(String, String)> = data
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect();
                    let refs: Vec<(&str, &str)> = pairs
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    bed.kube_secret("billing-key", &refs, Some("billing-key"));
                    seen = sync;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let config = bed.config(
        "  secrets:\n    - {name: billing, type: api-key, owner: billing@example.com, vault: secret/apps/billing,\n        target: {kind: api-key-issuer, server: partners, principal: billing},\n        kubernetes: [{namespace: shop, name: billing-key}]}\n",
    );
    let (event, out) = bed.run_ok(&config, true, &[], 0).await;
    operator.abort();
    assert_eq!(finding(&event, "billing")["result"], "rotated", "{event:#}");
    let (data, _) = bed.data("apps/billing").await;
    assert_eq!(
        bed.kube_secret_data("billing-key")["api_key"],
        data["api_key"].as_str().expect("key")
    );
    let requests = bed.kube.requests();
    assert!(
        !requests
            .iter()
            .any(|r| r.is_write() && r.path.ends_with("/secrets/billing-key")),
        "the job never writes a Secret External Secrets owns"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.method == "PATCH" && r.path.ends_with("/externalsecrets/billing-key")),
        "it annotated the ExternalSecret"
    );
    assert_eq!(
        bed.template_annotations("deployments", "billing")["secret-rotation.governance.io/version"]
            .as_str()
            .map(|m| m.ends_with("/2")),
        Some(true),
        "and restarted its consumer once the Secret had the new value"
    );
    bed.leak_scan(&[&out], &bed.all_values("apps/billing").await)
        .await;
}
