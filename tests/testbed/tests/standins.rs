//! The Keycloak and API-key issuer stand-ins over real HTTP: the shapes a secret rotation relies
//! on must be those the real services document.

use std::time::Duration;

use serde_json::{Value, json};
use testbed::apikeys::ApiKeyIssuer;
use testbed::keycloak::{Keycloak, RotationPolicy};

/// An `application/x-www-form-urlencoded` body (reqwest's `form` needs a feature we leave off).
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc = |s: &str| {
                percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            };
            format!("{}={}", enc(k), enc(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn token(
    http: &reqwest::Client,
    kc: &Keycloak,
    realm: &str,
    id: &str,
    secret: &str,
) -> (u16, Value) {
    let r = http
        .post(format!(
            "{}/realms/{realm}/protocol/openid-connect/token",
            kc.url()
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ]))
        .send()
        .await
        .expect("token request");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn admin_token(http: &reqwest::Client, kc: &Keycloak) -> String {
    let (id, secret) = kc.admin_credentials();
    let (code, body) = token(http, kc, Keycloak::ADMIN_REALM, id, secret).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    body["access_token"]
        .as_str()
        .expect("access token")
        .to_string()
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    bearer: &str,
) -> (u16, Value) {
    let r = http
        .request(method, url)
        .bearer_auth(bearer)
        .send()
        .await
        .expect("request");
    let code = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn keycloak_finds_clients_by_client_id_behind_an_admin_token() {
    let kc = Keycloak::start().await.expect("keycloak");
    kc.add_realm("apps", None);
    let id = kc.add_client("apps", "payments", "s3cret-payments-initial-000000000");
    kc.add_client("apps", "payments-ui", "s3cret-ui-initial-00000000000000000");
    let http = reqwest::Client::new();
    let base = format!("{}/admin/realms/apps", kc.url());

    let (code, _) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/clients?clientId=payments"),
        "nope",
    )
    .await;
    assert_eq!(code, 401, "no admin token, no admin API");
    // A token of an ordinary client is not an admin token either.
    let (code, body) = token(
        &http,
        &kc,
        "apps",
        "payments",
        "s3cret-payments-initial-000000000",
    )
    .await;
    assert_eq!(code, 200);
    let (code, _) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/clients"),
        body["access_token"].as_str().expect("token"),
    )
    .await;
    assert_eq!(code, 401);

    let admin = admin_token(&http, &kc).await;
    let (code, found) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/clients?clientId=payments"),
        &admin,
    )
    .await;
    assert_eq!(code, 200);
    let found = found.as_array().expect("an array");
    assert_eq!(
        found.len(),
        1,
        "exact match, not a prefix search: {found:?}"
    );
    assert_eq!(found[0]["id"], id);
    assert_eq!(found[0]["clientId"], "payments");
    assert_eq!(found[0]["clientAuthenticatorType"], "client-secret");
    assert!(found[0]["attributes"]["client.secret.creation.time"].is_string());
    let (_, none) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/clients?clientId=ghost"),
        &admin,
    )
    .await;
    assert_eq!(none, json!([]));
    let (code, body) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/clients/not-an-id/client-secret"),
        &admin,
    )
    .await;
    assert_eq!(
        (code, body),
        (404, json!({"error": "Could not find client"}))
    );
    let (code, cred) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/clients/{id}/client-secret"),
        &admin,
    )
    .await;
    assert_eq!(
        (code, cred),
        (
            200,
            json!({"type": "secret", "value": "s3cret-payments-initial-000000000"})
        )
    );
}

