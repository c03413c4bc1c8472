package webhook_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/internal/webhook"
)

// tellYourAppBlock is the first fenced block of lang in the README's
// "Tell your app" section.
func tellYourAppBlock(t *testing.T, lang string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	sec := string(b)
	i := strings.Index(sec, "## Tell your app")
	if i < 0 {
		t.Fatal("README has no Tell your app section")
	}
	sec = sec[i:]
	if j := strings.Index(sec[3:], "\n## "); j >= 0 {
		sec = sec[:j+3]
	}
	m := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```").FindStringSubmatch(sec)
	if m == nil {
		t.Fatalf("README has no %s block in Tell your app", lang)
	}
	return m[1]
}

// TestNodeSnippet_VerifiesAsTheSpecSays runs the README's Node snippet
// (the standardwebhooks npm package) on what Portcullis signs: it accepts a
// delivery, one signed during a rotation, and refuses a tampered body, an
// old timestamp and another secret.
func TestNodeSnippet_VerifiesAsTheSpecSays(t *testing.T) {
	modules := os.Getenv("PORTCULLIS_NODE_MODULES") // a directory holding node_modules/standardwebhooks
	_, nodeErr := exec.LookPath("node")
	_, pkgErr := os.Stat(filepath.Join(modules, "node_modules", "standardwebhooks"))
	if modules == "" || nodeErr != nil || pkgErr != nil {
		if os.Getenv("PORTCULLIS_REQUIRE_PEERS") != "" {
			t.Fatal("node with the standardwebhooks package (PORTCULLIS_NODE_MODULES) is missing and PORTCULLIS_REQUIRE_PEERS is set (bash .ci/run installs it)")
		}
		t.Skip("needs node with the standardwebhooks package in PORTCULLIS_NODE_MODULES (bash .ci/run installs it)")
	}
	secret, key := newSecret(t)
	_, other := newSecret(t)
	body := `{"type":"user.deactivated","timestamp":"2026-12-05T04:12:09.118Z","data":{"id":"u1","active":false}}`
	now := time.Now().Unix()
	// line is a delivery of sent, signed over signed.
	line := func(sent, signed string, ts int64, keys ...[]byte) string {
		h := map[string]string{"webhook-id": "evt_42", "webhook-timestamp": strconv.FormatInt(ts, 10),
			"webhook-signature": webhook.Sign(keys, "evt_42", ts, []byte(signed))}
		out, _ := json.Marshal(map[string]any{"body": sent, "headers": h})
		return string(out)
	}
	cases := []struct{ name, line, want string }{
		{"good", line(body, body, now, key), "ok user.deactivated"},
		{"rotation", line(body, body, now, other, key), "ok user.deactivated"},
		{"tampered", line(strings.Replace(body, "false", "true", 1), body, now, key), "refused"},
		{"old timestamp", line(body, body, now-600, key), "refused"},
		{"other secret", line(body, body, now, other), "refused"},
	}
	driver := tellYourAppBlock(t, "js") + `
import { createInterface } from "node:readline";
for await (const line of createInterface({ input: process.stdin })) {
  const { body, headers } = JSON.parse(line);
  try { console.log("ok " + verifyWebhook(body, headers).type); } catch { console.log("refused"); }
}
`
	script := filepath.Join(modules, "portcullis-webhook-snippet.mjs")
	if err := os.WriteFile(script, []byte(driver), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(script) })
	var in []string
	for _, c := range cases {
		in = append(in, c.line)
	}
	cmd := exec.Command("node", script)
	cmd.Env = append(os.Environ(), "PORTCULLIS_WEBHOOK_SECRET="+secret)
	cmd.Stdin = strings.NewReader(strings.Join(in, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(got) != len(cases) {
		t.Fatalf("node printed %q for %d cases", got, len(cases))
	}
	for i, c := range cases {
		if got[i] != c.want {
			t.Errorf("%s: %q, want %q", c.name, got[i], c.want)
		}
	}
}
