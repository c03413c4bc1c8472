package proxy

import (
	"net"
	"net/http"
	"time"

	"github.com/portcullis-sso/portcullis/config"
)

// Upstream connection pool sizes. Every request to the one upstream host
// takes an idle keep-alive connection or dials a new one; an idle pool
// smaller than the number of requests in flight makes the proxy close and
// re-dial connections under load (TIME_WAIT build-up, a handshake per
// request). 256 covers the concurrency a single replica sees in practice.
const (
	upstreamIdlePerHost = 256
	upstreamIdleTotal   = 512
)

// newUpstreamTransport is the transport to the one upstream, tuned for a
// reverse proxy:
//   - no environment proxy: upstream traffic never leaves through HTTP_PROXY;
//   - an idle pool sized to concurrency (above);
//   - DisableCompression: the client's own Accept-Encoding goes upstream
//     unchanged and the body comes back as the upstream encoded it. Without
//     it, a request without Accept-Encoding makes the transport ask for gzip
//     and then decompress the body in the proxy, which costs CPU and changes
//     what the client receives;
//   - HTTP/1.1 only (the upstream is plain HTTP on a private network).
func newUpstreamTransport(cfg *config.Config) *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     false,
		DisableCompression:    true,
		MaxIdleConns:          upstreamIdleTotal,
		MaxIdleConnsPerHost:   upstreamIdlePerHost,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.Server.UpstreamTimeout,
		ExpectContinueTimeout: time.Second,
	}
}
