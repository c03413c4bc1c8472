package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

// Validate checks every field and returns a *ValidationError listing every
// problem, or nil. It does no file or network I/O: whether certFile exists or
// the IdP answers is for `portcullis check-config`.
//
// Validate also fills the parsed fields (Public, UpstreamURL, Trusted,
// SAML.MetadataURL) from the raw ones, and sets an empty SAML.EntityID to
// <publicURL>/saml/metadata once publicURL is valid. It does not apply the
// other defaults; Load and Parse do that before calling it.
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.version()
	v.listeners()
	v.publicURL()
	v.upstream()
	v.trustedProxies()
	v.saml()
	v.session()
	v.headers()
	v.routes()
	v.server()
	v.scim()
	v.store()
	v.identityToken()
	v.events()
	v.crossHost()
	v.organizations()
	return v.ps.err()
}

type validator struct {
	c  *Config
	ps problems
}

// add records a problem at path, citing the line of path or of its nearest
// enclosing key.
func (v *validator) add(path, format string, args ...any) {
	v.ps.add(path, v.c.Line(path), format, args...)
}

func (v *validator) version() {
	switch v.c.Version {
	case 1:
	case 0:
		v.add("version", "required; must be 1")
	default:
		v.add("version", "unsupported version %d; must be 1", v.c.Version)
	}
}

func (v *validator) listeners() {
	c := v.c
	lh, lp, lok := v.hostPort("listen", c.Listen)
	ah, ap, aok := v.hostPort("adminListen", c.AdminListen)
	if lok && aok && lp == ap && lp != "0" && (lh == ah || isWildcard(lh) || isWildcard(ah)) {
		v.add("adminListen", "conflicts with listen %q; use a different port", c.Listen)
	}
}

func (v *validator) hostPort(path, s string) (host, port string, ok bool) {
	if s == "" {
		v.add(path, "required, such as \":8080\" or \"127.0.0.1:9090\"")
		return "", "", false
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.add(path, "must be host:port, such as \":8080\" or \"127.0.0.1:9090\"; got %q", s)
		return "", "", false
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.add(path, "port %q must be a number from 0 to 65535", port)
		return "", "", false
	}
	if strings.ContainsFunc(host, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		v.add(path, "host %q must not contain spaces or control characters", host)
		return "", "", false
	}
	return host, port, true
}

func isWildcard(host string) bool {
	return host == "" || host == "0.0.0.0" || host == "::" || host == "[::]"
}

// httpURL parses s as an absolute http or https URL with a host and no
// credentials or fragment, reporting problems at path.
func (v *validator) httpURL(path, s string) *url.URL {
	if s == "" {
		v.add(path, "required; an absolute http or https URL")
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		v.add(path, "must be an absolute http or https URL; got %q", s)
		return nil
	}
	if u.User != nil {
		v.add(path, "must not contain credentials; secrets belong in *File settings")
		return nil
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		v.add(path, "must not have a fragment")
		return nil
	}
	return u
}

func (v *validator) publicURL() {
	c := v.c
	c.Public = nil
	u := v.httpURL("publicURL", c.PublicURL)
	if u == nil {
		return
	}
	if u.RawQuery != "" || u.ForceQuery {
		v.add("publicURL", "must not have a query")
		return
	}
	if u.Path != "" && u.Path != "/" {
		v.add("publicURL", "must not have a path (got %q): Portcullis serves from the root of its host", u.Path)
		return
	}
	u.Path, u.RawPath = "", ""
	c.Public = u
	if c.SAML.EntityID == "" {
		c.SAML.EntityID = u.String() + "/saml/metadata"
	}
}

func (v *validator) upstream() {
	v.c.UpstreamURL = nil
	if v.c.Upstream == "" && v.c.ForwardAuth.Enabled {
		return // forward-auth only: nothing to proxy to
	}
	v.c.UpstreamURL = v.httpURL("upstream", v.c.Upstream)
	v.upstreamTLS()
	if p := v.c.UpstreamPathPrefix; p != "" && !validPathPrefix(p) {
		v.add("upstreamPathPrefix", "must be a path such as /app: starting with \"/\", not ending in \"/\", of letters, digits and -._~ between slashes; got %q", p)
	}
	switch p := v.c.UpstreamPathParameters; p {
	case PathParametersReject, PathParametersStripForMatching:
	default:
		v.add("upstreamPathParameters", "must be %s or %s; got %q", PathParametersReject, PathParametersStripForMatching, p)
	}
}

func (v *validator) trustedProxies() {
	c := v.c
	c.Trusted = nil
	for i, s := range c.TrustedProxies {
		path := fmt.Sprintf("trustedProxies[%d]", i)
		p, err := parsePrefix(s)
		if err != nil {
			v.add(path, "%v", err)
			continue
		}
		c.Trusted = append(c.Trusted, p)
	}
}

