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
}

// Errors returned by Decode. Any of them means "no session".
var (
	ErrNoCookie = errors.New("no session cookie")
	ErrExpired  = errors.New("session expired")
	ErrInvalid  = errors.New("session cookie invalid")
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
	secure  bool
	codecs  []securecookie.Codec
	enc     securecookie.Codec // keys[0] without a length limit, so Encode can tell "too large" apart
	maxAge  time.Duration
	nowFunc func() time.Time
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

// Name is the base cookie name.
func (c *Codec) Name() string { return c.name }

// IsSessionCookie reports whether a cookie name belongs to this codec
// (the base name or one of its chunks).
func (c *Codec) IsSessionCookie(name string) bool {
	if name == c.name {
		return true
	}
	rest, ok := strings.CutPrefix(name, c.name+"_")
	if !ok || len(rest) != 1 {
		return false
	}
	return rest[0] >= '1' && rest[0] < '0'+MaxChunks
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

// Clear expires every session cookie present in r (or the base cookie if r is nil).
func (c *Codec) Clear(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, c.cookie(c.name, "", -1))
	if r == nil {
		return
	}
	for i := 1; i < MaxChunks; i++ {
		if _, err := r.Cookie(chunkName(c.name, i)); err == nil {
			http.SetCookie(w, c.cookie(chunkName(c.name, i), "", -1))
		}
	}
}

// Read reassembles the session cookie value from r and decodes it.
func (c *Codec) Read(r *http.Request) (*Session, error) {
	v, ok := c.Value(r)
	if !ok {
		return nil, ErrNoCookie
	}
	return c.Decode(v)
}

// Value reassembles the raw (still encoded) cookie value from r. For the
// common single-cookie session it does not allocate.
func (c *Codec) Value(r *http.Request) (string, bool) {
	first, ok := cookieValue(r.Header["Cookie"], c.name)
	if !ok || first == "" {
		return "", false
	}
	if len(first) < chunkSize {
		return first, true
	}
	var b strings.Builder
	b.WriteString(first)
	for i := 1; i < MaxChunks; i++ {
		v, ok := cookieValue(r.Header["Cookie"], chunkName(c.name, i))
		if !ok {
			break
		}
		b.WriteString(v)
		if len(v) < chunkSize {
			break
		}
	}
	return b.String(), true
}

// cookieValue finds the first cookie called name in Cookie header lines
// without parsing (and allocating) every cookie. Values may be quoted.
func cookieValue(lines []string, name string) (string, bool) {
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
			return v, true
		}
	}
	return "", false
}

func (c *Codec) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   c.secure,
		SameSite: http.SameSiteLaxMode,
	}
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

const serialVersion = 2 // 2: times in milliseconds, so a session issued right after a revocation is told apart from one issued before it

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
	return b, nil
}

var errShort = errors.New("session: truncated")

func (binarySerializer) Deserialize(src []byte, dst interface{}) error {
	s, ok := dst.(*Session)
	if !ok {
		return fmt.Errorf("session: cannot deserialize into %T", dst)
	}
	if len(src) == 0 || src[0] != serialVersion {
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
