package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync"
)

// scim.tokensFile changes take effect without a restart: a token added
// works, a removed token gets 401, a file that does not parse keeps the
// last good set (and logs an error), and SIGHUP applies a change at once.
func TestServe_SCIMTokensReloadWithoutRestart(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	cfg := writeServeConfig(t, dir)
	p := startBinary(t, bin, cfg.path)
	tokensFile := filepath.Join(dir, "scim.tokens")
	write := func(s string) {
		tmp := tokensFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, tokensFile); err != nil {
			t.Fatal(err)
		}
	}
	status := func(token string) int {
		code, _, err := newSCIMClient(token).do(p.publicURL, "GET", "/Users?count=1", nil)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	// within waits until every token has its status, for at most d.
	within := func(d time.Duration, want map[string]int) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			ok := true
			for tok, code := range want {
				if status(tok) != code {
					ok = false
				}
			}
			if ok {
				return time.Since(start)
			}
			if time.Since(start) > d {
				got := map[string]int{}
				for tok := range want {
					got[tok[:6]] = status(tok)
				}
				t.Fatalf("after %s: statuses %v, want %v", d, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	old, added := cfg.token, scimsync.GenerateToken()
	if status(old) != 200 || status(added) != 401 {
		t.Fatalf("at start: old %d, new %d", status(old), status(added))
	}
	write("okta " + old + "\nokta-next " + added + "\n") // rotation: both
	d := within(5*time.Second, map[string]int{old: 200, added: 200})
	write("okta-next " + added + "\n") // the old one removed
	d = max(d, within(5*time.Second, map[string]int{old: 401, added: 200}))
	t.Logf("a change took effect within %s", d.Round(10*time.Millisecond))

	write("this line is not a token\n")
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.logs.String(), "cannot be loaded"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a broken tokens file was not logged:\n%s", p.logs)
		}
	}
	if status(added) != 200 {
		t.Error("a broken tokens file dropped the last good tokens")
	}
	if strings.Contains(p.logs.String(), added) || strings.Contains(p.logs.String(), old) {
		t.Error("a token reached the logs")
	}

	third := scimsync.GenerateToken()
	write("okta-3 " + third + "\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	within(5*time.Second, map[string]int{third: 200, added: 401})
}
