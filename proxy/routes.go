package proxy

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/portcullis-sso/portcullis/config"
)

// errAmbiguousPath means the request path is refused outright (400): the
// upstream might read it differently from the way we match it.
var errAmbiguousPath = errors.New("ambiguous request path")

// policy is the decision for one request.
type policy struct {
	Public      bool
	AllowGroups []string // nil = any signed-in user; shared, do not modify
	// AllowOrgs: nil = any organization's sessions; shared, do not modify.
	AllowOrgs []string
	Route     string // the matched config path, "" if none (for logs)
	Audience  string // the route's identity-token audience; "" for the default
}

// routeTable is compiled once from config.
//
// Matching rules (decide):
//
//   - A route path ending in "/" matches its subtree and the path without
//     the slash ("/admin/" matches "/admin", "/admin/" and "/admin/x");
//     any other route path matches exactly. Routes are tried in order and
//     the first match wins; a path that matches none needs a login with no
//     group restriction.
//   - Matching uses the decoded path with doubled slashes collapsed, after
//     the refusals listed at checkPath.
//   - Case: the first route that matches case-insensitively decides, so
//     "/ADMIN/x" is restricted like "/admin/x" (the upstream may be
//     case-insensitive, like IIS). Folding is deliberately loose: besides
//     Unicode simple folding, two runes match when their upper or lower
//     cases are equal, so "ı", "İ", "ſ" and the Kelvin sign "K" match the
//     ASCII letters they turn into.
//   - A route grants Public only when it also matches case-sensitively. A
//     case-only match of a public route means "login required, no group
//     restriction"; a case-only match of a restricted route keeps its
//     groups.
//   - After a case-only match, the first later route that matches
//     case-sensitively (the one a case-sensitive upstream would honour) is
//     also consulted and the stricter of the two policies applies; when
//     neither is stricter (two different group lists) the path is refused.
//     With routes that differ only in case (config validation cannot see
//     those) this keeps one spelling from escaping the other's groups.
type routeTable struct {
	routes []route
	// stripParams: upstreamPathParameters is strip-for-matching (see
	// checkPath).
	stripParams bool
}

type route struct {
	path    string   // as configured, for policy.Route
	base    string   // path without the trailing "/" of a subtree route
	lower   string   // strings.ToLower(base), for the case-insensitive pass
	subtree bool     // path ends in "/"
	public  bool     // only if the route restricts no groups
	groups  []string // nil = any signed-in user
	orgs    []string // nil = any organization
	aud     string   // identity-token audience, "" for the default
}

func newRouteTable(routes []config.Route, pathParameters string) *routeTable {
	t := &routeTable{
		routes:      make([]route, 0, len(routes)),
		stripParams: pathParameters == config.PathParametersStripForMatching,
	}
	for _, r := range routes {
		p := collapseSlashes(r.Path)
		c := route{path: r.Path, base: p, aud: r.Audience}
		if strings.HasSuffix(p, "/") {
			c.subtree = true
			c.base = p[:len(p)-1]
		}
		c.lower = strings.ToLower(c.base)
		if len(r.AllowOrganizations) > 0 {
			c.orgs = slices.Clone(r.AllowOrganizations)
		}
		if len(r.AllowGroups) > 0 {
			// public together with allowGroups is a config error; should it
			// get this far, the restriction wins.
			c.groups = slices.Clone(r.AllowGroups)
		} else {
			c.public = r.Public && c.orgs == nil // likewise for allowOrganizations
		}
		t.routes = append(t.routes, c)
	}
	return t
}

// decide returns the policy for a request URL, or errAmbiguousPath when the
// path must be refused outright (400). It matches what the upstream will be
// sent (u.EscapedPath()) and does not allocate for a path without escapes
// or doubled slashes.
func (t *routeTable) decide(u *url.URL) (policy, error) {
	if u.Opaque != "" {
		return policy{}, errAmbiguousPath
	}
	p, err := checkPath(u.EscapedPath(), t.stripParams)
	if err != nil {
		return policy{}, err
	}
	if strings.Contains(p, "//") {
		p = collapseSlashes(p)
	}

	first := -1
	for i := range t.routes {
		if t.routes[i].matchFold(p) {
			first = i
			break
		}
	}
	if first < 0 {
		return policy{}, nil
	}
	r := &t.routes[first]
	if r.match(p) {
		return r.policy(), nil
	}
	// Case-only match: never public, keep the restrictions.
	pol := policy{AllowGroups: r.groups, AllowOrgs: r.orgs, Route: r.path}
	for i := first + 1; i < len(t.routes); i++ {
		s := &t.routes[i]
		if !s.match(p) {
			continue
		}
		switch {
		case s.public || atLeastAsStrict(pol.AllowGroups, s.groups) && atLeastAsStrict(pol.AllowOrgs, s.orgs):
			return pol, nil
		case atLeastAsStrict(s.groups, pol.AllowGroups) && atLeastAsStrict(s.orgs, pol.AllowOrgs):
			return policy{AllowGroups: s.groups, AllowOrgs: s.orgs, Route: s.path}, nil
		default:
			return policy{}, errAmbiguousPath
		}
	}
	return pol, nil
}

