package samlsp

import (
	"html/template"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/web"
)

// The identifier-first page: with organizations, /saml/login asks for an
// email address and sends the browser to the IdP of the organization that
// claims its domain. It never lists organizations, answers every address
// that matches none the same way, and bounds lookups per client, so that
// it is no cheap oracle of who the customers are.

const (
	// hintRate and hintBurst bound the organization lookups (login_hint,
	// domain_hint, organization and the page's form) per client address:
	// a person needs one or two; guessing customers' domains needs
	// thousands.
	hintRate  = 10               // lookups refilled per hintEvery
	hintEvery = time.Minute      //
	hintBurst = 10               // lookups a fresh client may make at once
	hintKeep  = 10 * time.Minute // a client idle this long is forgotten
	// hintClients bounds the clients remembered; past it the oldest half
	// is forgotten (a flood from many addresses resets its own count, and
	// never grows memory).
	hintClients = 50_000

	titleChoose      = "Sign in"
	messageNoSSO     = "No single sign-on is set up for this address. Check it, or ask your administrator how to sign in."
	messageTooMany   = "Too many sign-in attempts from your network. Wait a minute and try again."
	titleTooMany     = "Too many attempts"
	emailFieldMaxLen = 320 // RFC 5321's limit on a path, which bounds an address
)

// hintLimiter is a token bucket per client address.
type hintLimiter struct {
	mu      sync.Mutex
	now     func() time.Time
	clients map[netip.Addr]*hintBucket
}

type hintBucket struct {
	tokens float64
	last   time.Time
}

func newHintLimiter(now func() time.Time) *hintLimiter {
	return &hintLimiter{now: now, clients: map[netip.Addr]*hintBucket{}}
}

// allow takes one lookup from addr's bucket and reports whether there was
// one; when not, wait is how long until there is.
func (l *hintLimiter) allow(addr netip.Addr) (ok bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.clients[addr]
	if b == nil {
		if len(l.clients) >= hintClients {
			l.forget(now)
		}
		b = &hintBucket{tokens: hintBurst, last: now}
		l.clients[addr] = b
	}
	b.tokens = min(hintBurst, b.tokens+now.Sub(b.last).Seconds()*hintRate/hintEvery.Seconds())
	b.last = now
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) * float64(hintEvery) / hintRate)
	}
	b.tokens--
	return true, 0
}

// forget drops idle clients, or half of all when none is idle.
func (l *hintLimiter) forget(now time.Time) {
	for a, b := range l.clients {
		if now.Sub(b.last) > hintKeep {
			delete(l.clients, a)
		}
	}
	if len(l.clients) < hintClients {
		return
	}
	n := 0
	for a := range l.clients {
		if n%2 == 0 {
			delete(l.clients, a)
		}
		n++
	}
}

var chooseTmpl = template.Must(template.New("choose").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in</title>
<style>` + web.PageStyle + `
label{display:block;margin:1rem 0 .3rem}input{font:inherit;padding:.4rem;width:100%;box-sizing:border-box}
button{font:inherit;margin-top:1rem;padding:.4rem 1rem}.note{color:#8a1c1c}</style></head>
<body><main><h1>Sign in</h1>
<p>Enter your work email address to continue to your organization's sign-in.</p>
{{if .Message}}<p class="note" role="alert">{{.Message}}</p>{{end}}
<form method="post" action="/saml/login">
<input type="hidden" name="rd" value="{{.ReturnTo}}">
<label for="email">Work email</label>
<input id="email" name="email" type="email" autocomplete="email" required maxlength="320" value="{{.Email}}" autofocus>
<button type="submit">Continue</button>
</form>
{{if .RequestID}}<p>Request ID: <code>{{.RequestID}}</code></p>{{end}}</main></body></html>
`))

// serveLogin is /saml/login?rd=: start a login that returns to rd, at the
// IdP of the request's host, of ?organization=, of ?login_hint= or
// ?domain_hint=, or, when organizations exist and none of those names one,
// after asking for an email address (GET shows the form; POST email=).
func (sp *SP) serveLogin(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodGet, http.MethodPost) {
		return
	}
	returnTo := r.URL.Query().Get("rd")
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil {
			web.Page(w, r, http.StatusBadRequest, "Bad request", "The sign-in form could not be read.")
			return
		}
		returnTo = r.PostForm.Get("rd")
		email := r.PostForm.Get("email")
		if len(email) > emailFieldMaxLen {
			email = ""
		}
		set := sp.conns.Load()
		if c := set.byHost[strings.ToLower(r.Host)]; c != nil || !set.multi() {
			if c == nil {
				c = set.def
			}
			sp.startLoginAt(w, r, c, returnTo) // nothing to choose
			return
		}
		if !sp.allowLookup(w, r) {
			return
		}
		c := set.forEmail(email)
		if c == nil {
			sp.choosePage(w, r, returnTo, email, messageNoSSO)
			return
		}
		sp.startLoginAt(w, r, c, returnTo)
		return
	}
	if q := r.URL.Query(); sp.conns.Load().multi() && (q.Has("organization") || q.Has("login_hint") || q.Has("domain_hint")) {
		if !sp.allowLookup(w, r) {
			return
		}
	}
	c, named := sp.connFor(r)
	switch {
	case !named:
		sp.choosePage(w, r, returnTo, "", "")
	case c == nil:
		sp.choosePage(w, r, returnTo, r.URL.Query().Get("login_hint"), messageNoSSO)
	default:
		sp.startLoginAt(w, r, c, returnTo)
	}
}

// allowLookup takes a lookup from the client's allowance, or answers 429.
func (sp *SP) allowLookup(w http.ResponseWriter, r *http.Request) bool {
	ok, wait := sp.hints.allow(web.ClientIP(r, sp.cfg.Trusted))
	if ok {
		return true
	}
	sp.metrics.Login("", reasonLookupLimited)
	sp.audit.Info("login failed",
		zap.String("event", "login_failed"),
		zap.String("reason", reasonLookupLimited),
		zap.String("request_id", web.RequestID(r.Context())))
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	web.Page(w, r, http.StatusTooManyRequests, titleTooMany, messageTooMany)
	return false
}

// choosePage writes the identifier-first form, keeping rd (made safe).
func (sp *SP) choosePage(w http.ResponseWriter, r *http.Request, returnTo, email, message string) {
	returnTo, _ = sp.redirects.Safe(returnTo)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// No form-action: browsers apply it to the redirect the POST answers
	// with, which goes to the IdP.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(http.StatusOK)
	if len(email) > emailFieldMaxLen {
		email = ""
	}
	_ = chooseTmpl.Execute(w, struct{ ReturnTo, Email, Message, RequestID string }{
		returnTo, email, message, web.RequestID(r.Context())})
}
