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
}

type headerField struct {
	name  string // canonical form, ready for direct map assignment
	field string // identity field
}

func newHeaderPlan(headers map[string]string) *headerPlan {
	p := &headerPlan{strip: make(map[string]struct{}, len(headers))}
	for name, field := range headers {
		p.set = append(p.set, headerField{name: textproto.CanonicalMIMEHeaderKey(name), field: field})
		p.strip[normalizeHeaderName(name)] = struct{}{}
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
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// isIdentityHeader reports whether name is one of ours in any spelling.
// It avoids allocating for the common case of a header that differs in length.
func (p *headerPlan) isIdentityHeader(name string) bool {
	if len(p.strip) == 0 {
		return false
	}
	_, ok := p.strip[normalizeHeaderName(name)]
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
// It is pure over h, so it is table-tested directly.
func applyIdentity(h http.Header, plan *headerPlan, cookies cookieFilter, p *identity.Principal) {
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
			h["Cookie"] = []string{kept}
		}
	}
	if p == nil {
		return
	}
	for _, f := range plan.set {
		v := identityValue(p, f.field)
		if v == "" {
			continue
		}
		h[f.name] = []string{v}
	}
}

func identityValue(p *identity.Principal, field string) string {
	switch field {
	case identity.FieldUser:
		return sanitizeHeaderValue(p.User)
	case identity.FieldEmail:
		return sanitizeHeaderValue(p.Email)
	case identity.FieldName:
		return sanitizeHeaderValue(p.Name)
	case identity.FieldGroups:
		if len(p.Groups) == 0 {
			return ""
		}
		if len(p.Groups) == 1 {
			return sanitizeHeaderValue(p.Groups[0])
		}
		return sanitizeHeaderValue(strings.Join(p.Groups, ","))
	}
	return ""
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
// keeping every other cookie byte for byte.
func filterCookies(lines []string, f cookieFilter) string {
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
