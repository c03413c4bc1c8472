package proxy

import (
	"crypto/ecdsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/session"
)

const testIssuer = "https://app.example.com"

func newIdentityKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	pemText, err := GenerateIdentityKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ParseIdentityKeys(pemText)
	if err != nil {
		t.Fatal(err)
	}
	return keys[0]
}

// tokenHarness is a proxy with identityToken on and a directory gate.
func tokenHarness(t *testing.T, gate *mapGate, mutate func(*config.Config), keys ...*ecdsa.PrivateKey) *harness {
	t.Helper()
	if len(keys) == 0 {
		keys = []*ecdsa.PrivateKey{newIdentityKey(t)}
	}
	return newHarnessWith(t, newEcho(t).URL, func(c *config.Config) {
		c.IdentityToken = config.IdentityToken{Enabled: true, Header: config.DefaultIdentityTokenHeader, Lifetime: 5 * time.Minute}
		c.SCIM = config.SCIM{Enabled: true, Match: config.Match{IdentityField: "email"}, GroupsSource: "scim", RequireProvisioned: true}
		if mutate != nil {
			mutate(c)
		}
	}, func(o *Options) { o.Gate, o.IdentityKeys = gate, keys })
}

// fetchJWKS reads the key set the way an app would.
func fetchJWKS(t *testing.T, h *harness) *jose.JSONWebKeySet {
	t.Helper()
	resp := h.do("GET", jwksPath, nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("jwks: status %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	return &set
}

func aliceStanding(groups ...string) identity.Standing {
	return identity.Standing{State: identity.StateActive, Groups: groups, ID: "2819c223-7f76-453a-919d-413861904646"}
}

func TestIdentityToken_VerifiesWithTheDocumentedSnippet(t *testing.T) {
	t.Parallel()
	gate := &mapGate{m: map[string]identity.Standing{"alice@example.com": aliceStanding("staff")}}
	h := tokenHarness(t, gate, nil)
	cookies := h.sessionCookies(identity.Principal{User: "alice", Email: "alice@example.com", Name: "Alice"}, time.Now().Add(time.Hour))
	hdr := http.Header{
		"X-Portcullis-Identity": {"forged"},
		"X_portcullis_identity": {"forged"},
		"X-PORTCULLIS_IDENTITY": {"forged"},
	}
	e := decodeEcho(t, h.do("GET", "/app/page", hdr, cookies))
	for name := range e.Header {
		if normalizeHeaderName(name) == "x-portcullis-identity" && name != "X-Portcullis-Identity" {
			t.Errorf("inbound %s reached the upstream", name)
		}
	}
	raw := e.Header.Values("X-Portcullis-Identity")
	if len(raw) != 1 || raw[0] == "forged" {
		t.Fatalf("X-Portcullis-Identity upstream = %q, want one minted token", raw)
	}
	id, err := verifyIdentity(raw[0], fetchJWKS(t, h), testIssuer, testIssuer)
	if err != nil {
		t.Fatalf("documented snippet refused the proxy's token: %v", err)
	}
	if id.Subject != "alice" || id.Email != "alice@example.com" || id.Name != "Alice" ||
		!slices.Equal(id.Groups, []string{"staff"}) || id.SCIMID != "2819c223-7f76-453a-919d-413861904646" || id.ID == "" {
		t.Errorf("claims = %+v", id)
	}
	if got := id.Expiry.Time().Sub(id.IssuedAt.Time()); got != 5*time.Minute {
		t.Errorf("exp - iat = %s, want the 5m lifetime", got)
	}
	claims := rawClaims(t, raw[0])
	for _, k := range []string{"iss", "aud", "sub", "scim_id", "email", "name", "groups", "sid", "iat", "nbf", "exp", "jti"} {
		if _, ok := claims[k]; !ok {
			t.Errorf("claim %s missing from %v", k, claims)
		}
	}
	if hd := rawHeader(t, raw[0]); hd["alg"] != "ES256" || hd["kid"] == "" || hd["kid"] != fetchJWKS(t, h).Keys[0].KeyID {
		t.Errorf("JOSE header = %v, want ES256 with the first key's kid", hd)
	}
}

func TestIdentityToken_DocumentedSnippetRefuses(t *testing.T) {
	t.Parallel()
	key, other := newIdentityKey(t), newIdentityKey(t)
	gate := &mapGate{m: map[string]identity.Standing{"alice@example.com": aliceStanding("staff")}}
	h := tokenHarness(t, gate, nil, key)
	keys := fetchJWKS(t, h)
	s := &session.Session{ID: "s1"}
	alice := &identity.Principal{User: "alice", Email: "alice@example.com"}
	signer := func(k *ecdsa.PrivateKey) *tokenSigner {
		ts, err := newTokenSigner([]*ecdsa.PrivateKey{k}, testIssuer, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	mint := func(ts *tokenSigner, aud string, now time.Time) string {
		tok, _, err := ts.mint(s.ID, alice, "", aud, now)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := mint(signer(key), testIssuer, time.Now())
	// Another key, but claiming the real key's kid.
	forged := signer(other)
	forged.head = signer(key).head
	parts := strings.Split(good, ".")
	tests := []struct{ name, token string }{
		{"another key", mint(signer(other), testIssuer, time.Now())},
		{"another key under the real kid", mint(forged, testIssuer, time.Now())},
		{"another audience", mint(signer(key), "https://other.example.com", time.Now())},
		{"expired", mint(signer(key), testIssuer, time.Now().Add(-10*time.Minute))},
		{"not yet valid", mint(signer(key), testIssuer, time.Now().Add(10*time.Minute))},
		{"alg none", b64.EncodeToString([]byte(`{"alg":"none","kid":"`+keys.Keys[0].KeyID+`","typ":"JWT"}`)) + "." + parts[1] + "."},
		{"alg HS256", b64.EncodeToString([]byte(`{"alg":"HS256","kid":"`+keys.Keys[0].KeyID+`"}`)) + "." + parts[1] + "." + parts[2]},
		{"claims changed after signing", parts[0] + "." + b64.EncodeToString([]byte(`{"iss":"`+testIssuer+`","aud":"`+testIssuer+`","sub":"mallory","exp":9999999999}`)) + "." + parts[2]},
	}
	if _, err := verifyIdentity(good, keys, testIssuer, testIssuer); err != nil {
		t.Fatalf("the control token is refused: %v", err)
	}
	if _, err := verifyIdentity(good, keys, "https://evil.example.com", testIssuer); err == nil {
		t.Error("a token is accepted for another issuer")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := verifyIdentity(tt.token, keys, testIssuer, testIssuer); err == nil {
				t.Errorf("the documented snippet accepted %s", tt.token)
			}
		})
	}
}

func TestIdentityToken_NeverMintedForARefusedUser(t *testing.T) {
	t.Parallel()
	gate := &mapGate{m: map[string]identity.Standing{
		"alice@example.com": {State: identity.StateInactive, ValidAfter: past},
		"bob@example.com":   {State: identity.StateActive, ValidAfter: time.Now().Add(time.Hour)}, // revoked sessions
	}}
	h := tokenHarness(t, gate, nil)
	for _, who := range []string{"alice", "bob", "carol"} { // deactivated, revoked, unprovisioned
		cookies := h.sessionCookies(identity.Principal{User: who, Email: who + "@example.com"}, time.Now().Add(time.Hour))
		resp := h.do("GET", "/app/page", nil, cookies)
		if resp.StatusCode == 200 || resp.Header.Get("X-Portcullis-Identity") != "" {
			t.Errorf("%s: status %d, token %q", who, resp.StatusCode, resp.Header.Get("X-Portcullis-Identity"))
		}
	}
	if n := len(h.proxy.signer.cache.m); n != 0 {
		t.Errorf("%d tokens minted for refused users", n)
	}
}

func TestIdentityToken_CachedUntilTheDirectoryChanges(t *testing.T) {
	t.Parallel()
	gate := &mapGate{m: map[string]identity.Standing{"alice@example.com": aliceStanding("staff")}}
	h := tokenHarness(t, gate, func(c *config.Config) {
		c.Routes = append(c.Routes, config.Route{Path: "/other/", Audience: "https://other.example.com"})
	})
	keys := fetchJWKS(t, h)
	cookies := h.sessionCookies(identity.Principal{User: "alice", Email: "alice@example.com"}, time.Now().Add(time.Hour))
	get := func(path, aud string) *Identity {
		t.Helper()
		raw := decodeEcho(t, h.do("GET", path, nil, cookies)).Header.Get("X-Portcullis-Identity")
		id, err := verifyIdentity(raw, keys, testIssuer, aud)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return id
	}
	first, again := get("/app/a", testIssuer), get("/app/b", testIssuer)
	if first.ID != again.ID {
		t.Errorf("a second request minted a new token (jti %s, %s); want the cached one", first.ID, again.ID)
	}
	if other := get("/other/x", "https://other.example.com"); other.ID == first.ID {
		t.Error("a route with its own audience got the default audience's token")
	}
	gate.set("alice@example.com", aliceStanding("staff", "admins"))
	changed := get("/app/c", testIssuer)
	if changed.ID == first.ID || !slices.Equal(changed.Groups, []string{"staff", "admins"}) {
		t.Errorf("after a SCIM group change: jti %s groups %q; want a new token with the new groups", changed.ID, changed.Groups)
	}
}

func TestIdentityToken_GroupsNeverNull(t *testing.T) {
	t.Parallel()
	gate := &mapGate{m: map[string]identity.Standing{"alice@example.com": {State: identity.StateActive}}}
	h := tokenHarness(t, gate, nil)
	cookies := h.sessionCookies(identity.Principal{User: "alice", Email: "alice@example.com"}, time.Now().Add(time.Hour))
	raw := decodeEcho(t, h.do("GET", "/app/", nil, cookies)).Header.Get("X-Portcullis-Identity")
	claims := rawClaims(t, raw)
	if g, ok := claims["groups"].([]any); !ok || len(g) != 0 {
		t.Errorf("groups = %#v, want []", claims["groups"])
	}
	if _, ok := claims["scim_id"]; ok {
		t.Error("scim_id present for a user the directory gives no id")
	}
	if _, ok := claims["org"]; ok {
		t.Error("org present in a config without organizations")
	}
}

// With organizations, every token names the session's organization in
// `org` (also "default"), and a token is never reused across them.
func TestIdentityToken_OrgClaimWhenOrganizationsExist(t *testing.T) {
	t.Parallel()
	gate := &mapGate{m: map[string]identity.Standing{"alice@example.com": aliceStanding("staff")}}
	key := newIdentityKey(t)
	h := newHarnessWith(t, newEcho(t).URL, func(c *config.Config) {
		c.IdentityToken = config.IdentityToken{Enabled: true, Header: config.DefaultIdentityTokenHeader, Lifetime: 5 * time.Minute}
		c.SCIM = config.SCIM{Enabled: true, Match: config.Match{IdentityField: "email"}, GroupsSource: "scim", RequireProvisioned: true}
		c.Organizations = []config.Organization{{ID: "acme", Domains: []string{"example.com"}}}
	}, func(o *Options) {
		o.Gate, o.IdentityKeys = gate, []*ecdsa.PrivateKey{key}
		o.Organizations = hostOrgs{}
	})
	for _, org := range []string{"acme", identity.DefaultOrg} {
		cookies := h.sessionCookies(identity.Principal{User: "alice", Email: "alice@example.com", Org: org}, time.Now().Add(time.Hour))
		raw := decodeEcho(t, h.do("GET", "/app/", nil, cookies)).Header.Get("X-Portcullis-Identity")
		if got := rawClaims(t, raw)["org"]; got != org {
			t.Errorf("%s's token: org = %#v, want %q", org, got, org)
		}
		if _, err := verifyIdentity(raw, fetchJWKS(t, h), testIssuer, testIssuer); err != nil {
			t.Errorf("%s's token refused by the documented snippet: %v", org, err)
		}
	}
}

func TestIdentityToken_PublicRouteAnonymousGetsNoToken(t *testing.T) {
	t.Parallel()
	h := tokenHarness(t, &mapGate{m: map[string]identity.Standing{}}, nil)
	e := decodeEcho(t, h.do("GET", "/healthz", http.Header{"X-Portcullis-Identity": {"forged"}}, nil))
	if v, ok := e.Header["X-Portcullis-Identity"]; ok {
		t.Errorf("anonymous request upstream with X-Portcullis-Identity %q", v)
	}
}

func TestJWKS_BothListenersWithCacheHeaders(t *testing.T) {
	t.Parallel()
	k1, k2 := newIdentityKey(t), newIdentityKey(t)
	h := tokenHarness(t, &mapGate{m: map[string]identity.Standing{}}, nil, k1, k2)
	resp := h.do("GET", jwksPath, nil, nil)
	body, _ := io.ReadAll(resp.Body)
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("Cache-Control = %q", cc)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("jwks %s: %v", body, err)
	}
	if set.Keys[0].KeyID != publicJWK(k1).Kid || set.Keys[1].KeyID != publicJWK(k2).Kid || set.Keys[0].Algorithm != "ES256" {
		t.Errorf("keys not newest first: %s", body)
	}
	if set.Keys[0].IsPublic() != true {
		t.Error("the JWKS holds a private key")
	}
	if strings.Contains(string(body), `"d"`) {
		t.Errorf("private key material in %s", body)
	}
	etag := resp.Header.Get("ETag")
	if r := h.do("GET", jwksPath, http.Header{"If-None-Match": {etag}}, nil); r.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", r.StatusCode)
	}
	admin := AdminHandler(AdminOptions{JWKS: h.proxy.JWKS()})
	rec := httptest.NewRecorder()
	admin.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1:9090"+jwksPath, nil))
	if rec.Code != 200 || rec.Body.String() != string(body) || rec.Header().Get("Cache-Control") == "" {
		t.Errorf("admin listener: %d %q", rec.Code, rec.Body.String())
	}
}

func TestREADME_GoSnippetIsTested(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("idtoken_snippet_test.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)// --- README snippet begins\n(.*?)\n// --- README snippet ends`).FindSubmatch(src)
	if m == nil {
		t.Fatal("snippet markers not found")
	}
	if !strings.Contains(string(readme), "```go\n"+string(m[1])+"```") {
		t.Error("README.md's Go verification snippet differs from idtoken_snippet_test.go; copy it over")
	}
}

func rawClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	return decodeSegment(t, tok, 1)
}

func rawHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	return decodeSegment(t, tok, 0)
}

func decodeSegment(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts", tok, len(parts))
	}
	b, err := b64.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
