#!/usr/bin/env bash
# Benchmark: the TTL planner offline, N resources (default 100,000) × R whitelist rules
# (default 1,000), no cloud, no broker: reading the inventory, evaluating every resource's tags,
# matching the whitelist, ordering deletions, the result event.
#
#   bash jobs/ttl-teardown/bench/planner.sh [N] [R] [--profile debug|release] [--no-build]
#
# The generated inventory (instances, volumes waiting for them, security groups) holds known
# shares: 10 % expired and warned, 10 % due a warning, 10 % production, 5 % with bad tags, and
# R/2 ARN rules plus R/2 tag rules that each protect exactly one expired resource. The script
# checks the plan against what the generator knows (deletions, warnings, protections, tag
# violations) and prints wall time, user+sys CPU and peak RSS (GNU time). Target (issue #15):
# under 2 s and 256 MB at 100,000 × 1,000. Timings are printed, never asserted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
export GOV_CACHE=${GOV_CACHE:-/var/cache/governance-jobs}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$GOV_CACHE/target}
n=100000 rules=1000 profile=debug build=1 pos=0
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=${2:?}; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    [0-9]*) if [ $pos = 0 ]; then n=$1; else rules=$1; fi; pos=$((pos + 1)); shift ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -x /usr/bin/time ] || { echo "GNU time is needed (apt-get install time)" >&2; exit 2; }
bin="$CARGO_TARGET_DIR/$profile/ttl-teardown"
if [ "$profile" = debug ] && [ "$build" = 1 ]; then
  (cd "$repo" && cargo build -q --workspace --bin ttl-teardown -j 2)
