package scimsync

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/web"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// readOnlyUser are the attributes a client may not change (RFC 7643 §3.1, §4.1.2).
var readOnlyUser = map[string]bool{"id": true, "meta": true, "groups": true}

func (s *Service) users(w http.ResponseWriter, r *http.Request, id, actor string) {
	switch {
	case id == "" && r.Method == http.MethodGet:
		s.listUsers(w, r)
	case id == "" && r.Method == http.MethodPost:
		s.createUser(w, r, actor)
	case id == ".search":
		s.writeError(w, r, &scimError{status: 501, detail: "POST .search is not supported; use GET with filter"})
	case id != "" && r.Method == http.MethodGet:
		s.getUser(w, r, id)
	case id != "" && r.Method == http.MethodPut:
		s.replaceUser(w, r, id, actor)
	case id != "" && r.Method == http.MethodPatch:
		s.patchUser(w, r, id, actor)
	case id != "" && r.Method == http.MethodDelete:
		s.deleteUser(w, r, id, actor)
	default:
		w.Header().Set("Allow", allowFor(id))
		s.writeError(w, r, &scimError{status: 405, detail: "method not allowed here"})
	}
}

func allowFor(id string) string {
	if id == "" {
		return "GET, POST"
	}
	return "GET, PUT, PATCH, DELETE"
}

func (s *Service) userRepresentation(u *store.User) map[string]any {
	return userJSON(u, s.baseURL, s.o.Directory.GroupsOf(u.ID))
}

func (s *Service) createUser(w http.ResponseWriter, r *http.Request, actor string) {
	_, m, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := userFromJSON(m)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.now()
	u.ID = s.o.NewID()
	u.Version = 1
	u.Created, u.LastModified, u.ValidAfter = now, now, now
	evs, err := s.o.Store.CreateUser(r.Context(), u, actor)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.commit(r, evs, actor, "create"); err != nil {
		s.writeError(w, r, err)
		return
	}
	rep := s.userRepresentation(u)
	w.Header().Set("Location", s.baseURL+"/Users/"+u.ID)
	w.Header().Set("ETag", etag(u.Version))
	s.writeJSON(w, http.StatusCreated, rep)
}

func (s *Service) getUser(w http.ResponseWriter, r *http.Request, id string) {
	u, err := s.o.Reader.GetUser(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tag := etag(u.Version)
	w.Header().Set("ETag", tag)
	if etagMatches(r.Header.Get("If-None-Match"), u.Version) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	proj, err := parseProjection(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, proj.apply(s.userRepresentation(u)))
}

// updateUser runs change on the current user inside the store's write
// transaction. change returns the new client-visible fields; updateUser
// keeps what the server owns and moves ValidAfter when active changes.
func (s *Service) updateUser(ctx context.Context, r *http.Request, id, actor, op string,
	change func(cur *store.User) (*store.User, error)) (*store.User, error) {
	ifMatch := r.Header.Get("If-Match")
	var result *store.User
	evs, err := s.o.Store.UpdateUser(ctx, id, func(cur *store.User) (*store.User, error) {
		if ifMatch != "" && !etagMatches(ifMatch, cur.Version) {
			return nil, store.ErrPrecondition
		}
		next, err := change(cur)
		if err != nil {
			return nil, err
		}
		now := s.now()
		next.ID = cur.ID
		next.Created = cur.Created
		next.Version = cur.Version + 1
		next.LastModified = now
		next.ValidAfter = cur.ValidAfter
		if next.Active != cur.Active {
			// Deactivation and reactivation both void every earlier session.
			next.ValidAfter = now
		}
		result = next
		if sameUser(cur, next) {
			result = cur
		}
		return next, nil
	}, actor)
	if err != nil {
		return nil, err
	}
	if err := s.commit(r, evs, actor, op); err != nil {
		return nil, err
	}
	return result, nil
}

// sameUser reports whether a write would change nothing a client can see.
func sameUser(a, b *store.User) bool {
	return a.UserName == b.UserName && a.ExternalID == b.ExternalID && a.Email == b.Email &&
		a.Active == b.Active && string(a.Doc) == string(b.Doc)
}

func (s *Service) replaceUser(w http.ResponseWriter, r *http.Request, id, actor string) {
	_, m, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	next, err := userFromJSON(m)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.updateUser(r.Context(), r, id, actor, "replace", func(*store.User) (*store.User, error) {
		c := *next
		return &c, nil
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(u.Version))
	s.writeJSON(w, http.StatusOK, s.userRepresentation(u))
}

func (s *Service) patchUser(w http.ResponseWriter, r *http.Request, id, actor string) {
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
	u, err := s.updateUser(r.Context(), r, id, actor, "patch", func(cur *store.User) (*store.User, error) {
		res, err := ApplyPatch(userJSON(cur, s.baseURL, nil), ops, readOnlyUser)
		if err != nil {
			return nil, patchErr(err)
		}
		return userFromJSON(res)
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(u.Version))
	s.writeJSON(w, http.StatusOK, s.userRepresentation(u))
}

func (s *Service) deleteUser(w http.ResponseWriter, r *http.Request, id, actor string) {
	s.deleteResource(w, r, actor, func(ifMatch func(version int64) error) ([]store.Event, error) {
		return s.o.Store.DeleteUser(r.Context(), id, func(cur *store.User) error { return ifMatch(cur.Version) }, actor)
	})
}

// deleteResource runs a store delete with the request's If-Match check,
// brings the view up to date and answers 204.
func (s *Service) deleteResource(w http.ResponseWriter, r *http.Request, actor string,
	del func(ifMatch func(version int64) error) ([]store.Event, error)) {
	header := r.Header.Get("If-Match")
	evs, err := del(func(version int64) error {
		if header != "" && !etagMatches(header, version) {
			return store.ErrPrecondition
		}
		return nil
	})
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
	return nil
}
