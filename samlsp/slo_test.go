package samlsp

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/portcullis-sso/portcullis/internal/web"
)

// fakeEnder records the queries it is asked to end.
type fakeEnder struct {
	mu      sync.Mutex
	queries []EndQuery
	err     error
}

func (e *fakeEnder) EndSessions(_ context.Context, q EndQuery) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.queries = append(e.queries, q)
	return 1, e.err
}

func (e *fakeEnder) calls() []EndQuery {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]EndQuery(nil), e.queries...)
}

func newSLOHarness(t *testing.T, ender SessionEnder) *harness {
	t.Helper()
	return newHarnessWith(t, harnessOpts{options: func(o *Options) {
		if ender != nil {
			o.Ender = ender
		}
	}})
}

// logoutRequest is a valid LogoutRequest from the test IdP for alice's
// session _session1, at the harness's time.
func (h *harness) logoutRequest(mutate func(*saml.LogoutRequest)) *saml.LogoutRequest {
	lr := &saml.LogoutRequest{
		ID:           randomID(),
		Version:      "2.0",
		IssueInstant: h.clock.Now(),
		Destination:  testPublic + pathSLO,
		Issuer:       &saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: h.idp.entityID},
		NameID:       &saml.NameID{Format: string(saml.EmailAddressNameIDFormat), Value: "alice@example.com"},
		SessionIndex: &saml.SessionIndex{Value: "_session1"},
	}
	if mutate != nil {
		mutate(lr)
	}
	return lr
}

// signedXML is el with an enveloped signature by signer (nil: unsigned).
func signedXML(t *testing.T, el *etree.Element, signer *testIdP) []byte {
	t.Helper()
	if signer != nil {
		s, err := signer.signingContext(t).SignEnveloped(el)
		if err != nil {
			t.Fatal(err)
		}
		el = s
	}
	return elementBytes(t, el)
}

