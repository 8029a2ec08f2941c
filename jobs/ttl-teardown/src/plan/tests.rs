use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use inventory::Scope;
use testbed::fixtures::valid_tags;

use super::*;

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
        let mut r = Resource::new(
            kind,
            id,
            name.to_string(),
            Scope::Aws {
                account: ACCOUNT.into(),
                region: "us-east-1".into(),
            },
        );
        r.tags = valid_tags();
        r.attributes.instance_type = Some("t3.large".into());
        Fixture(r)
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
    fn part_of(mut self, id: &str) -> Self {
        self.0.part_of = Some(id.into());
        self.0.wait_for.push(id.into());
        self
    }
    fn untagged(mut self) -> Self {
        self.0.tags = BTreeMap::new();
        self
    }
    fn build(self) -> Resource {
        self.0
    }
}

fn run_plan(
    resources: Vec<Resource>,
    protect: &dyn Fn(&Resource) -> Option<Protected>,
    caps: &Caps,
) -> Plan {
    run_plan_with(resources, protect, &|_| None, caps)
}

fn run_plan_with(
    resources: Vec<Resource>,
    protect: &dyn Fn(&Resource) -> Option<Protected>,
    listing_failure: &dyn Fn(&Resource) -> Option<String>,
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
            listing_failure,
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

fn waves_of(p: &Plan) -> Vec<Vec<&str>> {
    p.waves
        .iter()
        .map(|w| {
            w.iter()
                .map(|&i| p.items[i].resource.name.as_str())
                .collect()
        })
        .collect()
}

#[test]
fn a_root_volume_goes_with_its_instance_and_is_no_violation_while_kept() {
    let expired = Fixture::aws("ec2-instance", "i-1").expired().build();
    let kept = Fixture::aws("ec2-instance", "i-2").deadline_in(100).build();
    let p = run_plan(
        vec![
            expired.clone(),
            Fixture::aws("ebs-volume", "vol-root-1")
                .untagged()
                .part_of(&expired.id)
                .build(),
            kept.clone(),
            Fixture::aws("ebs-volume", "vol-root-2")
                .untagged()
                .part_of(&kept.id)
                .build(),
        ],
        &nothing_protected,
        &Caps::default(),
    );
    assert_eq!(waves_of(&p), [vec!["i-1"], vec!["vol-root-1"]]);
    assert!(matches!(p.items[1].outcome, Outcome::WithOwner(_)));
    let goes = p.items[1].finding().expect("reported with its owner");
    assert_eq!(goes.fields["action"], "delete");
    assert_eq!(goes.fields["part_of"], expired.id.as_str());
    // The kept instance's untagged root volume is nobody's tag violation.
    assert!(matches!(
        p.items[3].outcome,
        Outcome::Part {
            protection: None,
            ..
        }
    ));
    assert_eq!(p.items[3].finding(), None);
}

#[test]
fn a_protected_part_holds_its_owner_through_parts_of_parts() {
    let group = Fixture::aws("autoscaling-group", "web-asg")
        .expired()
        .build();
    let member = Fixture::aws("ec2-instance", "i-1")
        .expired()
        .part_of(&group.id)
        .build();
    let wl = |r: &Resource| {
        (r.name == "vol-keep").then(|| Protected {
            rule: "aws_resources[0]".into(),
            reason: "whitelist rule aws_resources[0]".into(),
        })
    };
    let p = run_plan(
        vec![
            group,
            member.clone(),
            Fixture::aws("ebs-volume", "vol-keep")
                .untagged()
                .part_of(&member.id)
                .build(),
        ],
        &wl,
        &Caps::default(),
    );
    assert!(p.waves.is_empty(), "{:?}", waves_of(&p));
    assert!(matches!(p.items[0].outcome, Outcome::Held(..)));
    assert!(
        p.items[0].reason().contains("vol-keep") && p.items[0].reason().contains("protected"),
        "{}",
        p.items[0].reason()
    );
    let kept = p.items[2]
        .finding()
        .expect("the protected part is reported");
    assert_eq!(kept.kind, finding_type::PROTECTED);
}

#[test]
fn a_group_member_is_removed_only_with_its_group() {
    let group = Fixture::aws("autoscaling-group", "web-asg")
        .deadline_in(100)
        .build();
    // Expired on its own tags, but its group stays: never terminated alone.
    let member = Fixture::aws("ec2-instance", "i-1")
        .expired()
        .part_of(&group.id)
        .build();
    let orphan = Fixture::aws("ec2-instance", "i-2")
        .expired()
        .part_of("unresolved:autoscaling-group/gone")
        .build();
    let p = run_plan(
        vec![group, member, orphan],
        &nothing_protected,
        &Caps::default(),
    );
    assert!(p.waves.is_empty(), "{:?}", waves_of(&p));
    assert!(matches!(p.items[1].outcome, Outcome::Part { .. }));
    assert!(matches!(p.items[2].outcome, Outcome::Protected(_)));
    assert!(
        p.items[2].reason().contains("not found"),
        "{}",
        p.items[2].reason()
    );
}

#[test]
fn parts_count_against_the_caps() {
    let group = Fixture::aws("autoscaling-group", "big-asg")
        .expired()
        .build();
    let mut resources = vec![group.clone()];
    resources.extend((0..3).map(|i| {
        Fixture::aws("ec2-instance", &format!("i-{i}"))
            .expired()
            .part_of(&group.id)
            .build()
    }));
    let caps = Caps {
        max_deletions: 3,
        ..Caps::default()
    };
    let p = run_plan(resources, &nothing_protected, &caps);
    assert!(
        p.cap_breach
            .as_deref()
            .is_some_and(|b| b.contains("4 deletions")),
        "{:?}",
        p.cap_breach
    );
}

#[test]
fn a_kind_that_could_not_be_listed_holds_what_may_depend_on_it() {
    let failed = |r: &Resource| {
        (r.kind == "security-group")
            .then(|| "ec2-instance could not be listed in aws:111111111111/us-east-1".to_string())
    };
    let p = run_plan_with(
        vec![
            Fixture::aws("security-group", "sg-1").expired().build(),
            Fixture::aws("ec2-instance", "i-1").expired().build(),
        ],
        &nothing_protected,
        &failed,
        &Caps::default(),
    );
    assert_eq!(waves_of(&p), [vec!["i-1"]]);
    assert!(matches!(p.items[0].outcome, Outcome::Held(..)));
    assert!(p.items[0].reason().contains("could not be listed"));
}

#[test]
fn an_unpriced_resource_is_unknown_not_free() {
    let mut unpriced = Fixture::aws("ec2-instance", "i-odd").expired().build();
    unpriced.attributes.instance_type = Some("x9.mega".into());
    let p = run_plan(vec![unpriced], &nothing_protected, &Caps::default());
    let f = p.items[0].finding().expect("finding");
    assert_eq!(f.fields["cost_avoided_usd"], serde_json::Value::Null);
    assert!(
        f.fields["cost_note"]
            .as_str()
            .is_some_and(|n| n.contains("x9.mega")),
        "{:?}",
        f.fields
    );
}

#[test]
fn production_needs_neither_ttl_nor_auto_teardown() {
    let p = run_plan(
        vec![
            Fixture::aws("ec2-instance", "prod-db")
                .tag("environment", "prod")
                .without("ttl")
                .without("auto-teardown")
                .build(),
            Fixture::aws("ec2-instance", "dev-untidy")
                .without("ttl")
                .without("auto-teardown")
                .build(),
        ],
        &nothing_protected,
        &Caps::default(),
    );
    let prod = p.items[0].finding().expect("reported as protected");
    assert_eq!(prod.kind, finding_type::PROTECTED, "{prod:?}");
    assert_eq!(prod.fields["deadline"], serde_json::Value::Null);
    let dev = p.items[1].finding().expect("reported");
    assert_eq!(
        dev.kind,
        finding_type::TAG_VIOLATION,
        "non-prod still needs them"
    );
}
