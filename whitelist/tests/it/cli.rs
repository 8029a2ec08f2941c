//! The `whitelist` binary, run as a GitOps pipeline would run it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::EXAMPLE;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_whitelist"))
        .args(args)
        .output()
        .expect("run the whitelist binary");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

#[test]
fn check_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "whitelist.yaml", EXAMPLE);
    let p = path.to_str().unwrap();
    let r = run(&["check", p, "--now", "2026-06-01T00:00:00Z"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        format!(
            "{p}: valid, 15 rules\n  accounts                   1\n  aws_resources              5\n  tags                       3\n  kubernetes.namespaces      5\n  kubernetes.labels          1\n0 warnings\n"
        )
    );
    assert_eq!(r.stderr, "");
}

#[test]
fn check_reports_lapsed_rules_as_of_now() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "whitelist.yaml", EXAMPLE);
    let p = path.to_str().unwrap();
    let r = run(&["check", p, "--now", "2027-06-01T00:00:00Z"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout
            .contains("  aws_resources              5  (1 lapsed)\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.ends_with("1 warning\n"));
    assert_eq!(
        r.stderr,
        format!(
            "warning: {p}:11:12: never_delete.aws_resources[4]: protection lapsed at 2027-01-01T00:00:00Z: the rule no longer protects anything (remove it or extend `expires`)\n"
        )
    );
    let strict = run(&[
        "check",
        p,
        "--now",
        "2027-06-01T00:00:00Z",
        "--deny-warnings",
    ]);
    assert_eq!(strict.code, 1);
    assert_eq!(
        run(&[
            "check",
            p,
            "--now",
            "2026-06-01T00:00:00Z",
            "--deny-warnings"
        ])
        .code,
        0
    );
}

#[test]
fn check_an_invalid_file_prints_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(
        dir.path(),
        "bad.yaml",
        "never_delete:\n  aws_resources:\n    - \"arn:aws:ec2:instance\"\n  accounts: [\"1\"]\n  colour: red\n",
    );
    let p = path.to_str().unwrap();
    let r = run(&["check", p]);
    assert_eq!(r.code, 2);
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        format!(
            "error: {p}:3:7: never_delete.aws_resources[0]: ARN pattern has 4 parts, expected 6 (arn:partition:service:region:account:resource)\n\
             error: {p}:4:14: never_delete.accounts[0]: account id \"1\" is not 12 digits\n\
             error: {p}:5:3: never_delete: unknown key `colour`, expected one of: accounts, aws_resources, tags, kubernetes\n\
             {p}: invalid (3 problems): destructive jobs will refuse this whitelist\n"
        )
    );
}

#[test]
fn check_an_unreadable_file_names_it_and_exits_2() {
    let r = run(&["check", "/nonexistent/whitelist.yaml"]);
    assert_eq!(r.code, 2);
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr.starts_with("error: whitelist not loaded: destructive jobs will refuse to run: cannot read whitelist file /nonexistent/whitelist.yaml: "),
        "{}",
        r.stderr
    );
}

#[test]
fn check_warns_about_rules_that_can_never_match() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(
        dir.path(),
        "w.yaml",
        "never_delete:\n  aws_resources:\n    - \"arn:*:*:*:*:*\"\n    - \"arn:azure:ec2:*:*:x\"\n",
    );
    let r = run(&["check", path.to_str().unwrap()]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.ends_with("2 warnings\n"));
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].ends_with("pattern protects every resource of every service: is that intended?")
    );
    assert!(lines[1].contains("partition `azure` matches no AWS partition"));
}

#[test]
fn explain_names_the_protecting_rule_and_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "whitelist.yaml", EXAMPLE);
    let p = path.to_str().unwrap();
    let r = run(&[
        "explain",
        p,
        "--arn",
        "arn:aws:rds:eu-west-1:123456789012:db:stoa-prod-1",
        "--tag",
        "critical=true",
        "--now",
        "2026-06-01T00:00:00Z",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        format!(
            "protected: whitelist rule aws_resources[1] \"arn:aws:rds:*:*:db:stoa-prod-*\"\n  defined at {p}:6:7\n\
             also matched by: whitelist rule tags[0] \"critical=true\"\n  defined at {p}:16:12\n"
        )
    );
}

