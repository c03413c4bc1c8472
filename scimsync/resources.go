package scimsync

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/web"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// The /Users and /Groups endpoints are one set of handlers over an
// endpoint, which says what differs between the two resources (users.go,
// groups.go).

// endpoint describes one resource type's endpoint for the handlers below.
// T is *store.User or *store.Group.
type endpoint[T any] struct {
	path     string          // "Users": the path segment, for Location
	readOnly map[string]bool // attributes a client may not change (RFC 7643 §3.1)
	// decode validates a representation (from POST, PUT or the result of a
	// PATCH) and returns the stored fields.
	decode func(m map[string]any) (T, error)
	// rep is v's representation, shaped for proj where the resource can
	// spare work (a group's members); patchBase is the representation a
	// PATCH applies to.
	rep       func(s *Service, v T, proj projection) map[string]any
	patchBase func(s *Service, v T) map[string]any
	// projectWrites: the answer to PUT and PATCH honours attributes and
	// excludedAttributes (as GET always does).
	projectWrites bool

	version func(v T) int64
	// create sets what the server owns on a new resource; advance sets
	// it on next, the update of cur; same reports that next changes
	// nothing of cur (store.SameUser, store.SameGroup): the store then
	// writes nothing and the answer is cur.
	create  func(v T, id string, now time.Time)
	advance func(cur, next T, now time.Time)
	same    func(cur, next T) bool

	// index maps the filter attributes an equality on which the store
	// answers from an index to their store.Query attribute; page is the
	// store's list of T, scan answers the filters no index answers.
	index map[string]string
	types attrTypes // the schema's attribute types, to check filters
	page  func(rd store.Reader, ctx context.Context, q store.Query, proj projection) ([]T, int, error)
	scan  func(s *Service, w http.ResponseWriter, r *http.Request, p *listParams, q store.Query)

	// The store's methods for T.
	insert func(st store.Store, ctx context.Context, v T, actor string) ([]store.Event, error)
	get    func(rd store.Reader, ctx context.Context, id string) (T, error)
	update func(st store.Store, ctx context.Context, id string, fn func(cur T) (T, error), actor string) ([]store.Event, error)
	remove func(st store.Store, ctx context.Context, id string, fn func(cur T) error, actor string) ([]store.Event, error)
	// storeErr maps what the store's writes return to SCIM errors beyond
	// writeError's (a group's unknown member).
	storeErr func(error) error
}

// serve routes a request for the endpoint, id "" for the collection.
func (e *endpoint[T]) serve(s *Service, w http.ResponseWriter, r *http.Request, id, actor string) {
	switch {
	case id == "" && r.Method == http.MethodGet:
		e.list(s, w, r)
	case id == "" && r.Method == http.MethodPost:
		e.post(s, w, r, actor)
	case id == ".search" && r.Method == http.MethodPost:
		e.search(s, w, r)
	case id == ".search":
		w.Header().Set("Allow", "POST")
		s.writeError(w, r, &scimError{status: 405, detail: "use POST for .search"})
	case id != "" && r.Method == http.MethodGet:
		e.getOne(s, w, r, id)
	case id != "" && r.Method == http.MethodPut:
		e.put(s, w, r, id, actor)
	case id != "" && r.Method == http.MethodPatch:
		e.patch(s, w, r, id, actor)
	case id != "" && r.Method == http.MethodDelete:
		e.delete(s, w, r, id, actor)
	default:
		allow := "GET, PUT, PATCH, DELETE"
		if id == "" {
			allow = "GET, POST"
		}
		w.Header().Set("Allow", allow)
		s.writeError(w, r, &scimError{status: 405, detail: "method not allowed here"})
	}
}

// read reads and decodes the request's representation, answering the
// request itself (false) if it is not one.
func (e *endpoint[T]) read(s *Service, w http.ResponseWriter, r *http.Request) (T, bool) {
	_, m, err := s.readBody(w, r)
	if err == nil {
		var v T
		if v, err = e.decode(m); err == nil {
			return v, true
		}
	}
	s.writeError(w, r, err)
	var zero T
	return zero, false
}

