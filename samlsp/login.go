package samlsp

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/crewjam/saml"
	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/web"
)

const (
	titleNotReady   = "Sign-in is not available yet"
	messageNotReady = "The sign-in service is still starting. Try again in a minute, or contact your administrator and quote the request ID."
)

// StartLogin sends the browser to the IdP with a signed HTTP-Redirect
// AuthnRequest, to come back to returnTo (validated here; an unsafe target
// becomes "/"). The proxy calls it for unauthenticated browser navigations.
//
// With organizations, the IdP is that of the request's host; on a host
// that serves every organization the browser goes to /saml/login, which
// asks for an email address first.
func (sp *SP) StartLogin(w http.ResponseWriter, r *http.Request, returnTo string) {
	set := sp.conns.Load()
	if c := set.byHost[strings.ToLower(r.Host)]; c != nil {
		sp.startLoginAt(w, r, c, returnTo)
		return
	}
	if !set.multi() && set.def != nil {
		sp.startLoginAt(w, r, set.def, returnTo)
		return
	}
	returnTo, _ = sp.redirects.Safe(returnTo)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Location", pathLogin+"?rd="+url.QueryEscape(returnTo))
	w.WriteHeader(http.StatusSeeOther)
}

// startLoginAt starts a login at connection c's IdP.
func (sp *SP) startLoginAt(w http.ResponseWriter, r *http.Request, c *conn, returnTo string) {
	rid := web.RequestID(r.Context())
	if c == nil { // no organization serves this request: nothing to sign in to
		web.Page(w, r, http.StatusNotFound, titleChoose, messageNoSSO)
		return
	}
	st := c.state.Load()
	if st == nil {
		web.Page(w, r, http.StatusServiceUnavailable, titleNotReady, messageNotReady)
		return
	}
	returnTo, _ = sp.redirects.Safe(returnTo)
	if home := c.acsURL.Host; !strings.EqualFold(r.Host, home) && sp.conns.Load().byHost[strings.ToLower(home)] == c {
		// An organization with hosts has its ACS on the first: the login
		// starts there, so the tracking cookie is where the IdP posts.
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Location", c.acsURL.Scheme+"://"+home+pathLogin+"?rd="+url.QueryEscape(returnTo))
		w.WriteHeader(http.StatusSeeOther)
		return
	}

	idp := *st.sp // a copy: nothing in it is changed, but the request is built per call
	req, err := idp.MakeAuthenticationRequest(st.ssoURL, saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		sp.loginError(w, r, "build authn request", err)
		return
	}
	now := sp.now()
	id, err := sp.setTracking(w, r, tracked{
		RequestID: req.ID,
		Org:       c.org,
		ReturnTo:  returnTo,
		Created:   now.UnixMilli(),
		Expires:   now.Add(sp.loginWindow).UnixMilli(),
	})
	if err != nil {
		sp.loginError(w, r, "set tracking cookie", err)
		return
	}
	// The RelayState is the tracking ID, never the return path: that comes
	// back from the tracking cookie, so the IdP never sees it.
	u, err := req.Redirect(id, &idp)
	if err != nil {
		sp.loginError(w, r, "sign authn request", err)
		return
	}
	if ce := sp.log.Check(zap.DebugLevel, "login started"); ce != nil {
		ce.Write(zap.String("request_id", rid), zap.String("authn_request_id", req.ID))
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Location", u.String())
	w.WriteHeader(http.StatusSeeOther)
}

func (sp *SP) loginError(w http.ResponseWriter, r *http.Request, what string, err error) {
	sp.log.Error("start login: "+what, zap.String("request_id", web.RequestID(r.Context())), zap.Error(err))
	web.Page(w, r, http.StatusInternalServerError, "Sign-in failed",
		"We could not start the sign-in. Try again, or contact your administrator and quote the request ID.")
}
