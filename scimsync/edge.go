package scimsync

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// What the protocol edge refuses or drops before a value reaches a store,
// so that both stores behave alike: U+0000 anywhere (PostgreSQL text cannot
// hold it, SQLite can; a SCIM value never needs it) and the other C0
// control characters but tab, line feed and carriage return (the store
// separates an organization's id from its keys with U+001F: see
// store.OrgKeySep), and the write-only attributes, which are accepted and
// forgotten.

// checkNoNUL returns a 400 invalidValue naming the first attribute, by its
// path in the body, whose name or string value holds U+0000 or another
// refused control character.
func checkNoNUL(v any) error {
	if at, ok := findNUL(v, ""); ok {
		if at == "" {
			at = "the body"
		}
		return badRequest("invalidValue", "%s: a value must not contain U+0000 or another control character (but tab, line feed and carriage return)", at)
	}
	return nil
}

// refusedControl reports whether s holds a control character the edge
// refuses: C0 but tab, line feed and carriage return.
func refusedControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return true
		}
	}
	return false
}

// findNUL walks a decoded JSON value and reports the path of the first name
// or string holding a refused control character.
func findNUL(v any, path string) (string, bool) {
	switch x := v.(type) {
	case string:
		return path, refusedControl(x)
	case map[string]any:
		for k, e := range x {
			p := joinPath(path, k)
			if refusedControl(k) {
				return p, true
			}
			if at, ok := findNUL(e, p); ok {
				return at, true
			}
		}
	case []any:
		for i, e := range x {
			if at, ok := findNUL(e, path+"["+strconv.Itoa(i)+"]"); ok {
				return at, true
			}
		}
	}
	return "", false
}

func joinPath(path, name string) string {
	name = strconv.QuoteToASCII(clip(name))
	name = name[1 : len(name)-1]
	if path == "" {
		return name
	}
	return path + "." + name
}

// validResourceID reports whether id, from the request path, could name a
// stored resource at all: IDs are ours (UUIDs, or what a past version
// assigned), never holding U+0000 or invalid UTF-8, which PostgreSQL would
// refuse to compare. Any other id is simply not found.
func validResourceID(id string) bool {
	return utf8.ValidString(id) && strings.IndexByte(id, 0) < 0
}
