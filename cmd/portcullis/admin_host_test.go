package main

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// adminGet sends GET path to the admin listener at adminURL with the Host
// header host (the port of adminURL appended unless host has one) and
// returns the status and body.
func adminGet(t *testing.T, adminURL, path, host, auth string) (int, string) {
	t.Helper()
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("GET", adminURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(strings.Trim(host, "[]"), u.Port())
	}
	req.Host = host
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body)
}

// DNS rebinding against `portcullis serve`: with nothing but the loopback
// bind guarding the admin listener, a request whose Host is not a loopback
// name (what a browser sends to a rebound attacker name) gets 421 and no
// data, on every path; loopback names get through. With a token, or on a
// bind the kubelet and Prometheus reach by the pod IP, Host is not checked.
func TestAdminListener_RefusesRebindingHosts_Binary(t *testing.T) {
	bin := buildBinary(t)
	const tok = "admin-token-for-the-test-0123"
	paths := []string{"/", "/?user=alice", "/metrics", "/readyz", "/healthz", "/nothing"}

	t.Run("loopback bind without a token", func(t *testing.T) {
		dir := t.TempDir()
		sc := writeServeConfig(t, dir)
		p := startBinary(t, bin, sc.path)
		for _, host := range []string{"rebind.attacker.example", "rebind.attacker.example:9090", "127.0.0.1.nip.io",
			"localhost.attacker.example", "10.0.0.7"} {
			for _, path := range paths {
				code, body := adminGet(t, p.adminURL, path, host, "")
				if code != http.StatusMisdirectedRequest {
					t.Errorf("Host %s GET %s: %d, want 421", host, path, code)
				}
				if strings.Contains(body, "Portcullis status") || strings.Contains(body, "portcullis_") || strings.Contains(body, "ready") {
					t.Errorf("Host %s GET %s: the refusal carries data:\n%.300s", host, path, body)
				}
			}
		}
		for _, host := range []string{"127.0.0.1", "localhost", "LocalHost", "127.0.0.2", "[::1]:9090", "localhost:1"} {
			if code, body := adminGet(t, p.adminURL, "/", host, ""); code != http.StatusOK || !strings.Contains(body, "Portcullis status") {
				t.Errorf("Host %s: status page %d, want 200", host, code)
			}
			for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
				if code, _ := adminGet(t, p.adminURL, path, host, ""); code != http.StatusOK {
					t.Errorf("Host %s GET %s: %d, want 200", host, path, code)
				}
			}
		}
	})

	t.Run("loopback bind with a token", func(t *testing.T) {
		dir := t.TempDir()
		sc := writeServeConfig(t, dir)
		if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		rebind(t, sc.path, "127.0.0.1:0", "adminTokenFile: admin.token\n")
		p := startBinary(t, bin, sc.path)
		if code, _ := adminGet(t, p.adminURL, "/", "rebind.attacker.example", ""); code != http.StatusUnauthorized {
			t.Errorf("status page without the token: %d, want 401", code)
		}
		if code, _ := adminGet(t, p.adminURL, "/", "admin.internal.example", "Bearer "+tok); code != http.StatusOK {
			t.Errorf("status page with the token through a named proxy: %d, want 200", code)
		}
	})

	t.Run("every interface (the chart's bind) keeps probes by pod IP", func(t *testing.T) {
		dir := t.TempDir()
		sc := writeServeConfig(t, dir)
		if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		rebind(t, sc.path, "0.0.0.0:0", "adminTokenFile: admin.token\n")
		p := startBinary(t, bin, sc.path)
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			if code, _ := adminGet(t, p.adminURL, path, "10.42.0.17", ""); code != http.StatusOK {
				t.Errorf("probe GET %s with the pod IP as Host: %d, want 200", path, code)
			}
		}
		if code, _ := adminGet(t, p.adminURL, "/", "10.42.0.17", ""); code != http.StatusUnauthorized {
			t.Errorf("status page without the token: %d, want 401", code)
		}
	})
}
