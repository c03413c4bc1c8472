package scimsync

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/internal/web"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Token is one accepted bearer token: a label for logs and the SHA-256 of
// the secret (the secret itself is not kept).
type Token struct {
	Label string
	hash  [32]byte
}

// Digest is the token's SHA-256, to tell whether two tokens are the same
// without holding the secret (tokens must be unique across organizations).
func (t Token) Digest() [32]byte { return t.hash }

// ParseTokens reads a tokens file: one token a line, either "token" or
// "label token"; blank lines and # comments are ignored. Two lines allow a
// rotation: both tokens work until the old line is removed.
func ParseTokens(data []byte) ([]Token, error) {
	var out []Token
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		var label, secret string
		switch len(f) {
		case 1:
			label, secret = fmt.Sprintf("token%d", len(out)+1), f[0]
		case 2:
			label, secret = f[0], f[1]
		default:
			return nil, fmt.Errorf("line %d: want \"token\" or \"label token\"", n)
		}
		if len(secret) < 16 {
			return nil, fmt.Errorf("line %d: token is shorter than 16 characters", n)
		}
		out = append(out, Token{Label: label, hash: sha256.Sum256([]byte(secret))})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no tokens")
	}
	return out, nil
}

// GenerateToken returns a random token suitable for a tokens file.
func GenerateToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// Options wires a Service.
type Options struct {
	Config    *config.Config
	Store     store.Store
	Reader    store.Reader
	Directory *Directory
	Tokens    []Token
	Logger    *zap.Logger // named "scimsync"
	Audit     *zap.Logger
	Now       func() time.Time
	NewID     func() string
	// RequestTimeout bounds one request's work with the store, so that an
	// unreachable or hung database answers the IdP with 503 and
	// Retry-After instead of holding its connection. Default 10 s.
	RequestTimeout time.Duration
	// Metrics, if set, counts requests by resource, operation and status.
	Metrics *metrics.Metrics
	// BasePath is where the service is mounted; default scim.basePath
	// (an organization's is {scim.basePath}/{id}).
	BasePath string
	// Sessions, if set, records session.revoked for the sessions a write
	// that deactivates or deletes a user ended.
	Sessions *SessionEvents
	// Ender, if set, ends the login ledger's sessions of a user the
	// directory deactivates, deletes or reactivates, through the one
	// session ender (session_revoked audit line, count and session.revoked
	// event per session); Sessions is then not used for them.
	Ender *SessionEnder
}

// DefaultRequestTimeout is the default Options.RequestTimeout.
const DefaultRequestTimeout = 10 * time.Second

// Service is the SCIM 2.0 HTTP API (RFC 7644) mounted at scim.basePath.
type Service struct {
	o       Options
	base    string // path prefix, e.g. /scim/v2
	baseURL string // absolute, for meta.location
	log     *zap.Logger
	audit   *zap.Logger
	tokens  tokenUse // the last token that authenticated, for the status page
	// accepted is the token set in force: Options.Tokens at start, then
	// what SetTokens installs when scim.tokensFile changes.
	accepted atomic.Pointer[[]Token]
}

