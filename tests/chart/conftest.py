"""Shared helpers of the chart checks: render the chart with the real Helm SDK, find tools.

Everything here runs offline: helm-python-sdk bundles Helm's Go code (no helm binary), promtool
comes from Debian's prometheus package, kubernetes-validate and checkov carry their schemas and
policies. `.ci/setup` installs them; `.ci/run` runs `pytest tests/chart`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from helm_python.chart import Chart

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "governance-jobs"
PROFILES = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE = "gov"
NAMESPACE = "governance"


def profile_values(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def render_raw(values: dict | None = None, name: str = RELEASE) -> dict[str, str]:
    """Template path → rendered text, as `helm template` would print it."""
    with Chart.load(str(CHART)) as chart:
        return chart.render(values=values or {}, name=name, namespace=NAMESPACE)


def objects(manifests: dict[str, str]) -> list[dict]:
    """Every Kubernetes object of a rendering (NOTES.txt left out)."""
    out = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                out.append(doc)
    return out


def render(values: dict | None = None) -> list[dict]:
    return objects(render_raw(values))


def notes(values: dict | None = None) -> str:
    return next(v for k, v in render_raw(values).items() if k.endswith("NOTES.txt"))


def of_kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o["kind"] == kind]


def by_name(objs: list[dict], kind: str, name: str) -> dict:
    found = [o for o in of_kind(objs, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found among {[o['metadata']['name'] for o in of_kind(objs, kind)]}"
    return found[0]


def pod_templates(objs: list[dict]) -> list[tuple[str, dict]]:
    """(object name, pod template spec) of every workload."""
    out = []
    for o in objs:
        if o["kind"] == "CronJob":
            out.append((o["metadata"]["name"], o["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
        elif o["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
            out.append((o["metadata"]["name"], o["spec"]["template"]["spec"]))
    return out


def tool(name: str) -> str:
    """A tool from the chart venv (next to this Python) or PATH; a missing tool fails loudly."""
    here = Path(os.sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: run `bash .ci/setup` (it installs the chart tools)")
    return found


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="session")
def rendered_profiles() -> dict[str, list[dict]]:
    """Each ci/*-values.yaml profile rendered once."""
    return {p.name: render(profile_values(p)) for p in PROFILES}
