package fastpath

import (
	"bufio"
	"bytes"
	"context"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const prefix = "/.portcullis/auth"

// seen is what the handler saw of one request.
type seen struct {
	Method, RequestURI, Host, Proto string
	Path, RawPath, RawQuery         string
	Header                          http.Header
	Close                           bool
	ContentLength                   int64
	Fast                            bool // served by the fast loop
}

// recorder is a handler that notes every request and answers 200 for
// "/.portcullis/auth" and 401 with a body below it.
type recorder struct {
	mu   sync.Mutex
	seen []seen
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, fast := w.(*response)
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.seen = append(rc.seen, seen{
		Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Proto: r.Proto,
		Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery,
		Header: r.Header.Clone(), Close: r.Close, ContentLength: r.ContentLength + int64(len(body)), Fast: fast,
	})
	rc.mu.Unlock()
	if r.URL.Path == prefix {
		w.Header().Set("X-User", "alice")
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = io.WriteString(w, "sign in first\n")
}

func (rc *recorder) requests() []seen {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]seen(nil), rc.seen...)
}

// pair is the same handler served twice: by net/http alone, and by net/http
// behind the fast loop.
type pair struct {
	plainAddr, fastAddr string
	plain, fast         *recorder
	fl                  *Listener
}

func newPair(t testing.TB, o Options) *pair {
	t.Helper()
	p := &pair{plain: &recorder{}, fast: &recorder{}}
	lp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lf, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.Handler, o.Prefix = p.fast, prefix
	if o.ReadHeaderTimeout == 0 {
		o.ReadHeaderTimeout = 5 * time.Second
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 5 * time.Second
	}
	p.fl = Listen(lf, o)
	sp := &http.Server{Handler: p.plain, ReadHeaderTimeout: o.ReadHeaderTimeout, IdleTimeout: o.IdleTimeout, ErrorLog: quietLog()}
	sf := &http.Server{Handler: p.fast, ReadHeaderTimeout: o.ReadHeaderTimeout, IdleTimeout: o.IdleTimeout, ErrorLog: quietLog()}
	go func() { _ = sp.Serve(lp) }()
	go func() { _ = sf.Serve(p.fl) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sp.Shutdown(ctx)
		_ = sf.Shutdown(ctx)
		_ = p.fl.Shutdown(ctx)
	})
	p.plainAddr, p.fastAddr = lp.Addr().String(), lf.Addr().String()
	return p
}

// exchange sends raw on a fresh connection, half-closes it and returns
// everything the server answered until it closed (or 2 s passed).
func exchange(t testing.TB, addr, raw string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		return nil // the server may close before reading it all
	}
	_ = c.(*net.TCPConn).CloseWrite()
	out, _ := io.ReadAll(c)
	return out
}

// answer is one parsed response.
type answer struct {
	Status int
	Body   string
	User   string
}

func answers(raw []byte) []answer {
	var out []answer
	br := bufio.NewReader(bytes.NewReader(raw))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		b, _ := io.ReadAll(resp.Body)
		out = append(out, answer{Status: resp.StatusCode, Body: string(b), User: resp.Header.Get("X-User")})
	}
}

// differ sends raw to both servers and fails when the handler saw other
// requests, or the client got other answers, through the fast loop than
// through net/http alone. It returns what the fast side's handler saw.
func (p *pair) differ(t testing.TB, raw string) []seen {
	t.Helper()
	p.plain.reset()
	p.fast.reset()
	ap := answers(exchange(t, p.plainAddr, raw))
	af := answers(exchange(t, p.fastAddr, raw))
	if !reflect.DeepEqual(ap, af) {
		t.Fatalf("%q:\nnet/http answered %+v\nwith the fast loop %+v", raw, ap, af)
	}
	sp, sf := p.plain.requests(), p.fast.requests()
	strip := func(s []seen) []seen {
		out := make([]seen, len(s))
		for i, v := range s {
			v.Fast = false
			out[i] = v
		}
		return out
	}
	if !reflect.DeepEqual(strip(sp), strip(sf)) {
		t.Fatalf("%q:\nnet/http's handler saw %+v\nbehind the fast loop %+v", raw, sp, sf)
	}
	return sf
}

func (rc *recorder) reset() {
	rc.mu.Lock()
	rc.seen = nil
	rc.mu.Unlock()
}

func quietLog() *stdlog.Logger { return stdlog.New(io.Discard, "", 0) }

func fastCount(s []seen) (fast, slow int) {
	for _, v := range s {
		if v.Fast {
			fast++
		} else {
			slow++
		}
	}
	return
}