// NewService builds the SCIM API.
func NewService(o Options) (*Service, error) {
	if o.Config == nil || o.Store == nil || o.Reader == nil || o.Directory == nil || len(o.Tokens) == 0 {
		return nil, errors.New("scimsync: Config, Store, Reader, Directory and Tokens are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewID == nil {
		o.NewID = newUUID
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Audit == nil {
		o.Audit = zap.NewNop()
	}
	base := o.Config.SCIM.BasePath
	if o.BasePath != "" {
		base = o.BasePath
	}
	s := &Service{
		o:       o,
		base:    base,
		baseURL: strings.TrimSuffix(o.Config.Public.String(), "/") + base,
		log:     o.Logger,
		audit:   o.Audit,
	}
	s.SetTokens(o.Tokens)
	return s, nil
}

// SetTokens replaces the accepted tokens; requests already authenticated
// are not affected, the next request sees the new set (a removed token gets
// 401). An empty set is refused: a tokens file that lost every line is a
// mistake, not a wish to lock the IdP out.
func (s *Service) SetTokens(ts []Token) {
	if len(ts) == 0 {
		return
	}
	cp := append([]Token(nil), ts...)
	s.accepted.Store(&cp)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// authenticate returns the label of the presented token, comparing it with
// every configured token in constant time.
func (s *Service) authenticate(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	label, found := "", 0
	for _, t := range *s.accepted.Load() {
		if subtle.ConstantTimeCompare(sum[:], t.hash[:]) == 1 {
			label, found = t.Label, 1
		}
	}
	return label, found == 1
}

// ServeHTTP routes a SCIM request.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w, count := s.countRequest(w, r)
	defer count() // runs last, after a panic has become a 500
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic in scim handler", zap.Any("panic", v), zap.Stack("stack"),
				zap.String("request_id", web.RequestID(r.Context())))
			s.writeError(w, r, &scimError{status: 500, detail: "internal error; quote request ID " + web.RequestID(r.Context())})
		}
	}()
	actor, ok := s.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis-scim"`)
		s.writeError(w, r, &scimError{status: 401, detail: "a valid bearer token is required"})
		return
	}
	s.tokens.record(actor, s.o.Now())
	if ct := r.Header.Get("Content-Type"); ct != "" && r.ContentLength != 0 {
		mt, _, _ := strings.Cut(ct, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		if mt != "application/scim+json" && mt != "application/json" {
			s.writeError(w, r, &scimError{status: 415, detail: "Content-Type must be application/scim+json or application/json"})
			return
		}
	}
	rest := strings.TrimPrefix(r.URL.Path, s.base)
	rest = strings.Trim(rest, "/")
	resource, id, _ := strings.Cut(rest, "/")
	if resource == "Bulk" && id == "" {
		s.bulk(w, r, actor) // each operation has a RequestTimeout of its own (bulk.go)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.RequestTimeout)
	defer cancel()
	r = r.WithContext(ctx)
	if strings.Contains(id, "/") {
		s.writeError(w, r, &scimError{status: 404, detail: "no such endpoint"})
		return
	}
	if !validResourceID(id) {
		s.writeError(w, r, store.ErrNotFound)
		return
	}
	switch resource {
	case "Users":
		users.serve(s, w, r, id, actor)
	case "Groups":
		groups.serve(s, w, r, id, actor)
	case "ServiceProviderConfig":
		s.serviceProviderConfig(w, r)
	case "ResourceTypes":
		s.resourceTypes(w, r, id)
	case "Schemas":
		s.schemas(w, r, id)
	case ".search":
		// Search across resource types (RFC 7644 §3.4.3 at the root) is
		// not offered: RFC 7644 §3.4.2.2 lets a server refuse a query at
		// the base URI with 400 tooMany.
		s.writeError(w, r, badRequest("tooMany", "search at the service root is not supported; POST to /Users/.search or /Groups/.search"))
	case "Me":
		s.writeError(w, r, &scimError{status: 501, detail: "/" + resource + " is not supported"})
	default:
		s.writeError(w, r, &scimError{status: 404, detail: "no such endpoint"})
	}
}

// readBody reads a bounded request body and decodes its JSON object.
func (s *Service) readBody(w http.ResponseWriter, r *http.Request) ([]byte, map[string]any, error) {
	limit := s.o.Config.SCIM.MaxBodyBytes
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, nil, &scimError{status: 413, detail: fmt.Sprintf("request body is larger than %d bytes", limit)}
		}
		return nil, nil, badRequest("invalidSyntax", "could not read the request body")
	}
	m, err := decodeObject(body)
	if err != nil {
		return nil, nil, err
	}
	if err := checkNoNUL(m); err != nil {
		return nil, nil, err
	}
	return body, m, nil
}

// writeJSON writes a SCIM response.
func (s *Service) writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"schemas":["`+SchemaError+`"],"status":"500","detail":"response encoding failed"}`)
	}
	w.Header().Set("Content-Type", "application/scim+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError writes the RFC 7644 §3.12 error body. Store and internal
// errors are mapped here; their text is logged, never sent.
func (s *Service) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var se *scimError
	switch {
	case errors.As(err, &se):
	case errors.Is(err, store.ErrNotFound):
		se = &scimError{status: 404, detail: "resource not found"}
	case errors.Is(err, store.ErrMatchKeyTaken):
		se = &scimError{status: 409, scimType: "uniqueness", detail: "another user has this " +
			s.o.Config.SCIM.Match.SCIMAttribute + " (ignoring ASCII case); it is the match key for sign-ins and must be unique"}
	case errors.Is(err, store.ErrConflict):
		se = &scimError{status: 409, scimType: "uniqueness", detail: "a resource with this unique attribute already exists"}
	case errors.Is(err, store.ErrPrecondition):
		se = &scimError{status: 412, detail: "the resource version does not match If-Match"}
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		// DeadlineExceeded is Options.RequestTimeout (a client that goes
		// away cancels instead). Either way the write may or may not have
		// committed; the retry is safe (a repeated create meets 409, a
		// repeated replace or patch sets the same values).
		w.Header().Set("Retry-After", "5")
		se = &scimError{status: 503, detail: "the directory store is unavailable; retry later"}
	default:
		s.log.Error("scim request failed", zap.String("request_id", web.RequestID(r.Context())), zap.Error(err))
		se = &scimError{status: 500, detail: "internal error; quote request ID " + web.RequestID(r.Context())}
	}
	body := map[string]any{
		"schemas": []string{SchemaError},
		"status":  strconv.Itoa(se.status),
		"detail":  se.detail,
	}
	if se.scimType != "" {
		body["scimType"] = se.scimType
	}
	s.writeJSON(w, se.status, body)
}

// now is the current time at the store's precision (milliseconds), so what
// a response says is exactly what a later read returns.
func (s *Service) now() time.Time { return s.o.Now().UTC().Truncate(time.Millisecond) }
