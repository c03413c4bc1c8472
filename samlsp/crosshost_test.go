package samlsp

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/portcullis-sso/portcullis/config"
)

// TestLoginEndpoint_ReturnsToAllowedRedirectHosts: with
// allowedRedirectHosts, sign-in may return to a listed host — exactly that
// host — and nowhere else; an IdP-initiated RelayState stays a path.
func TestLoginEndpoint_ReturnsToAllowedRedirectHosts(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"https://app2.example.com/x?y=1":      "https://app2.example.com/x?y=1",
		"/app/x":                              "/app/x",
		"https://app3.example.com/x":          "/",
		"https://app2.example.com.evil.com/x": "/",
		"https://evil.com@app2.example.com/":  "/",
		"http://app2.example.com/x":           "/",
		"https://app2.example.com//evil.com":  "/",
	}
	for rd, want := range tests {
		t.Run(rd, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(c *config.Config) { c.AllowedRedirectHosts = []string{"app2.example.com"} })
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

func TestLogout_ReturnsToAllowedRedirectHosts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.AllowedRedirectHosts = []string{"app2.example.com"} })
	for rd, want := range map[string]string{"https://app2.example.com/bye": "https://app2.example.com/bye", "https://evil.com/": "/"} {
		rec := serve(h, newRequest(http.MethodGet, "/saml/logout?rd="+url.QueryEscape(rd)))
		if got := rec.Header().Get("Location"); got != want {
			t.Errorf("logout rd=%s: Location %q, want %q", rd, got, want)
		}
	}
}
