package fastpath

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/portcullis-sso/portcullis/internal/web"
)

const (
	maxMethod  = 32  // longer methods go to net/http
	maxHeaders = 100 // more header lines go to net/http
)

// parseRequest reads a request header block (CRLF CRLF included) that
// the fast loop may serve, or returns nil when anything about it is not in
// the plainest form, so that net/http reads it instead. What it accepts,
// net/http reads to the same request: the same method, URL (through
// url.ParseRequestURI), Host (taken out of the header), canonical header
// keys with their values trimmed of spaces and tabs, in order, Close, and
// Cache-Control from Pragma.
func parseRequest(head []byte, prefix, remote string) *http.Request {
	if !strictLines(head) {
		return nil
	}
	s := string(head[:len(head)-2]) // one allocation: every string below is a part of it
	line, rest, _ := strings.Cut(s, "\r\n")
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || proto != "HTTP/1.1" || len(method) > maxMethod ||
		!web.IsToken(method) || !ourTarget(target, prefix) {
		return nil
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil
	}
	n := strings.Count(rest, "\r\n")
	if n > maxHeaders {
		return nil
	}
	h := make(http.Header, min(n, 8)) // a map of one group up to 8
	vals := make([]string, n)         // one backing array for the usual one value per key
	r := &http.Request{
		Method: method, URL: u, Proto: proto, ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: http.NoBody, RemoteAddr: remote, RequestURI: target,
	}
	hosts := 0
	for i := 0; rest != ""; i++ {
		var l string
		l, rest, _ = strings.Cut(rest, "\r\n")
		name, v, ok := strings.Cut(l, ":")
		if !ok || !web.IsToken(name) || !web.PlainValue(v) {
			return nil
		}
		key, v := canonicalKey(name), strings.Trim(v, " \t")
		switch key {
		case "Host":
			hosts++
			if !web.PlainHost(v) {
				return nil
			}
			r.Host = v
			continue // net/http takes Host out of the header too
		case "Transfer-Encoding", "Expect", "Upgrade", "Te", "Trailer":
			return nil
		case "Content-Length":
			if v != "0" || h[key] != nil {
				return nil
			}
		case "Connection":
			if !connectionTokens(v, r) {
				return nil
			}
		}
		if old := h[key]; old != nil {
			h[key] = append(old, v)
			continue
		}
		vals[i] = v
		h[key] = vals[i : i+1 : i+1]
	}
	if hosts != 1 {
		return nil
	}
	if p, ok := h["Pragma"]; ok && len(p) > 0 && p[0] == "no-cache" && h["Cache-Control"] == nil {
		h["Cache-Control"] = []string{"no-cache"} // as net/http does (RFC 9111's HTTP/1.0 rule)
	}
	return r
}

// strictLines: every line ends in CRLF, no CR or LF stands alone, and no
// line is folded (begins with a space or tab). Each LF is found with
// IndexByte and checked for the CR before it; as many CRs as LFs then
// means no CR stands alone.
func strictLines(b []byte) bool {
	lf := 0
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			break
		}
		i += j
		if i == 0 || b[i-1] != '\r' || i+1 < len(b) && (b[i+1] == ' ' || b[i+1] == '\t') {
			return false
		}
		lf++
		i++
	}
	return bytes.Count(b, cr) == lf
}

var cr = []byte{'\r'}

// ourTarget: the prefix exactly, or followed by '/' or '?', and only
// printable ASCII without '#'.
func ourTarget(t, prefix string) bool {
	if !strings.HasPrefix(t, prefix) {
		return false
	}
	if len(t) > len(prefix) && t[len(prefix)] != '/' && t[len(prefix)] != '?' {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] >= 0x7f || t[i] == '#' {
			return false
		}
	}
	return true
}

// connectionTokens reads a Connection header: "close" and "keep-alive"
// only (any other token names a hop-by-hop header or an upgrade: net/http's).
func connectionTokens(v string, r *http.Request) bool {
	for tok := range strings.SplitSeq(v, ",") {
		switch strings.ToLower(strings.Trim(tok, " \t")) {
		case "close":
			r.Close = true
		case "keep-alive":
		default:
			return false
		}
	}
	return true
}

// canonicalKey is textproto's canonical key, without an allocation for a
// name already in canonical form.
func canonicalKey(name string) string {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return textproto.CanonicalMIMEHeaderKey(name)
		}
		upper = c == '-'
	}
	return name
}
