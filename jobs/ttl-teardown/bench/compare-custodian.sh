#!/usr/bin/env bash
# Benchmark: ttl-teardown's dry run against Cloud Custodian's on the same moto inventory.
#
#   bash jobs/ttl-teardown/bench/compare-custodian.sh [N] [--profile debug|release] [--no-build]
#
# N instances (default 200; 2000 for the README figures) are seeded in moto with the full tag
# set, then, one after the other on the same server:
#   floor         a bare paginated DescribeInstances (boto3), the least any tool must wait for;
#   ttl-teardown  `--output json` dry run (AWS source only);
#   custodian     `custodian run --dryrun --cache-period 0` with an equivalent ec2 policy.
# Each is measured with GNU time (wall, user+sys, peak RSS); moto's own CPU is read from /proc.
#
# Installs what it needs, idempotently, under GOV_CACHE (as CI does): the moto venv
# ($GOV_CACHE/venv, moto[server] + boto3) and Cloud Custodian in a venv of its own
# ($GOV_CACHE/venv-c7n). --profile debug (default) runs `cargo build -p ttl-teardown` first
# (incremental); --profile release expects $CARGO_TARGET_DIR/release/ttl-teardown to exist
# (`cargo build --release -p ttl-teardown`: about 28 min cold on a 2-core machine).
#
# Run it on an otherwise idle machine: moto's CPU is most of every wall time.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
export GOV_CACHE=${GOV_CACHE:-/var/cache/governance-jobs}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$GOV_CACHE/target}
C7N_VERSION=${C7N_VERSION:-0.9.53}
ACCOUNT=123456789012
REGION=us-east-1

