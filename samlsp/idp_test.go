package samlsp

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// The test IdP: keys from testdata, its metadata, and the responses it
// signs (valid by default, shaped per test by respOpts).

// testIdP signs responses with a key from testdata.
type testIdP struct {
	key      *rsa.PrivateKey
	cert     *x509.Certificate
	entityID string
	ssoURL   string
	noSLO    bool // metadata without SingleLogoutService
	postSLO  bool // metadata with an HTTP-POST SingleLogoutService only
}

var (
	idpKeys     = map[string]*testIdP{}
	idpKeysOnce sync.Once
)

// loadIdP returns the test IdP named idp (the trusted one) or idp2 (a key
// that is not in the metadata unless a test puts it there).
func loadIdP(t testing.TB, name string) testIdP {
	t.Helper()
	idpKeysOnce.Do(func() {
		for _, n := range []string{"idp", "idp2"} {
			keyPEM, err := os.ReadFile(filepath.Join("testdata", n+".key"))
			if err != nil {
				panic(err)
			}
			certPEM, err := os.ReadFile(filepath.Join("testdata", n+".crt"))
			if err != nil {
				panic(err)
			}
			key, err := parsePrivateKey(keyPEM)
			if err != nil {
				panic(err)
			}
			cert, err := parseCertificate(certPEM)
			if err != nil {
				panic(err)
			}
			idpKeys[n] = &testIdP{key: key, cert: cert, entityID: testIDPID, ssoURL: testSSO}
		}
	})
	idp, ok := idpKeys[name]
	if !ok {
		t.Fatalf("no test idp %q", name)
	}
	return *idp
}

// metadata is the IdP's metadata with signing certificates certs (default its own).
func (idp testIdP) metadata(certs ...*x509.Certificate) []byte {
	if len(certs) == 0 {
		certs = []*x509.Certificate{idp.cert}
	}
	var kds []saml.KeyDescriptor
	for _, c := range certs {
		kds = append(kds, saml.KeyDescriptor{Use: "signing", KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{
			X509Certificates: []saml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(c.Raw)}},
		}}})
	}
	ed := saml.EntityDescriptor{
		EntityID: idp.entityID,
		IDPSSODescriptors: []saml.IDPSSODescriptor{{
			SSODescriptor: saml.SSODescriptor{RoleDescriptor: saml.RoleDescriptor{
				ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol",
				KeyDescriptors:             kds,
			}},
			SingleSignOnServices: []saml.Endpoint{
				{Binding: saml.HTTPRedirectBinding, Location: idp.ssoURL},
				{Binding: saml.HTTPPostBinding, Location: idp.ssoURL},
			},
		}},
	}
	switch {
	case idp.postSLO:
		ed.IDPSSODescriptors[0].SingleLogoutServices = []saml.Endpoint{{Binding: saml.HTTPPostBinding, Location: testSLO}}
	case !idp.noSLO:
		ed.IDPSSODescriptors[0].SingleLogoutServices = []saml.Endpoint{
			{Binding: saml.HTTPRedirectBinding, Location: testSLO},
			{Binding: saml.HTTPPostBinding, Location: testSLO},
		}
	}
	out, err := xml.MarshalIndent(ed, "", "  ")
	if err != nil {
		panic(err)
	}
	return out
}

