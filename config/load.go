package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxConfigSize bounds what Parse accepts; a real configuration is a few KiB.
const maxConfigSize = 1 << 20

// Load reads the file at path and parses it with Parse, using the process
// environment for ${VAR} references and the file's directory as the base for
// relative *File paths. A *ValidationError comes back wrapped with the path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c, err := Parse(data, filepath.Dir(abs))
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) && len(ve.Problems) > 1 {
			return nil, fmt.Errorf("config %s: %d problems:\n%w", path, len(ve.Problems), err)
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse is ParseWithEnv with the process environment.
func Parse(data []byte, baseDir string) (*Config, error) {
	return ParseWithEnv(data, baseDir, os.LookupEnv)
}

// ParseWithEnv turns one YAML document into a validated Config:
//
//  1. parse the YAML (exactly one document, a mapping at the top);
//  2. expand ${NAME} references in scalar values and keys, using lookup;
//  3. decode strictly: an unknown key, a duplicate key or a value of the
//     wrong type is an error naming the field path and line;
//  4. apply defaults (see applyDefaults);
//  5. Validate.
//
// Only a YAML syntax error stops early; the problems of steps 2–5 are
// reported together.
//
// Expansion works on the parsed YAML, not on the raw text, so comments are
// never expanded and a variable's value can neither break the YAML nor add
// keys: it always stays inside the one scalar that referenced it (a list or
// mapping cannot come from a variable). A plain (unquoted) scalar is typed
// after expansion, so `maxHeaderBytes: ${MAX}` decodes as an integer. Only
// ${NAME} is expanded, NAME matching [A-Za-z_][A-Za-z0-9_]*; "$$" and a "$"
// not followed by "{" are left exactly as written (so "$${X}" stays
// "$${X}"); "${" not forming a valid reference, such as "${X:-default}", is
// an error. A variable that is set but empty expands to "". Every unset
// variable is reported, each with its field path and line.
//
// Every error is a *ValidationError. On error the Config is nil.
func ParseWithEnv(data []byte, baseDir string, lookup func(string) (string, bool)) (*Config, error) {
	var ps problems
	if len(data) > maxConfigSize {
		ps.add("", 0, "config is %d bytes; the limit is %d", len(data), maxConfigSize)
		return nil, ps.err()
	}
	root, ps := parseDocument(data)
	if len(ps) > 0 {
		return nil, ps.err()
	}
	// Each step below reports its problems and nulls out (or drops) what it
	// could not make sense of, so the later steps still run and every
	// problem is reported at once. Validate's findings about a field that
	// already has a problem are left out: they would be about the default
	// standing in for the bad value, not about what the operator wrote.
	expandNode(root, "", lookup, &ps)
	w := newWalker()
	w.walk(root, configType, "")
	ps = append(ps, w.problems...)
	c := &Config{}
	if err := root.Decode(c); err != nil {
		// The walk checks everything Decode checks, so this is a safety
		// net: keep yaml's own words, with its line when given.
		return nil, append(ps, decodeProblems(err)...).err()
	}
	c.lines = w.lines
	c.baseDir = baseDir
	c.applyDefaults(w.explicit)
	var ve *ValidationError
	if err := c.Validate(); errors.As(err, &ve) {
		before := ps
		for _, p := range ve.Problems {
			if !covered(before, w.meant, p.Path) {
				ps = append(ps, p)
			}
		}
	}
	if len(ps) > 0 {
		return nil, ps.err()
	}
	return c, nil
}

// Line returns the line of the key at path ("saml.certFile",
// "routes[1].allowGroups"), or of its nearest enclosing key when the key
// itself is absent, or 0 when nothing on the way is known. It lets later
// checks (such as reading certFile) cite the config line.
func (c *Config) Line(path string) int {
	for path != "" {
		if l, ok := c.lines[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return 0
}

// covered reports whether path is at or under the path of one of ps, or one
// of the extra paths.
func covered(ps problems, extra []string, path string) bool {
	under := func(p string) bool {
		return p != "" && (path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"["))
	}
	for _, p := range ps {
		if under(p.Path) {
			return true
		}
	}
	for _, p := range extra {
		if under(p) {
			return true
		}
	}
	return false
}

// parentPath drops the last ".key" or "[i]" of path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// parseDocument parses data as exactly one YAML document whose top level is a
// mapping and returns that mapping.
func parseDocument(data []byte) (*yaml.Node, problems) {
	var ps problems
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			ps.add("", 0, "config is empty")
		} else {
			ps = append(ps, yamlSyntaxProblem(err))
		}
		return nil, ps
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		ps = append(ps, yamlSyntaxProblem(err))
		return nil, ps
	default:
		ps.add("", extra.Line, "a second YAML document starts here; the config must be exactly one document")
		return nil, ps
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		ps.add("", 0, "config is empty")
		return nil, ps
	}
	root := doc.Content[0]
	if isNull(root) {
		ps.add("", root.Line, "config is empty")
		return nil, ps
	}
	if root.Kind != yaml.MappingNode {
		ps.add("", root.Line, "the top level must be a mapping of keys such as version, listen and saml")
		return nil, ps
	}
	return root, nil
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlSyntaxProblem turns "yaml: line 3: mapping values are not allowed in
// this context" into a Problem at line 3.
func yamlSyntaxProblem(err error) Problem {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return Problem{Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// decodeProblems turns a yaml decode error into Problems.
func decodeProblems(err error) problems {
	var ps problems
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return append(ps, yamlSyntaxProblem(err))
	}
	for _, e := range te.Errors {
		ps = append(ps, yamlSyntaxProblem(errors.New(e)))
	}
	return ps
}

// expandNode expands ${NAME} references in every scalar under n, reporting
// problems with the path built from the mapping keys above. Aliases are not
// followed: their anchor is expanded where it is defined.
func expandNode(n *yaml.Node, path string, lookup func(string) (string, bool), ps *problems) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expandNode(c, path, lookup, ps)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandNode(c, fmt.Sprintf("%s[%d]", path, i), lookup, ps)
		}
	case yaml.MappingNode:
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinKey(path, k.Value)
			if k.Kind == yaml.ScalarNode && !expandScalar(k, p, lookup, ps) {
				continue // drop the pair: its key is unknown
			}
			expandNode(v, p, lookup, ps)
			kept = append(kept, k, v)
		}
		n.Content = kept
	case yaml.ScalarNode:
		if !expandScalar(n, path, lookup, ps) {
			setNull(n)
		}
	}
}

