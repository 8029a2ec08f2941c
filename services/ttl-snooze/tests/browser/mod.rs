//! The warning email and the pages in a real browser: headless Chromium (Debian `chromium`)
//! driven by npm `playwright-core` (both installed by `.ci/setup`) through `check.js`.
//!
//! Six instances of one owner on moto (due in 20–40 h, one late, one unpriced, one without
//! snoozes left, a long and a non-Latin `Name`), their cards built by the TTL job's own
//! `notices::card` against a running ttl-snooze; every email variant and every page checked at
//! 1000 px and 390 px (no horizontal overflow, buttons visible without scrolling, text contrast
//! in light and forced-dark rendering); then **Snooze +7 → Confirm** and **Delete now →
//! Confirm** clicked in the browser, and the tags and the Kafka events checked behind the
//! server's back. Screenshots go to `$GOV_ARTIFACTS/notices` (default
//! `/var/cache/governance-jobs/artifacts/notices`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use common::clock::FixedClock;
use inventory::aws::AwsScope;
use inventory::{Providers, Resource};
use serde_json::{Value, json};
use testbed::kafka::consume_all;
use ttl_snooze::{AppState, Backends, serve_until};
use ttl_teardown::config::TtlConfig;
use ttl_teardown::notices::email::{Card, OwnerEmail, TEXT_COLUMNS, columns};
use ttl_teardown::notices::{card, footer};
use ttl_teardown::plan::{self, Outcome, Rules};

use crate::{ACCOUNT, Bed, OWNER, REGION, TOPIC, days, keyring, now, tags, whitelist};

const RELEASE_TOPIC: &str = "resource-release-requested";

fn artifacts() -> PathBuf {
    let base = std::env::var("GOV_ARTIFACTS").unwrap_or_else(|_| {
        let cache =
            std::env::var("GOV_CACHE").unwrap_or_else(|_| "/var/cache/governance-jobs".into());
        format!("{cache}/artifacts")
    });
    PathBuf::from(base).join("notices")
}

fn playwright() -> PathBuf {
    let cache = std::env::var("GOV_CACHE").unwrap_or_else(|_| "/var/cache/governance-jobs".into());
    let p = PathBuf::from(cache).join("node/node_modules/playwright-core");
    assert!(
        p.join("package.json").is_file(),
        "npm playwright-core is not installed at {} (bash .ci/setup installs it)",
        p.display()
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").is_file(),
        "/usr/bin/chromium is missing (bash .ci/setup installs Debian chromium)"
    );
    p
}

fn config(brokers: &str) -> common::config::JobConfig<TtlConfig> {
    let text = format!(
        "kafka:\n  brokers: [\"{brokers}\"]\n  delivery_timeout: 5s\njob:\n  whitelist: whitelist.yaml\n  allowed_accounts: [\"{ACCOUNT}\"]\n  pricing:\n    instance_hourly: {{t3.large: 0.0832}}\n  snooze:\n    base_url: https://snooze.example.com\n    keys_dir: keys\n    active_key: k1\n    contact: \"#platform-help or platform@example.com\"\n    owner_names: {{\"{OWNER}\": Dana}}\n"
    );
    common::config::parse_str(&text, "browser-config.yaml").expect("config")
}

/// Seeds an instance of `instance_type` with `tags` and returns its ARN.
async fn instance(bed: &Bed, instance_type: &str, tags: &BTreeMap<String, String>) -> String {
    let images = bed.ec2.describe_images().send().await.expect("images");
    let ami = images.images()[0].image_id().expect("ami").to_string();
    let spec = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build();
    let out = bed
        .ec2
        .run_instances()
        .image_id(ami)
        .instance_type(InstanceType::from(instance_type))
        .min_count(1)
        .max_count(1)
        .tag_specifications(spec)
        .send()
        .await
        .expect("run instance");
    let id = out.instances()[0].instance_id().expect("id");
    format!("arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{id}")
}

