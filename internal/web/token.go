package web

import "strings"

// IsTokenByte reports whether c may appear in an RFC 9110 token (a method
// or a header name).
func IsTokenByte(c byte) bool { return tchar[c] }

var tchar = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
	}
	return
}()

// PlainHost accepts a host or host:port as a Host header carries it, in
// the plainest characters: letters, digits, "-", ".", ":" and the brackets
// of an IPv6 literal.
func PlainHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-.:[]", c) >= 0) {
			return false
		}
	}
	return true
}