#[tokio::test]
async fn keycloak_without_a_rotation_policy_kills_the_old_secret_at_once() {
    let kc = Keycloak::start().await.expect("keycloak");
    kc.add_realm("apps", None);
    let id = kc.add_client("apps", "batch", "old-secret-0000000000000000000000");
    let http = reqwest::Client::new();
    let admin = admin_token(&http, &kc).await;
    let base = format!("{}/admin/realms/apps/clients/{id}", kc.url());

    let (code, cred) = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/client-secret"),
        &admin,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(cred["type"], "secret");
    let fresh = cred["value"].as_str().expect("value").to_string();
    assert_eq!(fresh.len(), 32);
    assert_eq!(kc.issued_secrets(), [fresh.as_str()]);

    let (code, body) = token(
        &http,
        &kc,
        "apps",
        "batch",
        "old-secret-0000000000000000000000",
    )
    .await;
    assert_eq!(code, 401);
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(
        body["error_description"],
        "Invalid client or Invalid client credentials"
    );
    assert_eq!(token(&http, &kc, "apps", "batch", &fresh).await.0, 200);
    assert_eq!(token(&http, &kc, "apps", "nobody", &fresh).await.0, 401);

    let (code, body) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/client-secret/rotated"),
        &admin,
    )
    .await;
    assert_eq!(
        (code, body),
        (
            404,
            json!({"error": "Client does not have a rotated secret"})
        )
    );
    let (code, _) = call(
        &http,
        reqwest::Method::DELETE,
        format!("{base}/client-secret/rotated"),
        &admin,
    )
    .await;
    assert_eq!(code, 204, "deleting nothing is still 204");
}

#[tokio::test]
async fn keycloak_keeps_the_rotated_secret_valid_only_within_its_window() {
    let kc = Keycloak::start().await.expect("keycloak");
    kc.add_realm(
        "apps",
        Some(RotationPolicy {
            expiration_period: Duration::from_secs(90 * 86400),
            rotated_expiration_period: Duration::from_secs(3600),
        }),
    );
    let id = kc.add_client("apps", "orders", "orders-old-00000000000000000000000");
    let http = reqwest::Client::new();
    let admin = admin_token(&http, &kc).await;
    let base = format!("{}/admin/realms/apps/clients/{id}", kc.url());

    let (_, cred) = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/client-secret"),
        &admin,
    )
    .await;
    let fresh = cred["value"].as_str().expect("value").to_string();
    assert_eq!(token(&http, &kc, "apps", "orders", &fresh).await.0, 200);
    assert_eq!(
        token(
            &http,
            &kc,
            "apps",
            "orders",
            "orders-old-00000000000000000000000"
        )
        .await
        .0,
        200,
        "old and new together"
    );

    let attrs = kc.attributes("apps", "orders");
    assert_eq!(
        attrs["client.secret.rotated"],
        "orders-old-00000000000000000000000"
    );
    let created: i64 = attrs["client.secret.rotated.creation.time"]
        .parse()
        .expect("seconds");
    let expires: i64 = attrs["client.secret.rotated.expiration.time"]
        .parse()
        .expect("seconds");
    assert_eq!(expires - created, 3600);
    let secret_expires: i64 = attrs["client.secret.expiration.time"]
        .parse()
        .expect("seconds");
    assert_eq!(
        secret_expires
            - attrs["client.secret.creation.time"]
                .parse::<i64>()
                .expect("seconds"),
        90 * 86400
    );
    let (code, rotated) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/client-secret/rotated"),
        &admin,
    )
    .await;
    assert_eq!(
        (code, rotated["value"].as_str()),
        (200, Some("orders-old-00000000000000000000000"))
    );

    // Past the window the old secret no longer authenticates (Keycloak still reports it).
    kc.advance(Duration::from_secs(3601));
    let (code, body) = token(
        &http,
        &kc,
        "apps",
        "orders",
        "orders-old-00000000000000000000000",
    )
    .await;
    assert_eq!(
        (code, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert_eq!(token(&http, &kc, "apps", "orders", &fresh).await.0, 200);

    let (code, _) = call(
        &http,
        reqwest::Method::DELETE,
        format!("{base}/client-secret/rotated"),
        &admin,
    )
    .await;
    assert_eq!(code, 204);
    let (code, _) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/client-secret/rotated"),
        &admin,
    )
    .await;
    assert_eq!(code, 404);
    assert!(
        !kc.attributes("apps", "orders")
            .contains_key("client.secret.rotated")
    );
}

