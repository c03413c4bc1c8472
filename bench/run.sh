#!/usr/bin/env bash
# Whole-process benchmark: Portcullis (SAML session check, SCIM directory
# gate and identity-header injection all on) against a bare Go
# httputil.ReverseProxy, and with --peers against Apache + mod_auth_mellon and
# oauth2-proxy, all in front of the same nginx upstream answering 2 bytes.
# Also measured: Portcullis with the identity token on (a second process),
# Portcullis's forward-auth answer (/.portcullis/auth, as Traefik asks it;
# once on its fast loop, once handed to net/http) and, with --peers,
# oauth2-proxy's /oauth2/auth beside it.
#
# Each server under test is pinned to one core (--server-cpu), wrk and nginx
# to the other (--client-cpu). Rounds are interleaved (A B A B ...) and the
# table shows medians and each proxy's ratio to the bare proxy. Absolute
# figures move with the machine; compare the ratios.
#
#   bench/run.sh [--duration 10s] [--rounds 3] [--connections 32]
#                [--warmup 2s] [--server-cpu 0] [--client-cpu 1]
#                [--peers] [--keep] [--cpuprofile FILE]
#
# Needs root (or sudo) only to apt-get install nginx, wrk and util-linux when
# they are missing. See README.md, "Performance".
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"

duration=10s rounds=3 conns=32 warmup=2s server_cpu=0 client_cpu=1 peers=0 keep=0 cpuprofile=""
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --server-cpu) server_cpu=$2; shift 2 ;;
    --client-cpu) client_cpu=$2; shift 2 ;;
    --peers) peers=1; shift ;;
    --keep) keep=1; shift ;;
    --cpuprofile) cpuprofile=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench/run.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
case "$rounds" in ''|*[!0-9]*) echo "bench/run.sh: --rounds must be a number, not $rounds" >&2; exit 2 ;; esac
[ "$rounds" -ge 1 ] || { echo "bench/run.sh: --rounds must be at least 1" >&2; exit 2; }
[ "$server_cpu" != "$client_cpu" ] || { echo "bench/run.sh: --server-cpu and --client-cpu must differ" >&2; exit 2; }

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# --- what the machine needs -------------------------------------------------
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v taskset >/dev/null || need+=(util-linux)
command -v curl >/dev/null || need+=(curl)
if [ "$peers" = 1 ]; then
  [ -e /usr/lib/apache2/modules/mod_auth_mellon.so ] || need+=(apache2 libapache2-mod-auth-mellon)
fi
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
ncpu=$(nproc --all)
[ "$server_cpu" -lt "$ncpu" ] && [ "$client_cpu" -lt "$ncpu" ] || die "this machine has $ncpu CPUs; pick --server-cpu/--client-cpu below that"

