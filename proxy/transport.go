package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/portcullis-sso/portcullis/config"
)

// Upstream connection pool sizes. Every request to the one upstream host
// takes an idle keep-alive connection or dials a new one; an idle pool
// smaller than the number of requests in flight makes the proxy close and
// re-dial connections under load (TIME_WAIT build-up, a handshake per
// request). 256 covers the concurrency a single replica sees in practice.
const (
	upstreamIdlePerHost = 256
	upstreamIdleTotal   = 512
)

// newUpstreamTransport is the transport to the one upstream, tuned for a
// reverse proxy:
//   - no environment proxy: upstream traffic never leaves through HTTP_PROXY;
//   - an idle pool sized to concurrency (above);
//   - DisableCompression: the client's own Accept-Encoding goes upstream
//     unchanged and the body comes back as the upstream encoded it. Without
//     it, a request without Accept-Encoding makes the transport ask for gzip
//     and then decompress the body in the proxy, which costs CPU and changes
//     what the client receives;
//   - HTTP/1.1 only (the upstream is plain HTTP on a private network).
//
// Plain-HTTP upstreams get the direct path below for bodyless GET and HEAD.
func newUpstreamTransport(cfg *config.Config) http.RoundTripper {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     false,
		DisableCompression:    true,
		MaxIdleConns:          upstreamIdleTotal,
		MaxIdleConnsPerHost:   upstreamIdlePerHost,
		IdleConnTimeout:       upstreamIdleTimeout,
		ResponseHeaderTimeout: cfg.Server.UpstreamTimeout,
		ExpectContinueTimeout: time.Second,
	}
	return newDirectTransport(cfg.UpstreamURL, t, dialer, cfg.Server.UpstreamTimeout)
}

// directTransport sends the common request, a GET or HEAD without a body,
// upgrade or Expect, on a pooled keep-alive connection from the calling
// goroutine: it writes the request and reads the response itself. An
// http.Transport hands every request to a write goroutine and the response
// back from a read goroutine per connection; on a busy single core those
// handoffs are a measurable share of the proxy's CPU per request.
// Everything else goes to the fallback http.Transport. The request is
// written and the response parsed by net/http itself (Request.Write,
// http.ReadResponse).
type directTransport struct {
	addr     string // host:port of the upstream
	dialer   *net.Dialer
	timeout  time.Duration // response headers must arrive within it (0: none)
	idleFor  time.Duration // a pooled connection idle longer is closed
	fallback *http.Transport

	mu   sync.Mutex
	idle []*directConn // LIFO: the warmest connection first
}

type directConn struct {
	c         net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
}

// max1xxResponses bounds the informational responses read before the final
// one (http.Transport allows 5 as well), so an upstream cannot keep the
// request waiting with an endless stream of them.
const max1xxResponses = 5

// upstreamIdleTimeout closes a pooled connection unused this long (as
// IdleConnTimeout does for the standard transport): a middlebox may have
// dropped it silently, and a request on it would wait for the timeout.
const upstreamIdleTimeout = 90 * time.Second

func newDirectTransport(u *url.URL, t *http.Transport, dialer *net.Dialer, timeout time.Duration) http.RoundTripper {
	if u.Scheme != "http" {
		return t // TLS upstreams keep the standard transport
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &directTransport{addr: addr, dialer: dialer, timeout: timeout, idleFor: upstreamIdleTimeout, fallback: t}
}

func (t *directTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.direct(req) {
		return t.fallback.RoundTrip(req)
	}
	for attempt := 0; ; attempt++ {
		dc, reused, err := t.get(req.Context())
		if err != nil {
			return nil, err
		}
		resp, early, err := t.exchange(dc, req)
		if err == nil {
			return resp, nil
		}
		dc.c.Close()
		// A kept-alive connection the upstream closed while it sat idle
		// fails before any response byte, with EOF or a reset: GET and
		// HEAD are safe to resend once on a fresh connection, as
		// http.Transport does. Never after a timeout.
		if !reused || !early || attempt > 0 || req.Context().Err() != nil || !closedByPeer(err) {
			return nil, err
		}
	}
}

func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// direct reports whether req can take the direct path.
func (t *directTransport) direct(req *http.Request) bool {
	return (req.Method == http.MethodGet || req.Method == http.MethodHead) &&
		req.URL.Host == t.addr && req.URL.Scheme == "http" &&
		(req.Body == nil || req.Body == http.NoBody) && req.ContentLength == 0 &&
		len(req.TransferEncoding) == 0 && len(req.Trailer) == 0 &&
		req.Header.Get("Upgrade") == "" && req.Header.Get("Expect") == "" && !req.Close &&
		validHeaders(req.Header)
}

// validHeaders is http.Transport's check before it writes a request (the
// standard transport then refuses what fails it): field names are tokens,
// values hold no control characters but tab.
func validHeaders(h http.Header) bool {
	for name, vs := range h {
		if name == "" {
			return false
		}
		for i := 0; i < len(name); i++ {
			if !isTokenByte(name[i]) {
				return false
			}
		}
		for _, v := range vs {
			for i := 0; i < len(v); i++ {
				if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
					return false
				}
			}
		}
	}
	return true
}

