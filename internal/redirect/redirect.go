// Package redirect validates post-login redirect targets: the rd query
// parameter and the SAML RelayState. Only a same-origin absolute path is
// accepted; anything else falls back to "/".
package redirect

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLen is the longest target Safe accepts, in bytes.
const MaxLen = 2048

// maxDecodes is how many rounds of percent-decoding Safe looks through. A
// target that still changes after this many rounds is refused.
const maxDecodes = 3

// Safe reports whether target may be used as a post-login redirect. It
// returns (target, true) when it is safe and ("/", false) otherwise.
//
// The target itself and each of its percent-decoded forms (decoded up to
// three times with url.PathUnescape; a target whose decoding fails, or that
// still changes after three rounds, is refused) must all satisfy:
//
//   - 1 to MaxLen bytes of valid UTF-8;
//   - start with exactly one "/": never "//" or "/\";
//   - no backslash, ASCII control character (NUL, tab, CR, LF, DEL, …),
//     C1 control, whitespace of any kind (a space, "%20" and U+00A0
//     included), Unicode format character (zero-width space, bidi
//     controls, BOM) or U+FFFD;
//   - in the path part (before the first "?" or "#"): no "//" and no "." or
//     ".." segment (something that removes dot-segments could otherwise
//     turn "/.//evil.com" into "//evil.com"), and beyond printable ASCII
//     only letters, combining marks and decimal digits — so look-alikes
//     such as U+FF0F "／", U+FF3C "＼" and U+3002 "。" are refused;
//   - url.Parse succeeds with no scheme, host, user info or opaque part.
//
// A query string and fragment on a safe path are kept as they are. The cost
// of being strict is that a few legitimate targets ("/My%20Files",
// "/100%", "/a//b") land on "/" after login instead; nothing else breaks.
func Safe(target string) (string, bool) {
	if !safe(target) {
		return "/", false
	}
	return target, true
}

func safe(s string) bool {
	if len(s) == 0 || len(s) > MaxLen {
		return false
	}
	for i := 0; ; i++ {
		if !safeForm(s) {
			return false
		}
		d, err := url.PathUnescape(s)
		if err != nil {
			return false
		}
		if d == s {
			return true
		}
		if i == maxDecodes {
			return false // still changing: more layers than anyone legitimate uses
		}
		s = d
	}
}

// safeForm applies every check to one form (raw or decoded) of a target.
func safeForm(f string) bool {
	if len(f) == 0 || f[0] != '/' {
		return false
	}
	if len(f) > 1 && (f[1] == '/' || f[1] == '\\') {
		return false
	}
	if !utf8.ValidString(f) {
		return false
	}
	pathEnd := strings.IndexAny(f, "?#")
	if pathEnd < 0 {
		pathEnd = len(f)
	}
	for i, r := range f {
		if r == '\\' || r <= ' ' || r == 0x7f {
			return false // backslash, space or ASCII control
		}
		if r < utf8.RuneSelf {
			continue
		}
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) {
			return false
		}
		if i < pathEnd && !unicode.IsLetter(r) && !unicode.IsMark(r) && !unicode.IsDigit(r) {
			return false // exotic punctuation or symbol in the path part
		}
	}
	p := f[:pathEnd]
	if strings.Contains(p, "//") || hasDotSegment(p) {
		return false
	}
	u, err := url.Parse(f)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	return true
}

// hasDotSegment reports whether the path p has a "." or ".." segment.
func hasDotSegment(p string) bool {
	for p != "" {
		seg := p
		if i := strings.IndexByte(p, '/'); i >= 0 {
			seg, p = p[:i], p[i+1:]
		} else {
			p = ""
		}
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
