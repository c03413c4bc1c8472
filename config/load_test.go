package config

import (
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var cmpConfig = []cmp.Option{
	cmpopts.IgnoreUnexported(Config{}),
	cmpopts.EquateComparable(netip.Prefix{}),
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestLoad_ExampleParsesAsWritten(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &Config{
		Version:                1,
		Listen:                 ":8080",
		AdminListen:            "127.0.0.1:9090",
		PublicURL:              "https://app.example.com",
		Upstream:               "http://127.0.0.1:3000",
		UpstreamPathParameters: PathParametersReject,
		PreserveHost:           true,
		UpstreamTLS:            UpstreamTLS{MinVersion: DefaultUpstreamTLSMinVersion},
		TrustedProxies:         []string{"10.0.0.0/8"},
		SAML: SAML{
			IDPMetadataURL:  "https://idp.example.com/metadata",
			MetadataRefresh: time.Hour,
			EntityID:        "https://app.example.com/saml/metadata",
			CertFile:        "/etc/portcullis/sp.crt",
			KeyFile:         "/etc/portcullis/sp.key",
			NameIDFormat:    "emailAddress",
			ClockSkew:       90 * time.Second,
			LoginWindow:     DefaultLoginWindow,
			Attributes:      Attributes{User: "uid", Email: "mail", Name: "displayName", Groups: "groups"},
			MetadataURL:     mustURL("https://idp.example.com/metadata"),
		},
		Session: Session{
			CookieName: "portcullis",
			KeysFile:   "/etc/portcullis/session.keys",
			Lifetime:   8 * time.Hour,
		},
		Headers: map[string]string{
			"X-Forwarded-User":               "user",
			"X-Forwarded-Email":              "email",
			"X-Forwarded-Groups":             "groups",
			"X-Forwarded-Preferred-Username": "name",
		},
		Routes: []Route{
			{Path: "/healthz", Public: true},
			{Path: "/admin/", AllowGroups: []string{"admins"}},
		},
		Server: Server{
			ReadHeaderTimeout: DefaultReadHeaderTimeout,
			IdleTimeout:       DefaultIdleTimeout,
			MaxHeaderBytes:    DefaultMaxHeaderBytes,
			DrainTimeout:      DefaultDrainTimeout,
			UpstreamTimeout:   DefaultUpstreamTimeout,
			BodyIdleTimeout:   DefaultBodyIdleTimeout,
			ACSBodyLimit:      DefaultACSBodyLimit,
		},
		SCIM:          defaultSCIM,
		Store:         defaultStore,
		IdentityToken: defaultIdentityToken,
		Events:        Events{Retention: DefaultEventRetention, WebhookMaxAge: DefaultWebhookMaxAge},
		Public:        mustURL("https://app.example.com"),
		UpstreamURL:   mustURL("http://127.0.0.1:3000"),
		Trusted:       []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	}
	if diff := cmp.Diff(want, c, cmpConfig...); diff != "" {
		t.Errorf("Load mismatch (-want +got):\n%s", diff)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("Warnings() = %q, want none", w)
	}
	abs, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Resolve("sp.crt"), filepath.Join(abs, "sp.crt"); got != want {
		t.Errorf("Resolve(sp.crt) = %q, want %q", got, want)
	}
	if got := c.Resolve("/etc/portcullis/sp.crt"); got != "/etc/portcullis/sp.crt" {
		t.Errorf("Resolve(absolute) = %q", got)
	}
}

func TestConfig_LineCitesKeyOrNearestParent(t *testing.T) {
	t.Parallel()
	c := parseExample(t)
	tests := []struct {
		path string
		want int
	}{
		{"version", 1},
		{"saml.clockSkew", 15},
		{"saml.attributes.email", 18},
		{"headers.X-Forwarded-Groups", 28},
		{"routes[1]", 33},
		{"routes[1].allowGroups", 34},
		{"routes[1].allowGroups[0]", 34},
		{"saml.loginWindow", 7},   // absent: falls back to saml
		{"server.idleTimeout", 0}, // no server section at all
	}
	for _, tt := range tests {
		if got := c.Line(tt.path); got != tt.want {
			t.Errorf("Line(%q) = %d, want %d", tt.path, got, tt.want)
		}
	}
}

func TestLoad_MissingFileNamesIt(t *testing.T) {
	t.Parallel()
	_, err := Load("testdata/does-not-exist.yaml")
	if err == nil || !strings.Contains(err.Error(), "does-not-exist.yaml") {
		t.Fatalf("Load(missing) error = %v, want one naming the file", err)
	}
}

func TestParse_UnknownFieldNamesKeyAndLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		extra string
		want  []string
	}{
		{
			name:  "wrong case",
			extra: "server:\n  idleTimeOut: 1m\n",
			want:  []string{"line 11: server.idleTimeOut: unknown field (did you mean idleTimeout?)"},
		},
		{
			name:  "one letter off",
			extra: "routes:\n  - path: /a/\n    alowGroups: [x]\n",
			want:  []string{"line 12: routes[0].alowGroups: unknown field (did you mean allowGroups?)"},
		},
		{
			name:  "key at the wrong level",
			extra: "cookieName: sid\n",
			want:  []string{"line 10: cookieName: unknown field (did you mean session.cookieName?)"},
		},
		{
			name:  "nothing alike",
			extra: "frobnicate: true\n",
			want:  []string{"line 10: frobnicate: unknown field"},
		},
		{
			name:  "every unknown key at once",
			extra: "lisen: \":80\"\nserver:\n  drainTimout: 5s\n  maxHeaderByte: 10\n",
			want: []string{
				"line 10: lisen: unknown field (did you mean listen?)",
				"line 12: server.drainTimout: unknown field (did you mean drainTimeout?)",
				"line 13: server.maxHeaderByte: unknown field (did you mean maxHeaderBytes?)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseWithEnv([]byte(minimal+tt.extra), "", noEnv)
			if diff := cmp.Diff(tt.want, problemLines(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParse_UnknownSAMLKeyFromSpec(t *testing.T) {
	t.Parallel()
	in := strings.Replace(minimal, "idpMetadataURL", "idpMetadataUrl", 1)
	_, err := ParseWithEnv([]byte(in), "", noEnv)
	want := []string{"line 5: saml.idpMetadataUrl: unknown field (did you mean idpMetadataURL?)"}
	if diff := cmp.Diff(want, problemLines(t, err)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestParse_RejectsBadDocuments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", []string{"config is empty"}},
		{"only comments", "# nothing here\n", []string{"config is empty"}},
		{"null document", "~\n", []string{"line 1: config is empty"}},
		{"two documents", minimal + "---\nversion: 1\n", []string{"line 10: a second YAML document starts here; the config must be exactly one document"}},
		{"top level list", "- version: 1\n", []string{"line 1: the top level must be a mapping of keys such as version, listen and saml"}},
		{"syntax error", "version: 1\nlisten: [\n", []string{"line 2: invalid YAML: did not find expected node content"}},
		{"tab indentation", "saml:\n\tcertFile: x\n", []string{"line 2: invalid YAML: found character that cannot start any token"}},
		{
			name: "duplicate key",
			in:   minimal + "listen: \":1\"\nlisten: \":2\"\n",
			want: []string{"line 11: listen: duplicate key; first set at line 10"},
		},
		{
			name: "merge key",
			in:   "base: &b {}\n" + minimal,
			want: []string{"line 1: base: unknown field"},
		},
		{
			name: "merge key in section",
			in:   minimal + "server:\n  <<: {idleTimeout: 1m}\n",
			want: []string{"line 11: server: merge keys (<<) are not supported; write the keys out"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseWithEnv([]byte(tt.in), "", noEnv)
			if c != nil {
				t.Error("got a Config along with the error")
			}
			if diff := cmp.Diff(tt.want, problemLines(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParse_TypeErrorsNameFieldAndLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		extra string
		want  []string
	}{
		{"bad duration", "server:\n  idleTimeout: 2 minutes\n", []string{`line 11: server.idleTimeout: must be a duration such as 90s, 10m or 1h; got "2 minutes"`}},
		{"bare number as duration", "server:\n  idleTimeout: 90\n", []string{`line 11: server.idleTimeout: must be a duration such as 90s, 10m or 1h; got "90"`}},
		{"fraction as integer", "server:\n  maxHeaderBytes: 1.5\n", []string{`line 11: server.maxHeaderBytes: must be a whole number; got "1.5"`}},
		{"text as integer", "server:\n  acsBodyLimit: 1MiB\n", []string{`line 11: server.acsBodyLimit: must be a whole number; got "1MiB"`}},
		{"quoted bool", "routes:\n  - path: /x\n    public: \"yes please\"\n", []string{`line 12: routes[0].public: must be true or false; got "yes please"`}},
		{"scalar for list", "trustedProxies: 10.0.0.0/8\n", []string{"line 10: trustedProxies: must be a list"}},
		{"list for scalar", "listen: [\":80\"]\n", []string{"line 10: listen: must be a string, not a list"}},
		{"scalar for section", "server: fast\n", []string{"line 10: server: must be a mapping"}},
		{"mapping as header value", "headers:\n  X-User: {field: user}\n", []string{"line 11: headers.X-User: must be a string, not a mapping"}},
		{
			name:  "all type errors at once",
			extra: "server:\n  idleTimeout: soon\n  drainTimeout: later\n",
			want: []string{
				`line 11: server.idleTimeout: must be a duration such as 90s, 10m or 1h; got "soon"`,
				`line 12: server.drainTimeout: must be a duration such as 90s, 10m or 1h; got "later"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseWithEnv([]byte(minimal+tt.extra), "", noEnv)
			if diff := cmp.Diff(tt.want, problemLines(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// replace returns minimal with old replaced by new, which must occur.
func replace(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(minimal, old) {
		t.Fatalf("minimal config has no %q", old)
	}
	return strings.Replace(minimal, old, new, 1)
}

func TestParse_ExpandsEnvironment(t *testing.T) {
	t.Parallel()
	env := envFrom(map[string]string{
		"HOST":   "app.example.com",
		"MAX":    "4096",
		"EMPTY":  "",
		"TRICKY": "a: b\n- c # d",
		"NESTED": "${HOST}",
		"SID":    "sid",
	})
	tests := []struct {
		name string
		in   string
		got  func(*Config) any
		want any
	}{
		{
			name: "inside a value",
			in:   minimal + "listen: \"${HOST}:80\"\n",
			got:  func(c *Config) any { return c.Listen },
			want: "app.example.com:80",
		},
		{
			name: "plain scalar is typed after expansion",
			in:   minimal + "server:\n  maxHeaderBytes: ${MAX}\n",
			got:  func(c *Config) any { return c.Server.MaxHeaderBytes },
			want: 4096,
		},
		{
			name: "set but empty expands to nothing",
			in:   minimal + "headers:\n  X-A: \"us${EMPTY}er\"\n",
			got:  func(c *Config) any { return c.Headers["X-A"] },
			want: "user",
		},
		{
			name: "dollar-dollar stays literal",
			in:   replace(t, "  keyFile: sp.key\n", "  keyFile: sp.key\n  attributes:\n    user: \"a$$b$${HOST}\"\n"),
			got:  func(c *Config) any { return c.SAML.Attributes.User },
			want: "a$$b$${HOST}",
		},
		{
			name: "lone dollar stays literal",
			in:   minimal + "routes:\n  - path: /a$b/\n  - path: /c$\n",
			got:  func(c *Config) any { return c.Routes[0].Path + " " + c.Routes[1].Path },
			want: "/a$b/ /c$",
		},
		{
			name: "value cannot inject YAML",
			in:   replace(t, "keysFile: session.keys", "keysFile: ${TRICKY}"),
			got:  func(c *Config) any { return c.Session.KeysFile },
			want: "a: b\n- c # d",
		},
		{
			name: "value is not expanded again",
			in:   replace(t, "http://127.0.0.1:3000", "http://127.0.0.1:3000/${NESTED}"),
			got:  func(c *Config) any { return c.Upstream },
			want: "http://127.0.0.1:3000/${HOST}",
		},
		{
			name: "comments are not expanded",
			in:   minimal + "# ${UNSET} in a comment\nlisten: \":80\" # ${UNSET}\n",
			got:  func(c *Config) any { return c.Listen },
			want: ":80",
		},
		{
			name: "keys are expanded",
			in:   minimal + "headers:\n  X-${SID}: user\n",
			got:  func(c *Config) any { return c.Headers },
			want: map[string]string{"X-sid": "user"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseWithEnv([]byte(tt.in), "", env)
			if err != nil {
				t.Fatalf("ParseWithEnv: %v", err)
			}
			if diff := cmp.Diff(tt.want, tt.got(c)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParse_EnvErrorsNameVariableAndLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{
			name: "unset variable",
			in:   replace(t, "certFile: sp.crt", "certFile: ${CERT_DIR}/sp.crt"),
			want: []string{"line 6: saml.certFile: environment variable CERT_DIR is not set"},
		},
		{
			name: "every unset variable at once",
			in:   replace(t, "upstream: http://127.0.0.1:3000", "upstream: http://${UP_HOST}:${UP_PORT}") + "routes:\n  - path: ${ROUTE}\n",
			want: []string{
				"line 3: upstream: environment variable UP_HOST is not set",
				"line 3: upstream: environment variable UP_PORT is not set",
				"line 11: routes[0].path: environment variable ROUTE is not set",
			},
		},
		{
			name: "line inside a block scalar",
			in:   minimal + "listen: |\n  a\n  ${LATER}\n",
			want: []string{"line 12: listen: environment variable LATER is not set"},
		},
		{
			name: "default syntax is not supported",
			in:   minimal + "listen: ${PORT:-8080}\n",
			want: []string{`line 10: listen: malformed variable reference "${PORT:-8080}"; only ${NAME} is supported`},
		},
		{
			name: "unterminated",
			in:   minimal + "listen: \":${PORT\"\n",
			want: []string{`line 10: listen: unterminated variable reference "${PORT"; only ${NAME} is supported`},
		},
		{
			name: "empty name",
			in:   minimal + "listen: \":${}\"\n",
			want: []string{`line 10: listen: malformed variable reference "${}"; only ${NAME} is supported`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseWithEnv([]byte(tt.in), "", envFrom(nil))
			if diff := cmp.Diff(tt.want, problemLines(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParse_AppliesDefaults(t *testing.T) {
	t.Parallel()
	c, err := ParseWithEnv([]byte(minimal), "/srv", noEnv)
	if err != nil {
		t.Fatalf("ParseWithEnv: %v", err)
	}
	want := &Config{
		Version:                1,
		Listen:                 DefaultListen,
		AdminListen:            DefaultAdminListen,
		PublicURL:              "https://app.example.com",
		Upstream:               "http://127.0.0.1:3000",
		UpstreamPathParameters: PathParametersReject,
		PreserveHost:           true,
		UpstreamTLS:            UpstreamTLS{MinVersion: DefaultUpstreamTLSMinVersion},
		SAML: SAML{
			IDPMetadataURL:  "https://idp.example.com/metadata",
			MetadataRefresh: DefaultMetadataRefresh,
			EntityID:        "https://app.example.com/saml/metadata",
			CertFile:        "sp.crt",
			KeyFile:         "sp.key",
			NameIDFormat:    DefaultNameIDFormat,
			ClockSkew:       DefaultClockSkew,
			LoginWindow:     DefaultLoginWindow,
			MetadataURL:     mustURL("https://idp.example.com/metadata"),
		},
		Session: Session{
			CookieName: HostCookiePrefix + DefaultCookieName, KeysFile: "session.keys", Lifetime: DefaultSessionLifetime,
			LegacyCookieNames: []string{DefaultCookieName},
		},
		Headers: DefaultHeaders(),
		Server: Server{
			ReadHeaderTimeout: DefaultReadHeaderTimeout,
			IdleTimeout:       DefaultIdleTimeout,
			MaxHeaderBytes:    DefaultMaxHeaderBytes,
			DrainTimeout:      DefaultDrainTimeout,
			UpstreamTimeout:   DefaultUpstreamTimeout,
			BodyIdleTimeout:   DefaultBodyIdleTimeout,
			ACSBodyLimit:      DefaultACSBodyLimit,
		},
		SCIM:          defaultSCIM,
		Store:         defaultStore,
		IdentityToken: defaultIdentityToken,
		Events:        Events{Retention: DefaultEventRetention, WebhookMaxAge: DefaultWebhookMaxAge},
		Public:        mustURL("https://app.example.com"),
		UpstreamURL:   mustURL("http://127.0.0.1:3000"),
	}
	if diff := cmp.Diff(want, c, cmpConfig...); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if got := c.Resolve("sp.key"); got != filepath.Join("/srv", "sp.key") {
		t.Errorf("Resolve(sp.key) = %q, want /srv/sp.key", got)
	}
}

func TestParse_DefaultsKeepExplicitValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		got  func(*Config) any
		want any
	}{
		{"explicit zero clock skew is kept", replace(t, "  keyFile: sp.key\n", "  keyFile: sp.key\n  clockSkew: 0s\n"), func(c *Config) any { return c.SAML.ClockSkew }, time.Duration(0)},
		{"null duration gets the default", replace(t, "  keyFile: sp.key\n", "  keyFile: sp.key\n  clockSkew:\n"), func(c *Config) any { return c.SAML.ClockSkew }, DefaultClockSkew},
		{"empty entityID gets the default", replace(t, "  keyFile: sp.key\n", "  keyFile: sp.key\n  entityID: \"\"\n"), func(c *Config) any { return c.SAML.EntityID }, "https://app.example.com/saml/metadata"},
		{"trailing slash of publicURL is dropped", replace(t, "https://app.example.com", "https://app.example.com/"), func(c *Config) any { return c.Public.String() + " " + c.SAML.EntityID }, "https://app.example.com https://app.example.com/saml/metadata"},
		{"urn entityID", replace(t, "  keyFile: sp.key\n", "  keyFile: sp.key\n  entityID: urn:example:portcullis\n"), func(c *Config) any { return c.SAML.EntityID }, "urn:example:portcullis"},
		{"metadata file instead of URL", replace(t, "idpMetadataURL: https://idp.example.com/metadata", "idpMetadataFile: idp.xml"), func(c *Config) any { return c.SAML.MetadataURL == nil }, true},
		{"http metadata on loopback", replace(t, "https://idp.example.com/metadata", "http://127.0.0.2:8080/metadata"), func(c *Config) any { return c.SAML.MetadataURL.Host }, "127.0.0.2:8080"},
		{"http metadata on localhost", replace(t, "https://idp.example.com/metadata", "http://localhost/metadata"), func(c *Config) any { return c.SAML.MetadataURL.Host }, "localhost"},
		{"http metadata on ::1", replace(t, "https://idp.example.com/metadata", "http://[::1]/md"), func(c *Config) any { return c.SAML.MetadataURL.Host }, "[::1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseWithEnv([]byte(tt.in), "", noEnv)
			if err != nil {
				t.Fatalf("ParseWithEnv: %v", err)
			}
			if diff := cmp.Diff(tt.want, tt.got(c)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParse_HeadersDefaultOnlyWhenAbsent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		extra string
		want  map[string]string
	}{
		{"absent gets the defaults", "", DefaultHeaders()},
		{"null gets the defaults", "headers:\n", DefaultHeaders()},
		{"explicitly empty means none", "headers: {}\n", map[string]string{}},
		{"explicit list replaces the defaults", "headers:\n  Remote-User: user\n", map[string]string{"Remote-User": "user"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseWithEnv([]byte(minimal+tt.extra), "", noEnv)
			if err != nil {
				t.Fatalf("ParseWithEnv: %v", err)
			}
			if diff := cmp.Diff(tt.want, c.Headers); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
		})
	}
}

var defaultSCIM = SCIM{
	BasePath:           DefaultSCIMBasePath,
	Match:              Match{IdentityField: DefaultMatchIdentity, SCIMAttribute: DefaultMatchSCIM},
	RequireProvisioned: true,
	GroupsSource:       DefaultGroupsSource,
	MaxBodyBytes:       DefaultSCIMMaxBodyBytes,
	MaxPageSize:        DefaultSCIMMaxPageSize,
	Bulk:               Bulk{MaxOperations: DefaultSCIMBulkMaxOperations, MaxPayloadSize: DefaultSCIMBulkMaxPayloadSize},
}

var defaultStore = Store{Driver: DefaultStoreDriver, DSN: DefaultSQLitePath, MaxStaleness: DefaultStoreMaxStaleness}

var defaultIdentityToken = IdentityToken{Header: DefaultIdentityTokenHeader, Lifetime: DefaultIdentityTokenLifetime}
