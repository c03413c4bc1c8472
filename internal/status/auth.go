package status

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// authorize applies the token rule. It writes the refusal and returns false
// when the request may not see the page.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) bool {
	if !h.o.TokenRequired {
		return true
	}
	if len(h.o.Token) == 0 {
		h.refuse(w, http.StatusForbidden, "The admin listener is not bound to loopback, so the status page needs a token. "+
			"Set adminTokenFile in the configuration to a file holding one, and restart.")
		return false
	}
	want := sha256.Sum256(h.o.Token)
	got := sha256.Sum256([]byte(presentedToken(r)))
	// Comparing hashes keeps the time independent of the token's length too.
	if subtle.ConstantTimeCompare(want[:], got[:]) == 1 {
		return true
	}
	w.Header().Add("WWW-Authenticate", `Basic realm="portcullis admin", charset="UTF-8"`)
	w.Header().Add("WWW-Authenticate", `Bearer realm="portcullis admin"`)
	h.refuse(w, http.StatusUnauthorized, "The status page needs the admin token: as a bearer token, "+
		"or as the password of HTTP basic authentication (any user name).")
	return false
}

// presentedToken is the bearer token, or the basic authentication
// password, of r; "" if neither.
func presentedToken(r *http.Request) string {
	if _, pass, ok := r.BasicAuth(); ok {
		return pass
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(tok)
	}
	return ""
}

// ParseToken reads an admin token file: the token is its content less
// surrounding white space, at least 16 characters, on one line.
func ParseToken(b []byte) ([]byte, error) {
	t := strings.TrimSpace(string(b))
	switch {
	case t == "":
		return nil, errTokenEmpty
	case strings.ContainsAny(t, "\r\n"):
		return nil, errTokenLines
	case len(t) < 16:
		return nil, errTokenShort
	}
	return []byte(t), nil
}
