package config

import (
	"net"
	"net/netip"
	"strings"
)

// AdminLoopback reports whether adminListen binds to loopback only
// (127.0.0.0/8, ::1 or localhost). An empty host (":9090") binds to every
// interface, so it is not loopback.
func (c *Config) AdminLoopback() bool {
	host, _, err := net.SplitHostPort(c.AdminListen)
	return err == nil && LoopbackHost(host)
}

// LoopbackHost reports whether host (without a port or brackets) names
// loopback: "localhost" in any case, or an address in 127.0.0.0/8 or ::1
// (IPv4-mapped included).
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// AdminTokenRequired reports whether the admin status page asks for the
// token in adminTokenFile: always when one is configured, and on any bind
// other than loopback (where, without a token file, the page answers 403).
// /healthz and /readyz never need it.
func (c *Config) AdminTokenRequired() bool {
	return c.AdminTokenFile != "" || !c.AdminLoopback()
}
