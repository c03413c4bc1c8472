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

// sessionEventTimeout bounds one session event write, so that a slow store
// delays a sign-in or a revocation by at most this much.
const sessionEventTimeout = 2 * time.Second

// SessionAppender appends session events (store.Deliveries does).
type SessionAppender interface {
	AppendSessionEvent(ctx context.Context, e store.Event) (store.Event, error)
}

// SessionEvents writes session.created and session.revoked to the event
// log, best effort: right after the sign-in or the revocation, which never
// waits for or fails on it; a failed write is logged and counted
// (portcullis_session_event_write_failures_total). A nil *SessionEvents
// writes nothing.
type SessionEvents struct {
	st            SessionAppender
	dir           *Directory
	identityField string
	log           *zap.Logger
	m             *metrics.Metrics
}

// NewSessionEvents writes into st; dir (may be nil) supplies the directory
// user's SCIM id of a signed-in principal, found under identityField.
func NewSessionEvents(st SessionAppender, dir *Directory, identityField string, log *zap.Logger, m *metrics.Metrics) *SessionEvents {
	if log == nil {
		log = zap.NewNop()
	}
	return &SessionEvents{st: st, dir: dir, identityField: identityField, log: log, m: m}
}

// SessionEnd is one ended session, or every session of a user.
type SessionEnd struct {
	// SessionID is the ended session's ID (the login ledger's); "" when
	// every session of the user ended at once (deactivation, deletion).
	SessionID string
	UserID    string // the directory user's SCIM id, if known
	UserName  string
	Email     string
	// Reason is one of store.SessionReasons: logout, idp_logout, admin,
	// deactivated, deleted, reactivated, organization_removed, expired.
	Reason string
}

// Created records the sign-in of p with session sessionID.
func (s *SessionEvents) Created(ctx context.Context, p identity.Principal, sessionID string, issued, expires time.Time) {
	if s == nil {
		return
	}
	var userID string
	if s.dir != nil {
		if key := PrincipalMatchKey(p, s.identityField); key != "" {
			userID = s.dir.Standing(key).ID
		}
	}
	s.write(ctx, store.Event{Kind: store.EventSessionCreated, Session: &store.Session{ID: sessionID, UserID: userID,
		UserName: p.User, Email: p.Email, Issued: issued, Expires: expires}})
}

// Revoked records that a session (or every session of a user) ended: the
// one entry point for whatever ends sessions (SCIM deactivation and
// deletion here; logout, Single Logout and an admin's revoke elsewhere).
func (s *SessionEvents) Revoked(ctx context.Context, end SessionEnd) {
	if s == nil {
		return
	}
	s.write(ctx, store.Event{Kind: store.EventSessionRevoked, Session: &store.Session{ID: end.SessionID,
		UserID: end.UserID, UserName: end.UserName, Email: end.Email, Reason: end.Reason}})
}

// write appends e; the write outlives the request's cancellation (the
// browser may be gone) but not sessionEventTimeout.
func (s *SessionEvents) write(ctx context.Context, e store.Event) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionEventTimeout)
	defer cancel()
	if _, err := s.st.AppendSessionEvent(wctx, e); err != nil {
		s.m.SessionEventFailed()
		s.log.Warn("write session event failed", zap.String("kind", e.Kind), zap.String("reason", e.Session.Reason),
			zap.String("request_id", web.RequestID(ctx)), zap.Error(err))
	}
}

// revokedBy is the session.revoked a directory event implies, if any.
func revokedBy(e *store.Event) (SessionEnd, bool) {
	switch e.Kind {
	case store.EventUserDeactivated:
		end := SessionEnd{UserID: e.ResourceID, Reason: store.ReasonDeactivated}
		if e.User != nil {
			end.UserName, end.Email = e.User.UserName, e.User.Email
		}
		return end, true
	case store.EventUserDeleted:
		return SessionEnd{UserID: e.ResourceID, Reason: store.ReasonDeleted}, true
	}
	return SessionEnd{}, false
}
