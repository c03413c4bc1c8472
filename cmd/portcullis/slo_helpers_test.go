package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/session"
	"github.com/portcullis-sso/portcullis/samlsp"
	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/postgres"
)

// sloIdP is a test IdP with Single Logout whose key the test keeps, to
// sign LogoutRequests (writeIdPMetadata's key is thrown away).
type sloIdP struct {
	key      *rsa.PrivateKey
	cert     *x509.Certificate
	entityID string
}

// newSLOIdP makes a key pair and writes dir/idp.xml: the IdP's metadata
// with SingleLogoutService (Redirect, POST) at https://idp.example.com/slo.
func newSLOIdP(t testing.TB, dir string) sloIdP {
	t.Helper()
	keyPEM, certPEM, err := samlsp.GenerateSPKeyPair("test-slo-idp")
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pem.Decode(keyPEM)
	cb, _ := pem.Decode(certPEM)
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	idp := saml.IdentityProvider{
		Key:         k.(*rsa.PrivateKey),
		Certificate: cert,
		MetadataURL: url.URL{Scheme: "https", Host: "idp.example.com", Path: "/metadata"},
		SSOURL:      url.URL{Scheme: "https", Host: "idp.example.com", Path: "/sso"},
		LogoutURL:   url.URL{Scheme: "https", Host: "idp.example.com", Path: "/slo"},
	}
	md := idp.Metadata()
	b, err := xml.MarshalIndent(md, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "idp.xml"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return sloIdP{key: k.(*rsa.PrivateKey), cert: cert, entityID: md.EntityID}
}

// logoutRequestXML is a LogoutRequest for nameID's session sessionIndex,
// signed (enveloped) by signer's key, or unsigned when signer is nil.
func (idp sloIdP) logoutRequestXML(t testing.TB, nameID, sessionIndex string, signer *sloIdP) []byte {
	t.Helper()
	var id [16]byte
	_, _ = rand.Read(id[:])
	lr := &saml.LogoutRequest{
		ID: "id-" + hex.EncodeToString(id[:]), Version: "2.0", IssueInstant: time.Now(),
		Issuer:       &saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: idp.entityID},
		NameID:       &saml.NameID{Format: string(saml.EmailAddressNameIDFormat), Value: nameID},
		SessionIndex: &saml.SessionIndex{Value: sessionIndex},
	}
	el := lr.Element()
	if signer != nil {
		ks := dsig.TLSCertKeyStore(tls.Certificate{Certificate: [][]byte{signer.cert.Raw}, PrivateKey: signer.key, Leaf: signer.cert})
		ctx := dsig.NewDefaultSigningContext(ks)
		ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
		if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
			t.Fatal(err)
		}
		signed, err := ctx.SignEnveloped(el)
		if err != nil {
			t.Fatal(err)
		}
		el = signed
	}
	doc := etree.NewDocument()
	doc.SetRoot(el)
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// postSOAPLogout sends a LogoutRequest to base's /saml/slo by the SOAP
// binding (the IdP's back channel) and returns the status and body.
func postSOAPLogout(t testing.TB, client *http.Client, base string, lr []byte) (int, string) {
	t.Helper()
	env := `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>` +
		string(lr) + `</soapenv:Body></soapenv:Envelope>`
	resp, err := client.Post(base+"/saml/slo", "text/xml", strings.NewReader(env))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// recordedSession records a sign-in of email from idp in the store at dsn,
// as the ACS does, and returns its session cookie value.
func recordedSession(t testing.TB, ctx context.Context, lg store.Ledger, codec *session.Codec, idp sloIdP, email, sessionIndex string) string {
	t.Helper()
	now := time.Now()
	s := &session.Session{ID: session.NewID(), IssuedAt: now.Add(time.Second), Expires: now.Add(time.Hour),
		Principal: identity.Principal{User: email, Email: email},
		SAML:      session.SAMLSession{IdP: idp.entityID, NameID: email, SessionIndex: sessionIndex}}
	if err := lg.RecordLogin(ctx, store.Login{MatchKey: identity.MatchKey(email), User: email, SessionID: s.ID,
		Issued: s.IssuedAt, Expires: s.Expires, IdP: idp.entityID, NameID: email, SessionIndex: sessionIndex}); err != nil {
		t.Fatal(err)
	}
	v, err := codec.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// openLedger opens the PostgreSQL store at dsn for its login ledger.
func openLedger(t testing.TB, dsn string) store.Ledger {
	t.Helper()
	pg, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	return pg.Ledger()
}
