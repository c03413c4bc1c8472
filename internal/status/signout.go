package status

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"

	"go.uber.org/zap"
)

// "Sign out everywhere": a POST to /signout with the organization, the
// user's match key and a CSRF token ends every live session of that user
// in that organization, and in no other, on every replica
// (Options.SignOut). It always needs the admin token, even where the page
// does not (loopback): a process sharing the loopback must not sign
// people out. A browser sends basic authentication along with a
// cross-site form, so the form carries a CSRF token: an HMAC, keyed with
// the admin token, of the organization and the match key, which another
// site cannot compute, and which for alice of one organization does not
// sign out alice of another (a match key names a person only within its
// organization).

const pathSignOut = "/signout"

// csrfToken is the sign-out form's token for matchKey in organization org
// (never ""). The organization is written with its length first, so that
// no other (organization, match key) pair gives the same input.
func (h *Handler) csrfToken(org, matchKey string) string {
	m := hmac.New(sha256.New, h.o.Token)
	m.Write([]byte("portcullis status sign-out\x00" + strconv.Itoa(len(org)) + ":" + org + "\x00" + matchKey))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// canSignOut reports whether the page offers "Sign out everywhere".
func (h *Handler) canSignOut() bool { return h.o.SignOut != nil && len(h.o.Token) > 0 }

// serveSignOut handles the sign-out form.
func (h *Handler) serveSignOut(w http.ResponseWriter, r *http.Request) {
	if !h.canSignOut() {
		h.refuse(w, http.StatusForbidden, "Signing users out needs the session store (scim.enabled) and an admin token (adminTokenFile).")
		return
	}
	want := sha256.Sum256(h.o.Token)
	got := sha256.Sum256([]byte(presentedToken(r)))
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		w.Header().Add("WWW-Authenticate", `Basic realm="portcullis admin", charset="UTF-8"`)
		h.refuse(w, http.StatusUnauthorized, "Signing users out needs the admin token, even on loopback.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		h.refuse(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	key, filter := r.PostForm.Get("user"), r.PostForm.Get("organization")
	org := scopeOf(filter)
	if key == "" || len(key) > maxQuery || len(org) > maxOrgID ||
		!hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(h.csrfToken(org, key))) {
		h.refuse(w, http.StatusForbidden, "The form is stale or did not come from this page; search for the user and try again.")
		return
	}
	if h.directoryOf(org) == nil {
		h.refuse(w, http.StatusNotFound, "That organization has no SCIM directory here (any more); search for the user and try again.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), renderTimeout)
	defer cancel()
	n, err := h.o.SignOut(ctx, org, key)
	if err != nil {
		h.o.Logger.Error("sign out everywhere", zap.String("organization", org), zap.String("user", key), zap.Error(err))
		h.refuse(w, http.StatusServiceUnavailable, "The sessions could not be ended: the store did not answer. Try again.")
		return
	}
	back := "/?user=" + url.QueryEscape(key) + "&ended=" + strconv.Itoa(n)
	if filter != "" { // back to the page as it was filtered
		back += "&organization=" + url.QueryEscape(filter)
	}
	w.Header().Set("Location", back)
	w.WriteHeader(http.StatusSeeOther)
}
