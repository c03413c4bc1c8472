#!/usr/bin/env bash
# Stand up a throwaway SimpleSAMLphp 1.19 IdP (Debian package) for Portcullis
# end-to-end tests and CI.  See .ci/simplesamlphp/README.md.
#
#   .ci/simplesamlphp.sh start --port 8480 --workdir DIR --sp-entity-id ID \
#       --sp-acs URL --sp-cert FILE [--sp-slo URL] [--sp-slo-binding redirect|post]
#       [--sp-entity-id ID2 --sp-acs URL2 --sp-cert FILE2 ...]
#       [--mail-domain DOMAIN] [--extra-user NAME:PASSWORD:MAIL ...]
#   .ci/simplesamlphp.sh stop --workdir DIR
# Each --sp-entity-id after the first registers one more SP; the --sp-*
# flags after it describe that SP.
#
# Design: a *private* Apache instance per workdir (APACHE_CONFDIR=DIR/apache2,
# driven by apache2ctl), listening only on 127.0.0.1:PORT, with mod_php and
# SetEnv SIMPLESAMLPHP_CONFIG_DIR=DIR/config.  Nothing under /etc/apache2,
# /etc/simplesamlphp or /usr/share is modified, and the system Apache (port 80)
# is neither started nor touched.  `start` is idempotent: it rewrites config and
# SP registration every time, keeps the IdP key/cert and secret salt, and does
# `apache2ctl graceful` when the instance is already running.
# The IdP metadata URL is printed as the last line of stdout.
set -euo pipefail

PACKAGES=(simplesamlphp apache2 libapache2-mod-php php-xml php-mbstring)
SSP_WWW=/usr/share/simplesamlphp/www
HOST=127.0.0.1

log() { printf '[simplesamlphp.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
	command -v sudo >/dev/null 2>&1 && SUDO=(sudo -n)
fi

# PHP single-quoted string literal.
php_str() {
	local s=${1//\\/\\\\}
	s=${s//\'/\\\'}
	printf "'%s'" "$s"
}

pkg_installed() {
	[[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

ensure_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		pkg_installed "$p" || missing+=("$p")
	done
	command -v curl >/dev/null 2>&1 || missing+=(curl)
	command -v openssl >/dev/null 2>&1 || missing+=(openssl)
	[[ ${#missing[@]} -eq 0 ]] && return 0
	log "installing missing packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# DPkg::Lock::Timeout makes apt wait for a concurrent apt/dpkg run
	# instead of failing on the lock.
	"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=900 update -q >&2
	"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}" >&2
}

# ---------------------------------------------------------------- arguments
CMD=${1:-}
case $CMD in start | stop) ;; *) usage ;; esac
shift
PORT="" WORKDIR=""
# The registered SPs, one index each: SP_ENTITY_IDS[i], SP_ACSS[i], ...
# A --sp-entity-id when the current SP already has one starts the next SP;
# the other --sp-* flags set the current SP's field.
SP_ENTITY_IDS=() SP_ACSS=() SP_CERTS=() SP_SLOS=() SP_SLO_BINDINGS=() SPI=0
# alice, bob and carol sign in as NAME@MAIL_DOMAIN; each --extra-user adds
# one more user (uid NAME, group staff) with any mail, e.g. one outside
# MAIL_DOMAIN for tests of a hostile IdP.
MAIL_DOMAIN=example.com EXTRA_USERS=()
while [[ $# -gt 0 ]]; do
	case $1 in
	--port) PORT=${2:?}; shift 2 ;;
	--workdir) WORKDIR=${2:?}; shift 2 ;;
	--sp-entity-id)
		[[ -n ${SP_ENTITY_IDS[SPI]:-} ]] && SPI=$((SPI + 1))
		SP_ENTITY_IDS[SPI]=${2:?}; shift 2 ;;
	--sp-acs) SP_ACSS[SPI]=${2:?}; shift 2 ;;
	--sp-cert) SP_CERTS[SPI]=${2:?}; shift 2 ;;
	--sp-slo) SP_SLOS[SPI]=${2:?}; shift 2 ;;
	--sp-slo-binding) SP_SLO_BINDINGS[SPI]=${2:?}; shift 2 ;;
	--mail-domain) MAIL_DOMAIN=${2:?}; shift 2 ;;
	--extra-user) EXTRA_USERS+=("${2:?}"); shift 2 ;;
	-h | --help) usage ;;
	*) die "unknown argument: $1" ;;
	esac
