package proxy

import (
	"maps"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
)

// hostOrgs is Organizations as samlsp gives it: globex is served on its
// own host; acme and default on every other host.
type hostOrgs map[string]string // host -> organization

func (h hostOrgs) Admits(host, org string) bool {
	if org != "acme" && org != "globex" && org != identity.DefaultOrg {
		return false // not served (removed)
	}
	owner, ok := h[host]
	return !ok || owner == org
}

func TestProxy_SessionsAreScopedToTheirOrganization(t *testing.T) {
	t.Parallel()
	echo := newEcho(t)
	h := newHarnessWith(t, echo.URL, func(c *config.Config) {
		c.Routes = append([]config.Route{{Path: "/acme-only/", AllowOrganizations: []string{"acme"}}}, c.Routes...)
		headers := maps.Clone(c.Headers) // the harness's map is shared by parallel tests
		headers["X-Forwarded-Org"] = identity.FieldOrganization
		c.Headers = headers
	}, func(o *Options) {
		o.Organizations = hostOrgs{"globex.app.example.com": "globex"}
	})
	in := func(p identity.Principal, org string) []*http.Cookie {
		p.Org = org
		return h.sessionCookies(p, time.Now().Add(time.Hour))
	}
	acmeBob := in(bob, "acme")

	e := decodeEcho(t, h.do("GET", "/acme-only/x", browser, acmeBob))
	if got := e.Header.Get("X-Forwarded-Org"); got != "acme" {
		t.Errorf("X-Forwarded-Org %q, want acme", got)
	}
	if resp := h.do("GET", "/acme-only/x", browser, in(bob, "globex")); resp.StatusCode != http.StatusForbidden {
		t.Errorf("globex's bob on an acme-only route: %d, want 403", resp.StatusCode)
	}
	if n := h.logs.FilterField(zap.String("reason", "organization")).FilterField(zap.String("event", "access_denied")).Len(); n != 1 {
		t.Errorf("access_denied organization events: %d, want 1", n)
	}

	// acme's session on globex's host is no session: a login, never acme's identity.
	onGlobex := http.Header{"Accept": browser["Accept"]}
	req := func(cookies []*http.Cookie) *http.Response {
		r, err := http.NewRequest("GET", h.front.URL+"/page", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Host = "globex.app.example.com"
		r.Header = onGlobex.Clone()
		for _, c := range cookies {
			r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := req(acmeBob); resp.StatusCode != http.StatusFound {
		t.Errorf("acme's session on globex's host: %d, want a login", resp.StatusCode)
	}
	if resp := req(in(bob, "globex")); resp.StatusCode != http.StatusOK {
		t.Errorf("globex's session on globex's host: %d", resp.StatusCode)
	}
	if resp := h.do("GET", "/page", browser, in(alice, "initech")); resp.StatusCode != http.StatusFound {
		t.Errorf("a session of an organization no longer served: %d, want a login", resp.StatusCode)
	}
	if n := h.logs.FilterField(zap.String("event", "session_rejected")).FilterField(zap.String("reason", "organization")).Len(); n != 2 {
		t.Errorf("session_rejected organization events: %d, want 2", n)
	}
}
