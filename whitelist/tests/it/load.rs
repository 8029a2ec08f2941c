//! Loading and validation: every problem, located.

use whitelist::{Error, Section, Severity, Whitelist};

use crate::{EXAMPLE, problems, ts, wl};

#[test]
fn example_file_loads_with_every_section() {
    let w = wl(EXAMPLE);
    let counts: Vec<usize> = Section::ALL.iter().map(|&s| w.rules(s).len()).collect();
    assert_eq!(counts, [1, 5, 3, 5, 1]);
    assert_eq!(w.len(), 15);

    let eks = &w.rules(Section::AwsResources)[3];
    assert_eq!(eks.text(), "arn:aws:eks:eu-west-1:*:cluster/platform-*");
    assert_eq!(eks.reason(), Some("shared platform clusters"));
    assert_eq!(eks.owner(), Some("team-platform"));
    assert_eq!(eks.expires(), None);
    assert_eq!((eks.line(), eks.column()), (8, 12));

    let scratch = &w.rules(Section::AwsResources)[4];
    assert_eq!(scratch.expires(), Some(ts("2027-01-01T00:00:00Z")));

    let tags: Vec<&str> = w.rules(Section::Tags).iter().map(|r| r.text()).collect();
    assert_eq!(tags, ["critical=true", "environment=prod", "legal-hold"]);
    let namespaces: Vec<&str> = w
        .rules(Section::Namespaces)
        .iter()
        .map(|r| r.text())
        .collect();
    assert_eq!(
        namespaces,
        [
            "kube-system",
            "gatekeeper-system",
            "stoa-system",
            "monitoring",
            "vault"
        ]
    );
    assert_eq!(w.rules(Section::Accounts)[0].text(), "210987654321");
    for section in Section::ALL {
        for (i, rule) in w.rules(section).iter().enumerate() {
            assert_eq!(rule.index(), i);
            assert_eq!(rule.section(), section);
        }
    }
}

#[test]
fn the_issue_example_error_message() {
    let yaml = "\
never_delete:
  aws_resources:
    - \"arn:aws:ec2:*:*:instance/i-stoa-*\"
    - \"arn:aws:rds:*:*:db:stoa-prod-*\"


    - \"arn:aws:ec2:instance\"
";
    assert_eq!(
        problems(yaml),
        [
            "whitelist.yaml:7:7: never_delete.aws_resources[2]: ARN pattern has 4 parts, expected 6 (arn:partition:service:region:account:resource)"
        ]
    );
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let yaml = r#"never_delete:
  aws_resources:
    - "arn:aws:ec2:*:*:instance/i-stoa-*"
    - "arn:aws:ec2:instance"
    - arn: "arn:aws:ec2:*:*:instance/i-stoa-*"
    - arn: "arn:aws:s3:::x"
      resaon: typo
      expires: 2027-13-01
    - arn:
    - [a, b]
    - "arn aws:s3:::x"
    - "aws:aws:s3:::x"
  tags:
    - key: ""
      value: "x"
    - critical=true
    - key: env
      value:
    - {key: team, value: a, reason: ""}
  accounts: [123, "12345678901a"]
  kubernetes:
    namespaces: [Kube-System, ok, ok]
    labels:
      - "team="
      - selector: ""
      - {reason: no selector}
  extra: 1
"#;
    let got = problems(yaml);
    let expected = [
        "whitelist.yaml:4:7: never_delete.aws_resources[1]: ARN pattern has 4 parts, expected 6 (arn:partition:service:region:account:resource)",
        "whitelist.yaml:5:12: never_delete.aws_resources[2]: duplicate rule: same as never_delete.aws_resources[0] at line 3",
        "whitelist.yaml:7:7: never_delete.aws_resources[3]: unknown key `resaon`, expected one of: arn, reason, owner, expires",
        "whitelist.yaml:8:16: never_delete.aws_resources[3].expires: bad expires timestamp \"2027-13-01\", expected RFC 3339 such as 2027-01-01T00:00:00Z",
        "whitelist.yaml:9:10: never_delete.aws_resources[4].arn: empty value",
        "whitelist.yaml:10:7: never_delete.aws_resources[5]: expected a string, found a list",
        "whitelist.yaml:11:7: never_delete.aws_resources[6]: ARN pattern contains ' '; ARNs never contain whitespace or control characters",
        "whitelist.yaml:12:7: never_delete.aws_resources[7]: ARN pattern must start with `arn:`, found `aws:` (arn:partition:service:region:account:resource)",
        "whitelist.yaml:14:12: never_delete.tags[0].key: empty value",
        "whitelist.yaml:16:7: never_delete.tags[1]: a tag rule is a mapping: {key: ..., value: ...} (leave out `value` to protect any value of the key)",
        "whitelist.yaml:18:12: never_delete.tags[2].value: empty value: leave out `value` to protect any value of the key, or write \"\" for the empty tag value",
        "whitelist.yaml:19:37: never_delete.tags[3].reason: empty value",
        "whitelist.yaml:20:14: never_delete.accounts[0]: account id \"123\" is not 12 digits",
        "whitelist.yaml:20:19: never_delete.accounts[1]: account id \"12345678901a\" is not 12 digits",
        "whitelist.yaml:22:18: never_delete.kubernetes.namespaces[0]: \"Kube-System\" is not a valid namespace name (at most 63 characters: lowercase letters, digits and `-`, starting and ending with a letter or digit)",
        "whitelist.yaml:22:35: never_delete.kubernetes.namespaces[2]: duplicate rule: same as never_delete.kubernetes.namespaces[1] at line 22",
        "whitelist.yaml:24:9: never_delete.kubernetes.labels[0]: bad label selector \"team=\": expected a value for `team`, found the end",
        "whitelist.yaml:25:19: never_delete.kubernetes.labels[1].selector: empty value",
        "whitelist.yaml:26:9: never_delete.kubernetes.labels[2]: missing `selector`",
        "whitelist.yaml:27:3: never_delete: unknown key `extra`, expected one of: accounts, aws_resources, tags, kubernetes",
    ];
    // The timestamp message ends with jiff's own explanation; compare its prefix only.
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (g, e) in got.iter().zip(expected) {
        assert!(g.starts_with(e), "got:      {g}\nexpected: {e}");
    }
}

