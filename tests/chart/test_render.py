"""The chart renders, lints clean, validates against Kubernetes' schemas, passes checkov, and its
values schema rejects what it should."""

from __future__ import annotations

import json

import pytest
import yaml
from helm_python.chart import lint

from conftest import CHART, PROFILES, objects, profile_values, render, render_raw, run, tool

KUBE_VERSIONS = ["1.27.0", "1.30.0", "1.33.0"]

# Checkov findings the chart keeps on purpose; each must still be reported somewhere (so the
# list cannot rot), and nothing else may fail.
CHECKOV_ACCEPTED = {
    "CKV_K8S_35": "the chat webhook URL and PagerDuty key reach the jobs as environment variables "
    "(GOV_CHAT_WEBHOOK_URL, GOV_PAGERDUTY_ROUTING_KEY: the harness's interface), from Secrets",
    "CKV_K8S_38": "ttl-teardown, certificate-checker and ttl-snooze talk to the Kubernetes API; "
    "every other job gets no token (automountServiceAccountToken: false)",
    "CKV2_K8S_5": "certificate-checker lists Secrets in all namespaces to find TLS certificates; "
    "RBAC cannot narrow a list to one Secret type",
}
# Only where the image is given by tag (allowed: "image by tag or digest"); a digest pins it and
# makes both pass (the everything profile).
CHECKOV_ACCEPTED_BY_TAG = {
    "CKV_K8S_43": "image by tag",
    "CKV_K8S_15": "a tag with IfNotPresent is not pulled again when the tag moves; pin by digest",
}


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_every_profile_renders_objects(profile):
    objs = render(profile_values(profile))
    kinds = {o["kind"] for o in objs}
    assert {"CronJob", "ConfigMap", "ServiceAccount", "ClusterRole"} <= kinds, kinds


def test_lint_has_no_finding_of_severity_warning_or_above():
    # Strict mode alone lets severity-2 findings (deprecated APIs) through: check each message.
    for profile in [None, *PROFILES]:
        values = profile_values(profile) if profile else None
        report = lint(str(CHART), values, strict=True)
        assert report["total_charts_linted"] == 1, report
        bad = [m for m in report["messages"] if m["severity"] >= 2]
        assert not bad and not report["errors"], (profile, bad, report["errors"])


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_every_object_validates_strictly_against_kubernetes(tmp_path, profile, version):
    objs = render(profile_values(profile))
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(objs, sort_keys=False))
    out = run([tool("kubernetes-validate"), "-k", version, "--strict", str(path)])
    lines = (out.stdout + out.stderr).splitlines()
    errors = [l for l in lines if l.startswith("ERROR")]
    warnings = [l for l in lines if l.startswith("WARN")]
    # CRDs have no schema in kubernetes-validate; nothing else may be skipped.
    assert all("monitoring.coreos.com/v1" in w for w in warnings), warnings
    if profile.stem == "sharded-values" and version == "1.27.0":
        # backoffLimitPerIndex (Indexed Jobs) arrived in 1.28 (beta 1.29): sharding needs 1.29+
        # (README, values.yaml). That field must be the only complaint.
        assert len(errors) == 1 and "'backoffLimitPerIndex' was unexpected" in errors[0], errors
        return
    assert not errors, "\n".join(errors)
    validated = [l for l in lines if "validated" in l or l.startswith("INFO")]
    assert len(validated) >= len([o for o in objs if "monitoring.coreos.com" not in o["apiVersion"]]), lines


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_checkov_passes_but_for_the_accepted_findings(tmp_path, profile):
    objs = render(profile_values(profile))
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(objs, sort_keys=False))
    out = run([tool("checkov"), "-f", str(path), "--framework", "kubernetes", "--skip-download",
               "--compact", "--quiet", "-o", "json"])
    report = json.loads(out.stdout)
    report = report[0] if isinstance(report, list) else report
    # On a chart directory checkov reports 0 resources and passes: it must have seen ours.
    assert report["summary"]["resource_count"] >= len(objs) - 2, report["summary"]
    assert report["summary"]["resource_count"] > 0
    failed = {(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]}
    accepted = set(CHECKOV_ACCEPTED)
    if not profile_values(profile).get("image", {}).get("digest"):
        accepted |= set(CHECKOV_ACCEPTED_BY_TAG)
    unexpected = sorted(f for f in failed if f[0] not in accepted)
    assert not unexpected, unexpected


