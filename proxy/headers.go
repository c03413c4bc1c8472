package proxy

import (
	"net/http"
	"net/textproto"
	"strings"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

// headerPlan is the identity-header part of the config, compiled once: the
// canonical names we set and the normalised names we strip from every
// inbound request.
type headerPlan struct {
	set   []headerField
	strip map[string]struct{} // lowercase, '_' read as '-'
	// stripLen is the length of the longest name in strip: a longer name
	// cannot match, so it is never normalised.
	stripLen int
}

type headerField struct {
	name  string // canonical form, ready for direct map assignment
	field string // identity field
}

// newHeaderPlan compiles the identity headers; also names further headers
// that are ours (the identity token's) and stripped like them, but set
// elsewhere.
func newHeaderPlan(headers map[string]string, also ...string) *headerPlan {
	p := &headerPlan{strip: make(map[string]struct{}, len(headers)+len(also))}
	for name, field := range headers {
		p.set = append(p.set, headerField{name: textproto.CanonicalMIMEHeaderKey(name), field: field})
	}
	for name := range headers {
		also = append(also, name)
	}
	for _, name := range also {
		if name == "" {
			continue
		}
		p.strip[normalizeHeaderName(name)] = struct{}{}
		p.stripLen = max(p.stripLen, len(name))
	}
	// Deterministic order helps tests and logs; the map order is random.
	sortHeaderFields(p.set)
	return p
}

func sortHeaderFields(s []headerField) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].name < s[j-1].name; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// normalizeHeaderName lowercases name and reads '_' as '-', the way several
// upstream stacks (CGI, WSGI, Rack, PHP) merge the two spellings.
func normalizeHeaderName(name string) string {
	return string(appendNormalized(make([]byte, 0, len(name)), name))
}