func sloRequest(method, target string, body io.Reader, contentType string) *http.Request {
	req := httptest.NewRequest(method, target, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req.WithContext(web.WithRequestID(req.Context(), testReqID))
}

// postLogout posts doc as param (SAMLRequest or SAMLResponse) with the HTTP-POST binding.
func (h *harness) postLogout(param string, doc []byte, relay string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	form := url.Values{param: {base64.StdEncoding.EncodeToString(doc)}}
	if relay != "" {
		form.Set("RelayState", relay)
	}
	req := sloRequest(http.MethodPost, testPublic+pathSLO, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return serve(h, req)
}

// redirectLogout sends doc with the HTTP-Redirect binding, signing the
// query with signer's key (nil: unsigned).
func (h *harness) redirectLogout(t *testing.T, doc []byte, relay string, signer *testIdP) *httptest.ResponseRecorder {
	t.Helper()
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	_, _ = fw.Write(doc)
	_ = fw.Close()
	q := "SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relay != "" {
		q += "&RelayState=" + url.QueryEscape(relay)
	}
	if signer != nil {
		q += "&SigAlg=" + url.QueryEscape("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
		digest := sha256.Sum256([]byte(q))
		sig, err := rsa.SignPKCS1v15(nil, signer.key, crypto.SHA256, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	}
	return serve(h, sloRequest(http.MethodGet, testPublic+pathSLO+"?"+q, nil, ""))
}

func (h *harness) soapLogout(t *testing.T, doc []byte) *httptest.ResponseRecorder {
	t.Helper()
	env := `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>` +
		string(doc) + `</soapenv:Body></soapenv:Envelope>`
	return serve(h, sloRequest(http.MethodPost, testPublic+pathSLO, strings.NewReader(env), "text/xml"))
}

// redirectedLogoutResponse decodes the LogoutResponse of an HTTP-Redirect
// answer to the IdP, checking the SP's query signature.
func (h *harness) redirectedLogoutResponse(t *testing.T, rec *httptest.ResponseRecorder) saml.LogoutResponse {
	t.Helper()
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("status %d, want 303 to the IdP; last reason %q", rec.Code, h.lastReason())
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != testSLO {
		t.Fatalf("Location %q, want the IdP's SLO service", rec.Header().Get("Location"))
	}
	verifyRedirectSignature(t, loc.RawQuery, h.sp.cert)
	var lr saml.LogoutResponse
	if err := xml.Unmarshal(inflate(t, loc.Query().Get("SAMLResponse")), &lr); err != nil {
		t.Fatal(err)
	}
	return lr
}

func inflate(t *testing.T, v string) []byte {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func partialOf(lr saml.LogoutResponse) bool {
	return lr.Status.StatusCode.StatusCode != nil && lr.Status.StatusCode.StatusCode.Value == saml.StatusPartialLogout
}

func TestSLO_IdPLogoutRequestEndsThatIdPsSessionsAndAnswersSigned(t *testing.T) {
	t.Parallel()
	for _, binding := range []string{"redirect", "post"} {
		t.Run(binding, func(t *testing.T) {
			t.Parallel()
			ender := &fakeEnder{}
			h := newSLOHarness(t, ender)
			idp := h.idp
			lr := h.logoutRequest(nil)
			var rec *httptest.ResponseRecorder
			if binding == "redirect" {
				rec = h.redirectLogout(t, elementBytes(t, lr.Element()), "relay-1", &idp)
			} else {
				rec = h.postLogout("SAMLRequest", signedXML(t, lr.Element(), &idp), "relay-1")
			}
			var resp saml.LogoutResponse
			if binding == "redirect" {
				resp = h.redirectedLogoutResponse(t, rec)
			} else {
				resp = postedLogoutResponse(t, rec)
			}
			if resp.InResponseTo != lr.ID || resp.Status.StatusCode.Value != saml.StatusSuccess || partialOf(resp) {
				t.Errorf("response InResponseTo %q status %+v, want %q Success", resp.InResponseTo, resp.Status.StatusCode, lr.ID)
			}
			calls := ender.calls()
			if len(calls) != 1 || calls[0].IdP != testIDPID || calls[0].NameID != "alice@example.com" ||
				calls[0].Reason != "idp_logout" || len(calls[0].SessionIndexes) != 1 || calls[0].SessionIndexes[0] != "_session1" {
				t.Errorf("sessions ended: %+v", calls)
			}
		})
	}
}

// postedLogoutResponse reads the auto-submitting form of an HTTP-POST
// answer: its signed LogoutResponse and the CSP that lets it submit.
func postedLogoutResponse(t *testing.T, rec *httptest.ResponseRecorder) saml.LogoutResponse {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200 with a form", rec.Code)
	}
	body := rec.Body.String()
	csp := rec.Header().Get("Content-Security-Policy")
	if !strings.HasPrefix(csp, "default-src 'none'; script-src 'nonce-") || strings.Contains(csp, "form-action") {
		t.Errorf("CSP %q", csp)
	}
	if !strings.Contains(body, `action="`+testSLO+`"`) {
		t.Fatalf("no form to the IdP:\n%s", body)
	}
	var lr saml.LogoutResponse
	postedSignedXML(t, body, "SAMLResponse", &lr)
	return lr
}

// TestSLO_RefusedLogoutRequestsEndNothing: each refusal ends no session,
// answers with a page (never a signed LogoutResponse) and audits its reason.
func TestSLO_RefusedLogoutRequestsEndNothing(t *testing.T) {
	t.Parallel()
	other := loadIdP(t, "idp2")
	tests := []struct {
		name   string
		send   func(t *testing.T, h *harness) *httptest.ResponseRecorder
		status int
		reason string
	}{
		{"unsigned POST", func(t *testing.T, h *harness) *httptest.ResponseRecorder {
			return h.postLogout("SAMLRequest", signedXML(t, h.logoutRequest(nil).Element(), nil), "")
		}, http.StatusForbidden, reasonUnsigned},
		{"unsigned redirect", func(t *testing.T, h *harness) *httptest.ResponseRecorder {
			return h.redirectLogout(t, elementBytes(t, h.logoutRequest(nil).Element()), "", nil)
		}, http.StatusForbidden, reasonUnsigned},
		{"signed by another key (forged)", func(t *testing.T, h *harness) *httptest.ResponseRecorder {
			return h.postLogout("SAMLRequest", signedXML(t, h.logoutRequest(nil).Element(), &other), "")
		}, http.StatusForbidden, reasonInvalidSignature},
		{"redirect signed by another key (forged)", func(t *testing.T, h *harness) *httptest.ResponseRecorder {
			return h.redirectLogout(t, elementBytes(t, h.logoutRequest(nil).Element()), "", &other)
		}, http.StatusForbidden, reasonInvalidSignature},
		{"another issuer", func(t *testing.T, h *harness) *httptest.ResponseRecorder {
			lr := h.logoutRequest(func(lr *saml.LogoutRequest) { lr.Issuer.Value = "https://evil.example.com" })
			return h.postLogout("SAMLRequest", signedXML(t, lr.Element(), &h.idp), "")
		}, http.StatusForbidden, reasonIssuer},
		{"another destination", func(t *testing.T, h *harness) *httptest.ResponseRecorder {
			lr := h.logoutRequest(func(lr *saml.LogoutRequest) { lr.Destination = "https://other.example.com/saml/slo" })
			return h.postLogout("SAMLRequest", signedXML(t, lr.Element(), &h.idp), "")
		}, http.StatusForbidden, reasonDestination},
		{"too old", func(t *testing.T, h *harness) *httptest.ResponseRecorder {
			lr := h.logoutRequest(func(lr *saml.LogoutRequest) { lr.IssueInstant = h.clock.Now().Add(-time.Hour) })
			return h.postLogout("SAMLRequest", signedXML(t, lr.Element(), &h.idp), "")
		}, http.StatusForbidden, reasonExpired},
		{"DOCTYPE", func(t *testing.T, h *harness) *httptest.ResponseRecorder {
			doc := append([]byte(`<!DOCTYPE x [<!ENTITY a "b">]>`), signedXML(t, h.logoutRequest(nil).Element(), &h.idp)...)
			return h.postLogout("SAMLRequest", doc, "")
		}, http.StatusBadRequest, reasonDoctype},
		{"too large", func(t *testing.T, h *harness) *httptest.ResponseRecorder {
			return h.postLogout("SAMLRequest", bytes.Repeat([]byte("<a>"), maxLogoutMessage), "")
		}, http.StatusRequestEntityTooLarge, reasonTooLarge},
		{"not base64", func(t *testing.T, h *harness) *httptest.ResponseRecorder {
			req := sloRequest(http.MethodPost, testPublic+pathSLO, strings.NewReader("SAMLRequest=%%%"), "application/x-www-form-urlencoded")
			return serve(h, req)
		}, http.StatusBadRequest, reasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ender := &fakeEnder{}
			h := newSLOHarness(t, ender)
			rec := tc.send(t, h)
			h.expectLogoutRefused(t, rec, tc.status, tc.reason)
			if calls := ender.calls(); len(calls) != 0 {
				t.Errorf("a refused request ended sessions: %+v", calls)
			}
		})
	}
}

func (h *harness) expectLogoutRefused(t *testing.T, rec *httptest.ResponseRecorder, status int, reason string) {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status %d, want %d", rec.Code, status)
	}
	if rec.Header().Get("Location") != "" || strings.Contains(rec.Body.String(), "SAMLResponse") {
		t.Error("a refused logout request was answered with a LogoutResponse")
	}
	if !strings.Contains(rec.Body.String(), testReqID) {
		t.Error("refusal page lacks the request ID")
	}
	ev := h.auditEvents("logout_failed")
	if len(ev) == 0 || ev[len(ev)-1].ContextMap()["reason"] != reason {
		t.Errorf("logout_failed audit %+v, want reason %q", ev, reason)
	}
}

func TestSLO_ReplayedLogoutRequestIsRefused(t *testing.T) {
	t.Parallel()
	ender := &fakeEnder{}
	h := newSLOHarness(t, ender)
	doc := signedXML(t, h.logoutRequest(nil).Element(), &h.idp)
	if rec := h.postLogout("SAMLRequest", doc, ""); rec.Code != http.StatusOK {
		t.Fatalf("first: status %d", rec.Code)
	}
	rec := h.postLogout("SAMLRequest", doc, "")
	h.expectLogoutRefused(t, rec, http.StatusForbidden, reasonReplay)
	if n := len(ender.calls()); n != 1 {
		t.Errorf("sessions ended %d times, want once", n)
	}
}

func TestSLO_PartialLogoutWhenSessionsCannotBeEnded(t *testing.T) {
	t.Parallel()
	for name, ender := range map[string]SessionEnder{
		"store fails": &fakeEnder{err: errors.New("store down")},
		"no store":    nil,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newSLOHarness(t, ender)
			idp := h.idp
			resp := h.redirectedLogoutResponse(t, h.redirectLogout(t, elementBytes(t, h.logoutRequest(nil).Element()), "", &idp))
			if resp.Status.StatusCode.Value != saml.StatusSuccess || !partialOf(resp) {
				t.Errorf("status %+v, want Success/PartialLogout", resp.Status.StatusCode)
			}
		})
	}
}