def test_accepted_checkov_findings_still_occur(tmp_path):
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(render(profile_values(CHART / "ci" / "everything-values.yaml")), sort_keys=False))
    out = run([tool("checkov"), "-f", str(path), "--framework", "kubernetes", "--skip-download",
               "--compact", "--quiet", "-o", "json"])
    report = json.loads(out.stdout)
    report = report[0] if isinstance(report, list) else report
    seen = {c["check_id"] for c in report["results"]["failed_checks"]}
    assert set(CHECKOV_ACCEPTED) <= seen, f"accepted but no longer reported: {set(CHECKOV_ACCEPTED) - seen}"


# ---------------------------------------------------------------------------------------------
# values.schema.json


BAD_VALUES = {
    "typo at the top": ({"imagee": {}}, "additional properties 'imagee' not allowed"),
    "typo in a job": ({"jobs": {"ttl-teardown": {"schedules": {"hourly": {"schedule": "0 * * * *"}}, "exectue": True}}},
                      "'exectue' not allowed"),
    "typo in the shared config": ({"config": {"kafka": {"broker": ["k:9092"]}}}, "'broker' not allowed"),
    "string for an integer": ({"jobDefaults": {"backoffLimit": "2"}}, "got string, want integer"),
    "negative integer": ({"jobDefaults": {"activeDeadlineSeconds": 0}}, "minimum"),
    "string for a boolean": ({"jobs": {"ttl-teardown": {"schedules": {"h": {"schedule": "0 * * * *"}}, "execute": "true"}}},
                             "want boolean"),
    "bad cron: words": ({"jobs": {"ttl-teardown": {"schedules": {"hourly": {"schedule": "every hour"}}}}}, "does not match pattern"),
    "bad cron: minute 61": ({"jobs": {"ttl-teardown": {"schedules": {"hourly": {"schedule": "61 * * * *"}}}}}, "does not match pattern"),
    "bad cron: four fields": ({"jobs": {"ttl-teardown": {"schedules": {"hourly": {"schedule": "0 * * *"}}}}}, "does not match pattern"),
    "bad digest": ({"image": {"repository": "r.example/x", "digest": "sha256:abc"}}, "does not match pattern"),
    "wildcard verb": ({"jobs": {"ttl-teardown": {"schedules": {"h": {"schedule": "0 * * * *"}},
                       "rbac": {"create": True, "clusterRules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]}}}},
                      "value must be one of"),
    "wildcard resource": ({"jobs": {"ttl-teardown": {"schedules": {"h": {"schedule": "0 * * * *"}},
                           "rbac": {"create": True, "clusterRules": [{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}]}}}},
                          "does not match pattern"),
    "inline SMTP password": ({"config": {"notify": {"smtp": {"host": "h", "from": "a@b.c", "password": "hunter2"}}}},
                             "'password' not allowed"),
    "inline chat webhook": ({"config": {"notify": {"chat": {"webhook_url": "https://hooks.example/x"}}}}, "'chat' not allowed"),
    "unknown secret": ({"jobDefaults": {"secrets": ["awsKeys"]}}, "value must be one of"),
    "bad renderMode": ({"monitoring": {"prometheusRule": {"renderMode": "sometimes"}}}, "value must be one of"),
    "job without schedules": ({"jobs": {"new-job": {"binary": "ttl-teardown"}}}, "missing property 'schedules'"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES), ids=str)
def test_the_schema_rejects(case):
    values, message = BAD_VALUES[case]
    with pytest.raises(Exception) as err:
        render_raw(values)
    assert "values don't meet the specifications of the schema" in str(err.value), err.value
    assert message in str(err.value), err.value


def test_the_schema_allows_global_and_every_profile():
    render_raw({"global": {"imageRegistry": "r.example", "anything": {"nested": 1}}})
    for p in PROFILES:
        render_raw(profile_values(p))


def test_objects_are_only_what_the_values_ask_for():
    assert objects(render_raw({"jobs": {"ttl-teardown": {"enabled": False, "schedules": {"h": {"schedule": "0 * * * *"}}},
                                        "certificate-checker": {"enabled": False, "schedules": {"d": {"schedule": "0 6 * * *"}}}}})) == []
