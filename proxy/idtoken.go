package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/session"
)

// The identity token is an ES256 JWT (RFC 7519) that says who a request is
// for, signed with the first configured key and verifiable with the JWKS
// the proxy publishes. It is built with the standard library only: a fixed
// header per key, the claims below, and a raw r||s signature (RFC 7518
// §3.4).

// jwksPath serves the public keys on both listeners.
const jwksPath = "/.well-known/portcullis/jwks.json"

// jwksMaxAge is how long a verifier may cache the key set. Rotation waits
// at least this long between its steps (README: the identity token).
const jwksMaxAge = 5 * time.Minute

// tokenCacheSize bounds the minted-token cache (one entry per session and
// audience in use).
const tokenCacheSize = 10000

// ParseIdentityKeys reads PEM EC P-256 private keys (PKCS#8 "PRIVATE KEY"
// or SEC 1 "EC PRIVATE KEY"), newest first: the first signs, all are
// published.
func ParseIdentityKeys(text []byte) ([]*ecdsa.PrivateKey, error) {
	var keys []*ecdsa.PrivateKey
	for n := 1; ; n++ {
		var b *pem.Block
		b, text = pem.Decode(text)
		if b == nil {
			break
		}
		k, err := parseECKey(b)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", n, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM private key found")
	}
	return keys, nil
}

func parseECKey(b *pem.Block) (*ecdsa.PrivateKey, error) {
	var k any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", b.Type)
	}
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, errors.New("must be an EC P-256 key (ES256)")
	}
	return ek, nil
}

// GenerateIdentityKey returns a new P-256 private key as PKCS#8 PEM, what
// `portcullis keys` writes to identity.keys.
func GenerateIdentityKey() ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// jwk is one public key of the JWKS (RFC 7517, 7518 §6.2).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

var b64 = base64.RawURLEncoding

func publicJWK(k *ecdsa.PrivateKey) jwk {
	raw, _ := k.PublicKey.Bytes() // 0x04 || X || Y, 32 bytes each on P-256
	x, y := b64.EncodeToString(raw[1:33]), b64.EncodeToString(raw[33:65])
	// kid is the RFC 7638 thumbprint: stable, and the same wherever the
	// key is loaded.
	thumb := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	return jwk{Kty: "EC", Crv: "P-256", X: x, Y: y, Kid: b64.EncodeToString(thumb[:]), Use: "sig", Alg: "ES256"}
}

// tokenSigner mints identity tokens and serves the key set.
type tokenSigner struct {
	key      *ecdsa.PrivateKey
	head     string // base64url of the JOSE header of key, with its "."
	issuer   string
	lifetime time.Duration
	refresh  time.Duration // a cached token is replaced this long before it expires
	jwks     []byte
	etag     string
	cache    *tokenCache
	rand     io.Reader
	// orgs: organizations exist, so every token carries the `org` claim
	// (also "default"); without them it has none.
	orgs bool
}

func newTokenSigner(keys []*ecdsa.PrivateKey, issuer string, lifetime time.Duration) (*tokenSigner, error) {
	if len(keys) == 0 {
		return nil, errors.New("proxy: identity token needs at least one key")
	}
	set := struct {
		Keys []jwk `json:"keys"`
	}{}
	for _, k := range keys {
		set.Keys = append(set.Keys, publicJWK(k))
	}
	body, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	head, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": set.Keys[0].Kid, "typ": "JWT"})
	return &tokenSigner{
		key:      keys[0],
		head:     b64.EncodeToString(head) + ".",
		issuer:   issuer,
		lifetime: lifetime,
		refresh:  lifetime / 5,
		jwks:     body,
		etag:     `"` + hex.EncodeToString(sum[:8]) + `"`,
		cache:    newTokenCache(tokenCacheSize),
		rand:     rand.Reader,
	}, nil
}

// tokenClaims is the payload. groups is never null; scim_id is there only
// when the directory knows the user, org only when organizations exist.
type tokenClaims struct {
	Iss    string   `json:"iss"`
	Aud    string   `json:"aud"`
	Sub    string   `json:"sub"`
	SCIMID string   `json:"scim_id,omitempty"`
	Email  string   `json:"email"`
	Name   string   `json:"name"`
	Groups []string `json:"groups"`
	SID    string   `json:"sid"`
	Org    string   `json:"org,omitempty"`
	Iat    int64    `json:"iat"`
	Nbf    int64    `json:"nbf"`
	Exp    int64    `json:"exp"`
	Jti    string   `json:"jti"`
}

// token returns a token for who, in session s, for audience aud, at now:
// the cached one while it was minted for the same person as the directory
// sees them now and is not close to expiry, else a new one.
func (ts *tokenSigner) token(s *session.Session, who *identity.Principal, scimID, aud string, now time.Time) (string, error) {
	k := tokenKey{sid: s.ID, aud: aud}
	if e := ts.cache.get(k); e != nil && now.Before(e.refreshAt) && e.sameAs(who, scimID) {
		return e.token, nil
	}
	tok, exp, err := ts.mint(s.ID, who, scimID, aud, now)
	if err != nil {
		return "", err
	}
	ts.cache.put(k, &tokenEntry{token: tok, refreshAt: exp.Add(-ts.refresh), principal: *who, scimID: scimID})
	return tok, nil
}

func (ts *tokenSigner) mint(sid string, who *identity.Principal, scimID, aud string, now time.Time) (string, time.Time, error) {
	var jti [16]byte
	if _, err := io.ReadFull(ts.rand, jti[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("token id: %w", err)
	}
	groups := who.Groups
	if groups == nil {
		groups = []string{}
	}
	exp := now.Add(ts.lifetime)
	var org string
	if ts.orgs {
		org = orgOf(who)
	}
	payload, err := json.Marshal(tokenClaims{
		Iss: ts.issuer, Aud: aud, Sub: who.User, SCIMID: scimID,
		Email: who.Email, Name: who.Name, Groups: groups, SID: sid, Org: org,
		Iat: now.Unix(), Nbf: now.Unix(), Exp: exp.Unix(), Jti: b64.EncodeToString(jti[:]),
	})
	if err != nil {
		return "", time.Time{}, err
	}
	signed := ts.head + b64.EncodeToString(payload)
	sig, err := signES256(ts.rand, ts.key, signed)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign identity token: %w", err)
	}
	return signed + "." + sig, exp, nil
}

// signES256 returns the base64url JWS signature of signingInput: r and s,
// each as 32 big-endian bytes.
func signES256(rnd io.Reader, k *ecdsa.PrivateKey, signingInput string) (string, error) {
	sum := sha256.Sum256([]byte(signingInput))
	r, s, err := ecdsa.Sign(rnd, k, sum[:])
	if err != nil {
		return "", err
	}
	var raw [64]byte
	r.FillBytes(raw[:32])
	s.FillBytes(raw[32:])
	return b64.EncodeToString(raw[:]), nil
}

// serveJWKS answers the key set with cache headers (and 304 to a matching
// If-None-Match).
func (ts *tokenSigner) serveJWKS(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(jwksMaxAge/time.Second)))
	h.Set("ETag", ts.etag)
	if r.Header.Get("If-None-Match") == ts.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(ts.jwks)
}
