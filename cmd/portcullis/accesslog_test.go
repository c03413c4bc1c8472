package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
)

// The process logger buffers only the access log: audit lines and errors
// still reach the output at once, and every access line is there after stop.
func TestProcessLogger_BuffersOnlyAccessAndLosesNothingAtStop(t *testing.T) {
	out := &lockedBuffer{}
	log, stop, err := newProcessLogger("json", "info", out)
	if err != nil {
		t.Fatal(err)
	}
	log.Named("audit").Info("access denied", zap.String("event", "access_denied"))
	if !strings.Contains(out.String(), `"event":"access_denied"`) {
		t.Fatalf("audit line not written at once: %q", out.String())
	}
	const n = 5000 // several buffer-fulls
	access := log.Named("access").With(zap.String("fixed", "f"))
	for i := range n {
		access.Info("request", zap.Int("i", i))
	}
	stop()
	seen := make([]bool, n)
	for _, e := range out.logEntries() {
		if e["logger"] != "access" {
			continue
		}
		i, ok := e["i"].(float64)
		if !ok || e["fixed"] != "f" || int(i) >= n {
			t.Fatalf("bad access line: %v", e)
		}
		seen[int(i)] = true
	}
	for i, ok := range seen {
		if !ok {
			t.Fatalf("access line %d of %d missing after stop", i, n)
		}
	}
}

// A whole `portcullis serve`: requests answered just before SIGTERM all have
// their access line in the output when the process returns.
func TestServe_AccessLogCompleteAfterGracefulShutdown(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer up.Close()
	path := testConfigDir(t, "routes:\n  - path: /\n    public: true\nserver:\n  drainTimeout: 5s\n")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw = []byte(strings.Replace(string(raw), "http://127.0.0.1:3000", up.URL, 1))
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr := &lockedBuffer{}, &lockedBuffer{}
	done := make(chan int, 1)
	go func() { done <- run([]string{"serve", "--config", path}, stdout, stderr) }()
	var addr string
	for deadline := time.Now().Add(20 * time.Second); addr == "" && time.Now().Before(deadline); {
		for _, e := range stderr.logEntries() {
			if e["msg"] == "listening" {
				addr, _ = e["listen"].(string)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if addr == "" {
		t.Fatalf("serve did not log its address; stderr:\n%s", stderr)
	}
	const n = 300
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	for i := range n {
		resp, err := client.Get(fmt.Sprintf("http://%s/page?i=%d", addr, i))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	// SIGTERM to this process: run's signal.NotifyContext is listening, so
	// it starts the graceful shutdown instead of ending the test binary.
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d; stderr:\n%s", code, stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not return after SIGTERM")
	}
	got := 0
	for _, e := range stderr.logEntries() {
		if e["logger"] == "access" && e["path"] == "/page" && e["status"] == float64(200) {
			got++
		}
	}
	if got != n {
		t.Errorf("access lines after shutdown: %d, want %d", got, n)
	}
}
