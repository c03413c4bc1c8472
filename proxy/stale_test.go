package proxy

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
)

// fakeFreshness is a Freshness the test moves.
type fakeFreshness struct {
	mu        sync.Mutex
	confirmed time.Time
	err       error
}

func (f *fakeFreshness) ConfirmedAt() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.confirmed }
func (f *fakeFreshness) Err() error             { f.mu.Lock(); defer f.mu.Unlock(); return f.err }
func (f *fakeFreshness) set(t time.Time, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.confirmed, f.err = t, err
}

// The directory view is trusted for store.maxStaleness after it was last
// confirmed; then the gate fails closed for everyone, and serves again as
// soon as the view is confirmed.
func TestGate_FailsClosedPastMaxStaleness(t *testing.T) {
	t.Parallel()
	gate := &mapGate{m: map[string]identity.Standing{
		"bob@example.com":   {State: identity.StateActive, ValidAfter: past},
		"alice@example.com": {State: identity.StateInactive, ValidAfter: past},
	}}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	fresh := &fakeFreshness{confirmed: now}
	h := newHarnessWith(t, newEcho(t).URL, func(c *config.Config) {
		c.SCIM = config.SCIM{Enabled: true, RequireProvisioned: true, GroupsSource: "scim",
			Match: config.Match{IdentityField: "email"}}
		c.Store = config.Store{MaxStaleness: 5 * time.Minute}
	}, func(o *Options) { o.Gate, o.Freshness, o.Now = gate, fresh, clock })
	bobCookies := h.sessionCookies(bob, now.Add(8*time.Hour))
	aliceCookies := h.sessionCookies(alice, now.Add(8*time.Hour))
	status := func(cookies []*http.Cookie, path string) (int, string, http.Header) {
		resp := h.do("GET", path, browser, cookies)
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}

	// The store went away 4m59s ago: still inside maxStaleness, the last
	// known directory is enforced both ways.
	fresh.set(now.Add(-4*time.Minute-59*time.Second), errors.New("store unreachable"))
	if code, body, _ := status(bobCookies, "/app"); code != 200 {
		t.Fatalf("active user inside maxStaleness: %d %s", code, body)
	}
	if code, _, _ := status(aliceCookies, "/app"); code != 403 {
		t.Fatalf("deactivated user inside maxStaleness: %d, want 403", code)
	}

	// Past it: nobody is served from the stale view.
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	for _, c := range [][]*http.Cookie{bobCookies, aliceCookies} {
		code, body, hdr := status(c, "/app")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "Temporarily unavailable") || hdr.Get("Retry-After") == "" {
			t.Fatalf("past maxStaleness: %d (Retry-After %q) %s, want 503 page with Retry-After", code, hdr.Get("Retry-After"), body)
		}
		if hdr.Get("Location") != "" {
			t.Error("a stale replica must not send the user to the IdP")
		}
	}
	if n := h.logs.FilterField(zap.String("reason", "directory_stale")).Len(); n != 2 {
		t.Errorf("%d access_denied events with reason directory_stale, want 2", n)
	}
	// Public routes still answer, as nobody.
	if code, _, _ := status(bobCookies, "/healthz"); code != 200 {
		t.Errorf("public route on a stale replica: %d, want 200", code)
	}

	// Confirmed again: served at once.
	fresh.set(clock(), nil)
	if code, body, _ := status(bobCookies, "/app"); code != 200 {
		t.Fatalf("after the view is confirmed again: %d %s", code, body)
	}
}

// Without a Freshness (the SQLite store lives in this process) the view is
// never stale, however old.
func TestGate_NoFreshnessNeverStale(t *testing.T) {
	t.Parallel()
	gate := &mapGate{m: map[string]identity.Standing{"bob@example.com": {State: identity.StateActive, ValidAfter: past}}}
	h := newGateHarness(t, newEcho(t).URL, gate, config.SCIM{RequireProvisioned: true})
	h.proxy.now = func() time.Time { return time.Now().Add(24 * time.Hour) }
	if resp := h.do("GET", "/app", browser, h.sessionCookies(bob, time.Now().Add(48*time.Hour))); resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
}

func TestDirectoryCheck_DegradedThenNotReady(t *testing.T) {
	t.Parallel()
	now := time.Now()
	fresh := &fakeFreshness{confirmed: now}
	h := newHarnessWith(t, newEcho(t).URL, func(c *config.Config) {
		c.SCIM = config.SCIM{Enabled: true, GroupsSource: "scim", Match: config.Match{IdentityField: "email"}}
		c.Store = config.Store{MaxStaleness: time.Minute}
	}, func(o *Options) {
		o.Gate, o.Freshness = &mapGate{m: map[string]identity.Standing{}}, fresh
		o.Now = func() time.Time { return now }
	})
	check := h.proxy.DirectoryCheck()
	if st, reason := check.Check(); st != Ready {
		t.Errorf("confirmed now: %v %q, want ok", st, reason)
	}
	fresh.set(now.Add(-30*time.Second), errors.New("catch up from seq 7: store unavailable"))
	st, reason := check.Check()
	if st != Degraded || !strings.Contains(reason, "store unavailable") || !strings.Contains(reason, "30s ago") {
		t.Errorf("store down 30s: %v %q, want degraded with the cause and the age", st, reason)
	}
	fresh.set(now.Add(-61*time.Second), errors.New("store unavailable"))
	if st, reason := check.Check(); st != NotReady || !strings.Contains(reason, "maxStaleness") {
		t.Errorf("store down past maxStaleness: %v %q, want not ready", st, reason)
	}
}
