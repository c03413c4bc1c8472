package main

// Helpers for the real-peer end-to-end test (e2e_test.go): SimpleSAMLphp on a
// private Apache as the IdP, Chromium driven by chromedp as the browser, and
// the real wiring (build + serveOn) in between.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	chromiumPath = "/usr/bin/chromium"
	// tabTimeout bounds everything one subtest does in its browser tab.
	// Generous on purpose: CI machines are slow, more so under -race.
	tabTimeout = 90 * time.Second
	// readyTimeout bounds the wait for /readyz (IdP metadata loaded).
	readyTimeout = 20 * time.Second
)

// requirePeer skips the test when a real peer is missing, or fails it when
// PORTCULLIS_REQUIRE_PEERS is set (CI), so a broken CI image cannot pass by
// skipping.
func requirePeer(t testing.TB, name string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("PORTCULLIS_REQUIRE_PEERS") != "" {
		t.Fatalf("e2e: peer %s is missing and PORTCULLIS_REQUIRE_PEERS is set (bash .ci/run installs it)", name)
	}
	t.Skipf("needs %s (bash .ci/run installs and starts it); set PORTCULLIS_REQUIRE_PEERS=1 to require", name)
}

// requireE2EPeers checks for everything the SimpleSAMLphp + Chromium test needs.
func requireE2EPeers(t *testing.T) {
	t.Helper()
	out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", "simplesamlphp").Output()
	requirePeer(t, "simplesamlphp (Debian package)", string(out) == "install ok installed")
	_, err := exec.LookPath("apache2ctl")
	if err != nil {
		_, err = os.Stat("/usr/sbin/apache2ctl") // not on a normal user's PATH
	}
	requirePeer(t, "apache2ctl", err == nil)
	fi, err := os.Stat(chromiumPath)
	requirePeer(t, chromiumPath, err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0)
}

// lockedBuffer collects the proxy's log lines; zap writes from many goroutines
// while the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logEntries decodes the JSON log lines; a line that is not JSON is skipped.
func (b *lockedBuffer) logEntries() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// countAudit counts audit log entries with this event for this user.
func (b *lockedBuffer) countAudit(event, user string) int {
	n := 0
	for _, e := range b.logEntries() {
		if e["logger"] == "audit" && e["event"] == event && e["user"] == user {
			n++
		}
	}
	return n
}

