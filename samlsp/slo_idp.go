package samlsp

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/crewjam/saml"
	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/session"
	"github.com/portcullis-sso/portcullis/internal/web"
)

// idpLogout answers the IdP's front-channel LogoutRequest: it ends every
// session of the NameID from this IdP (narrowed by SessionIndex), clears
// this browser's session if it is one of them, and sends the browser back
// to the IdP with a signed LogoutResponse in the binding the request came
// in (or the other one the IdP has).
func (sp *SP) idpLogout(w http.ResponseWriter, r *http.Request, c *conn, st *idpState, m *logoutMessage) {
	idp := sp.logoutSP(r.Context(), st)
	req, err := idp.ValidateLogoutRequest(r)
	if err != nil {
		reason, private := classifyLogoutError(err)
		sp.logoutFailed(w, r, refuse(http.StatusForbidden, reason, private))
		return
	}
	if req.NameID == nil || req.NameID.Value == "" {
		sp.logoutFailed(w, r, refuse(http.StatusForbidden, reasonNoNameID, errors.New("LogoutRequest names no NameID")))
		return
	}
	partial := sp.endIdPSessions(w, r, c, idp, req)
	binding := saml.HTTPRedirectBinding
	if m.post {
		binding = saml.HTTPPostBinding
	}
	if idp.GetSLOBindingLocation(binding) == "" {
		binding = otherBinding(binding)
	}
	if err := sp.writeLogoutResponse(w, r, idp, binding, req.ID, m.relay, logoutStatus(partial)); err != nil {
		sp.log.Error("answer logout request", zap.String("request_id", web.RequestID(r.Context())), zap.Error(err))
		web.Page(w, r, http.StatusOK, "Signed out", "You are signed out of this application.")
	}
}

func otherBinding(b string) string {
	if b == saml.HTTPPostBinding {
		return saml.HTTPRedirectBinding
	}
	return saml.HTTPPostBinding
}

// endIdPSessions ends the sessions req names and reports whether some may
// remain (PartialLogout): when there is no store to end them in, or the
// store failed. This browser's own session, if req names it, is cleared
// and ended even if the store never recorded it.
func (sp *SP) endIdPSessions(w http.ResponseWriter, r *http.Request, c *conn, idp *saml.ServiceProvider, req *saml.LogoutRequest) (partial bool) {
	q := EndQuery{Org: c.org, Reason: "idp_logout", IdP: idp.IDPMetadata.EntityID, NameID: req.NameID.Value}
	for _, si := range req.AllSessionIndexes() {
		if si.Value != "" {
			q.SessionIndexes = append(q.SessionIndexes, si.Value)
		}
	}
	if s, err := sp.sessions.Read(r); err == nil && namedBy(s, q) {
		q.Session = s
		sp.sessions.Clear(w, r)
	}
	rid := web.RequestID(r.Context())
	if sp.ender == nil {
		sp.audit.Info("idp logout without a store: other browsers' sessions of the user last until they expire",
			zap.String("event", "logout_partial"), zap.String("request_id", rid), zap.String("name_id", q.NameID))
		return true
	}
	n, err := sp.ender.EndSessions(r.Context(), q)
	if err != nil {
		sp.log.Error("end sessions for idp logout", zap.String("request_id", rid), zap.Error(err))
		return true
	}
	if ce := sp.log.Check(zap.DebugLevel, "idp logout"); ce != nil {
		ce.Write(zap.String("request_id", rid), zap.Int("sessions_ended", n))
	}
	return false
}

// namedBy reports whether s is one of the sessions q selects by IdP.
func namedBy(s *session.Session, q EndQuery) bool {
	return s.SAML.IdP == q.IdP && s.SAML.NameID == q.NameID &&
		(len(q.SessionIndexes) == 0 || slices.Contains(q.SessionIndexes, s.SAML.SessionIndex))
}

// writeLogoutResponse sends the browser to the IdP with a signed
// LogoutResponse to requestID in binding.
func (sp *SP) writeLogoutResponse(w http.ResponseWriter, r *http.Request, idp *saml.ServiceProvider, binding, requestID, relay string, status saml.Status) error {
	loc := idp.GetSLOBindingLocation(binding)
	if loc == "" {
		return errors.New("the IdP metadata has no SingleLogoutService")
	}
	if binding == saml.HTTPRedirectBinding {
		u, err := idp.MakeRedirectLogoutResponseWithStatus(requestID, relay, status)
		if err != nil {
			return fmt.Errorf("make logout response: %w", err)
		}
		w.Header().Set("Location", u.String())
		w.WriteHeader(http.StatusSeeOther)
		return nil
	}
	resp, err := idp.MakeLogoutResponseWithStatus(loc, requestID, status)
	if err != nil {
		return fmt.Errorf("make logout response: %w", err)
	}
	writePostPage(w, func(nonce string) []byte { return resp.PostWithNonce(relay, nonce) })
	return nil
}

// serveSOAPLogout answers the IdP's back-channel LogoutRequest: a signed
// LogoutResponse in a SOAP envelope, or a SOAP fault for a message that
// is refused.
func (sp *SP) serveSOAPLogout(w http.ResponseWriter, r *http.Request, c *conn, st *idpState) {
	fault := func(f *failure) {
		sp.audit.Info("logout failed",
			zap.String("event", "logout_failed"),
			zap.String("reason", f.reason),
			zap.String("binding", "soap"),
			zap.String("request_id", web.RequestID(r.Context())),
			zap.Error(f.err))
		_ = saml.WriteSOAPFault(w, "the logout request was refused")
	}
	if st == nil {
		fault(refuse(http.StatusServiceUnavailable, reasonNotReady, errors.New("idp metadata not loaded")))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, min(sp.acsLimit, 2*maxLogoutMessage)))
	if err != nil {
		fault(refuse(http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Errorf("read soap body: %w", err)))
		return
	}
	if err := checkXMLText(body); err != nil {
		reason := reasonMalformed
		if errors.Is(err, errDoctype) {
			reason = reasonDoctype
		}
		fault(refuse(http.StatusBadRequest, reason, err))
		return
	}
	idp := sp.logoutSP(r.Context(), st)
	req, err := idp.ParseXMLSOAPLogoutRequest(body)
	if err == nil && (req.NameID == nil || req.NameID.Value == "") {
		err = errors.New("LogoutRequest names no NameID")
	}
	if err != nil {
		reason, private := classifyLogoutError(err)
		fault(refuse(http.StatusForbidden, reason, private))
		return
	}
	partial := sp.endIdPSessions(w, r, c, idp, req)
	resp, err := idp.MakeSOAPLogoutResponse(req.ID, logoutStatus(partial))
	if err != nil {
		sp.log.Error("make soap logout response", zap.String("request_id", web.RequestID(r.Context())), zap.Error(err))
		_ = saml.WriteSOAPFault(w, "the logout response could not be made")
		return
	}
	_ = saml.WriteSOAPLogoutResponse(w, resp)
}