func (e *endpoint[T]) post(s *Service, w http.ResponseWriter, r *http.Request, actor string) {
	v, ok := e.read(s, w, r)
	if !ok {
		return
	}
	id := s.o.NewID()
	e.create(v, id, s.now())
	evs, err := e.insert(s.o.Store, r.Context(), v, actor)
	if err != nil {
		s.writeError(w, r, e.storeErr(err))
		return
	}
	if err := s.commit(r, evs, actor, "create"); err != nil {
		s.writeError(w, r, err)
		return
	}
	version := e.version(v)
	w.Header().Set("Location", s.baseURL+"/"+e.path+"/"+id)
	w.Header().Set("ETag", etag(version))
	s.writeJSON(w, http.StatusCreated, e.rep(s, v, projection{}))
}

func (e *endpoint[T]) getOne(s *Service, w http.ResponseWriter, r *http.Request, id string) {
	v, err := e.get(s.o.Reader, r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	version := e.version(v)
	w.Header().Set("ETag", etag(version))
	if etagMatches(r.Header.Get("If-None-Match"), version) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	proj, err := parseProjection(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, proj.apply(e.rep(s, v, proj)))
}

func (e *endpoint[T]) put(s *Service, w http.ResponseWriter, r *http.Request, id, actor string) {
	next, ok := e.read(s, w, r)
	if !ok {
		return
	}
	e.write(s, w, r, id, actor, "replace", func(T) (T, error) { return next, nil })
}

func (e *endpoint[T]) patch(s *Service, w http.ResponseWriter, r *http.Request, id, actor string) {
	body, _, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ops, err := ParsePatch(body)
	if err != nil {
		s.writeError(w, r, patchErr(err))
		return
	}
	e.write(s, w, r, id, actor, "patch", func(cur T) (T, error) {
		res, err := ApplyPatch(e.patchBase(s, cur), ops, e.readOnly)
		if err != nil {
			var zero T
			return zero, patchErr(err)
		}
		return e.decode(res)
	})
}

// write runs change on the current resource inside the store's write
// transaction, with the request's If-Match check, and answers with the
// result. change returns the new client-visible fields; write keeps what
// the server owns.
func (e *endpoint[T]) write(s *Service, w http.ResponseWriter, r *http.Request, id, actor, op string,
	change func(cur T) (T, error)) {
	ifMatch := r.Header.Get("If-Match")
	var result T
	evs, err := e.update(s.o.Store, r.Context(), id, func(cur T) (T, error) {
		if version := e.version(cur); ifMatch != "" && !etagMatches(ifMatch, version) {
			var zero T
			return zero, store.ErrPrecondition
		}
		next, err := change(cur)
		if err != nil {
			return next, err
		}
		e.advance(cur, next, s.now())
		result = next
		if e.same(cur, next) {
			result = cur
		}
		return next, nil
	}, actor)
	if err != nil {
		s.writeError(w, r, e.storeErr(err))
		return
	}
	if err := s.commit(r, evs, actor, op); err != nil {
		s.writeError(w, r, err)
		return
	}
	version := e.version(result)
	w.Header().Set("ETag", etag(version))
	var proj projection
	if e.projectWrites {
		proj, _ = parseProjection(r) // an invalid one: the default
	}
	s.writeJSON(w, http.StatusOK, proj.apply(e.rep(s, result, proj)))
}

// delete runs the store's delete with the request's If-Match check,
// brings the view up to date and answers 204.
func (e *endpoint[T]) delete(s *Service, w http.ResponseWriter, r *http.Request, id, actor string) {
	header := r.Header.Get("If-Match")
	evs, err := e.remove(s.o.Store, r.Context(), id, func(cur T) error {
		if version := e.version(cur); header != "" && !etagMatches(header, version) {
			return store.ErrPrecondition
		}
		return nil
	}, actor)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.commit(r, evs, actor, "delete"); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// patchErr maps a PATCH engine error to a SCIM error.
func patchErr(err error) error {
	var pe *PatchError
	if errors.As(err, &pe) {
		return badRequest(pe.ScimType, "%s", pe.Msg)
	}
	var fe *FilterError
	if errors.As(err, &fe) {
		return badRequest("invalidPath", "%s", fe.Error())
	}
	return err
}

// etagMatches reports whether an If-Match / If-None-Match header names
// version ("*" matches anything; weak and strong forms are both accepted).
func etagMatches(header string, version int64) bool {
	if header == "" {
		return false
	}
	want := etag(version)
	for part := range strings.SplitSeq(header, ",") {
		p := strings.TrimSpace(part)
		if p == "*" || p == want || "W/"+p == want {
			return true
		}
	}
	return false
}

// commit brings the directory view up to date with a write that the store
// has made durable, so the very next request is judged by the new state,
// and writes the audit events.
func (s *Service) commit(r *http.Request, evs []store.Event, actor, op string) error {
	if len(evs) > 0 {
		if err := s.o.Directory.CatchUp(r.Context(), s.o.Store); err != nil {
			// The write is durable but the view could not read the log. If
			// this write's events follow on from the view, apply them
			// directly so the gate does not lag; otherwise the IdP must
			// retry (a retried write is safe).
			s.log.Error("directory catch-up after write failed",
				zap.String("request_id", web.RequestID(r.Context())), zap.Error(err))
			if evs[0].Seq != s.o.Directory.Seq()+1 {
				return store.ErrUnavailable
			}
			s.o.Directory.Apply(evs)
		}
	}
	id := web.RequestID(r.Context())
	for _, e := range evs {
		f := []zap.Field{
			zap.String("request_id", id),
			zap.String("scim_op", op),
			zap.String("kind", e.Kind),
			zap.String("resource_type", e.ResourceType),
			zap.String("resource_id", e.ResourceID),
			zap.String("actor", actor),
			zap.Int64("seq", e.Seq),
		}
		if e.User != nil {
			f = append(f, zap.String("user", e.User.UserName))
		}
		s.audit.Info("scim write", append(f, zap.String("event", "scim_write"))...)
		switch e.Kind {
		case store.EventUserDeactivated:
			s.audit.Info("user deactivated", append(f, zap.String("event", "user_deactivated"))...)
		case store.EventUserReactivated:
			s.audit.Info("user reactivated", append(f, zap.String("event", "user_reactivated"))...)
		case store.EventUserDeleted:
			s.audit.Info("user deleted", append(f, zap.String("event", "user_deleted"))...)
		}
	}
	if s.o.Ender != nil {
		s.endSessions(r, evs, actor)
		return nil
	}
	for i := range evs {
		if key, reason, ok := endsSessions(s.o.Directory, &evs[i]); ok && key != "" {
			s.o.Sessions.EndedWithUser(r.Context(), evs[i].Org, key, reason)
		}
	}
	return nil
}

// endSessions ends, in the login ledger, the sessions of each user this
// write deactivated, deleted or reactivated, with that reason. The gate
// already refuses them (the user's cut-off); this writes each one's end.
// A failure is logged: the write stands.
func (s *Service) endSessions(r *http.Request, evs []store.Event, actor string) {
	for _, e := range evs {
		var key, reason string
		switch {
		case e.Kind == store.EventUserDeactivated && e.User != nil:
			key, reason = s.o.Directory.MatchKey(e.User), "deactivated"
		case e.Kind == store.EventUserReactivated && e.User != nil:
			key, reason = s.o.Directory.MatchKey(e.User), "reactivated"
		case e.Kind == store.EventUserDeleted && len(e.Cutoffs) > 0:
			key, reason = e.Cutoffs[0].Key, "deleted"
		}
		if key == "" {
			continue
		}
		if _, err := s.o.Ender.End(r.Context(), store.SessionQuery{Org: e.Org, MatchKey: key}, reason, actor); err != nil {
			s.log.Warn("end sessions of a removed user", zap.String("request_id", web.RequestID(r.Context())),
				zap.String("reason", reason), zap.Error(err))
		}
	}
}
