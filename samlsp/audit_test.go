package samlsp

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// Neither log ever holds a SAMLResponse, a cookie value or any XML of the
// response, on success or on any kind of failure.
func TestLogs_NeverHoldResponsesOrCookies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	var secrets []string
	post := func(resp string, l *login, cookies ...*http.Cookie) {
		rec := h.postACS(resp, l.relay, cookies...)
		secrets = append(secrets, resp)
		for _, c := range append(cookies, rec.Result().Cookies()...) {
			if c.Value != "" {
				secrets = append(secrets, c.Value)
			}
		}
	}

	l := h.startLogin("/")
	ok := h.makeResponse(respOpts{requestID: l.requestID})
	post(ok, l, l.cookie)
	post(ok, l, l.cookie) // replay

	l = h.startLogin("/")
	post(h.makeResponse(respOpts{requestID: l.requestID, tamper: func(el *etree.Element) {
		el.FindElement("//NameID").SetText("mallory@example.com")
	}}), l, l.cookie)

	l = h.startLogin("/")
	post(encodeElement(t, wrappingCases[0].build(h, l.requestID)), l, l.cookie)

	l = h.startLogin("/")
	post(b64(`<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>`), l, l.cookie)

	l = h.startLogin("/")
	post(h.makeResponse(respOpts{requestID: l.requestID, assertion: func(a *saml.Assertion) {
		a.Conditions.AudienceRestrictions[0].Audience.Value = "https://other.example.com"
	}}), l, l.cookie)

	l = h.startLogin("/")
	h.clock.Advance(11 * time.Minute)
	post(h.makeResponse(respOpts{requestID: l.requestID}), l, l.cookie)

	if h.logs.Len() < 7 {
		t.Fatalf("only %d log entries; the scenario did not run", h.logs.Len())
	}
	for _, e := range h.logs.All() {
		text := e.Message + " " + fmt.Sprint(e.ContextMap())
		for _, s := range secrets {
			if leaked := sharedChunk(text, s, 16); leaked != "" {
				t.Errorf("%s log %q holds %q from a response or cookie", e.LoggerName, e.Message, leaked)
			}
		}
		for _, frag := range []string{"<saml", "<ds:", "SignatureValue", "X509Certificate"} {
			if strings.Contains(text, frag) {
				t.Errorf("%s log %q holds XML (%s)", e.LoggerName, e.Message, frag)
			}
		}
	}
}

// sharedChunk returns a chunk of n bytes of secret that occurs in text.
func sharedChunk(text, secret string, n int) string {
	for i := 0; i+n <= len(secret); i += n / 2 {
		if chunk := secret[i : i+n]; strings.Contains(text, chunk) {
			return chunk
		}
	}
	return ""
}