// TestSLO_FrontChannelClearsThisBrowsersSession: the browser carrying the
// IdP's LogoutRequest loses its session cookie when the request names its
// session, and that session is ended even if no store had recorded it.
func TestSLO_FrontChannelClearsThisBrowsersSession(t *testing.T) {
	t.Parallel()
	ender := &fakeEnder{}
	h := newSLOHarness(t, ender)
	signedIn, _ := h.complete("/", respOpts{})
	s := h.expectAccepted(t, signedIn, "/")
	rec := h.postLogout("SAMLRequest", signedXML(t, h.logoutRequest(nil).Element(), &h.idp), "", liveCookies(signedIn)...)
	if rec.Code != http.StatusOK || !clearedCookie(rec, "portcullis") {
		t.Fatalf("status %d; session cookie cleared %v", rec.Code, clearedCookie(rec, "portcullis"))
	}
	if calls := ender.calls(); len(calls) != 1 || calls[0].Session == nil || calls[0].Session.ID != s.ID {
		t.Errorf("ended %+v, want this browser's session %s included", calls, s.ID)
	}
}

func liveCookies(rec *httptest.ResponseRecorder) []*http.Cookie {
	var out []*http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge >= 0 {
			out = append(out, c)
		}
	}
	return out
}

func TestSLO_SOAPBackChannel(t *testing.T) {
	t.Parallel()
	ender := &fakeEnder{}
	h := newSLOHarness(t, ender)
	lr := h.logoutRequest(func(lr *saml.LogoutRequest) { lr.Destination = "" })
	rec := h.soapLogout(t, signedXML(t, lr.Element(), &h.idp))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "LogoutResponse") ||
		!strings.Contains(rec.Body.String(), saml.StatusSuccess) || !strings.Contains(rec.Body.String(), "SignatureValue") {
		t.Fatalf("SOAP answer %d:\n%s", rec.Code, rec.Body.String())
	}
	if calls := ender.calls(); len(calls) != 1 || calls[0].NameID != "alice@example.com" {
		t.Errorf("ended %+v", calls)
	}
	// Unsigned, then replayed: SOAP faults, nothing more ended.
	rec = h.soapLogout(t, signedXML(t, h.logoutRequest(nil).Element(), nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "Fault") {
		t.Errorf("unsigned SOAP request: %d\n%s", rec.Code, rec.Body.String())
	}
	rec = h.soapLogout(t, signedXML(t, lr.Element(), &h.idp))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("replayed SOAP request: %d", rec.Code)
	}
	if n := len(ender.calls()); n != 1 {
		t.Errorf("sessions ended %d times, want once", n)
	}
}