done
[[ -n $WORKDIR ]] || die "--workdir is required"

apache_env() {
	# apache2ctl sources $APACHE_CONFDIR/envvars; a non-/etc/apache2 confdir
	# also makes it pass "-d $APACHE_CONFDIR" to httpd.  APACHE_STARTED_BY_SYSTEMD
	# stops apache2ctl from delegating `start` to systemctl on systemd hosts
	# (e.g. GitHub runners); this instance is not a systemd unit.
	# fd 9 is our per-workdir flock: never let the daemon inherit it.
	env APACHE_CONFDIR="$WORKDIR/apache2" APACHE_STARTED_BY_SYSTEMD=true "$@" 9>&-
}

apache_pid() {
	local pf="$WORKDIR/apache2/run/apache2.pid" pid
	[[ -f $pf ]] || return 1
	pid=$(cat "$pf" 2>/dev/null || true)
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

cmd_stop() {
	[[ -d $WORKDIR ]] || { log "no workdir $WORKDIR; nothing to stop"; return 0; }
	WORKDIR=$(cd "$WORKDIR" && pwd -P)
	exec 9>"$WORKDIR/.lock"
	flock -w 120 9 || die "timed out waiting for the lock on $WORKDIR/.lock"
	local pid
	if ! pid=$(apache_pid); then
		log "apache for $WORKDIR is not running"
		return 0
	fi
	apache_env apache2ctl stop >&2 || true
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || { log "stopped (pid $pid)"; return 0; }
		sleep 0.1
	done
	die "apache (pid $pid) did not stop"
}

# sp_remote_php I prints SP I's entry for saml20-sp-remote.php.
sp_remote_php() {
	local i=$1 cert_data slo_php="" urn
	cert_data=$(openssl x509 -in "${SP_CERTS[i]}" -outform DER 2>/dev/null | base64 -w0) ||
		die "--sp-cert ${SP_CERTS[i]} is not a PEM X.509 certificate"
	[[ -n $cert_data ]] || die "--sp-cert ${SP_CERTS[i]} is not a PEM X.509 certificate"
	urn=urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect
	[[ ${SP_SLO_BINDINGS[i]} == post ]] && urn=urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST
	if [[ -n ${SP_SLOS[i]:-} ]]; then
		slo_php="'SingleLogoutService' => [['Binding' => '$urn', 'Location' => $(php_str "${SP_SLOS[i]}")]],"
	fi
	cat <<EOF
\$metadata[$(php_str "${SP_ENTITY_IDS[i]}")] = [
    'AssertionConsumerService' => [
        ['Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST', 'Location' => $(php_str "${SP_ACSS[i]}"), 'index' => 0],
    ],
    $slo_php
    'certData' => $(php_str "$cert_data"),
    'validate.authnrequest' => true,
    'sign.logout' => true,
    'validate.logout' => true,
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
    'simplesaml.nameidattribute' => 'mail',
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
    'saml20.sign.assertion' => true,
    'saml20.sign.response' => true,
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
];
EOF
}

cmd_start() {
	[[ $PORT =~ ^[0-9]+$ ]] || die "--port is required (number)"
	local i
	for ((i = 0; i <= SPI; i++)); do
		[[ -n ${SP_ENTITY_IDS[i]:-} ]] || die "--sp-entity-id is required (SP $((i + 1)))"
		[[ -n ${SP_ACSS[i]:-} ]] || die "--sp-acs is required (SP ${SP_ENTITY_IDS[i]})"
		[[ -n ${SP_CERTS[i]:-} && -r ${SP_CERTS[i]} ]] ||
			die "--sp-cert FILE is required and must be readable (SP ${SP_ENTITY_IDS[i]})"
		case ${SP_SLO_BINDINGS[i]:=redirect} in
		redirect | post) ;;
		*) die "--sp-slo-binding must be redirect or post" ;;
		esac
	done

	ensure_packages

	mkdir -p "$WORKDIR"
	WORKDIR=$(cd "$WORKDIR" && pwd -P)
	local W=$WORKDIR
	local CONF=$W/config CERT=$W/cert
	mkdir -p "$CONF/metadata" "$CERT" "$W/log" "$W/data" "$W/tmp" "$W/sessions" \
		"$W/apache2/run" "$W/apache2/lock" "$W/apache2/log"

	# One start/stop at a time per workdir.
	exec 9>"$W/.lock"
	flock -w 120 9 || die "timed out waiting for the lock on $W/.lock"

	# Who Apache's children (and hence PHP) run as.
	local run_user run_group
	if [[ $(id -u) -eq 0 ]]; then
		run_user=www-data run_group=www-data
	else
		run_user=$(id -un) run_group=$(id -gn)
	fi

	# ---- IdP signing key/cert (kept across restarts so SP-side metadata caches stay valid)
	if [[ ! -s $CERT/idp.key || ! -s $CERT/idp.crt ]]; then
		log "generating IdP signing key/cert"
		openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
			-subj "/CN=portcullis-test-idp" \
			-keyout "$CERT/idp.key" -out "$CERT/idp.crt" 2>/dev/null
	fi
	install -m 0644 "${SP_CERTS[0]}" "$CERT/sp.crt"

	# ---- secrets (kept across restarts)
	if [[ ! -s $W/secrets.env ]]; then
		umask 077
		{
			echo "SECRETSALT=$(openssl rand -hex 32)"
			echo "ADMINPASSWORD=$(openssl rand -hex 12)"
		} >"$W/secrets.env"
		umask 022
	fi
	local SECRETSALT ADMINPASSWORD
	SECRETSALT=$(sed -n 's/^SECRETSALT=//p' "$W/secrets.env")
	ADMINPASSWORD=$(sed -n 's/^ADMINPASSWORD=//p' "$W/secrets.env")

	local BASEURL="http://$HOST:$PORT/simplesaml/"
	local IDP_ENTITY_ID="${BASEURL}saml2/idp/metadata.php"
	# Every SP's host:port, as PHP string literals, for trusted.url.domains.
	local sp_hostports="" hp
	for ((i = 0; i <= SPI; i++)); do
		hp=$(sed -E 's#^[a-zA-Z]+://([^/?#]+).*#\1#' <<<"${SP_ACSS[i]}")
		sp_hostports+=" $(php_str "$hp"),"
	done

	# ---- config.php (complete; nothing inherited from /etc/simplesamlphp)
	cat >"$CONF/config.php.new" <<EOF
