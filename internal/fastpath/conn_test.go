package fastpath

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serveFast serves h behind the fast loop only (no net/http behind it:
// what is handed over is closed by the test's Cleanup).
func serveFast(t *testing.T, h http.Handler, o Options) (*Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.Handler, o.Prefix = h, prefix
	fl := Listen(ln, o)
	srv := &http.Server{Handler: h, ErrorLog: quietLog()}
	go func() { _ = srv.Serve(fl) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = fl.Shutdown(ctx)
	})
	return fl, ln.Addr().String()
}

const plainGet = "GET /.portcullis/auth HTTP/1.1\r\nHost: a\r\n\r\n"

// A value from the directory or the IdP may hold CR LF; it must not start
// a header (or an answer) of its own, and a name that is not a token is
// not sent at all.
func TestFastPath_NoHeaderSplitting(t *testing.T) {
	_, addr := serveFast(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-User", "eve\r\nSet-Cookie: session=stolen\r\n\r\nHTTP/1.1 200 OK")
		w.Header()["Bad Name"] = []string{"x"}
		w.Header()["X-Nul"] = []string{"a\x00b"}
		w.WriteHeader(http.StatusOK)
	}), Options{})
	raw := string(exchange(t, addr, plainGet))
	head, _, _ := strings.Cut(raw, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		if strings.HasPrefix(strings.ToLower(line), "set-cookie") || strings.HasPrefix(line, "Bad Name") || strings.HasPrefix(line, "HTTP/1.1 200 OK") && line != strings.Split(head, "\r\n")[0] {
			t.Errorf("header line %q reached the client:\n%s", line, raw)
		}
	}
	if !strings.Contains(head, "X-User: eve  Set-Cookie: session=stolen    HTTP/1.1 200 OK") || !strings.Contains(head, "X-Nul: a b") {
		t.Errorf("the values were not sent with their control characters as spaces:\n%s", raw)
	}
	if n := len(answers([]byte(raw))); n != 1 {
		t.Errorf("the client read %d answers, want 1:\n%s", n, raw)
	}
}

// A connection that sends half a header and stops is closed after
// ReadHeaderTimeout; one that sends nothing after IdleTimeout. The handler
// never sees either.
func TestFastPath_TimeoutsCloseStalledConnections(t *testing.T) {
	var calls atomic.Int32
	_, addr := serveFast(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }),
		Options{ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	for _, start := range []string{"GET /.portcullis/auth HTTP/1.1\r\nHost: a\r\n", plainGet} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, start)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		out, err := io.ReadAll(c) // returns when the server closes
		if err != nil {
			t.Fatalf("after %q the connection was not closed by the server: %v", start, err)
		}
		if want := strings.HasSuffix(start, "\r\n\r\n"); (len(answers(out)) == 1) != want {
			t.Errorf("after %q the server answered %q", start, out)
		}
	}
	if calls.Load() != 1 {
		t.Errorf("the handler was called %d times, want 1 (the whole request only)", calls.Load())
	}
}

// Shutdown ends idle connections at once, lets one being answered finish
// with Connection: close, and returns without waiting for IdleTimeout.
func TestFastPath_ShutdownDrains(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := Listen(ln, Options{Prefix: prefix, IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == prefix+"/slow" {
				entered <- struct{}{}
				<-release
			}
		})})
	go func() {
		for { // no net/http behind it: nothing is handed over here
			if _, err := fl.Accept(); err != nil {
				return
			}
		}
	}()
	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_, _ = io.WriteString(idle, plainGet)
	br := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("first answer: %v %v", resp, err)
	}
	busy, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, _ = io.WriteString(busy, "GET /.portcullis/auth/slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- fl.Shutdown(ctx)
	}()
	_ = idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("the idle connection was not closed at shutdown: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a request was being answered", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	_ = busy.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil || resp.StatusCode != http.StatusOK || !resp.Close {
		t.Fatalf("the request under way got %v %v, want 200 with Connection: close", resp, err)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v (it waited for the drain deadline)", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Errorf("the listener still accepts after Shutdown")
	}
}

// A panic in the handler is reported and closes the connection;
// http.ErrAbortHandler closes it without a report, as net/http does.
func TestFastPath_PanicClosesTheConnection(t *testing.T) {
	var reported atomic.Value
	_, addr := serveFast(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("abort") != "" {
			panic(http.ErrAbortHandler)
		}
		panic("boom")
	}), Options{OnPanic: func(v any) { reported.Store(v) }})
	if out := exchange(t, addr, "GET /.portcullis/auth?abort=1 HTTP/1.1\r\nHost: a\r\n\r\n"); len(out) != 0 || reported.Load() != nil {
		t.Errorf("ErrAbortHandler: the client got %q, reported %v", out, reported.Load())
	}
	if out := exchange(t, addr, plainGet+plainGet); len(out) != 0 || reported.Load() != "boom" {
		t.Errorf("panic: the client got %q, reported %v", out, reported.Load())
	}
}

// A connection handed to net/http can still be hijacked (a WebSocket
// upgrade in proxy mode with forwardAuth on), and the bytes the client sent
// right behind the request, which the fast loop had read, reach the
// hijacker in order.
func TestFastPath_HandedConnectionCanBeHijacked(t *testing.T) {
	_, addr := serveFast(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			w.WriteHeader(http.StatusOK)
			return
		}
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer nc.Close()
		line, _ := brw.ReadString('\n')
		_, _ = io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\necho "+line)
	}), Options{})
	raw := plainGet + "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello over the upgrade\n"
	out := string(exchange(t, addr, raw))
	if !strings.Contains(out, "HTTP/1.1 200 OK") || !strings.HasSuffix(out, "\r\n\r\necho hello over the upgrade\n") {
		t.Errorf("got %q", out)
	}
}

// A connection accepted before shutdown whose first request had not
// arrived yet is still answered when it arrives (within the drain), as
// net/http answers one: a forward-auth question on the loop, anything
// else on a server of its own; both with Connection: close. A kept-alive
// idle connection is closed at once.
func TestFastPath_ShutdownStillAnswersAnAcceptedConnection(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "answered "+r.URL.Path) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := Listen(ln, Options{Handler: h, Prefix: prefix, IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute,
		NewServer: func() *http.Server { return &http.Server{Handler: h} }})
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(fl) }()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		return c
	}
	kept, other, question := dial(), dial(), dial()
	_, _ = io.WriteString(kept, plainGet)
	keptR := bufio.NewReader(kept)
	resp, err := http.ReadResponse(keptR, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first answer: %v %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	for { // all three accepted and on the loop
		fl.mu.Lock()
		n := len(fl.conns)
		fl.mu.Unlock()
		if n == 3 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}

	done := make(chan error, 2)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		done <- fl.Shutdown(ctx)
	}()
	if _, err := keptR.ReadByte(); err != io.EOF {
		t.Fatalf("the kept-alive idle connection was not closed at shutdown: %v", err)
	}
	for _, tc := range []struct {
		c    net.Conn
		path string
	}{{other, "/other"}, {question, prefix}} {
		_, _ = io.WriteString(tc.c, "GET "+tc.path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(tc.c), nil)
		if err != nil {
			t.Fatalf("%s sent after shutdown began: %v", tc.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "answered "+tc.path || !resp.Close {
			t.Errorf("%s: %d %q close=%v, want 200, its answer and Connection: close", tc.path, resp.StatusCode, b, resp.Close)
		}
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
