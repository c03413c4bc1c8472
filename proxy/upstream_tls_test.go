package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a leaf certificate and key, PEM-encoded, for a server
// (names: DNS names and IPs) or a client (cn).
func (ca *testCA) issue(t *testing.T, cn string, server bool, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, n := range names {
			if ip := net.ParseIP(n); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, n)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// mtlsUpstream is an https upstream that requires a client certificate
// from clientCA and answers with the client certificate's CN.
func mtlsUpstream(t *testing.T, serverCA, clientCA *testCA, maxVersion uint16, names ...string) *httptest.Server {
	t.Helper()
	certPEM, keyPEM := serverCA.issue(t, "upstream", true, names...)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(clientCA.cert)
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "client "+r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MaxVersion: maxVersion}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func tlsGet(t *testing.T, up string, tc config.UpstreamTLS) (string, error) {
	t.Helper()
	u, _ := url.Parse(up)
	if tc.MinVersion == "" {
		tc.MinVersion = "1.2"
	}
	cfg := &config.Config{UpstreamURL: u, UpstreamTLS: tc, Server: config.Server{UpstreamTimeout: 5 * time.Second}}
	rt, err := newUpstreamTransportRecheck(cfg, zap.NewNop(), 0)
	if err != nil {
		return "", err
	}
	defer rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	_, body, err := roundTrip(t, rt, "GET", up+"/", nil)
	return body, err
}

func TestUpstreamTLS_PrivateCAClientCertificateAndServerName(t *testing.T) {
	t.Parallel()
	serverCA, clientCA, otherCA := newTestCA(t, "server CA"), newTestCA(t, "client CA"), newTestCA(t, "other CA")
	up := mtlsUpstream(t, serverCA, clientCA, 0, "127.0.0.1", "app.internal")
	named := mtlsUpstream(t, serverCA, clientCA, 0, "app.internal") // no IP in the certificate
	tls12 := mtlsUpstream(t, serverCA, clientCA, tls.VersionTLS12, "127.0.0.1")
	dir := t.TempDir()
	ca := writeFile(t, dir, "ca.pem", serverCA.pem)
	wrongCA := writeFile(t, dir, "other.pem", otherCA.pem)
	cp, kp := clientCA.issue(t, "portcullis", false)
	cert, key := writeFile(t, dir, "client.crt", cp), writeFile(t, dir, "client.key", kp)
	mtls := config.UpstreamTLS{CAFile: ca, CertFile: cert, KeyFile: key}

	for _, tc := range []struct {
		name   string
		url    string
		tls    config.UpstreamTLS
		wantOK bool
	}{
		{"private CA and client certificate", up.URL, mtls, true},
		{"no client certificate", up.URL, config.UpstreamTLS{CAFile: ca}, false},
		{"another CA", up.URL, config.UpstreamTLS{CAFile: wrongCA, CertFile: cert, KeyFile: key}, false},
		{"system roots do not know the private CA", up.URL, config.UpstreamTLS{CertFile: cert, KeyFile: key}, false},
		{"serverName matches a certificate without the IP", named.URL, config.UpstreamTLS{CAFile: ca, CertFile: cert, KeyFile: key, ServerName: "app.internal"}, true},
		{"no serverName: the IP is not in the certificate", named.URL, mtls, false},
		{"wrong serverName", up.URL, config.UpstreamTLS{CAFile: ca, CertFile: cert, KeyFile: key, ServerName: "db.internal"}, false},
		{"minVersion 1.3 against a TLS 1.2 upstream", tls12.URL, config.UpstreamTLS{CAFile: ca, CertFile: cert, KeyFile: key, MinVersion: "1.3"}, false},
		{"insecureSkipVerify accepts an unknown CA", up.URL, config.UpstreamTLS{CertFile: cert, KeyFile: key, InsecureSkipVerify: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := tlsGet(t, tc.url, tc.tls)
			if tc.wantOK && (err != nil || body != "client portcullis") {
				t.Errorf("got %q, %v; want the upstream to see client portcullis", body, err)
			}
			if !tc.wantOK && err == nil {
				t.Errorf("got %q; want a refused connection", body)
			}
		})
	}
}

// Rotated files are used from the next connection on, without a restart; a
// broken file keeps the last good one in use.
func TestUpstreamTLS_RotatedFilesAreReloaded(t *testing.T) {
	t.Parallel()
	serverCA, clientCA := newTestCA(t, "server CA"), newTestCA(t, "client CA")
	up := mtlsUpstream(t, serverCA, clientCA, 0, "127.0.0.1")
	dir := t.TempDir()
	ca := writeFile(t, dir, "ca.pem", serverCA.pem)
	cp, kp := clientCA.issue(t, "first", false)
	cert, key := writeFile(t, dir, "client.crt", cp), writeFile(t, dir, "client.key", kp)
	u, _ := url.Parse(up.URL)
	cfg := &config.Config{UpstreamURL: u, UpstreamTLS: config.UpstreamTLS{CAFile: ca, CertFile: cert, KeyFile: key, MinVersion: "1.2"},
		Server: config.Server{UpstreamTimeout: 5 * time.Second}}
	rt, err := newUpstreamTransportRecheck(cfg, zap.NewNop(), 0)
	if err != nil {
		t.Fatal(err)
	}
	closeIdle := rt.(interface{ CloseIdleConnections() }).CloseIdleConnections
	defer closeIdle()
	get := func() string {
		closeIdle() // a new connection, so a new handshake
		_, body, err := roundTrip(t, rt, "GET", up.URL+"/", nil)
		if err != nil {
			return "error: " + err.Error()
		}
		return body
	}
	if got := get(); got != "client first" {
		t.Fatalf("before rotation: %s", got)
	}
	cp2, kp2 := clientCA.issue(t, "second", false)
	writeFile(t, dir, "client.crt", cp2)
	writeFile(t, dir, "client.key", kp2)
	if got := get(); got != "client second" {
		t.Errorf("after rotating the client certificate: %s", got)
	}
	writeFile(t, dir, "client.crt", []byte("not a certificate"))
	if got := get(); got != "client second" {
		t.Errorf("with a broken certificate file: %s; want the last good one", got)
	}
}

func TestUpstreamTLS_BadFilesStopTheStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	u, _ := url.Parse("https://127.0.0.1:1")
	for _, tc := range []config.UpstreamTLS{
		{CAFile: filepath.Join(dir, "missing.pem")},
		{CAFile: writeFile(t, dir, "empty.pem", []byte("nothing"))},
		{CertFile: writeFile(t, dir, "c.pem", []byte("x")), KeyFile: writeFile(t, dir, "k.pem", []byte("y"))},
	} {
		tc.MinVersion = "1.2"
		if _, err := newUpstreamTransport(&config.Config{UpstreamURL: u, UpstreamTLS: tc}, zap.NewNop()); err == nil {
			t.Errorf("%+v: no error", tc)
		}
	}
}
