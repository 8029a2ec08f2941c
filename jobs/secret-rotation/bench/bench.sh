#!/usr/bin/env bash
# Benchmark: secret-rotation's dry run over N managed secrets in OpenBao (discovered from their
# Vault metadata, one in five due), then the classification of M declared secrets from an
# offline file. Prints wall time (s) and peak RSS (KiB) of the job, measured with /usr/bin/time,
# and the job's own figures: reading Vault or the file (details.collect_seconds / load_seconds) and
# classifying (details.classify_seconds). Checks the results (every
# secret classified, exactly the due ones planned), never the timings. Debug build (the project
# never builds release on these 2-core machines), so the figures are an upper bound.
#
#   bash jobs/secret-rotation/bench/bench.sh [N=1000] [M=100000]
set -euo pipefail
cd "$(dirname "$0")/../../.."
export GOV_CACHE=${GOV_CACHE:-/var/cache/governance-jobs}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$GOV_CACHE/target}
n=${1:-1000}
m=${2:-100000}
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time: apt-get install -y time" >&2; exit 2; }
bao=${GOV_BAO:-$GOV_CACHE/venv/bin/bao}
[ -x "$bao" ] || { echo "needs OpenBao at $bao: run .ci/setup" >&2; exit 2; }

# The workspace selected (not -p): the same features as every other build, so nothing is rebuilt.
cargo build -q -j2 --workspace --bin secret-rotation
bin="$CARGO_TARGET_DIR/debug/secret-rotation"
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HOME="$dir" setsid "$bao" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$port" \
  >"$dir/bao.log" 2>&1 &
bao_pid=$!
trap 'kill -- "-$bao_pid" 2>/dev/null || kill "$bao_pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
healthy() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
  "http://127.0.0.1:$port/v1/sys/health" 2>/dev/null; }
for _ in $(seq 1 100); do healthy && break; sleep 0.1; done
healthy || { echo "openbao did not start:" >&2; cat "$dir/bao.log" >&2; exit 1; }

now=2026-12-01T00:00:00Z
python3 - "$port" "$n" "$m" "$dir" <<'PY'
import http.client, json, sys
port, n, m, d = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
c = http.client.HTTPConnection("127.0.0.1", port)
def post(path, body):
    c.request("POST", "/v1/" + path, json.dumps(body), {"X-Vault-Token": "root"})
    r = c.getresponse(); r.read()
    assert r.status in (200, 204), (path, r.status)
target = json.dumps({"kind": "api-key-issuer", "server": "partners", "principal": "bench"})
for i in range(n):
    due = i % 5 == 0
    post(f"secret/data/managed/team-{i % 20}/s{i}", {"data": {"api_key": f"bench-value-{i:06d}-xxxxxxxxxxxx", "key_id": "k0"}})
    post(f"secret/metadata/managed/team-{i % 20}/s{i}", {"custom_metadata": {
        "type": "api-key", "owner": f"team-{i % 20}@example.com", "target": target,
        "last_rotated": "2026-10-20T00:00:00Z" if due else "2026-11-26T00:00:00Z"}})
types = ["api-key", "oauth-client-secret", "database-password", "service-account", "encryption-key"]
import datetime
now = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)
period = {"api-key": 30, "oauth-client-secret": 90, "database-password": 90,
          "service-account": 180, "encryption-key": 365}
due = 0
with open(f"{d}/offline.jsonl", "w") as f:
    for i in range(m):
        # Ages spread over 0..399 days: every phase of every type occurs.
        age = (i * 37) % 400
        due += age >= period[types[i % 5]]
        created = (now - datetime.timedelta(days=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
        f.write(json.dumps({"name": f"s{i}", "type": types[i % 5], "owner": "o@example.com",
                            "vault": f"secret/x/s{i}", "created_time": created}) + "\n")
open(f"{d}/expected_due", "w").write(str(due))
PY

cat >"$dir/config.yaml" <<EOF
kafka:
  fallback: {file: events.jsonl}
job:
  vault: {address: "http://127.0.0.1:$port", token_env: BENCH_VAULT_TOKEN}
  targets:
    api_key_issuers:
      partners: {url: "http://127.0.0.1:9", admin_token: {env: BENCH_ISSUER_TOKEN}}
  caps: {max_rotations_per_run: 100000}   # plan every due secret (the default defers past 10)
  discover:
    - vault: secret/managed
EOF
cat >"$dir/offline.yaml" <<EOF
kafka:
  fallback: {file: offline-events.jsonl}
job: {}
EOF

check() {
  python3 - "$@" <<'PY'
import json, sys
path, want_total, want_planned, want_due = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
e = json.load(open(path))
planned = sum(f["action"] == "rotate" and f["result"] == "planned" for f in e["findings"])
due = sum(f.get("state") in ("due", "overdue") for f in e["findings"])
total = e["summary"]["total_checked"]
load = e["details"].get("load_seconds")
read = f'file read {load:.3f}s' if load is not None else f'vault read {e["details"]["collect_seconds"]:.3f}s'
print(f'{total} secrets, {due} due, {planned} planned rotations, status {e["status"]}, '
      f'{read} + classify {e["details"]["classify_seconds"]:.3f}s')
ok = total == want_total and e["status"] == "success" and len(e["findings"]) == total and due == want_due
if want_planned != "-":
    ok = ok and planned == int(want_planned)
sys.exit(0 if ok else 1)
PY
}

for run in 1 2 3; do
  (cd "$dir" && BENCH_VAULT_TOKEN=root BENCH_ISSUER_TOKEN=x /usr/bin/time -f '%e %M' -o "$dir/time" \
      "$bin" --config config.yaml --now "$now" --output json --log-format json >"$dir/out.json" 2>"$dir/err.log") \
    || { echo "dry run failed:" >&2; tail "$dir/err.log" >&2; exit 1; }
  read -r wall rss <"$dir/time"
  summary=$(check "$dir/out.json" "$n" "$(( (n + 4) / 5 ))" "$(( (n + 4) / 5 ))") || { echo "wrong plan: $summary" >&2; exit 1; }
  echo "vault dry run $run: wall ${wall}s  peak RSS ${rss} KiB  ($summary)"
done

for run in 1 2 3; do
  (cd "$dir" && /usr/bin/time -f '%e %M' -o "$dir/time" "$bin" --config offline.yaml --offline offline.jsonl \
      --now "$now" --output json --log-format json >"$dir/off.json" 2>"$dir/err.log") \
    || { echo "offline run failed:" >&2; tail "$dir/err.log" >&2; exit 1; }
  read -r wall rss <"$dir/time"
  summary=$(check "$dir/off.json" "$m" - "$(cat "$dir/expected_due")") || { echo "wrong classification: $summary" >&2; exit 1; }
  echo "offline classification $run: wall ${wall}s  peak RSS ${rss} KiB  ($summary)"
done
