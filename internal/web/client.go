package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// PeerAddr is the address of r's TCP peer.
func PeerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// Trusted reports whether a is inside one of prefixes (trustedProxies).
func Trusted(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, pfx := range prefixes {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP is the peer, or, when the peer is a trusted proxy, the rightmost
// X-Forwarded-For entry that is not itself a trusted proxy. An entry that
// does not parse stops the walk at the peer: it was not written by a proxy
// we trust.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := PeerAddr(r)
	if !Trusted(trusted, peer) {
		return peer
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return peer
			}
			a = a.Unmap()
			if !Trusted(trusted, a) {
				return a
			}
		}
	}
	return peer
}
