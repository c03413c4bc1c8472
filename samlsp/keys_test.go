package samlsp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/config"
)

func TestGenerateSPKeyPair(t *testing.T) {
	t.Parallel()
	keyPEM, certPEM, err := GenerateSPKeyPair("portcullis")
	if err != nil {
		t.Fatal(err)
	}
	key, err := parsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if key.N.BitLen() != 3072 {
		t.Errorf("key is %d bits, want 3072", key.N.BitLen())
	}
	cert, err := parseCertificate(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if cert.Subject.CommonName != "portcullis" {
		t.Errorf("CN %q", cert.Subject.CommonName)
	}
	if !cert.PublicKey.(*rsa.PublicKey).Equal(&key.PublicKey) {
		t.Error("certificate is for another key")
	}
	now := time.Now()
	if cert.NotBefore.After(now) || cert.NotAfter.Before(now.AddDate(9, 11, 0)) || cert.NotAfter.After(now.AddDate(10, 0, 1)) {
		t.Errorf("validity %s – %s, want now – ten years", cert.NotBefore, cert.NotAfter)
	}

	// The pair works as the SP's.
	dir := t.TempDir()
	kf, cf := filepath.Join(dir, "sp.key"), filepath.Join(dir, "sp.crt")
	writeFile(t, kf, keyPEM)
	writeFile(t, cf, certPEM)
	h := newHarness(t, func(c *config.Config) { c.SAML.KeyFile, c.SAML.CertFile = kf, cf })
	rec, _ := h.complete("/", respOpts{})
	h.expectAccepted(t, rec, "/")
}

func TestLoadKeyPair_Errors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	ecFile := filepath.Join(dir, "ec.key")
	writeFile(t, ecFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}))
	garbage := filepath.Join(dir, "garbage.pem")
	writeFile(t, garbage, []byte("not pem"))
	pkcs1 := filepath.Join(dir, "pkcs1.key")
	spKey, _ := parsePrivateKey(mustRead(t, "testdata/sp.key"))
	writeFile(t, pkcs1, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(spKey)}))
	missing := filepath.Join(dir, "missing.key")

	tests := []struct {
		name      string
		key, cert string
		want      []string // in the error; nil = no error
	}{
		{"PKCS #8", "testdata/sp.key", "testdata/sp.crt", nil},
		{"PKCS #1", pkcs1, "testdata/sp.crt", nil},
		{"missing key file", missing, "testdata/sp.crt", []string{"saml.keyFile", missing}},
		{"missing cert file", "testdata/sp.key", missing, []string{"saml.certFile", missing}},
		{"key not PEM", garbage, "testdata/sp.crt", []string{"saml.keyFile", garbage}},
		{"cert not PEM", "testdata/sp.key", garbage, []string{"saml.certFile", garbage}},
		{"EC key", ecFile, "testdata/sp.crt", []string{"saml.keyFile", "RSA"}},
		{"cert for another key", "testdata/sp.key", "testdata/idp.crt", []string{"not for the key"}},
		{"no key file", "", "testdata/sp.crt", []string{"saml.keyFile: required"}},
	}
	for _, tc := range tests {
		_, _, err := loadKeyPair(tc.key, tc.cert)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
	}
}

func TestNew_ConfigErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	base := Options{Config: h.cfg, Sessions: h.codec, SessionKeys: h.keys}
	tests := map[string]func(*Options){
		"no config":          func(o *Options) { o.Config = nil },
		"no sessions":        func(o *Options) { o.Sessions = nil },
		"no session keys":    func(o *Options) { o.SessionKeys = nil },
		"no public URL":      func(o *Options) { c := *o.Config; c.Public = nil; o.Config = &c },
		"bad NameID format":  func(o *Options) { c := *o.Config; c.SAML.NameIDFormat = "email"; o.Config = &c },
		"no metadata source": func(o *Options) { c := *o.Config; c.SAML.IDPMetadataFile = ""; o.Config = &c },
		"relative metadata URL": func(o *Options) {
			c := *o.Config
			c.SAML.IDPMetadataFile = ""
			c.SAML.IDPMetadataURL = "/md"
			o.Config = &c
		},
	}
	for name, mutate := range tests {
		o := base
		mutate(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := New(base); err != nil {
		t.Errorf("base options: %v", err)
	}
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