func (idp testIdP) signingContext(t testing.TB) *dsig.SigningContext {
	t.Helper()
	ks := dsig.TLSCertKeyStore(tls.Certificate{Certificate: [][]byte{idp.cert.Raw}, PrivateKey: idp.key, Leaf: idp.cert})
	ctx := dsig.NewDefaultSigningContext(ks)
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// signAssertion returns the assertion element with an enveloped signature
// placed after its Issuer, as IdPs do.
func (idp testIdP) signAssertion(t testing.TB, a *saml.Assertion) *etree.Element {
	t.Helper()
	signed, err := idp.signingContext(t).SignEnveloped(a.Element())
	if err != nil {
		t.Fatal(err)
	}
	a.Signature = signed.ChildElements()[len(signed.ChildElements())-1]
	defer func() { a.Signature = nil }()
	return a.Element()
}

// signResponse returns the Response element, holding assertionEl, with an
// enveloped signature over the whole Response.
func (idp testIdP) signResponse(t testing.TB, r *saml.Response, assertionEl *etree.Element) *etree.Element {
	t.Helper()
	el := r.Element()
	el.AddChild(assertionEl)
	signed, err := idp.signingContext(t).SignEnveloped(el)
	if err != nil {
		t.Fatal(err)
	}
	r.Signature = signed.ChildElements()[len(signed.ChildElements())-1]
	defer func() { r.Signature = nil }()
	el = r.Element()
	el.AddChild(assertionEl)
	return el
}

// respOpts describes one response the test IdP makes.
type respOpts struct {
	requestID      string // InResponseTo of the Response and the bearer confirmation; "" = unsolicited
	assertion      func(*saml.Assertion)
	response       func(*saml.Response)
	signResponse   bool
	unsignedAssert bool
	signer         *testIdP             // default: the harness IdP
	tamper         func(*etree.Element) // applied to the Response element after signing
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "id-" + hex.EncodeToString(b[:])
}

func attribute(name, friendly string, values ...string) saml.Attribute {
	a := saml.Attribute{Name: name, FriendlyName: friendly, NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"}
	for _, v := range values {
		a.Values = append(a.Values, saml.AttributeValue{Type: "xs:string", Value: v})
	}
	return a
}

// assertion is a valid assertion for requestID at the harness's current time.
func (h *harness) assertion(requestID string) *saml.Assertion {
	now := h.clock.Now()
	return &saml.Assertion{
		ID:           randomID(),
		IssueInstant: now,
		Version:      "2.0",
		Issuer:       saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: h.idp.entityID},
		Subject: &saml.Subject{
			NameID: &saml.NameID{Format: string(saml.EmailAddressNameIDFormat), Value: "alice@example.com"},
			SubjectConfirmations: []saml.SubjectConfirmation{{
				Method: bearerMethod,
				SubjectConfirmationData: &saml.SubjectConfirmationData{
					Recipient:    h.sp.defConn().acsURL.String(),
					InResponseTo: requestID,
					NotOnOrAfter: now.Add(5 * time.Minute),
				},
			}},
		},
		Conditions: &saml.Conditions{
			NotBefore:            now.Add(-30 * time.Second),
			NotOnOrAfter:         now.Add(5 * time.Minute),
			AudienceRestrictions: []saml.AudienceRestriction{{Audience: saml.Audience{Value: h.sp.defConn().entityID}}},
		},
		AuthnStatements: []saml.AuthnStatement{{
			AuthnInstant: now,
			SessionIndex: "_session1",
			AuthnContext: saml.AuthnContext{AuthnContextClassRef: &saml.AuthnContextClassRef{
				Value: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
			}},
		}},
		AttributeStatements: []saml.AttributeStatement{{Attributes: []saml.Attribute{
			attribute("uid", "", "alice"),
			attribute("mail", "", "alice@example.com"),
			attribute("displayName", "", "Alice Example"),
			attribute("groups", "", "staff", "admins"),
		}}},
	}
}

func (h *harness) response(requestID string) *saml.Response {
	return &saml.Response{
		ID:           randomID(),
		InResponseTo: requestID,
		Version:      "2.0",
		IssueInstant: h.clock.Now(),
		Destination:  h.sp.defConn().acsURL.String(),
		Issuer:       &saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: h.idp.entityID},
		Status:       saml.Status{StatusCode: saml.StatusCode{Value: saml.StatusSuccess}},
	}
}

// buildResponse returns the Response element the options describe.
func (h *harness) buildResponse(o respOpts) *etree.Element {
	h.t.Helper()
	signer := h.idp
	if o.signer != nil {
		signer = *o.signer
	}
	a := h.assertion(o.requestID)
	if o.assertion != nil {
		o.assertion(a)
	}
	r := h.response(o.requestID)
	if o.response != nil {
		o.response(r)
	}
	var assertionEl *etree.Element
	if o.unsignedAssert {
		assertionEl = a.Element()
	} else {
		assertionEl = signer.signAssertion(h.t, a)
	}
	var el *etree.Element
	if o.signResponse {
		el = signer.signResponse(h.t, r, assertionEl)
	} else {
		el = r.Element()
		el.AddChild(assertionEl)
	}
	if o.tamper != nil {
		o.tamper(el)
	}
	return el
}

func (h *harness) makeResponse(o respOpts) string {
	h.t.Helper()
	return encodeElement(h.t, h.buildResponse(o))
}

func encodeElement(t testing.TB, el *etree.Element) string {
	t.Helper()
	return base64.StdEncoding.EncodeToString(elementBytes(t, el))
}

func elementBytes(t testing.TB, el *etree.Element) []byte {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(el)
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeAuthnRequest(t testing.TB, samlRequest string) saml.AuthnRequest {
	t.Helper()
	compressed, err := base64.StdEncoding.DecodeString(samlRequest)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(flate.NewReader(bytes.NewReader(compressed)))
	if err != nil {
		t.Fatal(err)
	}
	var ar saml.AuthnRequest
	if err := xml.Unmarshal(raw, &ar); err != nil {
		t.Fatalf("AuthnRequest: %v\n%s", err, raw)
	}
	return ar
}

// verifyRedirectSignature checks the HTTP-Redirect binding signature of
// rawQuery (saml-bindings §3.4.4.1) with cert and returns the SigAlg.
func verifyRedirectSignature(t testing.TB, rawQuery string, cert *x509.Certificate) string {
	t.Helper()
	raw := map[string]string{}
	for _, part := range strings.Split(rawQuery, "&") {
		k, v, _ := strings.Cut(part, "=")
		raw[k] = v
	}
	signed := "SAMLRequest=" + raw["SAMLRequest"]
	if v, ok := raw["SAMLResponse"]; ok { // a LogoutResponse (slo_test.go)
		signed = "SAMLResponse=" + v
	}
	if rs, ok := raw["RelayState"]; ok {
		signed += "&RelayState=" + rs
	}
	signed += "&SigAlg=" + raw["SigAlg"]
	sigAlg, err := url.QueryUnescape(raw["SigAlg"])
	if err != nil {
		t.Fatal(err)
	}
	sigB64, err := url.QueryUnescape(raw["Signature"])
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		t.Fatalf("Signature is not base64: %v", err)
	}
	digest := sha256.Sum256([]byte(signed))
	if err := rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
		t.Errorf("AuthnRequest redirect signature does not verify with the SP certificate: %v", err)
	}
	return sigAlg
}
