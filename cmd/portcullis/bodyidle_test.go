package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// An unauthenticated POST to the ACS that declares a large body and stops
// sending is answered 408 once server.bodyIdleTimeout passes, through the
// wiring serve uses (not held open for ever, as before).
func TestServe_StalledACSBodyGets408(t *testing.T) {
	addr := serveInProcess(t, testConfigDir(t, "server:\n  bodyIdleTimeout: 300ms\n"))
	conn, err := net.Dial("tcp", addr)
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
