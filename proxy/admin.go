package proxy

import (
	"net/http"
	"strings"
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

// AuthCheck is the ReadyCheck of an Authenticator: sign-in can work.
func AuthCheck(auth Authenticator) ReadyCheck {
	return ReadyCheck{Name: "idp", Check: func() (Readiness, string) {
		if err := auth.Ready(); err != nil {
			return NotReady, err.Error()
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
	// Status, if set, is served at / and below (other than the paths above).
	Status http.Handler
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
	if o.Status != nil {
		mux.Handle("/", o.Status)
	}
	return mux
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
