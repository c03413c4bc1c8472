#!/usr/bin/env bash
# What the Dockerfile promises, tested without a Docker engine.
#
# Builds the binary exactly as the Dockerfile's build stage does (static,
# CGO_ENABLED=0, -trimpath, version via -ldflags), then runs it in a root file
# system that holds only what the distroless image holds: the binary,
# /etc/ssl/certs/ca-certificates.crt, /etc/passwd and /etc/group with nonroot
# (65532), /tmp, and the mounted config, keys and IdP metadata. As root it
# runs as 65532:65532 with the root file system read-only and a tmpfs on
# /tmp, as the Helm chart runs it in Kubernetes.
#
# Checks: the Dockerfile's build and runtime settings; the binary is static;
# `version`; `check-config` with the IdP metadata from a file and from an
# https URL trusted only through the rootfs's CA bundle; `serve`, with
# /healthz and /readyz answering 200 on the admin port, a browser sent to the
# IdP, a SCIM user written to the SQLite store in /tmp; and SIGTERM ending
# the process with exit 0 within server.drainTimeout.
#
# Usage: bash .ci/rootfs-test.sh        (KEEP=1 keeps the work directory)
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

failures=()
passes=0
pass() { passes=$((passes + 1)); printf 'PASS  %s\n' "$*"; }
fail() { failures+=("$*"); printf 'FAIL  %s\n' "$*"; }
die() { fail "$*"; summary; }
summary() {
  echo
  if [ ${#failures[@]} -eq 0 ]; then
    echo "rootfs-test: PASS ($passes checks, isolation: ${isolation:-none})"
    exit 0
  fi
  echo "rootfs-test: FAIL (${#failures[@]} of $((passes + ${#failures[@]})) checks failed)"
  for f in "${failures[@]}"; do echo "  - $f"; done
  [ -n "${work:-}" ] && echo "logs and files: $work (kept)"
  KEEP=1
  exit 1
}

for tool in go file ldd openssl curl chroot unshare; do
  command -v "$tool" >/dev/null || die "needs $tool in PATH"
done

work=$(mktemp -d /tmp/portcullis-rootfs.XXXXXX)
chmod 0755 "$work"
server_pid=
tls_pid=
cleanup() {
  for p in $server_pid $tls_pid; do kill -KILL "$p" 2>/dev/null; done
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

# --- The Dockerfile says what this script reproduces -----------------------
step() { printf '\n=== %s\n' "$*"; }
step "Dockerfile"
dockerfile_has() {
  if grep -qF -- "$1" Dockerfile; then pass "Dockerfile: $2"; else fail "Dockerfile lacks $1 ($2)"; fi
}
dockerfile_has 'FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build' "golang builder stage"
dockerfile_has 'CGO_ENABLED=0' "static build"
dockerfile_has 'go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /portcullis ./cmd/portcullis' "build command"
dockerfile_has 'FROM gcr.io/distroless/static-debian12:nonroot' "distroless static nonroot base"
dockerfile_has 'USER 65532:65532' "runs as 65532"
dockerfile_has 'EXPOSE 8080 9090' "ports"
dockerfile_has 'ENTRYPOINT ["/portcullis"]' "entrypoint"
dockerfile_has 'CMD ["serve", "--config", "/etc/portcullis/config.yaml"]' "default command"
last_from=$(grep -E '^FROM ' Dockerfile | tail -1)
case "$last_from" in
  *distroless/static*|*scratch*) pass "final stage has no shell ($last_from)" ;;
  *) fail "final stage $last_from may carry a shell" ;;
esac

# --- Build exactly as the Dockerfile does ----------------------------------
step "build"
VERSION="rootfs-test-$(git rev-parse --short HEAD 2>/dev/null || echo dev)"
bin="$work/portcullis"
if CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o "$bin" ./cmd/portcullis; then
  pass "go build (CGO_ENABLED=0 -trimpath -ldflags \"-s -w -X main.version=$VERSION\")"
else
  die "go build ./cmd/portcullis"
fi
desc=$(file -b "$bin")
case "$desc" in
  *"statically linked"*) pass "file: $desc" ;;
  *) fail "file says the binary is not static: $desc" ;;
esac
ldd_out=$(ldd "$bin" 2>&1)
case "$ldd_out" in
  *"not a dynamic executable"*|*"statically linked"*) pass "ldd: $(echo "$ldd_out" | tr -d '\t')" ;;
  *) fail "ldd lists shared libraries: $ldd_out" ;;
esac
buildinfo=$(go version -m "$bin")
# (-trimpath leaves -ldflags out of the build info; `version` below checks it.)
for want in "build	CGO_ENABLED=0" "build	-trimpath=true"; do
  if grep -qF -- "$want" <<<"$buildinfo"; then pass "build info has ${want//	/ }"; else fail "build info lacks ${want//	/ }"; fi
done

