package session

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestSetDomain_SharesTheCookieButNeverAHostCookie: with a domain, the
// session and its clearing carry Domain; a legacy __Host- cookie is
// expired host-only, the only way a browser accepts it.
func TestSetDomain_SharesTheCookieButNeverAHostCookie(t *testing.T) {
	t.Parallel()
	c, err := NewCodec("__Secure-portcullis", mustKeys(t), true, 8*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c.SetClock(func() time.Time { return t0.Add(time.Minute) })
	c.SetDomain(".example.com")
	c.SetLegacyNames("__Host-portcullis")
	rec := httptest.NewRecorder()
	if err := c.Write(rec, nil, testSession(0)); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: "__Host-portcullis", Value: "old"})
	c.Clear(rec, req)
	for _, ck := range rec.Result().Cookies() {
		want := "example.com"
		if ck.Name == "__Host-portcullis" {
			want = ""
		}
		if ck.Domain != want {
			t.Errorf("%s: Domain %q, want %q", ck.Name, ck.Domain, want)
		}
	}
}
