//go:build !(linux || darwin || freebsd)

package proxy

import "net"

// probeSupported is false: without a non-blocking readability check the
// direct upstream path cannot keep its pooling rules, so it is off and
// every request goes through http.Transport.
const probeSupported = false

type prober struct{}

func newProber(net.Conn) *prober { return nil }

func (*prober) quiet() bool { return false }
