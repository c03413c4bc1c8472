package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// Backoff between attempts to (re)connect the listen connection.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
	listenConnectMax = 10 * time.Second // one connection attempt
)

// Wait implements scimsync.Listener on a dedicated connection (outside the pool)
// that LISTENs on portcullis_events. It returns nil when a notification
// arrives, having drained any others already received (one catch-up covers
// them all) and told the OnEvents functions (the webhook deliverer), and
// also right after the connection is (re)established: notifications sent
// while it was down are lost, so the caller must catch up. It returns an error when connecting fails or the connection breaks;
// the next call reconnects, first waiting a backoff that doubles from
// 100 ms to 5 s (with jitter, so replicas do not reconnect in step) while
// attempts keep failing. Calls queue: one Wait at a time owns the
// connection. Close wakes a Wait in progress.
func (s *Store) Wait(ctx context.Context) error {
	s.listenMu.Lock()
	defer s.listenMu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.closing, cancel)()
	if s.closing.Err() != nil {
		return errors.New("listen: store closed")
	}

	if s.listenConn == nil {
		if s.listenFails > 0 {
			t := time.NewTimer(listenBackoff(s.listenFails))
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("listen: %w", ctx.Err())
			case <-t.C:
			}
		}
		conn, err := s.connectListener(ctx)
		if err != nil {
			s.listenFails++
			return dbErr(ctx, "listen", err)
		}
		s.listenFails, s.listenConn = 0, conn
		return nil
	}

	if _, err := s.listenConn.WaitForNotification(ctx); err != nil {
		// A cancelled wait leaves the connection usable (pgx interrupts
		// it with a deadline); anything else is a broken connection.
		if ctx.Err() == nil || s.listenConn.IsClosed() {
			s.dropListener()
		}
		return dbErr(ctx, "listen", err)
	}
	drained, stop := context.WithCancel(context.Background())
	stop() // with a done context pgx returns buffered notifications and reads nothing
	for {
		if _, err := s.listenConn.WaitForNotification(drained); err != nil {
			break
		}
	}
	s.EventsWritten() // another replica's write (or our own): wake the webhook deliverer
	return nil
}

func (s *Store) connectListener(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, listenConnectMax)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.listenConfig.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// dropListener closes the listen connection; s.listenMu is held.
func (s *Store) dropListener() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.listenConn.Close(ctx)
	s.listenConn = nil
}

// listenBackoff is the wait before attempt n+1 after n failures: doubling
// from the minimum to the maximum, each between half and the whole of it.
func listenBackoff(failures int) time.Duration {
	d := listenBackoffMax
	if failures < 16 {
		d = min(listenBackoffMin<<(failures-1), listenBackoffMax)
	}
	return d/2 + rand.N(d/2+1)
}
