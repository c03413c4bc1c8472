package samlsp

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// FuzzACS posts arbitrary SAMLResponse values for a started login. No
// panic may escape, and only a response the test IdP signed for alice may
// ever sign anyone in.
func FuzzACS(f *testing.F) {
	h := newHarness(f, nil)
	l := h.startLogin("/app")
	id := l.requestID
	f.Add(h.makeResponse(respOpts{requestID: id}))
	f.Add(h.makeResponse(respOpts{requestID: id, signResponse: true, unsignedAssert: true}))
	f.Add(h.makeResponse(respOpts{requestID: id, unsignedAssert: true}))
	f.Add(h.makeResponse(respOpts{requestID: id, tamper: func(el *etree.Element) {
		el.FindElement("//NameID").SetText("mallory@example.com")
	}}))
	f.Add(h.makeResponse(respOpts{requestID: id, assertion: func(a *saml.Assertion) { a.Subject, a.Conditions = nil, nil }}))
	for _, tc := range wrappingCases {
		f.Add(encodeElement(f, tc.build(h, id)))
	}
	for _, s := range []string{
		"",
		"not base64",
		b64("<x/>"),
		b64(`<!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>`),
		b64(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"/></samlp:Response>`),
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, samlResponse string) {
		form := url.Values{"SAMLResponse": {samlResponse}, "RelayState": {l.relay}}
		req := httptest.NewRequest(http.MethodPost, testPublic+pathACS, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: l.cookie.Name, Value: l.cookie.Value})
		rec := httptest.NewRecorder()
		h.sp.ServeHTTP(rec, req) // a panic here fails the fuzz run

		switch rec.Code {
		case http.StatusSeeOther:
		case http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge:
			return
		default:
			t.Fatalf("status %d", rec.Code)
		}
		raw, _ := base64.StdEncoding.DecodeString(samlResponse)
		if !strings.Contains(string(raw), "SignatureValue") {
			t.Fatalf("an unsigned response signed someone in")
		}
		sreq := httptest.NewRequest(http.MethodGet, testPublic+"/", nil)
		for _, c := range rec.Result().Cookies() {
			if h.codec.IsSessionCookie(c.Name) && c.MaxAge >= 0 {
				sreq.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
			}
		}
		s, err := h.codec.Read(sreq)
		if err != nil {
			t.Fatalf("303 without a session: %v", err)
		}
		if s.Principal.User != "alice" {
			t.Fatalf("signed in as %+v", s.Principal)
		}
	})
}
