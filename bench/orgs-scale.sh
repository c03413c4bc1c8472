#!/usr/bin/env bash
# Organizations at scale (issue #15): N organizations (default 1,000), each
# with its own IdP metadata file (a certificate of its own) and email domain,
# one file each in organizationsDir. Prints:
#   - check-config wall time (loads every organization file and metadata),
#   - serve: start to /readyz 200, and resident memory once ready (VmRSS, and
#     the peak VmHWM), after a settle,
#   - the per-request organization checks (samlsp Admits, HostOrg) with 1
#     and with N organizations (go test -bench), which must not grow with N;
#   - with --users U (default 100; 0 skips): the organizations listed in the
#     config with a SCIM directory each (organizationsDir takes no SCIM yet),
#     U users provisioned into each through SCIM Bulk, then a restart on
#     that store: check-config, start to ready, resident memory.
#
#   bench/orgs-scale.sh [--orgs 1000] [--users 100] [--settle 5] [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

orgs=1000 users=100 settle=5 keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --orgs) orgs=$2; shift 2 ;;
    --users) users=$2; shift 2 ;;
    --settle) settle=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/orgs-scale.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d /tmp/portcullis-orgs-XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ "$keep" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listen="127.0.0.1:$(free_port)" admin="127.0.0.1:$(free_port)"

go build -o "$work/portcullis" ./cmd/portcullis
"$work/portcullis" keys --out "$work/keys" >/dev/null
go run ./bench/orgs -out "$work" -n "$orgs" -listen "$listen" -admin "$admin" -upstream "http://127.0.0.1:9"

now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.2f}')" "$1" "$2"; }

t0=$(now)
"$work/portcullis" check-config --config "$work/portcullis.yaml" --log-level warn >/dev/null
t1=$(now)
echo "organizations:            $orgs"
echo "check-config:             $(secs "$t0" "$t1") s"

# start_ready DIR: serve DIR/portcullis.yaml in the background (pid), print
# the time to /readyz 200.
start_ready() {
  local t0 t1
  t0=$(now)
  "$work/portcullis" serve --config "$1/portcullis.yaml" --log-level warn 2>"$1/serve.log" &
  pid=$!
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$admin/readyz" || true)" = 200 ]; do
    if ! kill -0 "$pid" 2>/dev/null; then echo "serve exited:"; cat "$1/serve.log"; exit 1; fi
    sleep 0.05
  done
  t1=$(now)
  echo "start to ready:           $(secs "$t0" "$t1") s"
}
# memory: VmRSS and VmHWM of pid after the settle.
memory() {
  sleep "$settle"
  echo "resident memory (ready):  $(( $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status") / 1024 )) MB (peak $(( $(awk '/^VmHWM/ {print $2}' "/proc/$pid/status") / 1024 )) MB)"
}
stop_serve() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

start_ready "$work"
served=$(curl -s "http://$admin/metrics" | grep -c '^portcullis_idp_metadata_age_seconds{' || true)
echo "organizations with a metadata age series: $served"
memory
stop_serve

echo "per-request organization checks (ns/op; must not grow with organizations):"
go test ./samlsp -run '^$' -bench 'BenchmarkOrganizationChecks' -benchtime 1000000x -count 5 -benchmem \
  -orgs "$orgs" | grep '^Benchmark'

if [ "$users" -gt 0 ]; then
  echo
  echo "with a SCIM directory per organization, $users users each:"
  scim="$work/scim"
  mkdir -p "$scim" && cp -r "$work/keys" "$scim/"
  go run ./bench/orgs -out "$scim" -n "$orgs" -scim -listen "$listen" -admin "$admin" -upstream "http://127.0.0.1:9"
  start_ready "$scim" >/dev/null
  t0=$(now)
  go run ./bench/orgs -out "$scim" -n "$orgs" -provision "http://$listen" -users "$users"
  t1=$(now)
  echo "provisioned $((orgs * users)) users through SCIM Bulk in $(secs "$t0" "$t1") s"
  stop_serve
  t0=$(now)
  "$work/portcullis" check-config --config "$scim/portcullis.yaml" --log-level warn >/dev/null
  t1=$(now)
  echo "check-config:             $(secs "$t0" "$t1") s"
  start_ready "$scim"
  memory
fi
