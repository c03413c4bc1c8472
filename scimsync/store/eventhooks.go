package store

import (
	"context"
	"sync/atomic"
)

// eventHooks are the functions told that events were written: the webhook
// deliverer wakes on them rather than waiting for its next look.
type eventHooks struct{ fns atomic.Pointer[[]func()] }

// OnEvents registers fn to be called after every committed write of this
// store (any organization's) that appended events, and, on a backend that
// hears other processes' writes (PostgreSQL's LISTEN), when it hears one.
// fn runs on the writer's goroutine: it must return at once.
func (s SQLStore) OnEvents(fn func()) {
	if s.hooks == nil {
		return
	}
	for {
		old := s.hooks.fns.Load()
		var next []func()
		if old != nil {
			next = append(next, *old...)
		}
		next = append(next, fn)
		if s.hooks.fns.CompareAndSwap(old, &next) {
			return
		}
	}
}

// EventsWritten calls the OnEvents functions; a backend calls it when it
// hears that another process wrote events.
func (s SQLStore) EventsWritten() {
	if s.hooks == nil {
		return
	}
	if fns := s.hooks.fns.Load(); fns != nil {
		for _, fn := range *fns {
			fn()
		}
	}
}

// write is the backend's Write, then EventsWritten if it committed events.
func (s SQLStore) write(ctx context.Context, op string, fn func(tx WriteTx) error) ([]Event, error) {
	evs, err := s.b.Write(ctx, op, fn)
	if err == nil && len(evs) > 0 {
		s.EventsWritten()
	}
	return evs, err
}
