package samlsp

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/crewjam/saml"
	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/redirect"
	"github.com/portcullis-sso/portcullis/internal/session"
	"github.com/portcullis-sso/portcullis/internal/web"
)

// Reason codes of login_failed audit events. They are stable: alerts and
// dashboards match on them.
const (
	reasonNotReady         = "not_ready"
	reasonTooLarge         = "too_large"
	reasonMalformed        = "malformed"
	reasonBinding          = "binding"
	reasonDoctype          = "doctype"
	reasonAssertionCount   = "assertion_count"
	reasonUnsigned         = "unsigned"
	reasonNoTracking       = "no_tracking_cookie"
	reasonTrackingInvalid  = "tracking_invalid"
	reasonTrackingExpired  = "tracking_expired"
	reasonInResponseTo     = "in_response_to"
	reasonUnsolicited      = "unsolicited"
	reasonDestination      = "destination"
	reasonNotYetValid      = "not_yet_valid"
	reasonExpired          = "expired"
	reasonParserPanic      = "parser_panic"
	reasonInvalidSignature = "invalid_signature"
	reasonAudience         = "audience"
	reasonIssuer           = "issuer"
	reasonIDPStatus        = "idp_status"
	reasonMissingElement   = "missing_element"
	reasonNoBearer         = "no_bearer"
	reasonDecryption       = "decryption"
	reasonUnsupported      = "unsupported"
	reasonInvalid          = "invalid_response"
	reasonReplay           = "replay"
	reasonRequestReused    = "request_reused"
	reasonReplayCache      = "replay_cache"
	reasonNoUser           = "no_user"
	reasonSession          = "session_write"
	// Over the limits in principal.go, or a session that does not fit its
	// cookies: refused, never a 500 (an IdP or browser would retry it).
	reasonTooManyGroups     = "too_many_groups"
	reasonAttributeTooLarge = "attribute_too_large"
	reasonSessionTooLarge   = "session_too_large"
	// Organizations: a response at another organization's ACS than the
	// login went to; an email outside the organization's domains; too many
	// organization lookups from one client.
	reasonOrganization     = "organization"
	reasonDomainNotAllowed = "domain_not_allowed"
	reasonLookupLimited    = "lookup_limited"
)

const (
	titleFailed   = "Sign-in failed"
	messageFailed = "We could not sign you in. Try again, or contact your administrator and quote the request ID."

	bearerMethod = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	// requestKeyPrefix keys consumed AuthnRequest IDs in the replay cache,
	// apart from assertion IDs (xs:ID values never hold a colon).
	requestKeyPrefix = "AuthnRequest:"
)

// failure is a refused login: what the person sees (status) and what the
// audit log gets (reason, err). err never holds the response or cookies.
type failure struct {
	status int
	reason string
	err    error
}

func refuse(status int, reason string, err error) *failure {
	return &failure{status: status, reason: reason, err: err}
}

// loginResult is an accepted login. principal is the whole identity the
// assertion gave, for OnLogin; session.Principal may hold less (no groups
// when the directory provides them).
type loginResult struct {
	session     *session.Session
	principal   identity.Principal
	returnTo    string
	unsolicited bool
}

// serveACS is the assertion consumer service (HTTP-POST binding only).
func (sp *SP) serveACS(w http.ResponseWriter, r *http.Request, c *conn) {
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	res, f := sp.consume(w, r, c)
	if f == nil {
		// The app's own cookies (session.expireUpstreamCookies) go unless
		// this sign-in continues the same user's live session.
		if prev, err := sp.sessions.Read(r); err != nil || prev.Principal.User != res.session.Principal.User ||
			prev.Principal.Org != res.session.Principal.Org {
			sp.sessions.ExpireUpstream(w, r)
		}
		if err := sp.sessions.Write(w, r, res.session); errors.Is(err, session.ErrTooLarge) {
			f = refuse(http.StatusForbidden, reasonSessionTooLarge, err)
		} else if err != nil {
			f = refuse(http.StatusInternalServerError, reasonSession, err)
		}
	}
	rid := web.RequestID(r.Context())
	if f != nil {
		sp.metrics.Login(c.org, f.reason)
		sp.audit.Info("login failed",
			zap.String("event", "login_failed"),
			zap.String("reason", f.reason),
			zap.String("organization", c.org),
			zap.String("request_id", rid),
			zap.Error(f.err))
		if f.reason == reasonNotReady {
			web.Page(w, r, f.status, titleNotReady, messageNotReady)
			return
		}
		web.Page(w, r, f.status, titleFailed, messageFailed)
		return
	}
	s := res.session
	sp.metrics.Login(c.org, "")
	sp.audit.Info("login succeeded",
		zap.String("event", "login_succeeded"),
		zap.String("user", s.Principal.User),
		zap.String("organization", c.org),
		zap.String("session_id", s.ID),
		zap.Time("expires", s.Expires),
		zap.Bool("idp_initiated", res.unsolicited),
		zap.String("request_id", rid))
	if sp.onLogin != nil {
		sp.onLogin(r.Context(), Login{
			Principal:    res.principal,
			SessionID:    s.ID,
			Issued:       s.IssuedAt,
			Expires:      s.Expires,
			IdPInitiated: res.unsolicited,
			SAML:         s.SAML,
		})
	}
	w.Header().Set("Location", res.returnTo)
	w.WriteHeader(http.StatusSeeOther)
}

