package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"

	"github.com/portcullis-sso/portcullis/samlsp"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// writeIdPMetadata writes a signed-IdP metadata file made from a fresh key.
func writeIdPMetadata(t testing.TB, dir string) string {
	t.Helper()
	keyPEM, certPEM, err := samlsp.GenerateSPKeyPair("test-idp")
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pem.Decode(keyPEM)
	cb, _ := pem.Decode(certPEM)
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		k1, err1 := x509.ParsePKCS1PrivateKey(kb.Bytes)
		if err1 != nil {
			t.Fatalf("parse key: %v / %v", err, err1)
		}
		key = k1
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	idp := saml.IdentityProvider{
		Key:         key.(*rsa.PrivateKey),
		Certificate: cert,
		MetadataURL: url.URL{Scheme: "https", Host: "idp.example.com", Path: "/metadata"},
		SSOURL:      url.URL{Scheme: "https", Host: "idp.example.com", Path: "/sso"},
	}
	b, err := xml.MarshalIndent(idp.Metadata(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "idp.xml")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// httpsCookieName is the session cookie name of testConfigDir's configs,
// whose publicURL is https.
const httpsCookieName = config.HostCookiePrefix + config.DefaultCookieName

// testConfigDir writes keys, IdP metadata and a config; extra is appended YAML.
func testConfigDir(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	if code, _, stderr := runCLI(t, "keys", "--out", dir); code != 0 {
		t.Fatalf("keys: %s", stderr)
	}
	writeIdPMetadata(t, dir)
	cfg := `version: 1
listen: "127.0.0.1:0"
adminListen: "127.0.0.1:0"
publicURL: "https://app.example.com"
upstream: "http://127.0.0.1:3000"
saml:
  idpMetadataFile: idp.xml
  certFile: sp.crt
  keyFile: sp.key
session:
  keysFile: session.keys
` + extra
	if err := os.WriteFile(filepath.Join(dir, "portcullis.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "portcullis.yaml")
}

func TestCLI_Version(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "portcullis ") {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestCLI_UnknownCommandAndMissingFlags(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"serve"}, {"check-config"}, {"keys"}, {}} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestCLI_KeysWritesOwnerOnlyAndNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runCLI(t, "keys", "--out", dir)
	if code != 0 {
		t.Fatalf("keys: %s", stderr)
	}
	before := map[string][]byte{}
	for _, n := range []string{"sp.key", "sp.crt", "session.keys", "identity.keys"} {
		st, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", n, st.Mode().Perm())
		}
		before[n], _ = os.ReadFile(filepath.Join(dir, n))
	}
	key, _ := pem.Decode(before["sp.key"])
	if key == nil {
		t.Fatal("sp.key is not PEM")
	}
	if code, _, stderr := runCLI(t, "keys", "--out", dir); code == 0 || !strings.Contains(stderr, "refusing to overwrite") {
		t.Errorf("second run: exit %d, %q", code, stderr)
	}
	for n, b := range before {
		after, _ := os.ReadFile(filepath.Join(dir, n))
		if !bytes.Equal(b, after) {
			t.Errorf("%s was overwritten", n)
		}
	}
}

func TestCLI_CheckConfig(t *testing.T) {
	t.Run("valid", func(t *testing.T) {
		path := testConfigDir(t, "")
		code, out, stderr := runCLI(t, "check-config", "--config", path, "--log-level", "error")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if !strings.Contains(out, "config ok") {
			t.Errorf("output %q", out)
		}
	})
	t.Run("every problem with its line", func(t *testing.T) {
		path := testConfigDir(t, "routes:\n  - path: admin\n    publik: true\n")
		raw, _ := os.ReadFile(path)
		raw = bytes.Replace(raw, []byte(`upstream: "http://127.0.0.1:3000"`), []byte(`upstream: "127.0.0.1:3000"`), 1)
		_ = os.WriteFile(path, raw, 0o600)
		code, _, stderr := runCLI(t, "check-config", "--config", path)
		if code != 1 {
			t.Fatalf("exit %d, want 1: %s", code, stderr)
		}
		for _, want := range []string{"line 5: upstream:", "line 13: routes[0].path:", "line 14: routes[0].publik: unknown field (did you mean public?)"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
	})
	t.Run("missing key file", func(t *testing.T) {
		path := testConfigDir(t, "")
		_ = os.Remove(filepath.Join(filepath.Dir(path), "sp.key"))
		code, _, stderr := runCLI(t, "check-config", "--config", path)
		if code != 1 || !strings.Contains(stderr, "sp.key") {
			t.Errorf("exit %d: %s", code, stderr)
		}
	})
	t.Run("unreadable IdP metadata", func(t *testing.T) {
		path := testConfigDir(t, "")
		_ = os.WriteFile(filepath.Join(filepath.Dir(path), "idp.xml"), []byte("<!DOCTYPE x [<!ENTITY a 'b'>]><x/>"), 0o600)
		if code, _, _ := runCLI(t, "check-config", "--config", path); code != 1 {
			t.Errorf("exit %d for hostile metadata", code)
		}
	})
}

func TestCLI_MetadataPrintsSPMetadata(t *testing.T) {
	path := testConfigDir(t, "")
	code, out, stderr := runCLI(t, "metadata", "--config", path, "--log-level", "error")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal([]byte(out), &ed); err != nil {
		t.Fatalf("not SP metadata: %v\n%s", err, out)
	}
	if ed.EntityID != "https://app.example.com/saml/metadata" {
		t.Errorf("entityID %q", ed.EntityID)
	}
	if !strings.Contains(out, `AuthnRequestsSigned="true"`) || !strings.Contains(out, "https://app.example.com/saml/acs") {
		t.Errorf("metadata lacks signing flag or ACS:\n%s", out)
	}
}

func TestServe_GracefulShutdownDrainsInFlight(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "done")
	})}
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go up.Serve(upLn)
	t.Cleanup(func() { up.Close() })

	path := testConfigDir(t, "routes:\n  - path: /slow\n    public: true\nserver:\n  drainTimeout: 5s\n")
	raw, _ := os.ReadFile(path)
	raw = bytes.Replace(raw, []byte("http://127.0.0.1:3000"), []byte("http://"+upLn.Addr().String()), 1)
	_ = os.WriteFile(path, raw, 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := build(ctx, path, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	pub, _ := net.Listen("tcp", "127.0.0.1:0")
	adm, _ := net.Listen("tcp", "127.0.0.1:0")
	served := make(chan error, 1)
	go func() { served <- serveOn(ctx, a, pub, adm, zap.NewNop()) }()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + pub.Addr().String() + "/slow")
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	time.Sleep(200 * time.Millisecond) // let the request reach the upstream
	cancel()                           // SIGTERM
	time.Sleep(100 * time.Millisecond)
	if _, err := net.DialTimeout("tcp", pub.Addr().String(), time.Second); err == nil {
		t.Error("still accepting new connections while draining")
	}
	close(release)
	if r := <-got; r != "200 done" {
		t.Errorf("in-flight request: %s", r)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serveOn: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serveOn did not return after the drain")
	}
}

// serveInProcess builds the app from the config at path and serves it as
// `serve` does, on loopback listeners, until the test ends. It returns the
// public listener's address once /readyz answers 200.
func serveInProcess(t *testing.T, path string) string {
	t.Helper()
	pub, _ := serveInProcessBoth(t, path)
	return pub
}

// serveInProcessBoth is serveInProcess returning the admin address too.
func serveInProcessBoth(t *testing.T, path string) (public, admin string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := build(ctx, path, zap.NewNop())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	pub, _ := net.Listen("tcp", "127.0.0.1:0")
	adm, _ := net.Listen("tcp", "127.0.0.1:0")
	served := make(chan error, 1)
	done := make(chan struct{})
	go func() { served <- serveOn(ctx, a, pub, adm, zap.NewNop()); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-served
		a.Close()
	})
	if err := waitReady("http://"+adm.Addr().String(), done, readyTimeout); err != nil {
		t.Fatal(err)
	}
	return pub.Addr().String(), adm.Addr().String()
}