// listenLoopback opens a TCP listener on a free loopback port.
func listenLoopback(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// freePort returns a loopback port that was free a moment ago, for a peer
// (Apache) that must open the port itself.
func freePort(t testing.TB) int {
	t.Helper()
	ln := listenLoopback(t)
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// upstreamView is what the echo upstream received, as it shows it in the page.
type upstreamView struct {
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Query  string      `json:"query"`
	Header http.Header `json:"header"`
}

var upstreamPage = template.Must(template.New("up").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>upstream</title></head>
<body><h1>upstream</h1><pre id="headers">{{.}}</pre></body></html>
`))

// newEchoUpstream is the app behind the proxy: an HTML page that shows the
// request it received, headers included, as JSON in <pre id="headers">.
func newEchoUpstream(t testing.TB) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" {
			http.NotFound(w, r)
			return
		}
		v, err := json.MarshalIndent(upstreamView{r.Method, r.URL.Path, r.URL.RawQuery, r.Header}, "", "  ")
		if err != nil {
			http.Error(w, "marshal", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = upstreamPage.Execute(w, string(v))
	}))
	t.Cleanup(s.Close)
	return s
}

// headerValues returns every value of every header whose name normalises
// (lowercase, '_' read as '-') to name, and how many distinct names matched.
func headerValues(h http.Header, name string) (values []string, names []string) {
	want := normaliseHeaderName(name)
	for k, vs := range h {
		if normaliseHeaderName(k) == want {
			names = append(names, k)
			values = append(values, vs...)
		}
	}
	return values, names
}

func normaliseHeaderName(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "_", "-")
}

// cookieNames returns the cookie names in a Cookie header value.
func cookieNames(header []string) []string {
	var names []string
	for _, line := range header {
		for part := range strings.SplitSeq(line, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if name != "" {
				names = append(names, name)
			}
		}
	}
	return names
}

// ---------------------------------------------------------------- IdP

// simpleSAMLphp is one running test IdP (a private Apache instance).
type simpleSAMLphp struct {
	dir         string
	metadataURL string
	origin      string // http://127.0.0.1:PORT
	ssoURL      string
}

// startSimpleSAMLphp starts the IdP on port with our SP registered, via
// .ci/simplesamlphp.sh (extraArgs go to its start command), and stops it
// (and removes its workdir) in Cleanup.
func startSimpleSAMLphp(t testing.TB, port int, spEntityID, spACS, spCert string, extraArgs ...string) *simpleSAMLphp {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "..", ".ci", "simplesamlphp.sh"))
	if err != nil {
		t.Fatal(err)
	}
	// Apache's children run as www-data when we are root: the workdir and
	// every parent must be searchable by it, which t.TempDir (0700) is not.
	dir, err := os.MkdirTemp("", "portcullis-e2e-idp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	idp := &simpleSAMLphp{dir: dir}

	run := func(timeout time.Duration, args ...string) (stdout string, err error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Run(); err != nil {
			return out.String(), fmt.Errorf("simplesamlphp.sh %s: %w\nstderr:\n%s", args[0], err, errb.String())
		}
		return out.String(), nil
	}
	// Registered before start, so a half-started Apache is stopped too.
	t.Cleanup(func() {
		if _, err := run(2*time.Minute, "stop", "--workdir", dir); err != nil {
			t.Errorf("stop IdP: %v", err)
		}
	})
	out, err := run(5*time.Minute, append([]string{"start",
		"--port", strconv.Itoa(port), "--workdir", dir,
		"--sp-entity-id", spEntityID, "--sp-acs", spACS, "--sp-cert", spCert,
		// Single Logout at /saml/slo beside the ACS (both bindings work;
		// SimpleSAMLphp 1.19 registers one).
		"--sp-slo", strings.Replace(spACS, "/saml/acs", "/saml/slo", 1)}, extraArgs...)...)
	if err != nil {
		idp.logTail(t, 100)
		t.Fatal(err)
	}
	lines := strings.Fields(strings.TrimSpace(out))
	if len(lines) == 0 {
		t.Fatalf("simplesamlphp.sh start printed no metadata URL")
	}
	idp.metadataURL = lines[len(lines)-1]
	u, err := url.Parse(idp.metadataURL)
	if err != nil || u.Scheme != "http" || u.Host != net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) {
		t.Fatalf("simplesamlphp.sh start: unexpected metadata URL %q", idp.metadataURL)
	}
	idp.origin = u.Scheme + "://" + u.Host
	idp.ssoURL = idp.origin + "/simplesaml/saml2/idp/SSOService.php"
	return idp
}

// logTail writes the last n lines of the IdP's log files to the test log.
func (idp *simpleSAMLphp) logTail(t testing.TB, n int) {
	t.Helper()
	for _, f := range []string{"log/simplesamlphp.log", "apache2/log/error.log", "apache2/log/php_error.log"} {
		data, err := os.ReadFile(filepath.Join(idp.dir, f))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		t.Logf("--- IdP %s (last %d lines):\n%s", f, len(lines), strings.Join(lines, "\n"))
	}
}

// ---------------------------------------------------------------- proxy

// waitReady polls the admin /readyz until it answers 200 (IdP metadata
// loaded), the server goroutine ends (done closes), or the timeout passes.
func waitReady(adminURL string, done <-chan struct{}, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := "no answer yet"
	for {
		resp, err := client.Get(adminURL + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/readyz not ready after %s; last answer: %s", timeout, last)
		}
		select {
		case <-done:
			return errors.New("serveOn returned before the proxy was ready")
		case <-tick.C:
		}
	}
}

// serveLogged builds the app from the config at cfgPath, logging JSON at
// debug level into logs, and serves it as `serve` does on pub and adm
// until the test ends. It returns once /readyz answers 200.
func serveLogged(t testing.TB, cfgPath string, logs *lockedBuffer, pub, adm net.Listener) *app {
	t.Helper()
	log, err := newLogger("json", "debug", logs)
	if err != nil {
		t.Fatal(err)
	}
	a, err := build(context.Background(), cfgPath, log)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var serveErr error
	go func() {
		defer close(done)
		serveErr = serveOn(ctx, a, pub, adm, log)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
			if serveErr != nil {
				t.Errorf("serveOn: %v", serveErr)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("serveOn did not return within 60s of cancel")
		}
	})
	if err := waitReady("http://"+adm.Addr().String(), done, readyTimeout); err != nil {
		t.Fatalf("%v\nproxy logs:\n%s", err, logs.String())
	}
	return a
}

// ---------------------------------------------------------------- secrets

// secret records a value that must never appear in the proxy's logs.
func (e *e2e) secret(what, value string) {
	e.secretsMu.Lock()
	defer e.secretsMu.Unlock()
	if _, ok := e.secrets[value]; !ok {
		e.secrets[value] = what
	}
}

func (e *e2e) isSessionChunk(name string) bool {
	rest, ok := strings.CutPrefix(name, e.cookieName+"_")
	return ok && len(rest) == 1 && rest[0] >= '1' && rest[0] <= '9'
}

// isOurCookie reports whether a cookie name belongs to Portcullis (session,
// session chunk or sign-in tracking cookie).
func (e *e2e) isOurCookie(name string) bool {
	return name == e.cookieName || e.isSessionChunk(name) || strings.HasPrefix(name, e.trackingPrefix)
}

// checkLogsClean fails if the proxy's logs contain a SAMLResponse or a
// cookie value the browser held.
func (e *e2e) checkLogsClean(t *testing.T) {
	t.Helper()
	logs := e.logs.String()
	if strings.Contains(logs, "SAMLResponse=") {
		t.Errorf("proxy logs contain %q", "SAMLResponse=")
	}
	e.secretsMu.Lock()
	defer e.secretsMu.Unlock()
	sawResponse := false
	for v, what := range e.secrets {
		if what == "a SAMLResponse" {
			sawResponse = true
		}
		// A prefix catches a truncated copy too; a URL-escaped copy differs
		// only after the first + / =, so check that form as well.
		probe := v
		if len(probe) > 40 {
			probe = probe[:40]
		}
		if strings.Contains(logs, probe) || strings.Contains(logs, url.QueryEscape(probe)) {
			t.Errorf("proxy logs contain %s", what)
		}
	}
	if !sawResponse {
		t.Errorf("no SAMLResponse was captured from the browser, so the log check for it proves nothing")
	}
}