// isTokenByte reports whether c may appear in an RFC 9110 token.
func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func (t *directTransport) get(ctx context.Context) (*directConn, bool, error) {
	for {
		t.mu.Lock()
		n := len(t.idle)
		if n == 0 {
			t.mu.Unlock()
			break
		}
		dc := t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		if time.Since(dc.idleSince) < t.idleFor {
			return dc, true, nil
		}
		dc.c.Close()
	}
	c, err := t.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, false, err
	}
	return &directConn{c: c, br: bufio.NewReaderSize(c, 4<<10), bw: bufio.NewWriterSize(c, 4<<10)}, false, nil
}

func (t *directTransport) put(dc *directConn) {
	if dc.br.Buffered() > 0 { // bytes after the response: never reuse
		dc.c.Close()
		return
	}
	_ = dc.c.SetDeadline(time.Time{})
	dc.idleSince = time.Now()
	t.mu.Lock()
	if len(t.idle) < upstreamIdlePerHost {
		t.idle = append(t.idle, dc)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	dc.c.Close()
}

// exchange writes req and reads the response head. early is true when an
// error came before the first byte of a response.
func (t *directTransport) exchange(dc *directConn, req *http.Request) (resp *http.Response, early bool, err error) {
	ctx := req.Context()
	// Cancelling the request unblocks a write or read in progress.
	stop := context.AfterFunc(ctx, func() { _ = dc.c.SetDeadline(time.Unix(1, 0)) })
	if t.timeout > 0 {
		_ = dc.c.SetReadDeadline(time.Now().Add(t.timeout))
	}
	fail := func(err error, early bool) (*http.Response, bool, error) {
		stop()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, early, err
	}
	if err := req.Write(dc.bw); err != nil {
		return fail(err, true)
	}
	if err := dc.bw.Flush(); err != nil {
		return fail(err, true)
	}
	if _, err := dc.br.Peek(1); err != nil {
		return fail(err, true)
	}
	for informational := 0; ; informational++ {
		resp, err := http.ReadResponse(dc.br, req)
		if err != nil {
			return fail(err, false)
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			if informational == max1xxResponses {
				return fail(errors.New("upstream sent too many 1xx responses"), false)
			}
			if tr := httptrace.ContextClientTrace(ctx); tr != nil && tr.Got1xxResponse != nil {
				if err := tr.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
					return fail(err, false)
				}
			}
			continue // an informational response; the real one follows
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return fail(errors.New("upstream switched protocols without an upgrade request"), false)
		}
		_ = dc.c.SetReadDeadline(time.Time{}) // the body may take as long as it takes
		// NoBody (HEAD, 204, 304) is at its end already.
		resp.Body = &directBody{rc: resp.Body, t: t, dc: dc, stop: stop, reuse: !resp.Close, eof: resp.Body == http.NoBody}
		return resp, false, nil
	}
}

// directBody returns the connection to the pool once the body was read to
// the end and the upstream keeps the connection alive; otherwise it closes
// the connection.
type directBody struct {
	rc    io.ReadCloser
	t     *directTransport
	dc    *directConn
	stop  func() bool
	reuse bool
	eof   bool
	done  bool
}

func (b *directBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, errors.New("read on closed response body")
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *directBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	err := b.rc.Close()
	// stop is false when the context was cancelled (and the deadline set).
	if b.stop() && b.eof && b.reuse && err == nil {
		b.t.put(b.dc)
		return nil
	}
	b.dc.c.Close()
	return err
}

// CloseIdleConnections closes the pooled connections of both paths.
func (t *directTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, dc := range idle {
		dc.c.Close()
	}
	t.fallback.CloseIdleConnections()
}
