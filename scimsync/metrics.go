package scimsync

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// SetMetrics makes the directory count the events it applies (and, for
// events the Follower brings in, their propagation lag). Call it before
// the directory is in use.
func (d *Directory) SetMetrics(m *metrics.Metrics) {
	d.mu.Lock()
	d.metrics = m
	d.mu.Unlock()
}

// LastEventTime is the time of the newest event in the view: the newest
// applied, or the one PrimeLastEvent read for the snapshot. Zero if none.
func (d *Directory) LastEventTime() time.Time {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.lastEvent
}

// PrimeLastEvent reads the time of the snapshot's last event from st, since
// a snapshot carries only its sequence number. Call it after Load.
func (d *Directory) PrimeLastEvent(ctx context.Context, st store.Store) error {
	seq := d.Seq()
	if seq == 0 {
		return nil
	}
	evs, err := st.EventsAfter(ctx, seq-1, 1)
	if err != nil {
		return fmt.Errorf("read event %d: %w", seq, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(evs) == 1 && evs[0].Time.After(d.lastEvent) {
		d.lastEvent = evs[0].Time
	}
	return nil
}

// observe records one applied event. d.mu is held.
func (d *Directory) observe(e *store.Event, followed bool) {
	if e.Kind == store.EventSessionCreated { // a sign-in changes no directory state
		return
	}
	if e.Time.After(d.lastEvent) {
		d.lastEvent = e.Time
	}
	if d.metrics == nil {
		return
	}
	kind := e.Kind
	if !slices.Contains(store.EventKinds, kind) { // bounds the kind label of portcullis_directory_events_total
		kind = "other"
	}
	d.metrics.DirectoryEvent(kind)
	if followed {
		d.metrics.PropagationLag(time.Since(e.Time))
	}
}

// statusWriter remembers the status of a SCIM response for the metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countRequest wraps w so that the request is counted by resource,
// operation and status once served; the returned func does the counting.
func (s *Service) countRequest(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	if s.o.Metrics == nil {
		return w, func() {}
	}
	sw := &statusWriter{ResponseWriter: w}
	return sw, func() {
		resource, op := scimLabels(s.base, r.Method, r.URL.Path)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		s.o.Metrics.SCIMRequest(resource, op, status)
	}
}

// scimLabels maps a request to its resource and operation labels; the
// metrics package folds anything unknown into "other".
func scimLabels(base, method, path string) (resource, op string) {
	rest := strings.Trim(strings.TrimPrefix(path, base), "/")
	resource, id, _ := strings.Cut(rest, "/")
	switch {
	case resource == "Bulk":
		op = "other" // its operations are counted one by one as well (bulk.go)
	case method == http.MethodPost && id == ".search":
		op = "list"
	case method == http.MethodPost && id == "":
		op = "create"
	case method == http.MethodGet && id == "":
		op = "list"
	case method == http.MethodGet:
		op = "get"
	case method == http.MethodPut:
		op = "replace"
	case method == http.MethodPatch:
		op = "patch"
	case method == http.MethodDelete:
		op = "delete"
	default:
		op = "other"
	}
	return resource, op
}
