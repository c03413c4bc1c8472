// Package faultnet is a TCP forwarder for tests that stands between a
// client and a real server and can fail the way networks and databases
// fail: refuse (the server went away: every connection is closed and new
// ones are dropped at once) or blackhole (a partition: connections stay
// open and nothing gets through). Tests use it to take PostgreSQL away from
// one replica while the database keeps running for the others.
package faultnet

import (
	"errors"
	"io"
	"net"
	"sync"
)

// Mode is how the forwarder treats traffic.
type Mode int

const (
	// Pass forwards everything.
	Pass Mode = iota
	// Refuse closes every open connection and every new one at once.
	Refuse
	// Blackhole keeps connections open and delivers nothing until the mode
	// changes, as on a partitioned network: back to Pass, what was held is
	// delivered (TCP retransmits); to Refuse, the connections close.
	Blackhole
)

// Forwarder listens on a loopback port and forwards to a target address.
type Forwarder struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	mode    Mode
	changed chan struct{} // closed and replaced on every Set
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// Start listens on 127.0.0.1 (a free port) and forwards to target.
func Start(target string) (*Forwarder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &Forwarder{ln: ln, target: target, conns: map[net.Conn]struct{}{}, changed: make(chan struct{})}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

// Addr is the host:port clients should dial instead of the target.
func (f *Forwarder) Addr() string { return f.ln.Addr().String() }

// Set changes the mode. Refuse closes what is open now.
func (f *Forwarder) Set(m Mode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = m
	close(f.changed)
	f.changed = make(chan struct{})
	if m == Refuse {
		for c := range f.conns {
			_ = c.Close()
		}
	}
}

// Close stops listening and closes every connection.
func (f *Forwarder) Close() {
	_ = f.ln.Close()
	f.Set(Refuse)
	f.wg.Wait()
}

func (f *Forwarder) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.serve(c)
		}()
	}
}

// track registers c unless the mode is Refuse; it reports whether it did.
func (f *Forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mode == Refuse {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	_ = c.Close()
}

// passing waits while the mode is Blackhole and reports whether the mode
// then lets data through.
func (f *Forwarder) passing() bool {
	for {
		f.mu.Lock()
		m, changed := f.mode, f.changed
		f.mu.Unlock()
		if m != Blackhole {
			return m == Pass
		}
		<-changed
	}
}

func (f *Forwarder) serve(client net.Conn) {
	if !f.track(client) {
		_ = client.Close()
		return
	}
	defer f.untrack(client)
	server, err := net.Dial("tcp", f.target)
	if err != nil {
		return
	}
	if !f.track(server) {
		_ = server.Close()
		return
	}
	defer f.untrack(server)
	done := make(chan struct{}, 2)
	go func() { f.pipe(server, client); done <- struct{}{} }()
	go func() { f.pipe(client, server); done <- struct{}{} }()
	<-done // one side ended: end both
}

// pipe copies src to dst, holding what arrives while the mode is Blackhole.
func (f *Forwarder) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !f.passing() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				_ = dst.Close()
			}
			return
		}
	}
}
