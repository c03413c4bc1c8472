package samlsp

import (
	"encoding/base64"
	"encoding/xml"
	"html"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/crewjam/saml"
)

// TestLogout_SPInitiatedByPOSTWhenTheIdPHasOnlyThat: an IdP whose metadata
// has only an HTTP-POST SingleLogoutService gets the signed LogoutRequest
// by a page whose form posts it there — by its one script, allowed by a
// nonce in a strict CSP, or by its button without JavaScript — and its
// answer brings the browser to rd as with HTTP-Redirect.
func TestLogout_SPInitiatedByPOSTWhenTheIdPHasOnlyThat(t *testing.T) {
	t.Parallel()
	ender := &fakeEnder{}
	h := newHarnessWith(t, harnessOpts{postSLO: true, options: func(o *Options) { o.Ender = ender }})
	signedIn, _ := h.complete("/", respOpts{})
	s := h.expectAccepted(t, signedIn, "/")
	req := sloRequest(http.MethodGet, testPublic+"/saml/logout?rd=/bye", nil, "")
	for _, c := range liveCookies(signedIn) {
		req.AddCookie(c)
	}
	rec := serve(h, req)
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("status %d %q, want 200 with the form page", rec.Code, rec.Header().Get("Content-Type"))
	}
	if calls := ender.calls(); len(calls) != 1 || calls[0].Reason != "logout" || calls[0].Session.ID != s.ID {
		t.Errorf("ended %+v, want this session for logout", calls)
	}
	if !clearedCookie(rec, "portcullis") {
		t.Error("session cookie not cleared")
	}
	body := rec.Body.String()
	csp := rec.Header().Get("Content-Security-Policy")
	nonce := regexp.MustCompile(`script-src 'nonce-([A-Za-z0-9_-]+)'`).FindStringSubmatch(csp)
	// No form-action: Chromium would apply it to the IdP's redirects after
	// the post, on to its other SPs and back here.
	if nonce == nil || csp != "default-src 'none'; script-src 'nonce-"+nonce[1]+"'" ||
		!strings.Contains(body, `<script nonce="`+nonce[1]+`">`) || strings.Count(body, "<script") != 1 {
		t.Fatalf("CSP %q and page:\n%s\nwant default-src 'none' and the one script by nonce", csp, body)
	}
	if !strings.Contains(body, `action="`+testSLO+`"`) || !strings.Contains(body, `type="submit"`) {
		t.Fatalf("no form with a button posting to the IdP:\n%s", body)
	}
	var sent saml.LogoutRequest
	postedSignedXML(t, body, "SAMLRequest", &sent)
	if sent.Destination != testSLO || sent.NameID == nil || sent.NameID.Value != "alice@example.com" ||
		sent.SessionIndex == nil || sent.SessionIndex.Value != "_session1" {
		t.Errorf("LogoutRequest Destination %q NameID %+v SessionIndex %+v", sent.Destination, sent.NameID, sent.SessionIndex)
	}
	relay := formField(t, body, "RelayState")
	var track *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == h.sp.trackingName(relay) {
			track = c
		}
	}
	if track == nil {
		t.Fatal("no tracking cookie for the logout")
	}
	answer := func(cookies ...*http.Cookie) *httptest.ResponseRecorder {
		resp := &saml.LogoutResponse{ID: randomID(), InResponseTo: sent.ID, Version: "2.0", IssueInstant: h.clock.Now(),
			Destination: testPublic + pathSLO, Issuer: &saml.Issuer{Value: h.idp.entityID},
			Status: saml.Status{StatusCode: saml.StatusCode{Value: saml.StatusSuccess}}}
		return h.postLogout("SAMLResponse", signedXML(t, resp.Element(), &h.idp), relay, cookies...)
	}
	rec = answer(track)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/bye" {
		t.Fatalf("LogoutResponse: status %d Location %q, want 303 /bye (reason %q)", rec.Code, rec.Header().Get("Location"), h.lastReason())
	}
	h.expectLogoutRefused(t, answer(track), http.StatusForbidden, reasonReplay)
}

// formField is the value of the hidden input name in an HTTP-POST page,
// unescaped.
func formField(t *testing.T, body, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in the form:\n%s", name, body)
	}
	return html.UnescapeString(m[1])
}

// postedSignedXML decodes the SAML message in the page's form field name,
// checks that it is signed and unmarshals it into v.
func postedSignedXML(t *testing.T, body, name string, v any) {
	t.Helper()
	doc, err := base64.StdEncoding.DecodeString(formField(t, body, name))
	if err != nil {
		t.Fatal(err)
	}
	if !hasDSigSignature(doc) {
		t.Errorf("the posted %s is not signed", name)
	}
	if err := xml.Unmarshal(doc, v); err != nil {
		t.Fatal(err)
	}
}
