package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// An unauthenticated POST to the ACS that declares a large body and stops
// sending is answered 408 once server.bodyIdleTimeout passes, through the
// wiring serve uses (not held open for ever, as before).
func TestServe_StalledACSBodyGets408(t *testing.T) {
	path := testConfigDir(t, "server:\n  bodyIdleTimeout: 300ms\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := build(ctx, path, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	pub, _ := net.Listen("tcp", "127.0.0.1:0")
	adm, _ := net.Listen("tcp", "127.0.0.1:0")
	served := make(chan error, 1)
	go func() { served <- serveOn(ctx, a, pub, adm, zap.NewNop()) }()
	defer func() { cancel(); <-served }()

	conn, err := net.Dial("tcp", pub.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /saml/acs HTTP/1.1\r\nHost: app.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
		"Content-Length: 100000\r\n\r\nSAMLResponse=PHNhbWxw")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to a stalled ACS body: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(page), "Request ID") {
		t.Fatalf("status %d, want 408 with a page: %s", resp.StatusCode, page)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
		t.Errorf("after the 408: %q, %v; want the connection closed", rest, err)
	}
}
