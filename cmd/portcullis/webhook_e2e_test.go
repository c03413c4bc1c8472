package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// hookReceiver is the app's webhook endpoint: it verifies every request
// with the Standard Webhooks Go library (a test-only dependency) and keeps
// the ids it accepted, in arrival order, with when each arrived.
type hookReceiver struct {
	t      testing.TB
	wh     *standardwebhooks.Webhook
	secret string
	delay  time.Duration // per delivery, to make a stream last
	mu     sync.Mutex
	ids    []string
	types  map[string]string
	at     map[string]time.Time
	bad    int
	sigs   int // signatures on the last request
	srv    *httptest.Server
}

func newHookReceiver(t testing.TB) *hookReceiver {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	r := &hookReceiver{t: t, secret: "whsec_" + base64.StdEncoding.EncodeToString(key),
		types: map[string]string{}, at: map[string]time.Time{}}
	wh, err := standardwebhooks.NewWebhook(r.secret)
	if err != nil {
		t.Fatal(err)
	}
	r.wh = wh
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sigs = len(strings.Fields(req.Header.Get("webhook-signature")))
	if err := r.wh.Verify(body, req.Header); err != nil {
		r.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var m struct{ Type string }
	_ = json.Unmarshal(body, &m)
	id := req.Header.Get("webhook-id")
	r.ids = append(r.ids, id)
	r.types[id] = m.Type
	if _, ok := r.at[id]; !ok {
		r.at[id] = time.Now()
	}
	w.WriteHeader(http.StatusNoContent)
}

// distinct is how many different ids arrived.
func (r *hookReceiver) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.at)
}

// writeHookSecret writes the receiver's secret as a secret file in dir.
func writeHookSecret(t testing.TB, dir string, r *hookReceiver) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "webhook.secret"), []byte(r.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// eventsConfig is the events: section delivering to r.
func eventsConfig(r *hookReceiver) string {
	return "events:\n  webhooks:\n    - url: " + r.srv.URL + "/hooks\n      secretFile: webhook.secret\n"
}

// TestWebhooks_KillOfTheDeliveringReplicaLosesNothing runs two `portcullis
// serve` processes on one PostgreSQL schema, kills the one holding the
// delivery lease with SIGKILL mid-stream, and checks that the receiver
// gets every event, by id, in order (a redelivery repeats an id the dead
// process had sent; nothing is skipped).
func TestWebhooks_KillOfTheDeliveringReplicaLosesNothing(t *testing.T) {
	bin := buildBinary(t)
	dsn := testPostgresSchema(t)
	rcv := newHookReceiver(t)
	rcv.delay = 20 * time.Millisecond
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "store.dsn"), []byte(dsn+"\n"), 0o600)
	writeHookSecret(t, dir, rcv)
	cfg := writeServeConfigStore(t, dir, "store:\n  driver: postgres\n  dsnFile: store.dsn\n"+eventsConfig(rcv))
	procs := []*proc{startBinary(t, bin, cfg.path), startBinary(t, bin, cfg.path)}
	holder, other := waitLeaseHolder(t, procs)
	c := newSCIMClient(cfg.token)
	const n = 150
	for i := range n {
		code, body, err := c.do(other.publicURL, "POST", "/Users",
			map[string]any{"userName": fmt.Sprintf("kill-%03d@example.com", i)})
		if err != nil || code != 201 {
			t.Fatalf("create %d: %d %v %v", i, code, body, err)
		}
	}
	for rcv.distinct() < 30 {
		time.Sleep(5 * time.Millisecond)
	}
	holder.kill(t)
	t.Logf("killed the holder after %d deliveries", rcv.distinct())
	deadline := time.Now().Add(60 * time.Second)
	for rcv.distinct() < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.at) != n || rcv.bad != 0 {
		t.Fatalf("receiver has %d of %d events (%d failed verification)\nsurvivor logs:\n%s", len(rcv.at), n, rcv.bad, other.logs)
	}
	for i := 1; i <= n; i++ {
		if id := fmt.Sprintf("evt_%d", i); rcv.types[id] != "user.created" {
			t.Errorf("%s: type %q, want user.created", id, rcv.types[id])
		}
	}
	// In order: each new id is the next one; a repeat is a redelivery of
	// an id at most a batch back.
	next := 1
	for _, id := range rcv.ids {
		var seq int
		fmt.Sscanf(id, "evt_%d", &seq)
		switch {
		case seq == next:
			next++
		case seq > next:
			t.Fatalf("%s arrived before evt_%d: %v", id, next, rcv.ids)
		}
	}
	t.Logf("%d deliveries for %d events (%d redelivered after the kill)", len(rcv.ids), n, len(rcv.ids)-n)
}

// waitLeaseHolder waits until one process logs that it took the delivery
// lease and returns it and the other.
func waitLeaseHolder(t testing.TB, procs []*proc) (holder, other *proc) {
	t.Helper()
	for range 300 {
		for i, p := range procs {
			for _, e := range p.logs.logEntries() {
				if msg, _ := e["msg"].(string); strings.HasPrefix(msg, "webhook lease taken") {
					return p, procs[1-i]
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no process took the webhook lease")
	return nil, nil
}
