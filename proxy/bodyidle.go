package proxy

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/portcullis-sso/portcullis/internal/web"
)

// bodyIdle bounds the pause between two reads of a request body to
// server.bodyIdleTimeout, for every body read on the public listener:
// the ones our own handlers read (ACS, SCIM) and the ones streamed
// upstream. ReadHeaderTimeout ends at the headers, so without it a client
// that declares 100,000 bytes and sends 20 holds a connection and a
// goroutine for ever. It is a gap, not a whole-body deadline (nginx's
// client_body_timeout), so a long upload that keeps sending is never cut.
// When the gap passes, the answer is 408 if no response has started;
// otherwise the connection is closed. A handler that answers before the
// body ended (a 401, a 413, a sign-in page not ready yet) gets its answer
// sent with Connection: close: net/http would otherwise read up to 256 KiB
// of what is left of the body, without a deadline, before it sends a single
// byte of the answer.
func (p *Proxy) bodyIdle(next http.Handler) http.Handler {
	timeout := p.cfg.Server.BodyIdleTimeout
	if timeout <= 0 {
		return next // config.Load always sets it; handlers built by hand may not
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		b := &idleBody{rc: r.Body, ctl: http.NewResponseController(w), timeout: timeout}
		r.Body = b
		gw := &bodyGuardWriter{ResponseWriter: w, body: b}
		next.ServeHTTP(gw, r)
		if !b.timedOut.Load() {
			if !b.ended.Load() {
				// What is left of the body is never read: net/http's
				// discard of it, after the answer, must not wait for it.
				_ = b.ctl.SetReadDeadline(time.Now())
			}
			return
		}
		if gw.started {
			panic(http.ErrAbortHandler) // the response is under way: close the connection
		}
		h := w.Header() // drop what the handler set for its own answer
		for k := range h {
			if k != "X-Request-Id" {
				delete(h, k)
			}
		}
		h.Set("Connection", "close")
		web.Page(w, r, http.StatusRequestTimeout, "Request timeout",
			"The request body stopped arriving. Try again.")
	})
}

// idleBody sets the connection's read deadline before every read of the
// body and clears it at the end, so that the deadline never outlives the
// body (net/http's background read after the body would take it for a
// dead client).
type idleBody struct {
	rc       io.ReadCloser
	ctl      *http.ResponseController
	timeout  time.Duration
	timedOut atomic.Bool // read from the handler, set from whoever reads the body
	ended    atomic.Bool // the body was read to its end
}

func (b *idleBody) Read(p []byte) (int, error) {
	_ = b.ctl.SetReadDeadline(time.Now().Add(b.timeout))
	n, err := b.rc.Read(p)
	switch {
	case err == nil:
	case isTimeout(err):
		b.timedOut.Store(true)
	default:
		if err == io.EOF {
			b.ended.Store(true)
		}
		_ = b.ctl.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (b *idleBody) Close() error { return b.rc.Close() }

// bodyGuardWriter passes the response through until the body timed out;
// from then on what the handler writes (a 400 from SCIM, a 502 or 499 from
// the reverse proxy, which only saw a failed read) is dropped, so that
// bodyIdle can answer 408 instead.
type bodyGuardWriter struct {
	http.ResponseWriter
	body    *idleBody
	started bool
}

func (g *bodyGuardWriter) pass() bool {
	if g.started {
		return true
	}
	if g.body.timedOut.Load() {
		return false
	}
	g.started = true
	if !g.body.ended.Load() {
		g.Header().Set("Connection", "close")
	}
	return true
}

func (g *bodyGuardWriter) WriteHeader(code int) {
	if g.pass() {
		g.ResponseWriter.WriteHeader(code)
	}
}

func (g *bodyGuardWriter) Write(b []byte) (int, error) {
	if g.pass() {
		return g.ResponseWriter.Write(b)
	}
	return len(b), nil
}

func (g *bodyGuardWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }
