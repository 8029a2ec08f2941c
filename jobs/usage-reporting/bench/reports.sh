#!/usr/bin/env bash
# Benchmark: the weekly usage report for N tenants (default 200) over 7 days, from a backfilled
# Prometheus (8 days of hourly gateway samples) and PostgreSQL with the schema, with Kafka
# Connect (stand-in), a Pushgateway, an SMTP sink and librdkafka's mock Kafka cluster, all on
# loopback. The job runs with --execute: every PDF rendered, every email sent.
#
# Prints wall time and peak RSS (GNU time) of the job and the time per PDF (from the result
# event), and checks the results: N tenants reported, no errors, N PDFs, N + 1 emails. Debug
# build (this project never builds release on its 2-core machines): an upper bound.
#
#   bash jobs/usage-reporting/bench/reports.sh [N] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/../../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/governance-jobs/target}
n=${1:-200}
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time: apt-get install -y time" >&2; exit 2; }

# The workspace selected (not -p): the same feature set, so the same artifacts, as the tests.
[ "${2:-}" = "--no-build" ] || cargo build -q -j2 --workspace --bins --examples
bin="$CARGO_TARGET_DIR/debug/usage-reporting"
dir=$(mktemp -d)
"$CARGO_TARGET_DIR/debug/examples/usage_fixture" "$dir" "$n" 2>"$dir/fixture.log" &
fixture=$!
trap 'kill -TERM "$fixture" 2>/dev/null; wait "$fixture" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 1800); do
  [ -f "$dir/config.yaml" ] && break
  kill -0 "$fixture" 2>/dev/null || break
  sleep 0.2
done
[ -f "$dir/config.yaml" ] || { echo "fixture did not start:" >&2; cat "$dir/fixture.log" >&2; exit 1; }
maildir=$(cat "$dir/maildir")

GOV_CONTROL_PLANE_PASSWORD=$(cat "$dir/password") /usr/bin/time -f '%e %M' -o "$dir/time" \
  "$bin" --config "$dir/config.yaml" --execute --now 2026-11-30T02:00:00Z --period weekly \
  --out-dir "$dir/out" --output json --log-format json >"$dir/event.json" 2>"$dir/job.log" \
  || { echo "run failed (exit $?):" >&2; tail -5 "$dir/job.log" >&2; python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["errors"])' "$dir/event.json" >&2 || true; exit 1; }
read -r wall rss <"$dir/time"
# aiosmtpd writes each message when it has taken it; give the last ones a moment.
for _ in $(seq 1 100); do
  [ "$(ls "$maildir/new" 2>/dev/null | wc -l)" -ge $((n + 1)) ] && break
  sleep 0.1
done
mails=$(ls "$maildir/new" | wc -l)
python3 - "$dir/event.json" "$n" "$mails" "$dir/out" "$wall" "$rss" <<'PY'
import json, os, sys
event, n, mails, out, wall, rss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), int(sys.argv[6])
e = json.load(open(event))
pdfs = [f for f in os.listdir(out) if f.endswith(".pdf")]
render = e["details"]["pdf_render"]
print(f"{n} tenants x 7 days: wall {wall:.2f} s, peak RSS {rss / 1024:.0f} MB, "
      f"{render['total_seconds'] / max(render['count'], 1) * 1000:.0f} ms per PDF "
      f"(slowest {render['max_seconds'] * 1000:.0f} ms; 2 rendered at a time), "
      f"{len(pdfs)} PDFs, {mails} emails, {len(e['findings'])} findings")
problems = []
if e["status"] != "success" or e.get("errors"):
    problems.append(f"status {e['status']}, errors {e.get('errors')}")
if e["summary"]["total_checked"] != n:
    problems.append(f"{e['summary']['total_checked']} tenants reported, not {n}")
if len(pdfs) != n or render["count"] != n:
    problems.append(f"{len(pdfs)} PDFs written, {render['count']} rendered, not {n}")
if mails != n + 1:
    problems.append(f"{mails} emails, not {n} + the platform summary")
if not any(f["type"] == "quota_exceeded" for f in e["findings"]):
    problems.append("no quota_exceeded finding (every 7th tenant is over its calls quota)")
if problems:
    sys.exit("; ".join(problems))
PY
