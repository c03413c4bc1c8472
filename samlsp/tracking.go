package samlsp

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/portcullis-sso/portcullis/internal/session"
)

// A tracking cookie ties a SAML response to the login this browser started:
// one per login attempt, named <prefix><id>, where id is also the RelayState
// sent to the IdP. Its value (AES-256 + HMAC-SHA256 with the session keys,
// bound to the cookie name) holds the AuthnRequest ID, the return path and
// an expiry. The ACS clears it whatever the outcome.
const (
	trackingIDBytes = 12
	trackingIDLen   = 16 // base64url of trackingIDBytes
	// maxTracking bounds how many tracking cookies a browser holds, so that
	// many tabs starting logins cannot push the Cookie header over the
	// server's limit.
	maxTracking = 5
	// maxTrackingScan bounds how many present tracking cookies StartLogin
	// decodes or clears in one request.
	maxTrackingScan = 32
)

// tracked is the tracking cookie's content. Times are Unix milliseconds.
type tracked struct {
	RequestID string `json:"i"`
	// Org is the organization whose IdP the request went to; the response
	// must come back to that organization's ACS. "" in cookies set before
	// organizations: the default organization.
	Org      string `json:"o,omitempty"`
	ReturnTo string `json:"r"`
	Created  int64  `json:"c"`
	Expires  int64  `json:"e"`
	// Logout: the request is a LogoutRequest (logout.go), never a login.
	Logout bool `json:"l,omitempty"`
}

var (
	errNoTracking      = errors.New("no tracking cookie for the relay state")
	errTrackingInvalid = errors.New("tracking cookie does not decode")
	errTrackingExpired = errors.New("tracking cookie older than the login window")
)

func trackingCodecs(keys []session.KeyPair) ([]securecookie.Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("samlsp: no session keys for the tracking cookie")
	}
	codecs := make([]securecookie.Codec, 0, len(keys))
	for i, k := range keys {
		if len(k.Hash) < 32 || len(k.Block) != 32 {
			return nil, fmt.Errorf("samlsp: session key pair %d: want a hash key of at least 32 bytes and a 32-byte block key", i+1)
		}
		sc := securecookie.New(k.Hash, k.Block)
		sc.SetSerializer(securecookie.JSONEncoder{})
		sc.MaxLength(1024)
		// The expiry inside the value is checked against the injected
		// clock; securecookie's own age check would use the real one.
		sc.MaxAge(0)
		codecs = append(codecs, sc)
	}
	return codecs, nil
}

func newTrackingID() string {
	var b [trackingIDBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validTrackingID reports whether s has the shape of a tracking ID, so
// that only such RelayState values are turned into cookie names.
func validTrackingID(s string) bool {
	if len(s) != trackingIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (sp *SP) trackingName(id string) string { return sp.trackPrefix + id }

func (sp *SP) trackingCookie(name, value string, maxAge int) *http.Cookie {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/", // StartLogin runs on any path and must see the others to bound them
		MaxAge:   maxAge,
		HttpOnly: true,
	}
	if sp.secure {
		// The ACS POST comes from the IdP's site.
		c.Secure, c.SameSite = true, http.SameSiteNoneMode
	} else {
		// Chromium drops SameSite=None without Secure; on plain http a
		// cross-site IdP cannot complete a login (development only).
		c.SameSite = http.SameSiteLaxMode
	}
	return c
}

func (sp *SP) clearTracking(w http.ResponseWriter, name string) {
	http.SetCookie(w, sp.trackingCookie(name, "", -1))
}

// setTracking issues a tracking cookie for a new login and returns its ID,
// first clearing tracking cookies in r that are invalid, expired, or the
// oldest beyond maxTracking-1.
func (sp *SP) setTracking(w http.ResponseWriter, r *http.Request, t tracked) (string, error) {
	type present struct {
		name    string
		created int64
	}
	var valid []present
	seen := map[string]bool{}
	scanned := 0
	now := sp.now().UnixMilli()
	for _, c := range r.Cookies() {
		if !strings.HasPrefix(c.Name, sp.trackPrefix) || seen[c.Name] {
			continue
		}
		seen[c.Name] = true
		if scanned++; scanned > maxTrackingScan {
			break
		}
		var old tracked
		if err := securecookie.DecodeMulti(c.Name, c.Value, &old, sp.trackCodecs...); err != nil || old.Expires <= now {
			sp.clearTracking(w, c.Name)
			continue
		}
		valid = append(valid, present{c.Name, old.Created})
	}
	if extra := len(valid) - (maxTracking - 1); extra > 0 {
		slices.SortFunc(valid, func(a, b present) int { return cmp.Compare(a.created, b.created) })
		for _, p := range valid[:extra] {
			sp.clearTracking(w, p.name)
		}
	}

	id := newTrackingID()
	name := sp.trackingName(id)
	v, err := securecookie.EncodeMulti(name, t, sp.trackCodecs[0])
	if err != nil {
		return "", fmt.Errorf("encode tracking cookie: %w", err)
	}
	http.SetCookie(w, sp.trackingCookie(name, v, int(sp.loginWindow/time.Second)))
	return id, nil
}

// readTracking decodes the tracking cookie for id from r and checks its expiry.
func (sp *SP) readTracking(r *http.Request, id string) (*tracked, error) {
	c, err := r.Cookie(sp.trackingName(id))
	if err != nil || c.Value == "" {
		return nil, errNoTracking
	}
	var t tracked
	if err := securecookie.DecodeMulti(c.Name, c.Value, &t, sp.trackCodecs...); err != nil {
		return nil, errTrackingInvalid
	}
	if sp.now().UnixMilli() >= t.Expires {
		return nil, errTrackingExpired
	}
	return &t, nil
}
