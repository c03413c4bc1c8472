package proxy

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/web"
)

// Gate is the directory lookup run on every authenticated request
// (scimsync.Directory satisfies it). key is the session's match value.
type Gate interface {
	// OrgStanding is the standing of match key key in organization
	// org's directory. It runs on every signed-in request: it must not
	// allocate.
	OrgStanding(org, key string) identity.Standing
}

// Revocations says whether one session was ended (scimsync.Directory
// satisfies it). SessionRevoked runs on every signed-in request: it must not
// allocate.
type Revocations interface {
	OrgSessionRevoked(org, id string) bool
}

// Freshness says how current the gate's directory view is, when other
// replicas write the same store (scimsync.Follower satisfies it). Without
// one, the view is the store's own (SQLite in this process) and never stale.
type Freshness interface {
	// ConfirmedAt is when the view was last confirmed to match the store.
	ConfirmedAt() time.Time
	// Err says why the view cannot be confirmed now; nil when it can.
	Err() error
}

// gatePolicy is the scim part of the config, compiled once.
type gatePolicy struct {
	gate               Gate
	fresh              Freshness     // nil: never stale
	maxStale           time.Duration // store.maxStaleness
	identityField      string        // user | email
	requireProvisioned bool
	groupsSource       string // scim | saml | both
}

func newGatePolicy(g Gate, f Freshness, c config.SCIM, st config.Store) *gatePolicy {
	if g == nil {
		return nil
	}
	maxStale := st.MaxStaleness
	if maxStale <= 0 {
		maxStale = config.DefaultStoreMaxStaleness
	}
	return &gatePolicy{
		gate:               g,
		fresh:              f,
		maxStale:           maxStale,
		identityField:      c.Match.IdentityField,
		requireProvisioned: c.RequireProvisioned,
		groupsSource:       c.GroupsSource,
	}
}

func (gp *gatePolicy) key(p *identity.Principal) string {
	if gp.identityField == identity.FieldUser {
		return p.User
	}
	return p.Email
}

// verdict of the gate for one request.
type verdict uint8

const (
	verdictAllow verdict = iota
	verdictUnprovisioned
	verdictRemoved       // deactivated or deleted
	verdictSessionVoided // the user is fine, but this session predates a revocation
	verdictStale         // the view is older than store.maxStaleness: fail closed
	verdictAmbiguous     // two directory users have the session's match key: fail closed
)

// stale reports whether the view was last confirmed longer than
// store.maxStaleness before now.
func (gp *gatePolicy) stale(now time.Time) bool {
	return gp.fresh != nil && now.Sub(gp.fresh.ConfirmedAt()) > gp.maxStale
}

// check judges a session at time now and returns the directory's standing
// of the user with the verdict. On allow it returns the principal to
// use, with groups taken from the source the config names: p itself, or
// *merged filled from p (merged is caller-owned storage, so the hot path
// does not allocate a copy).
func (gp *gatePolicy) check(p *identity.Principal, issuedAt, now time.Time, merged *identity.Principal) (verdict, identity.Standing, *identity.Principal) {
	if gp.stale(now) {
		// Whoever this is, the replica cannot tell whether SCIM has
		// removed them since it last heard from the store.
		return verdictStale, identity.Standing{}, nil
	}
	st := gp.gate.OrgStanding(orgOf(p), gp.key(p))
	switch st.State {
	case identity.StateInactive, identity.StateDeleted:
		return verdictRemoved, st, nil
	case identity.StateAmbiguous:
		return verdictAmbiguous, st, nil
	case identity.StateUnknown:
		if issuedAt.Before(st.ValidAfter) { // a key a user left by a rename
			return verdictSessionVoided, st, nil
		}
		if gp.requireProvisioned {
			return verdictUnprovisioned, st, nil
		}
	case identity.StateActive:
		if issuedAt.Before(st.ValidAfter) {
			return verdictSessionVoided, st, nil
		}
	default: // a state this gate does not know: fail closed
		return verdictAmbiguous, st, nil
	}
	switch gp.groupsSource {
	case "saml":
		return verdictAllow, st, p
	case "both":
		if len(st.Groups) == 0 {
			return verdictAllow, st, p
		}
		*merged = *p
		merged.Groups = unionGroups(p.Groups, st.Groups)
		return verdictAllow, st, merged
	default: // scim
		*merged = *p
		merged.Groups = st.Groups
		return verdictAllow, st, merged
	}
}

func unionGroups(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	out = append(out, a...)
	for _, g := range b {
		if !slices.Contains(a, g) {
			out = append(out, g)
		}
	}
	return out
}

// deny answers a request the gate refused. Never a redirect to the IdP for a
// removed or unprovisioned user: the IdP would sign them straight back in.
func (p *Proxy) deny(x *exchange, v verdict, state identity.State, user string) {
	r, route := x.r, x.policy.Route
	reason := "unprovisioned"
	switch v {
	case verdictRemoved, verdictAmbiguous:
		reason = state.String() // inactive | deleted | ambiguous
	case verdictStale:
		reason = "directory_stale"
	}
	p.audit.Info("access denied",
		zap.String("event", "access_denied"),
		zap.String("reason", reason),
		zap.String("request_id", web.RequestID(r.Context())),
		zap.String("user", user),
		zap.String("route", route))
	if v == verdictStale {
		x.w.Header().Set("Retry-After", "30")
		p.refuse(x, http.StatusServiceUnavailable, "Temporarily unavailable",
			"This application cannot confirm your access right now. Please try again in a few minutes.")
		return
	}
	if v == verdictRemoved {
		p.refuse(x, http.StatusForbidden, "Your access has been removed",
			"Your account is no longer active for this application. Contact your administrator if you think this is a mistake.")
		return
	}
	p.refuse(x, http.StatusForbidden, "No access",
		"You are signed in, but your account has not been set up for this application. Contact your administrator.")
}

// isStream reports whether a request opens a long-lived stream (WebSocket
// upgrade or server-sent events), which must be closed when its user loses
// access.
func isStream(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return true
	}
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// DirectoryCheck is the /readyz check of the directory view. With a shared
// store it is degraded while the view cannot be confirmed (the last known
// directory is still enforced) and not ready once that has lasted longer
// than store.maxStaleness (the gate then refuses every signed-in request,
// so traffic is better sent to a replica that can still reach the store).
func (p *Proxy) DirectoryCheck() ReadyCheck {
	return ReadyCheck{Name: "directory", Check: func() (Readiness, string) {
		gp := p.gate
		if gp == nil || gp.fresh == nil {
			return Ready, ""
		}
		now := p.now()
		age := now.Sub(gp.fresh.ConfirmedAt()).Round(time.Second)
		err := gp.fresh.Err()
		switch {
		case gp.stale(now):
			return NotReady, fmt.Sprintf("view last confirmed %s ago, over store.maxStaleness %s: signed-in requests are refused (503) until the store answers: %v",
				age, gp.maxStale, err)
		case err != nil:
			return Degraded, fmt.Sprintf("enforcing the last known directory (confirmed %s ago; fails closed after store.maxStaleness %s): %v",
				age, gp.maxStale, err)
		}
		return Ready, ""
	}}
}

// orgOf is p's organization; "" (a principal built in code) is the default.
func orgOf(p *identity.Principal) string { return identity.OrgOrDefault(p.Org) }
