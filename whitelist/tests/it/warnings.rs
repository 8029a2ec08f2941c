//! Warnings of `whitelist check`.

use whitelist::Severity;

use crate::{EXAMPLE, now, ts, wl};

fn warnings(yaml: &str) -> Vec<String> {
    let w = wl(yaml);
    let warnings = w.warnings(now());
    assert!(warnings.iter().all(|d| d.severity == Severity::Warning));
    warnings.iter().map(ToString::to_string).collect()
}

fn one(pattern: &str) -> Vec<String> {
    warnings(&format!(
        "never_delete:\n  aws_resources:\n    - \"{pattern}\"\n"
    ))
}

#[test]
fn the_example_is_clean_until_its_rule_lapses() {
    let w = wl(EXAMPLE);
    assert_eq!(w.warnings(now()), []);
    let later: Vec<String> = w
        .warnings(ts("2027-06-01T00:00:00Z"))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        later,
        [
            "whitelist.yaml:11:12: never_delete.aws_resources[4]: protection lapsed at 2027-01-01T00:00:00Z: the rule no longer protects anything (remove it or extend `expires`)"
        ]
    );
}

#[test]
fn rules_that_can_never_match() {
    assert_eq!(
        one("arn:azure:ec2:*:*:x"),
        [
            "whitelist.yaml:3:7: never_delete.aws_resources[0]: partition `azure` matches no AWS partition (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc): this rule can never match"
        ]
    );
    assert_eq!(one("arn:aws*:ec2:*:*:x"), Vec::<String>::new());
    assert!(one("arn:aws:EC2:*:*:x")[0].contains("service `EC2` is not a service name"));
    assert!(one("arn:aws::*:*:x")[0].contains("service `` is not a service name"));
    assert!(one("arn:aws:ec2:euwest1:*:x")[0].contains("region `euwest1` is not a region name"));
    assert_eq!(one("arn:aws:ec2:us-gov-west-1:*:x"), Vec::<String>::new());
    assert!(one("arn:aws:ec2:*:1234:x")[0].contains("account `1234` is not a 12-digit account id"));
    assert!(one("arn:aws:ec2:*:12345678901x:x")[0].contains("account `12345678901x`"));
    assert_eq!(
        one("arn:aws:iam::aws:policy/AdministratorAccess"),
        Vec::<String>::new()
    );
    assert_eq!(one("arn:aws:ec2:*:1234567890??:x"), Vec::<String>::new());
    assert!(one("arn:aws:s3:::${aws:username}")[0].contains("policy variables are not expanded"));
}

#[test]
fn patterns_that_protect_everything() {
    assert_eq!(
        one("arn:*:*:*:*:*"),
        [
            "whitelist.yaml:3:7: never_delete.aws_resources[0]: pattern protects every resource of every service: is that intended?"
        ]
    );
    assert!(one("arn:aws:*:*:123456789012:**")[0].contains(
        "pattern protects every resource of every service in partition `aws`, account `123456789012`"
    ));
    assert!(
        one("arn:aws:s3:*:*:*")[0]
            .contains("pattern protects every `s3` resource in every account and region")
    );
    assert_eq!(one("arn:aws:s3:::*"), Vec::<String>::new());
}

#[test]
fn duplicates_after_normalisation() {
    let got = warnings(
        "never_delete:\n  aws_resources:\n    - \"arn:aws:s3:::a*?\"\n    - \"arn:aws:s3:::a?**\"\n  kubernetes:\n    labels: [\"b=1,a in (x,y)\", \"a in (y,x),b==1\"]\n",
    );
    assert_eq!(
        got,
        [
            "whitelist.yaml:4:7: never_delete.aws_resources[1]: protects the same resources as aws_resources[0] at line 3 (equal after normalisation: \"arn:aws:s3:::a?*\")",
            "whitelist.yaml:6:32: never_delete.kubernetes.labels[1]: protects the same resources as kubernetes.labels[0] at line 6 (equal after normalisation: \"a in (x,y),b=1\")",
        ]
    );
}

#[test]
fn negative_only_selectors_and_empty_files() {
    assert_eq!(
        warnings("never_delete:\n  kubernetes:\n    labels: [\"!canary\"]\n"),
        [
            "whitelist.yaml:3:14: never_delete.kubernetes.labels[0]: selector only says which labels must be absent or different, so it protects nearly every object"
        ]
    );
    assert_eq!(
        warnings("never_delete: {}\n"),
        ["whitelist.yaml: the whitelist has no rules: it protects nothing"]
    );
}

#[test]
fn tags_longer_than_aws_allows() {
    let key = "k".repeat(129);
    let got = warnings(&format!("never_delete:\n  tags:\n    - {{key: {key}}}\n"));
    assert_eq!(got.len(), 1);
    assert!(got[0].ends_with("tag key is longer than 128 characters: this rule can never match"));
}
