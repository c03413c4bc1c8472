# Sourced by bench/run.sh --peers: starts the peers, each with a real
# signed-in session, and appends them to targets.
#   oauth2-proxy v7.15.6 (go install), cookie sessions, against bench/oidc;
#   Apache 2.4 + mod_auth_mellon (Debian), against SimpleSAMLphp
#   (.ci/simplesamlphp.sh).
# Uses from run.sh: work bin upstream server_cpu client_cpu start wait_http log die targets.

o2p_version=v7.15.6
o2p_port=18086
oidc_port=18090
mellon_port=18087
ssp_port=18480

start_oauth2_proxy() {
  local o2p
  o2p=$(go env GOPATH)/bin/oauth2-proxy
  # go install leaves --version "undefined"; the module version is in the binary
  if ! go version -m "$o2p" 2>/dev/null | grep -q "oauth2-proxy/v7[[:space:]]*$o2p_version"; then
    log "installing oauth2-proxy $o2p_version (go install; a few minutes the first time)"
    go install "github.com/oauth2-proxy/oauth2-proxy/v7@$o2p_version"
  fi
  go build -o "$bin/" ./bench/oidc
  local secret cookie_secret
  secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  cookie_secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n') # 32 hex chars = 32 bytes
  start oidc "$client_cpu" "$bin/oidc" -listen "127.0.0.1:$oidc_port" -client-id bench -client-secret "$secret"
  wait_http "http://127.0.0.1:$oidc_port/.well-known/openid-configuration"
  # Defaults otherwise: cookie session store, request logging to stdout
  # (kept, as Portcullis keeps its access log), user headers passed upstream.
  start oauth2-proxy "$server_cpu" "$o2p" \
    --http-address "127.0.0.1:$o2p_port" \
    --upstream "$upstream/" \
    --provider oidc --oidc-issuer-url "http://127.0.0.1:$oidc_port" \
    --client-id bench --client-secret "$secret" \
    --redirect-url "http://127.0.0.1:$o2p_port/oauth2/callback" \
    --cookie-secret "$cookie_secret" --cookie-secure=false \
    --email-domain '*' --skip-provider-button=true
  local o2p_pid=${pids[-1]}
  wait_http "http://127.0.0.1:$o2p_port/ping"
  local ck
  ck=$("$bin/signin" -url "http://127.0.0.1:$o2p_port/" -cookie-prefix _oauth2_proxy) || die "oauth2-proxy sign-in failed; see $work/oauth2-proxy.log"
  [ "$(curl -sS -H "Cookie: $ck" "http://127.0.0.1:$o2p_port/")" = ok ] || die "oauth2-proxy does not pass the session through"
  log "oauth2-proxy signed in"
  targets+=("oauth2-proxy-$o2p_version"$'\t'"http://127.0.0.1:$o2p_port/"$'\t'"Cookie: $ck"$'\t'"$o2p_pid")
  # Its forward-auth answer (202 with the session), beside portcullis-forward-auth.
  targets+=("oauth2-proxy-$o2p_version-auth"$'\t'"http://127.0.0.1:$o2p_port/oauth2/auth"$'\t'"Cookie: $ck"$'\t'"$o2p_pid")
}

start_mellon() {
  local m=$work/mellon ssp=$work/ssp
  mkdir -p "$m" "$ssp"
  chmod 755 "$work" "$m" "$ssp"
  local entity="http://127.0.0.1:$mellon_port/mellon/metadata"
  (cd "$m" && mellon_create_metadata "$entity" "http://127.0.0.1:$mellon_port/mellon" >/dev/null 2>&1) ||
    die "mellon_create_metadata failed"
  local base
  base=$(ls "$m"/*.xml | head -1)
  base=${base%.xml}
  mv "$base.xml" "$m/sp.xml"; mv "$base.key" "$m/sp.key"; mv "$base.cert" "$m/sp.cert"
  local idp_meta
  idp_meta=$(bash .ci/simplesamlphp.sh start --port "$ssp_port" --workdir "$ssp" --sp-entity-id "$entity" \
    --sp-acs "http://127.0.0.1:$mellon_port/mellon/postResponse" --sp-cert "$m/sp.cert" | tail -1) ||
    die "SimpleSAMLphp did not start"
  curl -sSf -o "$m/idp.xml" "$idp_meta" || die "cannot fetch the IdP metadata from $idp_meta"
  chmod 644 "$m"/*
  local user=""
  [ "$(id -u)" = 0 ] && user="User www-data
Group www-data"
  local mods=/usr/lib/apache2/modules
  cat >"$m/apache2.conf" <<EOF
# Apache 2.4 + mod_auth_mellon in front of the benchmark upstream.
ServerRoot /etc/apache2
ServerName 127.0.0.1
Listen 127.0.0.1:$mellon_port
PidFile $m/apache2.pid
ErrorLog $m/error.log
LogLevel warn
$user
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authn_core_module $mods/mod_authn_core.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule authz_user_module $mods/mod_authz_user.so
LoadModule auth_mellon_module $mods/mod_auth_mellon.so
LoadModule proxy_module $mods/mod_proxy.so
LoadModule proxy_http_module $mods/mod_proxy_http.so
LoadModule headers_module $mods/mod_headers.so
# One access line a request, as Portcullis and oauth2-proxy write.
LogFormat "%h %l %u %t \"%r\" %>s %b" common
CustomLog $m/access.log common
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 300
ServerLimit 4
ThreadsPerChild 64
MaxRequestWorkers 256
MellonCacheSize 1000
<Location />
  AuthType Mellon
  MellonEnable auth
  Require valid-user
  MellonEndpointPath /mellon
  MellonSPPrivateKeyFile $m/sp.key
  MellonSPCertFile $m/sp.cert
  MellonSPMetadataFile $m/sp.xml
  MellonIdPMetadataFile $m/idp.xml
  MellonUser uid
  MellonSecureCookie Off
  RequestHeader unset X-Forwarded-User
  RequestHeader set X-Forwarded-User "%{MELLON_uid}e" env=MELLON_uid
  RequestHeader set X-Forwarded-Email "%{MELLON_mail}e" env=MELLON_mail
</Location>
ProxyPass /mellon/ !
ProxyPass / $upstream/ keepalive=On
EOF
  apache2 -t -f "$m/apache2.conf" >/dev/null 2>&1 || { apache2 -t -f "$m/apache2.conf"; die "Apache config rejected"; }
  start apache-mellon "$server_cpu" apache2 -f "$m/apache2.conf" -D FOREGROUND
  local apache_pid=${pids[-1]} # the parent; its workers are counted with it
  wait_http "http://127.0.0.1:$mellon_port/mellon/metadata"
  local ck
  ck=$("$bin/signin" -url "http://127.0.0.1:$mellon_port/" -user alice -password alicepass -cookie-prefix mellon) ||
    die "mod_auth_mellon sign-in failed; see $m/error.log and $ssp/log"
  local who
  who=$(curl -sS -H "Cookie: $ck" "http://127.0.0.1:$mellon_port/whoami")
  [ "${who%%|*}" = alice ] || die "Apache + mellon passes '$who' upstream, want alice"
  log "Apache + mod_auth_mellon signed in (upstream sees '$who')"
  targets+=("apache-mod-auth-mellon"$'\t'"http://127.0.0.1:$mellon_port/"$'\t'"Cookie: $ck"$'\t'"$apache_pid")
}

stop_peers() {
  [ -d "$work/ssp" ] && bash .ci/simplesamlphp.sh stop --workdir "$work/ssp" >/dev/null 2>&1 || true
}

start_peers() {
  start_mellon
  start_oauth2_proxy
}