// consume validates the posted response and builds the session. It clears
// the tracking cookie named by the RelayState whatever the outcome.
func (sp *SP) consume(w http.ResponseWriter, r *http.Request, c *conn) (*loginResult, *failure) {
	st := c.state.Load()
	if st == nil {
		return nil, refuse(http.StatusServiceUnavailable, reasonNotReady, errors.New("idp metadata not loaded"))
	}
	doc, relay, trackID, f := sp.readACSForm(w, r)
	if f != nil {
		return nil, f
	}
	info, reason, err := inspectResponse(doc)
	if err != nil {
		status := http.StatusBadRequest
		if reason == reasonAssertionCount || reason == reasonUnsigned || reason == reasonIDPStatus {
			status = http.StatusForbidden
		}
		return nil, refuse(status, reason, err)
	}
	now := sp.now()
	res, t, f := sp.whichLogin(r, c, info, relay, trackID)
	if f != nil {
		return nil, f
	}
	if f := sp.checkResponseHead(c, info, now); f != nil {
		return nil, f
	}
	idp := *st.sp
	idp.AllowIDPInitiated = res.unsolicited
	var requestIDs []string
	expectIRT := ""
	if t != nil {
		requestIDs, expectIRT = []string{t.RequestID}, t.RequestID
	}
	assertion, err := sp.safeParse(&idp, doc, requestIDs)
	if err != nil {
		reason, private := classifyParseError(err)
		return nil, refuse(http.StatusForbidden, reason, private)
	}
	if reason, err := sp.checkAssertion(c, assertion, expectIRT, now); err != nil {
		return nil, refuse(http.StatusForbidden, reason, err)
	}
	if f := sp.checkReplay(r.Context(), c, assertion, t); f != nil {
		return nil, f
	}
	if f := sp.startSession(c, res, assertion, now); f != nil {
		return nil, f
	}
	return res, nil
}

// readACSForm reads the posted form (bounded by acsBodyLimit), clears the
// tracking cookie the RelayState names, allows the HTTP-POST binding only
// and returns the decoded SAMLResponse, the RelayState and, when the
// RelayState is one, the tracking ID.
func (sp *SP) readACSForm(w http.ResponseWriter, r *http.Request) (doc []byte, relay, trackID string, f *failure) {
	r.Body = http.MaxBytesReader(w, r.Body, sp.acsLimit)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, "", "", refuse(http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Errorf("body over %d bytes", tooBig.Limit))
		}
		return nil, "", "", refuse(http.StatusBadRequest, reasonMalformed, fmt.Errorf("parse form: %w", err))
	}
	form := r.PostForm
	relays := form["RelayState"]
	for _, v := range relays {
		if validTrackingID(v) {
			sp.clearTracking(w, sp.trackingName(v)) // single use, whatever happens next
		}
	}
	if len(relays) > 1 {
		return nil, "", "", refuse(http.StatusBadRequest, reasonMalformed, errors.New("more than one RelayState"))
	}
	if len(relays) == 1 {
		relay = relays[0]
	}
	if validTrackingID(relay) {
		trackID = relay
	}
	for _, k := range []string{"SAMLart", "SigAlg", "Signature"} {
		if _, ok := form[k]; ok {
			return nil, "", "", refuse(http.StatusBadRequest, reasonBinding, fmt.Errorf("form field %s: only the HTTP-POST binding is accepted", k))
		}
	}
	values := form["SAMLResponse"]
	if len(values) != 1 || values[0] == "" {
		return nil, "", "", refuse(http.StatusBadRequest, reasonMalformed, fmt.Errorf("want one SAMLResponse, got %d", len(values)))
	}
	doc, err := base64.StdEncoding.DecodeString(values[0])
	if err != nil {
		return nil, "", "", refuse(http.StatusBadRequest, reasonMalformed, errors.New("SAMLResponse is not base64"))
	}
	return doc, relay, trackID, nil
}

