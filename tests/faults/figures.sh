#!/usr/bin/env bash
# The fault suite at full size: the figures README.md records (tests/faults).
#
#   bash tests/faults/figures.sh [--no-build]
#
# CI runs every test of the suite once (30 % throttling, seed 20261202; one broker freeze).
# This runs the throttling test at 10 %, 30 % and 50 % with three seeds each, and the broker
# freeze three times, and prints each run's figure line. Needs the test bed .ci/setup installs.
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOV_CACHE=${GOV_CACHE:-/var/cache/governance-jobs}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$GOV_CACHE/target}
case "${1:-}" in
  -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --no-build) ;;
  "") cargo build --workspace --bins --tests -j 2 -q ;;
  *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac
suite() { cargo test -q --workspace -j 2 --test suite -- --nocapture --test-threads 1 "$@" 2>&1; }
for rate in 0.1 0.3 0.5; do
  for seed in 1 2 3; do
    out=$(GOV_FAULTS_RATE=$rate GOV_FAULTS_SEED=$seed suite throttling) \
      || { printf '%s\n' "$out" | grep -v '^{"timestamp' | tail -40; echo "FAILED at rate $rate seed $seed" >&2; exit 1; }
    grep -E '^throttling ' <<<"$out"
  done
done
for i in 1 2 3; do
  out=$(suite broker) || { printf '%s\n' "$out" | tail -40; echo "FAILED: broker freeze $i" >&2; exit 1; }
  grep -E '^broker frozen' <<<"$out"
done