// setNull turns n into a null scalar, which decodes as an absent value.
func setNull(n *yaml.Node) {
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

// expandScalar expands the references in n and reports whether it could.
func expandScalar(n *yaml.Node, path string, lookup func(string) (string, bool), ps *problems) bool {
	if !strings.Contains(n.Value, "${") {
		return true
	}
	out, errs := expand(n.Value, lookup)
	for _, e := range errs {
		line := n.Line + strings.Count(n.Value[:e.offset], "\n")
		if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			line++ // block scalar text starts on the line after the indicator
		}
		ps.add(path, line, "%s", e.msg)
	}
	if len(errs) > 0 {
		return false
	}
	if out == n.Value {
		return true
	}
	n.Value = out
	if n.Style&(yaml.TaggedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		n.Tag = "" // plain scalar: let yaml resolve its type from the expanded text
	}
	return true
}

type expandError struct {
	offset int
	msg    string
}

// expand replaces each ${NAME} in s with lookup(NAME). See ParseWithEnv.
func expand(s string, lookup func(string) (string, bool)) (string, []expandError) {
	var b strings.Builder
	var errs []expandError
	for i := 0; i < len(s); {
		switch {
		case s[i] != '$':
			b.WriteByte(s[i])
			i++
		case strings.HasPrefix(s[i:], "$$"):
			b.WriteString("$$")
			i += 2
		case !strings.HasPrefix(s[i:], "${"):
			b.WriteByte('$')
			i++
		default:
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				errs = append(errs, expandError{i, fmt.Sprintf("unterminated variable reference %q; only ${NAME} is supported", truncate(s[i:], 20))})
				b.WriteString(s[i:])
				i = len(s)
				continue
			}
			ref := s[i : i+3+end]
			name := s[i+2 : i+2+end]
			if !validEnvName(name) {
				errs = append(errs, expandError{i, fmt.Sprintf("malformed variable reference %q; only ${NAME} is supported", truncate(ref, 40))})
				b.WriteString(ref)
			} else if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				errs = append(errs, expandError{i, fmt.Sprintf("environment variable %s is not set", name)})
				b.WriteString(ref)
			}
			i += len(ref)
		}
	}
	return b.String(), errs
}

func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// joinKey appends a mapping key to a field path.
func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// DefaultHeaders are the upstream headers used when the config has no
// headers key at all (an explicit `headers: {}` means none).
func DefaultHeaders() map[string]string {
	return map[string]string{
		"X-Forwarded-User":               "user",
		"X-Forwarded-Email":              "email",
		"X-Forwarded-Groups":             "groups",
		"X-Forwarded-Preferred-Username": "name",
	}
}

