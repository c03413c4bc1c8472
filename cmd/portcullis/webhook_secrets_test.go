package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// A webhook secret file is re-read when it changes, without a restart: a
// second line is a rotation (both secrets sign, so an app already on the
// new one verifies), a file that does not parse is refused with its path
// and the secrets in use stay, and removing the old line leaves one
// signature.
func TestServe_WebhookSecretsReloadWithoutRestart(t *testing.T) {
	bin := buildBinary(t)
	rcv := newHookReceiver(t)
	dir := t.TempDir()
	writeHookSecret(t, dir, rcv)
	cfg := writeServeConfigStore(t, dir, "store:\n  driver: sqlite\n  dsn: store/portcullis.db\n"+eventsConfig(rcv))
	p := startBinary(t, bin, cfg.path)
	c := newSCIMClient(cfg.token)
	n := 0
	// deliver creates a user and waits for its webhook; it returns how
	// many signatures it carried.
	deliver := func() int {
		t.Helper()
		n++
		code, body, err := c.do(p.publicURL, "POST", "/Users", map[string]any{"userName": fmt.Sprintf("rot-%d@example.com", n)})
		if err != nil || code != 201 {
			t.Fatalf("create user %d: %d %v %v", n, code, body, err)
		}
		for deadline := time.Now().Add(15 * time.Second); rcv.distinct() < n; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				rcv.mu.Lock()
				defer rcv.mu.Unlock()
				t.Fatalf("webhook %d did not arrive verified (%d failed verification)\nlogs:\n%s", n, rcv.bad, p.logs)
			}
		}
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return rcv.sigs
	}
	secretFile := filepath.Join(dir, "webhook.secret")
	write := func(s string) {
		tmp := secretFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, secretFile); err != nil {
			t.Fatal(err)
		}
	}
	waitLog := func(what string, count int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); strings.Count(p.logs.String(), what) < count; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q (%d times) in the logs:\n%s", what, count, p.logs)
			}
		}
	}
	if got := deliver(); got != 1 {
		t.Errorf("before the rotation: %d signatures, want 1", got)
	}

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	next := "whsec_" + base64.StdEncoding.EncodeToString(key)
	write(rcv.secret + "\n" + next + "\n")
	waitLog("webhook secrets reloaded", 1)
	wh, err := standardwebhooks.NewWebhook(next)
	if err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	rcv.wh = wh // the app switched to the new secret
	rcv.mu.Unlock()
	if got := deliver(); got != 2 {
		t.Errorf("during the rotation: %d signatures, want 2", got)
	}

	write("whsec_not-base64!\n")
	waitLog("cannot be loaded", 1)
	if logs := p.logs.String(); !strings.Contains(logs, secretFile) {
		t.Errorf("the refused file's path %s is not in the logs:\n%s", secretFile, logs)
	}
	if got := deliver(); got != 2 {
		t.Errorf("after a broken file: %d signatures, want the 2 in use", got)
	}

	write(next + "\n")
	waitLog("webhook secrets reloaded", 2)
	if got := deliver(); got != 1 {
		t.Errorf("after the old line went: %d signatures, want 1", got)
	}
	logs := p.logs.String()
	for _, s := range []string{rcv.secret, next, strings.TrimPrefix(next, "whsec_")} {
		if strings.Contains(logs, s) {
			t.Errorf("a webhook secret appears in the logs")
		}
	}
}