#[test]
fn the_error_display_lists_every_problem_one_per_line() {
    let err = Whitelist::from_yaml_str(
        "never_delete:\n  accounts: [\"1\"]\n  kubernetes: {namespaces: [A]}\n",
        "w.yaml",
    )
    .unwrap_err();
    assert_eq!(err.kind(), "whitelist_invalid");
    assert_eq!(
        err.to_string(),
        "w.yaml:2:14: never_delete.accounts[0]: account id \"1\" is not 12 digits\n\
         w.yaml:3:29: never_delete.kubernetes.namespaces[0]: \"A\" is not a valid namespace name (at most 63 characters: lowercase letters, digits and `-`, starting and ending with a letter or digit)"
    );
    assert!(err.problems().iter().all(|p| p.severity == Severity::Error));
}

#[test]
fn yaml_syntax_errors_and_duplicate_keys_are_located() {
    assert_eq!(
        problems("never_delete:\n  tags: [\n"),
        ["whitelist.yaml:2:9: unclosed bracket '['"]
    );
    assert_eq!(
        problems("never_delete:\n  tags: []\n  tags: []\n"),
        ["whitelist.yaml:3:3: duplicate mapping key: tags"]
    );
}

#[test]
fn empty_or_shapeless_files_are_refused() {
    assert_eq!(
        problems(""),
        ["whitelist.yaml:1:1: empty whitelist file: expected a `never_delete` mapping"]
    );
    assert_eq!(
        problems("never-delete: {}\n"),
        [
            "whitelist.yaml:1:1: unknown key `never-delete`, expected one of: never_delete",
            "whitelist.yaml:1:1: missing `never_delete` mapping"
        ]
    );
    assert_eq!(
        problems("- a\n"),
        ["whitelist.yaml:1:1: expected a mapping, found a list"]
    );
    assert_eq!(
        problems("never_delete:\n  aws_resources: \"arn:aws:s3:::x\"\n"),
        ["whitelist.yaml:2:18: never_delete.aws_resources: expected a list"]
    );
}

