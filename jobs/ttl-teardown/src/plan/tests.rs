use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::inventory::{CostBasis, Scope};

const ACCOUNT: &str = "111111111111";

fn now() -> Timestamp {
    "2026-11-23T12:00:00Z".parse().expect("timestamp")
}

/// A resource with valid dev tags, created `age` ago with a 7d ttl.
struct Fixture(Resource);

impl Fixture {
    fn aws(kind: &'static str, name: &str) -> Self {
        let id = format!(
            "arn:aws:ec2:us-east-1:{ACCOUNT}:{}/{name}",
            kind.trim_start_matches("ec2-")
        );
        Fixture(Resource {
            id,
            kind,
            name: name.to_string(),
            scope: Scope::Aws {
                account: ACCOUNT.into(),
                region: "us-east-1".into(),
            },
            namespace: None,
            tags: valid_tags(),
            labels: BTreeMap::new(),
            namespace_labels: BTreeMap::new(),
            created_fallback: None,
            state: None,
            wait_for: vec![],
            cost: CostBasis {
                instance_type: Some("t3.large".into()),
                ..CostBasis::default()
            },
            tags_unreadable: None,
        })
    }
    /// Deadline `hours` from now (negative: in the past).
    fn deadline_in(mut self, hours: i64) -> Self {
        let created =
            now() - SignedDuration::from_hours(7 * 24) + SignedDuration::from_hours(hours);
        self.0.tags.insert("created_at".into(), created.to_string());
        self
    }
    /// Expired and already warned (24h) for that deadline, so deletion is due.
    fn expired(self) -> Self {
        let f = self.deadline_in(-1);
        let deadline = now() - SignedDuration::from_hours(1);
        f.tag(
            "ttl-notified-stage",
            &crate::policy::notified_tag_value(
                crate::policy::Stage::Warn24h,
                deadline,
                deadline - jiff::SignedDuration::from_hours(30),
            ),
        )
    }
    fn tag(mut self, k: &str, v: &str) -> Self {
        self.0.tags.insert(k.into(), v.into());
        self
    }
    fn without(mut self, k: &str) -> Self {
        self.0.tags.remove(k);
        self
    }
    fn waits_for(mut self, id: &str) -> Self {
        self.0.wait_for.push(id.into());
        self
    }
    fn build(self) -> Resource {
        self.0
    }
}

