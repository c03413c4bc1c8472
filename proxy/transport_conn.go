package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"time"
)

// directConn is one keep-alive connection of the direct path.
type directConn struct {
	c         net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	probe     *prober // nil: cannot be checked, so never pooled
	idleSince time.Time
}

// get hands out a pooled connection that is still quiet, or dials one.
// reused says which.
func (t *directTransport) get(ctx context.Context) (*directConn, bool, error) {
	now := time.Now()
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
		// Bytes or a close that arrived while it sat idle make it unusable:
		// they belong to no request of ours.
		if now.Sub(dc.idleSince) < t.idleFor && dc.probe.quiet() {
			return dc, true, nil
		}
		dc.c.Close()
	}
	dc, err := t.dial(ctx)
	return dc, false, err
}

func (t *directTransport) dial(ctx context.Context) (*directConn, error) {
	c, err := t.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	return &directConn{
		c:     c,
		br:    bufio.NewReaderSize(c, 4<<10),
		bw:    bufio.NewWriterSize(c, 4<<10),
		probe: newProber(c),
	}, nil
}

// put pools dc, whose response was read to the end of its framing, unless
// anything further is already buffered (get checks the socket itself
// before the connection is used again, which covers what arrives later).
func (t *directTransport) put(dc *directConn) {
	if dc.br.Buffered() > 0 || dc.probe == nil {
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
		doubt := framingDoubt(dc.br)
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
		resp.Body = &directBody{rc: resp.Body, t: t, dc: dc, stop: stop, reuse: !resp.Close && !doubt, eof: resp.Body == http.NoBody}
		return resp, false, nil
	}
}

// framingDoubt reports whether the response head at the front of br leaves
// its end in doubt: it names both Content-Length and Transfer-Encoding (RFC
// 9112 §6.3 reads it as chunked, but says it "ought to be handled as an
// error", since the sender may have meant the other), or it is not wholly
// buffered yet, so it cannot be checked. Either way the connection is not
// reused. It reads only what is already buffered and does not allocate.
func framingDoubt(br *bufio.Reader) bool {
	buf, _ := br.Peek(br.Buffered())
	var contentLength, transferEncoding bool
	for len(buf) > 0 {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return true // the head goes on beyond the buffer
		}
		line := bytes.TrimSuffix(buf[:i], []byte{'\r'})
		buf = buf[i+1:]
		if len(line) == 0 {
			return contentLength && transferEncoding // end of the head
		}
		name, _, ok := bytes.Cut(line, []byte{':'})
		switch {
		case !ok:
		case asciiEqualFold(name, "content-length"):
			contentLength = true
		case asciiEqualFold(name, "transfer-encoding"):
			transferEncoding = true
		}
	}
	return true
}

func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// directBody returns the connection to the pool once the body was read to
// the end and the connection may be reused; otherwise it closes the
// connection.
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