work=$(mktemp -d /tmp/portcullis-bench.XXXXXX)
pids=()
cleanup() {
  if declare -F stop_peers >/dev/null; then stop_peers; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$keep" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
start() { # start NAME CPU CMD...: run in the background, pinned, logs in $work/NAME.log
  local name=$1 cpu=$2; shift 2
  taskset -c "$cpu" "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
}
wait_http() { # wait_http URL: until it answers at all
  for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  die "$1 did not answer; see $work/*.log"
}

# --- build ------------------------------------------------------------------
log "building portcullis, the baseline proxy and the sign-in helper"
bin=$work/bin
go build -o "$bin/" ./bench/baseline ./bench/signin
if [ -n "$cpuprofile" ]; then
  # A profiling build: bench/pprof.go.txt is compiled into package main
  # through -overlay (pprof on 127.0.0.1:18084), the tree is not touched.
  printf '{"Replace":{"%s":"%s"}}' "$ROOT/cmd/portcullis/zz_bench_pprof.go" "$ROOT/bench/pprof.go.txt" >"$work/overlay.json"
  go build -overlay "$work/overlay.json" -o "$bin/" ./cmd/portcullis
else
  go build -o "$bin/" ./cmd/portcullis
fi

# --- the upstream -------------------------------------------------------------
up_port=18081
mkdir -p "$work/nginx-tmp"
sed -e "s#@DIR@#$work#g" -e "s#@PORT@#$up_port#g" bench/nginx.conf.in >"$work/nginx.conf"
start nginx "$client_cpu" nginx -c "$work/nginx.conf" -p "$work" -e "$work/nginx-error.log"
wait_http "http://127.0.0.1:$up_port/"
upstream="http://127.0.0.1:$up_port"

# --- the baseline -------------------------------------------------------------
base_port=18080
start baseline "$server_cpu" "$bin/baseline" -listen "127.0.0.1:$base_port" -upstream "$upstream" -pprof 127.0.0.1:18085
base_pid=${pids[-1]}
wait_http "http://127.0.0.1:$base_port/"

# --- Portcullis with a real session -------------------------------------------
# The demo (`portcullis demo`) brings the demo IdP. The Portcullis under test
# shares the demo's session keys, so a session the demo issues after a real
# SAML sign-in is valid on it; its own SCIM directory (SQLite in $work) has
# the user provisioned active through its SCIM API before the sign-in.
log "starting portcullis demo for its IdP"
start demo "$client_cpu" "$bin/portcullis" demo --listen 127.0.0.1:0 --log-level warn
demo_pid=${pids[-1]}
demo_out=$work/demo.log
for _ in $(seq 100); do grep -q 'Config:' "$demo_out" 2>/dev/null && break; sleep 0.2; done
demo_url=$(awk '/Open:/ {print $2; exit}' "$demo_out")
idp_url=$(awk '/IdP:/ {print $2; exit}' "$demo_out")
demo_dir=$(dirname "$(awk '/Config:/ {print $2; exit}' "$demo_out")")
[ -n "$demo_url" ] && [ -n "$idp_url" ] && [ -f "$demo_dir/session.keys" ] || die "portcullis demo did not start; see $demo_out"
pc=$work/portcullis
mkdir -p "$pc"
cp "$demo_dir/session.keys" "$demo_dir/sp.crt" "$demo_dir/sp.key" "$pc/"
scim_token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf 'bench %s\n' "$scim_token" >"$pc/scim.tokens"
chmod 600 "$pc/scim.tokens"
pc_port=18082
cat >"$pc/portcullis.yaml" <<EOF
version: 1
listen: "127.0.0.1:$pc_port"
adminListen: "127.0.0.1:18083"
publicURL: "http://127.0.0.1:$pc_port"
upstream: "$upstream"
trustedProxies: ["127.0.0.1"]
forwardAuth: {enabled: true}
saml:
  idpMetadataURL: "${idp_url%/}/metadata"
  certFile: sp.crt
  keyFile: sp.key
  attributes: {user: uid, email: mail, name: displayName, groups: groups}
session:
  keysFile: session.keys
headers:
  X-Forwarded-User: user
  X-Forwarded-Email: email
  X-Forwarded-Groups: groups
routes:
  - path: /admin/
    allowGroups: [admins]
scim:
  enabled: true
  tokensFile: scim.tokens
  match: {identityField: email, scimAttribute: userName}
  requireProvisioned: true
  groupsSource: scim
store:
  driver: sqlite
  dsn: portcullis.db
EOF
# The access log goes to a file, as it would in production (not /dev/null).
start portcullis "$server_cpu" env PORTCULLIS_BENCH_PPROF=127.0.0.1:18084 "$bin/portcullis" serve --config "$pc/portcullis.yaml"
pc_pid=${pids[-1]} # taskset and env exec, so this is portcullis itself
wait_http "http://127.0.0.1:18083/healthz"
scim() { # scim METHOD PATH BODY: prints the created id (on $scim_port, default Portcullis's)
  curl -sS -X "$1" "http://127.0.0.1:${scim_port:-$pc_port}/scim/v2$2" -H "Authorization: Bearer $scim_token" \
    -H 'Content-Type: application/scim+json' -d "$3" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p'
}
alice=$(scim POST /Users '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice@example.com","displayName":"Alice Anders","emails":[{"value":"alice@example.com","primary":true}],"active":true}')
[ -n "$alice" ] || die "SCIM create of alice failed; see $work/portcullis.log"
gid=$(scim POST /Groups "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"displayName\":\"staff\",\"members\":[{\"value\":\"$alice\"}]}")
[ -n "$gid" ] || die "SCIM create of group staff failed"
# --- Portcullis with the identity token ------------------------------------------
# The same config and session keys plus identityToken, in a second process
# with its own directory (alice provisioned the same way, before the
# sign-in: a session older than the user's creation is void), so the one
# session is valid on both.
pc2=$work/portcullis-token
mkdir -p "$pc2"
"$bin/portcullis" keys --out "$pc2/k" >/dev/null
cp "$pc/session.keys" "$pc/sp.crt" "$pc/sp.key" "$pc/scim.tokens" "$pc2/k/identity.keys" "$pc2/"
pc2_port=18088
sed -e "s#127.0.0.1:$pc_port#127.0.0.1:$pc2_port#g" -e 's#127.0.0.1:18083#127.0.0.1:18089#' "$pc/portcullis.yaml" >"$pc2/portcullis.yaml"
printf 'identityToken:\n  keysFile: identity.keys\n' >>"$pc2/portcullis.yaml"
start portcullis-token "$server_cpu" "$bin/portcullis" serve --config "$pc2/portcullis.yaml"
pc2_pid=${pids[-1]}
wait_http "http://127.0.0.1:18089/healthz"
alice2=$(scim_port=$pc2_port scim POST /Users '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice@example.com","displayName":"Alice Anders","emails":[{"value":"alice@example.com","primary":true}],"active":true}')
[ -n "$alice2" ] || die "SCIM create of alice on the token Portcullis failed"
scim_port=$pc2_port scim POST /Groups "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"displayName\":\"staff\",\"members\":[{\"value\":\"$alice2\"}]}" >/dev/null
log "signing in as alice through the demo IdP"
cookie=$("$bin/signin" -url "$demo_url" -user alice -cookie-prefix portcullis) || die "sign-in failed"
who=$(curl -sS -H "Cookie: $cookie" "http://127.0.0.1:$pc_port/whoami")
[ "$who" = "alice|alice@example.com|staff" ] || die "identity headers at the upstream are '$who', want alice|alice@example.com|staff"
anon=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$pc_port/")
[ "$anon" = 401 ] || die "without a session Portcullis answered $anon, want 401"
log "session checked: upstream sees '$who'; without the cookie: $anon"

# A forward-auth question as Traefik asks it: several headers, split on RS.
rs=$'\x1e'
fa_hdr="Cookie: $cookie${rs}X-Forwarded-Method: GET${rs}X-Forwarded-Proto: http${rs}X-Forwarded-Host: app.example.com${rs}X-Forwarded-Uri: /app/page?x=1"

# --- peers ---------------------------------------------------------------------
# name, url, request header, pid of the server (its CPU time is measured), tab-separated: cookies may hold "|"
# Every proxy gets the same request bytes: the bare proxy is sent
# Portcullis's session cookie too (to it just a header to forward), as a
# browser would send it to whatever serves the origin.
targets=("bare-go-reverseproxy"$'\t'"http://127.0.0.1:$base_port/"$'\t'"Cookie: $cookie"$'\t'"$base_pid")
targets+=("portcullis"$'\t'"http://127.0.0.1:$pc_port/"$'\t'"Cookie: $cookie"$'\t'"$pc_pid")
targets+=("portcullis-identity-token"$'\t'"http://127.0.0.1:$pc2_port/"$'\t'"Cookie: $cookie"$'\t'"$pc2_pid")
targets+=("portcullis-forward-auth"$'\t'"http://127.0.0.1:$pc_port/.portcullis/auth"$'\t'"$fa_hdr"$'\t'"$pc_pid")
# The same question with a Connection token the fast loop leaves to
# net/http (internal/fastpath): what the loop saves, in the same process.
targets+=("portcullis-forward-auth-via-net-http"$'\t'"http://127.0.0.1:$pc_port/.portcullis/auth"$'\t'"$fa_hdr${rs}Connection: keep-alive, x-bench"$'\t'"$pc_pid")
if [ "$peers" = 1 ]; then
  # shellcheck source=bench/peers.sh
  . bench/peers.sh
  start_peers # appends to targets
fi
kill "$demo_pid" 2>/dev/null || true # the demo is no longer needed

# --- rounds ----------------------------------------------------------------------
# cpu_ticks PID: CPU time (user+system, clock ticks) of PID and every live
# descendant (Apache's workers), plus what their reaped children used.
cpu_ticks() {
  local total=0 p stat
  for p in $1 $(descendants "$1"); do
    stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    stat=${stat##*) } # fields after the command name; utime is the 12th here
    set -- $stat
    total=$((total + ${12} + ${13} + ${14} + ${15}))
  done
  echo "$total"
}
descendants() { local c; for c in $(ps -o pid= --ppid "$1"); do echo "$c"; descendants "$c"; done; }
clk_tck=$(getconf CLK_TCK)

# headers HEADERS: the -H arguments for one or more headers split on RS (\x1e)
headers() { local h; IFS=$'\x1e' read -r -a hs <<<"$1"; for h in "${hs[@]}"; do [ -n "$h" ] && printf '%s\0' -H "$h"; done; }
run_wrk() { # run_wrk URL HEADERS DURATION
  local hdr=()
  mapfile -d '' hdr < <(headers "$2")
  taskset -c "$client_cpu" wrk -t1 -c"$conns" -d"$3" --timeout 5s -s bench/report.lua "${hdr[@]}" "$1" | grep '^RESULT'
}
for t in "${targets[@]}"; do
  IFS=$'\t' read -r name url hdr _ <<<"$t"
  # The exact request wrk will send must reach the upstream (a redirect to
  # a sign-in page would not count as an error in wrk's summary).
  mapfile -d '' curl_hdr < <(headers "$hdr")
  case "$url" in
  */.portcullis/auth | */oauth2/auth) # an auth answer: allowed, no body
    code=$(curl -sS -o /dev/null -w '%{http_code}' "${curl_hdr[@]}" "$url") || die "$name: $url did not answer"
    case "$code" in 200 | 202) ;; *) die "$name: the benchmark request got $code, not an allowing 2xx" ;; esac ;;
  *)
    got=$(curl -sS "${curl_hdr[@]}" "$url") || die "$name: $url did not answer"
    [ "$got" = ok ] || die "$name: the benchmark request got '${got:0:80}', not the upstream's 'ok'" ;;
  esac
  log "warm-up $name"
  run_wrk "$url" "$hdr" "$warmup" >/dev/null
