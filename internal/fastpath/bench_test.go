package fastpath

import (
	"strings"
	"testing"
)

// traefikAsks is a forward-auth question as Traefik sends it, with a
// session cookie of the usual size.
var traefikAsks = []byte("GET /.portcullis/auth HTTP/1.1\r\nHost: 127.0.0.1:18082\r\nUser-Agent: Traefik\r\n" +
	"Accept: text/html,application/xhtml+xml\r\nCookie: portcullis_session=" + strings.Repeat("AbCdEfGh", 90) + "\r\n" +
	"X-Forwarded-Method: GET\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: app.example.com\r\n" +
	"X-Forwarded-Uri: /app/page?x=1\r\nX-Forwarded-For: 10.0.0.7\r\n\r\n")

func BenchmarkParseRequest(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(traefikAsks)))
	for b.Loop() {
		if parseRequest(traefikAsks, prefix, "127.0.0.1:5555") == nil {
			b.Fatal("not parsed")
		}
	}
}
