package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Benchmarks every backend runs alike; each backend's test names them.

// BenchCreateUser creates users one after the other, each a synced write
// with its event.
func BenchCreateUser(b *testing.B, st store.Store) {
	ctx := context.Background()
	now := time.Now()
	doc := []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"name":{"givenName":"Bench","familyName":"User"},"emails":[{"value":"x@example.com","primary":true}],"active":true}`)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		u := &store.User{ID: fmt.Sprintf("id-%d", i), UserName: fmt.Sprintf("user%d@example.com", i), Email: "x@example.com",
			Active: true, Doc: doc, Version: 1, Created: now, LastModified: now, ValidAfter: now}
		if _, err := st.CreateUser(ctx, u, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "creates/s")
}

// BenchEventStats is what the status page's sync section costs: the last
// event of each kind and the last hour's count, on an event log that holds
// events of every kind in the last hour.
func BenchEventStats(b *testing.B, es store.EventSummary) {
	ctx := context.Background()
	since := time.Now().Add(-time.Hour)
	b.ResetTimer()
	for b.Loop() {
		s, err := es.EventStats(ctx, "", since)
		if err != nil {
			b.Fatal(err)
		}
		if len(s.Last) != len(store.EventKinds) || s.Since == 0 {
			b.Fatalf("EventStats = %+v", s)
		}
	}
}
