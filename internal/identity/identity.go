// Package identity holds the small value type every other package shares:
// the signed-in person as Portcullis knows them.
package identity

import "time"

// Principal is a signed-in person. The SAML layer fills it from an assertion;
// the directory may later override Groups; the proxy turns it into headers.
type Principal struct {
	User   string   // stable user identifier (a SAML attribute or the NameID)
	Email  string   // primary email, may be empty
	Name   string   // display name, may be empty
	Groups []string // group names, may be empty
	// Org is the organization whose IdP signed the person in
	// (DefaultOrg for the single-IdP configuration). Sessions, directory
	// lookups and route policies are scoped by it.
	Org string
}

// OrgKey qualifies key (a match key) with its organization, for maps and
// tables that hold several organizations' keys: the default organization's
// keys stay as they are; another's are "{org}\x1f{key}" (U+001F, which no
// SCIM value may hold).
func OrgKey(org, key string) string {
	if org == DefaultOrg || org == "" {
		return key
	}
	return org + "\x1f" + key
}

// DefaultOrg is the organization id of the top-level IdP and directory:
// the single-IdP configuration, and every organization-less session.
const DefaultOrg = "default"

// OrgOrDefault is org, or DefaultOrg for "" (a principal or row from before
// organizations existed, or built in code).
func OrgOrDefault(org string) string {
	if org == "" {
		return DefaultOrg
	}
	return org
}

// Field names as used in config (headers, scim.match.identityField).
const (
	FieldUser   = "user"
	FieldEmail  = "email"
	FieldName   = "name"
	FieldGroups = "groups"
	// FieldOrganization is the organization id (Principal.Org).
	FieldOrganization = "organization"
)

// Fields lists every valid identity field name.
var Fields = []string{FieldUser, FieldEmail, FieldName, FieldGroups, FieldOrganization}

// ValidField reports whether f names an identity field.
func ValidField(f string) bool {
	switch f {
	case FieldUser, FieldEmail, FieldName, FieldGroups, FieldOrganization:
		return true
	}
	return false
}

// State is what the directory says about a person.
type State uint8

const (
	// StateUnknown: the directory has no such user (never provisioned, or
	// renamed to another key: then ValidAfter voids the sessions from
	// before the rename).
	StateUnknown State = iota
	// StateActive: provisioned and active.
	StateActive
	// StateInactive: provisioned but deactivated.
	StateInactive
	// StateDeleted: the directory deleted this user (within
	// session.lifetime).
	StateDeleted
	// StateAmbiguous: more than one directory user has this match key
	// (data from before keys were kept unique); the gate denies it.
	StateAmbiguous
)

func (s State) String() string {
	switch s {
	case StateActive:
		return "active"
	case StateInactive:
		return "inactive"
	case StateDeleted:
		return "deleted"
	case StateAmbiguous:
		return "ambiguous"
	}
	return "unknown"
}

// Standing is the directory's answer for one signed-in person, looked up on
// every request.
type Standing struct {
	State State
	// ValidAfter voids every session issued before it (creation,
	// deactivation, reactivation, deletion, a change of hands of the
	// match key).
	ValidAfter time.Time
	// Groups are the directory's group names for the user. Shared, read-only.
	Groups []string
	// ID is the directory's own id for the user (the SCIM id); "" when the
	// directory has none or does not say. It goes into the identity token.
	ID string
}

// MatchKey is the match key of an identity value (an email, a user name, an
// externalId): the value with the ASCII letters A–Z folded to a–z and every
// other byte left as it is. It is the one comparison of identities between
// SAML, SCIM and the gate. Unicode case mapping is deliberately not used:
// strings.ToLower turns U+0130 (İ) into "i" and U+212A (the Kelvin sign)
// into "k", so "alİce@example.com" would match alice's directory entry.
// A value without upper-case ASCII letters is returned without allocating.
func MatchKey(v string) string {
	i := 0
	for i < len(v) && (v[i] < 'A' || v[i] > 'Z') {
		i++
	}
	if i == len(v) {
		return v
	}
	b := []byte(v)
	for ; i < len(b); i++ {
		if c := b[i]; c >= 'A' && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}
