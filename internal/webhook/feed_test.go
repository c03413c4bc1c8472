package webhook_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/internal/webhook"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

type page struct {
	Data []struct {
		ID, Type, Timestamp string
		Data                map[string]any
	}
	Next *string
}

func get(t *testing.T, h http.Handler, target, token string) (int, page, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var p page
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("%s: %v: %s", target, err, rec.Body)
		}
	}
	return rec.Code, p, rec.Body.String()
}

func TestFeed_PagesInOrderWithTheWebhookIDs(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	for _, u := range []string{"a", "b", "c"} {
		if _, err := st.CreateUser(ctx, user(u), "test"); err != nil {
			t.Fatal(err)
		}
	}
	setActive(t, st, "b", false)
	if _, err := st.RevokeSessions(ctx, store.SessionQuery{Known: []store.RevokedSession{{ID: "s-b", Issued: time.Now(),
		Expires: time.Now().Add(time.Hour)}}}, "deactivated", "test"); err != nil {
		t.Fatal(err)
	}
	const token = "0123456789abcdef-admin"
	f := &webhook.Feed{Store: st.Deliveries(), Token: []byte(token)}

	code, p, _ := get(t, f, "/events?limit=2", token)
	if code != 200 || len(p.Data) != 2 || p.Data[0].ID != "evt_1" || p.Next == nil || *p.Next != "evt_2" {
		t.Fatalf("first page: %d %+v", code, p)
	}
	if _, err := time.Parse(time.RFC3339, p.Data[0].Timestamp); err != nil {
		t.Errorf("timestamp %q is not RFC 3339: %v", p.Data[0].Timestamp, err)
	}
	code, p, _ = get(t, f, "/events?limit=2&after="+*p.Next, token)
	if code != 200 || len(p.Data) != 2 || p.Data[0].ID != "evt_3" || p.Data[1].Type != "user.deactivated" || p.Next == nil {
		t.Fatalf("second page: %d %+v", code, p)
	}
	code, p, _ = get(t, f, "/events?limit=2&after="+*p.Next, token)
	if code != 200 || len(p.Data) != 1 || p.Data[0].Type != "session.revoked" || p.Next != nil {
		t.Fatalf("last page: %d %+v, want one event and no next", code, p)
	}
	code, p, _ = get(t, f, "/events?types=user.deactivated,session.revoked", token)
	if code != 200 || len(p.Data) != 2 || p.Data[0].ID != "evt_4" || p.Data[1].ID != "evt_5" {
		t.Errorf("types filter: %d %+v", code, p)
	}
	code, p, _ = get(t, f, "/events?after=evt_99", token)
	if code != 200 || len(p.Data) != 0 || p.Next != nil {
		t.Errorf("after the last event: %d %+v, want an empty page", code, p)
	}
}

func TestFeed_RefusesWithoutTheTokenAndBadParameters(t *testing.T) {
	st := openStore(t)
	const token = "0123456789abcdef-admin"
	f := &webhook.Feed{Store: st.Deliveries(), Token: []byte(token)}
	for target, want := range map[string]int{
		"/events?limit=0":           400,
		"/events?limit=1001":        400,
		"/events?after=42":          400,
		"/events?types=user.exists": 400,
	} {
		if code, _, body := get(t, f, target, token); code != want || strings.Contains(body, token) {
			t.Errorf("%s = %d %s, want %d", target, code, body, want)
		}
	}
	if code, _, _ := get(t, f, "/events", ""); code != 401 {
		t.Errorf("without a token = %d, want 401", code)
	}
	if code, _, _ := get(t, f, "/events", "wrong-token-wrong-token"); code != 401 {
		t.Errorf("with a wrong token = %d, want 401", code)
	}
	if code, _, _ := get(t, &webhook.Feed{Store: st.Deliveries()}, "/events", token); code != 403 {
		t.Errorf("with no admin token configured = %d, want 403", code)
	}
}

func TestFeed_AfterOlderThanRetentionIsGone(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	for _, u := range []string{"a", "b"} {
		if _, err := st.CreateUser(ctx, user(u), "test"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Deliveries().Prune(ctx, time.Now().Add(time.Minute), 1); err != nil {
		t.Fatal(err)
	}
	const token = "0123456789abcdef-admin"
	f := &webhook.Feed{Store: st.Deliveries(), Token: []byte(token)}
	if code, _, _ := get(t, f, "/events?after=evt_0", token); code != http.StatusGone {
		t.Errorf("after a pruned event = %d, want 410", code)
	}
	if code, p, _ := get(t, f, "/events", token); code != 200 || len(p.Data) != 1 || p.Data[0].ID != "evt_2" {
		t.Errorf("without after = %d %+v, want the one kept", code, p)
	}
	if code, p, _ := get(t, f, "/events?after=evt_1", token); code != 200 || len(p.Data) != 1 {
		t.Errorf("after the last pruned event = %d %+v, want the one kept", code, p)
	}
}