// parsePrefix parses a CIDR or a bare address (which becomes a /32 or /128).
// IPv4-mapped IPv6 forms become plain IPv4, as peers are compared that way.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("must be an IP address or CIDR such as 10.0.0.0/8; got %q", s)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("must not have an IPv6 zone; got %q", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("must be an IP address or CIDR such as 10.0.0.0/8; got %q", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set; did you mean %s?", s, m)
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, nil
}

var nameIDFormats = []string{"emailAddress", "persistent", "unspecified", "transient"}

func (v *validator) saml() {
	s := &v.c.SAML
	s.MetadataURL = nil
	switch {
	case s.IDPMetadataURL != "" && s.IDPMetadataFile != "":
		v.add("saml.idpMetadataFile", "set only one of idpMetadataURL and idpMetadataFile")
	case s.IDPMetadataURL == "" && s.IDPMetadataFile == "" && !v.c.HasOrganizations():
		v.add("saml.idpMetadataURL", "required: set idpMetadataURL or idpMetadataFile (or give each customer an entry of organizations)")
	}
	if s.IDPMetadataURL != "" {
		s.MetadataURL = v.metadataURL("saml.idpMetadataURL", s.IDPMetadataURL)
	}
	if s.MetadataRefresh < time.Minute {
		v.add("saml.metadataRefresh", "must be at least 1m; got %s", s.MetadataRefresh)
	}
	if s.EntityID != "" {
		v.entityID("saml.entityID", s.EntityID)
	}
	if s.CertFile == "" {
		v.add("saml.certFile", "required: the SP certificate (PEM)")
	}
	if s.KeyFile == "" {
		v.add("saml.keyFile", "required: the SP private key (PEM)")
	}
	v.nameIDFormat(s.NameIDFormat)
	if s.ClockSkew < 0 || s.ClockSkew > MaxClockSkew {
		v.add("saml.clockSkew", "must be between 0s and 10m; got %s", s.ClockSkew)
	}
	if s.LoginWindow < time.Minute || s.LoginWindow > time.Hour {
		v.add("saml.loginWindow", "must be between 1m and 1h; got %s", s.LoginWindow)
	}
	v.attributes("saml.attributes", s.Attributes)
}

// attributes checks a saml.attributes block at path.
func (v *validator) attributes(path string, attrs Attributes) {
	for _, a := range []struct{ name, value string }{
		{"user", attrs.User},
		{"email", attrs.Email},
		{"name", attrs.Name},
		{"groups", attrs.Groups},
	} {
		if a.value != strings.TrimSpace(a.value) {
			v.add(path+"."+a.name, "must not start or end with whitespace; got %q", a.value)
		}
	}
}

func (v *validator) metadataURL(path, s string) *url.URL {
	u, err := url.Parse(s)
	if err == nil {
		err = CheckMetadataURL(u)
	}
	switch {
	case errors.Is(err, ErrMetadataURLCredentials):
		v.add(path, "%v", err) // never echo the credentials
		return nil
	case err != nil:
		v.add(path, "%v; got %q", ErrMetadataURLScheme, s)
		return nil
	}
	return u
}

// The IdP metadata URL rule's errors.
var (
	ErrMetadataURLScheme      = errors.New("must be an absolute https URL (http only for a loopback host)")
	ErrMetadataURLCredentials = errors.New("must not contain credentials; secrets belong in *File settings")
)

// CheckMetadataURL applies the rule for an IdP metadata URL, the
// configured one and every redirect its fetch follows: absolute https, or
// http to a loopback host, without credentials. The metadata carries the
// keys every signature is checked with, so it never travels in the clear
// off the host.
func CheckMetadataURL(u *url.URL) error {
	switch {
	case u.Host == "" || u.Opaque != "" ||
		(u.Scheme != "https" && !(u.Scheme == "http" && LoopbackHost(u.Hostname()))):
		return ErrMetadataURLScheme
	case u.User != nil:
		return ErrMetadataURLCredentials
	}
	return nil
}

// entityID accepts an absolute URI: a URL with a host, or a URN or other
// opaque URI, at most 1024 characters (SAML core's limit).
func (v *validator) entityID(path, s string) {
	if len(s) > 1024 {
		v.add(path, "must be at most 1024 characters; got %d", len(s))
		return
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") ||
		strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		v.add(path, "must be an absolute URI such as https://app.example.com/saml/metadata or urn:example:app; got %q", s)
	}
}

func (v *validator) nameIDFormat(f string) {
	for _, ok := range nameIDFormats {
		if f == ok {
			return
		}
	}
	if i := strings.LastIndexByte(f, ':'); strings.HasPrefix(f, "urn:") && i >= 0 {
		for _, ok := range nameIDFormats {
			if f[i+1:] == ok {
				v.add("saml.nameIDFormat", "use the short name %q instead of the URN", ok)
				return
			}
		}
	}
	v.add("saml.nameIDFormat", "must be one of %s; got %q", strings.Join(nameIDFormats, ", "), f)
}

