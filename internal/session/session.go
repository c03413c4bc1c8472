// Package session owns the session cookie: its contents, its encoding with
// gorilla/securecookie (AES-256 + HMAC-SHA256), key rotation and splitting
// large sessions over several cookies. The SAML handlers issue sessions with
// it and the proxy reads them; neither needs the other.
package session

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

// Session is what the cookie carries.
type Session struct {
	ID        string // random, identifies this session (revocation, logs)
	Principal identity.Principal
	IssuedAt  time.Time
	Expires   time.Time // enforced by the server, not only the browser
	// SAML is the IdP's names for the session, which Single Logout sends
	// back to it; empty in a session issued before they were kept.
	SAML SAMLSession
}

// SAMLSession is the IdP's names for a session: its entity ID, the
// assertion's NameID (value and Format) and the AuthnStatement's
// SessionIndex.
type SAMLSession struct {
	IdP, NameID, NameIDFormat, SessionIndex string
}

// Errors returned by Decode. Any of them means "no session".
var (
	ErrNoCookie = errors.New("no session cookie")
	ErrExpired  = errors.New("session expired")
	ErrInvalid  = errors.New("session cookie invalid")
	// ErrDuplicate: the request carries two different values for one
	// session cookie name. One may have been planted for a longer Path or
	// a parent domain (a sibling app on the same site) to take over a
	// subtree; guessing which is ours would let it, so neither is used.
	ErrDuplicate = errors.New("two different session cookies")
)

// ErrTooLarge is returned, wrapped, by Encode and Write for a session that
// does not fit in MaxChunks cookies: a refusal to report, not a fault.
var ErrTooLarge = errors.New("session does not fit in its cookies")

const (
	// chunkSize is the most bytes of encoded value one cookie carries; with
	// the name and attributes a cookie stays under the 4096-byte limit
	// browsers enforce.
	chunkSize = 3800
	// MaxChunks bounds how many cookies one session may span.
	MaxChunks = 10
)

// KeyPair is one hash key (HMAC-SHA256) and one block key (AES-256).
type KeyPair struct {
	Hash  []byte
	Block []byte
}

// Codec encodes and decodes sessions for one cookie name.
type Codec struct {
	name    string
	legacy  []string // earlier names: stripped from upstream requests and expired in browsers
	secure  bool
	domain  string // Domain attribute (session.cookieDomain); "" for host-only
	codecs  []securecookie.Codec
	enc     securecookie.Codec // keys[0] without a length limit, so Encode can tell "too large" apart
	maxAge  time.Duration
	nowFunc func() time.Time
	// upstream are the app's cookies expired with a session
	// (session.expireUpstreamCookies), at each of upstreamPaths.
	upstream      []string
	upstreamPaths []string
}

// NewCodec returns a codec for cookie name. keys[0] encodes; every pair
// decodes, so cookies made with an older pair keep working during rotation.
// secure sets the Secure attribute (publicURL is https). maxAge bounds the
// age securecookie accepts and should be at least the session lifetime.
func NewCodec(name string, keys []KeyPair, secure bool, maxAge time.Duration) (*Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("session: no keys")
	}
	c := &Codec{name: name, secure: secure, maxAge: maxAge, nowFunc: time.Now}
	for i, k := range keys {
		if len(k.Hash) < 32 {
			return nil, fmt.Errorf("session: key pair %d: hash key must be at least 32 bytes", i+1)
		}
		if len(k.Block) != 32 {
			return nil, fmt.Errorf("session: key pair %d: block key must be 32 bytes (AES-256)", i+1)
		}
		sc := securecookie.New(k.Hash, k.Block)
		sc.SetSerializer(binarySerializer{})
		sc.MaxLength(chunkSize * MaxChunks)
		sc.MaxAge(int(maxAge / time.Second))
		c.codecs = append(c.codecs, sc)
	}
	enc := securecookie.New(keys[0].Hash, keys[0].Block)
	enc.SetSerializer(binarySerializer{})
	enc.MaxLength(0)
	enc.MaxAge(int(maxAge / time.Second))
	c.enc = enc
	return c, nil
}

// SetClock replaces the time source (tests).
func (c *Codec) SetClock(now func() time.Time) { c.nowFunc = now }

// SetLegacyNames names cookies that earlier versions used for the
// session (before the __Host- prefix became the default). They are never
// read as a session, never reach the upstream, and are expired in the
// browser by ClearLegacy.
func (c *Codec) SetLegacyNames(names ...string) { c.legacy = names }

// SetDomain gives the session cookies a Domain attribute (".example.com"),
// so that every host under it receives them (session.cookieDomain).
// Cookies whose names need a host-only cookie (__Host-) never get it.
func (c *Codec) SetDomain(domain string) { c.domain = domain }

// SetUpstreamCookies names the app's own cookies (session.expireUpstreamCookies)
// that Clear and ExpireUpstream expire in the browser: host-only, at each
// of paths ("/" and, behind upstreamPathPrefix, the prefix, where
// Servlet containers scope JSESSIONID).
func (c *Codec) SetUpstreamCookies(names, paths []string) { c.upstream, c.upstreamPaths = names, paths }

