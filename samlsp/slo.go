package samlsp

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/web"
)

// Single Logout at /saml/slo: the IdP's LogoutRequest by HTTP-Redirect,
// HTTP-POST (front channel, through the browser) or SOAP (back channel,
// server to server), and the IdP's LogoutResponse to a LogoutRequest we
// sent (logout.go). crewjam checks signatures, Destination, Issuer, times
// and (with our shared replay cache) replay; the guards here run first, as
// in the ACS: bounded sizes, UTF-8, no DTD.

const (
	// maxLogoutMessage bounds a decoded (and inflated) logout message; a
	// real one is a few kilobytes.
	maxLogoutMessage = 64 << 10
	// logoutResponseKeyPrefix keys answered LogoutRequest IDs in the
	// replay cache (crewjam keys the IdP's requests "LogoutRequest:").
	logoutResponseKeyPrefix = "LogoutResponse:"

	reasonNoNameID    = "no_name_id"
	titleLogoutFailed = "Sign-out refused"
	msgLogoutFailed   = "This sign-out message was refused. Contact your administrator and quote the request ID."
)

// logoutMessage is a front-channel logout message, read and guarded.
type logoutMessage struct {
	request bool   // a LogoutRequest (else a LogoutResponse)
	post    bool   // HTTP-POST (else HTTP-Redirect)
	doc     []byte // the decoded XML
	relay   string
	signed  bool // carries a query or SimpleSign signature, or a ds:Signature
}

// serveSLO is the single logout service of connection c.
func (sp *SP) serveSLO(w http.ResponseWriter, r *http.Request, c *conn) {
	w.Header().Set("Cache-Control", "no-store")
	st := c.state.Load()
	if saml.IsSOAPRequest(r) {
		sp.serveSOAPLogout(w, r, c, st)
		return
	}
	if !allowMethods(w, r, http.MethodGet, http.MethodPost) {
		return
	}
	if st == nil {
		web.Page(w, r, http.StatusServiceUnavailable, titleNotReady, messageNotReady)
		return
	}
	m, f := sp.readLogoutMessage(w, r)
	if f == nil && !m.signed {
		f = refuse(http.StatusForbidden, reasonUnsigned, errors.New("logout message is not signed"))
	}
	if f != nil {
		sp.logoutFailed(w, r, f)
		return
	}
	if m.request {
		sp.idpLogout(w, r, c, st, m)
		return
	}
	sp.logoutReturned(w, r, st, m)
}

// readLogoutMessage reads the one SAMLRequest or SAMLResponse of a GET
// (HTTP-Redirect) or a form POST (HTTP-POST), bounded, decoded and guarded.
func (sp *SP) readLogoutMessage(w http.ResponseWriter, r *http.Request) (*logoutMessage, *failure) {
	m := &logoutMessage{post: r.Method == http.MethodPost}
	values := r.URL.Query()
	if m.post {
		if values.Has("SAMLRequest") || values.Has("SAMLResponse") {
			return nil, refuse(http.StatusBadRequest, reasonBinding, errors.New("a POSTed logout message in the query string"))
		}
		r.Body = http.MaxBytesReader(w, r.Body, sp.acsLimit)
		if err := r.ParseForm(); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, refuse(http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Errorf("body over %d bytes", tooBig.Limit))
			}
			return nil, refuse(http.StatusBadRequest, reasonMalformed, fmt.Errorf("parse form: %w", err))
		}
		values = r.PostForm
	}
	reqs, resps := values["SAMLRequest"], values["SAMLResponse"]
	if len(reqs)+len(resps) != 1 || len(values["RelayState"]) > 1 {
		return nil, refuse(http.StatusBadRequest, reasonMalformed, errors.New("want one SAMLRequest or SAMLResponse and at most one RelayState"))
	}
	m.request, m.relay = len(reqs) == 1, values.Get("RelayState")
	raw := values.Get("SAMLResponse")
	if m.request {
		raw = reqs[0]
	}
	doc, f := decodeLogoutMessage(raw, !m.post)
	if f != nil {
		return nil, f
	}
	m.doc = doc
	m.signed = values.Get("Signature") != "" || hasDSigSignature(doc)
	return m, nil
}

