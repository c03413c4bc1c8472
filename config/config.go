// Package config owns the Portcullis configuration: the YAML shape, defaults,
// strict loading with ${VAR} expansion, and validation that reports every
// problem at once with its field path and line. Values are parsed into typed
// form once, here, never per request.
package config

import (
	"net/netip"
	"net/url"
	"time"
)

// Defaults, applied by Load before Validate.
const (
	DefaultListen          = ":8080"
	DefaultAdminListen     = "127.0.0.1:9090"
	DefaultMetadataRefresh = time.Hour
	DefaultNameIDFormat    = "emailAddress"
	DefaultClockSkew       = 90 * time.Second
	DefaultLoginWindow     = 10 * time.Minute
	DefaultCookieName      = "portcullis"
	// HostCookiePrefix is put before DefaultCookieName on https (RFC 6265bis
	// cookie prefixes).
	HostCookiePrefix = "__Host-"
	// SecureCookiePrefix is put before DefaultCookieName on https when
	// session.cookieDomain is set (a __Host- cookie cannot have a Domain).
	SecureCookiePrefix       = "__Secure-"
	DefaultSessionLifetime   = 8 * time.Hour
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultDrainTimeout      = 25 * time.Second
	DefaultUpstreamTimeout   = 60 * time.Second
	// DefaultBodyIdleTimeout is the longest pause allowed between two reads
	// of a request body (nginx's client_body_timeout is 60s).
	DefaultBodyIdleTimeout = 30 * time.Second
	DefaultACSBodyLimit    = 1 << 20

	DefaultSCIMBasePath     = "/scim/v2"
	DefaultSCIMMaxBodyBytes = 4 << 20 // a 10,000-member group PUT is about 600 KB
	DefaultSCIMMaxPageSize  = 500
	// Bulk (RFC 7644 §3.7): the most operations and bytes one /Bulk request
	// may carry (advertised in /ServiceProviderConfig; over them: 413).
	DefaultSCIMBulkMaxOperations  = 1000
	DefaultSCIMBulkMaxPayloadSize = 1 << 20
	DefaultMatchIdentity          = "email"
	DefaultMatchSCIM              = "userName"
	DefaultGroupsSource           = "scim"
	DefaultStoreDriver            = "sqlite"
	DefaultSQLitePath             = "/var/lib/portcullis/portcullis.db"
	DefaultStoreMaxStaleness      = 5 * time.Minute
)

// MaxClockSkew is the largest saml.clockSkew accepted.
const MaxClockSkew = 10 * time.Minute

// DefaultUpstreamTLSMinVersion is upstreamTLS.minVersion's default.
const DefaultUpstreamTLSMinVersion = "1.2"

// upstreamPathParameters values.
const (
	// PathParametersReject refuses (400) any path holding ";": the default.
	PathParametersReject = "reject"
	// PathParametersStripForMatching judges a path the way a Servlet
	// container maps it, with ";…" removed from every segment, and forwards
	// the original bytes: for Java upstreams (";jsessionid=" URL rewriting,
	// JAX-RS matrix parameters).
	PathParametersStripForMatching = "strip-for-matching"
)

