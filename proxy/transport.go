package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/web"
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
func newUpstreamTransport(cfg *config.Config, log *zap.Logger) (http.RoundTripper, error) {
	return newUpstreamTransportRecheck(cfg, log, tlsRecheck)
}

func newUpstreamTransportRecheck(cfg *config.Config, log *zap.Logger, recheck time.Duration) (http.RoundTripper, error) {
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
	if cfg.UpstreamURL.Scheme == "https" {
		tc, err := upstreamTLSConfig(cfg, log, recheck)
		if err != nil {
			return nil, err
		}
		t.TLSClientConfig = tc
	}
	return newDirectTransport(cfg.UpstreamURL, t, dialer, cfg.Server.UpstreamTimeout), nil
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
//
// Pooling rules. A connection carries many users' requests one after
// another, so a byte left over from one response must never be read as the
// next: that would hand one user another user's page. The rules:
//   - A connection goes back to the pool only when its response was read
//     to the end of its framing, the upstream did not ask to close, the
//     framing was unambiguous (never Content-Length with Transfer-Encoding)
//     and nothing further is buffered on it.
//   - When a pooled connection is handed out it is checked again, without
//     blocking, for bytes that arrived or a close that happened while it
//     sat idle (a late second response, a body after HEAD, 204 or 304, an
//     upstream's keep-alive timeout). Such a connection is closed, never
//     used. http.Transport's per-connection reader gives the same promise
//     by closing a connection on which unsolicited bytes arrive.
//   - Connections idle longer than idleFor are closed.
//   - A GET or HEAD that failed before the first byte of its response on
//     a reused connection is sent once more, on a newly dialed connection.
//
// Where the readability check is not available (see probeSupported), the
// direct path is off and every request takes the fallback.
type directTransport struct {
	addr     string // host:port of the upstream
	dialer   *net.Dialer
	timeout  time.Duration // response headers must arrive within it (0: none)
	idleFor  time.Duration // a pooled connection idle longer is closed
	fallback *http.Transport

	mu   sync.Mutex
	idle []*directConn // LIFO: the warmest connection first
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
	if u.Scheme != "http" || !probeSupported {
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
	dc, reused, err := t.get(req.Context())
	for attempt := 0; ; attempt++ {
		if err != nil {
			return nil, err
		}
		var resp *http.Response
		var early bool
		if resp, early, err = t.exchange(dc, req); err == nil {
			return resp, nil
		}
		dc.c.Close()
		// A kept-alive connection the upstream closed just as it was
		// handed out fails before any response byte, with EOF or a reset:
		// GET and HEAD are safe to resend once, as http.Transport does,
		// and on a connection dialed for it, never another pooled one.
		// Never after a timeout.
		if !reused || !early || attempt > 0 || req.Context().Err() != nil || !closedByPeer(err) {
			return nil, err
		}
		dc, err = t.dial(req.Context())
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
		if !web.IsToken(name) {
			return false
		}
		for _, v := range vs {
			if !web.PlainValue(v) {
				return false
			}
		}
	}
	return true
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