# --- Keys, IdP metadata and a TLS server for the metadata URL -------------
step "keys and IdP"
"$bin" keys --out "$work/keys" >/dev/null || die "portcullis keys"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=rootfs-test idp" \
  -keyout "$work/idp.key" -out "$work/idp.crt" 2>/dev/null || die "openssl: IdP signing certificate"
idp_cert_b64=$(sed -e '/-----/d' "$work/idp.crt" | tr -d '\n')
cat >"$work/idp-metadata.xml" <<XML
<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.com/saml/idp">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
        <ds:X509Data><ds:X509Certificate>${idp_cert_b64}</ds:X509Certificate></ds:X509Data>
      </ds:KeyInfo>
    </md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.com/saml/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
XML
# A private CA and a server certificate for 127.0.0.1: the metadata URL is
# trusted only if the binary reads the rootfs's CA bundle.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=rootfs-test CA" \
  -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null &&
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null &&
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days 1 \
  -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n') \
  -out "$work/tls.crt" 2>/dev/null || die "openssl: test CA and server certificate"
scim_token=$(openssl rand -hex 32)
pass "keys (portcullis keys), IdP metadata and test CA generated"

# Free loopback ports: http, admin, and the metadata server.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    if port_free "$p" && [[ " ${picked:-} " != *" $p "* ]]; then picked="${picked:-} $p"; echo "$p"; return; fi
  done
}
http_port=$(pick_port); admin_port=$(pick_port); tls_port=$(pick_port)
[ -n "$http_port" ] && [ -n "$admin_port" ] && [ -n "$tls_port" ] || die "no free loopback ports"

# --- The root file system --------------------------------------------------
step "root file system"
rootfs="$work/rootfs"
mkdir -p "$rootfs"/etc/ssl/certs "$rootfs"/etc/portcullis "$rootfs"/tmp "$rootfs"/home/nonroot
install -m 0755 "$bin" "$rootfs/portcullis"
cat /etc/ssl/certs/ca-certificates.crt "$work/ca.crt" >"$rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"
chown 65532:65532 "$rootfs/home/nonroot"
cp "$work/keys/sp.key" "$work/keys/sp.crt" "$work/keys/session.keys" "$work/idp-metadata.xml" "$rootfs/etc/portcullis/"
echo "rootfs-test $scim_token" >"$rootfs/etc/portcullis/scim.tokens"

