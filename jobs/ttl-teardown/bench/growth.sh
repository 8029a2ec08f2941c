#!/usr/bin/env bash
# Benchmark: how ttl-teardown's client CPU grows with the inventory.
#
#   bash jobs/ttl-teardown/bench/growth.sh [N ...] [--profile debug|release] [--no-build]
#
# Runs compare-custodian.sh (a fresh moto per size, the same seeded inventory shape) for each N
# (default 0 250 1000 2000) and prints, per N, ttl-teardown's and custodian's wall, client CPU
# (user+sys) and CPU per instance; with N = 0 among the sizes, also the CPU per instance above
# the empty-region run (start-up, config, one empty page per kind), which is what should stay
# flat. The spread line compares the per-instance figures of the non-empty sizes. Every size
# must match the expected instances (compare-custodian.sh fails otherwise), so CI can run it
# small; the figures are printed, never asserted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sizes=()
pass=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) pass+=("$1" "${2:?--profile needs debug or release}"); shift 2 ;;
    --profile=* | --no-build) pass+=("$1"); shift ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    [0-9]*) sizes+=("$1"); shift ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#sizes[@]} -gt 0 ] || sizes=(0 250 1000 2000)

rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
first=1
for n in "${sizes[@]}"; do
  args=("$n" "${pass[@]}")
  # Build once (the first size), not before every size.
  if [ "$first" = 0 ]; then args+=(--no-build); fi
  first=0
  printf '[growth] N = %s\n' "$n" >&2
  if ! out=$(bash "$here/compare-custodian.sh" "${args[@]}"); then
    printf '%s\n' "$out" >&2
    echo "compare-custodian.sh $n failed" >&2
    exit 1
  fi
  # The table's rows: "ttl-teardown (debug)  wall cpu rss ..." and "custodian 0.9.53  wall cpu ...".
  ttl=$(grep -E '^ttl-teardown \(' <<<"$out" | awk '{print $3, $4, $5}')
  c7n=$(grep -E '^custodian ' <<<"$out" | awk '{print $3, $4, $5}')
  echo "$n $ttl $c7n" >>"$rows"
done

python3 - "$rows" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
rows = [(int(n), *map(float, rest)) for n, *rest in rows]
base = {r[0]: r for r in rows}.get(0)
print()
print(f"{'N':>6} {'ttl wall s':>10} {'ttl CPU s':>9} {'ttl RSS MB':>10} {'ttl CPU ms/inst':>15} "
      f"{'above N=0':>10} {'c7n wall s':>10} {'c7n CPU s':>9} {'c7n CPU ms/inst':>15}")
per, above = [], []
for n, tw, tc, tr, cw, cc, cr in rows:
    p = f"{1000 * tc / n:.3f}" if n else "-"
    a = f"{1000 * (tc - base[2]) / n:.3f}" if n and base else "-"
    q = f"{1000 * cc / n:.3f}" if n else "-"
    if n:
        per.append(1000 * tc / n)
        if base:
            above.append(1000 * (tc - base[2]) / n)
    print(f"{n:>6} {tw:>10.2f} {tc:>9.2f} {tr:>10.0f} {p:>15} {a:>10} {cw:>10.2f} {cc:>9.2f} {q:>15}")
def spread(xs):
    return f"{100 * (max(xs) - min(xs)) / min(xs):.0f} %" if len(xs) > 1 and min(xs) > 0 else "-"
print(f"\nspread of ttl-teardown's CPU per instance: {spread(per)}; above the empty run: {spread(above)}")
PY
