//! Owner notices from `--execute` runs: one email per owner, signed snooze links, stages recorded
//! only after the SMTP server accepted the mail, no repeat for the same deadline.

use std::time::Duration;

use testbed::smtp::SmtpSink;
use ttl_teardown::snooze::token::{Keyring, LinkAction};

use crate::execute::{Bed, tags};
use crate::text;

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef-test-key";

fn write_keys(bed: &Bed) {
    let dir = bed.dir.path().join("snooze-keys");
    std::fs::create_dir_all(&dir).expect("keys dir");
    std::fs::write(dir.join("k1"), KEY).expect("key");
}

fn owned(hours: i64, warned: bool, owner: &str) -> std::collections::BTreeMap<String, String> {
    let mut t = tags(hours, warned);
    t.insert("owner".into(), owner.into());
    t
}

/// Pulls every `https://snooze.test/…` link out of a text body.
fn links(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|w| w.starts_with("https://snooze.test/"))
        .map(str::to_string)
        .collect()
}

/// The resource id of a link: its path segment after `/v1/resources/`, decoded.
fn link_resource(link: &str) -> String {
    let path = link.split_once('?').expect("query").0;
    let segment = path
        .split("/v1/resources/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("resource segment");
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .expect("utf-8")
        .into_owned()
}

fn query_param(link: &str, name: &str) -> String {
    let query = link.split_once('?').expect("query").1;
    let value = query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .expect("param");
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .expect("utf-8")
        .into_owned()
}

#[tokio::test]
async fn one_email_per_owner_with_signed_links_and_no_repeat() {
    let bed = Bed::start().await;
    write_keys(&bed);
    let sink = SmtpSink::start().await.expect("smtp sink");
    let a = [
        bed.instance(&owned(30, false, "alice@example.com"), &[])
            .await,
        bed.instance(&owned(20, false, "alice@example.com"), &[])
            .await,
        bed.instance(&owned(-3, false, "alice@example.com"), &[])
            .await, // expired, never warned: final warning
    ];
    let b = [
        bed.instance(&owned(40, false, "bob@example.com"), &[])
            .await,
        bed.instance(&owned(44, false, "bob@example.com"), &[])
            .await,
    ];
    let shared = format!(
        "notify:\n  smtp:\n    host: {}\n    port: {}\n    tls: none\n    from: ttl@example.com\n",
        sink.host(),
        sink.port()
    );
    let snooze = "  snooze:\n    base_url: https://snooze.test\n    keys_dir: snooze-keys\n    active_key: k1\n";
    let config = bed.config_with(snooze, &shared);

    let out = bed.run(&config, true).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let mails = sink
        .wait_for(2, Duration::from_secs(10))
        .await
        .expect("mails");
    assert_eq!(mails.len(), 2, "one email per owner");
    let mail_to = |who: &str| {
        mails
            .iter()
            .find(|m| m.to() == [who])
            .unwrap_or_else(|| panic!("no mail to {who}"))
    };

    let alice = mail_to("alice@example.com");
    // Two of the three are in their final 24 hours (one of them first warned late): the
    // subject says so rather than calling all three final, and gives the true earliest
    // deletion: a final warning buys the notice period (24 h), so the one due in 20 h goes in
    // 24 h, like the late one.
    assert_eq!(
        alice.subject().unwrap_or_default(),
        "[ttl-teardown] 3 of your resources will be deleted in 24–30 h (final warning for 2)"
    );
    let text_body = alice.text_body().expect("text part");
    let html_body = alice.html_body().expect("html part");
    for id in &a {
        assert!(
            text_body.contains(id.as_str()) && html_body.contains(id.as_str()),
            "{id} listed in both parts"
        );
    }
    assert!(!text_body.contains(&b[0]), "only alice's resources");
    assert!(text_body.contains("2 of 2 left"), "{text_body}");
    assert!(
        text_body.contains("a month") || text_body.contains("unknown ("),
        "estimated cost shown: {text_body}"
    );
    assert!(
        !text_body.contains("$0.00"),
        "unknown is not free: {text_body}"
    );
    let alice_links = links(&text_body);
    assert_eq!(
        alice_links.len(),
        9,
        "+7, +14 and Delete now for each resource: {alice_links:?}"
    );

    // The links verify with the signing key and carry the resource's current state.
    let keyring = Keyring::from_keys(vec![("k1".into(), KEY.to_vec())], "k1").expect("keyring");
    let now: jiff::Timestamp = "2026-11-23T12:00:00Z".parse().expect("timestamp");
    let mut valid_until = Vec::new();
    for link in &alice_links {
        let resource = link_resource(link);
        let claims = keyring
            .verify(&query_param(link, "token"), &resource, now)
            .unwrap_or_else(|e| panic!("every link is valid now, {link}: {e:?}"));
        assert_eq!(claims.owner, "alice@example.com");
        assert_eq!(claims.extension_count, 0);
        assert!(
            a.iter().any(|id| claims.resource.ends_with(id.as_str())),
            "{claims:?}"
        );
        match claims.action {
            LinkAction::Extend(days) => {
                assert!(link.contains("/extend?"), "{link}");
                assert_eq!(query_param(link, "days"), days.to_string());
            }
            LinkAction::Release => assert!(link.contains("/release?token="), "{link}"),
        }
        assert!(link.len() < 250, "short links: {} characters", link.len());
        valid_until.push((claims.deadline, claims.expires));
    }
    // A link is valid until its resource can be deleted: the deadline, or, for the resource that
    // was already 3 hours past its deadline when first warned, the 24-hour notice period.
    valid_until.sort();
    valid_until.dedup();
    let hours = |h: i64| now + jiff::SignedDuration::from_hours(h);
    assert_eq!(
        valid_until,
        [
            (hours(-3), hours(24)),
            (hours(20), hours(24)),
            (hours(30), hours(30))
        ]
    );

    let bob = mail_to("bob@example.com");
    assert!(
        bob.subject()
            .unwrap_or_default()
            .contains("2 of your resources"),
        "{:?}",
        bob.subject()
    );
    assert_eq!(links(&bob.text_body().expect("text")).len(), 6);

    // Stages are recorded, so the next run sends nothing new.
    for id in a.iter().chain(&b) {
        assert!(
            bed.instance_tag(id, "ttl-notified-stage").await.is_some(),
            "{id} stage recorded"
        );
    }
    let out = bed.run(&config, true).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.messages().expect("maildir").len(),
        2,
        "no repeat for the same deadlines"
    );
}

