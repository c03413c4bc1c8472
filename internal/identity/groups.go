package identity

import (
	"unicode"
	"unicode/utf8"
)

// HeaderSafeGroup reports whether group name g can travel in a
// comma-separated header without passing for another group. Most apps split
// such a header on commas and trim each piece, so "sales,admins" would read
// as "sales" and "admins", " admins" as "admins", and "admins\x00" (once a
// control character is dropped) as "admins". Unsafe: an empty name, or one
// that holds a comma, a double quote or a control character, or starts or
// ends with white space as trims in Go, Python and JavaScript read it
// (Unicode's, and the BOM).
func HeaderSafeGroup(g string) bool {
	if g == "" {
		return false
	}
	first, _ := utf8.DecodeRuneInString(g)
	last, _ := utf8.DecodeLastRuneInString(g)
	if trimmed(first) || trimmed(last) {
		return false
	}
	for i := 0; i < len(g); i++ {
		if c := g[i]; c < 0x20 || c == 0x7f || c == ',' || c == '"' {
			return false
		}
	}
	return true
}

func trimmed(r rune) bool { return unicode.IsSpace(r) || r == '\ufeff' }
