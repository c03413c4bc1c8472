package samlsp

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMemoryReplayCache_SeenUntilExpiry(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	c := newMemoryReplayCache(10, clock.Now)
	ctx := context.Background()
	seen := func(id string, exp time.Duration) bool {
		t.Helper()
		s, err := c.Seen(ctx, id, clock.Now().Add(exp))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if seen("a", time.Minute) {
		t.Fatal("new ID reported seen")
	}
	if !seen("a", time.Minute) {
		t.Fatal("recorded ID not seen")
	}
	if seen("b", time.Minute) {
		t.Fatal("another ID reported seen")
	}
	clock.Advance(time.Minute)
	if seen("a", time.Minute) {
		t.Fatal("ID still seen at its expiry")
	}
	if !seen("a", time.Minute) {
		t.Fatal("ID recorded again after expiry not seen")
	}
}

func TestMemoryReplayCache_Bounded(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	c := newMemoryReplayCache(3, clock.Now)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		_, _ = c.Seen(ctx, fmt.Sprint("short", i), clock.Now().Add(time.Minute))
	}
	clock.Advance(2 * time.Minute) // all three expired
	for i := 0; i < 3; i++ {
		_, _ = c.Seen(ctx, fmt.Sprint("long", i), clock.Now().Add(time.Duration(i+1)*time.Hour))
	}
	if n := c.len(); n != 3 {
		t.Fatalf("%d entries, want 3", n)
	}
	// Full of live entries: the one expiring soonest goes.
	_, _ = c.Seen(ctx, "new", clock.Now().Add(time.Hour))
	if n := c.len(); n != 3 {
		t.Fatalf("%d entries, want 3", n)
	}
	for id, want := range map[string]bool{"long0": false, "long1": true, "long2": true, "new": true} {
		c.mu.Lock()
		_, ok := c.ids[id]
		c.mu.Unlock()
		if ok != want {
			t.Errorf("%s kept = %v, want %v", id, ok, want)
		}
	}
	// Stale heap entries from re-recorded IDs stay bounded.
	for i := 0; i < 100; i++ {
		clock.Advance(2 * time.Hour)
		_, _ = c.Seen(ctx, "again", clock.Now().Add(time.Hour))
	}
	if n := len(c.byExpiry); n > 6 {
		t.Errorf("heap holds %d entries for a cache of 3", n)
	}
}

func TestMemoryReplayCache_Concurrent(t *testing.T) {
	t.Parallel()
	c := NewMemoryReplayCache(1000)
	var accepted atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				s, err := c.Seen(context.Background(), fmt.Sprint("id", i), time.Now().Add(time.Hour))
				if err != nil {
					t.Error(err)
				}
				if !s {
					accepted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := accepted.Load(); n != 200 {
		t.Errorf("%d first sightings across goroutines, want exactly 200", n)
	}
}
