#!/usr/bin/env bash
# Fuzz what parses untrusted input, each target for a bounded time, and print the figures.
#
#   bash fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Targets (fuzz/fuzz_targets/): snooze_token (links' tokens and a sign/verify round trip),
# whitelist_loader, tag_parsers, config_loader. Default 60 s each. libFuzzer through cargo-fuzz
# needs nightly: the script installs a minimal nightly toolchain and cargo-fuzz (crates.io, into
# $GOV_CACHE/cargo-fuzz) when missing. Corpora live in $GOV_CACHE/fuzz-corpus/<target>, crashes
# in fuzz/artifacts/<target>/ (a crash found becomes a regression test next to the code it hit).
# Not run by CI (nightly, and minutes per target); CI keeps the proptest properties.
set -euo pipefail
cd "$(dirname "$0")"
export GOV_CACHE=${GOV_CACHE:-/var/cache/governance-jobs}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR_FUZZ:-$GOV_CACHE/target-fuzz}
seconds=60
case "${1:-}" in
  -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  [0-9]*) seconds=$1; shift ;;
esac
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(snooze_token whitelist_loader tag_parsers config_loader)

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
export PATH="$GOV_CACHE/cargo-fuzz/bin:$PATH"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --root "$GOV_CACHE/cargo-fuzz" -j 2

# Optimised, with debug assertions (overflow checks included), as cargo-fuzz recommends.
CARGO_BUILD_JOBS=2 cargo +nightly fuzz build -O -a --target-dir "$CARGO_TARGET_DIR"
status=0
for t in "${targets[@]}"; do
  corpus="$GOV_CACHE/fuzz-corpus/$t"
  mkdir -p "$corpus" "artifacts/$t"
  log=$(mktemp)
  set +e
  cargo +nightly fuzz run -O -a --target-dir "$CARGO_TARGET_DIR" "$t" "$corpus" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crashes=$(find "artifacts/$t" -type f | wc -l)
  printf '%-18s %4s s  %10s executions  %s crash file(s)  exit %s\n' "$t" "$seconds" "${runs:-?}" "$crashes" "$rc"
  if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
    grep -E -m5 'panicked|ERROR|SUMMARY' "$log" || tail -5 "$log"
    status=1
  fi
  rm -f "$log"
done
exit "$status"
