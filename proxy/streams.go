package proxy

import (
	"context"
	"sync"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

// streamSet tracks the open WebSocket and SSE streams of each user so they
// can be closed the moment the directory removes the user.
type streamSet struct {
	mu    sync.Mutex
	byKey map[string]map[*context.CancelFunc]struct{}
	fold  func(string) string // the key as stored
}

// newStreamSet keys streams by match key (identity.MatchKey folds it).
func newStreamSet() *streamSet {
	return &streamSet{byKey: map[string]map[*context.CancelFunc]struct{}{}, fold: identity.MatchKey}
}

// newExactStreamSet keys streams by an exact key (a session ID).
func newExactStreamSet() *streamSet {
	return &streamSet{byKey: map[string]map[*context.CancelFunc]struct{}{}, fold: func(s string) string { return s }}
}

// add registers a stream's cancel func under the user's match key and
// returns the function that removes it again.
func (s *streamSet) add(key string, cancel context.CancelFunc) (remove func()) {
	k := s.fold(key)
	h := &cancel
	s.mu.Lock()
	m := s.byKey[k]
	if m == nil {
		m = map[*context.CancelFunc]struct{}{}
		s.byKey[k] = m
	}
	m[h] = struct{}{}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(m, h)
		if cur := s.byKey[k]; cur != nil && len(cur) == 0 {
			delete(s.byKey, k)
		}
		s.mu.Unlock()
	}
}

// closeAll cancels every stream of key and reports how many it closed.
func (s *streamSet) closeAll(key string) int {
	k := s.fold(key)
	s.mu.Lock()
	m := s.byKey[k]
	delete(s.byKey, k)
	cancels := make([]context.CancelFunc, 0, len(m))
	for h := range m {
		cancels = append(cancels, *h)
	}
	s.mu.Unlock()
	for _, cancel := range cancels {
		cancel()
	}
	return len(cancels)
}
