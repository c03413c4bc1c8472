package proxy

// This file holds the Go verification snippet of README.md ("Forward-auth
// and the identity token") as real code: TestREADME_GoSnippetIsTested keeps
// the two the same, and the identity-token tests run every token through it.
// It uses go-jose, a JWT library the product itself does not sign with.

// --- README snippet begins
import (
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Identity is what the app reads from X-Portcullis-Identity.
type Identity struct {
	jwt.Claims
	Email  string   `json:"email"`
	Name   string   `json:"name"`
	Groups []string `json:"groups"`
	SCIMID string   `json:"scim_id"`
}

// verifyIdentity accepts a token only if it is ES256, signed by a key of
// keys (the JWKS from <publicURL>/.well-known/portcullis/jwks.json, cached
// and refreshed when a kid is unknown), issued by Portcullis for this app
// and current.
func verifyIdentity(raw string, keys *jose.JSONWebKeySet, issuer, audience string) (*Identity, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, err
	}
	var id Identity
	if err := tok.Claims(keys, &id); err != nil {
		return nil, err // not signed by any key of the set
	}
	err = id.Claims.ValidateWithLeeway(jwt.Expected{
		Issuer:      issuer,                 // your publicURL
		AnyAudience: jwt.Audience{audience}, // your app's audience
		Time:        time.Now(),
	}, 30*time.Second)
	if err != nil {
		return nil, err
	}
	return &id, nil
}

// --- README snippet ends
