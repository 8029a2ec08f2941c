//! Verdicts: which rule protects what, and why.

use whitelist::{KubeObject, MatchedOn, Protection, Resource, Section, Whitelist, naive};

use crate::{EXAMPLE, now, ts, wl};

const ACCOUNT: &str = "123456789012";

fn arn(service: &str, region: &str, resource: &str) -> Resource {
    Resource::aws(format!("arn:aws:{service}:{region}:{ACCOUNT}:{resource}"))
}

/// The verdict, checked against the reference matcher on the way.
fn verdict(w: &Whitelist, r: &Resource) -> Option<Protection> {
    let compiled = w.verdict(r, now());
    assert_eq!(
        compiled,
        naive::verdict(w, r, now()),
        "compiled and naive disagree on {r:?}"
    );
    compiled
}

/// `section[index]` of the protecting rule, or what else protects.
fn who(w: &Whitelist, r: &Resource) -> Option<String> {
    verdict(w, r).map(|p| match p.rule() {
        Some(rule) => format!("{}[{}]", rule.section(), rule.index()),
        None => p.kind().to_owned(),
    })
}

#[test]
fn arn_rules_of_the_example() {
    let w = wl(EXAMPLE);
    assert_eq!(
        who(&w, &arn("ec2", "eu-west-1", "instance/i-stoa-0abc")).as_deref(),
        Some("aws_resources[0]")
    );
    assert_eq!(who(&w, &arn("ec2", "eu-west-1", "instance/i-other")), None);
    assert_eq!(
        who(&w, &arn("rds", "us-east-1", "db:stoa-prod-1")).as_deref(),
        Some("aws_resources[1]")
    );
    assert_eq!(who(&w, &arn("rds", "us-east-1", "db:stoa-dev-1")), None);
    assert_eq!(
        who(&w, &Resource::aws("arn:aws:s3:::stoa-artifacts")).as_deref(),
        Some("aws_resources[2]")
    );
    assert_eq!(
        who(&w, &Resource::aws("arn:aws:s3:::stoa-artifacts-old")),
        None
    );
    // Region is literal in the EKS rule.
    assert_eq!(
        who(&w, &arn("eks", "eu-west-1", "cluster/platform-a")).as_deref(),
        Some("aws_resources[3]")
    );
    assert_eq!(
        who(&w, &arn("eks", "us-east-1", "cluster/platform-a")),
        None
    );
    // Case-sensitive.
    assert_eq!(who(&w, &arn("ec2", "eu-west-1", "instance/I-STOA-1")), None);
}

#[test]
fn protection_says_why_in_one_line() {
    let w = wl(
        "never_delete:\n  aws_resources:\n    - arn: \"arn:aws:ec2:*:*:instance/i-stoa-*\"\n      reason: stoa core fleet\n    - {arn: \"arn:aws:s3:::b\", reason: r, owner: o}\n    - {arn: \"arn:aws:s3:::c\", owner: o}\n    - \"arn:aws:s3:::d\"\n",
    );
    let line = |r: Resource| verdict(&w, &r).unwrap().to_string();
    assert_eq!(
        line(arn("ec2", "eu-west-1", "instance/i-stoa-1")),
        r#"whitelist rule aws_resources[0] "arn:aws:ec2:*:*:instance/i-stoa-*" (reason: stoa core fleet)"#
    );
    assert_eq!(
        line(Resource::aws("arn:aws:s3:::b")),
        r#"whitelist rule aws_resources[1] "arn:aws:s3:::b" (reason: r; owner: o)"#
    );
    assert_eq!(
        line(Resource::aws("arn:aws:s3:::c")),
        r#"whitelist rule aws_resources[2] "arn:aws:s3:::c" (owner: o)"#
    );
    assert_eq!(
        line(Resource::aws("arn:aws:s3:::d")),
        r#"whitelist rule aws_resources[3] "arn:aws:s3:::d""#
    );
    let p = verdict(&w, &Resource::aws("arn:aws:s3:::d")).unwrap();
    let rule = p.rule().unwrap();
    assert_eq!((rule.line(), rule.column()), (7, 7));
    assert_eq!(p.kind(), "aws_resources");
}

#[test]
fn accounts_from_the_arn_or_given_explicitly() {
    let w = wl("never_delete:\n  accounts: [\"123456789012\"]\n");
    let p = verdict(&w, &arn("ec2", "eu-west-1", "instance/i-1")).unwrap();
    assert!(matches!(
        p,
        Protection::Rule {
            matched: MatchedOn::Account,
            ..
        }
    ));
    assert_eq!(
        p.to_string(),
        r#"whitelist rule accounts[0] "123456789012""#
    );
    // S3 ARNs carry no account: the caller says it.
    assert_eq!(verdict(&w, &Resource::aws("arn:aws:s3:::b")), None);
    assert!(verdict(&w, &Resource::aws("arn:aws:s3:::b").with_account(ACCOUNT)).is_some());
    // A Kubernetes object in a protected account's cluster.
    let pod = Resource::kubernetes("Pod", Some("apps"), "web").with_account(ACCOUNT);
    assert!(verdict(&w, &pod).is_some());
    assert_eq!(
        verdict(
            &w,
            &Resource::aws("arn:aws:ec2:eu-west-1:999999999999:instance/i-1")
        ),
        None
    );
}