// ExpireUpstream expires, in the browser, the app cookies named by
// SetUpstreamCookies that r carries.
func (c *Codec) ExpireUpstream(w http.ResponseWriter, r *http.Request) {
	for _, name := range c.upstream {
		if r != nil {
			if _, found, _ := cookieValue(r.Header["Cookie"], name); !found {
				continue
			}
		}
		for _, p := range c.upstreamPaths {
			http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: p, MaxAge: -1, Secure: c.secure, HttpOnly: true})
		}
	}
}

// Name is the base cookie name.
func (c *Codec) Name() string { return c.name }

// IsSessionCookie reports whether a cookie name belongs to this codec
// (the base name or one of its chunks, now or under a legacy name).
func (c *Codec) IsSessionCookie(name string) bool {
	if isChunkOf(name, c.name) {
		return true
	}
	for _, l := range c.legacy {
		if isChunkOf(name, l) {
			return true
		}
	}
	return false
}

// isChunkOf reports whether name is base or one of its chunk names.
func isChunkOf(name, base string) bool {
	if name == base {
		return true
	}
	rest, ok := strings.CutPrefix(name, base+"_")
	if !ok || len(rest) != 1 {
		return false
	}
	return rest[0] >= '1' && rest[0] < '0'+MaxChunks
}

// ClearLegacy expires, in the browser, the legacy session cookies r
// carries. It reads the Cookie header without allocating when there are
// none.
func (c *Codec) ClearLegacy(w http.ResponseWriter, r *http.Request) {
	for _, l := range c.legacy {
		for i := 0; i < MaxChunks; i++ {
			if _, found, _ := cookieValue(r.Header["Cookie"], chunkName(l, i)); !found {
				break
			}
			http.SetCookie(w, c.cookie(chunkName(l, i), "", -1))
		}
	}
}

// Encode returns the encoded cookie value (possibly longer than one cookie),
// or ErrTooLarge if it would take more than MaxChunks cookies.
func (c *Codec) Encode(s *Session) (string, error) {
	v, err := c.enc.Encode(c.name, s)
	if err != nil {
		return "", err
	}
	if len(v) > chunkSize*MaxChunks {
		return "", fmt.Errorf("%w: %d bytes encoded, at most %d", ErrTooLarge, len(v), chunkSize*MaxChunks)
	}
	return v, nil
}

// Decode verifies and decrypts value and checks the expiry.
func (c *Codec) Decode(value string) (*Session, error) {
	var s Session
	if err := securecookie.DecodeMulti(c.name, value, &s, c.codecs...); err != nil {
		return nil, ErrInvalid
	}
	if !c.nowFunc().Before(s.Expires) {
		return nil, ErrExpired
	}
	return &s, nil
}

// Write sets the session cookie(s) on w, splitting a large value, and
// expires chunk cookies left over from a larger earlier session in r.
func (c *Codec) Write(w http.ResponseWriter, r *http.Request, s *Session) error {
	v, err := c.Encode(s)
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	n := (len(v) + chunkSize - 1) / chunkSize
	if n > MaxChunks {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(v))
	}
	maxAge := int(time.Until(s.Expires) / time.Second)
	if maxAge < 1 {
		maxAge = 1
	}
	for i := 0; i < n; i++ {
		end := min((i+1)*chunkSize, len(v))
		http.SetCookie(w, c.cookie(chunkName(c.name, i), v[i*chunkSize:end], maxAge))
	}
	if r != nil {
		for i := n; i < MaxChunks; i++ {
			if _, err := r.Cookie(chunkName(c.name, i)); err == nil {
				http.SetCookie(w, c.cookie(chunkName(c.name, i), "", -1))
			}
		}
	}
	return nil
}

// Clear expires every session cookie present in r (or the base cookie if
// r is nil), and the app cookies named by SetUpstreamCookies.
func (c *Codec) Clear(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, c.cookie(c.name, "", -1))
	c.ExpireUpstream(w, r)
	if r == nil {
		return
	}
	for i := 1; i < MaxChunks; i++ {
		if _, err := r.Cookie(chunkName(c.name, i)); err == nil {
			http.SetCookie(w, c.cookie(chunkName(c.name, i), "", -1))
		}
	}
	c.ClearLegacy(w, r)
}

// Read reassembles the session cookie value from r and decodes it.
func (c *Codec) Read(r *http.Request) (*Session, error) {
	v, err := c.Value(r)
	if err != nil {
		return nil, err
	}
	return c.Decode(v)
}