// TestLogout_SPInitiatedSendsSignedLogoutRequestAndReturns: /saml/logout
// ends the session, sends the browser to the IdP with a signed
// LogoutRequest for the session's NameID and SessionIndex, and the IdP's
// signed LogoutResponse brings it to rd, once.
func TestLogout_SPInitiatedSendsSignedLogoutRequestAndReturns(t *testing.T) {
	t.Parallel()
	ender := &fakeEnder{}
	h := newSLOHarness(t, ender)
	signedIn, _ := h.complete("/", respOpts{})
	s := h.expectAccepted(t, signedIn, "/")
	req := sloRequest(http.MethodGet, testPublic+"/saml/logout?rd=/bye", nil, "")
	for _, c := range liveCookies(signedIn) {
		req.AddCookie(c)
	}
	rec := serve(h, req)
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusSeeOther || loc == nil || loc.Scheme+"://"+loc.Host+loc.Path != testSLO {
		t.Fatalf("status %d Location %q, want the IdP's SLO", rec.Code, rec.Header().Get("Location"))
	}
	if !clearedCookie(rec, "portcullis") {
		t.Error("session cookie not cleared")
	}
	if calls := ender.calls(); len(calls) != 1 || calls[0].Reason != "logout" || calls[0].Session.ID != s.ID {
		t.Errorf("ended %+v, want this session for logout", calls)
	}
	verifyRedirectSignature(t, loc.RawQuery, h.sp.cert)
	var sent saml.LogoutRequest
	if err := xml.Unmarshal(inflate(t, loc.Query().Get("SAMLRequest")), &sent); err != nil {
		t.Fatal(err)
	}
	if sent.NameID == nil || sent.NameID.Value != "alice@example.com" || sent.SessionIndex == nil || sent.SessionIndex.Value != "_session1" {
		t.Errorf("LogoutRequest NameID %+v SessionIndex %+v", sent.NameID, sent.SessionIndex)
	}
	relay := loc.Query().Get("RelayState")
	var track *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == h.sp.trackingName(relay) {
			track = c
		}
	}
	if track == nil {
		t.Fatal("no tracking cookie for the logout")
	}
	answer := func(inResponseTo string, signer *testIdP, cookies ...*http.Cookie) *httptest.ResponseRecorder {
		resp := &saml.LogoutResponse{ID: randomID(), InResponseTo: inResponseTo, Version: "2.0", IssueInstant: h.clock.Now(),
			Destination: testPublic + pathSLO, Issuer: &saml.Issuer{Value: h.idp.entityID},
			Status: saml.Status{StatusCode: saml.StatusCode{Value: saml.StatusSuccess}}}
		return h.postLogout("SAMLResponse", signedXML(t, resp.Element(), signer), relay, cookies...)
	}
	other := loadIdP(t, "idp2")
	h.expectLogoutRefused(t, answer(sent.ID, &other, track), http.StatusForbidden, reasonInvalidSignature)
	h.expectLogoutRefused(t, answer(sent.ID, &h.idp), http.StatusForbidden, reasonNoTracking)
	h.expectLogoutRefused(t, answer("id-other", &h.idp, track), http.StatusForbidden, reasonInResponseTo)
	rec = answer(sent.ID, &h.idp, track)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/bye" {
		t.Fatalf("LogoutResponse: status %d Location %q, want 303 /bye (reason %q)", rec.Code, rec.Header().Get("Location"), h.lastReason())
	}
	h.expectLogoutRefused(t, answer(sent.ID, &h.idp, track), http.StatusForbidden, reasonReplay)
}

