package web

import (
	"encoding/binary"
	"strings"
)

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

// IsToken reports whether s is an RFC 9110 token (a method or a header
// name): not empty, tchar only.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tchar[s[i]] {
			return false
		}
	}
	return true
}

// PlainValue reports whether a header value holds no control character
// but tab, and no DEL (what net/http's transport refuses to send).
// Eight bytes at a time: a word with no byte below 0x20 and none equal to
// 0x7f is plain (the classic has-less and has-zero tests); one that might
// not be is checked byte by byte.
func PlainValue(v string) bool {
	i := 0
	for ; i+8 <= len(v); i += 8 {
		x := binary.LittleEndian.Uint64([]byte(v[i : i+8]))
		y := x ^ 0x7f7f7f7f7f7f7f7f
		if (x-0x2020202020202020)&^x&0x8080808080808080 != 0 ||
			(y-0x0101010101010101)&^y&0x8080808080808080 != 0 {
			break
		}
	}
	for ; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

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