// decodeLogoutMessage base64-decodes (and, for HTTP-Redirect, inflates) a
// message to at most maxLogoutMessage bytes and checks its text.
func decodeLogoutMessage(v string, deflated bool) ([]byte, *failure) {
	if len(v) > 2*maxLogoutMessage {
		return nil, refuse(http.StatusRequestEntityTooLarge, reasonTooLarge, errors.New("logout message too large"))
	}
	doc, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, reasonMalformed, errors.New("logout message is not base64"))
	}
	if deflated {
		doc, err = io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(doc)), maxLogoutMessage+1))
		if err != nil {
			return nil, refuse(http.StatusBadRequest, reasonMalformed, errors.New("logout message does not inflate"))
		}
	}
	if len(doc) > maxLogoutMessage {
		return nil, refuse(http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Errorf("logout message over %d bytes", maxLogoutMessage))
	}
	if err := checkXMLText(doc); err != nil {
		if errors.Is(err, errDoctype) {
			return nil, refuse(http.StatusBadRequest, reasonDoctype, err)
		}
		return nil, refuse(http.StatusBadRequest, reasonMalformed, err)
	}
	return doc, nil
}

// hasDSigSignature reports whether doc has a ds:Signature element anywhere
// (crewjam decides whether it is valid and covers the message).
func hasDSigSignature(doc []byte) bool {
	d := xml.NewDecoder(bytes.NewReader(doc))
	for depth := 0; ; {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space == nsDSig && t.Name.Local == "Signature" {
				return true
			}
			if depth++; depth > maxXMLDepth {
				return false
			}
		case xml.EndElement:
			depth--
		}
	}
}

// replayConsumer is our shared ReplayCache as crewjam's
// AssertionReplayCache, for the IdP's LogoutRequest IDs.
type replayConsumer struct {
	ctx   context.Context
	cache ReplayCache
}

func (c replayConsumer) Consume(id string, until time.Time) error {
	seen, err := c.cache.Seen(c.ctx, id, until)
	if err != nil {
		return fmt.Errorf("replay cache: %w", err)
	}
	if seen {
		return saml.ErrAssertionReplayed
	}
	return nil
}

// logoutSP is the connection's ServiceProvider with our replay cache, to
// validate a LogoutRequest.
func (sp *SP) logoutSP(ctx context.Context, st *idpState) *saml.ServiceProvider {
	idp := *st.sp
	idp.ReplayCache = replayConsumer{ctx: ctx, cache: sp.replay}
	return &idp
}

// classifyLogoutError is classifyParseError, with replay told apart.
func classifyLogoutError(err error) (string, error) {
	reason, private := classifyParseError(err)
	if errors.Is(err, saml.ErrAssertionReplayed) || errors.Is(private, saml.ErrAssertionReplayed) {
		return reasonReplay, private
	}
	// crewjam v0.6.3 leaves a bad HTTP-Redirect query signature
	// unclassified ("cannot validate signature: …").
	if reason == reasonInvalid && private != nil && strings.Contains(private.Error(), "validate signature") {
		return reasonInvalidSignature, private
	}
	return reason, private
}

// logoutFailed audits a refused logout message and answers with a page:
// never a signed LogoutResponse.
func (sp *SP) logoutFailed(w http.ResponseWriter, r *http.Request, f *failure) {
	sp.audit.Info("logout failed",
		zap.String("event", "logout_failed"),
		zap.String("reason", f.reason),
		zap.String("request_id", web.RequestID(r.Context())),
		zap.Error(f.err))
	web.Page(w, r, f.status, titleLogoutFailed, msgLogoutFailed)
}

// logoutStatus is Success, or Success with the second-level PartialLogout
// when some session could not be ended (saml-core §3.7.3.2).
func logoutStatus(partial bool) saml.Status {
	s := saml.Status{StatusCode: saml.StatusCode{Value: saml.StatusSuccess}}
	if partial {
		s.StatusCode.StatusCode = &saml.StatusCode{Value: saml.StatusPartialLogout}
	}
	return s
}

// writePostPage answers with the page of a SAML message sent by HTTP-POST:
// form(nonce) is crewjam's form, which its one script (allowed by the
// nonce) submits, or its button without JavaScript. No form-action:
// Chromium applies it to the redirects that follow the post, and an IdP
// answers a logout message by sending the browser on to its other SPs and
// back here (choose.go meets the same with the IdP's sign-in).
func writePostPage(w http.ResponseWriter, form func(nonce string) []byte) {
	nonce := newTrackingID()
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(form(nonce))
}