func (r *route) policy() policy {
	return policy{Public: r.public, AllowGroups: r.groups, AllowOrgs: r.orgs, Route: r.path, Audience: r.aud}
}

// match reports whether the cleaned path p matches r case-sensitively.
func (r *route) match(p string) bool {
	if !r.subtree {
		return p == r.base
	}
	return strings.HasPrefix(p, r.base) && (len(p) == len(r.base) || p[len(r.base)] == '/')
}

// matchFold reports whether the cleaned path p matches r case-insensitively.
func (r *route) matchFold(p string) bool {
	n, ok := foldPrefix(p, r.lower)
	if !ok {
		return false
	}
	if !r.subtree {
		return n == len(p)
	}
	return n == len(p) || p[n] == '/'
}

// atLeastAsStrict reports whether the group (or organization) restriction
// a admits no one that b refuses (nil admits every signed-in user).
func atLeastAsStrict(a, b []string) bool {
	if b == nil {
		return true
	}
	if a == nil {
		return false
	}
	for _, g := range a {
		if !slices.Contains(b, g) {
			return false
		}
	}
	return true
}

// checkPath validates the escaped path the upstream will receive and
// returns it decoded. It refuses (errAmbiguousPath):
//
//   - a path that is not empty and does not start with "/" ("*", opaque);
//   - invalid percent-encoding;
//   - a raw or percent-encoded "\", ASCII control character (NUL included)
//     or DEL, and a percent-encoded "/", ".", "%", "?", "#" or ";". Encoded
//     "%", "?" and "#" would turn into something else under a second
//     decode;
//   - a raw ";", unless stripParams. Servlet containers (Tomcat, Jetty,
//     JBoss, WebLogic) remove ";…" from every segment before they map the
//     path ("/admin;x=1/" is "/admin/", "/public/..;/admin/" is "/admin/"),
//     while other servers do not, so by default ";" is refused rather than
//     guessed at. With stripParams the path is judged the way a Servlet
//     container reads it: ";…" up to the next "/" is removed from every
//     segment first, and every rule here then applies to what is left (so
//     "/public/..;/admin/" is refused as a dot-segment and
//     "/shop/cart;jsessionid=A" is judged as "/shop/cart"). The upstream is
//     still sent the original bytes;
//   - after decoding: invalid UTF-8 (this covers overlong forms such as
//     "%C0%AF" for "/"), C1 controls, Unicode format characters and
//     non-ASCII whitespace, fullwidth forms of ASCII (U+FF01–U+FF5E) and
//     other look-alikes of "/", "\", ".", ";" and ":";
//   - a segment that ends in "." or " " (so "." and ".." dot-segments, and
//     "admin." or "admin%20", which Windows strips), contains ":$" (NTFS
//     streams: "/admin::$INDEX_ALLOCATION/") or has "~" followed by a digit
//     (8.3 short names: "/ADMINI~1/").
//
// An empty path is "/".
func checkPath(raw string, stripParams bool) (string, error) {
	if raw == "" {
		return "/", nil
	}
	if raw[0] != '/' {
		return "", errAmbiguousPath
	}
	escaped, params, ok := scanEscapedPath(raw, stripParams)
	if !ok {
		return "", errAmbiguousPath
	}
	if params {
		raw = stripPathParams(raw)
	}
	p := raw
	if escaped {
		d, err := url.PathUnescape(raw)
		if err != nil {
			return "", errAmbiguousPath
		}
		p = d
		for i := 0; i < len(p); {
			if p[i] < utf8.RuneSelf {
				i++
				continue
			}
			r, n := utf8.DecodeRuneInString(p[i:])
			if r == utf8.RuneError || lookAlike(r) {
				return "", errAmbiguousPath
			}
			i += n
		}
	} else {
		for i := 0; i < len(p); i++ {
			if p[i] >= utf8.RuneSelf {
				// EscapedPath never returns raw non-ASCII; be safe anyway.
				return "", errAmbiguousPath
			}
		}
	}
	if badSegment(p) {
		return "", errAmbiguousPath
	}
	return p, nil
}

