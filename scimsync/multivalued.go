package scimsync

import (
	"encoding/json"
	"reflect"
	"strings"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

// RFC 7643 §2.4 for multi-valued attributes (emails, phoneNumbers, ims,
// photos, addresses, entitlements, roles, x509Certificates, and any other
// list of objects a client sends): "primary" true on at most one value,
// and a (type, value) pair stored once.

// normaliseMultiValued applies the rule to every multi-valued attribute of
// a representation (from POST, PUT or a PATCH's result), in place: it
// turns Entra's "True"/"false" primary strings into booleans, drops values
// whose type and value repeat an earlier one (its primary mark moving to
// the one kept), and fails with 400 invalidValue when more than one value
// is still primary.
func normaliseMultiValued(m map[string]any) error {
	for k, v := range m {
		list, ok := v.([]any)
		if !ok {
			continue
		}
		lname := strings.ToLower(k)
		list = dropRepeats(list, lname)
		m[k] = list
		if n := countPrimary(list); n > 1 {
			return badRequest("invalidValue", "%s has %d values marked primary; at most one may be (RFC 7643 §2.4)", k, n)
		}
	}
	return nil
}

// countPrimary counts the values marked primary, turning string marks
// into booleans.
func countPrimary(list []any) int {
	n := 0
	for _, e := range list {
		if isPrimary(e) {
			n++
		}
	}
	return n
}

// isPrimary reports whether e is an object marked primary, turning a
// string mark into a boolean.
func isPrimary(e any) bool {
	obj, ok := e.(map[string]any)
	if !ok {
		return false
	}
	v, key, ok := lookupKey(obj, "primary")
	if !ok {
		return false
	}
	b, ok := boolValue(v)
	if ok {
		obj[key] = b
	}
	return ok && b
}

// setPrimary marks or unmarks an element.
func setPrimary(e map[string]any, b bool) {
	if _, key, ok := lookupKey(e, "primary"); ok {
		e[key] = b
		return
	}
	e["primary"] = b
}

// dropRepeats keeps the first of the values with the same identity
// (valueIdentity); a dropped one's primary mark moves to the one kept.
func dropRepeats(list []any, lname string) []any {
	if len(list) < 2 {
		return list
	}
	seen := make(map[string]int, len(list))
	out := list[:0:0]
	for _, e := range list {
		id := valueIdentity(e, lname)
		if i, dup := seen[id]; dup {
			if kept, ok := out[i].(map[string]any); ok && isPrimary(e) {
				setPrimary(kept, true)
			}
			continue
		}
		seen[id] = len(out)
		out = append(out, e)
	}
	return out
}

// valueIdentity is what makes two values of the attribute lname the same:
// the type (ignoring case) and the value, compared as the attribute's
// filters compare it (emails by match key, resource IDs and certificates
// exactly, other strings ignoring case). A value without a "value" (an
// address) is itself.
func valueIdentity(e any, lname string) string {
	obj, ok := e.(map[string]any)
	if !ok {
		return "=" + canonicalJSON(e)
	}
	v, _, hasValue := lookupKey(obj, "value")
	if !hasValue {
		return "=" + canonicalJSON(e)
	}
	typ, _, _ := lookupKey(obj, "type")
	t, _ := typ.(string)
	s, isStr := v.(string)
	if !isStr {
		return strings.ToLower(t) + "\x00" + canonicalJSON(v)
	}
	switch {
	case lname == "x509certificates":
	case filterFold(lname, "value") == foldMatchKey:
		s = identity.MatchKey(s)
	case filterFold(lname, "value") == foldCase:
		s = strings.ToLower(s)
	}
	return strings.ToLower(t) + "\x00\"" + s
}

func canonicalJSON(v any) string {
	b, _ := json.Marshal(v) // map keys sorted; a decoded value always encodes
	return string(b)
}

// The PATCH side (RFC 7644 §3.5.2): an operation that marks a value primary
// unmarks the values that were primary before it.

// primaries are the elements marked primary of each multi-valued
// attribute of a resource, by identity.
type primaries map[string][]map[string]any

// primariesOf collects them; members and groups have none and may be long.
func primariesOf(res map[string]any) primaries {
	var p primaries
	for k, v := range res {
		list, ok := v.([]any)
		lname := strings.ToLower(k)
		if !ok || lname == "members" || lname == "groups" {
			continue
		}
		for _, e := range list {
			if isPrimary(e) {
				if p == nil {
					p = primaries{}
				}
				p[lname] = append(p[lname], e.(map[string]any))
			}
		}
	}
	return p
}

// clearOld unmarks, in each attribute where the operation marked a value
// primary, the values that were primary before it (before).
func (before primaries) clearOld(after primaries) {
	for attr, now := range after {
		old := before[attr]
		marked := false
		for _, e := range now {
			if !containsElem(old, e) {
				marked = true
			}
		}
		if !marked {
			continue
		}
		for _, e := range now {
			if containsElem(old, e) {
				setPrimary(e, false)
			}
		}
	}
}

// keepFirst unmarks all but the first primary value of each attribute: a
// resource stored before the rule may have several.
func (p primaries) keepFirst() {
	for _, list := range p {
		for _, e := range list[1:] {
			setPrimary(e, false)
		}
	}
}

func containsElem(list []map[string]any, e map[string]any) bool {
	pe := reflect.ValueOf(e).UnsafePointer()
	for _, x := range list {
		if reflect.ValueOf(x).UnsafePointer() == pe {
			return true
		}
	}
	return false
}
