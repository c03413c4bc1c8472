package samlsp

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// An organization with hosts has its ACS on its first host; a login for it
// started on another host (the identifier-first page on the shared host)
// would set its tracking cookie where the IdP never posts, and every such
// sign-in would fail with no_tracking_cookie. It starts on the first host.
func TestOrganizations_LoginForAHostedOrganizationStartsOnItsHost(t *testing.T) {
	t.Parallel()
	h := newOrgHarness(t, false)
	globex := h.conn("globex")
	for _, host := range []string{"app.example.com", "other.example.com"} {
		req := httptest.NewRequest(http.MethodGet, "https://"+host+"/saml/login", nil)
		rec := httptest.NewRecorder()
		h.sp.startLoginAt(rec, req, globex, "/reports?y=1")
		want := "https://" + globexHost + "/saml/login?rd=%2Freports%3Fy%3D1"
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != want {
			t.Errorf("on %s: %d to %q, want 303 to %q", host, rec.Code, rec.Header().Get("Location"), want)
		}
		for _, ck := range rec.Result().Cookies() {
			if strings.HasPrefix(ck.Name, h.sp.trackPrefix) {
				t.Errorf("on %s: tracking cookie %s set on a host the IdP does not post to", host, ck.Name)
			}
		}
	}
	// On its host the login goes to the IdP, and an organization without
	// hosts starts anywhere.
	if l := h.startAt(globex, strings.ToUpper(globexHost)); !strings.HasPrefix(l.location.String(), h.globex.ssoURL) || l.cookie == nil {
		t.Errorf("on globex's host: login went to %s (tracking cookie %v)", l.location, l.cookie != nil)
	}
	if l := h.startAt(h.conn("acme"), "other.example.com"); !strings.HasPrefix(l.location.String(), h.acme.ssoURL) {
		t.Errorf("acme (no hosts) on another host: login went to %s", l.location)
	}
}
