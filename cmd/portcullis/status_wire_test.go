package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// rebind rewrites the test config's adminListen and appends extra lines.
func rebind(t *testing.T, path, adminListen, extra string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), `adminListen: "127.0.0.1:0"`, `adminListen: "`+adminListen+`"`, 1)
	if err := os.WriteFile(path, []byte(s+extra), 0o600); err != nil {
		t.Fatal(err)
	}
}

func adminStatus(t *testing.T, srv *httptest.Server, path, auth string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The admin token rule as `portcullis serve` wires it: the status page is
// guarded off loopback; probes and /metrics never are.
func TestStatusWiring_AdminTokenRule(t *testing.T) {
	t.Parallel()
	const tok = "admin-token-for-the-test-0123"
	tests := []struct {
		name       string
		listen     string
		tokenFile  bool
		noAuth     int
		withToken  int
		wantWarned bool
	}{
		{"loopback, no token file: open", "127.0.0.1:0", false, 200, 200, false},
		{"every interface, no token file: forbidden", "0.0.0.0:0", false, 403, 403, true},
		{"every interface, token file: token needed", "0.0.0.0:0", true, 401, 200, false},
		{"loopback, token file: token still needed", "[::1]:0", true, 401, 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			sc := writeServeConfig(t, dir)
			extra := ""
			if tt.tokenFile {
				if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(tok+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				extra = "adminTokenFile: admin.token\n"
			}
			rebind(t, sc.path, tt.listen, extra)
			core, logs := observer.New(zapcore.WarnLevel)
			a, err := build(context.Background(), sc.path, zap.New(core))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Close() })
			srv := httptest.NewServer(a.admin)
			t.Cleanup(srv.Close)

			if got := adminStatus(t, srv, "/", ""); got != tt.noAuth {
				t.Errorf("status page without a token: %d, want %d", got, tt.noAuth)
			}
			if got := adminStatus(t, srv, "/?user=alice", "Bearer "+tok); got != tt.withToken {
				t.Errorf("status page with the token: %d, want %d", got, tt.withToken)
			}
			for _, p := range []string{"/healthz", "/metrics"} {
				if got := adminStatus(t, srv, p, ""); got != http.StatusOK {
					t.Errorf("%s without a token: %d, want 200", p, got)
				}
			}
			if got := adminStatus(t, srv, "/readyz", ""); got == 401 || got == 403 {
				t.Errorf("/readyz without a token: %d; probes must stay open", got)
			}
			warned := false
			for _, e := range logs.FilterMessage("risky setting").All() {
				if strings.Contains(e.ContextMap()["warning"].(string), "adminTokenFile") {
					warned = true
				}
			}
			if warned != tt.wantWarned {
				t.Errorf("startup warning about adminTokenFile: %v, want %v", warned, tt.wantWarned)
			}
		})
	}
}

func TestStatusWiring_BadTokenFileFailsStartup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc := writeServeConfig(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rebind(t, sc.path, "0.0.0.0:0", "adminTokenFile: admin.token\n")
	a, err := build(context.Background(), sc.path, zap.NewNop())
	if err == nil {
		a.Close()
		t.Fatal("build accepted a 5-character admin token")
	}
	if !strings.Contains(err.Error(), "adminTokenFile admin.token: admin token is shorter than 16 characters") {
		t.Errorf("error %q does not name the file and the problem", err)
	}
}