func (v *validator) session() {
	s := v.c.Session
	switch {
	case s.CookieName == "":
		v.add("session.cookieName", "required")
	case !isToken(s.CookieName):
		v.add("session.cookieName", "must be a cookie name: letters, digits and !#$%%&'*+-.^_`|~, no spaces, \"=\" or \";\"; got %q", s.CookieName)
	case v.c.Public != nil && v.c.Public.Scheme != "https" &&
		(strings.HasPrefix(s.CookieName, "__Host-") || strings.HasPrefix(s.CookieName, "__Secure-")):
		v.add("session.cookieName", "browsers accept %q only on a Secure cookie, which needs an https publicURL", s.CookieName)
	}
	if s.KeysFile == "" {
		v.add("session.keysFile", "required: the session key file")
	}
	if s.Lifetime < time.Minute || s.Lifetime > 30*24*time.Hour {
		v.add("session.lifetime", "must be between 1m and 720h (30 days); got %s", s.Lifetime)
	}
	for i, name := range s.ExpireUpstreamCookies {
		field := fmt.Sprintf("session.expireUpstreamCookies[%d]", i)
		switch {
		case !isToken(name):
			v.add(field, "must be a cookie name: letters, digits and !#$%%&'*+-.^_`|~, no spaces, \"=\" or \";\"; got %q", name)
		case s.CookieName != "" && strings.HasPrefix(name, s.CookieName):
			v.add(field, "%q is Portcullis's own session cookie", name)
		}
	}
}

// isToken reports whether s is an RFC 9110 token, the syntax of both header
// field names and cookie names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// forbiddenHeaders may not carry identity: hop-by-hop headers, headers that
// frame or route the request, and headers the proxy itself sets. Keys are in
// normalHeader form. Any Proxy-* header is forbidden too.
var forbiddenHeaders = map[string]bool{
	"connection": true, "keep-alive": true, "te": true, "trailer": true,
	"transfer-encoding": true, "upgrade": true, "host": true,
	"content-length": true, "content-type": true, "content-encoding": true, "expect": true,
	"cookie": true, "set-cookie": true, "authorization": true,
	"forwarded": true, "x-forwarded-for": true, "x-forwarded-proto": true, "x-forwarded-host": true,
	"x-forwarded-port": true, "x-real-ip": true, "x-request-id": true, "via": true,
}

