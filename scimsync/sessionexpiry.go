package scimsync

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// ExpirySweepInterval is how often each replica sweeps the login ledger
// for sessions that expired: an expired session is reported within about
// this long of its expiry, by exactly one replica (the store's
// SessionExpirer hands each to one sweep).
const ExpirySweepInterval = time.Minute

// expiryActor is the actor of a session_revoked with reason expired.
const expiryActor = "expiry"

// EndExpired removes the sessions that have expired from the store and
// reports each that nothing else ended first — not revoked, not ended
// with its user (deactivated, deleted, or voided by the user's
// ValidAfter, which the directory view says) — as ended with reason
// expired, through the path every end of a session takes (report). It
// returns how many it reported.
func (e *SessionEnder) EndExpired(ctx context.Context) (int, error) {
	ex, ok := e.st.(store.SessionExpirer)
	if !ok {
		return 0, fmt.Errorf("store %T cannot end expired sessions", e.st)
	}
	n := 0
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, sessionEndTimeout)
		got, err := ex.EndExpired(wctx, store.ExpireBatch, expiryActor)
		cancel()
		if err != nil {
			return n, fmt.Errorf("end expired sessions: %w", err)
		}
		for _, rs := range got {
			if e.endedWithUser(rs) {
				continue
			}
			e.report(ctx, rs, store.ReasonExpired, expiryActor)
			n++
		}
		if len(got) < store.ExpireBatch {
			break
		}
	}
	return n, nil
}

// endedWithUser reports whether the directory view ended rs before it
// expired: its user was deactivated or deleted, or its ValidAfter is
// later than the sign-in. Without a view (the CLI) nothing did.
func (e *SessionEnder) endedWithUser(rs store.RevokedSession) bool {
	if e.dirs == nil || rs.MatchKey == "" {
		return false
	}
	st := e.dirs.OrgStanding(store.OrgOrDefault(rs.Org), rs.MatchKey)
	return st.State == identity.StateInactive || st.State == identity.StateDeleted || rs.Issued.Before(st.ValidAfter)
}

// RunExpiry calls EndExpired every interval until ctx ends. A failed
// sweep is logged; the next one takes what it left.
func (e *SessionEnder) RunExpiry(ctx context.Context, interval time.Duration, log *zap.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := e.EndExpired(ctx); err != nil && ctx.Err() == nil {
			log.Warn("sweep expired sessions", zap.Error(err))
		}
	}
}
