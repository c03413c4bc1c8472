package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// With forwardAuth on, the public listener answers plain forward-auth
// questions on the fast loop and hands the connection to net/http at the
// first other request, where it goes on serving; the two counters say
// which loop answered.
func TestServe_ForwardAuthFastLoopThenNetHTTPOnOneConnection(t *testing.T) {
	path := testConfigDir(t, "forwardAuth: {enabled: true}\ntrustedProxies: [\"127.0.0.1\"]\n")
	pub, adm := serveInProcessBoth(t, path)
	c, err := net.Dial("tcp", pub)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	ask := "GET /.portcullis/auth HTTP/1.1\r\nHost: auth.example.com\r\nX-Forwarded-Method: GET\r\n" +
		"X-Forwarded-Proto: https\r\nX-Forwarded-Host: app.example.com\r\nX-Forwarded-Uri: /page?x=1\r\n\r\n"
	br := bufio.NewReader(c)
	read := func(what string) *http.Response {
		t.Helper()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	// Two questions pipelined, then the SP metadata (net/http's), then a
	// question again, now on net/http.
	if _, err := io.WriteString(c, ask+ask); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		resp := read("question")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("X-Portcullis-Signin"), "rd=%2Fpage%3Fx%3D1") {
			t.Fatalf("question %d: %d, sign-in %q", i, resp.StatusCode, resp.Header.Get("X-Portcullis-Signin"))
		}
	}
	want := map[string]string{"portcullis_fastpath_answers_total": "2", "portcullis_fastpath_handoffs_total": "0"}
	checkMetrics(t, adm, want)
	_, _ = io.WriteString(c, "GET /saml/metadata HTTP/1.1\r\nHost: auth.example.com\r\n\r\n")
	if resp := read("metadata"); resp.StatusCode != http.StatusOK {
		t.Fatalf("metadata after the questions: %d", resp.StatusCode)
	}
	_, _ = io.WriteString(c, ask)
	if resp := read("question on net/http"); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Portcullis-Signin") == "" {
		t.Fatalf("question on net/http: %d", resp.StatusCode)
	}
	want["portcullis_fastpath_handoffs_total"] = "1"
	checkMetrics(t, adm, want)
}

func checkMetrics(t *testing.T, admin string, want map[string]string) {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for name, v := range want {
		if !strings.Contains(string(b), "\n"+name+" "+v+"\n") {
			t.Errorf("metrics: want %s %s, got lines %q", name, v, grepLines(string(b), name))
		}
	}
}

func grepLines(s, sub string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, sub) {
			out = append(out, l)
		}
	}
	return out
}
