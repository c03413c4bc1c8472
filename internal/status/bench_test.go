package status

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/sqlite"
)

// BenchmarkStatusPage_RenderWithSearch is one page view as an operator
// makes it: a search that finds a user with groups and sessions, a full
// audit ring, the whole registry gathered.
func BenchmarkStatusPage_RenderWithSearch(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, b.TempDir()+"/dir.db")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	now := time.Now()
	var members []string
	for i := range 200 {
		id := fmt.Sprintf("u%d", i)
		members = append(members, id)
		if _, err := st.CreateUser(ctx, &store.User{ID: id, UserName: fmt.Sprintf("user%d@example.com", i),
			Active: true, Version: 1, Created: now, LastModified: now}, "okta"); err != nil {
			b.Fatal(err)
		}
	}
	for g := range 5 {
		if _, err := st.CreateGroup(ctx, &store.Group{ID: fmt.Sprintf("g%d", g), DisplayName: fmt.Sprintf("group%d", g),
			Members: members, Version: 1}, "okta"); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 3 {
		if err := st.Ledger().RecordLogin(ctx, store.Login{MatchKey: "user7@example.com", User: "user7", SessionID: fmt.Sprintf("s%d", i),
			Issued: now, Expires: now.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	ring := NewAuditRing(0)
	log := zap.New(ring.Core())
	for i := range 300 {
		log.Info("access denied", zap.String("event", "access_denied"), zap.String("user", fmt.Sprintf("user%d", i)),
			zap.String("reason", "inactive"), zap.String("request_id", "r"))
	}
	h := New(Options{Gatherer: metrics.New().Gatherer(), Directory: st, Ledger: st.Ledger(), Events: st, MatchKey: userNameKey, Audit: ring})
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/?user=user7@example.com", nil))
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}