done
if [ -n "$cpuprofile" ]; then
  # Compare: go tool pprof -top -diff_base FILE.bare bin/portcullis FILE
  log "cpu profiles for $duration: portcullis -> $cpuprofile, bare proxy -> $cpuprofile.bare, forward-auth -> $cpuprofile.forward-auth"
  for prof in "http://127.0.0.1:$pc_port/"$'\t'"Cookie: $cookie"$'\t'"18084"$'\t'"$cpuprofile" \
    "http://127.0.0.1:$base_port/"$'\t'"Cookie: $cookie"$'\t'"18085"$'\t'"$cpuprofile.bare" \
    "http://127.0.0.1:$pc_port/.portcullis/auth"$'\t'"$fa_hdr"$'\t'"18084"$'\t'"$cpuprofile.forward-auth"; do
    IFS=$'\t' read -r url hdr port file <<<"$prof"
    run_wrk "$url" "$hdr" "$duration" >/dev/null &
    wrk_pid=$!
    curl -sS -o "$file" "http://127.0.0.1:$port/debug/pprof/profile?seconds=${duration%s}" || die "profile failed"
    wait "$wrk_pid"
  done
  cp "$bin/portcullis" "$bin/baseline" "$(dirname "$cpuprofile")/"
fi
results=$work/results.txt
: >"$results"
for r in $(seq "$rounds"); do
  for t in "${targets[@]}"; do
    IFS=$'\t' read -r name url hdr pid <<<"$t"
    before=$(cpu_ticks "$pid")
    line=$(run_wrk "$url" "$hdr" "$duration")
    after=$(cpu_ticks "$pid")
    # CPU microseconds the server spent per request: what a core's worth
    # of requests costs, whatever else shares the machine.
    cpu_us=$(awk -v a="$after" -v b="$before" -v t="$clk_tck" -v l="$line" \
      'BEGIN {split(l, f, /requests=/); printf "%.1f", (a - b) * 1e6 / t / f[2]}')
    log "round $r $name: $line cpu_us_per_req=$cpu_us"
    echo "$name $line cpu_us=$cpu_us" >>"$results"
  done