#[test]
fn empty_sections_are_an_empty_whitelist() {
    let w = wl("never_delete:\n  aws_resources:\n  kubernetes:\n");
    assert!(w.is_empty());
    assert!(wl("never_delete:\n").is_empty());
}

#[test]
fn an_unreadable_file_is_an_error_naming_the_path() {
    let err = Whitelist::load("/nonexistent/whitelist.yaml").unwrap_err();
    assert!(matches!(err, Error::Read { .. }));
    assert_eq!(err.kind(), "whitelist_unreadable");
    assert_eq!(
        err.to_string(),
        "cannot read whitelist file /nonexistent/whitelist.yaml"
    );
    assert!(std::error::Error::source(&err).is_some());
    assert!(err.problems().is_empty());
}

#[test]
fn load_names_the_file_in_problems() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wl.yaml");
    std::fs::write(&path, "never_delete:\n  accounts: [\"x\"]\n").unwrap();
    let err = Whitelist::load(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2:14: never_delete.accounts[0]: account id \"x\" is not 12 digits",
            path.display()
        )
    );
    std::fs::write(&path, EXAMPLE).unwrap();
    let w = Whitelist::load(&path).unwrap();
    assert_eq!(w.origin(), path.display().to_string());
}

#[test]
fn plain_scalars_keep_their_source_text() {
    // Unquoted numbers and booleans are read as written, so an account id keeps its leading
    // zero and `value: true` means the string "true".
    let w = wl(
        "never_delete:\n  accounts: [012345678901, 123456789012]\n  tags:\n    - {key: critical, value: true}\n    - {key: tier, value: 1.50}\n",
    );
    let accounts: Vec<&str> = w
        .rules(Section::Accounts)
        .iter()
        .map(|r| r.text())
        .collect();
    assert_eq!(accounts, ["012345678901", "123456789012"]);
    let tags: Vec<&str> = w.rules(Section::Tags).iter().map(|r| r.text()).collect();
    assert_eq!(tags, ["critical=true", "tier=1.50"]);
}

#[test]
fn plain_and_mapping_forms_are_the_same_rule() {
    let problems = problems(
        "never_delete:\n  aws_resources:\n    - \"arn:aws:s3:::b\"\n    - arn: \"arn:aws:s3:::b\"\n      reason: again\n",
    );
    assert_eq!(
        problems,
        [
            "whitelist.yaml:4:12: never_delete.aws_resources[1]: duplicate rule: same as never_delete.aws_resources[0] at line 3"
        ]
    );
}

#[test]
fn tag_rules_any_value_and_empty_value_are_distinct() {
    let w = wl(
        "never_delete:\n  tags:\n    - {key: k}\n    - {key: k, value: \"\"}\n    - {key: k, value: v}\n",
    );
    let texts: Vec<&str> = w.rules(Section::Tags).iter().map(|r| r.text()).collect();
    assert_eq!(texts, ["k", "k=", "k=v"]);
}

#[test]
fn expires_accepts_offsets_and_rejects_dates() {
    let w = wl(
        "never_delete:\n  aws_resources:\n    - {arn: \"arn:aws:s3:::b\", expires: \"2027-01-01T02:00:00+02:00\"}\n",
    );
    assert_eq!(
        w.rules(Section::AwsResources)[0].expires(),
        Some(ts("2027-01-01T00:00:00Z"))
    );
    let p = problems(
        "never_delete:\n  aws_resources:\n    - {arn: \"arn:aws:s3:::b\", expires: 2027-01-01}\n",
    );
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with("whitelist.yaml:3:40: never_delete.aws_resources[0].expires: bad expires timestamp \"2027-01-01\""),
        "{}",
        p[0]
    );
}

#[test]
fn selector_rules_in_plain_and_mapping_form() {
    let w = wl(
        "never_delete:\n  kubernetes:\n    labels:\n      - \"team=platform\"\n      - {selector: \"!canary,tier notin (dev)\", reason: r}\n",
    );
    assert_eq!(w.rules(Section::Labels).len(), 2);
    assert_eq!(w.rules(Section::Labels)[1].reason(), Some("r"));
}
