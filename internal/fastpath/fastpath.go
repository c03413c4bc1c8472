// Package fastpath serves one kind of request — small HTTP/1.1 requests
// without a body for one path prefix, such as an ingress's forward-auth
// questions — on a loop of its own beside net/http, and hands everything
// else to net/http.
//
// It exists for speed alone. Much of what net/http spends on a keep-alive
// request that needs no body is machinery that request does not use: a
// background read per request (one more read system call and a goroutine
// woken to cancel it), a cancellable context per request and per
// connection, the chunking writer. An ingress asks Portcullis once per
// request it serves, so that machinery is most of the cost of the answer.
//
// Listener wraps the public listener. Each accepted connection starts on
// the fast loop. A request is served there only when every part of it is
// in the plainest form: the request line, a single valid Host, token
// header names, values without control characters, no body (no
// Transfer-Encoding; Content-Length absent or 0), no Expect, HTTP/1.1, all
// of it within the loop's buffer. Anything else — a doubt as small as a
// bare LF — and the connection, starting with that request's first byte,
// goes to net/http for good, through Accept. So every request the loop does
// not understand exactly is read by net/http exactly as it would have been
// without the loop, and the loop's own reading is the narrow, strict
// subset. The handler is the same http.Handler net/http serves: what is
// decided about a request does not depend on which loop read it.
package fastpath

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Listener.
type Options struct {
	// Handler answers the requests the fast loop serves.
	Handler http.Handler
	// Prefix is the path the fast loop serves: the request target must be
	// Prefix exactly, or Prefix followed by '/' or '?'.
	Prefix string
	// ReadHeaderTimeout bounds the reading of a request's header once its
	// first byte arrived; IdleTimeout the wait for the next request. The
	// same values as the http.Server's.
	ReadHeaderTimeout, IdleTimeout time.Duration
	// OnPanic is told of a panic in Handler (the connection is closed).
	OnPanic func(v any)
	// OnAnswer and OnHandoff, when set, are told of each request the fast
	// loop answered and each connection it handed to net/http.
	OnAnswer, OnHandoff func()
	// NewServer makes a server like the one behind Accept, for a
	// connection handed over after that one stopped accepting (its request
	// arrived as shutdown began): it gets its one answer there, then is
	// closed. Without NewServer such a connection is closed unanswered.
	NewServer func() *http.Server
}

// newConnGrace is how long a connection that has not sent its first
// request yet may still send it once shutdown began (net/http's Shutdown
// gives a new connection 5 s too): its client may have sent it already.
const newConnGrace = 5 * time.Second

// bufSize is the fast loop's read and write buffer: a request whose
// header does not fit goes to net/http (whose MaxHeaderBytes then
// applies), as does an answer that does not.
const bufSize = 4096

// maxBody is the largest answer body the fast loop sends; a handler that
// writes more gets its connection closed after what fits (the handlers
// it serves answer in a few hundred bytes).
const maxBody = 64 << 10

// Listener is a net.Listener whose Accept returns the connections the
// fast loop handed over.
type Listener struct {
	inner net.Listener
	o     Options

	handoff   chan net.Conn
	acceptErr chan error
	done      chan struct{}
	closeOnce sync.Once
	closed    atomic.Bool

	mu    sync.Mutex
	conns map[*conn]struct{}
	wg    sync.WaitGroup
}

// Listen starts the fast loop on ln's connections.
func Listen(ln net.Listener, o Options) *Listener {
	l := &Listener{
		inner:     ln,
		o:         o,
		handoff:   make(chan net.Conn),
		acceptErr: make(chan error),
		done:      make(chan struct{}),
		conns:     map[*conn]struct{}{},
	}
	go l.acceptLoop()
	return l
}

// Accept returns the next connection the fast loop handed to net/http.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.handoff:
		return c, nil
	case err := <-l.acceptErr:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Addr is the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Close stops accepting and ends the fast loop's idle connections; one