// normalHeader folds the spellings upstreams may treat as one header: case,
// and "_" for "-".
func normalHeader(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

func (v *validator) headers() {
	// Check in file order so "duplicates" names the later key.
	names := sortedKeys(v.c.Headers)
	sort.SliceStable(names, func(i, j int) bool {
		return v.c.lines["headers."+names[i]] < v.c.lines["headers."+names[j]]
	})
	seen := map[string]string{}
	for _, name := range names {
		path := "headers." + name
		norm := normalHeader(name)
		switch {
		case !isToken(name):
			v.add(path, "must be an HTTP header name: letters, digits and !#$%%&'*+-.^_`|~")
		case forbiddenHeaders[norm] || strings.HasPrefix(norm, "proxy-"):
			v.add(path, "%s cannot carry identity: it is hop-by-hop, frames the request or is set by the proxy", name)
		case seen[norm] != "":
			v.add(path, "same header as %s (names ignore case, and upstreams may read \"_\" as \"-\")", seen[norm])
		default:
			seen[norm] = name
		}
		if f := v.c.Headers[name]; !identity.ValidField(f) {
			v.add(path, "must be one of %s; got %q", strings.Join(identity.Fields, ", "), f)
		}
	}
}

func (v *validator) server() {
	s := v.c.Server
	for _, d := range []struct {
		name string
		val  time.Duration
	}{
		{"readHeaderTimeout", s.ReadHeaderTimeout},
		{"idleTimeout", s.IdleTimeout},
		{"drainTimeout", s.DrainTimeout},
		{"upstreamTimeout", s.UpstreamTimeout},
		{"bodyIdleTimeout", s.BodyIdleTimeout},
	} {
		if d.val <= 0 {
			v.add("server."+d.name, "must be a positive duration; got %s", d.val)
		}
	}
	if s.MaxHeaderBytes <= 0 {
		v.add("server.maxHeaderBytes", "must be a positive number of bytes; got %d", s.MaxHeaderBytes)
	}
	if s.ACSBodyLimit <= 0 {
		v.add("server.acsBodyLimit", "must be a positive number of bytes; got %d", s.ACSBodyLimit)
	}
}

func (v *validator) scim() {
	sc := v.c.SCIM
	if !sc.Enabled {
		return
	}
	if sc.TokensFile == "" && v.c.HasDefaultOrg() {
		v.add("scim.tokensFile", "required when scim.enabled: the file of bearer tokens the IdP uses")
	}
	switch bp := sc.BasePath; {
	case !strings.HasPrefix(bp, "/") || strings.HasSuffix(bp, "/") || strings.Contains(bp, "//"):
		v.add("scim.basePath", "must start with \"/\" and not end with one, such as /scim/v2; got %q", bp)
	case routePathProblem(bp+"/") != "":
		v.add("scim.basePath", "%s", routePathProblem(bp+"/"))
	case bp == "/saml" || strings.HasPrefix(bp, "/saml/"):
		v.add("scim.basePath", "must not be under /saml/, which the SAML endpoints own")
	}
	if f := sc.Match.IdentityField; f != "user" && f != "email" {
		v.add("scim.match.identityField", "must be user or email; got %q", f)
	}
	if a := sc.Match.SCIMAttribute; a != "userName" && a != "email" && a != "externalId" {
		v.add("scim.match.scimAttribute", "must be userName, email or externalId; got %q", a)
	}
	if g := sc.GroupsSource; g != "scim" && g != "saml" && g != "both" {
		v.add("scim.groupsSource", "must be scim, saml or both; got %q", g)
	}
	if sc.MaxBodyBytes < 1024 {
		v.add("scim.maxBodyBytes", "must be at least 1024; got %d", sc.MaxBodyBytes)
	}
	if sc.MaxPageSize < 1 || sc.MaxPageSize > 10000 {
		v.add("scim.maxPageSize", "must be between 1 and 10000; got %d", sc.MaxPageSize)
	}
	if b := sc.Bulk; b.MaxOperations < 1 || b.MaxOperations > 100000 {
		v.add("scim.bulk.maxOperations", "must be between 1 and 100000; got %d", b.MaxOperations)
	}
	if b := sc.Bulk; b.MaxPayloadSize < 1024 || b.MaxPayloadSize > 1<<30 {
		v.add("scim.bulk.maxPayloadSize", "must be between 1024 and 1073741824 bytes; got %d", b.MaxPayloadSize)
	}
}

func (v *validator) store() {
	st := v.c.Store
	if !v.c.SCIM.Enabled {
		return
	}
	switch st.Driver {
	case "sqlite":
		if st.DSN == "" {
			v.add("store.dsn", "required for the sqlite driver: the database file path")
		}
		if st.DSNFile != "" {
			v.add("store.dsnFile", "only for the postgres driver; sqlite takes a file path in store.dsn")
		}
	case "postgres":
		if (st.DSN == "") == (st.DSNFile == "") {
			v.add("store.dsn", "set exactly one of store.dsn and store.dsnFile for the postgres driver")
		}
		if dsnHasPassword(st.DSN) {
			v.add("store.dsn", "must not contain a password; put the whole DSN in a file and name it in store.dsnFile")
		}
	default:
		v.add("store.driver", "must be sqlite or postgres; got %q", st.Driver)
	}
	if st.MaxStaleness < time.Second {
		v.add("store.maxStaleness", "must be at least 1s; got %s", st.MaxStaleness)
	}
}

// dsnHasPassword spots a password in a URL-form or keyword-form PostgreSQL DSN.
func dsnHasPassword(dsn string) bool {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return true
		}
	}
	return strings.Contains(strings.ToLower(dsn), "password=")
}

// validPathPrefix reports whether p is a plain path prefix: "/seg/seg",
// each segment of unreserved characters and not a dot-segment, so that it
// reads the same escaped or not.
func validPathPrefix(p string) bool {
	if len(p) < 2 || p[0] != '/' || p[len(p)-1] == '/' {
		return false
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0) {
				return false
			}
		}
	}
	return true
}

func (v *validator) upstreamTLS() {
	t := v.c.UpstreamTLS
	set := t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify
	if set && v.c.UpstreamURL != nil && v.c.UpstreamURL.Scheme != "https" {
		v.add("upstreamTLS", "applies to an https upstream only; upstream is %s", v.c.UpstreamURL.Scheme)
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.add("upstreamTLS.certFile", "certFile and keyFile go together (a client certificate and its key)")
	}
	if t.InsecureSkipVerify && t.CAFile != "" {
		v.add("upstreamTLS.insecureSkipVerify", "with caFile set, leave insecureSkipVerify off: the CA is what verifies the upstream")
	}
	if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
		v.add("upstreamTLS.minVersion", "must be \"1.2\" or \"1.3\"; got %q", t.MinVersion)
	}
	if t.ServerName != "" && (strings.ContainsAny(t.ServerName, "/:@ ") || strings.HasPrefix(t.ServerName, ".")) {
		v.add("upstreamTLS.serverName", "must be a host name such as app.internal; got %q", t.ServerName)
	}
}