<?php
// Generated by .ci/simplesamlphp.sh -- do not edit, rewritten on every start.
\$config = [
    'baseurlpath' => $(php_str "$BASEURL"),
    'application' => ['baseURL' => $(php_str "http://$HOST:$PORT/")],
    'certdir' => $(php_str "$CERT/"),
    'loggingdir' => $(php_str "$W/log/"),
    'datadir' => $(php_str "$W/data/"),
    'tempdir' => $(php_str "$W/tmp"),
    'metadatadir' => $(php_str "$CONF/metadata/"),
    'metadata.sources' => [['type' => 'flatfile', 'directory' => $(php_str "$CONF/metadata")]],

    'technicalcontact_name' => 'Portcullis CI',
    'technicalcontact_email' => 'na@example.org',
    'timezone' => 'UTC',

    'secretsalt' => $(php_str "$SECRETSALT"),
    'auth.adminpassword' => $(php_str "$ADMINPASSWORD"),
    'admin.protectindexpage' => false,
    'admin.protectmetadata' => false,
    'admin.checkforupdates' => false,

    'trusted.url.domains' => [
        $(php_str "$HOST:$PORT"), $(php_str "localhost:$PORT"),
        $(php_str "$HOST"), 'localhost',$sp_hostports
    ],
    'trusted.url.regex' => false,
    'enable.http_post' => false,

    'debug' => ['saml' => true, 'backtraces' => true, 'validatexml' => false],
    'showerrors' => true,
    'errorreporting' => false,

    'logging.level' => SimpleSAML\Logger::DEBUG,
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'logging.processname' => 'simplesamlphp',

    'enable.saml20-idp' => true,
    'enable.shib13-idp' => false,
    'enable.adfs-idp' => false,

    'module.enable' => [
        'exampleauth' => true,
        'core' => true,
        'saml' => true,
        'admin' => true,
    ],

    'session.duration' => 8 * 60 * 60,
    'session.datastore.timeout' => 4 * 60 * 60,
    'session.state.timeout' => 60 * 60,
    'session.cookie.name' => 'SimpleSAMLSessionID',
    'session.cookie.lifetime' => 0,
    'session.cookie.path' => '/',
    'session.cookie.domain' => null,
    // Plain http: Chromium drops "SameSite=None" cookies that are not Secure,
    // and a Secure cookie is refused by SSP itself on http.  Lax is enough: the
    // SP->IdP hop is a top-level GET and the login form posts same-site.
    'session.cookie.secure' => false,
    'session.cookie.samesite' => 'Lax',
    'session.phpsession.cookiename' => 'SimpleSAML',
    'session.phpsession.savepath' => $(php_str "$W/sessions"),
    'session.phpsession.httponly' => true,
    'session.authtoken.cookiename' => 'SimpleSAMLAuthToken',
    'session.rememberme.enable' => false,

    'language.available' => ['en'],
    'language.default' => 'en',
    'theme.use' => 'default',
    'usenewui' => false,
    'template.cache' => false,

    'store.type' => 'phpsession',
];
EOF

	# ---- authsources.php
	[[ $MAIL_DOMAIN =~ ^[A-Za-z0-9.-]+$ ]] || die "--mail-domain must be a domain name"
	local users_php="" u name pass mail
	# user_php NAME PASSWORD MAIL DISPLAYNAME GROUPS_PHP
	user_php() {
		users_php+="        $(php_str "$1:$2") => ['uid' => [$(php_str "$1")], 'mail' => [$(php_str "$3")], 'displayName' => [$(php_str "$4")], 'groups' => [$5]],"$'\n'
	}
	user_php alice alicepass "alice@$MAIL_DOMAIN" "Alice Anders" "'staff', 'admins'"
	user_php bob bobpass "bob@$MAIL_DOMAIN" "Bob Brown" "'staff'"
	user_php carol carolpass "carol@$MAIL_DOMAIN" "Carol Chen" "'staff'"
	for u in ${EXTRA_USERS[@]+"${EXTRA_USERS[@]}"}; do
		IFS=: read -r name pass mail <<<"$u"
		[[ $name =~ ^[A-Za-z0-9._-]+$ && -n $pass && -n $mail && $u == "$name:$pass:$mail" ]] ||
			die "--extra-user wants NAME:PASSWORD:MAIL (NAME of letters, digits, . _ -); got $u"
		user_php "$name" "$pass" "$mail" "$name" "'staff'"
	done
	cat >"$CONF/authsources.php.new" <<EOF