func appendNormalized(dst []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// isIdentityHeader reports whether name is one of ours in any spelling.
// It runs for every inbound header of every request, so it does not
// allocate: a name longer than all of ours cannot match, and a shorter one
// is normalised into a stack buffer (the map lookup with string(b) does not
// copy).
func (p *headerPlan) isIdentityHeader(name string) bool {
	if len(p.strip) == 0 || len(name) > p.stripLen {
		return false
	}
	var buf [64]byte
	if len(name) > len(buf) {
		_, ok := p.strip[normalizeHeaderName(name)] // a configured name over 64 bytes: rare
		return ok
	}
	_, ok := p.strip[string(appendNormalized(buf[:0], name))]
	return ok
}

// cookieFilter decides which cookies are ours and never reach the upstream.
type cookieFilter struct {
	session  func(name string) bool
	prefixes []string
}

func (f cookieFilter) ours(name string) bool {
	if f.session != nil && f.session(name) {
		return true
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// applyIdentity is the one place that prepares the upstream request headers:
// it deletes every inbound header that spells one of our identity headers,
// removes our cookies from the Cookie header, and sets our identity headers
// from p (nil: anonymous on a public route, so only the stripping happens).
// It is pure over h, so it is table-tested directly. groupsLeftOut reports
// that the groups header had to leave out a name (see groupsHeader).
func applyIdentity(h http.Header, plan *headerPlan, cookies cookieFilter, p *identity.Principal) (groupsLeftOut bool) {
	for name := range h {
		if plan.isIdentityHeader(name) {
			delete(h, name)
		}
	}
	if vs, ok := h["Cookie"]; ok {
		kept := filterCookies(vs, cookies)
		if kept == "" {
			delete(h, "Cookie")
		} else {
			// vs belongs to h (ReverseProxy cloned the inbound header), so
			// the line is replaced in place rather than in a new slice.
			vs[0] = kept
			h["Cookie"] = vs[:1:1]
		}
	}
	if p == nil || len(plan.set) == 0 {
		return false
	}
	// One backing array for every identity header's value, each header
	// getting a one-element window with its capacity capped, so an Add by
	// someone later cannot write into its neighbour.
	vals := make([]string, len(plan.set))
	for i, f := range plan.set {
		var v string
		switch f.field {
		case identity.FieldUser:
			v = sanitizeHeaderValue(p.User)
		case identity.FieldEmail:
			v = sanitizeHeaderValue(p.Email)
		case identity.FieldName:
			v = sanitizeHeaderValue(p.Name)
		case identity.FieldOrganization:
			v = p.Org // a config id: ^[a-z0-9][a-z0-9-]*$
		case identity.FieldGroups:
			var leftOut bool
			v, leftOut = groupsHeader(p.Groups)
			groupsLeftOut = groupsLeftOut || leftOut
		}
		if v == "" {
			continue
		}
		vals[i] = v
		h[f.name] = vals[i : i+1 : i+1]
	}
	return groupsLeftOut
}

// groupsHeader joins group names with "," for the groups header, leaving
// out the names a comma split or a trim would change (see
// identity.HeaderSafeGroup): a split cannot be undone by quoting, since
// apps split before they look for quotes. allowGroups still sees every name
// exactly. The result is allocation-free for one group.
func groupsHeader(groups []string) (header string, leftOut bool) {
	kept := 0
	for _, g := range groups {
		if identity.HeaderSafeGroup(g) {
			kept++
		}
	}
	switch {
	case kept == 0:
		return "", len(groups) > 0
	case kept == len(groups) && kept == 1:
		return groups[0], false
	case kept == len(groups):
		return strings.Join(groups, ","), false
	}
	var b strings.Builder
	for _, g := range groups {
		if !identity.HeaderSafeGroup(g) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(g)
	}
	return b.String(), true
}

// sanitizeHeaderValue drops bytes that cannot appear in a header value (CR,
// LF, NUL and other controls) so an IdP attribute can never split headers.
func sanitizeHeaderValue(v string) string {
	clean := true
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if c := v[i]; c >= 0x20 && c != 0x7f || c == '\t' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// filterCookies joins the Cookie header lines, dropping our cookies and
// keeping every other cookie byte for byte, separated by "; ".
func filterCookies(lines []string, f cookieFilter) string {
	if len(lines) == 1 {
		if kept, ok := keptSpan(lines[0], f); ok {
			return kept
		}
	}
	var b strings.Builder
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ";") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			name, _, _ := strings.Cut(part, "=")
			if f.ours(strings.TrimSpace(name)) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(part)
		}
	}
	return b.String()
}

// keptSpan is filterCookies's common case without allocating: one Cookie
// line whose kept cookies are one run, already separated by exactly "; "
// (a browser's own spelling), with ours before or after it. The answer is
// then a substring of the line. ok is false when the line is not like that
// and must be rebuilt.
func keptSpan(line string, f cookieFilter) (kept string, ok bool) {
	start, end := -1, -1 // the kept run, as offsets into line
	closed := false      // one of ours came after the run began
	pos := 0
	for pos <= len(line) {
		next := strings.IndexByte(line[pos:], ';')
		if next < 0 {
			next = len(line) - pos
		}
		raw := line[pos : pos+next]
		part := strings.TrimSpace(raw)
		if part != "" {
			name, _, _ := strings.Cut(part, "=")
			if f.ours(strings.TrimSpace(name)) {
				closed = start >= 0
			} else {
				partStart := pos + strings.Index(raw, part)
				switch {
				case closed:
					return "", false // a kept cookie after one of ours: not one run
				case start < 0:
					start = partStart
				case partStart != end+2 || line[end:partStart] != "; ":
					return "", false // unusual spacing: rebuild with "; "
				}
				end = partStart + len(part)
			}
		}
		pos += next + 1
	}
	if start < 0 {
		return "", true
	}
	return line[start:end], true
}

// dropForeignUpgrade removes from an inbound request every protocol
// upgrade but WebSocket, the one upgrade whose first request the route
// check sees and whose later frames stay on that route. Any other (h2c
// above all) would let the client speak a new protocol straight to the
// upstream once it answers 101, with requests for any path and any
// identity header that nothing checks. RFC 9110 §7.8 lets a server ignore
// Upgrade, and clients that send h2c unprompted (curl --http2, Java's
// HttpClient) carry on with HTTP/1.1, so the request is served, not
// refused: Upgrade, HTTP2-Settings and the Connection tokens naming them go.
func dropForeignUpgrade(h http.Header) {
	up, ok := h["Upgrade"]
	if !ok {
		if _, ok := h["Http2-Settings"]; !ok {
			return
		}
	}
	if len(up) == 1 && strings.EqualFold(strings.TrimSpace(up[0]), "websocket") {
		return
	}
	delete(h, "Upgrade")
	delete(h, "Http2-Settings")
	conn := h["Connection"]
	if len(conn) == 0 {
		return
	}
	var kept []string
	for _, line := range conn {
		for tok := range strings.SplitSeq(line, ",") {
			tok = strings.TrimSpace(tok)
			if tok != "" && !strings.EqualFold(tok, "upgrade") && !strings.EqualFold(tok, "http2-settings") {
				kept = append(kept, tok)
			}
		}
	}
	if len(kept) == 0 {
		delete(h, "Connection")
		return
	}
	h["Connection"] = []string{strings.Join(kept, ", ")}
}

// setIdentityAnswer sets every configured identity header on a forward-auth
// answer from p (nil: nobody), through applyIdentity, and the ones it left
// out to "": an ingress that copies them then always replaces what a
// client sent.
func setIdentityAnswer(h http.Header, plan *headerPlan, p *identity.Principal) {
	applyIdentity(h, plan, cookieFilter{}, p)
	for _, f := range plan.set {
		if _, ok := h[f.name]; !ok {
			h[f.name] = emptyValue[:1:1]
		}
	}
}

// Shared header values, never written to: the capacity is capped where they
// are used, so an Add by anyone makes a copy.
var (
	emptyValue = []string{""}
	noStore    = []string{"no-store"}
)
