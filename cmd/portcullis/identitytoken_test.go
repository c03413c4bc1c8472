package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// TestIdentityToken_KeysFromPortcullisKeys: the key `portcullis keys` writes
// loads as identityToken.keysFile, and both listeners publish it.
func TestIdentityToken_KeysFromPortcullisKeys(t *testing.T) {
	path := testConfigDir(t, "identityToken:\n  keysFile: identity.keys\n")
	a, err := build(context.Background(), path, zap.NewNop())
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	defer a.Close()
	var bodies []string
	for _, h := range []http.Handler{a.proxy, a.admin} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "http://localhost/.well-known/portcullis/jwks.json", nil))
		b, _ := io.ReadAll(rec.Body)
		if rec.Code != 200 || !strings.Contains(string(b), `"crv":"P-256"`) || rec.Header().Get("Cache-Control") == "" {
			t.Errorf("jwks: %d %s", rec.Code, b)
		}
		bodies = append(bodies, string(b))
	}
	if bodies[0] != bodies[1] {
		t.Errorf("the listeners publish different keys: %s / %s", bodies[0], bodies[1])
	}
}
