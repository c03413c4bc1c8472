//go:build linux || darwin || freebsd

package proxy

import (
	"net"
	"syscall"
)

// probeSupported: this platform can check a socket for readable bytes
// without blocking, which the direct upstream path needs.
const probeSupported = true

// prober checks a connection for bytes or a close, without reading them or
// blocking: a peek of one byte with MSG_DONTWAIT. It is built once per
// connection so that a check does not allocate.
type prober struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	buf [1]byte
	n   int
	err error
}

func newProber(c net.Conn) *prober {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &prober{rc: rc}
	p.fn = func(fd uintptr) bool {
		p.n, _, p.err = syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait for readiness
	}
	return p
}

// quiet reports whether nothing at all is readable now: no byte, no end of
// stream, no error. A nil prober is never quiet.
func (p *prober) quiet() bool {
	if p == nil {
		return false
	}
	p.err = nil
	if err := p.rc.Read(p.fn); err != nil {
		return false
	}
	return p.err == syscall.EAGAIN || p.err == syscall.EWOULDBLOCK
}