func TestFastPath_ReadsWhatNetHTTPReads(t *testing.T) {
	p := newPair(t, Options{})
	const get = "GET /.portcullis/auth HTTP/1.1\r\nHost: auth.example.com\r\n"
	cases := []struct {
		name       string
		raw        string
		fast, slow int // requests served by each loop
	}{
		{"plain", get + "Cookie: s=1\r\nX-Forwarded-Uri: /app?x=1\r\n\r\n", 1, 0},
		{"pipelined", get + "\r\n" + get + "X-Forwarded-Uri: /b\r\n\r\n", 2, 0},
		{"lower-case names are canonical", "GET /.portcullis/auth HTTP/1.1\r\nhost: a\r\ncookie: s=1\r\nx-forwarded-uri: /x\r\nX_Forwarded_User: eve\r\n\r\n", 1, 0},
		{"repeated names keep their order", get + "X-A: 1\r\nX-A: 2\r\nx-a: 3\r\n\r\n", 1, 0},
		{"values trimmed", get + "X-A: \t v \t\r\nX-B:\r\n\r\n", 1, 0},
		{"Pragma", get + "Pragma: no-cache\r\n\r\n", 1, 0},
		{"Connection close", get + "Connection: close\r\n\r\n" + get + "\r\n", 1, 0},
		{"Content-Length 0", get + "Content-Length: 0\r\n\r\n", 1, 0},
		{"HEAD", "HEAD /.portcullis/auth/x HTTP/1.1\r\nHost: a\r\n\r\n", 1, 0},
		{"envoy path and query", "POST /.portcullis/auth/envoy/a%2Fb/%C3%A9?q=%20x&y HTTP/1.1\r\nHost: app\r\nContent-Length: 0\r\n\r\n", 1, 0},
		{"then another path: net/http's for good", get + "\r\nGET /other HTTP/1.1\r\nHost: a\r\n\r\n" + get + "\r\n", 1, 2},
		{"a longer path is not ours", "GET /.portcullis/authx HTTP/1.1\r\nHost: a\r\n\r\n", 0, 1},
		{"HTTP/1.0", "GET /.portcullis/auth HTTP/1.0\r\nHost: a\r\n\r\n", 0, 1},
		{"smuggling by chunked body", get + "Transfer-Encoding: chunked\r\n\r\n2d\r\nGET /.portcullis/auth HTTP/1.1\r\nHost: b\r\n\r\n\r\n0\r\n\r\n", 0, 1},
		{"smuggling by length", get + "Content-Length: 38\r\n\r\nGET /.portcullis/auth HTTP/1.1\r\nHost: b\r\n\r\n", 0, 1},
		{"length and chunked", get + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, 1},
		{"two lengths", get + "Content-Length: 0\r\nContent-Length: 0\r\n\r\n", 0, 1},
		{"two hosts", "GET /.portcullis/auth HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 0, 0},
		{"no host", "GET /.portcullis/auth HTTP/1.1\r\nCookie: s=1\r\n\r\n", 0, 0},
		{"odd host", "GET /.portcullis/auth HTTP/1.1\r\nHost: a b\r\n\r\n", 0, 0},
		{"bare LF", "GET /.portcullis/auth HTTP/1.1\nHost: a\n\n", 0, 1},
		{"bare CR", get + "X-A: 1\r2\r\n\r\n", 0, 0},
		{"folded line", get + "X-A: 1\r\n 2\r\n\r\n", 0, 1},
		{"space before colon", get + "X-A : 1\r\n\r\n", 0, 0},
		{"NUL in a value", get + "X-A: 1\x002\r\n\r\n", 0, 0},
		{"DEL in a value", get + "X-A: 1\x7f2\r\n\r\n", 0, 0},
		{"obs-text in a value", get + "X-A: caf\xc3\xa9\r\n\r\n", 1, 0},
		{"Expect", get + "Expect: 100-continue\r\nContent-Length: 0\r\n\r\n", 0, 1},
		{"Upgrade", get + "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 0, 1},
		{"bad escape", "GET /.portcullis/auth/%zz HTTP/1.1\r\nHost: a\r\n\r\n", 0, 0},
		{"fragment", "GET /.portcullis/auth#x HTTP/1.1\r\nHost: a\r\n\r\n", 0, 1},
		{"absolute form", "GET http://a/.portcullis/auth HTTP/1.1\r\nHost: a\r\n\r\n", 0, 1},
		{"a header over the buffer", get + "Cookie: " + strings.Repeat("s", 5000) + "\r\n\r\n", 0, 1},
		{"lower-case method", "get /.portcullis/auth HTTP/1.1\r\nHost: a\r\n\r\n", 1, 0},
		{"cut off", get + "X-A: 1\r\n", 0, 0},
		{"cut off after one", get + "\r\n" + get, 1, 0},
		{"CONNECT with a path", "CONNECT /.portcullis/auth HTTP/1.1\r\nHost: a\r\n\r\n", 1, 0},
		{"OPTIONS", "OPTIONS /.portcullis/auth/envoy/x HTTP/1.1\r\nHost: a\r\n\r\n", 1, 0},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, 1},
		{"double space", "GET  /.portcullis/auth HTTP/1.1\r\nHost: a\r\n\r\n", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := p.differ(t, tc.raw)
			if f, sl := fastCount(s); f != tc.fast || sl != tc.slow {
				t.Errorf("fast loop served %d and net/http %d, want %d and %d", f, sl, tc.fast, tc.slow)
			}
		})
	}
}
