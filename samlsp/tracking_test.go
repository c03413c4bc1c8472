package samlsp

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-sso/portcullis/config"
)

func TestTrackingCookiePrefix(t *testing.T) {
	t.Parallel()
	if got := TrackingCookiePrefix("portcullis"); got != "portcullis_t_" {
		t.Errorf("prefix %q", got)
	}
	h := newHarness(t, nil)
	l := h.startLogin("/")
	if !strings.HasPrefix(l.cookie.Name, TrackingCookiePrefix("portcullis")) {
		t.Errorf("tracking cookie %q lacks the prefix", l.cookie.Name)
	}
	if h.codec.IsSessionCookie(l.cookie.Name) {
		t.Errorf("tracking cookie %q would be read as a session chunk", l.cookie.Name)
	}
}

func TestTrackingCookie_Attributes(t *testing.T) {
	t.Parallel()
	type attrs struct {
		Path     string
		MaxAge   int
		HttpOnly bool
		Secure   bool
		SameSite http.SameSite
	}
	tests := map[string]struct {
		public string
		want   attrs
	}{
		"https": {"https://app.example.com", attrs{"/", 600, true, true, http.SameSiteNoneMode}},
		"http":  {"http://localhost:8080", attrs{"/", 600, true, false, http.SameSiteLaxMode}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pub, _ := url.Parse(tc.public)
			h := newHarness(t, func(c *config.Config) { c.Public = pub })
			c := h.startLogin("/").cookie
			got := attrs{c.Path, c.MaxAge, c.HttpOnly, c.Secure, c.SameSite}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("cookie attributes (-want +got):\n%s", diff)
			}
			raw := h.startLogin("/").rec.Header().Values("Set-Cookie")
			if last := raw[len(raw)-1]; tc.want.Secure && (!strings.Contains(last, "; Secure") || !strings.Contains(last, "; SameSite=None")) {
				t.Errorf("Set-Cookie %q", last)
			}
		})
	}
}

func TestTrackingCookie_MaxAgeIsTheLoginWindow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.SAML.LoginWindow = 7 * time.Minute })
	if got := h.startLogin("/").cookie.MaxAge; got != 7*60 {
		t.Errorf("MaxAge %d, want saml.loginWindow (420 s)", got)
	}
}

// Many tabs starting logins must not pile up cookies: at most maxTracking
// stay, the oldest go first, and broken or expired ones are cleared.
func TestTrackingCookie_Bounded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	jar := map[string]*http.Cookie{} // what the browser holds
	var order []string
	apply := func(l *login) {
		for _, c := range l.rec.Result().Cookies() {
			if c.MaxAge < 0 {
				delete(jar, c.Name)
			} else {
				jar[c.Name] = c
			}
		}
	}
	present := func() []*http.Cookie {
		var cs []*http.Cookie
		for _, c := range jar {
			cs = append(cs, c)
		}
		return cs
	}
	for i := 0; i < 12; i++ {
		h.clock.Advance(time.Second)
		l := h.startLogin("/tab", present()...)
		apply(l)
		order = append(order, l.cookie.Name)
		if len(jar) > maxTracking {
			t.Fatalf("after login %d the browser holds %d tracking cookies", i+1, len(jar))
		}
	}
	want := order[len(order)-maxTracking:]
	var got []string
	for name := range jar {
		got = append(got, name)
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kept tracking cookies are not the newest (-want +got):\n%s", diff)
	}

	// A broken cookie and an expired one are cleared; valid ones stay.
	broken := &http.Cookie{Name: h.sp.trackingName("AAAAAAAAAAAAAAAA"), Value: "garbage"}
	old := h.startLogin("/old")
	h.clock.Advance(11 * time.Minute)
	fresh := h.startLogin("/fresh")
	l := h.startLogin("/", broken, old.cookie, fresh.cookie)
	if !clearedCookie(l.rec, broken.Name) || !clearedCookie(l.rec, old.cookie.Name) {
		t.Error("broken or expired tracking cookie not cleared")
	}
	if clearedCookie(l.rec, fresh.cookie.Name) {
		t.Error("a valid tracking cookie was cleared below the bound")
	}
}

func TestValidTrackingID(t *testing.T) {
	t.Parallel()
	for i := 0; i < 100; i++ {
		if id := newTrackingID(); !validTrackingID(id) {
			t.Fatalf("generated ID %q is not valid", id)
		}
	}
	for _, bad := range []string{"", "/app", "AAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAA;x", "AAAAAAAAAAAAAAA "} {
		if validTrackingID(bad) {
			t.Errorf("%q accepted as a tracking ID", bad)
		}
	}
}
