package scimsync

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/internal/web"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// sessionEndTimeout bounds one revocation's store write, so that a slow
// store delays a logout by at most this much.
const sessionEndTimeout = 5 * time.Second

// SessionEnder ends sessions. Every end of a session goes through End — a
// logout, the IdP's Single Logout, an admin's "sign out everywhere" — so
// that each is written once to the store (every replica refuses it on its
// next request), once to the audit log (session_revoked with its reason)
// and once to portcullis_sessions_ended_total.
type SessionEnder struct {
	st    store.Store
	rev   store.SessionRevoker
	dirs  *Directories // nil: no view on this process (the CLI)
	audit *zap.Logger
	m     *metrics.Metrics
	// onEnded, if set, is called with each session ended, after the audit
	// line: the place for the lifecycle events' session.revoked (issue #16).
	onEnded func(ctx context.Context, rs store.RevokedSession)
}

// NewSessionEnder ends sessions, of every organization, in st (which must
// implement store.SessionRevoker) and applies the revocations to dirs at
// once, so this replica refuses them before its follower would have caught
// up. dirs may be nil.
func NewSessionEnder(st store.Store, dirs *Directories, audit *zap.Logger, m *metrics.Metrics) (*SessionEnder, error) {
	rev, ok := st.(store.SessionRevoker)
	if !ok {
		return nil, fmt.Errorf("store %T cannot revoke sessions", st)
	}
	if audit == nil {
		audit = zap.NewNop()
	}
	return &SessionEnder{st: st, rev: rev, dirs: dirs, audit: audit, m: m}, nil
}

// OnEnded registers fn, called with each session End ends (one function:
// a later call replaces it).
func (e *SessionEnder) OnEnded(fn func(ctx context.Context, rs store.RevokedSession)) { e.onEnded = fn }

// End ends the sessions q selects, for reason (one of
// metrics.SessionEndReasons), and returns them. actor names who asked
// (slo, logout, admin, the CLI). The write outlives the request's
// cancellation but not sessionEndTimeout. An error means nothing was
// ended.
func (e *SessionEnder) End(ctx context.Context, q store.SessionQuery, reason, actor string) ([]store.RevokedSession, error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionEndTimeout)
	defer cancel()
	evs, err := e.rev.RevokeSessions(wctx, q, reason, actor)
	if err != nil {
		return nil, fmt.Errorf("end sessions: %w", err)
	}
	if len(evs) > 0 && e.dirs != nil {
		// The follower would apply them within its poll; this replica
		// refuses them now. A failure here leaves that to the follower.
		if err := e.dirs.CatchUp(wctx, e.st); err != nil {
			e.audit.Warn("apply ended sessions", zap.Error(err))
		}
	}
	ended := make([]store.RevokedSession, 0, len(evs))
	for _, ev := range evs {
		if ev.Session == nil {
			continue
		}
		rs := *ev.Session
		ended = append(ended, rs)
		e.report(ctx, rs, reason, actor)
	}
	return ended, nil
}

// report counts, audits and announces one ended session: the one place
// every end of a session (End, EndExpired) goes through.
func (e *SessionEnder) report(ctx context.Context, rs store.RevokedSession, reason, actor string) {
	e.m.SessionEnded(reason)
	e.audit.Info("session revoked",
		zap.String("event", "session_revoked"),
		zap.String("reason", reason),
		zap.String("session_id", rs.ID),
		zap.String("user", rs.User),
		zap.String("org", store.OrgOrDefault(rs.Org)),
		zap.String("actor", actor),
		zap.String("request_id", web.RequestID(ctx)))
	if e.onEnded != nil {
		e.onEnded(ctx, rs)
	}
}
