package scimsync

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/web"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// MatchKey is u's match key: its userName, email or externalId (the match
// attribute, scim.match.scimAttribute) as identity.MatchKey folds it. The
// view matches sessions on it, and the login ledger keeps u's logins under it.
func (d *Directory) MatchKey(u *store.User) string { return d.keyOf(u) }

// PrincipalMatchKey is a signed-in principal's match key: its email or user
// (per scim.match.identityField) as identity.MatchKey folds it, "" if it
// has none. The directory user with this match key is the principal's.
func PrincipalMatchKey(p identity.Principal, identityField string) string {
	if identityField == identity.FieldUser {
		return identity.MatchKey(p.User)
	}
	return identity.MatchKey(p.Email)
}

// loginRecordTimeout bounds one ledger write, so that a slow store delays a
// login by at most this much.
const loginRecordTimeout = 2 * time.Second

// LoginRecorder writes accepted logins to a Ledger from samlsp's OnLogin
// hook (cmd adapts the call). A failed write is logged and never fails the
// login: the ledger feeds the status page, not access decisions.
type LoginRecorder struct {
	ledger        store.Ledger
	identityField string
	log           *zap.Logger
}

// NewLoginRecorder records into lg under cfg's scim.match.identityField;
// log may be nil.
func NewLoginRecorder(lg store.Ledger, identityField string, log *zap.Logger) *LoginRecorder {
	if log == nil {
		log = zap.NewNop()
	}
	return &LoginRecorder{ledger: lg, identityField: identityField, log: log}
}

// Record records one accepted login of p: the session in l (its MatchKey
// and User are p's). The write outlives the request's cancellation (the
// browser may already be gone) but not loginRecordTimeout.
// A nil recorder records nothing.
func (r *LoginRecorder) Record(ctx context.Context, p identity.Principal, l store.Login) {
	if r == nil {
		return
	}
	key := PrincipalMatchKey(p, r.identityField)
	if key == "" {
		key = identity.MatchKey(p.User) // no email: still show the login under the user
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loginRecordTimeout)
	defer cancel()
	l.MatchKey, l.User = key, p.User
	err := r.ledger.RecordLogin(wctx, l)
	if err != nil {
		r.log.Warn("record login in ledger failed", zap.String("user", p.User),
			zap.String("request_id", web.RequestID(ctx)), zap.Error(err))
	}
}