// Config is the whole file. YAML keys are camelCase; fields tagged yaml:"-"
// are filled by Load from the raw values and are what the rest of the
// program uses.
type Config struct {
	Version        int    `yaml:"version"`
	Listen         string `yaml:"listen"`
	AdminListen    string `yaml:"adminListen"`
	AdminTokenFile string `yaml:"adminTokenFile"` // default "": see AdminTokenRequired
	PublicURL      string `yaml:"publicURL"`
	Upstream       string `yaml:"upstream"`
	// UpstreamPathParameters says how a ";" in a request path is judged:
	// PathParametersReject or PathParametersStripForMatching.
	UpstreamPathParameters string `yaml:"upstreamPathParameters"`
	// UpstreamPathPrefix, when set, is where the app lives on the public
	// URL: requests outside it get 404, and inside it the prefix is removed
	// before forwarding and sent as X-Forwarded-Prefix.
	UpstreamPathPrefix string `yaml:"upstreamPathPrefix"`
	// PreserveHost sends the client's Host upstream (default true); false
	// sends the upstream URL's host.
	PreserveHost bool `yaml:"preserveHost"`
	// UpstreamTLS configures TLS to an https upstream.
	UpstreamTLS    UpstreamTLS       `yaml:"upstreamTLS"`
	TrustedProxies []string          `yaml:"trustedProxies"`
	SAML           SAML              `yaml:"saml"`
	Session        Session           `yaml:"session"`
	Headers        map[string]string `yaml:"headers"`
	Routes         []Route           `yaml:"routes"`
	Server         Server            `yaml:"server"`
	SCIM           SCIM              `yaml:"scim"`
	Store          Store             `yaml:"store"`
	// IdentityToken, when its keysFile is set, signs a JWT for the upstream.
	IdentityToken IdentityToken `yaml:"identityToken"`
	// ForwardAuth answers an ingress's auth subrequests at /.portcullis/auth.
	ForwardAuth ForwardAuth `yaml:"forwardAuth"`
	// Events configures the event feed and the webhooks (events.go).
	Events Events `yaml:"events"`
	// AllowedRedirectHosts are the other hosts (exact names, or
	// name:port) that sign-in may return to: /saml/login?rd=https://host/x.
	AllowedRedirectHosts []string `yaml:"allowedRedirectHosts"`
	// Organizations are the customers served besides (or instead of) the
	// top-level IdP's organization "default" (orgs.go).
	Organizations []Organization `yaml:"organizations"`
	// OrganizationsDir holds one YAML file per organization, read at start
	// and again whenever it changes.
	OrganizationsDir string `yaml:"organizationsDir"`

	// Parsed values.
	Public      *url.URL       `yaml:"-"` // from PublicURL
	UpstreamURL *url.URL       `yaml:"-"` // from Upstream
	Trusted     []netip.Prefix `yaml:"-"` // from TrustedProxies (a bare address becomes a /32 or /128)

	// path records where each key was found, for error messages ("saml.keyFile" → line 12).
	lines map[string]int
	// baseDir is the directory of the config file; relative *File paths resolve against it.
	baseDir string
}

// UpstreamTLS configures TLS to an https upstream. The files are read
// again when they change, so rotated certificates are picked up without a
// restart.
type UpstreamTLS struct {
	CAFile     string `yaml:"caFile"`     // PEM CA certificates for the upstream's; default: the system's
	CertFile   string `yaml:"certFile"`   // client certificate (mTLS), with keyFile
	KeyFile    string `yaml:"keyFile"`    // its private key (a secret file)
	ServerName string `yaml:"serverName"` // the name verified and sent as SNI; default: the upstream's host
	MinVersion string `yaml:"minVersion"` // "1.2" (default) or "1.3"
	// InsecureSkipVerify accepts any upstream certificate: a warning at
	// start and the portcullis_upstream_tls_insecure gauge say so.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
}

// SAML configures the service provider.
type SAML struct {
	IDPMetadataURL    string        `yaml:"idpMetadataURL"`
	IDPMetadataFile   string        `yaml:"idpMetadataFile"`
	MetadataRefresh   time.Duration `yaml:"metadataRefresh"`
	EntityID          string        `yaml:"entityID"` // default <publicURL>/saml/metadata
	CertFile          string        `yaml:"certFile"`
	KeyFile           string        `yaml:"keyFile"`
	NameIDFormat      string        `yaml:"nameIDFormat"` // emailAddress | persistent | unspecified | transient
	AllowIDPInitiated bool          `yaml:"allowIDPInitiated"`
	ClockSkew         time.Duration `yaml:"clockSkew"`
	LoginWindow       time.Duration `yaml:"loginWindow"` // how long a started login may take (MFA), default 10m
	Attributes        Attributes    `yaml:"attributes"`

	MetadataURL *url.URL `yaml:"-"` // from IDPMetadataURL
}

// Attributes maps identity fields to SAML attribute names. An unset User
// means the NameID.
type Attributes struct {
	User   string `yaml:"user"`
	Email  string `yaml:"email"`
	Name   string `yaml:"name"`
	Groups string `yaml:"groups"`
}