fi
[ -x "$bin" ] || { echo "$bin is missing (cargo build${profile/debug/} --workspace --bin ttl-teardown)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work" "$n" "$rules" <<'PY'
import json, sys
work, n, rules = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
acct = "111111111111"
base = dict(owner="dev@example.com", project="p", **{"cost-center": "cc-1", "auto-teardown": "true",
            "data-class": "internal"})
def tags(i, kind):
    t = dict(base, environment="dev", ttl="7d")
    share = i % 20
    if share in (0, 1):      # expired 5 h ago, warned
        t.update(created_at="2026-11-16T07:00:00Z", **{"ttl-notified-stage": "warn-24h@2026-11-23T07:00:00Z"})
    elif share in (2, 3):    # due in 30 h: the 48-hour warning
        t.update(created_at="2026-11-17T18:00:00Z")
    elif share in (4, 5):    # production (never planned)
        t.update(created_at="2026-11-16T07:00:00Z", environment="prod")
    elif share == 6:         # bad tags: ttl unreadable
        t.update(created_at="2026-11-16T07:00:00Z", ttl="soon")
    else:                    # fine, due in 4 days
        t.update(created_at="2026-11-20T12:00:00Z")
    return t, share
out = {"delete": 0, "warn-48h": 0, "protected": 0, "violations": 0}
arn_rules = rules // 2
tag_rules = rules - arn_rules
lines = ["resources:"]
entries = []
protected_arn = protected_tag = 0
inst = None
for i in range(n):
    kind = ("ec2-instance", "ebs-volume", "security-group", "ec2-instance", "ebs-volume")[i % 5]
    t, share = tags(i, kind)
    if kind == "ec2-instance":
        name = f"i-{i:017x}"
        if share in (0, 1) and protected_arn < arn_rules:
            name = f"i-keep{protected_arn:05d}x{i:09x}"
            protected_arn += 1
            out["protected"] += 1
            share = -1
        rid = f"arn:aws:ec2:us-east-1:{acct}:instance/{name}"
        inst = rid if share not in (0, 1, -1) else None
        cost = "{instance_type: t3.large}"
    elif kind == "ebs-volume":
        rid = f"arn:aws:ec2:us-east-1:{acct}:volume/vol-{i:017x}"
        cost = "{size_gb: 20}"
    else:
        rid = f"arn:aws:ec2:us-east-1:{acct}:security-group/sg-{i:017x}"
        cost = None
    if share in (0, 1) and kind != "ec2-instance" and protected_tag < tag_rules:
        t["team"] = f"t{protected_tag:05d}"
        protected_tag += 1
        out["protected"] += 1
        share = -1
    if share in (0, 1):
        out["delete"] += 1
    elif share in (2, 3):
        out["warn-48h"] += 1
    elif share in (4, 5):    # production is reported as protected too
        out["protected"] += 1
    elif share == 6:
        out["violations"] += 1
    entry = {"kind": kind, "id": rid}
    lines.append(f"  - kind: {kind}")
    lines.append(f"    id: {rid}")
    if cost:
        lines.append(f"    cost: {cost}")
        entry["cost"] = {"instance_type": "t3.large"} if kind == "ec2-instance" else {"size_gb": 20}
    # Volumes wait for a live (not deleted) instance of their own: deletion order stays local.
    if kind == "ebs-volume" and inst and share not in (0, 1, -1):
        lines.append(f"    wait_for: [{inst}]")
        entry["wait_for"] = [inst]
    lines.append("    tags: " + json.dumps(t))
    entry["tags"] = t
    entries.append(entry)
open(f"{work}/inventory.yaml", "w").write("\n".join(lines) + "\n")
json.dump({"resources": entries}, open(f"{work}/inventory.json", "w"))
w = ["never_delete:", "  aws_resources:"]
w += [f'    - "arn:aws:ec2:*:*:instance/i-keep{k:05d}x*"' for k in range(arn_rules)]
w += ["  tags:"]
w += [f'    - {{key: team, value: "t{k:05d}"}}' for k in range(tag_rules)]
open(f"{work}/whitelist.yaml", "w").write("\n".join(w) + "\n")
for fmt in ("yaml", "json"):
    open(f"{work}/config-{fmt}.yaml", "w").write(
        "kafka:\n  fallback:\n    file: events.jsonl\njob:\n  whitelist: whitelist.yaml\n"
        f"  allowed_accounts: [\"{acct}\"]\n  sources:\n    inventory: inventory.{fmt}\n"
        "  caps:\n    max_deletions: 1000000\n    max_percent: 100\n")
json.dump(out, open(f"{work}/expected.json", "w"))
PY
printf '[bench] %s resources x %s rules (%s build): inventory %s MB\n' "$n" "$rules" "$profile" \
  "$(du -m "$work/inventory.yaml" | cut -f1)" >&2
status=0
for fmt in yaml json; do
/usr/bin/time -f '%e %U %S %M' -o "$work/time" \
  "$bin" --config "$work/config-$fmt.yaml" --now 2026-11-23T12:00:00Z --output json >"$work/event.json" 2>"$work/log" \
  || { tail -5 "$work/log" >&2; echo "the run failed ($fmt)" >&2; exit 1; }
python3 - "$work" "$n" "$rules" "$profile" "$fmt" <<'PY' || status=1
import json, sys
work, n, rules, profile, fmt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
e = json.load(open(f"{work}/event.json"))
want = json.load(open(f"{work}/expected.json"))
actions = e["details"].get("actions", {})
protected = sum(1 for f in e["findings"] if f.get("type") == "protected")
violations = sum(1 for f in e["findings"] if f.get("type") == "tag-violation")
got = {"delete": actions.get("delete", 0), "warn-48h": actions.get("warn-48h", 0),
       "protected": protected, "violations": violations}
wall, user, sys_, rss = open(f"{work}/time").read().split()
print(f"planner, {n} resources x {rules} rules, {fmt} inventory ({profile}): {float(wall):.2f} s wall, "
      f"{float(user) + float(sys_):.2f} s CPU, {int(rss) // 1024} MB peak RSS; "
      f"{got['delete']} deletions, {got['warn-48h']} warnings, {got['protected']} protected, "
      f"{got['violations']} tag violations, as generated")
bad = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
if bad:
    sys.exit(f"the plan differs from what was generated (got, want): {bad}; finding types: "
             f"{sorted({f.get('type') for f in e['findings']})}")
PY
done
exit "$status"
