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

// "Sign out everywhere": a POST to /signout with the user's match key and
// a CSRF token ends every live session of that user on every replica
// (Options.SignOut). It always needs the admin token, even where the page
// does not (loopback): a process sharing the loopback must not sign
// people out. A browser sends basic authentication along with a
// cross-site form, so the form carries a CSRF token: an HMAC, keyed with
// the admin token, of the match key, which another site cannot compute.

const pathSignOut = "/signout"

// csrfToken is the sign-out form's token for matchKey.
func (h *Handler) csrfToken(matchKey string) string {
	m := hmac.New(sha256.New, h.o.Token)
	m.Write([]byte("portcullis status sign-out\x00" + matchKey))
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
	key := r.PostForm.Get("user")
	if key == "" || len(key) > maxQuery ||
		!hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(h.csrfToken(key))) {
		h.refuse(w, http.StatusForbidden, "The form is stale or did not come from this page; search for the user and try again.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), renderTimeout)
	defer cancel()
	n, err := h.o.SignOut(ctx, key)
	if err != nil {
		h.o.Logger.Error("sign out everywhere", zap.String("user", key), zap.Error(err))
		h.refuse(w, http.StatusServiceUnavailable, "The sessions could not be ended: the store did not answer. Try again.")
		return
	}
	w.Header().Set("Location", "/?user="+url.QueryEscape(key)+"&ended="+strconv.Itoa(n))
	w.WriteHeader(http.StatusSeeOther)
}
