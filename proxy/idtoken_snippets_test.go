package proxy

import (
	"crypto/ecdsa"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/session"
)

// readmeBlock returns the first fenced block of lang in the README's
// identity-token section.
func readmeBlock(t *testing.T, lang string) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	sec := string(b)
	if i := strings.Index(sec, "## Forward-auth and the identity token"); i >= 0 {
		sec = sec[i:]
	}
	m := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```").FindStringSubmatch(sec)
	if m == nil {
		t.Fatalf("README has no %s block in the identity-token section", lang)
	}
	return m[1]
}

// requireTool skips when a verifier is missing locally and fails in CI
// (PORTCULLIS_REQUIRE_PEERS), which installs them.
func requireTool(t *testing.T, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("PORTCULLIS_REQUIRE_PEERS") != "" {
		t.Fatalf("%s is missing and PORTCULLIS_REQUIRE_PEERS is set (bash .ci/run installs it)", what)
	}
	t.Skipf("needs %s (bash .ci/run installs it)", what)
}

// snippetTokens are a good token and the ones every documented snippet
// must refuse, signed by real keys.
func snippetTokens(t *testing.T) (jwksURL string, good string, bad map[string]string) {
	t.Helper()
	key, other := newIdentityKey(t), newIdentityKey(t)
	gate := &mapGate{m: map[string]identity.Standing{"alice@example.com": aliceStanding("staff")}}
	h := tokenHarness(t, gate, nil, key)
	s := &session.Session{ID: "s1"}
	alice := &identity.Principal{User: "alice", Email: "alice@example.com"}
	mint := func(k *ecdsa.PrivateKey, aud string, now time.Time) string {
		ts, err := newTokenSigner([]*ecdsa.PrivateKey{k}, testIssuer, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := ts.mint(s.ID, alice, "", aud, now)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good = mint(key, testIssuer, time.Now())
	parts := strings.Split(good, ".")
	kid := rawHeader(t, good)["kid"].(string)
	bad = map[string]string{
		"another key":      mint(other, testIssuer, time.Now()),
		"another audience": mint(key, "https://other.example.com", time.Now()),
		"expired":          mint(key, testIssuer, time.Now().Add(-10*time.Minute)),
		"alg none":         b64.EncodeToString([]byte(`{"alg":"none","kid":"`+kid+`","typ":"JWT"}`)) + "." + parts[1] + ".",
		"claims changed":   parts[0] + "." + b64.EncodeToString([]byte(`{"iss":"`+testIssuer+`","aud":"`+testIssuer+`","sub":"mallory","exp":9999999999,"iat":1,"nbf":1}`)) + "." + parts[2],
	}
	return h.front.URL + jwksPath, good, bad
}

// runVerifier runs a verifier program that reads tokens (one a line) on
// stdin and prints "ok <sub>" or "refused" for each.
func runVerifier(t *testing.T, name string, cmd *exec.Cmd, tokens []string) []string {
	t.Helper()
	cmd.Stdin = strings.NewReader(strings.Join(tokens, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func checkVerdicts(t *testing.T, name string, names []string, got []string) {
	t.Helper()
	if len(got) != len(names) {
		t.Fatalf("%s printed %d lines for %d tokens: %q", name, len(got), len(names), got)
	}
	for i, n := range names {
		want := "refused"
		if n == "good" {
			want = "ok alice"
		}
		if got[i] != want {
			t.Errorf("%s, token %q: %q, want %q", name, n, got[i], want)
		}
	}
}

func orderedTokens(good string, bad map[string]string) ([]string, []string) {
	names, toks := []string{"good"}, []string{good}
	for n, tok := range bad {
		names, toks = append(names, n), append(toks, tok)
	}
	return names, toks
}

// The README's Node snippet (jose) accepts Portcullis's token and refuses
// another key, another audience, an expired token, alg none and edited
// claims.
func TestIdentityToken_NodeSnippet(t *testing.T) {
	t.Parallel()
	modules := os.Getenv("PORTCULLIS_NODE_MODULES") // a directory holding node_modules/jose
	_, nodeErr := exec.LookPath("node")
	_, joseErr := os.Stat(filepath.Join(modules, "node_modules", "jose"))
	requireTool(t, "node with the jose package (PORTCULLIS_NODE_MODULES)", modules != "" && nodeErr == nil && joseErr == nil)
	jwksURL, good, bad := snippetTokens(t)
	snippet := strings.Replace(readmeBlock(t, "js"), "https://app.example.com/.well-known/portcullis/jwks.json", jwksURL, 1)
	driver := snippet + `
import { createInterface } from "node:readline";
for await (const line of createInterface({ input: process.stdin })) {
  try { const p = await verifyIdentity(line); console.log("ok " + p.sub); } catch { console.log("refused"); }
}
`
	script := filepath.Join(modules, "portcullis-snippet-"+strings.ReplaceAll(t.Name(), "/", "-")+".mjs")
	if err := os.WriteFile(script, []byte(driver), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(script) })
	names, toks := orderedTokens(good, bad)
	checkVerdicts(t, "node snippet", names, runVerifier(t, "node", exec.Command("node", script), toks))
}

// The README's Python snippet (PyJWT, Debian's python3-jwt) does the same.
func TestIdentityToken_PythonSnippet(t *testing.T) {
	t.Parallel()
	py := "/usr/bin/python3" // Debian's, where python3-jwt installs
	err := exec.Command(py, "-c", "import jwt, cryptography").Run()
	requireTool(t, "python3-jwt and python3-cryptography (Debian)", err == nil)
	jwksURL, good, bad := snippetTokens(t)
	snippet := strings.Replace(readmeBlock(t, "python"), "https://app.example.com/.well-known/portcullis/jwks.json", jwksURL, 1)
	driver := snippet + `
import sys
for line in sys.stdin:
    try:
        print("ok " + verify_identity(line.strip())["sub"])
    except Exception:
        print("refused")
`
	names, toks := orderedTokens(good, bad)
	checkVerdicts(t, "python snippet", names, runVerifier(t, "python", exec.Command(py, "-c", driver), toks))
}
