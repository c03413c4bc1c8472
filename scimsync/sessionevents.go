package scimsync

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/internal/web"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// sessionEventTimeout bounds one session.created write, so that a slow
// store delays a sign-in by at most this much.
const sessionEventTimeout = 2 * time.Second

// SessionAppender appends session events (store.Deliveries does).
type SessionAppender interface {
	AppendSessionCreated(ctx context.Context, s store.RevokedSession) (store.Event, error)
	AppendSessionsEnded(ctx context.Context, org, matchKey, reason, actor string) ([]store.Event, error)
}

// SessionEvents writes session.created to the event log after a sign-in,
// and session.revoked after a SCIM deactivation or deletion, best effort:
// the sign-in or the write never waits long for it or fails on it; a
// failed write is logged and counted
// (portcullis_session_event_write_failures_total). Every other end of a
// session (logout, Single Logout, an admin) goes through SessionEnder,
// which writes session.revoked in the transaction that ends it. A nil
// *SessionEvents writes nothing.
type SessionEvents struct {
	st            SessionAppender
	dirs          *Directories
	identityField string
	log           *zap.Logger
	m             *metrics.Metrics
}

// NewSessionEvents writes into st; dirs (may be nil) supplies the directory
// user's SCIM id of a signed-in principal, found under identityField in
// the principal's organization's view.
func NewSessionEvents(st SessionAppender, dirs *Directories, identityField string, log *zap.Logger, m *metrics.Metrics) *SessionEvents {
	if log == nil {
		log = zap.NewNop()
	}
	return &SessionEvents{st: st, dirs: dirs, identityField: identityField, log: log, m: m}
}

// Created records the sign-in of p with session sessionID.
func (s *SessionEvents) Created(ctx context.Context, p identity.Principal, sessionID string, issued, expires time.Time) {
	if s == nil {
		return
	}
	var userID string
	if s.dirs != nil {
		if key := PrincipalMatchKey(p, s.identityField); key != "" {
			userID = s.dirs.OrgStanding(store.OrgOrDefault(p.Org), key).ID
		}
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionEventTimeout)
	defer cancel()
	_, err := s.st.AppendSessionCreated(wctx, store.RevokedSession{Org: p.Org, ID: sessionID, UserID: userID, User: p.User,
		Email: p.Email, Issued: issued, Expires: expires})
	if err != nil {
		s.m.SessionEventFailed()
		s.log.Warn("write session.created event failed", zap.String("user", p.User), zap.String("organization", store.OrgOrDefault(p.Org)),
			zap.String("request_id", web.RequestID(ctx)), zap.Error(err))
	}
}

// EndedWithUser records session.revoked for each live session of the user
// with matchKey, which a deactivation or deletion (reason) ended, right
// after that write; best effort, like Created.
func (s *SessionEvents) EndedWithUser(ctx context.Context, org, matchKey, reason string) {
	if s == nil {
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionEventTimeout)
	defer cancel()
	if _, err := s.st.AppendSessionsEnded(wctx, org, matchKey, reason, "scim"); err != nil {
		s.m.SessionEventFailed()
		s.log.Warn("write session.revoked events failed", zap.String("reason", reason),
			zap.String("request_id", web.RequestID(ctx)), zap.Error(err))
	}
}

// endsSessions is the match key whose sessions a directory event ends, and
// the reason: a deactivation ends the user's sessions, a deletion those of
// the match key it left (its cut-off). ok is false for other events.
func endsSessions(d *Directory, e *store.Event) (key, reason string, ok bool) {
	switch e.Kind {
	case store.EventUserDeactivated:
		if e.User != nil && d != nil {
			return d.MatchKey(e.User), store.ReasonDeactivated, true
		}
	case store.EventUserDeleted:
		for _, c := range e.Cutoffs {
			if c.Deleted {
				return c.Key, store.ReasonDeleted, true
			}
		}
	}
	return "", "", false
}