<?php
// Generated by .ci/simplesamlphp.sh -- do not edit, rewritten on every start.
\$config = [
    'admin' => ['core:AdminPassword'],

    'example-userpass' => [
        'exampleauth:UserPass',
$users_php    ],
];
EOF

	# ---- hosted IdP
	cat >"$CONF/metadata/saml20-idp-hosted.php.new" <<EOF
<?php
// Generated by .ci/simplesamlphp.sh -- do not edit, rewritten on every start.
\$metadata[$(php_str "$IDP_ENTITY_ID")] = [
    'host' => '__DEFAULT__',
    'privatekey' => 'idp.key',
    'certificate' => 'idp.crt',
    'auth' => 'example-userpass',
    'userid.attribute' => 'uid',
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
    'simplesaml.nameidattribute' => 'mail',
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
    'saml20.sign.assertion' => true,
    'saml20.sign.response' => true,
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    'validate.authnrequest' => true,
    // SLO messages must be signed (saml-profiles 4.4.3.1/4.4.3.4); SSP 1.19
    // defaults both to false (unsigned LogoutResponse, unchecked LogoutRequest).
    'sign.logout' => true,
    'validate.logout' => true,
];
EOF

	# ---- the SPs
	printf '%s\n' '<?php' '// Generated by .ci/simplesamlphp.sh -- do not edit, rewritten on every start.' \
		>"$CONF/metadata/saml20-sp-remote.php.new"
	for ((i = 0; i <= SPI; i++)); do
		sp_remote_php "$i" >>"$CONF/metadata/saml20-sp-remote.php.new"
	done

	# ---- private Apache instance
	local php_load php_conf
	php_load=$(ls /etc/apache2/mods-available/php*.load 2>/dev/null | sort -V | tail -n1)
	[[ -n $php_load ]] || die "mod_php not found in /etc/apache2/mods-available (libapache2-mod-php)"
	php_conf=${php_load%.load}.conf

	cat >"$W/apache2/envvars" <<EOF
