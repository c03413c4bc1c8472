package samlsp

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/web"
)

// The whole login through real HTTP: a TLS front (so Secure cookies
// behave) with the SP under /saml/ and an app that starts a login when
// there is no session, a test IdP on its own origin, and a browser-like
// client with a cookie jar.
func TestLogin_RoundTripOverTLS(t *testing.T) {
	t.Parallel()
	var h *harness
	idpSrv := httptest.NewServer(nil)
	t.Cleanup(idpSrv.Close)
	front := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(web.WithRequestID(r.Context(), testReqID))
		if strings.HasPrefix(r.URL.Path, "/saml/") {
			h.sp.ServeHTTP(w, r)
			return
		}
		s, err := h.codec.Read(r)
		if err != nil {
			h.sp.StartLogin(w, r, r.URL.RequestURI())
			return
		}
		_ = json.NewEncoder(w).Encode(s.Principal)
	}))
	t.Cleanup(front.Close)
	pub, _ := url.Parse(front.URL)
	h = newHarnessWith(t, harnessOpts{
		ssoURL: idpSrv.URL + "/sso",
		config: func(c *config.Config) { c.Public = pub },
	})
	spCert, err := parseCertificate(mustRead(t, "testdata/sp.crt"))
	if err != nil {
		t.Fatal(err)
	}

	idpSrv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if got := verifyRedirectSignature(t, r.URL.RawQuery, spCert); got != dsigRSASHA256 {
			t.Errorf("SigAlg %q, want %q", got, dsigRSASHA256)
		}
		ar := decodeAuthnRequest(t, q.Get("SAMLRequest"))
		acs := front.URL + "/saml/acs"
		checks := []struct{ what, got, want string }{
			{"Destination", ar.Destination, idpSrv.URL + "/sso"},
			{"AssertionConsumerServiceURL", ar.AssertionConsumerServiceURL, acs},
			{"ProtocolBinding", ar.ProtocolBinding, saml.HTTPPostBinding},
			{"Issuer", ar.Issuer.Value, front.URL + "/saml/metadata"},
			{"NameIDPolicy Format", *ar.NameIDPolicy.Format, string(saml.EmailAddressNameIDFormat)},
			{"IssueInstant", ar.IssueInstant.UTC().Format(time.RFC3339), t0.Format(time.RFC3339)},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("AuthnRequest %s %q, want %q", c.what, c.got, c.want)
			}
		}
		if strings.Contains(r.URL.RawQuery, "reports") {
			t.Errorf("the return path reached the IdP: %s", r.URL.RawQuery)
		}
		resp := h.makeResponse(respOpts{requestID: ar.ID})
		fmt.Fprintf(w, `<form method="post" action="%s"><input type="hidden" name="SAMLResponse" value="%s"><input type="hidden" name="RelayState" value="%s"></form>`,
			html.EscapeString(ar.AssertionConsumerServiceURL), resp, html.EscapeString(q.Get("RelayState")))
	})

	jar, _ := cookiejar.New(nil)
	client := front.Client()
	client.Jar = jar
	res, err := client.Get(front.URL + "/reports/q3?sort=desc")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.Request.URL.Host != mustParse(t, idpSrv.URL).Host {
		t.Fatalf("not sent to the IdP; ended at %s:\n%s", res.Request.URL, page)
	}
	form := regexp.MustCompile(`action="([^"]*)".*name="SAMLResponse" value="([^"]*)".*name="RelayState" value="([^"]*)"`).FindStringSubmatch(string(page))
	if form == nil {
		t.Fatalf("IdP page has no form:\n%s", page)
	}
	tracking := 0
	for _, c := range jar.Cookies(pub) {
		if strings.HasPrefix(c.Name, TrackingCookiePrefix("portcullis")) {
			tracking++
		}
	}
	if tracking != 1 {
		t.Errorf("%d tracking cookies in the jar before the ACS, want 1", tracking)
	}

	res, err = client.PostForm(html.UnescapeString(form[1]), url.Values{
		"SAMLResponse": {html.UnescapeString(form[2])},
		"RelayState":   {html.UnescapeString(form[3])},
	})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Request.URL.RequestURI() != "/reports/q3?sort=desc" {
		t.Fatalf("after the ACS: %d at %s (audit reason %q):\n%s", res.StatusCode, res.Request.URL, h.lastReason(), body)
	}
	var got identity.Principal
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("app answer %q: %v", body, err)
	}
	if diff := cmp.Diff(alice, got); diff != "" {
		t.Errorf("principal the app saw (-want +got):\n%s", diff)
	}
	for _, c := range jar.Cookies(pub) {
		if strings.HasPrefix(c.Name, TrackingCookiePrefix("portcullis")) {
			t.Errorf("tracking cookie %s still in the jar after the ACS", c.Name)
		}
	}
}

