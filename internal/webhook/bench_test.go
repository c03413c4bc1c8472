package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/internal/webhook"
)

// BenchmarkDeliver_Throughput delivers a backlog of events to a local
// receiver that acknowledges at once (it checks only the headers are
// there: verifying is the app's cost, not ours) and reports events/s.
// Run it on one core: go test ./internal/webhook/ -run '^$' -bench Throughput -cpu 1
func BenchmarkDeliver_Throughput(b *testing.B) {
	const backlog = 5000
	st := openStore(b)
	ctx := context.Background()
	for i := range backlog / 2 {
		if _, err := st.CreateUser(ctx, user(fmt.Sprintf("u%05d", i)), "bench"); err != nil {
			b.Fatal(err)
		}
	}
	for i := range backlog / 2 {
		setActive(b, st, fmt.Sprintf("u%05d", i), false)
	}
	_, key := newSecret(b)
	b.ResetTimer()
	for range b.N {
		var got atomic.Int64
		done := make(chan struct{})
		rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("webhook-signature") == "" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			if got.Add(1) == backlog {
				close(done)
			}
		}))
		// A fresh endpoint starts at the end of the log: rewind it by
		// opening it at 0 first.
		if _, err := st.Deliveries().OpenEndpoint(ctx, rcv.URL, fmt.Sprint(time.Now().UnixNano()), 0); err != nil {
			b.Fatal(err)
		}
		d := webhook.New(webhook.Options{Store: st.Deliveries(), Holder: "bench", MaxAge: time.Hour,
			Endpoints: []webhook.Endpoint{{URL: rcv.URL, Secrets: [][]byte{key}}}})
		rctx, cancel := context.WithCancel(ctx)
		began := time.Now()
		go d.Run(rctx)
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			b.Fatalf("delivered %d of %d in 2 minutes", got.Load(), backlog)
		}
		b.ReportMetric(float64(backlog)/time.Since(began).Seconds(), "events/s")
		cancel()
		rcv.Close()
	}
}
