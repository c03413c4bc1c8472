#!/usr/bin/env bash
# Holds the hot path's allocations: runs the benchmarks named in
# bench/alloc-budget.txt briefly with -benchmem and fails when any reports
# more allocs/op than its budget, or when a budgeted benchmark is missing.
#
#   bench/allocs.sh [budget-file]
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-bench/alloc-budget.txt}
[ -r "$budget" ] || { echo "bench/allocs.sh: cannot read $budget" >&2; exit 2; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fail=0
for pkg in $(awk '!/^#/ && NF {print $1}' "$budget" | sort -u); do
  # top-level benchmark names of this package, as one anchored pattern
  pattern=$(awk -v p="$pkg" '$1 == p {split($2, a, "/"); print a[1]}' "$budget" | sort -u | paste -sd'|')
  go test "$pkg" -run '^$' -bench "^(${pattern})\$" -benchmem -benchtime 2000x -count 1 >"$out" 2>&1 || { cat "$out"; exit 1; }
  while read -r _ name max; do
    # "BenchmarkX/sub-2  2000  123 ns/op  45 B/op  6 allocs/op"
    got=$(awk -v n="$name" '{sub(/-[0-9]+$/, "", $1)} $1 == n {for (i = 2; i <= NF; i++) if ($i == "allocs/op") print $(i-1)}' "$out" | head -1)
    if [ -z "$got" ]; then
      echo "FAIL $pkg $name: not run (renamed or removed? update $budget)"; fail=1
    elif [ "$got" -gt "$max" ]; then
      echo "FAIL $pkg $name: $got allocs/op, budget $max"; fail=1
    else
      echo "ok   $pkg $name: $got allocs/op (budget $max)"
    fi
  done < <(awk -v p="$pkg" '$1 == p {print $1, $2, $3}' "$budget")
done
exit $fail