func TestStartLogin_NameIDPolicy(t *testing.T) {
	t.Parallel()
	tests := map[string]saml.NameIDFormat{
		"emailAddress": saml.EmailAddressNameIDFormat,
		"persistent":   saml.PersistentNameIDFormat,
		"transient":    saml.TransientNameIDFormat,
		"unspecified":  saml.UnspecifiedNameIDFormat,
		"":             saml.EmailAddressNameIDFormat,
	}
	for format, want := range tests {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(c *config.Config) { c.SAML.NameIDFormat = format })
			l := h.startLogin("/")
			if l.authn.NameIDPolicy == nil || l.authn.NameIDPolicy.Format == nil || *l.authn.NameIDPolicy.Format != string(want) {
				t.Errorf("NameIDPolicy %+v, want Format %s", l.authn.NameIDPolicy, want)
			}
		})
	}
	if _, err := nameIDFormat("email"); err == nil {
		t.Error("an unknown NameID format was accepted")
	}
}

func TestStartLogin_SignedRequestAndRelayState(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	l := h.startLogin("/reports/q3?x=1")
	spCert, err := parseCertificate(mustRead(t, "testdata/sp.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if got := verifyRedirectSignature(t, l.location.RawQuery, spCert); got != dsigRSASHA256 {
		t.Errorf("SigAlg %q, want RSA-SHA256", got)
	}
	if l.location.Scheme+"://"+l.location.Host+l.location.Path != testSSO {
		t.Errorf("sent to %s, want %s", l.location, testSSO)
	}
	if !validTrackingID(l.relay) || strings.Contains(l.relay, "reports") {
		t.Errorf("RelayState %q is not a tracking ID", l.relay)
	}
	if l.authn.Signature != nil {
		t.Error("HTTP-Redirect AuthnRequest carries an enveloped signature")
	}
	if got := l.rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q", got)
	}
	// Each login is a new request with a new tracking cookie.
	l2 := h.startLogin("/")
	if l2.requestID == l.requestID || l2.relay == l.relay {
		t.Error("two logins share a request ID or tracking ID")
	}
}

func TestStartLogin_NotReady(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, harnessOpts{noLoad: true})
	if h.sp.Ready() == nil {
		t.Fatal("Ready before metadata was loaded")
	}
	rec := httptest.NewRecorder()
	h.sp.StartLogin(rec, newRequest(http.MethodGet, "/app"), "/app")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), titleNotReady) {
		t.Errorf("status %d:\n%s", rec.Code, rec.Body)
	}
	if len(rec.Result().Cookies()) != 0 {
		t.Error("a tracking cookie was set without metadata")
	}
	rec = serve(h, newRequest(http.MethodGet, "/saml/login?rd=/x"))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("/saml/login: status %d", rec.Code)
	}
}