#[tokio::test]
async fn an_smtp_failure_leaves_the_stage_unrecorded_for_the_next_run() {
    let bed = Bed::start().await;
    write_keys(&bed);
    let carol = bed
        .instance(&owned(30, false, "carol@example.com"), &[])
        .await;
    let dead_port = testbed::process::free_port().expect("port");
    let shared = format!(
        "notify:\n  smtp:\n    host: 127.0.0.1\n    port: {dead_port}\n    tls: none\n    from: ttl@example.com\n    timeout: 2s\n"
    );
    let snooze = "  snooze:\n    base_url: https://snooze.test\n    keys_dir: snooze-keys\n    active_key: k1\n";
    let config = bed.config_with(snooze, &shared);

    let out = bed.run(&config, true).await;
    let (stdout, _) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed notice makes the run partial: {stdout}"
    );
    assert!(stdout.contains("retried next run"), "{stdout}");
    assert_eq!(
        bed.instance_tag(&carol, "ttl-notified-stage").await,
        None,
        "not recorded without an accepted email"
    );

    // The SMTP server is back (same port through the environment override): the next run sends.
    let sink = SmtpSink::start().await.expect("smtp sink");
    let mut env = bed.env();
    env.push(("GOV_SMTP_PORT", sink.port().to_string()));
    let args = [
        "--config",
        config.to_str().expect("utf-8"),
        "--now",
        "2026-11-23T12:00:00Z",
        "--output",
        "json",
        "--execute",
    ];
    let out = crate::run(bed.dir.path(), &args, &env).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let mails = sink
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("mail");
    assert_eq!(mails[0].to(), ["carol@example.com"]);
    assert!(
        bed.instance_tag(&carol, "ttl-notified-stage")
            .await
            .is_some()
    );
}

#[tokio::test]
async fn a_release_from_delete_now_is_deleted_at_the_next_run_without_a_new_warning() {
    use aws_sdk_ec2::types::InstanceStateName;
    let bed = Bed::start().await;
    let now: jiff::Timestamp = "2026-11-23T12:00:00Z".parse().expect("timestamp");
    let released_at = (now - jiff::SignedDuration::from_hours(1)).to_string();
    // Due in 30 h, warned 48 h ahead, then released by its owner an hour ago.
    let mut released = tags(30, false);
    released.insert("ttl-released-at".into(), released_at.clone());
    released.insert("ttl-released-by".into(), "dev@example.com".into());
    let released = bed.instance(&released, &[]).await;
    // Released too, but production: the release never overrides eligibility.
    let mut prod = tags(30, false);
    prod.insert("environment".into(), "prod".into());
    prod.insert("ttl-released-at".into(), released_at);
    let prod = bed.instance(&prod, &[]).await;
    let untouched = bed.instance(&tags(30, false), &[]).await;
    let config = bed.config("");

    let out = bed.run(&config, true).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        matches!(
            bed.instance_state(&released).await,
            Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown) | None
        ),
        "released and eligible: deleted at the next run: {stdout}"
    );
    assert!(
        stdout.contains("owner's consent"),
        "the reason says why no notice period: {stdout}"
    );
    assert_eq!(
        bed.instance_state(&prod).await,
        Some(InstanceStateName::Running)
    );
    assert_eq!(
        bed.instance_state(&untouched).await,
        Some(InstanceStateName::Running)
    );
}
