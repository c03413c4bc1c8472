package fastpath

import (
	"testing"
)

// FuzzFastPath_ReadsWhatNetHTTPReads: whatever bytes a client sends, the
// handler sees the same requests and the client gets the same answers
// with the fast loop in front of net/http as from net/http alone.
func FuzzFastPath_ReadsWhatNetHTTPReads(f *testing.F) {
	for _, s := range []string{
		plainGet,
		plainGet + plainGet,
		"GET /.portcullis/auth/envoy/x?y=%41 HTTP/1.1\r\nhost: a:1\r\nCookie: s=1\r\nx_forwarded_uri: /x\r\n\r\n",
		"GET /.portcullis/auth HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + plainGet,
		"GET /.portcullis/auth HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: keep-alive, close\r\n\r\n",
		"HEAD /.portcullis/auth HTTP/1.1\r\nHost: [::1]:80\r\nPragma: no-cache\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		f.Add(s)
	}
	p := newPair(f, Options{})
	f.Fuzz(func(t *testing.T, raw string) {
		if len(raw) > 8192 {
			return
		}
		p.differ(t, raw)
	})
}