done

# --- table -------------------------------------------------------------------------
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
field() { grep "^$1 " "$results" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
base_rps=$(field bare-go-reverseproxy rps | median)
base_p99=$(field bare-go-reverseproxy p99_us | median)
base_cpu=$(field bare-go-reverseproxy cpu_us | median)
echo
echo "Interleaved rounds: $rounds x $duration, $conns connections, wrk -t1 on CPU $client_cpu, each server on CPU $server_cpu."
echo "req/s is what wrk measured; per core is 1,000,000 / the server's CPU microseconds per request"
echo "(its user+system time over the round / requests), which other load on the machine moves far less."
echo
echo "| proxy | req/s (median) | vs bare | CPU per request | req/s per core | vs bare | p50 | p99 | p99 - bare p99 | errors |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for t in "${targets[@]}"; do
  IFS=$'\t' read -r name _ _ _ <<<"$t"
  rps=$(field "$name" rps | median)
  cpu=$(field "$name" cpu_us | median)
  p50=$(field "$name" p50_us | median)
  p99=$(field "$name" p99_us | median)
  errs=$( (field "$name" errors; field "$name" non2xx) | awk '{s+=$1} END {print s+0}')
  awk -v n="$name" -v r="$rps" -v b="$base_rps" -v c="$cpu" -v bc="$base_cpu" -v p50="$p50" -v p99="$p99" -v bp="$base_p99" -v e="$errs" \
    'BEGIN {printf "| %s | %.0f | %.2fx | %.1f µs | %.0f | %.2fx | %.2f ms | %.2f ms | %+.2f ms | %d |\n",
      n, r, r/b, c, 1e6/c, bc/c, p50/1000, p99/1000, (p99-bp)/1000, e}'
done