# Generated by .ci/simplesamlphp.sh; sourced by apache2ctl (APACHE_CONFDIR=$W/apache2)
unset HOME
export APACHE_RUN_USER=$run_user
export APACHE_RUN_GROUP=$run_group
export APACHE_PID_FILE=$W/apache2/run/apache2.pid
export APACHE_RUN_DIR=$W/apache2/run
export APACHE_LOCK_DIR=$W/apache2/lock
export APACHE_LOG_DIR=$W/apache2/log
export APACHE_ULIMIT_MAX_FILES=true
export LANG=C
EOF

	cat >"$W/apache2/apache2.conf.new" <<EOF
# Generated by .ci/simplesamlphp.sh -- private Apache for the test IdP.
ServerRoot "$W/apache2"
DefaultRuntimeDir \${APACHE_RUN_DIR}
PidFile \${APACHE_PID_FILE}
Mutex file:\${APACHE_LOCK_DIR} default
User \${APACHE_RUN_USER}
Group \${APACHE_RUN_GROUP}
Timeout 60
KeepAlive On
HostnameLookups Off
ServerTokens Prod
ServerSignature Off
ServerName $HOST:$PORT
ErrorLog \${APACHE_LOG_DIR}/error.log
LogLevel warn
LogFormat "%h %t \"%r\" %>s %b" common
CustomLog \${APACHE_LOG_DIR}/access.log common

Include /etc/apache2/mods-available/mpm_prefork.load
StartServers 2
MinSpareServers 2
MaxSpareServers 4
MaxRequestWorkers 32
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
LoadModule env_module /usr/lib/apache2/modules/mod_env.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
TypesConfig /etc/mime.types
Include $php_load
Include $php_conf

# Loopback only.
Listen $HOST:$PORT

<Directory />
    Options None
    AllowOverride None
    Require all denied
</Directory>
DocumentRoot $W/apache2/htdocs
<Directory $W/apache2/htdocs>
    Require all granted
</Directory>

Alias /simplesaml $SSP_WWW
<Directory $SSP_WWW>
    Options FollowSymLinks
    AllowOverride None
    DirectoryIndex index.php
    Require all granted
