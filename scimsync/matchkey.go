package scimsync

import "github.com/portcullis-sso/portcullis/internal/identity"

// matchKeyOf is u's match key under scim.match.scimAttribute attr
// (userName, email or externalId): identity.MatchKey of that attribute, ""
// if u has none.
func matchKeyOf(attr string, u *User) string {
	switch attr {
	case "email":
		return identity.MatchKey(u.Email)
	case "externalId":
		return identity.MatchKey(u.ExternalID)
	}
	return identity.MatchKey(u.UserName)
}