#[tokio::test]
async fn keycloak_sets_a_given_secret_by_put_and_accepts_basic_auth() {
    let kc = Keycloak::start().await.expect("keycloak");
    kc.add_realm("apps", None);
    let id = kc.add_client("apps", "web", "web-old-000000000000000000000000000");
    let http = reqwest::Client::new();
    let admin = admin_token(&http, &kc).await;
    let r = http
        .put(format!("{}/admin/realms/apps/clients/{id}", kc.url()))
        .bearer_auth(&admin)
        .json(&json!({"id": id, "clientId": "web", "secret": "web-restored-00000000000000000000"}))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(
        kc.current_secret("apps", "web").as_deref(),
        Some("web-restored-00000000000000000000")
    );
    let r = http
        .post(format!(
            "{}/realms/apps/protocol/openid-connect/token",
            kc.url()
        ))
        .basic_auth("web", Some("web-restored-00000000000000000000"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("grant_type", "client_credentials")]))
        .send()
        .await
        .expect("token");
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .post(format!(
            "{}/realms/apps/protocol/openid-connect/token",
            kc.url()
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("grant_type", "password")]))
        .send()
        .await
        .expect("token");
    assert_eq!(r.status().as_u16(), 400);
}

#[tokio::test]
async fn the_api_key_issuer_keeps_at_most_two_active_keys() {
    let issuer = ApiKeyIssuer::start().await.expect("issuer");
    issuer.add_key("partner-a", "k1", "first-key-000000000000000000000000");
    let http = reqwest::Client::new();
    let keys = format!("{}/v1/principals/partner-a/keys", issuer.url());
    let put = |id: &str, value: &str, bearer: &str| {
        http.put(format!("{keys}/{id}"))
            .bearer_auth(bearer)
            .json(&json!({"key": value}))
            .send()
    };
    let admin = issuer.admin_token().to_string();
    assert_eq!(
        put("k2", "second-key-00000000000000000000000", "wrong")
            .await
            .expect("put")
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        put("k2", "short", &admin)
            .await
            .expect("put")
            .status()
            .as_u16(),
        422
    );
    assert_eq!(
        put("k2", "has/slash-000000000000000000000000", &admin)
            .await
            .expect("put")
            .status()
            .as_u16(),
        422
    );
    assert_eq!(
        put("k2", "second-key-00000000000000000000000", &admin)
            .await
            .expect("put")
            .status()
            .as_u16(),
        201
    );
    assert_eq!(
        put("k2", "second-key-00000000000000000000000", &admin)
            .await
            .expect("put")
            .status()
            .as_u16(),
        200,
        "idempotent"
    );
    assert_eq!(
        put("k2", "another-value-000000000000000000000", &admin)
            .await
            .expect("put")
            .status()
            .as_u16(),
        409
    );
    let third = put("k3", "third-key-000000000000000000000000", &admin)
        .await
        .expect("put");
    assert_eq!(third.status().as_u16(), 409);
    assert_eq!(
        third.json::<Value>().await.expect("json")["error"],
        "principal already has 2 active keys"
    );

    // Both active keys authenticate; the listing never shows a value.
    for (value, id) in [
        ("first-key-000000000000000000000000", "k1"),
        ("second-key-00000000000000000000000", "k2"),
    ] {
        let r = http
            .get(format!("{}/v1/whoami", issuer.url()))
            .header("x-api-key", value)
            .send()
            .await
            .expect("whoami");
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            r.json::<Value>().await.expect("json"),
            json!({"principal": "partner-a", "key_id": id})
        );
    }
    let listed = http
        .get(&keys)
        .bearer_auth(&admin)
        .send()
        .await
        .expect("list")
        .text()
        .await
        .expect("text");
    assert!(
        listed.contains("\"k1\"") && listed.contains("\"k2\""),
        "{listed}"
    );
    assert!(!listed.contains("first-key"), "{listed}");

    let r = http
        .delete(format!("{keys}/k1"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 204);
    let r = http
        .delete(format!("{keys}/k1"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 404);
    let r = http
        .get(format!("{}/v1/whoami", issuer.url()))
        .header("x-api-key", "first-key-000000000000000000000000")
        .send()
        .await
        .expect("whoami");
    assert_eq!(r.status().as_u16(), 401);
    assert!(!issuer.accepts("partner-a", "first-key-000000000000000000000000"));
    assert_eq!(issuer.active_key_ids("partner-a"), ["k2"]);
    assert_eq!(
        put("k3", "third-key-000000000000000000000000", &admin)
            .await
            .expect("put")
            .status()
            .as_u16(),
        201,
        "room again"
    );
}