</Directory>

SetEnv SIMPLESAMLPHP_CONFIG_DIR $CONF
<IfModule php_module>
    # Config is rewritten on re-registration; never serve a stale compiled copy.
    php_admin_flag opcache.enable Off
    php_admin_value error_log $W/apache2/log/php_error.log
</IfModule>
EOF
	mkdir -p "$W/apache2/htdocs"
	echo "SimpleSAMLphp test IdP: /simplesaml/" >"$W/apache2/htdocs/index.html"

	# Atomically install the generated files.
	local f
	for f in "$CONF/config.php" "$CONF/authsources.php" "$CONF/metadata/saml20-idp-hosted.php" \
		"$CONF/metadata/saml20-sp-remote.php" "$W/apache2/apache2.conf"; do
		mv -f "$f.new" "$f"
	done

	# ---- permissions: PHP runs as $run_user
	chmod 0755 "$W" "$CONF" "$CONF/metadata" "$CERT" "$W/apache2" "$W/apache2/htdocs"
	chmod 0644 "$CONF"/*.php "$CONF"/metadata/*.php "$CERT/idp.crt" "$CERT/sp.crt"
	if [[ $(id -u) -eq 0 ]]; then
		chown root:"$run_group" "$CERT/idp.key" "$CONF/config.php"
		chmod 0640 "$CERT/idp.key" "$CONF/config.php"
		chown -R "$run_user:$run_group" "$W/log" "$W/data" "$W/tmp" "$W/sessions"
		# www-data must be able to reach the workdir (e.g. not under /root).
		if ! runuser -u "$run_user" -- test -r "$CONF/config.php" -a -w "$W/sessions"; then
			die "$run_user cannot access $W (check permissions of its parent directories; use e.g. /tmp)"
		fi
	else
		chmod 0600 "$CERT/idp.key"
	fi

	apache_env apache2ctl configtest >/dev/null 2>"$W/apache2/log/configtest.out" ||
		{ cat "$W/apache2/log/configtest.out" >&2; die "apache config test failed"; }

	local pid
	if pid=$(apache_pid); then
		log "apache already running (pid $pid): graceful reload"
		apache_env apache2ctl graceful >&2
	else
		rm -f "$W/apache2/run/apache2.pid"
		if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
			die "$HOST:$PORT is already in use by another process"
		fi
		log "starting apache on $HOST:$PORT (APACHE_CONFDIR=$W/apache2)"
		apache_env apache2ctl start >&2 || {
			tail -n 20 "$W/apache2/log/error.log" >&2 2>/dev/null || true
			die "apache2ctl start failed"
		}
	fi

	# ---- wait for the IdP metadata
	local url="${IDP_ENTITY_ID}" body="" code=""
	for _ in $(seq 1 150); do
		code=$(curl --noproxy '*' -sS -o "$W/tmp/.metadata.xml" -w '%{http_code}' --max-time 5 "$url" 2>/dev/null || true)
		if [[ $code == 200 ]] && grep -q 'EntityDescriptor' "$W/tmp/.metadata.xml" 2>/dev/null; then
			body=ok
			break
		fi
		sleep 0.2
	done
	rm -f "$W/tmp/.metadata.xml"
	if [[ $body != ok ]]; then
		tail -n 20 "$W/apache2/log/error.log" >&2 2>/dev/null || true
		tail -n 20 "$W/log/simplesamlphp.log" >&2 2>/dev/null || true
		die "IdP metadata $url not ready (last HTTP status: ${code:-none})"
	fi
	for ((i = 0; i <= SPI; i++)); do
		log "SP ${SP_ENTITY_IDS[i]} registered (ACS ${SP_ACSS[i]})"
	done
	log "IdP ready"
	echo "$url"
}

case $CMD in
start) cmd_start ;;
stop) cmd_stop ;;
*) usage ;;
esac