/// Dev tags due `hours` from now (negative: past), named `name`.
fn due_in(hours: i64, name: &str, count: u8, extended: u32) -> BTreeMap<String, String> {
    // ttl 7d + extended days, created so that the deadline is `hours` from now.
    let lifetime_h = 24 * (7 + i64::from(extended));
    let mut t = tags(7, 0, count, extended);
    t.insert(
        "created_at".into(),
        (now() - jiff::SignedDuration::from_hours(lifetime_h - hours)).to_string(),
    );
    t.insert("Name".into(), name.into());
    t
}

struct Seeded {
    arn: String,
    name: &'static str,
}

fn text_problems(text: &str, links: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let is_link =
            (line.starts_with("https://") || line.starts_with("http://")) && !line.contains(' ');
        if !is_link && columns(line) > TEXT_COLUMNS {
            problems.push(format!(
                "line {} is {} columns: {line:?}",
                i + 1,
                columns(line)
            ));
        }
    }
    for l in links {
        if !text.lines().any(|line| line == l) {
            problems.push(format!("link missing from the text part: {l}"));
        }
    }
    problems
}

fn html_links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(|s| s.replace("&amp;", "&"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_and_pages_fit_phones_and_the_buttons_work_in_chromium() {
    let playwright = playwright();
    let out_dir = artifacts();
    std::fs::create_dir_all(&out_dir).expect("artifacts dir");
    let bed = Bed::start().await;
    bed.broker
        .create_topic(RELEASE_TOPIC, 1)
        .await
        .expect("release topic");

    let long =
        "alice-integration-test-database-replica-for-the-checkout-team-with-a-very-long-name-0001";
    let specs: [(&str, i64, &str, u8, u32); 6] = [
        ("t3.large", 20, "alice-build-runner", 0, 0),
        ("t3.large", 22, "alice-last-chance", 2, 14),
        ("t3.large", -3, "alice-late-warning", 0, 0),
        ("t3.large", 30, long, 0, 0),
        ("t3.nano", 36, "alice-unpriced-box", 0, 0),
        ("t3.large", 40, "構築ランナー・テスト環境（東京）", 0, 0),
    ];
    let mut seeded = Vec::new();
    for (ty, hours, name, count, extended) in specs {
        let arn = instance(&bed, ty, &due_in(hours, name, count, extended)).await;
        seeded.push(Seeded { arn, name });
    }

    // The server, with the job's config (pricing, contact, owner names).
    let config = config(&bed.broker.bootstrap());
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
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_until(listener, state, async {
        let _ = stopped.await;
    }));

    // The cards, exactly as the job builds them for this run.
    let job = &config.job;
    let providers =
        Providers::from_scopes(vec![AwsScope::new(&bed.sdk, ACCOUNT, REGION, true)], None);
    let wl = whitelist(None);
    let verdict = |r: &Resource| ttl_teardown::job::whitelist_verdict(&wl, r, now());
    let no_failure = |_: &Resource| None;
    let rules = Rules {
        policy: &job.policy,
        allowed_accounts: &job.allowed_accounts,
        caps: &job.caps,
        pricing: &job.pricing,
        whitelist: &verdict,
        listing_failure: &no_failure,
        now: now(),
    };
    let ring = keyring();
    let mut cards: BTreeMap<&str, Card> = BTreeMap::new();
    for s in &seeded {
        let r = providers
            .get(&s.arn)
            .await
            .expect("describe")
            .expect("exists");
        let Outcome::Warn(b) = plan::decide(&r, &rules) else {
            panic!(
                "{} is not due a warning: {:?}",
                s.name,
                plan::decide(&r, &rules)
            );
        };
        cards.insert(
            s.name,
            card(&r, &b.0, &b.1, &job.policy, &job.pricing, &base, &ring),
        );
    }
    let snooze = job.snooze.as_ref().expect("snooze config");
    let email = |names: &[&str]| {
        OwnerEmail {
            owner: OWNER.to_string(),
            greeting_name: snooze.owner_names.get(OWNER).cloned(),
            cards: names.iter().map(|n| cards[n].clone()).collect(),
            now: now(),
            footer: footer(snooze, &job.policy),
        }
        .sorted()
        .render()
    };
    let all: Vec<&str> = seeded.iter().map(|s| s.name).collect();
    let all_buttons = ["Snooze +7 days", "Snooze +14 days", "Delete now"];
    let variants: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        ("email-many", all.clone(), all_buttons.to_vec()),
        (
            "email-one",
            vec!["alice-build-runner"],
            all_buttons.to_vec(),
        ),
        (
            "email-late",
            vec!["alice-late-warning"],
            all_buttons.to_vec(),
        ),
        (
            "email-unpriced",
            vec!["alice-unpriced-box"],
            all_buttons.to_vec(),
        ),
        (
            "email-no-extensions",
            vec!["alice-last-chance"],
            vec!["Delete now"],
        ),
        ("email-long-name", vec![long], all_buttons.to_vec()),
        (
            "email-non-latin",
            vec!["構築ランナー・テスト環境（東京）"],
            all_buttons.to_vec(),
        ),
    ];
    let mut pages = Vec::new();
    let mut problems = Vec::new();
    for (name, names, buttons) in &variants {
        let mail = email(names);
        let file = out_dir.join(format!("{name}.html"));
        std::fs::write(&file, &mail.html).expect("write html");
        std::fs::write(out_dir.join(format!("{name}.txt")), &mail.text).expect("write text");
        let links = html_links(&mail.html);
        let expected_links: usize = names.iter().map(|n| cards[n].snooze_links.len() + 1).sum();
        if links.len() != expected_links {
            problems.push(format!(
                "{name}: {} links in the html, expected {expected_links}",
                links.len()
            ));
        }
        problems.extend(
            text_problems(&mail.text, &links)
                .into_iter()
                .map(|p| format!("{name}: {p}")),
        );
        for forbidden in [
            "$0.00",
            "warn-24h",
            "warn-48h",
            "eligible:",
            "<script",
            "src=",
            "<style",
        ] {
            if mail.html.contains(forbidden) || mail.text.contains(forbidden) {
                problems.push(format!("{name}: contains {forbidden:?}"));
            }
        }
        pages.push(json!({"name": name, "url": format!("file://{}", file.display()), "buttons": buttons, "dark": true, "contrast": true}));
    }

    // What the email says, in words.
    let many = email(&all);
    // A final warning gives the notice period (24 h) from now, whatever the deadline: the
    // 20 h and 22 h ones and the late one all go in 24 h, and the email says so.
    assert_eq!(
        many.subject,
        "[ttl-teardown] 6 of your resources will be deleted in 24–40 h (final warning for 3)"
    );
    assert!(many.text.starts_with("Hello Dana,\n"), "{}", many.text);
    let late = &cards["alice-late-warning"];
    assert_eq!(late.delete_at, now() + jiff::SignedDuration::from_hours(24));
    assert!(late.deadline < now(), "the late card's deadline has passed");
    assert!(email(&["alice-late-warning"]).text.contains("(in 24 h)"));
    assert_eq!(
        email(&["alice-build-runner"]).subject,
        "[ttl-teardown] Final warning: alice-build-runner will be deleted in 24 h"
    );
    assert!(many.text.contains("unknown ("), "unpriced reads unknown");
    assert!(many.text.contains("about $60.74 a month"), "{}", many.text);
    assert!(many.text.contains("#platform-help or platform@example.com"));
    assert!(many.text.contains("auto-teardown=false"));
    // Cards in order of deletion, as the email shows them.
    let sorted: Vec<Card> = OwnerEmail {
        owner: OWNER.to_string(),
        greeting_name: None,
        cards: all.iter().map(|n| cards[n].clone()).collect(),
        now: now(),
        footer: footer(snooze, &job.policy),
    }
    .sorted()
    .cards;
    assert!(sorted.windows(2).all(|w| w[0].delete_at <= w[1].delete_at));
    let positions: Vec<usize> = sorted
        .iter()
        .map(|c| {
            many.text
                .find(&format!("{}\n", c.id))
                .expect("card in text")
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "text follows the order: {positions:?}"
    );
    // The n-th button of a kind in the email belongs to which card.
    let nth = |name: &str, snooze: bool| {
        sorted
            .iter()
            .filter(|c| !snooze || !c.snooze_links.is_empty())
            .position(|c| c.name == name)
            .expect("card has the button")
    };

    // The server's pages: confirmations, the opaque refusal, a limit.
    let c = |n: &str| &cards[n];
    let non_latin = c("構築ランナー・テスト環境（東京）");
    pages.push(
        json!({"name": "page-confirm-snooze", "url": non_latin.snooze_links[0].1, "status": 200,
        "buttons": ["Confirm: snooze +7 days", "Snooze +14 days instead"]}),
    );
    pages.push(json!({"name": "page-confirm-release", "url": non_latin.release_link.clone().expect("release link"), "status": 200,
        "buttons": ["Confirm: delete at the next run", "Keep it: snooze +7 days instead"]}));
    pages.push(json!({"name": "page-refused", "url": format!("{base}/v1/resources/{}/extend?days=7&token=v2.k1.forged.AAAA", c("alice-build-runner").id.replace('/', "%2F")), "status": 403, "buttons": []}));
    let last = c("alice-last-chance");
    let limit_token = ring.sign(&ttl_teardown::snooze::token::Claims {
        resource: last.id.clone(),
        action: ttl_teardown::snooze::token::LinkAction::Extend(7),
        deadline: last.deadline,
        extension_count: 2,
        owner: OWNER.into(),
        expires: last.delete_at,
    });
    pages.push(json!({"name": "page-limit", "url": ttl_teardown::snooze::token::extend_link(&base, &last.id, 7, &limit_token), "status": 403, "buttons": []}));

    // Click through: the many-card email, at phone and desktop width.
    let many_file = format!("file://{}", out_dir.join("email-many.html").display());
    let flows = json!([
        {"name": "flow-snooze-390", "email": many_file, "card": nth("alice-build-runner", true), "click": "Snooze +7 days",
         "confirm": "Confirm: snooze +7 days", "reason": "demo on Friday", "expect_title": "Snoozed",
         "then_revisit": true, "width": 390},
        {"name": "flow-snooze-1000", "email": many_file, "card": nth("alice-unpriced-box", true), "click": "Snooze +14 days",
         "confirm": "Confirm: snooze +14 days", "expect_title": "Snoozed", "width": 1000},
        {"name": "flow-release-390", "email": many_file, "card": nth("alice-late-warning", false), "click": "Delete now",
         "confirm": "Confirm: delete at the next run", "reason": "done with it",
         "expect_title": "Marked for deletion", "width": 390},
        {"name": "flow-release-1000", "email": many_file, "card": nth("alice-last-chance", false), "click": "Delete now",
         "confirm": "Confirm: delete at the next run", "expect_title": "Marked for deletion",
         "width": 1000, "then_revisit": true}
    ]);
    let plan_file = out_dir.join("plan.json");
    std::fs::write(
        &plan_file,
        serde_json::to_vec_pretty(&json!({
            "playwright": playwright, "chromium": "/usr/bin/chromium",
            "artifacts": out_dir, "widths": [1000, 390], "pages": pages, "flows": flows,
        }))
        .expect("json"),
    )
    .expect("plan");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/check.js");
    let out = tokio::time::timeout(
        Duration::from_secs(240),
        tokio::process::Command::new("node")
            .arg(&script)
            .arg(&plan_file)
            .output(),
    )
    .await
    .expect("chromium checks finish in 4 minutes")
    .expect("node runs (bash .ci/setup installs node)");
    assert!(
        out.status.success(),
        "check.js failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("check.js prints json");
    std::fs::write(out_dir.join("report.json"), &out.stdout).expect("report");
    for check in report["checks"].as_array().expect("checks") {
        if check["ok"] != true {
            problems.push(format!(
                "{} at {} px ({}): {}",
                check["name"], check["width"], check["scheme"], check["problems"]
            ));
        }
    }
    let flows = report["flows"].as_array().expect("flows");
    assert_eq!(flows.len(), 4);
    for f in flows {
        if f["ok"] != true || f["status"] != 200 {
            problems.push(format!(
                "{}: status {} {}",
                f["name"], f["status"], f["problems"]
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems (screenshots in {}):\n{}",
        problems.len(),
        out_dir.display(),
        problems.join("\n")
    );

    // The snooze the browser confirmed: tags and event.
    let runner = c("alice-build-runner");
    let t = bed.instance_tags(&runner.id).await;
    assert_eq!(t["ttl-extension-count"], "1");
    assert_eq!(t["ttl-extended-days"], "7");
    assert_eq!(t["ttl-extended-by"], OWNER);
    assert_eq!(t["ttl-extension-reason"], "demo on Friday");
    let snooze_page = flows[0]["text"].as_str().unwrap_or_default();
    assert!(
        snooze_page.contains("demo on Friday"),
        "reason repeated: {snooze_page}"
    );
    assert!(snooze_page.contains("new warning"), "{snooze_page}");
    assert!(snooze_page.contains("no longer work"), "{snooze_page}");
    assert_eq!(flows[0]["revisit_status"], 403, "a used link is refused");
    let refusal = flows[0]["revisit_text"].as_str().unwrap_or_default();
    assert!(
        refusal.contains("#platform-help"),
        "whom to contact: {refusal}"
    );
    assert!(refusal.contains("fresh links"), "{refusal}");
    // The +14 clicked at desktop width.
    let unpriced = bed.instance_tags(&c("alice-unpriced-box").id).await;
    assert_eq!(unpriced["ttl-extended-days"], "14");
    let events = consume_all(&bed.broker.bootstrap(), TOPIC, 3, Duration::from_secs(5))
        .await
        .expect("consume");
    let events: Vec<Value> = events
        .iter()
        .map(|(_, p)| serde_json::from_slice(p).expect("json"))
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    let e = events
        .iter()
        .find(|e| e["resource_id"] == runner.id.as_str())
        .expect("runner event");
    assert_eq!(e["new_deadline"], (runner.deadline + days(7)).to_string());
    assert_eq!(e["reason"], "demo on Friday");

    // The releases: Delete now on the late card and on alice-last-chance, whose revisit is
    // refused.
    let late_tags = bed.instance_tags(&c("alice-late-warning").id).await;
    assert_eq!(late_tags["ttl-released-at"], now().to_string());
    assert_eq!(late_tags["ttl-released-by"], OWNER);
    assert_eq!(late_tags["ttl-release-reason"], "done with it");
    let last_tags = bed.instance_tags(&c("alice-last-chance").id).await;
    assert_eq!(last_tags["ttl-released-at"], now().to_string());
    assert_eq!(flows[3]["revisit_status"], 403);
    let released_page = flows[2]["text"].as_str().unwrap_or_default();
    assert!(released_page.contains("done with it"), "{released_page}");
    assert!(
        released_page.contains("ttl-released-at"),
        "how to undo: {released_page}"
    );
    let releases = consume_all(
        &bed.broker.bootstrap(),
        RELEASE_TOPIC,
        3,
        Duration::from_secs(5),
    )
    .await
    .expect("consume");
    let releases: Vec<Value> = releases
        .iter()
        .map(|(_, p)| serde_json::from_slice(p).expect("json"))
        .collect();
    assert_eq!(releases.len(), 2, "{releases:?}");
    for r in &releases {
        assert_eq!(r["event_type"], RELEASE_TOPIC);
        assert_eq!(r["released_by"], OWNER);
        assert_eq!(r["new_deadline"], now().to_string());
    }
    let _ = stop.send(());
}
