package samlsp

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/session"
	"github.com/portcullis-sso/portcullis/internal/web"
)

// serveLogout is /saml/logout?rd=: end the session here (on every replica,
// when there is a store), clear the session and tracking cookies, and,
// when the IdP has a Single Logout service (HTTP-Redirect, else
// HTTP-POST), send the browser there with a signed LogoutRequest for the
// session's NameID and SessionIndex, to come back at /saml/slo and then go
// to rd. Without one the IdP session may remain, and the browser goes to
// rd at once.
func (sp *SP) serveLogout(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodGet, http.MethodPost) {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	target, _ := sp.redirects.Safe(r.URL.Query().Get("rd"))
	rid := web.RequestID(r.Context())
	s, err := sp.sessions.Read(r)
	if err == nil {
		sp.audit.Info("logout",
			zap.String("event", "logout"),
			zap.String("user", s.Principal.User),
			zap.String("session_id", s.ID),
			zap.String("request_id", rid))
		if sp.ender != nil {
			if _, err := sp.ender.EndSessions(r.Context(), EndQuery{Org: s.Principal.Org, Reason: "logout", Session: s}); err != nil {
				// The cookie is cleared below; other replicas would still
				// accept a copy of it until it expires.
				sp.log.Error("end session at logout", zap.String("request_id", rid), zap.Error(err))
			}
		}
	}
	sp.sessions.Clear(w, r)
	n := 0
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, sp.trackPrefix) && n < maxTrackingScan {
			sp.clearTracking(w, c.Name)
			n++
		}
	}
	if s != nil {
		if c := sp.conns.Load().byID[s.Principal.Org]; c != nil && sp.sendLogoutRequest(w, r, c, s, target) {
			return
		}
	}
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusSeeOther)
}

// sendLogoutRequest sends the browser to the IdP's Single Logout service
// with a signed LogoutRequest for s, tied to a tracking cookie that
// returns to target: a redirect (HTTP-Redirect), or, when the IdP has only
// HTTP-POST, a page whose form posts it (by script, or by its button
// without JavaScript). It reports false, having written nothing, when the
// IdP has neither or s came from elsewhere.
func (sp *SP) sendLogoutRequest(w http.ResponseWriter, r *http.Request, c *conn, s *session.Session, target string) bool {
	st := c.state.Load()
	if st == nil || s.SAML.NameID == "" || st.sp.IDPMetadata == nil || s.SAML.IdP != st.sp.IDPMetadata.EntityID {
		return false
	}
	idp := *st.sp
	binding := saml.HTTPRedirectBinding
	loc := idp.GetSLOBindingLocation(binding)
	if loc == "" {
		binding = saml.HTTPPostBinding
		loc = idp.GetSLOBindingLocation(binding)
	}
	if loc == "" {
		return false
	}
	rid := web.RequestID(r.Context())
	req, err := idp.MakeLogoutRequest(loc, s.SAML.NameID, saml.WithSessionIndex(s.SAML.SessionIndex),
		func(lr *saml.LogoutRequest) { lr.NameID.Format = s.SAML.NameIDFormat })
	if err != nil {
		sp.log.Error("make logout request", zap.String("request_id", rid), zap.Error(err))
		return false
	}
	now := sp.now()
	id, err := sp.setTracking(w, r, tracked{RequestID: req.ID, ReturnTo: target, Created: now.UnixMilli(),
		Expires: now.Add(sp.loginWindow).UnixMilli(), Logout: true})
	if err != nil {
		sp.log.Error("set logout tracking cookie", zap.String("request_id", rid), zap.Error(err))
		return false
	}
	if binding == saml.HTTPPostBinding {
		// MakeLogoutRequest signed it (enveloped).
		writePostPage(w, func(nonce string) []byte { return req.PostWithNonce(id, nonce) })
		return true
	}
	u, err := idp.RedirectLogoutRequestURL(req, id)
	if err != nil {
		sp.log.Error("sign logout request", zap.String("request_id", rid), zap.Error(err))
		return false
	}
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusSeeOther)
	return true
}

// logoutReturned takes the IdP's LogoutResponse to a LogoutRequest this
// browser carried: signed, from the IdP, to our Destination, answering
// the request its tracking cookie names, once. The session here ended
// before the browser left; this sends it on to where it was going.
func (sp *SP) logoutReturned(w http.ResponseWriter, r *http.Request, st *idpState, m *logoutMessage) {
	if !validTrackingID(m.relay) {
		sp.logoutFailed(w, r, refuse(http.StatusForbidden, reasonNoTracking, errors.New("LogoutResponse without our RelayState")))
		return
	}
	sp.clearTracking(w, sp.trackingName(m.relay)) // single use, whatever happens next
	t, err := sp.readTracking(r, m.relay)
	if err == nil && !t.Logout {
		err = errTrackingInvalid
	}
	if err != nil {
		reason := reasonNoTracking
		if errors.Is(err, errTrackingExpired) {
			reason = reasonTrackingExpired
		} else if errors.Is(err, errTrackingInvalid) {
			reason = reasonTrackingInvalid
		}
		sp.logoutFailed(w, r, refuse(http.StatusForbidden, reason, err))
		return
	}
	idp := *st.sp
	resp, err := idp.ParseLogoutResponse(r, []string{t.RequestID})
	if err != nil {
		reason, private := classifyLogoutError(err)
		sp.logoutFailed(w, r, refuse(http.StatusForbidden, reason, private))
		return
	}
	seen, err := sp.replay.Seen(r.Context(), logoutResponseKeyPrefix+t.RequestID, time.UnixMilli(t.Expires))
	if err != nil || seen {
		sp.logoutFailed(w, r, refuse(http.StatusForbidden, reasonReplay, errors.Join(errors.New("logout response already used"), err)))
		return
	}
	partial := resp.Status.StatusCode.StatusCode != nil && resp.Status.StatusCode.StatusCode.Value == saml.StatusPartialLogout
	sp.audit.Info("logout completed at the idp",
		zap.String("event", "logout_idp"),
		zap.Bool("partial", partial),
		zap.String("request_id", web.RequestID(r.Context())))
	target, _ := sp.redirects.Safe(t.ReturnTo)
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusSeeOther)
}
