package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/session"
)

// newExchange is a request at the start of the steps, with its scope.
func newExchange(method, target string, header http.Header) (*exchange, *httptest.ResponseRecorder) {
	r := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	st := &requestState{}
	r = r.WithContext(withState(context.Background(), st))
	rec := httptest.NewRecorder()
	st.x = exchange{w: rec, r: r, now: time.Now()}
	return &st.x, rec
}

func withCookies(h http.Header, cs []*http.Cookie) http.Header {
	out := h.Clone()
	if out == nil {
		out = http.Header{}
	}
	for _, c := range cs {
		out.Add("Cookie", c.Name+"="+c.Value)
	}
	return out
}

func TestStep_RoutePolicy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "http://127.0.0.1:1", nil)
	x, _ := newExchange("GET", "/admin/x", nil)
	if !h.proxy.routePolicy(x) || x.policy.Route != "/admin/" || len(x.policy.AllowGroups) != 1 {
		t.Errorf("/admin/x: policy %+v", x.policy)
	}
	x, rec := newExchange("GET", "/public/%2e%2e/admin/", nil)
	if h.proxy.routePolicy(x) || rec.Code != http.StatusBadRequest {
		t.Errorf("ambiguous path went on (status %d)", rec.Code)
	}
}

func TestStep_Authenticate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "http://127.0.0.1:1", nil)
	x, _ := newExchange("GET", "/", nil)
	if !h.proxy.authenticate(x) || x.who != nil || x.session != nil {
		t.Errorf("no cookie: who %v", x.who)
	}
	x, _ = newExchange("GET", "/", withCookies(nil, h.sessionCookies(alice, time.Now().Add(time.Hour))))
	if !h.proxy.authenticate(x) || x.who == nil || x.who.User != "alice" || stateOf(x.r.Context()).user != "alice" {
		t.Errorf("valid cookie: who %v", x.who)
	}
	x, _ = newExchange("GET", "/", withCookies(nil, h.sessionCookies(alice, time.Now().Add(-time.Minute))))
	if !h.proxy.authenticate(x) || x.who != nil {
		t.Errorf("expired cookie: who %v", x.who)
	}
	a, b := h.sessionCookies(alice, time.Now().Add(time.Hour))[0], h.sessionCookies(bob, time.Now().Add(time.Hour))[0]
	x, rec := newExchange("GET", "/", http.Header{"Cookie": {"portcullis=" + a.Value + "; portcullis=" + b.Value}})
	if h.proxy.authenticate(x) || rec.Code != http.StatusBadRequest || x.who != nil {
		t.Errorf("two session cookies: went on, status %d, who %v", rec.Code, x.who)
	}
}

func TestStep_GateCheck(t *testing.T) {
	t.Parallel()
	gate := &mapGate{m: map[string]identity.Standing{
		"alice@example.com": {State: identity.StateActive, ValidAfter: past, Groups: []string{"from-scim"}},
		"bob@example.com":   {State: identity.StateInactive, ValidAfter: past},
	}}
	h := newGateHarness(t, "http://127.0.0.1:1", gate, config.SCIM{RequireProvisioned: true})
	run := func(p identity.Principal, public bool) (*exchange, *httptest.ResponseRecorder, bool) {
		x, rec := newExchange("GET", "/", browser)
		x.policy.Public = public
		x.session = &session.Session{Principal: p, IssuedAt: time.Now(), Expires: time.Now().Add(time.Hour)}
		x.who = &x.session.Principal
		return x, rec, h.proxy.gateCheck(x)
	}
	if x, _, ok := run(alice, false); !ok || x.who == nil || len(x.who.Groups) != 1 || x.who.Groups[0] != "from-scim" {
		t.Errorf("active: went on %v, who %+v; want the directory's groups", ok, x.who)
	}
	if x, rec, ok := run(bob, false); ok || rec.Code != http.StatusForbidden || x.who == nil {
		t.Errorf("deactivated: went on %v, status %d", ok, rec.Code)
	}
	if x, _, ok := run(bob, true); !ok || x.who != nil {
		t.Errorf("deactivated on a public route: went on %v, who %v; want on, as nobody", ok, x.who)
	}
	x, _ := newExchange("GET", "/", nil)
	if !h.proxy.gateCheck(x) {
		t.Error("no session: the gate has nothing to judge and must let the next step decide")
	}
}

func TestStep_RequireSignInAndAuthorize(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "http://127.0.0.1:1", nil)
	x, rec := newExchange("GET", "/app", nil)
	if h.proxy.requireSignIn(x) || rec.Code != http.StatusUnauthorized {
		t.Errorf("nobody on a protected route: status %d", rec.Code)
	}
	x, _ = newExchange("GET", "/healthz", nil)
	x.policy.Public = true
	if !h.proxy.requireSignIn(x) {
		t.Error("nobody on a public route was stopped")
	}
	x, rec = newExchange("GET", "/admin/", nil)
	x.policy = policy{Route: "/admin/", AllowGroups: []string{"admins"}}
	x.who = &bob
	if h.proxy.authorize(x) || rec.Code != http.StatusForbidden {
		t.Errorf("bob on /admin/: status %d", rec.Code)
	}
	x.who = &alice
	if !h.proxy.authorize(x) {
		t.Error("alice (admins) on /admin/ was stopped")
	}
}
