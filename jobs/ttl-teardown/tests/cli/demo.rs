use std::collections::BTreeMap;

use common::event::{ResultEvent, Status};

use crate::{DEMO_NOW, demo_copy, run, text};

#[tokio::test]
async fn the_demo_plans_exactly_the_expected_actions_in_dependency_order() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let config = demo_copy(cwd.path());
    let out = run(
        cwd.path(),
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--now",
            DEMO_NOW,
            "--output",
            "json",
        ],
        &[],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let event: ResultEvent = serde_json::from_str(&stdout).expect("stdout is the result event");
    assert!(event.dry_run);
    assert_eq!(event.status, Status::Success);
    assert_eq!(event.summary.total_checked, 15);

    let actions: BTreeMap<&str, (&str, &str)> = event
        .findings
        .iter()
        .map(|f| {
            (
                f.resource.as_str(),
                (
                    f.kind.as_str(),
                    f.fields["action"].as_str().expect("action"),
                ),
            )
        })
        .collect();
    let expected: BTreeMap<&str, (&str, &str)> = [
        (
            "arn:aws:ec2:us-east-1:111111111111:instance/i-0a1b2c3d4e5f60001",
            ("resource-expired", "delete"),
        ),
        (
            "arn:aws:ec2:us-east-1:111111111111:volume/vol-0a1b2c3d4e5f60001",
            ("resource-expired", "delete"),
        ),
        (
            "arn:aws:ec2:us-east-1:111111111111:security-group/sg-0a1b2c3d4e5f60001",
            ("resource-expired", "delete"),
        ),
        (
            "arn:aws:ec2:us-east-1:111111111111:instance/i-0b2000000000000002",
            ("resource-expiring", "warn-48h"),
        ),
        (
            "arn:aws:ec2:us-east-1:111111111111:instance/i-0c3000000000000003",
            ("resource-expiring", "warn-24h"),
        ),
        (
            "arn:aws:rds:us-east-1:111111111111:db:preview-orders",
            ("resource-expiring", "warn-24h"),
        ),
        (
            "arn:aws:ec2:us-east-1:111111111111:instance/i-0d4000000000000004",
            ("protected", "none"),
        ),
        (
            "arn:aws:rds:us-east-1:111111111111:db:analytics-scratch",
            ("protected", "none"),
        ),
        (
            "arn:aws:ec2:us-east-1:111111111111:instance/i-stoa-edge-01",
            ("protected", "none"),
        ),
        (
            "arn:aws:ec2:us-east-1:111111111111:instance/i-0e5000000000000005",
            ("protected", "none"),
        ),
        (
            "arn:aws:ec2:us-east-1:111111111111:instance/i-0f6000000000000006",
            ("tag-violation", "none"),
        ),
        (
            "k8s:deployment/preview-123/web",
            ("resource-expired", "delete"),
        ),
        ("k8s:preview-123", ("resource-expired", "delete")),
        ("k8s:kube-system", ("protected", "none")),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        actions, expected,
        "the fresh instance is not reported; everything else is"
    );

    // Instance first, then its volume and group; the deployment before its namespace.
    let waves = &event.details["deletion_waves"];
    let position = |id: &str| {
        waves
            .as_array()
            .expect("waves")
            .iter()
            .position(|w| w.as_array().expect("wave").iter().any(|x| x == id))
            .unwrap_or_else(|| panic!("{id} not in {waves}"))
    };
    let instance = position("arn:aws:ec2:us-east-1:111111111111:instance/i-0a1b2c3d4e5f60001");
    assert!(instance < position("arn:aws:ec2:us-east-1:111111111111:volume/vol-0a1b2c3d4e5f60001"));
    assert!(
        instance
            < position("arn:aws:ec2:us-east-1:111111111111:security-group/sg-0a1b2c3d4e5f60001")
    );
    assert!(position("k8s:deployment/preview-123/web") < position("k8s:preview-123"));

    // Why each guardrail spared its resource is in the event.
    let reason = |id: &str| {
        event
            .findings
            .iter()
            .find(|f| f.resource == id)
            .expect("finding")
            .fields["reason"]
            .as_str()
            .expect("reason")
            .to_string()
    };
    assert!(
        reason("arn:aws:ec2:us-east-1:111111111111:instance/i-stoa-edge-01")
            .contains("stoa core fleet")
    );
    assert!(
        reason("arn:aws:rds:us-east-1:111111111111:db:analytics-scratch").contains("restricted")
    );
    assert!(reason("k8s:kube-system").contains("kube-system"));

    // Cost avoided: m5.xlarge 0.192 $/h × 720 h = 138.24, plus 200 GB of EBS.
    assert_eq!(event.details["cost_avoided_by_project"]["checkout"], 154.02);

    // No broker configured: the result event and the other events went to the fallback file.
    let lines =
        std::fs::read_to_string(cwd.path().join("demo-events.jsonl")).expect("fallback file");
    let types: Vec<String> = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
        .map(|v| {
            v.get("event_type")
                .and_then(|t| t.as_str())
                .unwrap_or("job-result")
                .to_string()
        })
        .collect();
    assert_eq!(
        types.iter().filter(|t| *t == "resource-expiring").count(),
        3,
        "{types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| *t == "tag-violation").count(),
        1,
        "{types:?}"
    );
    assert_eq!(types.last().map(String::as_str), Some("job-result"));
}

#[tokio::test]
async fn the_table_names_every_column_and_the_order() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let config = demo_copy(cwd.path());
    let out = run(
        cwd.path(),
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--now",
            DEMO_NOW,
            "--output",
            "table",
        ],
        &[],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let header = stdout.lines().next().expect("a header line");
    for column in [
        "RESOURCE", "KIND", "OWNER", "PROJECT", "DEADLINE", "STAGE", "ACTION", "REASON",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert!(stdout.contains("would delete, in order:\n  1. arn:aws:ec2:us-east-1:111111111111:instance/i-0a1b2c3d4e5f60001"), "{stdout}");
    assert!(stdout.contains("dry run success"), "{stdout}");
}

#[tokio::test]
async fn help_explains_the_flags_and_exit_codes() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let out = run(cwd.path(), &["--help"], &[]).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    for needle in [
        "--execute",
        "--now",
        "--output",
        "--inventory",
        "--config",
        "Exit codes",
        "dry run",
    ] {
        assert!(stdout.contains(needle), "--help lacks {needle}: {stdout}");
    }
}
