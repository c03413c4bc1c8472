package status

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Directory is the read side of the store the page searches
// (store.Reader satisfies it).
type Directory interface {
	ListUsers(ctx context.Context, q store.Query) ([]*store.User, int, error)
	ListGroups(ctx context.Context, q store.Query, withMembers bool) ([]*store.Group, int, error)
}

// Check is one health check the page shows: cmd passes the admin
// listener's /readyz checks. Check returns the state's name ("ok",
// "degraded", "not ready"), whether it is ok, and unless it is ok a reason
// for operators that holds no secret.
type Check struct {
	Name  string
	Check func() (state string, ok bool, reason string)
}

// Options are the page's sources. Every source but Gatherer may be nil
// (SCIM off): its section then says so.
type Options struct {
	// Gatherer is the registry /metrics serves.
	Gatherer prometheus.Gatherer
	// Checks are /readyz's checks, run at each render.
	Checks []Check
	// Directory, Ledger and Events are the store; MatchKey gives a SCIM
	// user's match key, the ledger's key (the directory view's MatchKey).
	// Directory is the default organization's, nil when it has none;
	// Events counts every organization's events on the unfiltered page and
	// the filtered organization's otherwise.
	Directory Directory
	Ledger    store.Ledger
	Events    store.EventSummary
	MatchKey  func(*store.User) string
	// DirectoryOf, if set, gives the directory of organization org (never
	// the default one), nil when org has no SCIM directory here: the
	// page filtered to org searches it (orgs.go).
	DirectoryOf func(org string) Directory
	// DirectoryCountsOf, if set, gives the figures of organization org's
	// in-memory directory view, ok false when org has none here: the page
	// filtered to org shows them. Unfiltered, the Directory section shows
	// the metrics, which are the default organization's view.
	DirectoryCountsOf func(org string) (DirectoryCounts, bool)
	// LastToken gives the label of the SCIM token that last authenticated
	// to organization org's SCIM service on this replica and when, ok false
	// if none has or org has no SCIM service (the Service's LastToken). The
	// page asks for the default organization's unless it is filtered.
	LastToken func(org string) (label string, at time.Time, ok bool)
	// IdPCerts gives the IdP signing certificates in use and their last
	// change (samlsp.SP.SigningCerts); nil shows them as absent.
	IdPCerts func() IdPCerts
	// Organizations lists the organizations served with their IdP
	// metadata state (samlsp.SP.OrganizationStates); nil or only the
	// default organization: the page has no Organizations section.
	Organizations func() []Organization
	// SignOut, if set, ends every live session of the user with this match
	// key in organization org (never ""), and no other organization's, on
	// every replica and reports how many ended: the page's "Sign out
	// everywhere" (signout.go), offered only with an admin token.
	SignOut func(ctx context.Context, org, matchKey string) (int, error)
	// Webhooks, if set, fills the Events section (events.go).
	Webhooks Webhooks
	// Audit is this replica's audit ring.
	Audit *AuditRing
	// Replica names this process on the page (the host name).
	Replica string
	// TokenRequired and Token are the access rule (config.AdminTokenRequired
	// and the content of adminTokenFile, nil if none).
	TokenRequired bool
	Token         []byte
	// Logger gets the store errors the page only summarises.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DirectoryCounts are the figures of one organization's directory view
// (scimsync.Directory's Counts, Seq and LastEventTime).
type DirectoryCounts struct {
	Active, Inactive, Groups int
	AppliedSeq               int64
	LastEvent                time.Time // zero: none yet
}

// IdPCerts are the IdP signing certificates trusted, by SHA-256
// fingerprint, and their last change since the process started.
type IdPCerts struct {
	Current, Previous []string
	ChangedAt         time.Time // zero: no change since start
}

// Limits of the page.
const (
	// maxResults bounds the users a search shows.
	maxResults = 20
	// maxQuery bounds the search text.
	maxQuery = 256
	// maxGroups bounds the groups shown per user.
	maxGroups = 50
	// maxAudit bounds the audit entries shown.
	maxAudit = 100
	// renderTimeout bounds the store reads of one render.
	renderTimeout = 5 * time.Second
)

//go:embed page.html
var pageHTML string

//go:embed style.css
var styleCSS string

var (
	pageTmpl = template.Must(template.New("page").Parse(pageHTML))
	// csp allows the one inline style sheet by its hash, and nothing else:
	// no script, no frame, forms only to this page.
	csp = "default-src 'none'; style-src 'sha256-" + cssHash() + "'; img-src 'none'; form-action 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'"
)

func cssHash() string {
	sum := sha256.Sum256([]byte(styleCSS))
	return base64.StdEncoding.EncodeToString(sum[:])
}

var (
	errTokenEmpty = errors.New("admin token file is empty")
	errTokenLines = errors.New("admin token file must hold one line")
	errTokenShort = errors.New("admin token is shorter than 16 characters")
)

// Handler serves the status page at "/".
type Handler struct {
	o Options
}

// New builds the handler.
func New(o Options) *Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return &Handler{o: o}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	if !h.authorize(w, r) {
		return
	}
	if r.Method == http.MethodPost && r.URL.Path == pathSignOut {
		h.serveSignOut(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		h.refuse(w, http.StatusMethodNotAllowed, "The status page is read-only.")
		return
	}
	if r.URL.Path != "/" {
		h.refuse(w, http.StatusNotFound, "There is nothing here; the status page is at /.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), renderTimeout)
	defer cancel()
	q := r.URL.Query()
	p := h.build(ctx, q.Get("user"), clip(q.Get("organization")))
	if n, err := strconv.Atoi(q.Get("ended")); err == nil && n >= 0 {
		p.Ended = strconv.Itoa(n)
	}
	h.render(w, http.StatusOK, p)
}

// refuse renders the page frame with only a message.
func (h *Handler) refuse(w http.ResponseWriter, status int, msg string) {
	h.render(w, status, &page{Title: http.StatusText(status), Message: msg, Replica: h.o.Replica, Now: stamp(h.o.Now())})
}

func (h *Handler) render(w http.ResponseWriter, status int, p *page) {
	p.Style = template.CSS(styleCSS)
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, p); err != nil {
		h.o.Logger.Error("render status page", zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// stamp renders a time for the page: UTC, to the second.
func stamp(t time.Time) string {
	if t.IsZero() {
		return absent
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
