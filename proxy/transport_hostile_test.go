package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// An upstream that breaks HTTP framing must never make one user's request
// read another user's response. hostileUpstream answers every request with
// the page of the user it names (X-User) and, for the request to /bad,
// misbehaves in one of the ways upstreams really do: the bytes it sends
// beyond the response are a complete second response ("PLANTED"), which a
// client that reuses the connection reads as the answer to the next request.
type misbehaviour struct {
	name   string
	method string // of the /bad request
	// respond writes the answer to /bad for user; planted is the response
	// it smuggles.
	respond func(c net.Conn, user, planted string)
}

func page(user, path string) string { return "page of " + user + " at " + path }

func response(status, body string, extra ...string) string {
	return "HTTP/1.1 " + status + "\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n" +
		strings.Join(extra, "") + "\r\n" + body
}

// writeLater sends s after a pause, so it arrives after the client has read
// the response proper (as it does from a real upstream's second write).
func writeLater(c net.Conn, s string, d time.Duration) {
	time.Sleep(d)
	_, _ = io.WriteString(c, s)
}

var misbehaviours = []misbehaviour{
	{"second response 150ms later", "GET", func(c net.Conn, user, planted string) {
		_, _ = io.WriteString(c, response("200 OK", page(user, "/bad")))
		writeLater(c, planted, 150*time.Millisecond)
	}},
	{"content-length shorter than the body", "GET", func(c net.Conn, user, planted string) {
		body := page(user, "/bad") + strings.Repeat(".", 64<<10-len(page(user, "/bad")))
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n"+body[:56<<10])
		writeLater(c, body[56<<10:]+planted, 20*time.Millisecond)
	}},
	{"content-length and chunked together", "GET", func(c net.Conn, user, planted string) {
		body := page(user, "/bad")
		chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
		// A sender that frames by Content-Length thinks the planted
		// response is part of this one.
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+fmt.Sprint(len(chunked)+len(planted))+
			"\r\nTransfer-Encoding: chunked\r\n\r\n"+chunked)
		writeLater(c, planted, 20*time.Millisecond)
	}},
	{"HEAD answered with a body", "HEAD", func(c net.Conn, user, planted string) {
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+fmt.Sprint(len(planted))+"\r\n\r\n")
		writeLater(c, planted, 20*time.Millisecond)
	}},
	{"body after 204", "GET", func(c net.Conn, user, planted string) {
		_, _ = io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		writeLater(c, planted, 20*time.Millisecond)
	}},
	{"body after 304", "GET", func(c net.Conn, user, planted string) {
		_, _ = io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n")
		writeLater(c, planted, 20*time.Millisecond)
	}},
}

// hostileUpstream serves m on a raw socket and counts connections.
func hostileUpstream(t *testing.T, m misbehaviour) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					user := req.Header.Get("X-User")
					if req.URL.Path == "/bad" {
						planted := response("200 OK", "PLANTED after "+user, "Set-Cookie: app="+user+"\r\n")
						m.respond(c, user, planted)
						continue
					}
					_, _ = io.WriteString(c, response("200 OK", page(user, req.URL.Path), "Set-Cookie: app="+user+"\r\n"))
				}
			})
		}
	})
	return "http://" + ln.Addr().String(), &conns
}

// userRequests is the sequence each transport sends: the first user
// triggers the misbehaviour, the others ask for their own pages, spaced so
// that late bytes arrive while the connection is idle.
func userRequests(t *testing.T, rt http.RoundTripper, base, badMethod string) []string {
	t.Helper()
	var got []string
	for i, step := range []struct{ user, method, path string }{
		{"alice", badMethod, "/bad"},
		{"bob", "GET", "/b"},
		{"carol", "GET", "/c"},
		{"dave", "GET", "/d"},
	} {
		if i > 0 {
			time.Sleep(300 * time.Millisecond)
		}
		req, err := http.NewRequest(step.method, base+step.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-User", step.user)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			got = append(got, step.user+": error")
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(b) > 40 {
			b = b[:40]
		}
		got = append(got, fmt.Sprintf("%s: %d %q cookie=%q", step.user, resp.StatusCode, b, resp.Header.Get("Set-Cookie")))
	}
	return got
}

func TestUpstreamTransport_HostileFramingNeverMixesUsers(t *testing.T) {
	t.Parallel()
	for _, m := range misbehaviours {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			u, _ := hostileUpstream(t, m)
			direct := userRequests(t, upstreamTransport(t, u, 5*time.Second), u, m.method)
			std := &http.Transport{Proxy: nil, DisableCompression: true}
			t.Cleanup(std.CloseIdleConnections)
			standard := userRequests(t, std, u, m.method)
			for _, line := range direct[1:] {
				user, _, _ := strings.Cut(line, ":")
				want := fmt.Sprintf("%s: 200 %q cookie=%q", user, page(user, "/"+user[:1]), "app="+user)
				if line != want {
					t.Errorf("direct path: got %s\nwant %s", line, want)
				}
			}
			if diff := cmp.Diff(standard, direct); diff != "" {
				t.Errorf("direct path and http.Transport disagree (-standard +direct):\n%s", diff)
			}
		})
	}
}