func TestServeHTTP_Routes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	tests := []struct {
		method, target string
		status         int
		allow          string
	}{
		{http.MethodGet, "/saml/metadata", http.StatusOK, ""},
		{http.MethodHead, "/saml/metadata", http.StatusOK, ""},
		{http.MethodPost, "/saml/metadata", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodGet, "/saml/login?rd=/x", http.StatusSeeOther, ""},
		{http.MethodPost, "/saml/login", http.StatusSeeOther, ""}, // the identifier-first form's; one IdP: straight there
		{http.MethodPut, "/saml/login", http.StatusMethodNotAllowed, "GET, POST"},
		{http.MethodGet, "/saml/acs", http.StatusMethodNotAllowed, "POST"},
		{http.MethodGet, "/saml/logout", http.StatusSeeOther, ""},
		{http.MethodPost, "/saml/logout", http.StatusSeeOther, ""},
		{http.MethodDelete, "/saml/logout", http.StatusMethodNotAllowed, "GET, POST"},
		{http.MethodGet, "/saml/slo", http.StatusBadRequest, ""}, // no logout message
		{http.MethodPut, "/saml/slo", http.StatusMethodNotAllowed, "GET, POST"},
		{http.MethodGet, "/saml/slo/", http.StatusNotFound, ""},
		{http.MethodGet, "/saml/", http.StatusNotFound, ""},
		{http.MethodGet, "/saml/metadata/", http.StatusNotFound, ""},
	}
	for _, tc := range tests {
		rec := serve(h, newRequest(tc.method, tc.target))
		if rec.Code != tc.status || rec.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: status %d Allow %q, want %d %q", tc.method, tc.target, rec.Code, rec.Header().Get("Allow"), tc.status, tc.allow)
		}
	}
}

func TestLoginEndpoint_ReturnsToRd(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"/app/x?y=1":          "/app/x?y=1",
		"":                    "/",
		"//evil.example.com":  "/",
		"https://evil.com/":   "/",
		"/%2F%2Fevil.example": "/",
	}
	for rd, want := range tests {
		t.Run(rd, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			rec := serve(h, newRequest(http.MethodGet, "/saml/login?rd="+url.QueryEscape(rd)))
			if rec.Code != http.StatusSeeOther {
				t.Fatalf("status %d", rec.Code)
			}
			loc := mustParse(t, rec.Header().Get("Location"))
			relay := loc.Query().Get("RelayState")
			var cookie *http.Cookie
			for _, c := range rec.Result().Cookies() {
				if c.Name == h.sp.trackingName(relay) {
					cookie = c
				}
			}
			ar := decodeAuthnRequest(t, loc.Query().Get("SAMLRequest"))
			ok := h.postACS(h.makeResponse(respOpts{requestID: ar.ID}), relay, cookie)
			h.expectAccepted(t, ok, want)
		})
	}
}

// An IdP without Single Logout: the logout is local and the browser goes
// to rd at once (slo_test.go has the IdP with it).
func TestLogout_ClearsCookiesAndRedirects(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"/goodbye":           "/goodbye",
		"":                   "/",
		"//evil.example.com": "/",
		"javascript:alert1":  "/",
	}
	for rd, want := range tests {
		t.Run(rd, func(t *testing.T) {
			t.Parallel()
			h := newHarnessWith(t, harnessOpts{noSLO: true})
			signedIn, _ := h.complete("/", respOpts{})
			s := h.expectAccepted(t, signedIn, "/")
			pending := h.startLogin("/later")

			req := newRequest(http.MethodGet, "/saml/logout?rd="+url.QueryEscape(rd))
			for _, c := range signedIn.Result().Cookies() {
				if c.MaxAge >= 0 {
					req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
				}
			}
			req.AddCookie(&http.Cookie{Name: "portcullis_1", Value: "chunk"})
			req.AddCookie(&http.Cookie{Name: pending.cookie.Name, Value: pending.cookie.Value})
			rec := serve(h, req)
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != want {
				t.Errorf("status %d Location %q, want 303 %q", rec.Code, rec.Header().Get("Location"), want)
			}
			for _, name := range []string{"portcullis", "portcullis_1", pending.cookie.Name} {
				if !clearedCookie(rec, name) {
					t.Errorf("cookie %s not cleared", name)
				}
			}
			ev := h.auditEvents("logout")
			if len(ev) != 1 || ev[0].ContextMap()["session_id"] != s.ID {
				t.Errorf("logout audit events: %v", ev)
			}
		})
	}
}

func mustParse(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