// applyDefaults fills unset fields with the Default* values. A string field
// gets its default when empty; a number or duration only when its key is
// absent or null, so an explicit 0 is kept and validated rather than silently
// replaced. Headers get DefaultHeaders only when the headers key is absent or
// null. The entity ID default needs a valid publicURL, so Validate applies it.
func (c *Config) applyDefaults(explicit map[string]bool) {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if !explicit["preserveHost"] {
		c.PreserveHost = true
	}
	if c.UpstreamTLS.MinVersion == "" {
		c.UpstreamTLS.MinVersion = DefaultUpstreamTLSMinVersion
	}
	if c.UpstreamPathParameters == "" {
		c.UpstreamPathParameters = PathParametersReject
	}
	if c.AdminListen == "" {
		c.AdminListen = DefaultAdminListen
	}
	if !explicit["saml.metadataRefresh"] {
		c.SAML.MetadataRefresh = DefaultMetadataRefresh
	}
	if c.SAML.NameIDFormat == "" {
		c.SAML.NameIDFormat = DefaultNameIDFormat
	}
	if !explicit["saml.clockSkew"] {
		c.SAML.ClockSkew = DefaultClockSkew
	}
	if !explicit["saml.loginWindow"] {
		c.SAML.LoginWindow = DefaultLoginWindow
	}
	if c.Session.CookieName == "" && c.Session.CookieDomain != "" {
		// A cookie with a Domain cannot be __Host-; __Secure- still
		// keeps plain-http pages of the domain from setting it.
		c.Session.CookieName = DefaultCookieName
		if strings.HasPrefix(strings.ToLower(c.PublicURL), "https://") {
			c.Session.CookieName = SecureCookiePrefix + DefaultCookieName
			c.Session.LegacyCookieNames = []string{HostCookiePrefix + DefaultCookieName, DefaultCookieName}
		}
	}
	if c.Session.CookieName == "" {
		c.Session.CookieName = DefaultCookieName
		if strings.HasPrefix(strings.ToLower(c.PublicURL), "https://") {
			c.Session.CookieName = HostCookiePrefix + DefaultCookieName
			c.Session.LegacyCookieNames = []string{DefaultCookieName}
		}
	}
	if !explicit["session.lifetime"] {
		c.Session.Lifetime = DefaultSessionLifetime
	}
	if !explicit["headers"] {
		c.Headers = DefaultHeaders()
	}
	s := &c.Server
	if !explicit["server.readHeaderTimeout"] {
		s.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if !explicit["server.idleTimeout"] {
		s.IdleTimeout = DefaultIdleTimeout
	}
	if !explicit["server.maxHeaderBytes"] {
		s.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if !explicit["server.drainTimeout"] {
		s.DrainTimeout = DefaultDrainTimeout
	}
	if !explicit["server.upstreamTimeout"] {
		s.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if !explicit["server.bodyIdleTimeout"] {
		s.BodyIdleTimeout = DefaultBodyIdleTimeout
	}
	if !explicit["server.acsBodyLimit"] {
		s.ACSBodyLimit = DefaultACSBodyLimit
	}
	sc := &c.SCIM
	if sc.BasePath == "" {
		sc.BasePath = DefaultSCIMBasePath
	}
	if sc.Match.IdentityField == "" {
		sc.Match.IdentityField = DefaultMatchIdentity
	}
	if sc.Match.SCIMAttribute == "" {
		sc.Match.SCIMAttribute = DefaultMatchSCIM
	}
	if !explicit["scim.requireProvisioned"] {
		sc.RequireProvisioned = true
	}
	if sc.GroupsSource == "" {
		sc.GroupsSource = DefaultGroupsSource
	}
	if !explicit["scim.maxBodyBytes"] {
		sc.MaxBodyBytes = DefaultSCIMMaxBodyBytes
	}
	if !explicit["scim.maxPageSize"] {
		sc.MaxPageSize = DefaultSCIMMaxPageSize
	}
	if !explicit["scim.bulk.maxOperations"] {
		sc.Bulk.MaxOperations = DefaultSCIMBulkMaxOperations
	}
	if !explicit["scim.bulk.maxPayloadSize"] {
		sc.Bulk.MaxPayloadSize = DefaultSCIMBulkMaxPayloadSize
	}
	st := &c.Store
	if st.Driver == "" {
		st.Driver = DefaultStoreDriver
	}
	if st.Driver == "sqlite" && st.DSN == "" {
		st.DSN = DefaultSQLitePath
	}
	if !explicit["store.maxStaleness"] {
		st.MaxStaleness = DefaultStoreMaxStaleness
	}
	c.identityTokenDefaults(explicit)
	c.eventsDefaults(explicit)
}