// A response framed by both Content-Length and chunked is read as chunked
// (RFC 9112 §6.3), but its connection is never used again: the upstream and
// the proxy may not agree where it ended.
func TestUpstreamTransport_AmbiguousFramingClosesTheConnection(t *testing.T) {
	t.Parallel()
	u, conns := hostileUpstream(t, misbehaviour{"cl+te", "GET", func(c net.Conn, user, _ string) {
		body := page(user, "/bad")
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"+
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body))
	}})
	rt := upstreamTransport(t, u, 5*time.Second)
	for _, path := range []string{"/bad", "/next"} {
		if code, body, err := roundTrip(t, rt, "GET", u+path, nil); err != nil || code != 200 || !strings.HasPrefix(body, "page of") {
			t.Fatalf("%s: %d %q %v", path, code, body, err)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("connections %d, want 2 (no reuse after Content-Length with Transfer-Encoding)", n)
	}
}

// Upstreams close idle keep-alive connections on their own schedule
// (Node's 5 s, gunicorn's 2 s, every restart). A request must never get a
// 502 for that: a closed pooled connection is noticed before it is used, and
// the one retry dials afresh instead of taking another pooled connection.
func TestUpstreamTransport_ConnectionsTheUpstreamClosedAreNeverUsed(t *testing.T) {
	t.Parallel()
	var inFlight sync.WaitGroup
	var conns atomic.Int64
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/warm" {
			inFlight.Done()
			inFlight.Wait() // all four at once: four pooled connections
		}
		_, _ = io.WriteString(w, "ok")
	}))
	s.Config.IdleTimeout = 100 * time.Millisecond
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	rt := upstreamTransport(t, s.URL, 5*time.Second)
	inFlight.Add(4)
	var warm sync.WaitGroup
	for range 4 {
		warm.Go(func() {
			if _, body, err := roundTrip(t, rt, "GET", s.URL+"/warm", nil); err != nil || body != "ok" {
				t.Errorf("warm-up: %q %v", body, err)
			}
		})
	}
	warm.Wait()
	time.Sleep(400 * time.Millisecond) // the upstream closes all four
	for i := range 4 {
		if code, body, err := roundTrip(t, rt, "GET", s.URL+"/after", nil); err != nil || code != 200 || body != "ok" {
			t.Fatalf("request %d after the upstream closed its idle connections: %d %q %v", i, code, body, err)
		}
	}
	if n := conns.Load(); n < 5 {
		t.Errorf("connections %d, want at least 5 (a fresh one after the idle ones closed)", n)
	}
}

// The retry after a closed pooled connection dials afresh; when that dial
// fails, the error comes back (it was dropped once, and the retry ran on no
// connection at all).
func TestUpstreamTransport_RetryWhoseDialFailsReturnsTheError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err == nil {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		accepted <- c
	}()
	rt := upstreamTransport(t, "http://"+addr, 5*time.Second)
	if code, body, err := roundTrip(t, rt, "GET", "http://"+addr+"/", nil); err != nil || code != 200 || body != "ok" {
		t.Fatalf("first request: %d %q %v", code, body, err)
	}
	c := <-accepted
	ln.Close() // nothing listens any more: the retry's dial is refused
	// The pooled connection looks quiet when handed out; the upstream then
	// closes it before answering, so the request fails early and is retried.
	dt := rt.(*directTransport)
	dt.mu.Lock()
	pooled := len(dt.idle)
	dt.mu.Unlock()
	if pooled != 1 {
		t.Fatalf("%d pooled connections, want 1", pooled)
	}
	go func() {
		br := bufio.NewReader(c)
		_, _ = http.ReadRequest(br)
		c.Close()
	}()
	_, _, err = roundTrip(t, rt, "GET", "http://"+addr+"/", nil)
	if err == nil {
		t.Fatal("no error when the upstream is gone")
	}
}
