// Command orgs writes what bench/orgs-scale.sh measures: n organizations,
// each with its own IdP metadata file (a signing certificate of its own)
// and its own email domain, as one file per organization in an
// organizationsDir, and the config that serves them. With -scim the
// organizations are listed in the config instead, each with its own SCIM
// tokens file (organizationsDir does not take SCIM yet); -provision then
// creates -users users in each organization's directory through SCIM Bulk.
//
//	orgs -out DIR -n 1000 [-scim] -listen 127.0.0.1:18480 -admin 127.0.0.1:18490 -upstream http://127.0.0.1:18470
//	orgs -out DIR -n 1000 -provision http://127.0.0.1:18480 -users 100
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// keyPool is how many RSA keys the certificates share: generating 1,000
// 2048-bit keys would take minutes, and each certificate is still distinct.
const keyPool = 8

func main() {
	out := flag.String("out", "", "directory to write into (required; keys/ must hold `portcullis keys` output)")
	n := flag.Int("n", 1000, "organizations")
	listen := flag.String("listen", "127.0.0.1:18480", "proxy address")
	admin := flag.String("admin", "127.0.0.1:18490", "admin address")
	upstream := flag.String("upstream", "http://127.0.0.1:18470", "upstream URL")
	scim := flag.Bool("scim", false, "organizations in the config, each with a SCIM directory")
	provisionURL := flag.String("provision", "", "provision -users users per organization through the proxy at this URL")
	users := flag.Int("users", 100, "users per organization (with -provision)")
	flag.Parse()
	if *out == "" || *n < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if *provisionURL != "" {
		if err := provision(*out, *provisionURL, *n, *users); err != nil {
			fmt.Fprintln(os.Stderr, "orgs:", err)
			os.Exit(1)
		}
		return
	}
	if err := write(*out, *n, *scim, *listen, *admin, *upstream); err != nil {
		fmt.Fprintln(os.Stderr, "orgs:", err)
		os.Exit(1)
	}
}

func write(out string, n int, scim bool, listen, admin, upstream string) error {
	for _, d := range []string{"md", "orgs.d", "tokens"} {
		if err := os.MkdirAll(filepath.Join(out, d), 0o755); err != nil {
			return err
		}
	}
	var inline strings.Builder
	keys := make([]*rsa.PrivateKey, keyPool)
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return err
		}
		keys[i] = k
	}
	for i := range n {
		id := fmt.Sprintf("org%04d", i)
		md, err := metadata(id, keys[i%keyPool], int64(i+1))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, "md", id+".xml"), md, 0o644); err != nil {
			return err
		}
		if scim {
			fmt.Fprintf(&inline, "  - id: %s\n    name: Customer %d\n    domains: [%s.example]\n    saml: {idpMetadataFile: md/%s.xml}\n    scim: {tokensFile: tokens/%s}\n",
				id, i, id, id, id)
			if err := os.WriteFile(filepath.Join(out, "tokens", id), []byte(token(id)+"\n"), 0o600); err != nil {
				return err
			}
			continue
		}
		org := fmt.Sprintf("id: %s\nname: Customer %d\ndomains: [%s.example]\nsaml:\n  idpMetadataFile: ../md/%s.xml\n", id, i, id, id)
		if err := os.WriteFile(filepath.Join(out, "orgs.d", id+".yaml"), []byte(org), 0o644); err != nil {
			return err
		}
	}
	orgs := "organizationsDir: orgs.d\n"
	if scim {
		orgs = "organizations:\n" + inline.String() +
			"scim:\n  enabled: true\n  match: {identityField: email, scimAttribute: userName}\nstore:\n  driver: sqlite\n  dsn: portcullis.db\n"
	}
	cfg := fmt.Sprintf(`version: 1
listen: %q
adminListen: %q
publicURL: "http://%s"
upstream: %q
saml:
  certFile: keys/sp.crt
  keyFile: keys/sp.key
session:
  keysFile: keys/session.keys
`, listen, admin, listen, upstream) + orgs
	return os.WriteFile(filepath.Join(out, "portcullis.yaml"), []byte(cfg), 0o644)
}

// metadata is an IdP metadata document for organization id with a
// certificate of its own on key.
func metadata(id string, key *rsa.PrivateKey, serial int64) ([]byte, error) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: id + " idp"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, `<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://%[1]s.idp.example/saml">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
        <ds:X509Data><ds:X509Certificate>%[2]s</ds:X509Certificate></ds:X509Data>
      </ds:KeyInfo>
    </md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://%[1]s.idp.example/saml/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
`, id, base64.StdEncoding.EncodeToString(der)), nil
}
