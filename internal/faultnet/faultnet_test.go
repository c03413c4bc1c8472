package faultnet

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, line string, wait time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

func TestForwarder_Modes(t *testing.T) {
	f, err := Start(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(c, "one", time.Second); err != nil || got != "one\n" {
		t.Fatalf("pass: %q %v", got, err)
	}

	// Blackhole: nothing arrives; healed, what was held is delivered.
	f.Set(Blackhole)
	if got, err := roundTrip(c, "two", 200*time.Millisecond); err == nil {
		t.Fatalf("blackhole delivered %q", got)
	}
	f.Set(Pass)
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if got, err := bufio.NewReader(c).ReadString('\n'); err != nil || got != "two\n" {
		t.Fatalf("after the partition healed: %q %v, want the held line", got, err)
	}

	// Refuse: the open connection closes, new ones close at once.
	f.Set(Refuse)
	if _, err := roundTrip(c, "three", time.Second); err == nil {
		t.Fatal("refused: the open connection still works")
	}
	c2, err := net.Dial("tcp", f.Addr())
	if err == nil {
		if got, err := roundTrip(c2, "four", time.Second); err == nil {
			t.Fatalf("refused: a new connection answered %q", got)
		}
		c2.Close()
	}

	// Back: new connections work again.
	f.Set(Pass)
	c3, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if got, err := roundTrip(c3, "five", time.Second); err != nil || got != "five\n" {
		t.Fatalf("restored: %q %v", got, err)
	}
}
