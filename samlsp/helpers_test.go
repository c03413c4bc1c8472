package samlsp

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
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
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/session"
	"github.com/portcullis-sso/portcullis/internal/web"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// t0 is the pinned time of every test; the test certificates are valid
// from 2026-01-01 to 2036-01-01.
var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

const (
	testPublic   = "https://app.example.com"
	testIDPID    = "https://idp.example.com/metadata"
	testSSO      = "https://idp.example.com/sso"
	testReqID    = "req-test-1"
	testAttrUser = "uid"
)

// testClock is a settable clock shared by the SP, the session codec and the test IdP.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: t0} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testIdP signs responses with a key from testdata.
type testIdP struct {
	key      *rsa.PrivateKey
	cert     *x509.Certificate
	entityID string
	ssoURL   string
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

// harness is one SP with its own clock, IdP metadata file and logs.
type harness struct {
	t      testing.TB
	sp     *SP
	cfg    *config.Config
	idp    testIdP
	codec  *session.Codec
	clock  *testClock
	logs   *observer.ObservedLogs
	mdFile string
	keys   []session.KeyPair
}

type harnessOpts struct {
	config  func(*config.Config)
	options func(*Options)
	ssoURL  string
	noLoad  bool
}

func newHarness(t testing.TB, mutate func(*config.Config)) *harness {
	t.Helper()
	return newHarnessWith(t, harnessOpts{config: mutate})
}

func newHarnessWith(t testing.TB, ho harnessOpts) *harness {
	t.Helper()
	idp := loadIdP(t, "idp")
	if ho.ssoURL != "" {
		idp.ssoURL = ho.ssoURL
	}
	mdFile := filepath.Join(t.TempDir(), "idp-metadata.xml")
	if err := os.WriteFile(mdFile, idp.metadata(), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, _ := url.Parse(testPublic)
	cfg := &config.Config{
		Public: pub,
		SAML: config.SAML{
			IDPMetadataFile: mdFile,
			CertFile:        "testdata/sp.crt",
			KeyFile:         "testdata/sp.key",
			NameIDFormat:    "emailAddress",
			ClockSkew:       90 * time.Second,
			LoginWindow:     10 * time.Minute,
			MetadataRefresh: time.Hour,
			Attributes:      config.Attributes{User: testAttrUser, Email: "mail", Name: "displayName", Groups: "groups"},
		},
		Session: config.Session{CookieName: "portcullis", Lifetime: 8 * time.Hour},
		Server:  config.Server{ACSBodyLimit: 1 << 20},
	}
	if ho.config != nil {
		ho.config(cfg)
	}
	clock := newTestClock()
	keys, err := session.ParseKeys(session.GenerateKeys())
	if err != nil {
		t.Fatal(err)
	}
	codec, err := session.NewCodec(cfg.Session.CookieName, keys, cfg.Public.Scheme == "https", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	codec.SetClock(clock.Now)
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	opts := Options{
		Config:      cfg,
		Sessions:    codec,
		SessionKeys: keys,
		Logger:      log.Named("samlsp"),
		Audit:       log.Named("audit"),
		Now:         clock.Now,
	}
	if ho.options != nil {
		ho.options(&opts)
	}
	sp, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !ho.noLoad {
		if err := sp.LoadMetadata(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return &harness{t: t, sp: sp, cfg: cfg, idp: idp, codec: codec, clock: clock, logs: logs, mdFile: mdFile, keys: keys}
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
					Recipient:    h.sp.acsURL.String(),
					InResponseTo: requestID,
					NotOnOrAfter: now.Add(5 * time.Minute),
				},
			}},
		},
		Conditions: &saml.Conditions{
			NotBefore:            now.Add(-30 * time.Second),
			NotOnOrAfter:         now.Add(5 * time.Minute),
			AudienceRestrictions: []saml.AudienceRestriction{{Audience: saml.Audience{Value: h.sp.entityID}}},
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
		Destination:  h.sp.acsURL.String(),
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

// login is a started login as the browser and the IdP see it.
type login struct {
	requestID string
	relay     string
	cookie    *http.Cookie
	location  *url.URL
	authn     saml.AuthnRequest
	rec       *httptest.ResponseRecorder
}

// startLogin runs StartLogin for returnTo with the given cookies present.
func (h *harness) startLogin(returnTo string, present ...*http.Cookie) *login {
	h.t.Helper()
	req := httptest.NewRequest(http.MethodGet, testPublic+"/some/page", nil)
	for _, c := range present {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	rec := httptest.NewRecorder()
	h.sp.StartLogin(rec, req, returnTo)
	if rec.Code != http.StatusSeeOther {
		h.t.Fatalf("StartLogin: status %d, want 303", rec.Code)
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		h.t.Fatal(err)
	}
	l := &login{location: loc, rec: rec, relay: loc.Query().Get("RelayState")}
	l.authn = decodeAuthnRequest(h.t, loc.Query().Get("SAMLRequest"))
	l.requestID = l.authn.ID
	for _, c := range rec.Result().Cookies() {
		if c.Name == h.sp.trackingName(l.relay) {
			l.cookie = c
		}
	}
	if l.cookie == nil {
		h.t.Fatalf("StartLogin set no tracking cookie for relay state %q", l.relay)
	}
	return l
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

// postACS posts a SAMLResponse to the ACS as a browser would.
func (h *harness) postACS(samlResponse, relay string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	h.t.Helper()
	form := url.Values{"SAMLResponse": {samlResponse}}
	if relay != "" {
		form.Set("RelayState", relay)
	}
	return h.postForm(form, cookies...)
}

func (h *harness) postForm(form url.Values, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	h.t.Helper()
	req := httptest.NewRequest(http.MethodPost, testPublic+pathACS, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req = req.WithContext(web.WithRequestID(req.Context(), testReqID))
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	rec := httptest.NewRecorder()
	h.sp.ServeHTTP(rec, req)
	return rec
}

// complete runs a whole SP-initiated login with the response o describes
// (its requestID is filled in) and returns the ACS answer.
func (h *harness) complete(returnTo string, o respOpts) (*httptest.ResponseRecorder, *login) {
	h.t.Helper()
	l := h.startLogin(returnTo)
	o.requestID = l.requestID
	return h.postACS(h.makeResponse(o), l.relay, l.cookie), l
}

// session decodes the session cookie(s) an ACS answer set.
func (h *harness) session(rec *httptest.ResponseRecorder) *session.Session {
	h.t.Helper()
	req := httptest.NewRequest(http.MethodGet, testPublic+"/", nil)
	for _, c := range rec.Result().Cookies() {
		if h.codec.IsSessionCookie(c.Name) && c.MaxAge >= 0 {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
	s, err := h.codec.Read(req)
	if err != nil {
		h.t.Fatalf("no valid session cookie: %v", err)
	}
	return s
}

// auditEvents returns the login events in the audit log.
func (h *harness) auditEvents(event string) []observer.LoggedEntry {
	return h.logs.FilterLoggerName("audit").FilterField(zap.String("event", event)).AllUntimed()
}

// lastReason is the reason of the last login_failed event, or "".
func (h *harness) lastReason() string {
	ev := h.auditEvents("login_failed")
	if len(ev) == 0 {
		return ""
	}
	return ev[len(ev)-1].ContextMap()["reason"].(string)
}

// expectRefused checks a refused login: status, the public page with the
// request ID and no internals, no session cookie, and the audit reason.
func (h *harness) expectRefused(t testing.TB, rec *httptest.ResponseRecorder, status int, reason string) {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status %d, want %d (reason %q)", rec.Code, status, h.lastReason())
	}
	body := rec.Body.String()
	if !strings.Contains(body, titleFailed) || !strings.Contains(body, testReqID) {
		t.Errorf("failure page lacks the title or request ID:\n%s", body)
	}
	for _, leak := range []string{"saml", "Assertion", "InResponseTo", "signature"} {
		if strings.Contains(strings.ToLower(body), strings.ToLower(leak)) {
			t.Errorf("failure page mentions %q:\n%s", leak, body)
		}
	}
	for _, c := range rec.Result().Cookies() {
		if h.codec.IsSessionCookie(c.Name) && c.MaxAge >= 0 {
			t.Errorf("a refused login set session cookie %s", c.Name)
		}
	}
	audit := h.logs.FilterLoggerName("audit").AllUntimed()
	if len(audit) == 0 {
		t.Fatal("no audit event")
	}
	last := audit[len(audit)-1].ContextMap()
	if last["event"] != "login_failed" || last["reason"] != reason {
		t.Errorf("last audit event %v %v, want login_failed %q", last["event"], last["reason"], reason)
	}
	if last["request_id"] != testReqID {
		t.Errorf("audit request_id %v", last["request_id"])
	}
}

// expectAccepted checks a successful login and returns its session.
func (h *harness) expectAccepted(t testing.TB, rec *httptest.ResponseRecorder, location string) *session.Session {
	t.Helper()
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("status %d, want 303; audit reason %q", rec.Code, h.lastReason())
	}
	if got := rec.Header().Get("Location"); got != location {
		t.Errorf("Location %q, want %q", got, location)
	}
	return h.session(rec)
}

// clearedCookie reports whether rec expires the cookie named name.
func clearedCookie(rec *httptest.ResponseRecorder, name string) bool {
	for _, c := range rec.Result().Cookies() {
		if c.Name == name && c.MaxAge < 0 {
			return true
		}
	}
	return false
}

const dsigRSASHA256 = dsig.RSASHA256SignatureMethod

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func newRequest(method, target string) *http.Request {
	req := httptest.NewRequest(method, testPublic+target, nil)
	return req.WithContext(web.WithRequestID(req.Context(), testReqID))
}

func serve(h *harness, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.sp.ServeHTTP(rec, req)
	return rec
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
