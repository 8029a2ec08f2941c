#!/usr/bin/env bash
# Benchmark: certificate-checker against 500 local TLS endpoints (one helper process serving 500
# listeners), concurrency 64. Prints wall time (s), CPU (user+sys s) and peak RSS (KiB) of the
# checker, measured with /usr/bin/time. Debug build (the project never builds release on these
# 2-core machines), so the figures are an upper bound.
#
# Then the peer tool side by side: Prometheus' blackbox_exporter (Debian's
# prometheus-blackbox-exporter, tcp prober with TLS) probing the same N endpoints, 64 probes at
# a time as a Prometheus would scrape them: its wall, its own CPU and peak RSS (from /proc), and
# a check that both tools found the same expiry date (probe_ssl_earliest_cert_expiry against
# the checker's not_after) for every endpoint.
#
#   bash jobs/certificate-checker/bench/endpoints.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/governance-jobs/target}
n=${1:-500}
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time: apt-get install -y time" >&2; exit 2; }
blackbox=$(command -v prometheus-blackbox-exporter) \
  || { echo "needs blackbox_exporter: apt-get install -y prometheus-blackbox-exporter (.ci/setup does)" >&2; exit 2; }

cargo build -q -j2 -p certificate-checker --bin certificate-checker --example tls_endpoints
bin="$CARGO_TARGET_DIR/debug/certificate-checker"
dir=$(mktemp -d)
"$CARGO_TARGET_DIR/debug/examples/tls_endpoints" "$dir" "$n" 2>"$dir/servers.log" &
servers=$!
bb=""
trap 'kill "$servers" $bb 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 300); do [ -f "$dir/config.yaml" ] && break; sleep 0.1; done
[ -f "$dir/config.yaml" ] || { echo "servers did not start:" >&2; cat "$dir/servers.log" >&2; exit 1; }
# Every certificate reported (info below 100 years), so the side by side can compare all dates.
printf '  thresholds: {critical_days: 7, warning_days: 21, info_days: 36500}\n' >>"$dir/config.yaml"

for run in 1 2 3; do
  (cd "$dir" && /usr/bin/time -f '%e %U %S %M' -o "$dir/time" "$bin" --config config.yaml --output json \
      --log-format json >"$dir/out.json" 2>"$dir/err.log") || { echo "run failed:" >&2; tail "$dir/err.log" >&2; exit 1; }
  read -r wall user sys rss <"$dir/time"
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
  cpu=$(python3 -c "print(round($user + $sys, 2))")
  echo "run $run: wall ${wall}s  cpu ${cpu}s  peak RSS ${rss} KiB  ($summary)"
done

# The peer tool on the same endpoints.
cat >"$dir/blackbox.yml" <<EOF
modules:
  tls:
    prober: tcp
    timeout: 5s
    tcp:
      tls: true
      tls_config: {ca_file: $dir/root.pem, server_name: localhost}
EOF
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$blackbox" --config.file="$dir/blackbox.yml" --web.listen-address="127.0.0.1:$port" \
  --log.level=warn 2>"$dir/blackbox.log" &
bb=$!
python3 - "$dir" "$port" "$bb" "$n" <<'PY'
import concurrent.futures, datetime, json, re, sys, time, urllib.request
dir, port, pid, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
base = f"http://127.0.0.1:{port}"
for _ in range(100):
    try:
        urllib.request.urlopen(base + "/-/healthy", timeout=1).read()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("blackbox_exporter did not start: " + open(dir + "/blackbox.log").read())
addresses = re.findall(r'address: "([^"]+)"', open(dir + "/config.yaml").read())
assert len(addresses) == n, (len(addresses), n)

def cpu():  # the exporter's own user+sys seconds (clock ticks, USER_HZ 100)
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / 100

def probe(addr):
    url = f"{base}/probe?module=tls&target={addr}"
    text = urllib.request.urlopen(url, timeout=30).read().decode()
    m = dict(re.findall(r"^(probe_success|probe_ssl_earliest_cert_expiry) (\S+)$", text, re.M))
    if m.get("probe_success") != "1":
        sys.exit(f"blackbox probe of {addr} failed:\n{text}")
    return addr, float(m["probe_ssl_earliest_cert_expiry"])

before, start = cpu(), time.monotonic()
with concurrent.futures.ThreadPoolExecutor(64) as pool:
    expiry = dict(pool.map(probe, addresses))
wall, used = time.monotonic() - start, cpu() - before
rss = next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM"))
print(f"blackbox_exporter: wall {wall:.2f}s  cpu {used:.2f}s (the exporter's own)  "
      f"peak RSS {rss} KiB  ({len(expiry)} endpoints probed, 64 at a time)")

# Both must have found the same expiry date for every endpoint.
event = json.load(open(dir + "/out.json"))
ours = {}
for f in event["findings"]:
    for loc in f.get("locations", []):
        ours[loc.removeprefix("https://")] = f["not_after"]
def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
theirs = {a: iso(t) for a, t in expiry.items()}
differ = {a: (ours.get(a), theirs[a]) for a in addresses if ours.get(a) != theirs[a]}
if differ:
    sys.exit(f"the tools disagree on {len(differ)} of {n} endpoints, e.g. {list(differ.items())[:3]}")
print(f"same expiry date from both tools for all {n} endpoints ({len(set(theirs.values()))} distinct dates)")
PY