// Session configures the session cookie.
type Session struct {
	// CookieName defaults to "__Host-portcullis" on an https publicURL
	// (Secure, Path=/, no Domain: nothing on another path or subdomain can
	// set one that shadows it) and "portcullis" on http.
	CookieName string `yaml:"cookieName"`
	// CookieDomain, when set (".example.com"), shares the session cookie
	// with every host under it, for forward-auth to apps on other hosts.
	// The default name is then __Secure-portcullis on https.
	CookieDomain string        `yaml:"cookieDomain"`
	KeysFile     string        `yaml:"keysFile"`
	Lifetime     time.Duration `yaml:"lifetime"`
	// ExpireUpstreamCookies names cookies the app behind sets (a legacy
	// app's JSESSIONID) that Portcullis expires in the browser whenever a
	// session ends (logout, Single Logout, revocation) and at a sign-in
	// that does not continue the same user's session, so that the app's
	// own session never greets the next person on a shared browser.
	ExpireUpstreamCookies []string `yaml:"expireUpstreamCookies"`
	// LegacyCookieNames are session cookie names of earlier versions that
	// the default replaced (not configurable): never read as a session,
	// stripped from upstream requests, expired in browsers.
	LegacyCookieNames []string `yaml:"-"`
}

// Route is one entry of the routes list; the first match wins.
type Route struct {
	Path        string   `yaml:"path"`   // a prefix ending in "/" matches the subtree; otherwise exact
	Public      bool     `yaml:"public"` // no login needed
	AllowGroups []string `yaml:"allowGroups"`
	// AllowOrganizations, when set, lets in only sessions of these
	// organizations (ids; "default" for the top-level IdP's).
	AllowOrganizations []string `yaml:"allowOrganizations"`
	// Audience is the identity token's aud on this route; default
	// identityToken.audience.
	Audience string `yaml:"audience"`
}

// Server holds listener hygiene settings.
type Server struct {
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout"`
	IdleTimeout       time.Duration `yaml:"idleTimeout"`
	MaxHeaderBytes    int           `yaml:"maxHeaderBytes"`
	DrainTimeout      time.Duration `yaml:"drainTimeout"`    // graceful shutdown on SIGTERM
	UpstreamTimeout   time.Duration `yaml:"upstreamTimeout"` // response headers from upstream; 504 after
	BodyIdleTimeout   time.Duration `yaml:"bodyIdleTimeout"` // longest gap between two reads of a request body; 408 after
	ACSBodyLimit      int64         `yaml:"acsBodyLimit"`
}

// SCIM configures the SCIM 2.0 receiver and the directory gate.
type SCIM struct {
	Enabled    bool   `yaml:"enabled"`
	BasePath   string `yaml:"basePath"`   // on the public listener, default /scim/v2
	TokensFile string `yaml:"tokensFile"` // one bearer token a line ("label token" or just "token"); two lines = rotation
	Match      Match  `yaml:"match"`
	// RequireProvisioned denies a SAML login with no directory user.
	// Default true when SCIM is enabled.
	RequireProvisioned bool   `yaml:"requireProvisioned"`
	GroupsSource       string `yaml:"groupsSource"` // scim | saml | both: feeds allowGroups and the groups header
	MaxBodyBytes       int64  `yaml:"maxBodyBytes"`
	MaxPageSize        int    `yaml:"maxPageSize"`
	Bulk               Bulk   `yaml:"bulk"`
}

// Bulk limits POST /Bulk (RFC 7644 §3.7.4).
type Bulk struct {
	MaxOperations  int   `yaml:"maxOperations"`  // operations in one request
	MaxPayloadSize int64 `yaml:"maxPayloadSize"` // bytes of one request body
}

// Match says how a signed-in identity finds its directory user.
type Match struct {
	IdentityField string `yaml:"identityField"` // user | email (from the SAML session)
	SCIMAttribute string `yaml:"scimAttribute"` // userName | email | externalId; compared case-insensitively
}

// Store configures where the directory lives.
type Store struct {
	Driver       string        `yaml:"driver"`  // sqlite (default) | postgres
	DSN          string        `yaml:"dsn"`     // sqlite: file path; postgres: a DSN without a password
	DSNFile      string        `yaml:"dsnFile"` // postgres: a file holding the DSN (secrets)
	MaxStaleness time.Duration `yaml:"maxStaleness"`
}

// Resolve returns p made absolute against the config file's directory.
func (c *Config) Resolve(p string) string {
	if p == "" || c.baseDir == "" || isAbs(p) {
		return p
	}
	return joinPath(c.baseDir, p)
}