// Value reassembles the raw (still encoded) cookie value from r: ErrNoCookie
// without one, ErrDuplicate when a name it needs appears twice with
// different values. For the common single-cookie session it does not
// allocate.
func (c *Codec) Value(r *http.Request) (string, error) {
	first, found, dup := cookieValue(r.Header["Cookie"], c.name)
	switch {
	case dup:
		return "", ErrDuplicate
	case !found || first == "":
		return "", ErrNoCookie
	case len(first) < chunkSize:
		return first, nil
	}
	var b strings.Builder
	b.WriteString(first)
	for i := 1; i < MaxChunks; i++ {
		v, found, dup := cookieValue(r.Header["Cookie"], chunkName(c.name, i))
		if dup {
			return "", ErrDuplicate
		}
		if !found {
			break
		}
		b.WriteString(v)
		if len(v) < chunkSize {
			break
		}
	}
	return b.String(), nil
}

// cookieValue finds the cookie called name in Cookie header lines without
// parsing (and allocating) every cookie, and reports dup when the name
// appears again with a different value. Values may be quoted.
func cookieValue(lines []string, name string) (value string, found, dup bool) {
	for _, line := range lines {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if !found {
				value, found = v, true
			} else if v != value {
				return "", true, true
			}
		}
	}
	return value, found, false
}

func (c *Codec) cookie(name, value string, maxAge int) *http.Cookie {
	ck := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   c.secure,
		SameSite: http.SameSiteLaxMode,
	}
	if !strings.HasPrefix(name, "__Host-") {
		ck.Domain = c.domain
	}
	return ck
}

func chunkName(base string, i int) string {
	if i == 0 {
		return base
	}
	return base + "_" + strconv.Itoa(i)
}

// NewID returns a random session ID.
func NewID() string {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// binarySerializer is a compact, allocation-light encoding of Session; JSON
// would be larger (cookie size) and slower (hot path).
type binarySerializer struct{}

// Serialisation versions. 2: times in milliseconds, so a session issued
// right after a revocation is told apart from one issued before it. 3: the
// organization, after the groups. A version 2 cookie still decodes, as a
// session of identity.DefaultOrg, so an upgrade signs no one out. 4: the
// SAMLSession, after the organization (versions 2 and 3 decode without it).
const (
	serialVersion   = 4
	serialVersionV3 = 3
	serialVersionV2 = 2
)

func (binarySerializer) Serialize(src interface{}) ([]byte, error) {
	s, ok := src.(*Session)
	if !ok {
		return nil, fmt.Errorf("session: cannot serialize %T", src)
	}
	size := 1 + 3*binary.MaxVarintLen64
	strs := []string{s.ID, s.Principal.User, s.Principal.Email, s.Principal.Name}
	for _, x := range strs {
		size += binary.MaxVarintLen64 + len(x)
	}
	for _, g := range s.Principal.Groups {
		size += binary.MaxVarintLen64 + len(g)
	}
	saml := []string{s.SAML.IdP, s.SAML.NameID, s.SAML.NameIDFormat, s.SAML.SessionIndex}
	size += binary.MaxVarintLen64 + len(s.Principal.Org)
	for _, x := range saml {
		size += binary.MaxVarintLen64 + len(x)
	}
	b := make([]byte, 0, size)
	b = append(b, serialVersion)
	for _, x := range strs {
		b = binary.AppendUvarint(b, uint64(len(x)))
		b = append(b, x...)
	}
	b = binary.AppendVarint(b, s.IssuedAt.UnixMilli())
	b = binary.AppendVarint(b, s.Expires.UnixMilli())
	b = binary.AppendUvarint(b, uint64(len(s.Principal.Groups)))
	for _, g := range s.Principal.Groups {
		b = binary.AppendUvarint(b, uint64(len(g)))
		b = append(b, g...)
	}
	for _, x := range append([]string{s.Principal.Org}, saml...) {
		b = binary.AppendUvarint(b, uint64(len(x)))
		b = append(b, x...)
	}
	return b, nil
}

var errShort = errors.New("session: truncated")

func (binarySerializer) Deserialize(src []byte, dst interface{}) error {
	s, ok := dst.(*Session)
	if !ok {
		return fmt.Errorf("session: cannot deserialize into %T", dst)
	}
	if len(src) == 0 || src[0] < serialVersionV2 || src[0] > serialVersion {
		return errors.New("session: unknown version")
	}
	d := decoder{b: src[1:]}
	s.ID = d.str()
	s.Principal.User = d.str()
	s.Principal.Email = d.str()
	s.Principal.Name = d.str()
	s.IssuedAt = time.UnixMilli(d.varint())
	s.Expires = time.UnixMilli(d.varint())
	n := d.uvarint()
	if n > uint64(len(d.b)) { // each group takes at least one byte
		return errShort
	}
	if n > 0 {
		s.Principal.Groups = make([]string, n)
		for i := range s.Principal.Groups {
			s.Principal.Groups[i] = d.str()
		}
	}
	if src[0] >= serialVersionV3 {
		s.Principal.Org = d.str()
	}
	if src[0] >= serialVersion {
		s.SAML = SAMLSession{IdP: d.str(), NameID: d.str(), NameIDFormat: d.str(), SessionIndex: d.str()}
	}
	s.Principal.Org = identity.OrgOrDefault(s.Principal.Org)
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return errors.New("session: trailing bytes")
	}
	return nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errShort
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
