package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkWebhookLatency measures, with real `portcullis serve`
// processes, the time from sending the SCIM PATCH that deactivates a user
// to its user.deactivated webhook arriving at a local receiver (which
// verifies it with the Standard Webhooks library), and reports p50 and
// p99. On PostgreSQL two replicas share the store and the PATCH goes to
// the one that does not deliver, so every event crosses replicas.
//
//	go test ./cmd/portcullis/ -run '^$' -bench WebhookLatency -benchtime 1x
func BenchmarkWebhookLatency(b *testing.B) {
	bin := buildBinary(b)
	for _, driver := range []string{"sqlite", "postgres"} {
		b.Run(driver, func(b *testing.B) {
			for range b.N {
				p50, p99 := webhookLatency(b, bin, driver, 200)
				b.ReportMetric(p50.Seconds()*1000, "p50-ms")
				b.ReportMetric(p99.Seconds()*1000, "p99-ms")
			}
		})
	}
}

func webhookLatency(b *testing.B, bin, driver string, n int) (p50, p99 time.Duration) {
	dir := b.TempDir()
	rcv := newHookReceiver(b)
	writeHookSecret(b, dir, rcv)
	st := "store:\n  driver: sqlite\n  dsn: store/portcullis.db\n"
	if driver == "postgres" {
		_ = os.WriteFile(filepath.Join(dir, "store.dsn"), []byte(testPostgresSchema(b)+"\n"), 0o600)
		st = "store:\n  driver: postgres\n  dsnFile: store.dsn\n"
	}
	cfg := writeServeConfigStore(b, dir, st+eventsConfig(rcv))
	procs := []*proc{startBinary(b, bin, cfg.path)}
	if driver == "postgres" {
		procs = append(procs, startBinary(b, bin, cfg.path))
	}
	target := procs[0]
	if driver == "postgres" {
		_, target = waitLeaseHolder(b, procs)
	}
	c := newSCIMClient(cfg.token)
	code, body, err := c.do(target.publicURL, "POST", "/Users", map[string]any{"userName": "lat@example.com"})
	if err != nil || code != 201 {
		b.Fatalf("create: %d %v %v", code, body, err)
	}
	id, _ := body["id"].(string)
	var lat []time.Duration
	for i := range n {
		active := i%2 == 1
		before := rcv.distinct()
		sent := time.Now()
		code, _, err := c.do(target.publicURL, "PATCH", "/Users/"+id,
			patchOp(map[string]any{"op": "replace", "value": map[string]any{"active": active}}))
		if err != nil || code != 200 {
			b.Fatalf("patch: %d %v", code, err)
		}
		for rcv.distinct() <= before {
			if time.Since(sent) > 10*time.Second {
				b.Fatalf("event %d never arrived", i)
			}
			time.Sleep(time.Millisecond)
		}
		rcv.mu.Lock()
		arrived := rcv.at[rcv.ids[len(rcv.ids)-1]]
		rcv.mu.Unlock()
		if !active { // the deactivations are what the issue times
			lat = append(lat, arrived.Sub(sent))
		}
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		b.Fatal("no deactivation measured")
	}
	return lat[len(lat)/2], lat[(len(lat)*99)/100]
}
