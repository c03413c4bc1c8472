package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDropForeignUpgrade(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"websocket kept", http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}},
			http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}},
		{"websocket any case kept", http.Header{"Upgrade": {"WebSocket"}, "Connection": {"upgrade"}},
			http.Header{"Upgrade": {"WebSocket"}, "Connection": {"upgrade"}}},
		{"h2c dropped", http.Header{"Upgrade": {"h2c"}, "Connection": {"Upgrade, HTTP2-Settings"}, "Http2-Settings": {"AAMAAABkAAQAAP__"}},
			http.Header{}},
		{"h2c beside websocket dropped", http.Header{"Upgrade": {"websocket, h2c"}, "Connection": {"Upgrade"}},
			http.Header{}},
		{"two Upgrade lines dropped", http.Header{"Upgrade": {"websocket", "h2c"}, "Connection": {"Upgrade"}},
			http.Header{}},
		{"other connection tokens kept", http.Header{"Upgrade": {"TLS/1.2"}, "Connection": {"keep-alive, Upgrade", "X-Foo"}},
			http.Header{"Connection": {"keep-alive, X-Foo"}}},
		{"lone HTTP2-Settings dropped", http.Header{"Http2-Settings": {"AAMA"}, "Connection": {"HTTP2-Settings"}},
			http.Header{}},
		{"no upgrade untouched", http.Header{"Connection": {"keep-alive"}}, http.Header{"Connection": {"keep-alive"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.in.Clone()
			dropForeignUpgrade(h)
			if diff := cmp.Diff(tc.want, h); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// An upstream that speaks h2c (as Jetty's connector does) would switch
// protocols and then serve HTTP/2 frames for any path, with any identity
// header, straight from the client. The proxy serves the request as
// HTTP/1.1 instead.
func TestProxy_H2CUpgradeIsNotRelayed(t *testing.T) {
	t.Parallel()
	// Like Jetty's h2c connector, the upstream switches on Upgrade: h2c
	// alone, then relays whatever the client sends (here: echoes it).
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(strings.ToLower(r.Header.Get("Upgrade")), "h2c") {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
			_ = brw.Flush()
			_, _ = io.Copy(conn, brw)
			return
		}
		fmt.Fprintf(w, "%s %s upgrade=%q settings=%q user=%q", r.Proto, r.URL.Path,
			r.Header.Get("Upgrade"), r.Header.Get("HTTP2-Settings"), r.Header.Get("X-Forwarded-User"))
	}))
	t.Cleanup(up.Close)
	h := newHarness(t, up.URL, nil)
	for _, tc := range []struct{ upgrade, connection string }{
		{"h2c", "Upgrade"}, // HTTP2-Settings not named in Connection, so it would travel on
		{"h2c", "Upgrade, HTTP2-Settings"},
		{"H2C", "upgrade"},
		{"websocket, h2c", "Upgrade"},
	} {
		t.Run(tc.upgrade+"/"+tc.connection, func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(h.front.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: app\r\nConnection: %s\r\n"+
				"Upgrade: %s\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", tc.connection, tc.upgrade)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d (%s), want 200 over HTTP/1.1", resp.StatusCode, body)
			}
			if want := `HTTP/1.1 /healthz upgrade="" settings="" user=""`; string(body) != want {
				t.Errorf("upstream saw %s\nwant %s", body, want)
			}
		})
	}
}
