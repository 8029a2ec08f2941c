"""Assertions on the rendered objects themselves: restricted pods, least-privilege RBAC, the
exit-2 rule, dry run by default, zero values, sharding, IRSA, secrets only by reference."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import (CHART, NAMESPACE, PROFILES, by_name, notes, of_kind, pod_templates,
                      profile_values, render, render_raw)

EVERYTHING = CHART / "ci" / "everything-values.yaml"
SHARDED = CHART / "ci" / "sharded-values.yaml"
IRSA = CHART / "ci" / "irsa-values.yaml"
PREFIX = "gov-governance-jobs"


def cronjobs(objs):
    return {o["metadata"]["name"]: o for o in of_kind(objs, "CronJob")}


def container_of(cronjob):
    (c,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return c


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_every_pod_meets_the_restricted_pod_security_standard(rendered_profiles, profile):
    objs = rendered_profiles[profile.name]
    pods = pod_templates(objs)
    assert pods
    for name, spec in pods:
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0, name
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["enableServiceLinks"] is False, name
        assert isinstance(spec["automountServiceAccountToken"], bool), name
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), name
        for v in spec["volumes"]:
            assert set(v) & {"configMap", "secret", "emptyDir", "projected"}, (name, v)
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["runAsNonRoot"] is True, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert not sc.get("privileged"), name
            assert c["resources"]["limits"]["memory"], name


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_rbac_has_no_wildcard_and_no_secret_objects_are_rendered(rendered_profiles, profile):
    objs = rendered_profiles[profile.name]
    assert not of_kind(objs, "Secret"), "the chart never holds a secret"
    for role in of_kind(objs, "ClusterRole") + of_kind(objs, "Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in " ".join(rule.get(field, [])), (role["metadata"]["name"], rule)


def rules_of(objs, kind, name):
    return [(tuple(r["apiGroups"]), tuple(r["resources"]), tuple(r.get("resourceNames", [])), tuple(r["verbs"]))
            for r in by_name(objs, kind, name)["rules"]]


def test_each_job_gets_exactly_the_verbs_it_uses(rendered_profiles):
    objs = rendered_profiles["everything-values.yaml"]
    assert rules_of(objs, "ClusterRole", f"{PREFIX}-ttl-teardown") == [
        (("",), ("namespaces", "services", "configmaps"), (), ("get", "list", "patch", "delete")),
        (("apps",), ("deployments",), (), ("get", "list", "patch", "delete")),
    ]
    assert rules_of(objs, "ClusterRole", f"{PREFIX}-certificate-checker") == [
        (("",), ("secrets",), (), ("list",)),
    ]
    snooze = rules_of(objs, "ClusterRole", f"{PREFIX}-ttl-snooze")
    assert all("delete" not in verbs for *_, verbs in snooze), snooze
    # The run lock: get/update on that one Lease; create (unrestrictable by name) in its
    # namespace only — the one the config names.
    lock_role = by_name(objs, "Role", f"{PREFIX}-ttl-teardown-lock")
    config = yaml.safe_load(by_name(objs, "ConfigMap", f"{PREFIX}-ttl-teardown")["data"]["config.yaml"])
    assert lock_role["metadata"]["namespace"] == config["job"]["lock"]["namespace"] == NAMESPACE
    assert rules_of(objs, "Role", f"{PREFIX}-ttl-teardown-lock") == [
        (("coordination.k8s.io",), ("leases",), (config["job"]["lock"]["name"],), ("get", "update")),
        (("coordination.k8s.io",), ("leases",), (), ("create",)),
    ]
    binding = by_name(objs, "RoleBinding", f"{PREFIX}-ttl-teardown-lock")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": f"{PREFIX}-ttl-teardown", "namespace": NAMESPACE}]
    crb = by_name(objs, "ClusterRoleBinding", f"{PREFIX}-certificate-checker")
    assert crb["roleRef"]["name"] == f"{PREFIX}-certificate-checker"
    assert crb["subjects"][0]["name"] == f"{PREFIX}-certificate-checker"


def test_a_lock_named_in_the_config_is_the_one_granted():
    objs = render({"jobs": {"ttl-teardown": {"config": {"job": {"lock": {"namespace": "locks", "name": "ttl-prod"}}}}}})
    role = by_name(objs, "Role", f"{PREFIX}-ttl-teardown-lock")
    assert role["metadata"]["namespace"] == "locks"
    assert role["rules"][0]["resourceNames"] == ["ttl-prod"]
    config = yaml.safe_load(by_name(objs, "ConfigMap", f"{PREFIX}-ttl-teardown")["data"]["config.yaml"])
    assert config["job"]["lock"] == {"namespace": "locks", "name": "ttl-prod", "duration": "15m"}


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_every_cronjob_fails_at_once_on_exit_2_and_ignores_disruptions(rendered_profiles, profile):
    crons = cronjobs(rendered_profiles[profile.name])
    assert crons
    for name, cj in crons.items():
        spec = cj["spec"]
        assert spec["concurrencyPolicy"] == "Forbid", name
        job = spec["jobTemplate"]["spec"]
        assert job["template"]["spec"]["restartPolicy"] == "Never", name
        rules = job["podFailurePolicy"]["rules"]
        # Sharded (Indexed): a refused shard fails its index only, the other shards go on.
        action = "FailIndex" if job.get("completionMode") == "Indexed" else "FailJob"
        assert {"action": action, "onExitCodes": {"containerName": "job", "operator": "In", "values": [2]},
                "onPodConditions": []} in rules, name
        assert {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]} in rules, name
        for field in ("schedule", "timeZone", "suspend", "startingDeadlineSeconds",
                      "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
            assert field in spec, (name, field)
        assert "activeDeadlineSeconds" in job and ("backoffLimit" in job or "backoffLimitPerIndex" in job), name


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_only_jobs_with_execute_true_get_the_execute_flag(rendered_profiles, profile):
    values = profile_values(profile)
    for name, cj in cronjobs(rendered_profiles[profile.name]).items():
        job = cj["metadata"]["labels"]["app.kubernetes.io/component"]
        wants = values.get("jobs", {}).get(job, {}).get("execute", values.get("jobDefaults", {}).get("execute", False))
        args = container_of(cj)["args"]
        assert ("--execute" in args) == wants, (name, args)
        assert args[:2] == ["--config", "/etc/governance/config.yaml"], args


def test_defaults_are_dry_runs_and_notes_say_so_loudly():
    objs = render()
    assert all("--execute" not in container_of(cj)["args"] for cj in of_kind(objs, "CronJob"))
    text = notes()
    assert "DRY RUN: no job runs with --execute" in text
    assert "ACTING" not in text


def test_notes_name_every_acting_job():
    text = notes(profile_values(EVERYTHING))
    assert "!!! ACTING: these jobs run with --execute" in text
    assert "!!!   - ttl-teardown" in text and "!!!   - certificate-checker" in text
    assert "ttl-snooze serves snooze links and WRITES" in text
    assert "DRY RUN" not in text


def test_zero_values_and_per_schedule_settings_survive_templating(rendered_profiles):
    crons = cronjobs(rendered_profiles["everything-values.yaml"])
    ttl = crons[f"{PREFIX}-ttl-teardown-hourly"]
    assert ttl["spec"]["startingDeadlineSeconds"] == 0
    assert ttl["spec"]["successfulJobsHistoryLimit"] == 0
    assert ttl["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    assert ttl["spec"]["suspend"] is False
    cert = crons[f"{PREFIX}-certificate-checker-daily"]
    assert cert["spec"]["suspend"] is True
    assert cert["spec"]["timeZone"] == "Europe/Berlin"
    assert cert["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 1800
    # And a false per-schedule suspend overrides a true job-wide one.
    objs = render({"jobs": {"ttl-teardown": {"suspend": True, "schedules": {"hourly": {"schedule": "0 * * * *", "suspend": False}}}}})
    assert cronjobs(objs)[f"{PREFIX}-ttl-teardown-hourly"]["spec"]["suspend"] is False


def test_a_job_with_two_schedules_gets_two_cronjobs_with_their_own_args():
    objs = render({"jobs": {"certificate-checker": {"schedules": {
        "weekly": {"schedule": "0 2 * * 0"},
        "forced": {"schedule": "0 3 1 * *", "args": ["--forced"]},
        "off": {"schedule": "0 4 * * *", "enabled": False}}}}})
    crons = cronjobs(objs)
    weekly, monthly = crons[f"{PREFIX}-certificate-checker-weekly"], crons[f"{PREFIX}-certificate-checker-forced"]
    assert f"{PREFIX}-certificate-checker-off" not in crons
    assert weekly["spec"]["schedule"] == "0 2 * * 0" and "--forced" not in container_of(weekly)["args"]
    assert monthly["spec"]["schedule"] == "0 3 1 * *" and container_of(monthly)["args"][-1] == "--forced"


def test_a_cronjob_name_too_long_for_kubernetes_is_refused():
    with pytest.raises(Exception, match="Kubernetes allows 52"):
        render_raw({"fullnameOverride": "a-very-long-release-name-for-governance", "jobs": {"certificate-checker": {
            "schedules": {"every-day-at-six": {"schedule": "0 6 * * *"}}}}})


def test_sharding_is_an_indexed_job_told_its_shard_count(rendered_profiles):
    ttl = cronjobs(rendered_profiles["sharded-values.yaml"])[f"{PREFIX}-ttl-teardown-hourly"]
    job = ttl["spec"]["jobTemplate"]["spec"]
    assert (job["completionMode"], job["completions"], job["parallelism"], job["backoffLimitPerIndex"]) == ("Indexed", 4, 2, 1)
    assert "backoffLimit" not in job
    env = {e["name"]: e for e in container_of(ttl).get("env", [])}
    assert env["GOV_SHARD_COUNT"] == {"name": "GOV_SHARD_COUNT", "value": "4"}
    cert = cronjobs(rendered_profiles["sharded-values.yaml"])[f"{PREFIX}-certificate-checker-daily"]
    assert "completionMode" not in cert["spec"]["jobTemplate"]["spec"]
    assert "sharded x4" in notes(profile_values(SHARDED))


def test_irsa_annotates_each_service_account_with_its_own_role(rendered_profiles):
    objs = rendered_profiles["irsa-values.yaml"]
    arn = lambda n: by_name(objs, "ServiceAccount", f"{PREFIX}-{n}")["metadata"].get("annotations", {}).get("eks.amazonaws.com/role-arn")
    assert arn("ttl-teardown") == "arn:aws:iam::111111111111:role/governance-ttl-teardown"
    assert arn("certificate-checker") == "arn:aws:iam::111111111111:role/governance-certificate-checker"
    assert arn("ttl-snooze") == "arn:aws:iam::111111111111:role/governance-ttl-snooze"
    sa = by_name(objs, "ServiceAccount", f"{PREFIX}-certificate-checker")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/sts-regional-endpoints"] == "true"
    # Each workload runs as its own ServiceAccount.
    names = {spec["serviceAccountName"] for _, spec in pod_templates(objs)}
    assert names == {f"{PREFIX}-ttl-teardown", f"{PREFIX}-certificate-checker", f"{PREFIX}-ttl-snooze"}


def test_image_by_tag_or_by_digest():
    tagged = of_kind(render({"image": {"repository": "r.example/gov", "tag": "1.2.3"}}), "CronJob")[0]
    assert container_of(tagged)["image"] == "r.example/gov:1.2.3"
    default = of_kind(render(), "CronJob")[0]
    assert container_of(default)["image"].endswith(":0.0.0"), "the chart's appVersion"
    digest = "sha256:" + "ab" * 32
    pinned = of_kind(render({"image": {"repository": "r.example/gov", "tag": "1.2.3", "digest": digest}}), "CronJob")[0]
    assert container_of(pinned)["image"] == f"r.example/gov@{digest}"


def test_secrets_arrive_by_reference_and_every_secret_path_in_a_config_is_mounted(rendered_profiles):
    objs = rendered_profiles["everything-values.yaml"]
    for name, spec in pod_templates(objs):
        mounts = {m["mountPath"] for c in spec["containers"] for m in c["volumeMounts"]}
        (c,) = spec["containers"]
        for e in c.get("env", []):
            if e["name"] in ("GOV_CHAT_WEBHOOK_URL", "GOV_PAGERDUTY_ROUTING_KEY"):
                assert set(e["valueFrom"]) == {"secretKeyRef"}, e
        config_map = next(v["configMap"]["name"] for v in spec["volumes"] if v["name"] == "config")
        text = by_name(objs, "ConfigMap", config_map)["data"]["config.yaml"]
        for path in re.findall(r"/var/run/secrets/governance/[\w./-]+", text):
            if name.endswith("ttl-snooze") and "snooze-keys" not in path:
                continue  # the service sends no mail and reads no Vault: only its keys
            assert any(path == m or path.startswith(m + "/") for m in mounts), (name, path, mounts)
    ttl = container_of(cronjobs(objs)[f"{PREFIX}-ttl-teardown-hourly"])
    assert {e["name"] for e in ttl["env"]} >= {"GOV_CHAT_WEBHOOK_URL", "GOV_PAGERDUTY_ROUTING_KEY"}
    for cm in of_kind(objs, "ConfigMap"):
        for text in cm["data"].values():
            assert "hunter2" not in text and "webhook_url" not in text and "routing_key" not in text


def test_a_secret_without_a_name_is_not_mounted(rendered_profiles):
    for _, spec in pod_templates(rendered_profiles["defaults-values.yaml"]):
        assert {v["name"] for v in spec["volumes"]} == {"config", "tmp"}
        assert not spec["containers"][0].get("env")


def test_snooze_is_two_replicas_with_probes_pdb_service_and_only_v1_public(rendered_profiles):
    objs = rendered_profiles["everything-values.yaml"]
    dep = by_name(objs, "Deployment", f"{PREFIX}-ttl-snooze")
    assert dep["spec"]["replicas"] == 2
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["ttl-snooze"]
    assert c["args"][:4] == ["--config", "/etc/governance/config.yaml", "--listen", "0.0.0.0:8080"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == f"{PREFIX}-ttl-teardown", "the job's own config"
    assert volumes["snooze-keys"]["secret"]["secretName"] == "governance-snooze-keys"
    assert by_name(objs, "PodDisruptionBudget", f"{PREFIX}-ttl-snooze")["spec"]["minAvailable"] == 1
    svc = by_name(objs, "Service", f"{PREFIX}-ttl-snooze")
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    ing = by_name(objs, "Ingress", f"{PREFIX}-ttl-snooze")
    assert [p["path"] for p in ing["spec"]["rules"][0]["http"]["paths"]] == ["/v1/"]
    sm = by_name(objs, "ServiceMonitor", f"{PREFIX}-ttl-snooze")
    assert sm["spec"]["endpoints"][0]["path"] == "/metrics"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert {"targetLabel": "governance_service", "replacement": "ttl-snooze"} in sm["spec"]["endpoints"][0]["relabelings"]


def test_snooze_refuses_to_render_without_its_config():
    with pytest.raises(Exception, match="job.snooze is required"):
        render_raw({"snooze": {"enabled": True}})


@pytest.mark.parametrize("mode,present", [("alwaysRender", True), ("skipIfMissing", False)])
def test_render_mode_of_monitoring_objects(mode, present):
    # The SDK renders with no CRDs in its capabilities, like a cluster without prometheus-operator.
    objs = render({"snooze": profile_values(EVERYTHING)["snooze"], "config": profile_values(EVERYTHING)["config"],
                   "secrets": profile_values(EVERYTHING)["secrets"],
                   "jobs": {"ttl-teardown": profile_values(EVERYTHING)["jobs"]["ttl-teardown"]},
                   "monitoring": {"prometheusRule": {"enabled": True, "renderMode": mode},
                                  "serviceMonitor": {"enabled": True, "renderMode": mode},
                                  "dashboards": {"enabled": True, "renderMode": mode}}})
    assert bool(of_kind(objs, "PrometheusRule")) == present
    assert bool(of_kind(objs, "ServiceMonitor")) == present
    assert bool([o for o in of_kind(objs, "ConfigMap") if o["metadata"]["labels"].get("grafana_dashboard")]) == present


def test_fail_if_missing_fails_without_the_crd():
    with pytest.raises(Exception, match="renderMode failIfMissing"):
        render_raw({"monitoring": {"prometheusRule": {"enabled": True, "renderMode": "failIfMissing"}}})


def test_dashboards_are_configmaps_for_the_grafana_sidecar(rendered_profiles):
    dashboards = [o for o in of_kind(rendered_profiles["everything-values.yaml"], "ConfigMap")
                  if o["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert sorted(o["metadata"]["name"] for o in dashboards) == [
        f"{PREFIX}-dashboard-cost-savings", f"{PREFIX}-dashboard-governance-jobs"]
    for d in dashboards:
        assert d["metadata"]["labels"]["grafana_folder"] == "governance"
        (text,) = d["data"].values()
        assert (CHART / "files" / "dashboards" / next(iter(d["data"]))).read_text().strip() == text.strip()
