package proxy

import (
	"fmt"
	"net/http"
)

// AdminHandler serves the admin listener: /healthz (the process is alive)
// and /readyz (sign-in can work).
func AdminHandler(auth Authenticator) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := auth.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			// Ready's error is an operator-facing reason such as "idp metadata
			// not loaded yet"; implementations keep secrets out of it.
			fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}
