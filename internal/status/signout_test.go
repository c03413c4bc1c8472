package status

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// TestSignOut_EverywhereNeedsTokenAndCSRF: the button is offered only with
// an admin token; the POST needs the token even on loopback (where the
// page itself does not) and the form's CSRF token for that user.
func TestSignOut_EverywhereNeedsTokenAndCSRF(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	u := &store.User{ID: "u1", UserName: "alice", Email: "alice@example.com", Active: true, Version: 1,
		Created: testNow.Add(-48 * time.Hour), LastModified: testNow.Add(-2 * time.Hour), ValidAfter: testNow.Add(-48 * time.Hour)}
	if _, err := st.CreateUser(ctx, u, "okta"); err != nil {
		t.Fatal(err)
	}
	if err := st.Ledger().RecordLogin(ctx, store.Login{MatchKey: "alice", User: "alice", SessionID: "sess-1",
		Issued: testNow.Add(-time.Hour), Expires: testNow.Add(5 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var ended []string
	signOut := func(_ context.Context, org, key string) (int, error) {
		ended = append(ended, org+"/"+key)
		return 1, nil
	}
	o := Options{Directory: st, Ledger: st.Ledger(), Events: st, MatchKey: userNameKey, SignOut: signOut,
		Now: func() time.Time { return testNow }} // loopback: TokenRequired false

	_, _, body := get(t, New(o), "/?user=alice")
	if strings.Contains(body, "Sign out everywhere") {
		t.Error("the button is offered without an admin token")
	}
	o.Token = []byte(adminToken)
	h := New(o)
	_, _, body = get(t, h, "/?user=alice")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, "Sign out everywhere") {
		t.Fatalf("no sign-out form for alice:\n%s", userBlock(t, body, "alice"))
	}
	post := func(auth bool, form url.Values) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/signout", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth {
			req.SetBasicAuth("admin", adminToken)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	good := url.Values{"user": {"alice"}, "csrf": {m[1]}}
	if rec := post(false, good); rec.Code != http.StatusUnauthorized {
		t.Errorf("without the token on loopback: %d, want 401", rec.Code)
	}
	if rec := post(true, url.Values{"user": {"alice"}}); rec.Code != http.StatusForbidden {
		t.Errorf("without the CSRF token: %d, want 403", rec.Code)
	}
	if rec := post(true, url.Values{"user": {"bob"}, "csrf": {m[1]}}); rec.Code != http.StatusForbidden {
		t.Errorf("alice's CSRF token for bob: %d, want 403", rec.Code)
	}
	if len(ended) != 0 {
		t.Fatalf("refused forms ended sessions of %v", ended)
	}
	rec := post(true, good)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/?user=alice&ended=1" || len(ended) != 1 || ended[0] != "default/alice" {
		t.Errorf("sign out: %d %q, ended %v", rec.Code, rec.Header().Get("Location"), ended)
	}
	if _, _, body := get(t, h, "/?user=alice&ended=1"); !strings.Contains(body, `id="ended"`) {
		t.Error("the page does not say the sessions ended")
	}
}
