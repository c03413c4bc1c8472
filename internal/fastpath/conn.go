package fastpath

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/portcullis-sso/portcullis/internal/web"
)

// conn is one connection on the fast loop.
type conn struct {
	l      *Listener
	nc     net.Conn
	remote string
	idle   atomic.Int32 // busy, or waiting for a first or a next request (Close may end it)
	served int          // requests answered
}

// What a connection is doing, for Close.
const (
	busy          = iota
	idleNew       // accepted, its first request not begun
	idleKeptAlive // waiting for the next request
)

var crlfcrlf = []byte("\r\n\r\n")

// serve runs the fast loop on one connection until it closes or goes to
// net/http.
func (c *conn) serve() {
	defer c.l.untrack(c)
	br := bufio.NewReaderSize(c.nc, bufSize)
	bw := bufio.NewWriterSize(c.nc, bufSize)
	w := &response{}
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler && c.l.o.OnPanic != nil {
				c.l.o.OnPanic(v)
			}
			_ = c.nc.Close()
		}
	}()
	c.remote = c.nc.RemoteAddr().String()
	for {
		if br.Buffered() == 0 {
			if !c.awaitRequest(br) {
				_ = c.nc.Close()
				return
			}
		}
		head, err := c.readHead(br)
		if err != nil {
			_ = bw.Flush() // pipelined answers before the stall still go out
			_ = c.nc.Close()
			return
		}
		var req *http.Request
		if head != nil {
			req = parseRequest(head, c.l.o.Prefix, c.remote)
		}
		if req == nil { // not ours, or not plain enough: net/http's from here on
			if bw.Flush() != nil || !c.likeKeptAlive(br) {
				_ = c.nc.Close()
				return
			}
			_ = c.nc.SetReadDeadline(time.Time{})
			c.l.give(&handedConn{Conn: c.nc, br: br})
			return
		}
		_, _ = br.Discard(len(head))
		w.reset(req)
		c.l.o.Handler.ServeHTTP(w, req)
		c.served++
		if c.l.o.OnAnswer != nil {
			c.l.o.OnAnswer()
		}
		closing := req.Close || w.closeAfter() || c.l.closed.Load()
		if !w.writeTo(bw, closing) {
			_ = c.nc.Close()
			return
		}
		if closing || br.Buffered() == 0 { // pipelined answers leave together
			if bw.Flush() != nil || closing {
				_ = c.nc.Close()
				return
			}
		}
	}
}

// awaitRequest waits up to IdleTimeout for the next request's first byte.
// The deadline is set before the connection is marked idle, so that a
// Close that finds it idle sets its own deadline after this one.
func (c *conn) awaitRequest(br *bufio.Reader) bool {
	var deadline time.Time
	if c.l.o.IdleTimeout > 0 {
		deadline = time.Now().Add(c.l.o.IdleTimeout)
	}
	_ = c.nc.SetReadDeadline(deadline)
	if c.served == 0 {
		c.idle.Store(idleNew)
	} else {
		c.idle.Store(idleKeptAlive)
	}
	if c.l.closed.Load() {
		if c.served > 0 {
			return false
		}
		// Accepted before shutdown began, its Close may have missed it:
		// its first request still has newConnGrace to arrive.
		_ = c.nc.SetReadDeadline(time.Now().Add(newConnGrace))
	}
	_, err := br.Peek(1)
	c.idle.Store(busy)
	return err == nil
}

// readHead returns the request's header block, CRLF CRLF included, left
// unread in br; nil (and no error) when it does not fit the buffer, or
// does not begin as a request the fast loop may serve, so that net/http
// reads it instead.
func (c *conn) readHead(br *bufio.Reader) ([]byte, error) {
	timed := false
	for {
		b, _ := br.Peek(br.Buffered())
		if i := bytes.Index(b, crlfcrlf); i >= 0 {
			return b[:i+4], nil
		}
		if len(b) >= bufSize || !mayBeOurs(b, c.l.o.Prefix) || bareLF(b) {
			return nil, nil
		}
		if !timed && c.l.o.ReadHeaderTimeout > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(c.l.o.ReadHeaderTimeout))
			timed = true
		}
		if _, err := br.Peek(len(b) + 1); err != nil {
			if errors.Is(err, io.EOF) && (c.served == 0 || len(b) >= 4) {
				// The client stopped sending mid-request: net/http decides
				// what that gets, as it would have without the loop. (On a
				// kept-alive connection net/http first waits for 4 bytes and
				// closes without a word when they do not come.)
				return nil, nil
			}
			return nil, err // a timeout: closed, as net/http closes it
		}
	}
}

// likeKeptAlive: on a connection that served a request, net/http waits
// for 4 bytes of the next one and closes without a word when they do not
// come; a connection handed over after one must meet the same rule (to
// net/http it is a new connection, which gets a 400 instead).
func (c *conn) likeKeptAlive(br *bufio.Reader) bool {
	if c.served == 0 || br.Buffered() >= 4 {
		return true
	}
	_, err := br.Peek(4)
	return err == nil
}

// bareLF: a line of b ends in LF alone (which net/http reads, and the
// fast loop does not).
func bareLF(b []byte) bool {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return false
		}
		if i+j == 0 || b[i+j-1] != '\r' {
			return true
		}
		i += j + 1
	}
}

// mayBeOurs reports whether b, the start of a request, can still become a
// request for prefix: a method token, one space, the prefix. A request
// that cannot goes to net/http as soon as that is known.
func mayBeOurs(b []byte, prefix string) bool {
	i := 0
	for i < len(b) && web.IsTokenByte(b[i]) {
		i++
	}
	if i == len(b) {
		return i <= maxMethod
	}
	if i == 0 || i > maxMethod || b[i] != ' ' {
		return false
	}
	rest := b[i+1:]
	if len(rest) > len(prefix) {
		rest = rest[:len(prefix)]
	}
	return string(rest) == prefix[:len(rest)]
}
