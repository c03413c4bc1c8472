package scimsync

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Listener wakes a follower when another replica may have written.
// The PostgreSQL store (store/postgres) implements it with LISTEN/NOTIFY.
type Listener interface {
	// Wait returns nil when there may be new events (a notification
	// arrived, or the listener reconnected and may have missed some), or an
	// error when it cannot listen. It is called again and again.
	Wait(ctx context.Context) error
}

// FollowerOptions tune a Follower. The zero value is usable.
type FollowerOptions struct {
	// Poll is how often the follower catches up without being woken, which
	// bounds how stale the view can get when notifications are lost or the
	// listener is down. Default 1 s.
	Poll time.Duration
	// MaxLag bounds one catch-up. Default 5×Poll.
	MaxLag time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Loaded is when the snapshot the Directory was loaded from was read:
	// the view counts as confirmed at that moment until the first
	// catch-up. Zero means not confirmed until then.
	Loaded time.Time
}

// DefaultFollowerPoll is the default FollowerOptions.Poll.
const DefaultFollowerPoll = time.Second

// followed is what a Follower keeps in step: a Directory, or the
// Directories of every organization.
type followed interface {
	catchUpFrom(ctx context.Context, st store.Store, followed bool) error
	Seq() int64
}

// followerListenRetry is the pause after a listener error, so that a
// Listener failing without delay cannot spin (the PostgreSQL store backs off by
// itself as well).
const followerListenRetry = 100 * time.Millisecond

// Follower keeps a Directory in step with a Store that other replicas also
// write: it catches up when the Listener wakes it (within milliseconds of a
// write elsewhere) and on every poll, so the sequence number in the store
// stays the truth and a lost notification costs at most one poll interval.
// Catching up reads the events after the last one applied, so after a
// disconnect nothing is missed, and Directory.Apply skips what it has, so
// nothing is applied twice.
type Follower struct {
	dir    followed
	st     store.Store
	listen Listener // nil: poll only
	opts   FollowerOptions

	// confirmed is when the view was last confirmed current (unix
	// nanoseconds; 0: never). An atomic, because the gate reads it on every
	// request.
	confirmed atomic.Int64

	mu        sync.Mutex
	syncErr   error
	listenErr error
}

// NewFollower returns a follower of st for dir, which should already hold
// a snapshot (Directory.Load); listen may be nil to poll only.
func NewFollower(dir followed, st store.Store, listen Listener, opts FollowerOptions) *Follower {
	if opts.Poll <= 0 {
		opts.Poll = DefaultFollowerPoll
	}
	if opts.MaxLag <= 0 {
		opts.MaxLag = 5 * opts.Poll
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	f := &Follower{dir: dir, st: st, listen: listen, opts: opts}
	if !opts.Loaded.IsZero() {
		f.confirmed.Store(opts.Loaded.UnixNano())
	}
	return f
}

// Run catches up at once, then whenever woken and on every poll, until ctx
// is done. It returns after its listening goroutine has stopped.
func (f *Follower) Run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	wake := make(chan struct{}, 1) // a wake during a catch-up causes one more
	if f.listen != nil {
		wg.Go(func() { f.listenLoop(ctx, wake) })
	}
	tick := time.NewTicker(f.opts.Poll)
	defer tick.Stop()
	for {
		f.catchUp(ctx)
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-tick.C:
		}
	}
}

func (f *Follower) listenLoop(ctx context.Context, wake chan<- struct{}) {
	for ctx.Err() == nil {
		err := f.listen.Wait(ctx)
		if ctx.Err() != nil {
			return
		}
		f.mu.Lock()
		f.listenErr = err
		f.mu.Unlock()
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(followerListenRetry):
			}
			continue
		}
		select {
		case wake <- struct{}{}:
		default: // a catch-up is already due
		}
	}
}

// catchUp brings the view up to date and records the outcome. The view is
// confirmed current as of the moment the catch-up started.
func (f *Follower) catchUp(ctx context.Context) {
	start := f.opts.Now()
	cctx, cancel := context.WithTimeout(ctx, f.opts.MaxLag)
	err := f.dir.catchUpFrom(cctx, f.st, true)
	cancel()
	if ctx.Err() != nil {
		return // shutting down: not a failure
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.syncErr = fmt.Errorf("catch up from seq %d: %w", f.dir.Seq(), err)
		return
	}
	f.syncErr = nil
	f.confirmed.Store(start.UnixNano())
}

// ConfirmedAt is when the view was last confirmed current: the start of the
// last successful catch-up, or the snapshot's time before the first; zero
// if neither. The gate's staleness check reads it on every request
// (proxy.Freshness).
func (f *Follower) ConfirmedAt() time.Time {
	n := f.confirmed.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Err is the error of the last catch-up if it failed, else the listener's
// last error if it is still failing (notifications are then not arriving
// and changes take up to Poll to appear), else nil.
func (f *Follower) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.syncErr != nil {
		return f.syncErr
	}
	if f.listenErr != nil {
		return fmt.Errorf("listener: %w", f.listenErr)
	}
	return nil
}