#[test]
fn tags_exact_or_any_value() {
    let w = wl(EXAMPLE);
    let vol = || arn("ec2", "eu-west-1", "volume/vol-1");
    assert_eq!(
        who(&w, &vol().with_tag("critical", "true")).as_deref(),
        Some("tags[0]")
    );
    assert_eq!(who(&w, &vol().with_tag("critical", "false")), None);
    assert_eq!(who(&w, &vol().with_tag("critical", "True")), None);
    assert_eq!(who(&w, &vol().with_tag("Critical", "true")), None);
    assert_eq!(
        who(&w, &vol().with_tag("environment", "prod")).as_deref(),
        Some("tags[1]")
    );
    assert_eq!(
        who(&w, &vol().with_tag("legal-hold", "")).as_deref(),
        Some("tags[2]")
    );
    assert_eq!(
        who(&w, &vol().with_tag("legal-hold", "case-42")).as_deref(),
        Some("tags[2]")
    );
    // The lowest index wins when several tags protect.
    let both = vol()
        .with_tag("legal-hold", "x")
        .with_tag("environment", "prod");
    assert_eq!(who(&w, &both).as_deref(), Some("tags[1]"));
}

#[test]
fn namespaces_protect_themselves_and_everything_in_them() {
    let w = wl(EXAMPLE);
    let pod = Resource::kubernetes("Pod", Some("monitoring"), "prometheus-0");
    let p = verdict(&w, &pod).unwrap();
    assert!(matches!(
        p,
        Protection::Rule {
            matched: MatchedOn::Namespace,
            ..
        }
    ));
    assert_eq!(
        p.to_string(),
        r#"whitelist rule kubernetes.namespaces[3] "monitoring""#
    );
    assert_eq!(
        who(&w, &Resource::kubernetes("Namespace", None, "vault")).as_deref(),
        Some("kubernetes.namespaces[4]")
    );
    assert_eq!(
        who(&w, &Resource::kubernetes("namespace", None, "vault")).as_deref(),
        Some("kubernetes.namespaces[4]")
    );
    assert_eq!(
        who(&w, &Resource::kubernetes("Pod", Some("apps"), "web")),
        None
    );
    // A cluster-scoped object named like a protected namespace is not that namespace.
    assert_eq!(
        who(&w, &Resource::kubernetes("ClusterRole", None, "vault")),
        None
    );
}

#[test]
fn label_selectors_on_the_object_or_its_namespace() {
    let w = wl(EXAMPLE);
    let dep = || Resource::kubernetes("Deployment", Some("apps"), "api");
    let own = dep()
        .with_label("team", "platform")
        .with_label("tier", "db");
    let p = verdict(&w, &own).unwrap();
    assert!(matches!(
        p,
        Protection::Rule {
            matched: MatchedOn::ObjectLabels,
            ..
        }
    ));
    assert_eq!(
        p.to_string(),
        r#"whitelist rule kubernetes.labels[0] "team=platform,tier in (core,db)" on the object's labels (reason: platform core services; owner: team-platform)"#
    );
    let via_ns = dep()
        .with_namespace_label("team", "platform")
        .with_namespace_label("tier", "core");
    let p = verdict(&w, &via_ns).unwrap();
    assert!(matches!(
        p,
        Protection::Rule {
            matched: MatchedOn::NamespaceLabels,
            ..
        }
    ));
    assert!(p.to_string().contains("on its namespace's labels"));
    // Object and namespace labels are matched separately, not merged.
    let split = dep()
        .with_label("team", "platform")
        .with_namespace_label("tier", "core");
    assert_eq!(verdict(&w, &split), None);
    assert_eq!(
        verdict(
            &w,
            &dep()
                .with_label("team", "platform")
                .with_label("tier", "web")
        ),
        None
    );
}

#[test]
fn lapsed_rules_no_longer_protect() {
    let w = wl(EXAMPLE);
    let scratch = Resource::aws("arn:aws:s3:::stoa-migration-scratch");
    assert!(w.verdict(&scratch, ts("2026-12-31T23:59:59Z")).is_some());
    assert_eq!(w.verdict(&scratch, ts("2027-01-01T00:00:00Z")), None);
    assert_eq!(w.verdict(&scratch, ts("2030-01-01T00:00:00Z")), None);
    assert_eq!(
        naive::verdict(&w, &scratch, ts("2027-01-01T00:00:00Z")),
        None
    );
    // Explaining still finds the lapsed rule.
    let all = w.matching_rules(&scratch);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].rule().unwrap().index(), 4);
    assert_eq!(all, naive::matching_rules(&w, &scratch));
}

