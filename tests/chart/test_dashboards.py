"""The Grafana dashboards: every panel's PromQL parses (promtool), names only metrics that exist,
and the panels tile the 24-column grid without overlapping."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import CHART, run

DASHBOARDS = sorted((CHART / "files" / "dashboards").glob("*.json"))
RULES_FILE = CHART / "files" / "prometheus-rules.yaml"
PUSHED = Path(__file__).parent / "alerts" / "pushed-series.txt"

# Grafana's variables, replaced by values of the right type before parsing.
GRAFANA_VARIABLES = {"$__range": "30d", "$__rate_interval": "5m", "$__interval": "1m", "$job": ".+"}

# Families the jobs and the service expose besides the harness's, as Prometheus sees them
# (prometheus-client names a counter `x` as `x_total`). Names from the code: jobs/ttl-teardown
# (job.rs, snooze/server.rs) and jobs/certificate-checker (job.rs).
JOB_FAMILIES = {
    "ttl_cost_avoided_usd_total", "ttl_resources_deleted_total", "ttl_resources_by_outcome",
    "ttl_snooze_extensions_applied_total", "ttl_snooze_requests_total",
    "certificate_checker_certificates", "certificate_not_after_timestamp_seconds",
    "ALERTS", "up",
}
PROMQL_WORDS = {"sum", "max", "min", "by", "on", "and", "or", "unless", "without", "time", "sort_desc",
                "sum_over_time", "quantile_over_time", "max_over_time", "increase", "rate", "bottomk",
                "group_left", "offset", "count", "avg"}


def dashboards() -> list[tuple[str, dict]]:
    return [(p.name, json.loads(p.read_text())) for p in DASHBOARDS]


def exprs(dashboard: dict) -> list[tuple[str, str]]:
    out = []
    for panel in dashboard["panels"]:
        for t in panel["targets"]:
            out.append((f"p{panel['id']}_{t['refId']}", t["expr"]))
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            m = re.fullmatch(r"label_values\((.+),\s*\w+\)", var["definition"])
            assert m, var
            out.append((f"var_{var['name']}", m.group(1)))
    return out


def substitute(expr: str) -> str:
    for k, v in GRAFANA_VARIABLES.items():
        expr = expr.replace(k, v)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def test_there_are_the_two_dashboards_the_issue_asks_for():
    titles = {d["title"] for _, d in dashboards()}
    assert titles == {"Governance jobs", "Cost savings"}
    for _, d in dashboards():
        assert d["uid"] and d["panels"]


@pytest.mark.parametrize("name,dashboard", dashboards(), ids=lambda x: x if isinstance(x, str) else "")
def test_every_panel_query_parses_with_promtool(tmp_path, name, dashboard):
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.fail("promtool not found: `bash .ci/setup` installs it")
    # One recording rule per query: `promtool check rules` parses each expression with
    # Prometheus' own parser and names the rule that does not parse.
    rules = [{"record": f"dashboard:{ident}", "expr": substitute(e)} for ident, e in exprs(dashboard)]
    path = tmp_path / "panels.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": name, "rules": rules}]}))
    out = run([promtool, "check", "rules", str(path)])
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rules)} rules found" in out.stdout, out.stdout


@pytest.mark.parametrize("name,dashboard", dashboards(), ids=lambda x: x if isinstance(x, str) else "")
def test_every_metric_a_panel_names_exists(name, dashboard):
    records = {r["record"] for g in yaml.safe_load(RULES_FILE.read_text())["groups"] for r in g["rules"] if "record" in r}
    pushed = {l.split("{")[0] for l in PUSHED.read_text().splitlines() if l and not l.startswith("#")}
    known = records | pushed | JOB_FAMILIES
    for ident, e in exprs(dashboard):
        # Strip label matchers and strings, then every remaining identifier is a metric or a word.
        bare = re.sub(r'\{[^}]*\}|"[^"]*"|\[[^\]]*\]', " ", substitute(e))
        bare = re.sub(r"\b(by|on|without|group_left|group_right)\s*\([^)]*\)", " ", bare)
        for word in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare):
            if word in PROMQL_WORDS or re.fullmatch(r"\d+[smhdwy]", word):
                continue
            assert word in known, f"{name} {ident}: {word} is no metric the jobs or rules produce"


@pytest.mark.parametrize("name,dashboard", dashboards(), ids=lambda x: x if isinstance(x, str) else "")
def test_panels_have_unique_ids_fit_24_columns_and_do_not_overlap(name, dashboard):
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), ids
    boxes = []
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["y"] >= 0 and g["w"] >= 1 and g["h"] >= 1, p["title"]
        assert g["x"] + g["w"] <= 24, f"{p['title']} ends at column {g['x'] + g['w']}"
        boxes.append((p["title"], g["x"], g["y"], g["x"] + g["w"], g["y"] + g["h"]))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            overlap = a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]
            assert not overlap, f"{a[0]} overlaps {b[0]}"


def test_the_cost_panels_count_executed_runs_once_each():
    # What the promtool test of governance-jobs-cost proves only helps if the panels use it.
    (_, cost), = [(n, d) for n, d in dashboards() if d["title"] == "Cost savings"]
    text = json.dumps(cost)
    assert "governance_ttl:resources_deleted:per_run{mode=\\\"\\\"}" in text
    assert "governance_ttl:cost_avoided_usd:per_run{mode=\\\"\\\"}" in text
    assert "increase(ttl_resources_deleted" not in text
    assert cost["time"]["from"] == "now/M", "this month by default"
