package config

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidate_ReportsEachProblem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"version missing", func(c *Config) { c.Version = 0 }, []string{"line 1: version: required; must be 1"}},
		{"version from the future", func(c *Config) { c.Version = 2 }, []string{"line 1: version: unsupported version 2; must be 1"}},
		{"listen without port", func(c *Config) { c.Listen = "8080" }, []string{`line 2: listen: must be host:port, such as ":8080" or "127.0.0.1:9090"; got "8080"`}},
		{"listen with service name", func(c *Config) { c.Listen = ":http" }, []string{`line 2: listen: port "http" must be a number from 0 to 65535`}},
		{"listen port too big", func(c *Config) { c.Listen = ":70000" }, []string{`line 2: listen: port "70000" must be a number from 0 to 65535`}},
		{"admin on the same port", func(c *Config) { c.AdminListen = "127.0.0.1:8080" }, []string{`line 3: adminListen: conflicts with listen ":8080"; use a different port`}},
		{"admin missing", func(c *Config) { c.AdminListen = "" }, []string{`line 3: adminListen: required, such as ":8080" or "127.0.0.1:9090"`}},
		{"publicURL missing", func(c *Config) { c.PublicURL = "" }, []string{"line 4: publicURL: required; an absolute http or https URL"}},
		{"publicURL without scheme", func(c *Config) { c.PublicURL = "app.example.com" }, []string{`line 4: publicURL: must be an absolute http or https URL; got "app.example.com"`}},
		{"publicURL other scheme", func(c *Config) { c.PublicURL = "ftp://app.example.com" }, []string{`line 4: publicURL: must be an absolute http or https URL; got "ftp://app.example.com"`}},
		{"publicURL with path", func(c *Config) { c.PublicURL = "https://app.example.com/app/" }, []string{`line 4: publicURL: must not have a path (got "/app/"): Portcullis serves from the root of its host`}},
		{"publicURL with query", func(c *Config) { c.PublicURL = "https://app.example.com/?a=b" }, []string{"line 4: publicURL: must not have a query"}},
		{"publicURL with fragment", func(c *Config) { c.PublicURL = "https://app.example.com/#top" }, []string{"line 4: publicURL: must not have a fragment"}},
		{"publicURL with credentials", func(c *Config) { c.PublicURL = "https://u:p@app.example.com" }, []string{"line 4: publicURL: must not contain credentials; secrets belong in *File settings"}},
		{"upstream without scheme", func(c *Config) { c.Upstream = "127.0.0.1:3000" }, []string{`line 5: upstream: must be an absolute http or https URL; got "127.0.0.1:3000"`}},
		{"upstream with credentials", func(c *Config) { c.Upstream = "http://admin:hunter2@10.0.0.5" }, []string{"line 5: upstream: must not contain credentials; secrets belong in *File settings"}},
		{
			name: "trusted proxies",
			mutate: func(c *Config) {
				c.TrustedProxies = []string{"10.0.0.1/8", "proxy.internal", "fe80::1%eth0", "10.0.0.0/33"}
			},
			want: []string{
				"line 6: trustedProxies[0]: 10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?",
				`line 6: trustedProxies[1]: must be an IP address or CIDR such as 10.0.0.0/8; got "proxy.internal"`,
				`line 6: trustedProxies[2]: must not have an IPv6 zone; got "fe80::1%eth0"`,
				`line 6: trustedProxies[3]: must be an IP address or CIDR such as 10.0.0.0/8; got "10.0.0.0/33"`,
			},
		},
		{"metadata URL and file", func(c *Config) { c.SAML.IDPMetadataFile = "idp.xml" }, []string{"line 7: saml.idpMetadataFile: set only one of idpMetadataURL and idpMetadataFile"}},
		{"no metadata", func(c *Config) { c.SAML.IDPMetadataURL = "" }, []string{"line 8: saml.idpMetadataURL: required: set idpMetadataURL or idpMetadataFile (or give each customer an entry of organizations)"}},
		{"metadata over plain http", func(c *Config) { c.SAML.IDPMetadataURL = "http://idp.example.com/metadata" }, []string{`line 8: saml.idpMetadataURL: must be an absolute https URL (http only for a loopback host); got "http://idp.example.com/metadata"`}},
		{"metadata http on a lookalike host", func(c *Config) { c.SAML.IDPMetadataURL = "http://localhost.evil.example/md" }, []string{`line 8: saml.idpMetadataURL: must be an absolute https URL (http only for a loopback host); got "http://localhost.evil.example/md"`}},
		{"metadata refresh too often", func(c *Config) { c.SAML.MetadataRefresh = 30 * time.Second }, []string{"line 9: saml.metadataRefresh: must be at least 1m; got 30s"}},
		{"entity ID not a URI", func(c *Config) { c.SAML.EntityID = "portcullis" }, []string{`line 10: saml.entityID: must be an absolute URI such as https://app.example.com/saml/metadata or urn:example:app; got "portcullis"`}},
		{"entity ID with space", func(c *Config) { c.SAML.EntityID = "urn:example:my app" }, []string{`line 10: saml.entityID: must be an absolute URI such as https://app.example.com/saml/metadata or urn:example:app; got "urn:example:my app"`}},
		{"entity ID too long", func(c *Config) { c.SAML.EntityID = "urn:x:" + strings.Repeat("a", 1024) }, []string{"line 10: saml.entityID: must be at most 1024 characters; got 1030"}},
		{"no certificate or key", func(c *Config) { c.SAML.CertFile, c.SAML.KeyFile = "", "" }, []string{"line 11: saml.certFile: required: the SP certificate (PEM)", "line 12: saml.keyFile: required: the SP private key (PEM)"}},
		{"name ID format unknown", func(c *Config) { c.SAML.NameIDFormat = "email" }, []string{`line 13: saml.nameIDFormat: must be one of emailAddress, persistent, unspecified, transient; got "email"`}},
		{"name ID format as URN", func(c *Config) { c.SAML.NameIDFormat = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" }, []string{`line 13: saml.nameIDFormat: use the short name "persistent" instead of the URN`}},
		{"negative clock skew", func(c *Config) { c.SAML.ClockSkew = -time.Second }, []string{"line 15: saml.clockSkew: must be between 0s and 10m; got -1s"}},
		{"huge clock skew", func(c *Config) { c.SAML.ClockSkew = time.Hour }, []string{"line 15: saml.clockSkew: must be between 0s and 10m; got 1h0m0s"}},
		{"login window too short", func(c *Config) { c.SAML.LoginWindow = 30 * time.Second }, []string{"line 7: saml.loginWindow: must be between 1m and 1h; got 30s"}},
		{"attribute with stray space", func(c *Config) { c.SAML.Attributes.Email = "mail " }, []string{`line 18: saml.attributes.email: must not start or end with whitespace; got "mail "`}},
		{"cookie name with space", func(c *Config) { c.Session.CookieName = "my session" }, []string{"line 22: session.cookieName: must be a cookie name: letters, digits and !#$%&'*+-.^_`|~, no spaces, \"=\" or \";\"; got \"my session\""}},
		{"upstream cookie not a name", func(c *Config) { c.Session.ExpireUpstreamCookies = []string{"JSESSIONID", "a b"} }, []string{"line 21: session.expireUpstreamCookies[1]: must be a cookie name: letters, digits and !#$%&'*+-.^_`|~, no spaces, \"=\" or \";\"; got \"a b\""}},
		{"upstream cookie is ours", func(c *Config) { c.Session.ExpireUpstreamCookies = []string{c.Session.CookieName + "_1"} }, []string{"line 21: session.expireUpstreamCookies[0]: \"portcullis_1\" is Portcullis's own session cookie"}},
		{"cookie name with equals", func(c *Config) { c.Session.CookieName = "a=b" }, []string{"line 22: session.cookieName: must be a cookie name: letters, digits and !#$%&'*+-.^_`|~, no spaces, \"=\" or \";\"; got \"a=b\""}},
		{"secure-prefixed cookie over http", func(c *Config) { c.PublicURL, c.Session.CookieName = "http://localhost:8080", "__Host-portcullis" }, []string{`line 22: session.cookieName: browsers accept "__Host-portcullis" only on a Secure cookie, which needs an https publicURL`}},
		{"no session keys", func(c *Config) { c.Session.KeysFile = "" }, []string{"line 23: session.keysFile: required: the session key file"}},
		{"session too long", func(c *Config) { c.Session.Lifetime = 31 * 24 * time.Hour }, []string{"line 24: session.lifetime: must be between 1m and 720h (30 days); got 744h0m0s"}},
		{"hop-by-hop header", func(c *Config) { c.Headers = map[string]string{"Connection": "user"} }, []string{"line 25: headers.Connection: Connection cannot carry identity: it is hop-by-hop, frames the request or is set by the proxy"}},
		{"forwarded-for in underscore spelling", func(c *Config) { c.Headers = map[string]string{"x_forwarded_for": "user"} }, []string{"line 25: headers.x_forwarded_for: x_forwarded_for cannot carry identity: it is hop-by-hop, frames the request or is set by the proxy"}},
		{"proxy header", func(c *Config) { c.Headers = map[string]string{"Proxy-Authorization": "user"} }, []string{"line 25: headers.Proxy-Authorization: Proxy-Authorization cannot carry identity: it is hop-by-hop, frames the request or is set by the proxy"}},
		{"header name with space", func(c *Config) { c.Headers = map[string]string{"X User": "user"} }, []string{"line 25: headers.X User: must be an HTTP header name: letters, digits and !#$%&'*+-.^_`|~"}},
		{"header from unknown field", func(c *Config) { c.Headers["X-Forwarded-User"] = "uid" }, []string{`line 26: headers.X-Forwarded-User: must be one of user, email, name, groups, organization; got "uid"`}},
		{"route without slash", func(c *Config) { c.Routes[1].Path = "admin/" }, []string{`line 33: routes[1].path: must start with "/"; got "admin/"`}},
		{"route with dot-dot", func(c *Config) { c.Routes[1].Path = "/a/../admin/" }, []string{`line 33: routes[1].path: must not contain "..": routes match the cleaned, decoded path; got "/a/../admin/"`}},
		{"route with double slash", func(c *Config) { c.Routes[1].Path = "//admin/" }, []string{`line 33: routes[1].path: must not contain "//": routes match the cleaned, decoded path; got "//admin/"`}},
		{"route with backslash", func(c *Config) { c.Routes[1].Path = `/admin\` }, []string{`line 33: routes[1].path: must not contain "\\": routes match the cleaned, decoded path; got "/admin\\"`}},
		{"route with escape", func(c *Config) { c.Routes[1].Path = "/admin%2F" }, []string{`line 33: routes[1].path: must not contain "%": routes match the cleaned, decoded path; got "/admin%2F"`}},
		{"route with query", func(c *Config) { c.Routes[1].Path = "/admin?x" }, []string{`line 33: routes[1].path: must not contain "?": routes match the cleaned, decoded path; got "/admin?x"`}},
		{"route with space", func(c *Config) { c.Routes[1].Path = "/ad min/" }, []string{`line 33: routes[1].path: must not contain whitespace or control characters; got "/ad min/"`}},
		{"route with control character", func(c *Config) { c.Routes[1].Path = "/admin\x00" }, []string{`line 33: routes[1].path: must not contain whitespace or control characters; got "/admin\x00"`}},
		{"route without path", func(c *Config) { c.Routes[1].Path = "" }, []string{"line 33: routes[1].path: required, such as /admin/"}},
		{"scim without tokens", func(c *Config) { c.SCIM.Enabled = true }, []string{"scim.tokensFile: required when scim.enabled: the file of bearer tokens the IdP uses"}},
		{
			name: "scim and store values",
			mutate: func(c *Config) {
				c.SCIM = SCIM{Enabled: true, TokensFile: "t", BasePath: "/saml/scim", MaxBodyBytes: 10, MaxPageSize: 0,
					Bulk:  Bulk{MaxOperations: 0, MaxPayloadSize: 100},
					Match: Match{IdentityField: "uid", SCIMAttribute: "mail"}, GroupsSource: "ldap"}
				c.Store = Store{Driver: "postgres", DSN: "postgres://u:secret@db/x", MaxStaleness: time.Second}
			},
			want: []string{
				"scim.basePath: must not be under /saml/, which the SAML endpoints own",
				`scim.match.identityField: must be user or email; got "uid"`,
				`scim.match.scimAttribute: must be userName, email or externalId; got "mail"`,
				`scim.groupsSource: must be scim, saml or both; got "ldap"`,
				"scim.maxBodyBytes: must be at least 1024; got 10",
				"scim.maxPageSize: must be between 1 and 10000; got 0",
				"scim.bulk.maxOperations: must be between 1 and 100000; got 0",
				"scim.bulk.maxPayloadSize: must be between 1024 and 1073741824 bytes; got 100",
				"store.dsn: must not contain a password; put the whole DSN in a file and name it in store.dsnFile",
			},
		},
		{"store driver unknown", func(c *Config) {
			c.SCIM = defaultSCIMFor("t")
			c.Store = Store{Driver: "mysql", MaxStaleness: time.Minute}
		}, []string{`store.driver: must be sqlite or postgres; got "mysql"`}},
		{"postgres needs one dsn", func(c *Config) {
			c.SCIM = defaultSCIMFor("t")
			c.Store = Store{Driver: "postgres", MaxStaleness: time.Minute}
		}, []string{"store.dsn: set exactly one of store.dsn and store.dsnFile for the postgres driver"}},
		{"route with matrix parameter", func(c *Config) { c.Routes[1].Path = "/admin;x/" }, []string{`line 33: routes[1].path: must not contain ";": routes match the cleaned, decoded path; got "/admin;x/"`}},
		{"route with trailing dot segment", func(c *Config) { c.Routes[1].Path = "/admin./" }, []string{`line 33: routes[1].path: must not have a segment ending in "." (requests with one are refused); got "/admin./"`}},
		{"route with short name", func(c *Config) { c.Routes[1].Path = "/ADMINI~1/" }, []string{`line 33: routes[1].path: must not contain "~" followed by a digit (requests with one are refused); got "/ADMINI~1/"`}},
		{"route with non-ASCII", func(c *Config) { c.Routes[1].Path = "/ａdmin/" }, []string{`line 33: routes[1].path: must be plain ASCII; got "/ａdmin/"`}},
		{"public route with groups", func(c *Config) { c.Routes[1].Public = true }, []string{"line 34: routes[1].allowGroups: a public route cannot restrict groups; remove public or allowGroups"}},
		{"empty group", func(c *Config) { c.Routes[1].AllowGroups = []string{"admins", ""} }, []string{"line 34: routes[1].allowGroups[1]: must not be empty"}},
		{"group with stray space", func(c *Config) { c.Routes[1].AllowGroups = []string{" admins"} }, []string{`line 34: routes[1].allowGroups[0]: must not start or end with whitespace; got " admins"`}},
		{"upstreamTLS on an http upstream", func(c *Config) { c.UpstreamTLS.CAFile = "ca.pem" }, []string{"upstreamTLS: applies to an https upstream only; upstream is http"}},
		{"upstreamTLS certificate without key", func(c *Config) {
			c.Upstream = "https://app.internal"
			c.UpstreamTLS.CertFile = "c.pem"
			c.UpstreamTLS.MinVersion = "1.1"
		}, []string{
			"upstreamTLS.certFile: certFile and keyFile go together (a client certificate and its key)",
			`upstreamTLS.minVersion: must be "1.2" or "1.3"; got "1.1"`,
		}},
		{"upstreamPathPrefix not a plain path", func(c *Config) { c.UpstreamPathPrefix = "/app/../x/" }, []string{`upstreamPathPrefix: must be a path such as /app: starting with "/", not ending in "/", of letters, digits and -._~ between slashes; got "/app/../x/"`}},
		{"upstreamPathParameters unknown", func(c *Config) { c.UpstreamPathParameters = "strip" }, []string{`upstreamPathParameters: must be reject or strip-for-matching; got "strip"`}},
		{"duplicate route", func(c *Config) { c.Routes[1].Path = "/healthz"; c.Routes[1].AllowGroups = nil }, []string{"line 33: routes[1].path: duplicate of routes[0]"}},
		{
			name: "route shadowed by an earlier prefix",
			mutate: func(c *Config) {
				c.Routes[0] = Route{Path: "/", Public: true}
			},
			want: []string{"line 33: routes[1].path: never matches: routes[0] (/) comes first and covers it; the first match wins, so list the more specific route first"},
		},
		{
			name: "server settings not positive",
			mutate: func(c *Config) {
				c.Server = Server{ReadHeaderTimeout: -time.Second, MaxHeaderBytes: -1}
			},
			want: []string{
				"server.readHeaderTimeout: must be a positive duration; got -1s",
				"server.idleTimeout: must be a positive duration; got 0s",
				"server.drainTimeout: must be a positive duration; got 0s",
				"server.upstreamTimeout: must be a positive duration; got 0s",
				"server.bodyIdleTimeout: must be a positive duration; got 0s",
				"server.maxHeaderBytes: must be a positive number of bytes; got -1",
				"server.acsBodyLimit: must be a positive number of bytes; got 0",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := parseExample(t)
			tt.mutate(c)
			if diff := cmp.Diff(tt.want, problemLines(t, c.Validate())); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidate_ValidVariants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"http publicURL for local use", func(c *Config) { c.PublicURL = "http://localhost:8080" }},
		{"zero clock skew", func(c *Config) { c.SAML.ClockSkew = 0 }},
		{"limits inclusive", func(c *Config) {
			c.SAML.ClockSkew, c.SAML.LoginWindow, c.Session.Lifetime = 10*time.Minute, time.Hour, 30*24*time.Hour
		}},
		{"admin on another interface, same port", func(c *Config) { c.Listen, c.AdminListen = "10.0.0.1:8080", "127.0.0.1:8080" }},
		{"ephemeral ports", func(c *Config) { c.Listen, c.AdminListen = ":0", ":0" }},
		{"no routes and no headers", func(c *Config) { c.Routes, c.Headers = nil, nil }},
		{"upstream with base path", func(c *Config) { c.Upstream = "https://backend.internal:8443/app/" }},
		{"route exact before subtree", func(c *Config) {
			c.Routes = []Route{{Path: "/admin/health", Public: true}, {Path: "/admin/", AllowGroups: []string{"admins"}}}
		}},
		{"group names with inner spaces", func(c *Config) { c.Routes[1].AllowGroups = []string{"Domain Admins"} }},
		{"logged-in route without groups", func(c *Config) { c.Routes = append(c.Routes, Route{Path: "/app/"}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := parseExample(t)
			tt.mutate(c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestValidate_ParsesTrustedProxies(t *testing.T) {
	t.Parallel()
	c := parseExample(t)
	c.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "2001:db8::1", "::ffff:192.0.2.0/120", "::ffff:198.51.100.1"}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("2001:db8::1/128"),
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("198.51.100.1/32"),
	}
	if diff := cmp.Diff(want, c.Trusted, cmpConfig...); diff != "" {
		t.Errorf("Trusted (-want +got):\n%s", diff)
	}
}

func TestValidate_HeaderSpellingsCollide(t *testing.T) {
	t.Parallel()
	in := minimal + "headers:\n  X-Forwarded-User: user\n  x-forwarded-user: email\n  X_Forwarded_User: name\n"
	_, err := ParseWithEnv([]byte(in), "", noEnv)
	want := []string{
		`line 12: headers.x-forwarded-user: same header as X-Forwarded-User (names ignore case, and upstreams may read "_" as "-")`,
		`line 13: headers.X_Forwarded_User: same header as X-Forwarded-User (names ignore case, and upstreams may read "_" as "-")`,
	}
	if diff := cmp.Diff(want, problemLines(t, err)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestValidate_IsRepeatable(t *testing.T) {
	t.Parallel()
	c := parseExample(t)
	for i := range 2 {
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate #%d: %v", i+1, err)
		}
	}
	if got := c.SAML.EntityID; got != "https://app.example.com/saml/metadata" {
		t.Errorf("EntityID = %q", got)
	}
}

// TestLoad_InvalidGolden loads a config with a problem in nearly every
// section and checks that all of them come back at once, in the exact text
// of testdata/invalid.golden (rewrite it with go test ./config -update).
func TestLoad_InvalidGolden(t *testing.T) {
	t.Parallel()
	_, err := Load("testdata/invalid.yaml")
	if err == nil {
		t.Fatal("Load(testdata/invalid.yaml) succeeded, want problems")
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Load error %v is not a *ValidationError", err)
	}
	if len(ve.Problems) < 20 {
		t.Errorf("got %d problems, want every problem in the file (20 or more)", len(ve.Problems))
	}
	got := err.Error() + "\n"
	const golden = "testdata/invalid.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := string(readFixture(t, golden))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("error text (-%s +got):\n%s", golden, diff)
	}
}

func TestWarnings_FlagRiskySettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"none for the example", func(*Config) {}, nil},
		{"http publicURL", func(c *Config) { c.PublicURL = "http://app.example.com" }, []string{"line 4: publicURL: is http, so the session cookie is sent without the Secure flag and can be read on the network; use https outside local development"}},
		{"trust everyone", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "0.0.0.0/0", "::/0"} }, []string{
			"line 6: trustedProxies[1]: 0.0.0.0/0 trusts every peer, so any client can set X-Forwarded-For and spoof its address",
			"line 6: trustedProxies[2]: ::/0 trusts every peer, so any client can set X-Forwarded-For and spoof its address",
		}},
		{"IdP-initiated login", func(c *Config) { c.SAML.AllowIDPInitiated = true }, []string{"line 14: saml.allowIDPInitiated: accepts unsolicited IdP responses, which allows login CSRF; enable it only if your IdP cannot start logins from the SP"}},
		{"transient NameID as the user", func(c *Config) { c.SAML.NameIDFormat, c.SAML.Attributes.User = "transient", "" }, []string{"line 13: saml.nameIDFormat: transient NameIDs change at every login, so the user identity will too; set saml.attributes.user to a stable attribute"}},
		{"transient NameID with a user attribute", func(c *Config) { c.SAML.NameIDFormat = "transient" }, nil},
		{"admin on every interface without a token", func(c *Config) { c.AdminListen = ":9090" }, []string{`line 3: adminListen: :9090 is not loopback and adminTokenFile is not set, so the status page answers 403; set adminTokenFile to use it`}},
		{"admin on every interface with a token", func(c *Config) { c.AdminListen, c.AdminTokenFile = ":9090", "admin.token" }, nil},
		{"whole site public", func(c *Config) { c.Routes = []Route{{Path: "/", Public: true}} }, []string{`line 32: routes[0].public: path "/" is public, so no request after this route needs a login`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := parseExample(t)
			tt.mutate(c)
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if diff := cmp.Diff(tt.want, c.Warnings()); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func defaultSCIMFor(tokens string) SCIM {
	s := defaultSCIM
	s.Enabled = true
	s.TokensFile = tokens
	return s
}
