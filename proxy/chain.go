package proxy

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/internal/web"
)

// recoverer turns a panic below it into a 500 page, except
// http.ErrAbortHandler, which ReverseProxy uses to abort a stream and which
// must reach net/http unchanged.
func (p *Proxy) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				p.log.Error("panic serving request",
					zap.String("request_id", web.RequestID(r.Context())),
					zap.Any("panic", v), zap.Stack("stack"))
				web.Page(w, r, http.StatusInternalServerError, "Something went wrong",
					"The request could not be completed.")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// scope gives the request its ID and client IP, and writes the access-log
// line after the response.
func (p *Proxy) scope(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := p.now()
		id := r.Header.Get("X-Request-Id")
		if !saneRequestID(id) {
			id = newRequestID()
		}
		ids := []string{id, id} // one allocation for both headers' values
		r.Header["X-Request-Id"] = ids[0:1:1]
		ctx := web.WithRequestID(r.Context(), id)
		sc := &scoped{rec: recorder{ResponseWriter: w}} // one allocation for both
		rec, st := &sc.rec, &sc.st
		rec.Header()["X-Request-Id"] = ids[1:2:2]
		ctx = withState(ctx, st)
		r = r.WithContext(ctx)
		defer func() {
			end := p.now()
			p.observe(st, start, end)
			if ce := p.access.Check(zap.InfoLevel, "request"); ce != nil {
				status := rec.status
				if status == 0 {
					status = http.StatusOK
				}
				ce.Write(
					zap.String("request_id", id),
					zap.String("method", r.Method),
					zap.String("path", r.URL.Path),
					zap.Int("status", status),
					zap.Duration("duration", end.Sub(start)),
					zap.String("user", st.user),
					zap.String("client_ip", p.clientIP(r).String()),
					zap.Int64("bytes", rec.bytes),
				)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// saneRequestID accepts an inbound ID only if it is short and made of safe
// characters, so it cannot inject into logs or pages.
func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// peerAddr is the address of the TCP peer.
func peerAddr(r *http.Request) netip.Addr { return web.PeerAddr(r) }

func (p *Proxy) trusted(a netip.Addr) bool { return web.Trusted(p.cfg.Trusted, a) }

// clientIP is web.ClientIP with trustedProxies.
func (p *Proxy) clientIP(r *http.Request) netip.Addr { return web.ClientIP(r, p.cfg.Trusted) }

// recorder captures status and size for the access log. Unwrap lets
// http.ResponseController reach Flush and Hijack, which ReverseProxy needs
// for server-sent events and WebSocket upgrades.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 || code == http.StatusSwitchingProtocols {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Hijack is called by ReverseProxy once the upstream agreed to switch
// protocols; it then writes the 101 straight to the connection, so the
// access log records it here.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil && r.status == 0 {
		r.status = http.StatusSwitchingProtocols
	}
	return conn, brw, err
}

// Flush is here too because some callers type-assert http.Flusher directly.
func (r *recorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// isTimeout reports whether err is an upstream timeout.
func isTimeout(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, errUpstreamTimeout)
}

var errUpstreamTimeout = errors.New("upstream timeout")

// scoped is what scope allocates for every request, in one piece.
type scoped struct {
	rec recorder
	st  requestState
}

// requestState carries what later handlers learn back to the access log
// and the metrics, and the steps' exchange.
type requestState struct {
	x       exchange
	user    string
	outcome metrics.Outcome // for portcullis_requests_total
	// upstreamStart and upstreamEnd bound the upstream's share of the
	// request (see Proxy.observe), as offsets from the process's epoch (8
	// bytes each rather than a time.Time's 24); zero when it never reached
	// the upstream.
	upstreamStart, upstreamEnd time.Duration
}
