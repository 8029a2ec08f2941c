#!/usr/bin/env bash
# The fault suite at full size: the figures README.md records (tests/faults).
#
#   bash tests/faults/figures.sh [--no-build]
#
# CI runs every test of the suite once (30 % throttling, seed 20261202; one broker freeze; five
# kill points). This runs the throttling test at 10 %, 30 % and 50 % with three seeds each, the
# broker freeze three times and kill -9 before and after every removal call of a run (2 × K
# points), the snooze service under load for 30 s, and prints each figure line. Needs the test bed .ci/setup installs.
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOV_CACHE=${GOV_CACHE:-/var/cache/governance-jobs}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$GOV_CACHE/target}
case "${1:-}" in
  -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --no-build) ;;
  "") cargo build --workspace --bins --tests -j 2 -q ;;
  *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac
suite() { cargo test -q --workspace -j 2 --test suite -- --nocapture --test-threads 1 "$@" 2>&1; }
failed=0
# A failure is a figure too (the rate not survived): print why, go on, exit 1 at the end.
fail() { printf '%s\n' "$2" | grep -v '^{"timestamp' | grep -E -A12 'panicked' | head -14; echo "FAILED: $1"; failed=1; }
for rate in 0.1 0.3 0.5; do
  for seed in 1 2 3; do
    if out=$(GOV_FAULTS_RATE=$rate GOV_FAULTS_SEED=$seed suite throttling); then
      grep -E '^throttling ' <<<"$out"
    else
      fail "throttling at $rate, seed $seed" "$out"
    fi
  done
done
for i in 1 2 3; do
  if out=$(suite broker); then grep -E '^broker frozen' <<<"$out"; else fail "broker freeze $i" "$out"; fi
done
if out=$(GOV_FAULTS_KILL_POINTS=all suite kill); then grep -E '^kill' <<<"$out"; else fail "kill points" "$out"; fi
# The snooze service under load (its test lives with the service's harness).
if out=$(GOV_SNOOZE_LOAD_SECS=30 cargo test -q --workspace -j 2 --test snooze -- --nocapture under_load 2>&1); then
  grep -E '^snooze under load' <<<"$out"
else
  fail "snooze under load" "$out"
fi
exit "$failed"
