#!/usr/bin/env bash
# The process's memory with 100,000 users and 10,000 groups on SQLite
# (issue #14.8): seeds a store (509,950 memberships), starts the built
# binary, and prints VmHWM at ready (the start, with the directory load) and
# VmRSS after a period of SCIM reads and writes (Bulk included) and proxied
# requests through the gate, read from /proc/PID/status.
#
#   bash bench/scim-memory.sh            # 60 s of workload
#   STEADY=5m bash bench/scim-memory.sh  # a longer period
#
# It takes about 2 minutes plus the period. Run it on a quiet machine; the
# full log (gctrace included) is kept in $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -t scim-memory.XXXXXX.log)}
PORTCULLIS_MEMTEST=1 PORTCULLIS_MEMTEST_STEADY=${STEADY:-60s} \
	go test -run '^TestProcessMemory_100kUsers10kGroups$' -count=1 -v -timeout 30m ./cmd/portcullis/ >"$OUT" 2>&1 || {
	tail -50 "$OUT"
	echo "failed; full log: $OUT" >&2
	exit 1
}
grep -E 'empty store|store:|start to ready|workload for|at the end|MEMORY' "$OUT" | sed -E 's/^ +memory_test.go:[0-9]+: //'
echo "full log: $OUT"