// scanEscapedPath checks raw byte by byte (see checkPath): escapes well
// formed and not of a refused character, no raw "\\" or control, a raw ";"
// only with stripParams. It reports whether raw has escapes and parameters.
func scanEscapedPath(raw string, stripParams bool) (escaped, params, ok bool) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' {
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return false, false, false
			}
			c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
			switch c {
			case '/', '.', '%', '?', '#', ';':
				return false, false, false
			}
			i += 2
			escaped = true
		} else if c == ';' {
			if !stripParams {
				return false, false, false
			}
			params = true
		}
		if c == '\\' || c < 0x20 || c == 0x7f {
			return false, false, false
		}
	}
	return escaped, params, true
}

// stripPathParams removes ";…" up to the next "/" from every segment, as a
// Servlet container does before it maps a path.
func stripPathParams(raw string) string {
	var b strings.Builder
	b.Grow(len(raw))
	for len(raw) > 0 {
		i := strings.IndexByte(raw, ';')
		if i < 0 {
			b.WriteString(raw)
			break
		}
		b.WriteString(raw[:i])
		raw = raw[i:]
		if j := strings.IndexByte(raw, '/'); j >= 0 {
			raw = raw[j:]
		} else {
			raw = ""
		}
	}
	return b.String()
}

// badSegment reports whether any segment of p is one a server might
// rewrite: see checkPath.
func badSegment(p string) bool {
	for len(p) > 0 {
		var seg string
		if i := strings.IndexByte(p, '/'); i >= 0 {
			seg, p = p[:i], p[i+1:]
		} else {
			seg, p = p, ""
		}
		if seg == "" {
			continue
		}
		if last := seg[len(seg)-1]; last == '.' || last == ' ' {
			return true
		}
		if strings.Contains(seg, ":$") {
			return true
		}
		for i := strings.IndexByte(seg, '~'); i >= 0 && i+1 < len(seg); {
			if c := seg[i+1]; c >= '0' && c <= '9' {
				return true
			}
			j := strings.IndexByte(seg[i+1:], '~')
			if j < 0 {
				break
			}
			i += 1 + j
		}
	}
	return false
}

// lookAlike reports whether the non-ASCII rune r is refused in a path: a
// control, format or space character, a fullwidth form of ASCII, or a
// character that some normalisation (NFKC, Windows best-fit mapping) turns
// into a path delimiter.
func lookAlike(r rune) bool {
	if r >= 0xFF01 && r <= 0xFF5E { // fullwidth ASCII
		return true
	}
	switch r {
	case 0x2024, 0x2025, 0x2026, // one/two dot leader, ellipsis
		0x2044, 0x2215, 0x29F8, // fraction slash, division slash, big solidus
		0x2216, 0x29F5, 0x29F9, 0xFE68, // set minus, reverse solidus operator, big reverse solidus, small reverse solidus
		0x3002, 0xFF61, 0xFE52, // ideographic and halfwidth full stop, small full stop
		0x037E, 0xFE54, 0xFE55, 0xFE13, 0xFE14, // Greek question mark, small ; and :, vertical : and ;
		0x2236, 0xA789, 0x02D0, 0x0589, // ratio, modifier colons, Armenian full stop
		0xFFFD: // replacement character
		return true
	}
	return unicode.IsControl(r) || unicode.IsSpace(r) || unicode.Is(unicode.Cf, r)
}

// collapseSlashes replaces each run of "/" in p with one.
func collapseSlashes(p string) string {
	if !strings.Contains(p, "//") {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// foldPrefix reports whether s begins with prefix under loose case folding
// (see routeTable) and returns the length in bytes of the matching part of
// s. It does not allocate.
func foldPrefix(s, prefix string) (int, bool) {
	i, j := 0, 0
	for j < len(prefix) {
		if i >= len(s) {
			return 0, false
		}
		a, b := s[i], prefix[j]
		if a < utf8.RuneSelf && b < utf8.RuneSelf {
			if lowerASCII(a) != lowerASCII(b) {
				return 0, false
			}
			i++
			j++
			continue
		}
		ra, na := utf8.DecodeRuneInString(s[i:])
		rb, nb := utf8.DecodeRuneInString(prefix[j:])
		if !equalFoldRune(ra, rb) {
			return 0, false
		}
		i += na
		j += nb
	}
	return i, true
}

func equalFoldRune(a, b rune) bool {
	if a == b {
		return true
	}
	if unicode.ToLower(a) == unicode.ToLower(b) || unicode.ToUpper(a) == unicode.ToUpper(b) {
		return true
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
