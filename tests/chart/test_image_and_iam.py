"""The Dockerfile (hadolint, and what it must hold) and the IAM policy documents."""

from __future__ import annotations

import json
import re

from conftest import CHART, REPO, run, tool

IAM = CHART / "iam"

# Which actions each document grants is checked against the code, not a list kept here: the Rust
# tests `iam::statements` of ttl-teardown, ttl-snooze, usage-reporting and secret-rotation (through
# `common::iam`) compare every statement with the actions the
# inventory's kinds declare (`inventory::kinds::iam_actions`), and the inventory's provider test
# `actions::every_kind_calls_exactly_the_iam_actions_it_declares` compares those with the requests
# moto receives. What is checked here is the documents' shape and the few rules about placement.
# Tag writes and removals (DeleteTags, RemoveTags, UntagRole, PutBucketTagging) are not destructive.
DESTRUCTIVE = re.compile(r":(?!.*Tag)(Delete|Terminate|Detach|Remove|Abort|Put)")


def policy(name: str) -> dict:
    return json.loads((IAM / f"{name}.json").read_text())


def actions(doc: dict) -> set[str]:
    return {a for s in doc["Statement"] for a in s["Action"]}


def test_every_workload_has_a_plain_policy_document_with_sorted_actions():
    names = sorted(p.stem for p in IAM.glob("*.json"))
    assert names == [
        "certificate-checker", "secret-rotation", "ttl-snooze", "ttl-teardown", "usage-reporting",
    ]
    for name in names:
        doc = policy(name)
        assert set(doc) == {"Version", "Statement"} and doc["Version"] == "2012-10-17", name
        for s in doc["Statement"]:
            assert s["Effect"] == "Allow" and isinstance(s["Action"], list), (name, s)
            assert s["Action"] == sorted(s["Action"]), (name, s["Sid"])
            assert not [a for a in s["Action"] if "*" in a], (name, s["Sid"])


def test_ttl_teardown_writes_objects_only_to_the_audit_archive_and_assumes_only_the_target_role():
    doc = policy("ttl-teardown")
    (put,) = [s for s in doc["Statement"] if "s3:PutObject" in s["Action"]]
    assert put["Action"] == ["s3:PutObject"], "PutObject only on the audit archive"
    assert put["Resource"].startswith("arn:aws:s3:::${audit_archive_bucket}/")
    (assume,) = [s for s in doc["Statement"] if "sts:AssumeRole" in s["Action"]]
    assert assume["Action"] == ["sts:AssumeRole"]
    assert assume["Resource"] == "arn:aws:iam::*:role/${target_role_name}"
    wildcard = [s for s in doc["Statement"] if s["Resource"] == "*"]
    assert {"ec2:TerminateInstances", "s3:DeleteObjectVersion", "iam:DeleteRole"} <= {
        a for s in wildcard for a in s["Action"]
    }


def test_ttl_snooze_reads_and_tags_but_never_deletes():
    snooze = actions(policy("ttl-snooze"))
    assert snooze < actions(policy("ttl-teardown"))
    assert not [a for a in snooze if DESTRUCTIVE.search(a)], snooze
    assert {"ec2:CreateTags", "rds:AddTagsToResource", "ec2:DescribeInstances"} <= snooze


def test_usage_reporting_only_reads():
    doc = policy("usage-reporting")
    usage = actions(doc)
    assert not [a for a in usage if DESTRUCTIVE.search(a) or "Tag" in a.split(":")[1]
                and not a.split(":")[1].startswith(("Get", "List", "Describe"))], usage
    (assume,) = [s for s in doc["Statement"] if "sts:AssumeRole" in s["Action"]]
    assert assume["Resource"] == "arn:aws:iam::*:role/${target_role_name}"
    read = {a for s in policy("ttl-teardown")["Statement"] if s["Sid"] == "ListAndDescribe"
            for a in s["Action"]}
    assert usage - {"sts:AssumeRole"} == read, "it lists what the TTL job lists, to count it"


def test_secret_rotation_touches_only_rds_instances():
    doc = policy("secret-rotation")
    (rds,) = [s for s in doc["Statement"] if s["Sid"] == "SetRdsMasterPasswords"]
    assert rds["Action"] == ["rds:DescribeDBInstances", "rds:ModifyDBInstance"]
    assert rds["Resource"] == "arn:aws:rds:*:*:db:*", "DB instances only, never clusters or snapshots"
    assert actions(doc) == {"rds:DescribeDBInstances", "rds:ModifyDBInstance", "sts:AssumeRole"}


def test_certificate_checker_calls_no_aws():
    assert policy("certificate-checker")["Statement"] == []


def test_hadolint_passes_on_the_dockerfile():
    out = run([tool("hadolint"), "--failure-threshold", "info", str(REPO / "Dockerfile")])
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_image_runs_every_binary_as_non_root_without_a_shell():
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(stages) == 2, "multi-stage: build, then a runtime without the toolchain"
    assert stages[1].startswith("gcr.io/distroless/cc-debian12"), "no shell at run time; glibc, libssl3, CA roots"
    assert re.search(r"^USER 65532:65532$", text, re.M)
    # Every binary of the workspace: the chart's workloads and the operator tools.
    from test_workspace import workspace_binaries
    for binary in workspace_binaries():
        assert f"target/release/{binary}" in text, binary
    assert "--locked" in text
    # The chart's pods run as this UID.
    values = (CHART / "values.yaml").read_text()
    assert values.count("runAsUser: 65532") == 2
