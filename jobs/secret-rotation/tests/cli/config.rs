//! The command line and the config: `--help` explains, a bad config is refused with file, line
//! and field before anything happens, and `--offline` classifies a snapshot.

use crate::bed::{Bed, Needs};
use crate::{NOW, run, text};

#[tokio::test]
async fn help_explains_the_job_and_hides_the_test_hook() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(dir.path(), &["--help"], &[]).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    // clap wraps the text: compare with single spaces.
    let flat = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for phrase in [
        "api-key 30d",
        "encryption-key 365d (manual",
        "journaled in the secret's Vault custom_metadata",
        "verified like kubectl rollout status",
        "--forced",
        "--offline",
        "dry run",
        "No secret value ever appears",
        "Exit codes",
    ] {
        assert!(flat.contains(phrase), "--help lacks {phrase:?}:\n{stdout}");
    }
    assert!(!stdout.contains("pause-after"), "the test hook is hidden");
}

#[tokio::test]
async fn bad_configs_exit_2_naming_file_line_and_field_before_anything_happens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = "  vault: {address: \"http://127.0.0.1:1\", token_env: NO_SUCH_TOKEN_VAR}\n";
    let cases: [(String, &str); 6] = [
        (
            "job:\n  policies:\n    database-password: {period: 60d}\n    encryption-key:\n      period: 400d\n      auto: true\n".into(),
            "config.yaml:6:7: job.policies.encryption-key.auto: encryption-key is rotated by hand only",
        ),
        (
            format!("job:\n{vault}  secrets:\n    - {{name: a, type: api-token, owner: a@b.io, vault: secret/a}}\n"),
            "config.yaml:4:",
        ),
        (
            format!("job:\n{vault}  secrets:\n    - name: a\n      type: api-key\n      owner: a@b.io\n      vault: secret/a\n      target: {{kind: keycloak, server: sso, client_id: x}}\n"),
            "config.yaml:8:32: job.secrets[0].target.server: no server \"sso\" in job.targets.keycloak",
        ),
        (
            format!("job:\n{vault}  secrets:\n    - name: a\n      type: database-password\n      owner: a@b.io\n      vault: secret/a\n      length: 60\n      target: {{kind: rds, instance: db, region: us-east-1}}\n"),
            "config.yaml:8:7: job.secrets[0].length: rds allows 8..=41 characters, got 60",
        ),
        (
            format!("job:\n{vault}  targets:\n    postgres:\n      db:\n        host: h\n        admin_user: a\n        admin_password: {{env: NO_SUCH_PASSWORD_VAR}}\n"),
            "config.yaml:8:9: job.targets.postgres.db.admin_password: the environment variable NO_SUCH_PASSWORD_VAR is not set",
        ),
        (
            format!("job:\n{vault}"),
            "job.vault: the environment variable NO_SUCH_TOKEN_VAR is not set",
        ),
    ];
    for (yaml, expected) in &cases {
        std::fs::write(dir.path().join("config.yaml"), yaml).expect("config");
        let out = run(dir.path(), &["--config", "config.yaml"], &[]).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{yaml}\n{stderr}");
        assert!(
            stderr.contains(expected),
            "{yaml}\nstderr lacks {expected:?}:\n{stderr}"
        );
        assert!(stdout.is_empty(), "no report for a refused run: {stdout}");
    }
    // --offline is a dry run only.
    std::fs::write(dir.path().join("config.yaml"), "job: {}\n").expect("config");
    std::fs::write(dir.path().join("snapshot.jsonl"), "").expect("offline");
    let out = run(
        dir.path(),
        &[
            "--config",
            "config.yaml",
            "--offline",
            "snapshot.jsonl",
            "--execute",
        ],
        &[("GOV_KAFKA_BROKERS", "127.0.0.1:1".to_string())],
    )
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--offline classifies a snapshot"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_offline_snapshot_is_classified_without_vault() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("config.yaml"),
        "kafka:\n  fallback: {file: events.jsonl}\njob: {}\n",
    )
    .expect("config");
    std::fs::write(
        dir.path().join("snapshot.jsonl"),
        "# name, type, owner, vault path, and what Vault said\n\
         {\"name\": \"a\", \"type\": \"api-key\", \"owner\": \"a@example.com\", \"vault\": \"secret/a\", \"created_time\": \"2026-10-01T00:00:00Z\"}\n\
         {\"name\": \"b\", \"type\": \"database-password\", \"owner\": \"b@example.com\", \"vault\": \"secret/b\", \"created_time\": \"2025-01-01T00:00:00Z\", \"custom_metadata\": {\"last_rotated\": \"2026-11-20T00:00:00Z\"}}\n\
         {\"name\": \"c\", \"type\": \"encryption-key\", \"owner\": \"c@example.com\", \"vault\": \"secret/c\", \"created_time\": \"2025-12-20T00:00:00Z\"}\n",
    )
    .expect("snapshot");
    let out = run(
        dir.path(),
        &[
            "--config",
            "config.yaml",
            "--offline",
            "snapshot.jsonl",
            "--now",
            NOW,
            "--output",
            "json",
        ],
        &[],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let event: serde_json::Value = serde_json::from_str(&stdout).expect("event");
    let by = |name: &str| {
        event["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["secret"] == name)
            .expect("finding")
            .clone()
    };
    assert_eq!(
        (by("a")["state"].as_str(), by("a")["action"].as_str()),
        (Some("overdue"), Some("rotate"))
    );
    assert_eq!(
        by("b")["state"],
        "ok",
        "last_rotated wins over created_time"
    );
    assert_eq!(by("b")["age_days"], 11);
    assert_eq!(
        (by("c")["state"].as_str(), by("c")["action"].as_str()),
        (Some("notice"), Some("manual"))
    );
    assert_eq!(event["summary"]["total_checked"], 3);
    // A bad line is refused with its line number.
    std::fs::write(dir.path().join("bad.jsonl"), "\n{\"name\": \"x\"}\n").expect("bad");
    let out = run(
        dir.path(),
        &["--config", "config.yaml", "--offline", "bad.jsonl"],
        &[],
    )
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("bad.jsonl:2:"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_missing_from_vault_is_an_error_of_that_secret_only() {
    let bed = Bed::start(Needs::default()).await;
    let config = bed.config("  secrets:\n    - {name: ghost, type: encryption-key, owner: g@example.com, vault: secret/nowhere}\n");
    let (event, out) = bed.run_ok(&config, false, &[], 1).await;
    assert_eq!(event["status"], "partial");
    assert!(
        event["errors"][0]
            .as_str()
            .unwrap_or("")
            .contains("secret/nowhere does not exist in Vault"),
        "{event:#}"
    );
    assert_eq!(out.status.code(), Some(1));
}
