package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
)

// upstreamTransport is the transport New builds, for an upstream at u.
func upstreamTransport(t *testing.T, u string, timeout time.Duration) http.RoundTripper {
	t.Helper()
	cfg := &config.Config{Server: config.Server{UpstreamTimeout: timeout}}
	var err error
	if cfg.UpstreamURL, err = url.Parse(u); err != nil {
		t.Fatal(err)
	}
	rt, err := newUpstreamTransport(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.(interface{ CloseIdleConnections() }).CloseIdleConnections() })
	return rt
}

func roundTrip(t *testing.T, rt http.RoundTripper, method, u string, body io.Reader) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// countingServer counts the connections the upstream accepted.
func countingServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	s := httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s, &conns
}

func TestUpstreamTransport_ReusesOneConnectionForSequentialGets(t *testing.T) {
	t.Parallel()
	s, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Method+" "+r.URL.RequestURI())
	}))
	rt := upstreamTransport(t, s.URL, 5*time.Second)
	for i := range 20 {
		code, body, err := roundTrip(t, rt, "GET", s.URL+"/p?i=1", nil)
		if err != nil || code != 200 || body != "GET /p?i=1" {
			t.Fatalf("request %d: %d %q %v", i, code, body, err)
		}
	}
	if code, body, err := roundTrip(t, rt, "HEAD", s.URL+"/h", nil); err != nil || code != 200 || body != "" {
		t.Fatalf("HEAD: %d %q %v", code, body, err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("upstream accepted %d connections for 21 sequential requests, want 1", n)
	}
}

func TestUpstreamTransport_BodiesGoThroughTheStandardTransport(t *testing.T) {
	t.Parallel()
	s, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, r.Method+" "+string(b))
	}))
	rt := upstreamTransport(t, s.URL, 5*time.Second)
	if code, body, err := roundTrip(t, rt, "POST", s.URL+"/", strings.NewReader("hello")); err != nil || code != 200 || body != "POST hello" {
		t.Fatalf("POST: %d %q %v", code, body, err)
	}
}

// rawUpstream answers each request on a connection with reply(n), n counting
// requests over all connections, and closes the connection after
// closeAfter responses on it.
func rawUpstream(t *testing.T, closeAfter int, reply func(n int) string) (string, *atomic.Int64, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns, reqs atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for i := 0; i < closeAfter; i++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_ = req.Body.Close()
					if _, err := io.WriteString(c, reply(int(reqs.Add(1)))); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String(), &conns, &reqs
}

func TestUpstreamTransport_ResendsOnceWhenAnIdleConnectionWasClosed(t *testing.T) {
	t.Parallel()
	// One response per connection, each advertising keep-alive: the next
	// request on it finds the connection closed.
	u, conns, reqs := rawUpstream(t, 1, func(int) string { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" })
	rt := upstreamTransport(t, u, 5*time.Second)
	for i := range 3 {
		if code, body, err := roundTrip(t, rt, "GET", u+"/", nil); err != nil || code != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q %v", i, code, body, err)
		}
		time.Sleep(20 * time.Millisecond) // let the close arrive
	}
	if conns.Load() != 3 || reqs.Load() != 3 {
		t.Errorf("connections %d, requests %d; want 3 and 3", conns.Load(), reqs.Load())
	}
}

func TestUpstreamTransport_TimeoutIsNotRetried(t *testing.T) {
	t.Parallel()
	var arrived atomic.Int64
	release := make(chan struct{})
	s, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) == 1 {
			_, _ = io.WriteString(w, "warm") // puts a connection in the pool
			return
		}
		<-release
	}))
	defer close(release)
	rt := upstreamTransport(t, s.URL, 150*time.Millisecond)
	if _, body, err := roundTrip(t, rt, "GET", s.URL+"/", nil); err != nil || body != "warm" {
		t.Fatalf("first request: %q %v", body, err)
	}
	start := time.Now()
	_, _, err := roundTrip(t, rt, "GET", s.URL+"/slow", nil)
	if !isTimeout(err) {
		t.Fatalf("slow upstream: err %v, want a timeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("timeout took %s", d)
	}
	time.Sleep(50 * time.Millisecond)
	if n := arrived.Load(); n != 2 {
		t.Errorf("upstream saw %d requests, want 2 (a timed-out GET is not resent)", n)
	}
}