#[test]
fn a_lapsed_rule_gives_way_to_the_next_one() {
    let w = wl(
        "never_delete:\n  aws_resources:\n    - {arn: \"arn:aws:s3:::b*\", expires: \"2026-01-01T00:00:00Z\"}\n    - \"arn:aws:s3:::*\"\n",
    );
    assert_eq!(
        who(&w, &Resource::aws("arn:aws:s3:::bucket")).as_deref(),
        Some("aws_resources[1]")
    );
}

#[test]
fn sections_are_consulted_in_a_fixed_order() {
    let w = wl(EXAMPLE);
    let everything = Resource::aws("arn:aws:ec2:eu-west-1:210987654321:instance/i-stoa-1")
        .with_tag("critical", "true");
    assert_eq!(who(&w, &everything).as_deref(), Some("accounts[0]"));
    let names: Vec<String> = w
        .matching_rules(&everything)
        .iter()
        .map(|p| p.rule().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            r#"accounts[0] "210987654321""#,
            r#"aws_resources[0] "arn:aws:ec2:*:*:instance/i-stoa-*""#,
            r#"tags[0] "critical=true""#
        ]
    );
    assert_eq!(
        w.matching_rules(&everything),
        naive::matching_rules(&w, &everything)
    );
}

#[test]
fn unreadable_tags_fail_closed() {
    let w = wl(EXAMPLE);
    let vol = arn("ec2", "eu-west-1", "volume/vol-1").with_unreadable_tags("AccessDenied");
    let p = verdict(&w, &vol).unwrap();
    assert_eq!(p, Protection::unreadable_tags("AccessDenied"));
    assert_eq!(p.kind(), "unreadable_tags");
    assert_eq!(
        p.to_string(),
        "tags could not be read, so the resource is treated as protected (AccessDenied)"
    );
    // A rule that protects on what is known is the better reason.
    let inst = arn("ec2", "eu-west-1", "instance/i-stoa-1").with_unreadable_tags("AccessDenied");
    assert_eq!(who(&w, &inst).as_deref(), Some("aws_resources[0]"));
    // The same through the whitelist helper, and even with no rules at all.
    let plain = arn("ec2", "eu-west-1", "volume/vol-1");
    assert_eq!(
        w.verdict_unreadable(&plain, "throttled", now()),
        Protection::unreadable_tags("throttled")
    );
    assert_eq!(
        Whitelist::empty().verdict_unreadable(&plain, "throttled", now()),
        Protection::unreadable_tags("throttled")
    );
}

#[test]
fn malformed_arns_fail_closed() {
    let w = Whitelist::empty();
    for bad in [
        "",
        "arn:aws:s3",
        "not-an-arn",
        "ARN:aws:s3:::b",
        "arn:aws:ec2:eu-west-1:1",
    ] {
        let p = verdict(&w, &Resource::aws(bad)).unwrap();
        assert_eq!(p, Protection::InvalidArn { arn: bad.into() });
        assert_eq!(p.kind(), "invalid_arn");
    }
    assert_eq!(verdict(&w, &Resource::aws("arn:aws:s3:::b")), None);
}

#[test]
fn the_empty_whitelist_protects_nothing() {
    let w = Whitelist::empty();
    assert!(w.is_empty());
    assert_eq!(w.origin(), "<empty>");
    assert_eq!(verdict(&w, &arn("rds", "eu-west-1", "db:prod")), None);
    assert_eq!(
        verdict(&w, &Resource::kubernetes("Namespace", None, "kube-system")),
        None
    );
}

#[test]
fn a_kube_object_built_by_hand() {
    let w = wl(EXAMPLE);
    let r = Resource {
        kubernetes: Some(KubeObject {
            kind: "ConfigMap".into(),
            namespace: Some("kube-system".into()),
            name: "coredns".into(),
            ..KubeObject::default()
        }),
        ..Resource::default()
    };
    assert_eq!(who(&w, &r).as_deref(), Some("kubernetes.namespaces[0]"));
    assert_eq!(w.rules(Section::Namespaces)[0].text(), "kube-system");
}

#[test]
fn a_whitelist_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync + Clone>() {}
    shareable::<Whitelist>();
    shareable::<Protection>();
    let w = std::sync::Arc::new(wl(EXAMPLE));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let w = w.clone();
            std::thread::spawn(move || {
                w.verdict(&Resource::aws("arn:aws:s3:::stoa-artifacts"), now())
                    .is_some()
            })
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
}
