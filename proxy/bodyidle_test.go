package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/config"
)

// A client that declares a body and stops sending gets 408 once
// server.bodyIdleTimeout passes, whoever reads the body: the upstream (a
// public route) or one of our own handlers (the SCIM mount here).
func TestProxy_StalledBodyGets408(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	ownHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			w.Header().Set("Content-Type", "application/scim+json")
			w.WriteHeader(http.StatusBadRequest) // what SCIM answers for a body it cannot read
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	h := newHarnessWith(t, up.URL, func(c *config.Config) {
		c.Server.BodyIdleTimeout = 300 * time.Millisecond
		c.SCIM = config.SCIM{Enabled: true, BasePath: "/scim/v2"}
	}, func(o *Options) { o.SCIM = ownHandler })
	for _, path := range []string{"/healthz", "/scim/v2/Users"} {
		t.Run(path, func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(h.front.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			start := time.Now()
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: app\r\nContent-Length: 100000\r\n\r\n%s", path, strings.Repeat("x", 20))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer to a stalled body: %v", err)
			}
			page, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(page), "Request ID") {
				t.Fatalf("status %d, want 408", resp.StatusCode)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("408 after %s", d)
			}
			if resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("Set-Cookie") != "" {
				t.Errorf("408 headers %v", resp.Header)
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
				t.Errorf("after the 408: %q, %v; want the connection closed", rest, err)
			}
		})
	}
}

// A handler that answers without reading the body (401 before the body is
// needed, sign-in not ready yet) is answered at once, and the connection
// closed: not held while net/http reads the rest of a body that never
// comes.
func TestProxy_AnswerBeforeTheBodyIsSentAndCloses(t *testing.T) {
	t.Parallel()
	early := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	})
	h := newHarnessWith(t, newEcho(t).URL, func(c *config.Config) {
		c.Server.BodyIdleTimeout = 30 * time.Second
		c.SCIM = config.SCIM{Enabled: true, BasePath: "/scim/v2"}
	}, func(o *Options) { o.SCIM = early })
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "POST /scim/v2/Users HTTP/1.1\r\nHost: app\r\nContent-Length: 100000\r\n\r\n%s", strings.Repeat("x", 20))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer while the body is unsent: %v", err)
	}
	_, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
		t.Errorf("status %d, close %v; want 401 and the connection closed", resp.StatusCode, resp.Close)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
		t.Errorf("after the answer: %q, %v; want the connection closed", rest, err)
	}
}

// The timeout is a gap between reads, not a deadline for the whole body: an
// upload that takes longer than it but never pauses that long goes through.
func TestProxy_SlowSteadyUploadIsNotCut(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	h := newHarness(t, up.URL, func(c *config.Config) { c.Server.BodyIdleTimeout = 300 * time.Millisecond })
	pr, pw := io.Pipe()
	go func() {
		for range 10 { // 1 s in all, 100 ms apart
			time.Sleep(100 * time.Millisecond)
			_, _ = pw.Write([]byte("0123456789"))
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", h.front.URL+"/healthz", pr)
	req.ContentLength = 100
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
}
