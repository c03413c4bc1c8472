package samlsp

import (
	"fmt"
	"strings"

	"github.com/crewjam/saml"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
)

// Limits on what one assertion may carry into a session. A validly signed
// assertion over them is refused with a sign-in failure page (403) and a
// login_failed reason, never a 500. They hold whatever scim.groupsSource
// says: the groups also feed drift detection at login.
const (
	// MaxGroups is the most distinct group values one assertion may carry.
	MaxGroups = 1000
	// MaxValueBytes is the longest user, email, name or group value (bytes).
	MaxValueBytes = 1024
)

// principalFrom maps the assertion to a Principal per saml.attributes: an
// attribute matches by Name, or failing that by FriendlyName; User falls
// back to the NameID; Groups takes every distinct value, the others the
// first. A value over MaxValueBytes, or more than MaxGroups groups, is a
// refusal: the reason code and its private cause.
func principalFrom(a *saml.Assertion, m config.Attributes) (identity.Principal, string, error) {
	var p identity.Principal
	if m.User != "" {
		p.User = first(attrValues(a, m.User))
	}
	if p.User == "" && a.Subject != nil && a.Subject.NameID != nil {
		p.User = strings.TrimSpace(a.Subject.NameID.Value)
	}
	if m.Email != "" {
		p.Email = first(attrValues(a, m.Email))
	}
	if m.Name != "" {
		p.Name = first(attrValues(a, m.Name))
	}
	for _, f := range []struct{ field, v string }{
		{identity.FieldUser, p.User}, {identity.FieldEmail, p.Email}, {identity.FieldName, p.Name},
	} {
		if len(f.v) > MaxValueBytes {
			return p, reasonAttributeTooLarge, fmt.Errorf("%s value is %d bytes, over %d", f.field, len(f.v), MaxValueBytes)
		}
	}
	if m.Groups == "" {
		return p, "", nil
	}
	seen := map[string]struct{}{}
	for _, g := range attrValues(a, m.Groups) {
		if _, dup := seen[g]; dup {
			continue
		}
		if len(g) > MaxValueBytes {
			return p, reasonAttributeTooLarge, fmt.Errorf("a group value is %d bytes, over %d", len(g), MaxValueBytes)
		}
		if len(seen) == MaxGroups {
			return p, reasonTooManyGroups, fmt.Errorf("more than %d groups", MaxGroups)
		}
		seen[g] = struct{}{}
		p.Groups = append(p.Groups, g)
	}
	return p, "", nil
}

func attrValues(a *saml.Assertion, name string) []string {
	var byName, byFriendly []string
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			switch name {
			case at.Name:
				byName = appendValues(byName, at)
			case at.FriendlyName:
				byFriendly = appendValues(byFriendly, at)
			}
		}
	}
	if len(byName) > 0 {
		return byName
	}
	return byFriendly
}

func appendValues(dst []string, at saml.Attribute) []string {
	for _, v := range at.Values {
		if v.Nil {
			continue
		}
		s := v.Value
		if s == "" && v.NameID != nil {
			s = v.NameID.Value
		}
		if s = strings.TrimSpace(s); s != "" {
			dst = append(dst, s)
		}
	}
	return dst
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// emailOf is the address the domain rule judges: the email attribute, or
// the user when it is an address (a NameID in emailAddress format).
func emailOf(p identity.Principal) string {
	if p.Email != "" {
		return p.Email
	}
	if strings.Contains(p.User, "@") {
		return p.User
	}
	return ""
}
