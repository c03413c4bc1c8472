package proxy

import (
	"net"
	"net/http"
	"strings"

	"github.com/portcullis-sso/portcullis/config"
)

// Readiness is what one ReadyCheck reports.
type Readiness uint8

const (
	// Ready: the component works.
	Ready Readiness = iota
	// Degraded: the replica still serves correctly, but an operator should
	// know why it is not at its best (e.g. the store is unreachable and the
	// last known directory is enforced). /readyz still answers 200.
	Degraded
	// NotReady: the replica cannot serve correctly; /readyz answers 503 so
	// that traffic goes to other replicas.
	NotReady
)

func (r Readiness) String() string {
	switch r {
	case Ready:
		return "ok"
	case Degraded:
		return "degraded"
	default:
		return "not ready"
	}
}

// ReadyCheck is one named component of /readyz. Check returns its state and,
// unless Ready, an operator-facing reason that holds no secret.
type ReadyCheck struct {
	Name  string
	Check func() (Readiness, string)
}

// AuthCheck is the ReadyCheck of an Authenticator: sign-in can work. An
// Authenticator with a Degraded method (samlsp.SP: its IdP metadata has
// expired) reports degraded while that gives a reason.
func AuthCheck(auth Authenticator) ReadyCheck {
	deg, _ := auth.(interface{ Degraded() string })
	return ReadyCheck{Name: "idp", Check: func() (Readiness, string) {
		if err := auth.Ready(); err != nil {
			return NotReady, err.Error()
		}
		if deg != nil {
			if reason := deg.Degraded(); reason != "" {
				return Degraded, reason
			}
		}
		return Ready, ""
	}}
}

// AdminOptions are what the admin listener serves.
type AdminOptions struct {
	// Checks make up /readyz, in order.
	Checks []ReadyCheck
	// Metrics, if set, is served at /metrics.
	Metrics http.Handler
	// JWKS, if set, is served at /.well-known/portcullis/jwks.json (the
	// identity token's keys; Proxy.JWKS).
	JWKS http.Handler
	// Events, if set, is served at GET /events: the event feed, which
	// checks the admin token itself, always.
	Events http.Handler
	// Status, if set, is served at / and below (other than the paths above).
	Status http.Handler
	// LoopbackHostsOnly answers 421 to every request whose Host is not a
	// loopback name (localhost, 127.0.0.0/8, [::1], any port): set when
	// nothing but the bind guards the listener (config.AdminTokenRequired
	// false), so that a page whose DNS name was rebound to 127.0.0.1 cannot
	// read it from an operator's browser.
	LoopbackHostsOnly bool
}

// AdminHandler serves the admin listener: /healthz (the process is alive),
// /readyz (one line per check; 503 when any is not ready, 200 when all are
// ready or merely degraded), and /metrics and the status page when given.
func AdminHandler(o AdminOptions) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		worst, body := readiness(o.Checks)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if worst == NotReady {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write([]byte(body))
	})
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	if o.JWKS != nil {
		mux.Handle(jwksPath, o.JWKS)
	}
	if o.Events != nil {
		mux.Handle("GET /events", o.Events)
	}
	if o.Status != nil {
		mux.Handle("/", o.Status)
	}
	if o.LoopbackHostsOnly {
		return loopbackHostsOnly(mux)
	}
	return mux
}

// loopbackHostsOnly refuses requests not addressed to a loopback name with
// 421 Misdirected Request and a plain body: no data, and nothing echoed.
func loopbackHostsOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if loopbackHostHeader(r.Host) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusMisdirectedRequest)
		_, _ = w.Write([]byte("This admin listener answers only requests addressed to localhost, 127.0.0.1 or [::1] " +
			"(the Host header), as it has no admin token. Open it as http://localhost:<port>/.\n"))
	})
}

// loopbackHostHeader reports whether a Host header value names loopback
// (config.LoopbackHost), with or without a port. An empty Host is not.
func loopbackHostHeader(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	return host != "" && config.LoopbackHost(host)
}

// readiness runs every check and renders /readyz: a first line with the
// overall state, then "name: state[: reason]" per check.
func readiness(checks []ReadyCheck) (Readiness, string) {
	worst := Ready
	var lines strings.Builder
	for _, c := range checks {
		st, reason := c.Check()
		worst = max(worst, st)
		lines.WriteString(c.Name)
		lines.WriteString(": ")
		lines.WriteString(st.String())
		if st != Ready && reason != "" {
			lines.WriteString(": ")
			lines.WriteString(oneLine(reason))
		}
		lines.WriteByte('\n')
	}
	head := "ready\n"
	switch worst {
	case Degraded:
		head = "ready (degraded)\n"
	case NotReady:
		head = "not ready\n"
	}
	return worst, head + lines.String()
}

// oneLine keeps a reason on its line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}