fn valid_tags() -> BTreeMap<String, String> {
    [
        ("environment", "dev"),
        ("owner", "dev@example.com"),
        ("project", "checkout"),
        ("cost-center", "cc-42"),
        ("ttl", "7d"),
        ("created_at", "2026-11-20T12:00:00Z"),
        ("auto-teardown", "true"),
        ("data-class", "internal"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn run_plan(
    resources: Vec<Resource>,
    protect: &dyn Fn(&Resource) -> Option<Protected>,
    caps: &Caps,
) -> Plan {
    let policy = TagPolicy::default();
    let pricing = Pricing {
        instance_hourly: [("t3.large".to_string(), 0.1)].into(),
        ..Pricing::default()
    };
    let accounts = vec![ACCOUNT.to_string()];
    plan(
        resources,
        &Rules {
            policy: &policy,
            allowed_accounts: &accounts,
            caps,
            pricing: &pricing,
            whitelist: protect,
            now: now(),
        },
    )
}

fn nothing_protected(_: &Resource) -> Option<Protected> {
    None
}

fn actions(p: &Plan) -> Vec<(&str, Action)> {
    p.items
        .iter()
        .map(|i| (i.resource.name.as_str(), i.action()))
        .collect()
}

#[test]
fn each_stage_gets_its_action() {
    let p = run_plan(
        vec![
            Fixture::aws("ec2-instance", "fresh")
                .deadline_in(100)
                .build(),
            Fixture::aws("ec2-instance", "in47h")
                .deadline_in(47)
                .build(),
            Fixture::aws("ec2-instance", "in23h")
                .deadline_in(23)
                .build(),
            Fixture::aws("ec2-instance", "gone").expired().build(),
        ],
        &nothing_protected,
        &Caps::default(),
    );
    assert_eq!(
        actions(&p),
        [
            ("fresh", Action::None),
            ("in47h", Action::Warn48h),
            ("in23h", Action::Warn24h),
            ("gone", Action::Delete)
        ]
    );
    let f: Vec<Option<&str>> = p
        .items
        .iter()
        .map(|i| i.finding())
        .map(|f| {
            f.map(|f| {
                if f.kind == finding_type::EXPIRED {
                    "expired"
                } else {
                    "other"
                }
            })
        })
        .collect();
    assert_eq!(f, [None, Some("other"), Some("other"), Some("expired")]);
    let deleted = p.items[3].finding().expect("finding");
    assert_eq!(deleted.fields["cost_avoided_usd"], 72.0); // 0.1 $/h × 720 h
    assert_eq!(deleted.fields["action"], "delete");
}

#[test]
fn an_expired_resource_warned_late_is_reported_but_kept_for_the_notice_period() {
    let deadline = now() - SignedDuration::from_hours(5);
    let warned_2h_ago = crate::policy::notified_tag_value(
        crate::policy::Stage::Warn24h,
        deadline,
        now() - SignedDuration::from_hours(2),
    );
    let p = run_plan(
        vec![
            Fixture::aws("ec2-instance", "late")
                .deadline_in(-5)
                .tag("ttl-notified-stage", &warned_2h_ago)
                .build(),
        ],
        &nothing_protected,
        &Caps::default(),
    );
    assert_eq!(actions(&p), [("late", Action::None)]);
    let f = p.items[0].finding().expect("a finding, not silence");
    assert_eq!(f.kind, finding_type::EXPIRED);
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.fields["action"], "none");
    assert!(
        f.fields["reason"]
            .as_str()
            .is_some_and(|r| r.contains("deletion not before")),
        "{:?}",
        f.fields["reason"]
    );
    assert!(p.waves.iter().all(Vec::is_empty), "{:?}", p.waves);
}

#[test]
fn guardrails_win_over_expiry_in_order() {
    let wl = |r: &Resource| {
        (r.name == "whitelisted").then(|| Protected {
            rule: "aws_resources[0]".into(),
            reason: "whitelist rule aws_resources[0]".into(),
        })
    };
    let mut other_account = Fixture::aws("ec2-instance", "elsewhere").expired().build();
    other_account.scope = Scope::Aws {
        account: "999999999999".into(),
        region: "us-east-1".into(),
    };
    let mut unreadable = Fixture::aws("ec2-instance", "unreadable").expired().build();
    unreadable.tags_unreadable = Some("AccessDenied".into());
    let p = run_plan(
        vec![
            Fixture::aws("ec2-instance", "whitelisted")
                .expired()
                .build(),
            other_account,
            unreadable,
            Fixture::aws("ec2-instance", "prod")
                .expired()
                .tag("environment", "prod")
                .build(),
            Fixture::aws("ec2-instance", "restricted")
                .expired()
                .tag("data-class", "restricted")
                .build(),
            Fixture::aws("ec2-instance", "optout")
                .expired()
                .tag("auto-teardown", "false")
                .build(),
            Fixture::aws("ec2-instance", "badtags")
                .expired()
                .without("owner")
                .tag("ttl", "45d")
                .build(),
        ],
        &wl,
        &Caps::default(),
    );
    assert!(
        p.waves.is_empty(),
        "nothing may be deleted: {:?}",
        actions(&p)
    );
    let kinds: Vec<String> = p
        .items
        .iter()
        .map(|i| i.finding().expect("every guarded item is reported").kind)
        .collect();
    assert_eq!(kinds[..6], [finding_type::PROTECTED; 6].map(String::from));
    assert_eq!(kinds[6], finding_type::TAG_VIOLATION);
    assert!(
        p.items[0].reason().contains("whitelist"),
        "{}",
        p.items[0].reason()
    );
    assert!(
        p.items[1].reason().contains("999999999999"),
        "{}",
        p.items[1].reason()
    );
    assert!(
        p.items[2].reason().contains("AccessDenied"),
        "{}",
        p.items[2].reason()
    );
    assert!(
        p.items[3].reason().contains("production"),
        "{}",
        p.items[3].reason()
    );
    let violations = p.items[6].reason();
    assert!(
        violations.contains("\"owner\"") && violations.contains("\"ttl\""),
        "both problems reported: {violations}"
    );
}

#[test]
fn instance_goes_before_its_volume_and_security_group() {
    let instance = Fixture::aws("ec2-instance", "i-1").expired().build();
    let p = run_plan(
        vec![
            Fixture::aws("security-group", "sg-1")
                .expired()
                .waits_for(&instance.id)
                .build(),
            Fixture::aws("ebs-volume", "vol-1")
                .expired()
                .waits_for(&instance.id)
                .build(),
            instance.clone(),
        ],
        &nothing_protected,
        &Caps::default(),
    );
    let waves: Vec<Vec<&str>> = p
        .waves
        .iter()
        .map(|w| {
            w.iter()
                .map(|&i| p.items[i].resource.name.as_str())
                .collect()
        })
        .collect();
    assert_eq!(waves, [vec!["i-1"], vec!["vol-1", "sg-1"]]);
}

#[test]
fn a_deletion_waiting_for_a_kept_resource_is_held() {
    let kept = Fixture::aws("ec2-instance", "i-kept")
        .deadline_in(100)
        .build();
    let sg = Fixture::aws("security-group", "sg-1")
        .expired()
        .waits_for(&kept.id)
        .build();
    // A volume waiting on the held group is held too (the hold propagates).
    let vol = Fixture::aws("ebs-volume", "vol-1")
        .expired()
        .waits_for(&sg.id)
        .build();
    let p = run_plan(vec![kept, sg, vol], &nothing_protected, &Caps::default());
    assert!(p.waves.is_empty());
    assert!(matches!(p.items[1].outcome, Outcome::Held(..)));
    assert!(
        p.items[1].reason().contains("i-kept"),
        "{}",
        p.items[1].reason()
    );
    assert!(matches!(p.items[2].outcome, Outcome::Held(..)));
    assert_eq!(
        p.items[1].finding().expect("reported").fields["action"],
        "none"
    );
}

#[test]
fn caps_refuse_the_whole_run() {
    let many: Vec<Resource> = (0..4)
        .map(|i| {
            Fixture::aws("ec2-instance", &format!("i-{i}"))
                .expired()
                .build()
        })
        .collect();
    let caps = Caps {
        max_deletions: 3,
        ..Caps::default()
    };
    let p = run_plan(many.clone(), &nothing_protected, &caps);
    let breach = p.cap_breach.expect("over the absolute cap");
    assert!(
        breach.contains("aws:111111111111: 4 deletions exceed job.caps.max_deletions = 3"),
        "{breach}"
    );

    // Percentage: 6 of 10 eligible is 60% > 20%, and above the 5-deletion floor.
    let mut mixed: Vec<Resource> = (0..6)
        .map(|i| {
            Fixture::aws("ec2-instance", &format!("x-{i}"))
                .expired()
                .build()
        })
        .collect();
    mixed.extend((0..4).map(|i| {
        Fixture::aws("ec2-instance", &format!("y-{i}"))
            .deadline_in(100)
            .build()
    }));
    let p = run_plan(mixed, &nothing_protected, &Caps::default());
    assert!(
        p.cap_breach
            .expect("over the percentage cap")
            .contains("60% of 10 eligible")
    );

    // Under both caps.
    let p = run_plan(many, &nothing_protected, &Caps::default());
    assert_eq!(p.cap_breach, None);
}