func TestUpstreamTransport_CloseDelimitedBodyIsCompleteAndNotReused(t *testing.T) {
	t.Parallel()
	u, conns, _ := rawUpstream(t, 1, func(int) string { return "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it" })
	rt := upstreamTransport(t, u, 5*time.Second)
	for range 2 {
		if code, body, err := roundTrip(t, rt, "GET", u+"/", nil); err != nil || code != 200 || body != "all of it" {
			t.Fatalf("got %d %q %v", code, body, err)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("connections %d, want 2 (no reuse after Connection: close)", n)
	}
}

func TestUpstreamTransport_InformationalResponsesReachTheTrace(t *testing.T) {
	t.Parallel()
	u, _, _ := rawUpstream(t, 10, func(int) string {
		return "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone"
	})
	rt := upstreamTransport(t, u, 5*time.Second)
	var hints []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		hints = append(hints, h.Get("Link"))
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", u+"/", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "done" || len(hints) != 1 || hints[0] != "</a.css>; rel=preload" {
		t.Errorf("got %d %q, hints %q", resp.StatusCode, b, hints)
	}
}

func TestUpstreamTransport_EndlessInformationalResponsesRefused(t *testing.T) {
	t.Parallel()
	u, _, _ := rawUpstream(t, 1, func(int) string {
		return strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", 50) + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	rt := upstreamTransport(t, u, 5*time.Second)
	if code, _, err := roundTrip(t, rt, "GET", u+"/", nil); err == nil {
		t.Fatalf("50 informational responses accepted (final %d), want an error", code)
	}
}

func TestUpstreamTransport_CancelEndsTheWait(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer close(release)
	rt := upstreamTransport(t, s.URL, 0)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/", nil)
	start := time.Now()
	_, err := rt.RoundTrip(req)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancel took %s", d)
	}
}

func TestUpstreamTransport_InvalidHeadersAreRefusedNotWritten(t *testing.T) {
	t.Parallel()
	s, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	rt := upstreamTransport(t, s.URL, 5*time.Second)
	for _, h := range []http.Header{
		{"X-Ok": {"a\r\nX-Injected: 1"}},
		{"X-Ok": {"a\x00b"}},
		{"Bad Name": {"v"}},
		{"Bad:Name": {"v"}},
	} {
		req, _ := http.NewRequest("GET", s.URL+"/", nil)
		req.Header = h
		if resp, err := rt.RoundTrip(req); err == nil {
			resp.Body.Close()
			t.Errorf("header %q was sent (status %d), want an error", h, resp.StatusCode)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("upstream saw %d connections, want none", n)
	}
	if !validHeaders(http.Header{"X-Forwarded-User": {"alice\tx"}, "Cookie": {"a=1; b=2"}}) {
		t.Error("ordinary headers refused")
	}
}

func TestUpstreamTransport_IdleConnectionsExpire(t *testing.T) {
	t.Parallel()
	s, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	rt := upstreamTransport(t, s.URL, 5*time.Second)
	rt.(*directTransport).idleFor = 50 * time.Millisecond
	for range 2 {
		if _, body, err := roundTrip(t, rt, "GET", s.URL+"/", nil); err != nil || body != "ok" {
			t.Fatalf("got %q %v", body, err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if _, body, err := roundTrip(t, rt, "GET", s.URL+"/", nil); err != nil || body != "ok" {
		t.Fatalf("got %q %v", body, err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("connections %d, want 2 (reused once, then a fresh one after the idle timeout)", n)
	}
}