// whichLogin decides which login the response answers: a response to our
// request must come back to the browser that started it, inside the login
// window; an unsolicited one only with saml.allowIDPInitiated.
func (sp *SP) whichLogin(r *http.Request, c *conn, info responseInfo, relay, trackID string) (*loginResult, *tracked, *failure) {
	res := &loginResult{returnTo: "/"}
	var t *tracked
	terr := errNoTracking
	if trackID != "" {
		t, terr = sp.readTracking(r, trackID)
		if t != nil && t.Logout { // a logout's tracking never answers a login
			t, terr = nil, errTrackingInvalid
		}
	}
	switch {
	case t != nil:
		if org := cmp.Or(t.Org, identity.DefaultOrg); org != c.org {
			return nil, nil, refuse(http.StatusForbidden, reasonOrganization,
				fmt.Errorf("this browser's login went to organization %s's IdP, but the response came to organization %s's ACS", org, c.org))
		}
		if info.InResponseTo != t.RequestID {
			return nil, nil, refuse(http.StatusForbidden, reasonInResponseTo,
				fmt.Errorf("response InResponseTo %q is not the request %q this browser started", info.InResponseTo, t.RequestID))
		}
		res.returnTo, _ = sp.redirects.Safe(t.ReturnTo)
	case errors.Is(terr, errTrackingExpired):
		return nil, nil, refuse(http.StatusForbidden, reasonTrackingExpired, terr)
	case errors.Is(terr, errTrackingInvalid):
		return nil, nil, refuse(http.StatusForbidden, reasonTrackingInvalid, terr)
	case info.InResponseTo != "":
		return nil, nil, refuse(http.StatusForbidden, reasonNoTracking,
			fmt.Errorf("response to request %q: %w", info.InResponseTo, errNoTracking))
	case !c.allowIDPInit:
		return nil, nil, refuse(http.StatusForbidden, reasonUnsolicited, errors.New("unsolicited response and saml.allowIDPInitiated is off"))
	default:
		res.unsolicited = true
		res.returnTo, _ = redirect.Safe(relay)
	}
	return res, t, nil
}

// checkResponseHead checks the Response's own Destination and IssueInstant
// (read before the signature is checked, so they may only refuse).
func (sp *SP) checkResponseHead(c *conn, info responseInfo, now time.Time) *failure {
	if info.Destination != "" && info.Destination != c.acsURL.String() {
		return refuse(http.StatusForbidden, reasonDestination, fmt.Errorf("response Destination %q is not %s", info.Destination, c.acsURL.String()))
	}
	if !info.IssueInstant.IsZero() && info.IssueInstant.After(now.Add(sp.skew)) {
		return refuse(http.StatusForbidden, reasonNotYetValid, fmt.Errorf("response IssueInstant %s is in the future", info.IssueInstant.UTC().Format(time.RFC3339)))
	}
	if !info.IssueInstant.IsZero() && info.IssueInstant.Before(now.Add(-sp.skew-IssueDelay)) {
		return refuse(http.StatusForbidden, reasonExpired, fmt.Errorf("response IssueInstant %s is too old", info.IssueInstant.UTC().Format(time.RFC3339)))
	}
	return nil
}

// checkReplay accepts an assertion ID once, and a request ID once.
func (sp *SP) checkReplay(ctx context.Context, c *conn, a *saml.Assertion, t *tracked) *failure {
	seen, err := sp.replay.Seen(ctx, c.replayKey(a.ID), replayUntil(a, sp.skew))
	if err != nil {
		return refuse(http.StatusServiceUnavailable, reasonReplayCache, fmt.Errorf("replay cache: %w", err))
	}
	if seen {
		return refuse(http.StatusForbidden, reasonReplay, fmt.Errorf("assertion %q already used", a.ID))
	}
	if t == nil {
		return nil
	}
	seen, err = sp.replay.Seen(ctx, c.replayKey(requestKeyPrefix+t.RequestID), time.UnixMilli(t.Expires))
	if err != nil {
		return refuse(http.StatusServiceUnavailable, reasonReplayCache, fmt.Errorf("replay cache: %w", err))
	}
	if seen {
		return refuse(http.StatusForbidden, reasonRequestReused, fmt.Errorf("request %q already answered", t.RequestID))
	}
	return nil
}

