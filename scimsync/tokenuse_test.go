package scimsync

import (
	"context"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/scimsync/store/sqlite"
)

func TestService_LastTokenIsTheLabelOfTheLastAuthenticatedToken(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/dir.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir, err := NewDirectory("userName")
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := ParseTokens([]byte("okta " + testToken + "\n" + otherToken + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := url.Parse("https://app.example.com")
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	svc, err := NewService(Options{
		Config: &config.Config{Public: pub, SCIM: config.SCIM{Enabled: true, BasePath: "/scim/v2", MaxBodyBytes: 1 << 16, MaxPageSize: 100}},
		Store:  st, Reader: st, Directory: dir, Tokens: tokens, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	get := func(token string) {
		r := httptest.NewRequest("GET", "/scim/v2/Users", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		svc.ServeHTTP(httptest.NewRecorder(), r)
	}
	if _, ok := svc.LastToken(); ok {
		t.Fatal("LastToken before any request reports a token")
	}
	get("not-a-token-not-a-token")
	if u, ok := svc.LastToken(); ok {
		t.Fatalf("a refused token counts as in use: %+v", u)
	}
	get(testToken)
	now = now.Add(time.Minute)
	get(otherToken)
	want := TokenUse{Label: "token2", Time: now}
	if got, ok := svc.LastToken(); !ok || got != want {
		t.Errorf("LastToken = %+v, %v; want %+v", got, ok, want)
	}
}
