#!/usr/bin/env bash
# Benchmark: certificate-checker against 500 local TLS endpoints (one helper process serving 500
# listeners), concurrency 64. Prints wall time (s) and peak RSS (KiB) of the checker, measured
# with /usr/bin/time. Debug build (the project never builds release on these 2-core machines), so
# the figures are an upper bound.
#
#   bash jobs/certificate-checker/bench/endpoints.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/governance-jobs/target}
n=${1:-500}
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time: apt-get install -y time" >&2; exit 2; }

cargo build -q -j2 -p certificate-checker --bin certificate-checker --example tls_endpoints
bin="$CARGO_TARGET_DIR/debug/certificate-checker"
dir=$(mktemp -d)
"$CARGO_TARGET_DIR/debug/examples/tls_endpoints" "$dir" "$n" 2>"$dir/servers.log" &
servers=$!
trap 'kill "$servers" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 300); do [ -f "$dir/config.yaml" ] && break; sleep 0.1; done
[ -f "$dir/config.yaml" ] || { echo "servers did not start:" >&2; cat "$dir/servers.log" >&2; exit 1; }

for run in 1 2 3; do
  (cd "$dir" && /usr/bin/time -f '%e %M' -o "$dir/time" "$bin" --config config.yaml --output json \
      --log-format json >"$dir/out.json" 2>"$dir/err.log") || { echo "run failed:" >&2; tail "$dir/err.log" >&2; exit 1; }
  read -r wall rss <"$dir/time"
  summary=$(python3 - "$dir/out.json" "$n" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
failed = sum(f["type"] == "handshake_failed" for f in e["findings"])
print(f'{e["details"]["endpoints_probed"]} endpoints, {e["summary"]["total_checked"]} distinct certificates, '
      f'{len(e["findings"])} findings, handshake_failed={failed}')
# Every endpoint must have been checked, or the timing is of something else.
sys.exit(1 if failed or e["details"]["endpoints_probed"] != int(sys.argv[2]) else 0)
PY
) || { echo "not every endpoint was checked: $summary" >&2; exit 1; }
  echo "run $run: wall ${wall}s  peak RSS ${rss} KiB  ($summary)"
done