// startSession fills res with the principal and the session, which ends at
// session.lifetime or the IdP's SessionNotOnOrAfter, whichever is first.
func (sp *SP) startSession(c *conn, res *loginResult, a *saml.Assertion, now time.Time) *failure {
	p, reason, err := principalFrom(a, c.attrs)
	if err != nil {
		return refuse(http.StatusForbidden, reason, err)
	}
	if p.User == "" {
		return refuse(http.StatusForbidden, reasonNoUser, errors.New("no user attribute and no NameID"))
	}
	expires := now.Add(sp.lifetime)
	for _, as := range a.AuthnStatements {
		if as.SessionNotOnOrAfter != nil && as.SessionNotOnOrAfter.Before(expires) {
			expires = *as.SessionNotOnOrAfter
		}
	}
	p.Org = c.org
	if err := sp.conns.Load().emailDomainAllowed(c, emailOf(p)); err != nil {
		return refuse(http.StatusForbidden, reasonDomainNotAllowed, err)
	}
	res.principal = p
	if sp.groupsFromDirectory {
		p.Groups = nil // the gate replaces them on every request; the cookie need not carry them
	}
	res.session = &session.Session{ID: session.NewID(), Principal: p, IssuedAt: now, Expires: expires,
		SAML: samlSessionOf(a, c)}
	return nil
}

// samlSessionOf is the IdP's names for the session a asserts: what a
// LogoutRequest names it by, either way.
func samlSessionOf(a *saml.Assertion, c *conn) session.SAMLSession {
	var ss session.SAMLSession
	if st := c.state.Load(); st != nil && st.sp.IDPMetadata != nil {
		ss.IdP = st.sp.IDPMetadata.EntityID
	}
	if a.Subject != nil && a.Subject.NameID != nil {
		ss.NameID, ss.NameIDFormat = a.Subject.NameID.Value, a.Subject.NameID.Format
	}
	for _, as := range a.AuthnStatements {
		if as.SessionIndex != "" {
			ss.SessionIndex = as.SessionIndex
			break
		}
	}
	return ss
}

// panicError is a panic inside crewjam's parser, turned into a refusal.
type panicError struct{ value any }

func (e *panicError) Error() string { return fmt.Sprintf("saml parser panic: %.200v", e.value) }

// safeParse runs the parser, containing any panic: a validly signed but
// unusual assertion must not take the process down.
func (sp *SP) safeParse(idp *saml.ServiceProvider, doc []byte, requestIDs []string) (a *saml.Assertion, err error) {
	defer func() {
		if v := recover(); v != nil {
			pe := &panicError{value: v}
			sp.log.Error("saml parser panic", zap.String("panic", pe.Error()), zap.ByteString("stack", debug.Stack()))
			a, err = nil, pe
		}
	}()
	return sp.parse(idp, doc, requestIDs)
}

func parseWithCrewjam(idp *saml.ServiceProvider, doc []byte, requestIDs []string) (*saml.Assertion, error) {
	// currentURL is our ACS URL: the Destination must name it, whatever
	// path or query the request arrived with behind other proxies.
	return idp.ParseXMLResponse(doc, requestIDs, idp.AcsURL)
}

// classifyParseError maps a crewjam error to a reason code and returns the
// private cause: InvalidResponseError's PrivateErr, never the error itself,
// whose Response field holds the whole document.
func classifyParseError(err error) (string, error) {
	private := err
	var ire *saml.InvalidResponseError
	if errors.As(err, &ire) {
		private = ire.PrivateErr
		if private == nil {
			private = errors.New("invalid response")
		}
	}
	var pe *panicError
	var status saml.ErrBadStatus
	switch {
	case errors.As(private, &pe):
		return reasonParserPanic, private
	case errors.Is(private, saml.ErrInvalidSignature):
		return reasonInvalidSignature, private
	case errors.As(private, &status):
		return reasonIDPStatus, private
	case errors.Is(private, saml.ErrAudienceMismatch):
		return reasonAudience, private
	case errors.Is(private, saml.ErrDestinationMismatch):
		return reasonDestination, private
	case errors.Is(private, saml.ErrRequestIDMismatch):
		return reasonInResponseTo, private
	case errors.Is(private, saml.ErrExpired):
		return reasonExpired, private
	case errors.Is(private, saml.ErrNotYetValid):
		return reasonNotYetValid, private
	case errors.Is(private, saml.ErrIssuerMismatch):
		return reasonIssuer, private
	case errors.Is(private, saml.ErrDecryptionFailed):
		return reasonDecryption, private
	case errors.Is(private, saml.ErrMissingElement):
		return reasonMissingElement, private
	case errors.Is(private, saml.ErrMalformedMessage):
		return reasonMalformed, private
	case errors.Is(private, saml.ErrUnsupported):
		return reasonUnsupported, private
	}
	return reasonInvalid, private
}

