package proxy

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestLoopbackHostHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host string
		want bool
	}{
		{"127.0.0.1:9090", true},
		{"127.0.0.1", true},
		{"127.1.2.3:1", true},
		{"localhost:9090", true},
		{"LOCALHOST", true},
		{"[::1]:9090", true},
		{"[::1]", true},
		{"[::ffff:127.0.0.1]:9090", true},
		{"", false},
		{":9090", false},
		{"rebind.attacker.example:9090", false},
		{"localhost.attacker.example", false},
		{"127.0.0.1.nip.io:9090", false},
		{"10.0.0.7:9090", false},
		{"0.0.0.0:9090", false},
		{"[::]:9090", false},
		{"localhost.:9090", false},
	}
	for _, tt := range tests {
		if got := loopbackHostHeader(tt.host); got != tt.want {
			t.Errorf("loopbackHostHeader(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestAdminHandler_LoopbackHostsOnlyRefusesOtherHostsOnEveryPath(t *testing.T) {
	t.Parallel()
	secret := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("secret data")) })
	for _, only := range []bool{false, true} {
		h := AdminHandler(AdminOptions{Metrics: secret, Status: secret, LoopbackHostsOnly: only})
		for _, path := range []string{"/", "/healthz", "/readyz", "/metrics"} {
			req := httptest.NewRequest("GET", path, nil)
			req.Host = "rebind.attacker.example:9090"
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			refused := rec.Code == http.StatusMisdirectedRequest
			if refused != only {
				t.Errorf("LoopbackHostsOnly %v, GET %s: %d", only, path, rec.Code)
			}
			if refused && (strings.Contains(rec.Body.String(), "secret") || strings.Contains(rec.Body.String(), "attacker")) {
				t.Errorf("the refusal carries data or echoes the Host: %q", rec.Body.String())
			}
		}
	}
}

type degradableAuth struct {
	Authenticator
	ready    error
	degraded string
}

func (f degradableAuth) Ready() error     { return f.ready }
func (f degradableAuth) Degraded() string { return f.degraded }

func TestAuthCheck_ReportsDegradedAuthenticators(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		auth   degradableAuth
		want   Readiness
		reason string
	}{
		{"ready", degradableAuth{}, Ready, ""},
		{"degraded", degradableAuth{degraded: "metadata expired"}, Degraded, "metadata expired"},
		{"not ready wins", degradableAuth{ready: errTest, degraded: "metadata expired"}, NotReady, errTest.Error()},
	}
	for _, tt := range tests {
		st, reason := AuthCheck(tt.auth).Check()
		if st != tt.want || reason != tt.reason {
			t.Errorf("%s: %v %q, want %v %q", tt.name, st, reason, tt.want, tt.reason)
		}
	}
}

var errTest = errors.New("no metadata")