#[test]
fn explain_not_protected_mentions_lapsed_rules() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "whitelist.yaml", EXAMPLE);
    let p = path.to_str().unwrap();
    let r = run(&[
        "explain",
        p,
        "--arn",
        "arn:aws:s3:::stoa-migration-scratch",
        "--now",
        "2027-01-01T00:00:00Z",
    ]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stdout,
        format!(
            "not protected\nlapsed at 2027-01-01T00:00:00Z, no longer protecting: whitelist rule aws_resources[4] \"arn:aws:s3:::stoa-migration-scratch\" (reason: kept until the migration is signed off; owner: team-stoa)\n  defined at {p}:11:12\n"
        )
    );
    let r = run(&["explain", p, "--arn", "arn:aws:s3:::someone-elses-bucket"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "not protected\n"));
}

#[test]
fn explain_kubernetes_objects() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "whitelist.yaml", EXAMPLE);
    let p = path.to_str().unwrap();
    let r = run(&["explain", p, "--namespace", "vault"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout
            .starts_with("protected: whitelist rule kubernetes.namespaces[4] \"vault\"\n")
    );
    let r = run(&[
        "explain",
        p,
        "--namespace",
        "apps",
        "--kind",
        "Deployment",
        "--name",
        "api",
        "--namespace-label",
        "team=platform",
        "--namespace-label",
        "tier=core",
    ]);
    assert!(r.stdout.starts_with("protected: whitelist rule kubernetes.labels[0] \"team=platform,tier in (core,db)\" on its namespace's labels (reason: platform core services; owner: team-platform)\n"), "{}", r.stdout);
    let r = run(&[
        "explain",
        p,
        "--namespace",
        "apps",
        "--kind",
        "Deployment",
        "--name",
        "api",
        "--label",
        "team=platform",
    ]);
    assert_eq!(r.stdout, "not protected\n");
}

#[test]
fn explain_fail_closed_cases() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "whitelist.yaml", EXAMPLE);
    let p = path.to_str().unwrap();
    let r = run(&[
        "explain",
        p,
        "--arn",
        "arn:aws:ec2:eu-west-1:1:volume/v",
        "--tags-unreadable",
        "AccessDenied",
    ]);
    assert_eq!(
        r.stdout,
        "protected: tags could not be read, so the resource is treated as protected (AccessDenied)\n"
    );
    let r = run(&["explain", p, "--arn", "i-0abc"]);
    assert_eq!(
        r.stdout,
        "protected: ARN \"i-0abc\" is not arn:partition:service:region:account:resource, so the resource is treated as protected\n"
    );
}

#[test]
fn explain_with_a_bad_file_or_no_resource_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = file(dir.path(), "bad.yaml", "never_delete:\n  tags: [x]\n");
    let r = run(&["explain", bad.to_str().unwrap(), "--arn", "arn:aws:s3:::b"]);
    assert_eq!(r.code, 2);
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr
            .contains("never_delete.tags[0]: a tag rule is a mapping")
    );

    let good = file(dir.path(), "whitelist.yaml", EXAMPLE);
    let r = run(&["explain", good.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: describe the resource with --arn, --tag, --account, --namespace or --kind/--name\n"
    );
    // clap's own usage errors also exit 2.
    let r = run(&["explain", good.to_str().unwrap(), "--kind", "Pod"]);
    assert_eq!(r.code, 2);
    let r = run(&["explain", good.to_str().unwrap(), "--tag", "novalue"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("expected KEY=VALUE"));
    let r = run(&["check", good.to_str().unwrap(), "--now", "tomorrow"]);
    assert_eq!(r.code, 2);
}

#[test]
fn help_explains_the_commands() {
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("check"));
    assert!(r.stdout.contains("explain"));
    let r = run(&["check", "--help"]);
    assert!(r.stdout.contains("Exit status: 0 valid"));
    assert!(r.stdout.contains("--deny-warnings"));
    let r = run(&["explain", "--help"]);
    assert!(r.stdout.contains("--namespace-label"));
}