n=200
profile=debug
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=${2:?--profile needs debug or release}; shift 2 ;;
    --profile=*) profile=${1#*=}; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    [0-9]*) n=$1; shift ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$profile" in debug|release) ;; *) echo "--profile must be debug or release" >&2; exit 2 ;; esac

log() { printf '[bench] %s\n' "$*" >&2; }

# ---- what it needs ------------------------------------------------------------------------------
if [ ! -x /usr/bin/time ]; then
  log "apt-get install time (GNU time)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time >/dev/null
fi
command -v setsid >/dev/null || { echo "setsid (util-linux) is required" >&2; exit 2; }

venv="$GOV_CACHE/venv"
if ! "$venv/bin/python" -c 'import moto, boto3, flask_cors' 2>/dev/null; then
  log "installing moto[server] into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]>=5.1,<6'
fi
c7n="$GOV_CACHE/venv-c7n"
if [ "$("$c7n/bin/custodian" version 2>/dev/null)" != "$C7N_VERSION" ]; then
  log "installing c7n==$C7N_VERSION into $c7n (its own venv, to keep moto's deps clean)"
  python3 -m venv "$c7n"
  "$c7n/bin/pip" install -q --disable-pip-version-check "c7n==$C7N_VERSION"
fi

bin="$CARGO_TARGET_DIR/$profile/ttl-teardown"
if [ "$profile" = debug ] && [ "$build" = 1 ]; then
  log "cargo build -p ttl-teardown (debug, incremental; waits if another build holds the lock)"
  (cd "$repo" && cargo build -q -p ttl-teardown -j 2)
fi
if [ ! -x "$bin" ]; then
  if [ "$profile" = release ]; then
    echo "$bin is missing: build it first with" >&2
    echo "  CARGO_TARGET_DIR=$CARGO_TARGET_DIR cargo build --release -p ttl-teardown -j 2   # ~28 min cold" >&2
  else
    echo "$bin is missing (run without --no-build)" >&2
  fi
  exit 2
fi

# ---- moto ---------------------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/ttl-bench.XXXXXX")
moto_pgid=""
cleanup() {
  if [ -n "$moto_pgid" ]; then kill -- "-$moto_pgid" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port nothing listens on yet.
free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
endpoint="http://127.0.0.1:$port"
# setsid: the server gets its own process group, killed as a whole at exit.
setsid "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "$endpoint/moto-api/" 2>/dev/null; then break; fi
  sleep 0.1
done
curl -fsS -o /dev/null "$endpoint/moto-api/" || { cat "$work/moto.log" >&2; echo "moto did not start" >&2; exit 1; }
moto_pgid=$(awk '{print $5}' "/proc/$moto_pid/stat" 2>/dev/null || true)
if [ -z "$moto_pgid" ] || [ "$moto_pgid" = "$(awk '{print $5}' /proc/$$/stat)" ]; then
  echo "cannot find moto's process group" >&2; exit 1
fi

tck=$(getconf CLK_TCK)
# CPU seconds (user+sys) used so far by moto's process group.
moto_cpu() {
  local total=0 f fields
  for f in /proc/[0-9]*/stat; do
    read -r fields 2>/dev/null <"$f" || continue
    # comm (field 2) may hold spaces: split after the last ')'.
    set -- ${fields##*) }
    # now $3 = pgrp, $12 = utime, $13 = stime
    if [ "${3:-}" = "$moto_pgid" ]; then total=$((total + ${12} + ${13})); fi
  done
  awk -v t="$total" -v hz="$tck" 'BEGIN{printf "%.2f", t/hz}'
}

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=$REGION \
  AWS_DEFAULT_REGION=$REGION AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN GOV_AWS_ENDPOINT_URL GOV_KAFKA_BROKERS GOV_PUSHGATEWAY_URL || true

log "moto on $endpoint; seeding $n instances (RunInstances, up to 100 per call; ~35 ms each)"
seeded=$("$venv/bin/python" "$here/seed.py" seed "$endpoint" "$n")
log "seeded: $seeded"
expected=$(printf '%s' "$seeded" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["expired"])')

# AWS API requests moto has served so far (its access log, without the /moto-api/ probes).
moto_requests() { grep -v '/moto-api/' "$work/moto.log" | grep -c ' HTTP/1\.[01]" ' || true; }

# Waits until moto is idle (under 0.05 s of CPU in a second, at most 10 min): a client that gave
# up on a request leaves moto working on it, which would be billed to the next row.
settle() {
  local prev cur i
  prev=$(moto_cpu)
  for i in $(seq 1 600); do
    sleep 1
    cur=$(moto_cpu)
    if awk -v a="$cur" -v b="$prev" 'BEGIN{exit !(a-b < 0.05)}'; then return 0; fi
    prev=$cur
    if [ "$i" = 5 ]; then log "waiting for moto to finish abandoned requests"; fi
  done
  log "moto still busy after 10 min; the next row's figures include that work"
}

# Runs "$@" under GNU time; sets t_wall, t_cpu (user+sys), t_rss (MB), t_rc, t_moto (moto CPU s)
# and t_req (requests moto served meanwhile).
measure() {
  local before after req_before
  settle
  req_before=$(moto_requests)
  before=$(moto_cpu)
  set +e
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@"
  t_rc=$?
  set -e
  after=$(moto_cpu)
  t_req=$(( $(moto_requests) - req_before ))
  read -r t_wall t_user t_sys t_rss_kb < <(tail -n 1 "$work/time")
  t_cpu=$(awk -v u="$t_user" -v s="$t_sys" 'BEGIN{printf "%.2f", u+s}')
  t_rss=$(awk -v k="$t_rss_kb" 'BEGIN{printf "%.0f", k/1024}')
  t_moto=$(awk -v a="$after" -v b="$before" 'BEGIN{printf "%.1f", a-b}')
}

# ---- floor: bare DescribeInstances --------------------------------------------------------------
log "floor: paginated DescribeInstances"
measure "$venv/bin/python" "$here/seed.py" describe "$endpoint" >"$work/floor.json"
[ "$t_rc" = 0 ] || { echo "describe failed" >&2; exit 1; }
floor=$(cat "$work/floor.json")
read -r f_wall f_cpu f_rss f_count < <(printf '%s' "$floor" | "$venv/bin/python" -c \
  'import json,sys; d=json.load(sys.stdin); print(d["wall"], d["cpu"], round(d["rss_mb"]), d["instances"])')
floor_proc="$t_wall s wall, $t_cpu s CPU, $t_rss MB with interpreter start-up and imports"
floor_moto=$t_moto floor_req=$t_req

# ---- ttl-teardown dry run -----------------------------------------------------------------------
mkdir -p "$work/ttl"
cat >"$work/ttl/whitelist.yaml" <<'EOF'
never_delete:
  tags:
    - key: critical
      value: "true"
EOF
cat >"$work/ttl/config.yaml" <<EOF
kafka:
  fallback: {file: $work/ttl/events.jsonl}
aws:
  regions: [$REGION]
  endpoint_url: $endpoint
  accounts: [{id: "$ACCOUNT"}]
job:
  whitelist: whitelist.yaml
  allowed_accounts: ["$ACCOUNT"]
  sources:
    aws: true
  # The blast-radius caps (default 25 deletions, 20%) would refuse the plan (exit 2) before the
  # report; lift them so the run is measured to the end.
  caps: {max_deletions: 1000000, max_percent: 100}
EOF
log "ttl-teardown ($profile) dry run"
measure env RUST_LOG=warn AWS_ENDPOINT_URL="$endpoint" "$bin" --config "$work/ttl/config.yaml" \
  --output json --log-format json >"$work/ttl/event.json" 2>"$work/ttl/stderr.log"
ttl_rc=$t_rc ttl_wall=$t_wall ttl_cpu=$t_cpu ttl_rss=$t_rss ttl_moto=$t_moto ttl_req=$t_req
# A failed run (exit 1, e.g. listing timed out) still prints its result event: keep measuring,
# report it in the table and fail at the end.
if ! ttl=$("$venv/bin/python" "$here/seed.py" count-ttl "$work/ttl/event.json" 2>/dev/null); then
  tail -n 20 "$work/ttl/stderr.log" >&2
  echo "ttl-teardown exited $ttl_rc without a result event" >&2
  exit 1
fi
read -r ttl_del ttl_del_all ttl_findings ttl_errors < <(printf '%s' "$ttl" | "$venv/bin/python" -c \
  'import json,sys; d=json.load(sys.stdin); print(d["delete_instances"], d["delete_total"], d["findings"], d["errors"])')
if [ "$ttl_rc" != 0 ]; then
  log "ttl-teardown exited $ttl_rc (expected 0); its errors:"
  "$venv/bin/python" -c 'import json,sys; [print("  " + e[:300]) for e in json.load(open(sys.argv[1])).get("errors", [])]' \
    "$work/ttl/event.json" >&2
fi

# ---- custodian dry run --------------------------------------------------------------------------
mkdir -p "$work/c7n/out"
cat >"$work/c7n/policy.yml" <<'EOF'
policies:
  - name: ttl-teardown-equivalent
    resource: ec2
    filters:
      - "tag:auto-teardown": "true"
      - type: value
        key: "tag:environment"
        op: ne
        value: prod
      - type: value
        key: "tag:data-class"
        op: ne
        value: restricted
      - type: value
        key: "tag:created_at"
        value_type: age
        op: gt
        value: 7
    actions:
      - terminate
EOF
log "custodian $C7N_VERSION dry run"
measure env AWS_ENDPOINT_URL="$endpoint" "$c7n/bin/custodian" run --dryrun --cache-period 0 \
  --region "$REGION" -s "$work/c7n/out" "$work/c7n/policy.yml" \
  >"$work/c7n/stdout.log" 2>"$work/c7n/stderr.log"
resources="$work/c7n/out/ttl-teardown-equivalent/resources.json"
if [ "$t_rc" != 0 ] || [ ! -f "$resources" ]; then
  tail -n 20 "$work/c7n/stderr.log" >&2
  echo "custodian exited $t_rc or wrote no resources.json" >&2
  exit 1
fi
c7n_wall=$t_wall c7n_cpu=$t_cpu c7n_rss=$t_rss c7n_moto=$t_moto c7n_req=$t_req
c7n_match=$("$venv/bin/python" "$here/seed.py" count-c7n "$resources" | "$venv/bin/python" -c \
  'import json,sys; print(json.load(sys.stdin)["matched"])')

# ---- time to the first AWS request ----------------------------------------------------------------
# Each tool again, behind a relay in front of moto that notes when the first connection comes;
# stopped then.
first_ms() { "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["first_request_ms"])'; }
log "time to the first AWS request"
relay_port=$(free_port)
relay="http://127.0.0.1:$relay_port"
sed "s|endpoint_url: $endpoint|endpoint_url: $relay|" "$work/ttl/config.yaml" >"$work/ttl/config-relay.yaml"
ttl_first=$("$venv/bin/python" "$here/seed.py" first-request "$relay_port" "$endpoint" \
  env RUST_LOG=warn AWS_ENDPOINT_URL="$relay" "$bin" --config "$work/ttl/config-relay.yaml" | first_ms)
relay_port=$(free_port)
relay="http://127.0.0.1:$relay_port"
c7n_first=$("$venv/bin/python" "$here/seed.py" first-request "$relay_port" "$endpoint" \
  env AWS_ENDPOINT_URL="$relay" "$c7n/bin/custodian" run --dryrun --cache-period 0 \
  --region "$REGION" -s "$work/c7n/out-relay" "$work/c7n/policy.yml" | first_ms)
settle

# ---- report -------------------------------------------------------------------------------------
ttl_ver=$("$bin" --version 2>/dev/null | head -n 1 || echo ttl-teardown)
echo
echo "ttl-teardown vs Cloud Custodian, dry run, $n EC2 instances in moto $("$venv/bin/python" -c 'import moto; print(moto.__version__)') ($endpoint)"
echo "machine: $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg); $ttl_ver ($profile build); c7n $C7N_VERSION"
echo
fmt='%-26s %8s %12s %12s %18s %11s %9s\n'
printf "$fmt" tool "wall s" "user+sys s" "peak RSS MB" "resources matched" "moto CPU s" "API calls"
printf "$fmt" "floor: DescribeInstances" "$f_wall" "$f_cpu" "$f_rss" "$f_count listed" "$floor_moto" "$floor_req"
ttl_col=$ttl_del; [ "$ttl_rc" = 0 ] || ttl_col="FAILED: exit $ttl_rc"
printf "$fmt" "ttl-teardown ($profile)" "$ttl_wall" "$ttl_cpu" "$ttl_rss" "$ttl_col" "$ttl_moto" "$ttl_req"
printf "$fmt" "custodian $C7N_VERSION" "$c7n_wall" "$c7n_cpu" "$c7n_rss" "$c7n_match" "$c7n_moto" "$c7n_req"
echo
echo "expected matches: $expected instances (expired, warned, non-prod, auto-teardown=true)"
echo "floor: wall/CPU of the describe loop alone (boto3, 1,000 per page, $f_count instances); whole process: $floor_proc"
echo "ttl-teardown: exit $ttl_rc; $ttl_findings findings, $ttl_del_all to delete ($ttl_del instances + their root volumes), $ttl_errors errors"
echo "  it lists instances, the volumes no instance holds, security groups, RDS instances and snapshots (and"
echo "  the other kinds' empty pages), then reads the root volumes of the instances it would delete (a protected"
echo "  one holds its instance); a token bucket of 100 calls, then 20/s; findings: $ttl"
echo "first AWS request after start: ttl-teardown $ttl_first ms, custodian $c7n_first ms (a relay in front of moto"
echo "  notes the first connection; each tool run once more for it)"
echo "custodian: resource ec2 only; filters tag:auto-teardown=true, environment != prod, data-class != restricted,"
echo "  tag:created_at age > 7 days; actions [terminate] not run (--dryrun)"
echo "moto CPU s: the server's user+sys during each row (part of every wall time; wall - client CPU is mostly"
echo "  waiting on moto); API calls: requests moto served during each row (its access log)"
if [ "$ttl_rc" != 0 ]; then
  echo "ttl-teardown FAILED (exit $ttl_rc): see its errors above. Against moto, a listing call slower than the" >&2
  echo "SDK's 60 s per-attempt timeout is retried while moto still works on the abandoned request." >&2
  exit 1
fi
if [ "$ttl_del" != "$expected" ] || [ "$c7n_match" != "$expected" ]; then
  echo "WARNING: matched counts differ from the expected $expected" >&2
  exit 1
fi
