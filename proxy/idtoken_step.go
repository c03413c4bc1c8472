package proxy

import (
	"crypto/ecdsa"
	"errors"
	"net/http"
	"net/textproto"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/web"
)

// tokenHeaderOf is the identity token's header name, or "" when it is off.
func tokenHeaderOf(c *config.Config) string {
	if !c.IdentityToken.Enabled {
		return ""
	}
	return textproto.CanonicalMIMEHeaderKey(c.IdentityToken.Header)
}

func (p *Proxy) setupIdentityToken(keys []*ecdsa.PrivateKey) error {
	it := p.cfg.IdentityToken
	if !it.Enabled {
		return nil
	}
	if len(keys) == 0 {
		return errors.New("proxy: identityToken is configured but no IdentityKeys were given")
	}
	s, err := newTokenSigner(keys, p.cfg.Public.String(), it.Lifetime)
	if err != nil {
		return err
	}
	s.orgs = p.cfg.HasOrganizations()
	p.signer, p.tokenHeader, p.defaultAud = s, tokenHeaderOf(p.cfg), p.cfg.TokenAudience("")
	return nil
}

// JWKS serves the identity token's public keys (for the admin listener);
// nil when identityToken is off.
func (p *Proxy) JWKS() http.Handler {
	if p.signer == nil {
		return nil
	}
	return http.HandlerFunc(p.signer.serveJWKS)
}

// identityToken signs who the request is for, after every step that could
// refuse them: a deactivated or revoked user never gets a token.
// In forward-auth only a trusted caller gets one, so that nobody can fetch
// a signed token and replay it around the proxy.
func (p *Proxy) identityToken(x *exchange) bool {
	if x.who == nil || x.fa != nil && !x.fa.trusted {
		return true
	}
	aud := x.policy.Audience
	if aud == "" {
		aud = p.defaultAud
	}
	tok, err := p.signer.token(x.session, x.who, x.scimID, aud, x.now)
	if err != nil {
		p.log.Error("identity token", zap.String("request_id", web.RequestID(x.r.Context())), zap.Error(err))
		p.refuse(x, http.StatusInternalServerError, "Something went wrong", "The request could not be completed.")
		return false
	}
	x.token[0] = tok
	return true
}
