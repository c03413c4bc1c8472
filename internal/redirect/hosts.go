package redirect

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Policy is Safe plus absolute targets on a fixed list of other hosts, for
// sign-in to apps behind forward-auth (config allowedRedirectHosts). The
// zero Policy, or one without hosts, is exactly Safe.
type Policy struct {
	hosts     map[string]bool // lowercase host or host:port, matched exactly
	allowHTTP bool            // publicURL is http: http:// targets too
}

// NewPolicy returns a Policy accepting absolute https URLs (and http ones
// when allowHTTP) whose host, or host:port, is exactly one of hosts; names
// compare case-insensitively, and there are no wildcards.
func NewPolicy(hosts []string, allowHTTP bool) *Policy {
	p := &Policy{hosts: make(map[string]bool, len(hosts)), allowHTTP: allowHTTP}
	for _, h := range hosts {
		p.hosts[strings.ToLower(h)] = true
	}
	return p
}

// Safe returns (target, true) for a target that Safe accepts or that is
// "<scheme>://<listed host><path>" where the path, if any, passes every
// rule of Safe (and an empty one becomes "/"); ("/", false) otherwise.
func (p *Policy) Safe(target string) (string, bool) {
	if t, ok := Safe(target); ok || p == nil || len(p.hosts) == 0 {
		return t, ok
	}
	if p.absoluteSafe(target) {
		return target, true
	}
	return "/", false
}

func (p *Policy) absoluteSafe(s string) bool {
	if len(s) > MaxLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '\\' || r == utf8.RuneError ||
			r >= utf8.RuneSelf && (unicode.IsControl(r) || unicode.IsSpace(r) || unicode.Is(unicode.Cf, r)) {
			return false
		}
	}
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok && p.allowHTTP {
		rest, ok = strings.CutPrefix(s, "http://")
	}
	if !ok {
		return false
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	// The authority must be a listed name byte for byte (case aside): no
	// user info, no escapes, no trailing dot, nothing a parser could read
	// as another host.
	if !p.hosts[strings.ToLower(rest[:end])] {
		return false
	}
	path := rest[end:]
	return path == "" || path[0] == '/' && safe(path)
}