// TestACS_SignInAsAnotherUserExpiresTheAppsCookies: with
// session.expireUpstreamCookies, the app's JSESSIONID goes when someone
// else signs in on this browser (or no session continues), and stays when
// the same user signs in again; a logout expires it too.
func TestACS_SignInAsAnotherUserExpiresTheAppsCookies(t *testing.T) {
	t.Parallel()
	h := newSLOHarness(t, &fakeEnder{})
	h.codec.SetUpstreamCookies([]string{"JSESSIONID"}, []string{"/"})
	app := &http.Cookie{Name: "JSESSIONID", Value: "app-session"}
	signIn := func(user string, present ...*http.Cookie) *httptest.ResponseRecorder {
		l := h.startLogin("/")
		a := respOpts{requestID: l.requestID, assertion: func(a *saml.Assertion) {
			a.AttributeStatements[0].Attributes[0] = attribute("uid", "", user)
		}}
		return h.postACS(h.makeResponse(a), l.relay, append(present, l.cookie)...)
	}
	first := signIn("alice", app)
	if !clearedCookie(first, "JSESSIONID") {
		t.Error("a sign-in continuing no session kept the app's cookie")
	}
	again := signIn("alice", append(liveCookies(first), app)...)
	if clearedCookie(again, "JSESSIONID") {
		t.Error("the same user's sign-in expired the app's cookie")
	}
	other := signIn("mallory", append(liveCookies(first), app)...)
	if !clearedCookie(other, "JSESSIONID") {
		t.Error("another user's sign-in kept the previous user's app cookie")
	}
	req := sloRequest(http.MethodGet, testPublic+"/saml/logout", nil, "")
	for _, c := range append(liveCookies(other), app) {
		req.AddCookie(c)
	}
	if rec := serve(h, req); !clearedCookie(rec, "JSESSIONID") {
		t.Error("logout kept the app's cookie")
	}
}