write_config() { # write_config NAME METADATA-LINE
  cat >"$rootfs/etc/portcullis/$1" <<YAML
version: 1
listen: "127.0.0.1:${http_port}"
adminListen: "127.0.0.1:${admin_port}"
publicURL: "https://app.example.com"
upstream: "http://127.0.0.1:9"
saml:
  $2
  certFile: /etc/portcullis/sp.crt
  keyFile: /etc/portcullis/sp.key
  attributes: {user: uid, email: mail, name: displayName, groups: groups}
session:
  keysFile: /etc/portcullis/session.keys
scim:
  enabled: true
  tokensFile: /etc/portcullis/scim.tokens
store:
  driver: sqlite
  dsn: /tmp/portcullis/portcullis.db
server:
  drainTimeout: 5s
YAML
}
write_config config.yaml "idpMetadataFile: /etc/portcullis/idp-metadata.xml"
write_config config-url.yaml "idpMetadataURL: \"https://127.0.0.1:${tls_port}/idp-metadata.xml\""
# As in the pod: the kubelet's layout of a projected volume (the files in a
# "..<timestamp>" directory, "..data" pointing at it, each name a symlink
# into "..data"), root owns them, group 65532 (fsGroup) reads them (0440),
# which Portcullis accepts for secret files only in that layout.
(
  cd "$rootfs/etc/portcullis"
  stamp=..2026_01_02_03_04_05.000000001
  mkdir "$stamp"
  for f in *; do
    mv "$f" "$stamp/$f"
    ln -s "..data/$f" "$f"
  done
  ln -s "$stamp" ..data
)
chown -R -h 0:65532 "$rootfs/etc/portcullis"
chmod 0755 "$rootfs/etc/portcullis" "$rootfs"/etc/portcullis/..2026_*
chmod 0440 "$rootfs"/etc/portcullis/..2026_*/*
echo "rootfs: $(cd "$rootfs" && find . -type f | sort | tr '\n' ' ')"

# How to run inside it: as root, 65532:65532 with a read-only root and a tmpfs
# /tmp (a private mount namespace); without mount rights, a plain chroot as
# 65532; without root, a user namespace (mapped root, so no uid check).
chroot_bin=$(command -v chroot)
if [ "$(id -u)" = 0 ] && unshare --mount --propagation private -- sh -c \
    'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"' sh "$rootfs" 2>/dev/null; then
  isolation="read-only root, tmpfs /tmp, uid 65532"
  # Every step execs the next, so a background job's PID is portcullis's.
  in_rootfs=(unshare --mount --propagation private -- sh -c '
    r=$1; shift
    mount --bind "$r" "$r" && mount -o remount,bind,ro "$r" &&
    mount -t tmpfs -o mode=1777,size=64m tmpfs "$r/tmp" &&
    exec env -i HOME=/home/nonroot "$0" --userspec=65532:65532 "$r" /portcullis "$@"' \
    "$chroot_bin" "$rootfs")
elif [ "$(id -u)" = 0 ]; then
  isolation="chroot, uid 65532 (no mount namespace: root is writable)"
  in_rootfs=(env -i HOME=/home/nonroot "$chroot_bin" --userspec=65532:65532 "$rootfs" /portcullis)
else
  isolation="user namespace chroot (not root: runs as mapped root)"
  in_rootfs=(env -i HOME=/home/nonroot unshare -r "$chroot_bin" "$rootfs" /portcullis)
fi
echo "isolation: $isolation"

# --- Commands inside the root file system ---------------------------------
step "portcullis version"
if out=$("${in_rootfs[@]}" version 2>&1) && [ "$out" = "portcullis $VERSION" ]; then
  pass "version: $out"
else
  fail "version printed '$out', want 'portcullis $VERSION'"
fi

step "portcullis check-config"
if out=$("${in_rootfs[@]}" check-config --config /etc/portcullis/config.yaml 2>"$work/check-config.log"); then
  pass "check-config (metadata file): $out"
else
  fail "check-config (metadata file) exited non-zero: $out $(cat "$work/check-config.log")"
fi
mkdir -p "$work/www" && cp "$work/idp-metadata.xml" "$work/www/"
(cd "$work/www" && exec openssl s_server -quiet -accept "$tls_port" -cert "$work/tls.crt" -key "$work/tls.key" -WWW) \
  >"$work/s_server.log" 2>&1 &
tls_pid=$!
for _ in $(seq 50); do port_free "$tls_port" || break; sleep 0.1; done
if out=$("${in_rootfs[@]}" check-config --config /etc/portcullis/config-url.yaml 2>"$work/check-config-url.log"); then
  pass "check-config (https metadata URL, trusted via the rootfs CA bundle): $out"
else
  fail "check-config (https metadata URL) exited non-zero: $out $(tail -3 "$work/check-config-url.log")"
fi
kill "$tls_pid" 2>/dev/null; wait "$tls_pid" 2>/dev/null; tls_pid=

step "portcullis serve"
"${in_rootfs[@]}" serve --config /etc/portcullis/config.yaml >"$work/serve.out" 2>"$work/serve.log" &
server_pid=$!
status() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@"; }
wait_200() {
  local code
  for _ in $(seq 100); do
    code=$(status "$1")
    [ "$code" = 200 ] && { echo 200; return; }
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "${code:-none}"
}
admin="http://127.0.0.1:$admin_port"
public="http://127.0.0.1:$http_port"
for path in /healthz /readyz; do
  code=$(wait_200 "$admin$path")
  if [ "$code" = 200 ]; then pass "GET $path on the admin port: 200"; else fail "GET $path on the admin port: $code"; fi
done
loc=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Accept: text/html' "$public/private/page")
case "$loc" in
  "303 https://idp.example.com/saml/sso?"*|"302 https://idp.example.com/saml/sso?"*)
    pass "browser sent to the IdP with a signed AuthnRequest (${loc%% *})" ;;
  *) fail "GET /private/page: want a redirect to the IdP, got '$loc'" ;;
esac
code=$(curl -s -o "$work/scim-user.json" -w '%{http_code}' -X POST "$public/scim/v2/Users" \
  -H "Authorization: Bearer $scim_token" -H 'Content-Type: application/scim+json' \
  -d '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice@example.com","active":true}')
if [ "$code" = 201 ]; then
  pass "SCIM POST /Users: 201 (SQLite store in /tmp, written as uid 65532)"
else
  fail "SCIM POST /Users: $code $(head -c 300 "$work/scim-user.json")"
fi
code=$(status -H "Authorization: Bearer $scim_token" "$public/scim/v2/Users?filter=userName%20eq%20%22alice@example.com%22")
if [ "$code" = 200 ]; then pass "SCIM GET /Users?filter: 200"; else fail "SCIM GET /Users?filter: $code"; fi

if kill -0 "$server_pid" 2>/dev/null; then
  kill -TERM "$server_pid"
  deadline=$((SECONDS + 5 + 3)) # drainTimeout 5s, and some
  while kill -0 "$server_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  if kill -0 "$server_pid" 2>/dev/null; then
    fail "serve still running 8s after SIGTERM (drainTimeout 5s)"
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  else
    wait "$server_pid"; rc=$?
    if [ "$rc" = 0 ]; then pass "SIGTERM: exit 0 within the drain timeout"; else fail "SIGTERM: exit $rc"; fi
  fi
else
  wait "$server_pid"; rc=$?
  fail "serve exited early with $rc: $(tail -5 "$work/serve.log")"
fi
server_pid=
if grep -q '"listening"' "$work/serve.log" && grep -q '"shutting down"' "$work/serve.log"; then
  pass "serve logged listening and shutting down (JSON)"
else
  fail "serve log lacks listening/shutting down: $(tail -5 "$work/serve.log")"
fi

summary
