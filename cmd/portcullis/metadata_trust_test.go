package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

var validUntilAttr = regexp.MustCompile(`validUntil="[^"]*"`)

// setValidUntil rewrites the validUntil of the idp.xml in dir.
func setValidUntil(t *testing.T, dir string, vu time.Time) {
	t.Helper()
	p := filepath.Join(dir, "idp.xml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !validUntilAttr.Match(b) {
		t.Fatal("idp.xml has no validUntil to rewrite")
	}
	b = validUntilAttr.ReplaceAll(b, []byte(`validUntil="`+vu.UTC().Format(time.RFC3339)+`"`))
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// idpFingerprint is the SHA-256 fingerprint (openssl style) of the signing
// certificate in the idp.xml of dir.
func idpFingerprint(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "idp.xml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)<(?:\w+:)?X509Certificate[^>]*>(.*?)</`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no certificate in idp.xml")
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(m[1])), ""))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, x := range sum {
		parts[i] = fmt.Sprintf("%02X", x)
	}
	return strings.Join(parts, ":")
}

// check-config refuses IdP metadata whose validUntil has passed, naming
// the field.
func TestCheckConfig_RefusesExpiredIdPMetadata(t *testing.T) {
	cfg := testConfigDir(t, "")
	setValidUntil(t, filepath.Dir(cfg), time.Now().Add(-time.Hour))
	code, _, stderr := runCLI(t, "check-config", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, "saml.idpMetadataFile ") || !strings.Contains(stderr, "metadata expired: its validUntil") {
		t.Errorf("check-config exit %d, stderr:\n%s", code, stderr)
	}
	setValidUntil(t, filepath.Dir(cfg), time.Now().Add(time.Hour))
	if code, _, stderr := runCLI(t, "check-config", "--config", cfg); code != 0 {
		t.Errorf("current metadata: exit %d, stderr:\n%s", code, stderr)
	}
}

// As wired: an expired refresh keeps the last good copy and /readyz says
// degraded (still 200); the status page shows the signing certificate.
func TestMetadataTrustWiring_ExpiredRefreshDegradesReadyz(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc := writeServeConfig(t, dir)
	a, err := build(context.Background(), sc.path, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if err := a.sp.LoadMetadata(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.admin)
	t.Cleanup(srv.Close)
	_, body := adminGet(t, srv.URL, "/", "127.0.0.1", "")
	if fp := idpFingerprint(t, dir); !strings.Contains(body, fp) {
		t.Errorf("the status page does not show the IdP signing certificate %s", fp)
	}

	setValidUntil(t, dir, time.Now().Add(-time.Minute))
	if err := a.sp.LoadMetadata(context.Background()); err == nil {
		t.Fatal("expired metadata loaded")
	}
	code, body := adminGet(t, srv.URL, "/readyz", "127.0.0.1", "")
	if code != http.StatusOK || !strings.HasPrefix(body, "ready (degraded)\n") || !strings.Contains(body, "idp: degraded: the idp's latest metadata was refused") {
		t.Errorf("/readyz %d:\n%s", code, body)
	}
}
