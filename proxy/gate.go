package proxy

import (
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
	Standing(key string) identity.Standing
}

// gatePolicy is the scim part of the config, compiled once.
type gatePolicy struct {
	gate               Gate
	identityField      string // user | email
	requireProvisioned bool
	groupsSource       string // scim | saml | both
}

func newGatePolicy(g Gate, c config.SCIM) *gatePolicy {
	if g == nil {
		return nil
	}
	return &gatePolicy{
		gate:               g,
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
)

// check judges a session. On allow it returns the principal to use, with
// groups taken from the source the config names.
func (gp *gatePolicy) check(p *identity.Principal, issuedAt time.Time) (verdict, identity.State, *identity.Principal) {
	st := gp.gate.Standing(gp.key(p))
	switch st.State {
	case identity.StateInactive, identity.StateDeleted:
		return verdictRemoved, st.State, nil
	case identity.StateUnknown:
		if gp.requireProvisioned {
			return verdictUnprovisioned, st.State, nil
		}
	case identity.StateActive:
		if issuedAt.Before(st.ValidAfter) {
			return verdictSessionVoided, st.State, nil
		}
	}
	switch gp.groupsSource {
	case "saml":
		return verdictAllow, st.State, p
	case "both":
		if len(st.Groups) == 0 {
			return verdictAllow, st.State, p
		}
		q := *p
		q.Groups = unionGroups(p.Groups, st.Groups)
		return verdictAllow, st.State, &q
	default: // scim
		q := *p
		q.Groups = st.Groups
		return verdictAllow, st.State, &q
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
func (p *Proxy) deny(w http.ResponseWriter, r *http.Request, v verdict, state identity.State, user, route string) {
	reason := "unprovisioned"
	if v == verdictRemoved {
		reason = state.String() // inactive | deleted
	}
	p.audit.Info("access denied",
		zap.String("event", "access_denied"),
		zap.String("reason", reason),
		zap.String("request_id", web.RequestID(r.Context())),
		zap.String("user", user),
		zap.String("route", route))
	if v == verdictRemoved {
		web.Page(w, r, http.StatusForbidden, "Your access has been removed",
			"Your account is no longer active for this application. Contact your administrator if you think this is a mistake.")
		return
	}
	web.Page(w, r, http.StatusForbidden, "No access",
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