// answering a request closes after its answer. Shutdown waits for them.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		close(l.done)
		err = l.inner.Close()
		l.mu.Lock()
		for c := range l.conns {
			switch c.idle.Load() {
			case idleKeptAlive:
				_ = c.nc.SetReadDeadline(aLongTimeAgo)
			case idleNew:
				_ = c.nc.SetReadDeadline(time.Now().Add(newConnGrace))
			}
		}
		l.mu.Unlock()
	})
	return err
}

// Shutdown closes the listener and waits until every connection on the
// fast loop has ended, closing those still open when ctx ends. (The
// connections handed to net/http are the http.Server's to drain.)
func (l *Listener) Shutdown(ctx context.Context) error {
	_ = l.Close()
	ended := make(chan struct{})
	go func() { l.wg.Wait(); close(ended) }()
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		for c := range l.conns {
			_ = c.nc.Close()
		}
		l.mu.Unlock()
		<-ended
		return ctx.Err()
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// acceptLoop accepts connections and starts each on the fast loop. An
// accept error is handed to net/http's Accept, whose back-off for
// temporary errors then applies; a closed listener ends the loop.
func (l *Listener) acceptLoop() {
	for {
		nc, err := l.inner.Accept()
		if err != nil {
			select {
			case l.acceptErr <- err:
			case <-l.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		c := &conn{l: l, nc: nc}
		if !l.track(c) {
			_ = nc.Close()
			continue
		}
		go c.serve()
	}
}

func (l *Listener) track(c *conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return false
	}
	l.conns[c] = struct{}{}
	l.wg.Add(1)
	return true
}

func (l *Listener) untrack(c *conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	l.wg.Done()
}

// give hands nc to net/http; when the server is gone, it is closed.
func (l *Listener) give(nc net.Conn) {
	if l.o.OnHandoff != nil {
		l.o.OnHandoff()
	}
	select {
	case l.handoff <- nc:
	case <-l.done:
		l.late(nc)
	}
}

// late serves a connection handed over after net/http stopped accepting:
// one request on a server of its own (Options.NewServer), without
// keep-alive, waiting until that connection has closed. Shutdown waits for
// it like for any connection on the fast loop, and closes it when the
// drain deadline passes.
func (l *Listener) late(nc net.Conn) {
	if l.o.NewServer == nil {
		_ = nc.Close()
		return
	}
	srv := l.o.NewServer()
	srv.SetKeepAlivesEnabled(false)
	ended := make(chan struct{})
	var once sync.Once
	srv.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed || s == http.StateHijacked {
			once.Do(func() { close(ended) })
		}
	}
	_ = srv.Serve(&oneConn{c: nc}) // returns at once; the connection is served on
	<-ended
}

// oneConn is a listener that accepts one connection, then reports itself
// closed.
type oneConn struct {
	mu sync.Mutex
	c  net.Conn
}

func (o *oneConn) Accept() (net.Conn, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.c
	o.c = nil
	if c == nil {
		return nil, net.ErrClosed
	}
	return c, nil
}

func (o *oneConn) Close() error   { return nil }
func (o *oneConn) Addr() net.Addr { return dummyAddr{} }

type dummyAddr struct{}

func (dummyAddr) Network() string { return "tcp" }
func (dummyAddr) String() string  { return "fastpath-late" }

// handedConn is a connection handed to net/http: it reads first what the
// fast loop had buffered and not served.
type handedConn struct {
	net.Conn
	br *bufio.Reader
}

func (h *handedConn) Read(p []byte) (int, error) {
	if h.br != nil {
		if h.br.Buffered() > 0 {
			return h.br.Read(p)
		}
		h.br = nil
	}
	return h.Conn.Read(p)
}

// CloseWrite lets net/http half-close, as it does on a plain TCP
// connection before closing it.
func (h *handedConn) CloseWrite() error {
	if cw, ok := h.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
