"""The Dockerfile (hadolint, and what it must hold) and the IAM policy documents."""

from __future__ import annotations

import json
import re

from conftest import CHART, REPO, run, tool

IAM = CHART / "iam"

# What ttl-teardown calls once the inventory covers every kind (the lead's list for the chart;
# a Rust test will compare these files with what each resource kind declares in code).
TTL_TEARDOWN_ACTIONS = set("""
sts:GetCallerIdentity sts:AssumeRole
ec2:DescribeInstances ec2:DescribeVolumes ec2:DescribeSecurityGroups ec2:DescribeNetworkInterfaces
ec2:CreateTags ec2:TerminateInstances ec2:DeleteVolume ec2:DeleteSecurityGroup
rds:DescribeDBInstances rds:DescribeDBSnapshots rds:ListTagsForResource rds:AddTagsToResource
rds:DeleteDBInstance rds:DeleteDBSnapshot
iam:ListRoles iam:ListRoleTags iam:GetRole iam:TagRole iam:ListAttachedRolePolicies
iam:DetachRolePolicy iam:ListRolePolicies iam:DeleteRolePolicy iam:ListInstanceProfilesForRole
iam:RemoveRoleFromInstanceProfile iam:DeleteInstanceProfile iam:DeleteRole
autoscaling:DescribeAutoScalingGroups autoscaling:CreateOrUpdateTags autoscaling:DeleteAutoScalingGroup
elasticloadbalancing:DescribeLoadBalancers elasticloadbalancing:DescribeTargetGroups
elasticloadbalancing:DescribeListeners elasticloadbalancing:DescribeTags elasticloadbalancing:AddTags
elasticloadbalancing:DeleteLoadBalancer elasticloadbalancing:DeleteListener elasticloadbalancing:DeleteTargetGroup
s3:ListAllMyBuckets s3:GetBucketLocation s3:GetBucketTagging s3:PutBucketTagging s3:ListBucketVersions
s3:ListBucketMultipartUploads s3:AbortMultipartUpload s3:DeleteObjectVersion s3:DeleteObject
s3:DeleteBucket s3:PutObject
lambda:ListFunctions lambda:ListTags lambda:TagResource lambda:DeleteFunction lambda:GetFunction
eks:ListClusters eks:ListNodegroups eks:DescribeNodegroup eks:TagResource eks:DeleteNodegroup
""".split())
DESTRUCTIVE = re.compile(r":(Delete|Terminate|Detach|Remove|Abort|Put(?!BucketTagging))")


def policy(name: str) -> dict:
    return json.loads((IAM / f"{name}.json").read_text())


def actions(doc: dict) -> set[str]:
    return {a for s in doc["Statement"] for a in s["Action"]}


def test_every_workload_has_a_plain_policy_document_with_sorted_actions():
    names = sorted(p.stem for p in IAM.glob("*.json"))
    assert names == ["certificate-checker", "ttl-snooze", "ttl-teardown"]
    for name in names:
        doc = policy(name)
        assert set(doc) == {"Version", "Statement"} and doc["Version"] == "2012-10-17", name
        for s in doc["Statement"]:
            assert s["Effect"] == "Allow" and isinstance(s["Action"], list), (name, s)
            assert s["Action"] == sorted(s["Action"]), (name, s["Sid"])
            assert not [a for a in s["Action"] if "*" in a], (name, s["Sid"])


def test_ttl_teardown_may_call_exactly_what_it_calls():
    doc = policy("ttl-teardown")
    assert actions(doc) == TTL_TEARDOWN_ACTIONS, (actions(doc) ^ TTL_TEARDOWN_ACTIONS)
    (put,) = [s for s in doc["Statement"] if "s3:PutObject" in s["Action"]]
    assert put["Action"] == ["s3:PutObject"], "PutObject only on the audit archive"
    assert put["Resource"].startswith("arn:aws:s3:::${audit_archive_bucket}/")


def test_ttl_snooze_reads_and_tags_but_never_deletes():
    snooze = actions(policy("ttl-snooze"))
    assert snooze < TTL_TEARDOWN_ACTIONS
    assert not [a for a in snooze if DESTRUCTIVE.search(a)], snooze
    assert {"ec2:CreateTags", "rds:AddTagsToResource", "ec2:DescribeInstances"} <= snooze


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
