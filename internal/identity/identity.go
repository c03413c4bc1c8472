// Package identity holds the small value type every other package shares:
// the signed-in person as Portcullis knows them.
package identity

// Principal is a signed-in person. The SAML layer fills it from an assertion;
// the directory may later override Groups; the proxy turns it into headers.
type Principal struct {
	User   string   // stable user identifier (a SAML attribute or the NameID)
	Email  string   // primary email, may be empty
	Name   string   // display name, may be empty
	Groups []string // group names, may be empty
}

// Field names as used in config (headers, scim.match.identityField).
const (
	FieldUser   = "user"
	FieldEmail  = "email"
	FieldName   = "name"
	FieldGroups = "groups"
)

// Fields lists every valid identity field name.
var Fields = []string{FieldUser, FieldEmail, FieldName, FieldGroups}

// ValidField reports whether f names an identity field.
func ValidField(f string) bool {
	switch f {
	case FieldUser, FieldEmail, FieldName, FieldGroups:
		return true
	}
	return false
}
