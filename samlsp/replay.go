package samlsp

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// ReplayCache remembers accepted assertion IDs (and consumed AuthnRequest
// IDs) so that each is accepted once. It is designed so that a shared
// PostgreSQL table (INSERT … ON CONFLICT) can back it when several replicas
// accept logins.
type ReplayCache interface {
	// Seen records id until expires; it reports true if id was already
	// recorded and not yet expired. An error refuses the login.
	Seen(ctx context.Context, id string, expires time.Time) (bool, error)
}

// NewMemoryReplayCache returns a ReplayCache for one process holding at
// most max IDs. When it is full it first drops expired IDs, then the ID
// that expires soonest: such an ID is the closest to being refused by the
// time checks anyway, and filling the cache takes max validly signed
// assertions, which only the IdP can make.
func NewMemoryReplayCache(max int) ReplayCache {
	return newMemoryReplayCache(max, time.Now)
}

func newMemoryReplayCache(max int, now func() time.Time) *memoryReplayCache {
	if max < 1 {
		max = 1
	}
	return &memoryReplayCache{max: max, now: now, ids: make(map[string]time.Time)}
}

type memoryReplayCache struct {
	mu  sync.Mutex
	max int
	now func() time.Time
	ids map[string]time.Time // id → expiry
	// byExpiry orders the entries by expiry. It may hold stale entries
	// for IDs recorded again after they expired; pop skips them.
	byExpiry expiryHeap
}

func (c *memoryReplayCache) Seen(_ context.Context, id string, expires time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if exp, ok := c.ids[id]; ok {
		if now.Before(exp) {
			return true, nil
		}
		delete(c.ids, id)
	}
	for len(c.ids) >= c.max {
		c.evict(now)
	}
	c.ids[id] = expires
	heap.Push(&c.byExpiry, expiryEntry{id: id, expires: expires})
	if len(c.byExpiry) > 2*c.max { // too many stale entries: rebuild
		c.byExpiry = c.byExpiry[:0]
		for id, exp := range c.ids {
			c.byExpiry = append(c.byExpiry, expiryEntry{id: id, expires: exp})
		}
		heap.Init(&c.byExpiry)
	}
	return false, nil
}

// evict drops every expired ID, or if there is none the one that expires soonest.
func (c *memoryReplayCache) evict(now time.Time) {
	dropped := false
	for len(c.byExpiry) > 0 {
		e := c.byExpiry[0]
		exp, live := c.ids[e.id]
		if live && !exp.Equal(e.expires) {
			heap.Pop(&c.byExpiry) // stale entry for an ID recorded again
			continue
		}
		if !live {
			heap.Pop(&c.byExpiry)
			continue
		}
		if dropped && now.Before(exp) {
			return
		}
		heap.Pop(&c.byExpiry)
		delete(c.ids, e.id)
		dropped = true
	}
}

func (c *memoryReplayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}

type expiryEntry struct {
	id      string
	expires time.Time
}

type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
