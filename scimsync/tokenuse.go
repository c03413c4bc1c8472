package scimsync

import (
	"sync/atomic"
	"time"
)

// TokenUse is the SCIM token that last authenticated: its label, never its
// value, and when.
type TokenUse struct {
	Label string
	Time  time.Time
}

// tokenUse remembers the last TokenUse of one Service.
type tokenUse struct{ last atomic.Pointer[TokenUse] }

func (u *tokenUse) record(label string, at time.Time) {
	if cur := u.last.Load(); cur != nil && cur.Label == label && at.Sub(cur.Time) < time.Second {
		return // spare the allocation on a busy sync
	}
	u.last.Store(&TokenUse{Label: label, Time: at})
}

// LastToken returns the token that last authenticated to this replica's
// SCIM API, and false if none has since the process started.
func (s *Service) LastToken() (TokenUse, bool) {
	if p := s.tokens.last.Load(); p != nil {
		return *p, true
	}
	return TokenUse{}, false
}
