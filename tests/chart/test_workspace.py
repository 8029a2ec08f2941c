"""The chart is tied to the Cargo workspace: every binary of a crate under jobs/ (CronJobs) or
services/ (Deployments) is deployed (a CronJob block, enabled or not, or the snooze Deployment),
every CronJob names a binary that exists; and the job binaries themselves accept the config files
the chart renders."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import CHART, PROFILES, REPO, by_name, of_kind, profile_values, render, run


def workspace_binaries() -> dict[str, str]:
    """Binary name → the directory of its crate, relative to the repository."""
    cargo = shutil.which("cargo")
    if not cargo:
        pytest.fail("cargo not found")
    out = run([cargo, "metadata", "--no-deps", "--format-version", "1", "--offline"], cwd=REPO)
    assert out.returncode == 0, out.stderr
    bins = {}
    for package in json.loads(out.stdout)["packages"]:
        crate_dir = Path(package["manifest_path"]).parent.relative_to(REPO)
        for target in package["targets"]:
            if "bin" in target["kind"]:
                bins[target["name"]] = str(crate_dir)
    return bins


def chart_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def test_every_job_binary_is_deployed_and_every_deployed_binary_exists():
    bins = workspace_binaries()
    job_bins = {b for b, d in bins.items() if d.startswith(("jobs/", "services/"))}
    assert {"ttl-teardown", "certificate-checker", "ttl-snooze"} <= job_bins, bins
    values = chart_values()
    cron_bins = {name: job.get("binary", name) for name, job in values["jobs"].items()}
    deployed = set(cron_bins.values()) | {values["snooze"]["binary"]}
    missing = job_bins - deployed
    assert not missing, f"binaries under jobs/ or services/ with no CronJob block (or Deployment) in values.yaml: {missing}"
    dangling = {n: b for n, b in cron_bins.items() if b not in bins}
    assert not dangling, f"CronJob blocks naming a binary the workspace does not build: {dangling}"
    assert values["snooze"]["binary"] in bins


def test_every_rendered_cronjob_runs_a_workspace_binary():
    bins = workspace_binaries()
    for profile in PROFILES:
        for obj in render(profile_values(profile)):
            if obj["kind"] in ("CronJob", "Deployment"):
                spec = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"] if obj["kind"] == "CronJob" \
                    else obj["spec"]["template"]["spec"]
                (c,) = spec["containers"]
                assert c["command"][0] in bins, (profile.name, obj["metadata"]["name"], c["command"])


def binary(name: str) -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = target / "debug" / name
    if not path.exists():
        pytest.fail(f"{path} not built: .ci/run builds the workspace (cargo test) before tests/chart")
    return path


def materialise(objs: list[dict], config_map: str, into: Path) -> Path:
    """Writes a rendered ConfigMap's files into a directory, as the pod's /etc/governance."""
    into.mkdir(parents=True, exist_ok=True)
    for key, text in by_name(objs, "ConfigMap", config_map)["data"].items():
        (into / key).write_text(text)
    return into / "config.yaml"


# What the binary says when it got past loading and validating the config, per job: the run is
# stopped at a later, known step (no broker for --execute, a Secret that is not mounted here).
PAST_THE_CONFIG = [
    "--execute needs a durable audit sink",
    "cannot read",
    "snooze-keys",
]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_the_job_binaries_accept_the_rendered_configs(tmp_path, profile):
    objs = render(profile_values(profile))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOV_", "KUBERNETES_"))}
    # No broker (so --execute stops at the audit check), nothing to push to, no cluster.
    env.update({"GOV_KAFKA_BROKERS": "", "GOV_PUSHGATEWAY_URL": "http://127.0.0.1:9",
                "KUBECONFIG": str(tmp_path / "no-kubeconfig"), "RUST_LOG": "warn"})
    checked = 0
    for cj in of_kind(objs, "CronJob") + of_kind(objs, "Deployment"):
        spec = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"] if cj["kind"] == "CronJob" else cj["spec"]["template"]["spec"]
        (c,) = spec["containers"]
        config_map = next(v["configMap"]["name"] for v in spec["volumes"] if v["name"] == "config")
        config = materialise(objs, config_map, tmp_path / cj["metadata"]["name"])
        args = [a if a != "/etc/governance/config.yaml" else str(config) for a in c["args"]]
        if c["command"][0] != "ttl-snooze" and "--execute" not in args:
            args.append("--execute")
        out = run([str(binary(c["command"][0])), *args], env=env, cwd=tmp_path)
        said = out.stderr
        assert "invalid config" not in said and "unknown field" not in said, (cj["metadata"]["name"], said)
        if out.returncode == 2:
            assert any(p in said for p in PAST_THE_CONFIG), (cj["metadata"]["name"], said)
        else:
            # Ran: a real (dry) run of a read-only job against nothing; it got past its config.
            assert c["command"][0] == "certificate-checker" and out.returncode in (0, 1), (cj["metadata"]["name"], out.returncode, said)
        checked += 1
        if c["command"][0] == "ttl-teardown":
            # And a dry run over an empty offline inventory: prepare (the job's own validation,
            # the whitelist, the snooze keys) runs on the rendered files, then nothing to do.
            empty = tmp_path / "empty-inventory.yaml"
            empty.write_text("resources: []\n")
            dry = [a for a in args if a != "--execute"] + ["--inventory", str(empty)]
            out = run([str(binary("ttl-teardown")), *dry], env=env, cwd=tmp_path)
            assert "invalid config" not in out.stderr, (cj["metadata"]["name"], out.stderr)
            if out.returncode == 2:
                assert "cannot read snooze keys" in out.stderr, (cj["metadata"]["name"], out.stderr)
            else:
                # 1: the metrics could not be pushed (nothing listens); the run itself succeeded.
                assert out.returncode == 1 and '"status": "success"' in out.stdout, (out.returncode, out.stdout, out.stderr)
        if (config.parent / "whitelist.yaml").exists():
            check = run([str(binary("whitelist")), "check", str(config.parent / "whitelist.yaml")], env=env)
            assert check.returncode == 0, check.stdout + check.stderr
    assert checked >= 2