// checkAssertion applies saml.clockSkew to every time in the assertion
// (crewjam's own checks are set wider, see clock.go) and the rules crewjam
// leaves to us: a fresh bearer confirmation for our ACS and this request,
// and an IdP session that has not already ended. NotBefore and NotOnOrAfter
// hold within ± skew; IssueInstant may lie between now − (skew +
// IssueDelay) and now + skew.
func (sp *SP) checkAssertion(c *conn, a *saml.Assertion, inResponseTo string, now time.Time) (string, error) {
	skew := sp.skew
	switch {
	case a.ID == "":
		return reasonMissingElement, errors.New("assertion has no ID")
	case a.Subject == nil:
		return reasonMissingElement, errors.New("assertion has no Subject")
	case a.Conditions == nil:
		return reasonMissingElement, errors.New("assertion has no Conditions")
	case a.IssueInstant.After(now.Add(skew)):
		return reasonNotYetValid, fmt.Errorf("assertion IssueInstant %s is in the future", a.IssueInstant.UTC().Format(time.RFC3339))
	case a.IssueInstant.Before(now.Add(-skew - IssueDelay)):
		return reasonExpired, fmt.Errorf("assertion IssueInstant %s is too old", a.IssueInstant.UTC().Format(time.RFC3339))
	}
	cond := a.Conditions
	if !cond.NotBefore.IsZero() && cond.NotBefore.After(now.Add(skew)) {
		return reasonNotYetValid, fmt.Errorf("assertion NotBefore %s is in the future", cond.NotBefore.UTC().Format(time.RFC3339))
	}
	if !cond.NotOnOrAfter.IsZero() && !now.Before(cond.NotOnOrAfter.Add(skew)) {
		return reasonExpired, fmt.Errorf("assertion NotOnOrAfter %s has passed", cond.NotOnOrAfter.UTC().Format(time.RFC3339))
	}
	bearer, fresh := false, false
	for _, sc := range a.Subject.SubjectConfirmations {
		d := sc.SubjectConfirmationData
		if sc.Method != bearerMethod || d == nil {
			continue
		}
		bearer = true
		if d.Recipient == c.acsURL.String() && d.InResponseTo == inResponseTo &&
			now.Before(d.NotOnOrAfter.Add(skew)) && !d.NotBefore.After(now.Add(skew)) {
			fresh = true
		}
	}
	if !bearer {
		return reasonNoBearer, errors.New("assertion has no bearer SubjectConfirmation")
	}
	if !fresh {
		return reasonExpired, errors.New("no bearer SubjectConfirmation for this ACS and request is inside its time window")
	}
	for _, as := range a.AuthnStatements {
		if as.SessionNotOnOrAfter != nil && !now.Before(*as.SessionNotOnOrAfter) {
			return reasonExpired, fmt.Errorf("IdP session ended at %s", as.SessionNotOnOrAfter.UTC().Format(time.RFC3339))
		}
	}
	return "", nil
}

// replayUntil is when checkAssertion refuses the assertion anyway, so the
// replay cache may forget it: the earliest of IssueInstant + skew +
// IssueDelay, Conditions NotOnOrAfter and the latest bearer NotOnOrAfter,
// each with the skew.
func replayUntil(a *saml.Assertion, skew time.Duration) time.Time {
	s := skew
	until := a.IssueInstant.Add(skew + IssueDelay)
	if c := a.Conditions; c != nil && !c.NotOnOrAfter.IsZero() {
		until = earliest(until, c.NotOnOrAfter.Add(s))
	}
	var latest time.Time
	if a.Subject != nil {
		for _, sc := range a.Subject.SubjectConfirmations {
			if d := sc.SubjectConfirmationData; sc.Method == bearerMethod && d != nil && d.NotOnOrAfter.Add(s).After(latest) {
				latest = d.NotOnOrAfter.Add(s)
			}
		}
	}
	if !latest.IsZero() {
		until = earliest(until, latest)
	}
	return until
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
