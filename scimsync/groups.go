package scimsync

import (
	"errors"
	"net/http"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

var readOnlyGroup = map[string]bool{"id": true, "meta": true}

func (s *Service) groups(w http.ResponseWriter, r *http.Request, id, actor string) {
	switch {
	case id == "" && r.Method == http.MethodGet:
		s.listGroups(w, r)
	case id == "" && r.Method == http.MethodPost:
		s.createGroup(w, r, actor)
	case id == ".search":
		s.writeError(w, r, &scimError{status: 501, detail: "POST .search is not supported; use GET with filter"})
	case id != "" && r.Method == http.MethodGet:
		s.getGroup(w, r, id)
	case id != "" && r.Method == http.MethodPut:
		s.replaceGroup(w, r, id, actor)
	case id != "" && r.Method == http.MethodPatch:
		s.patchGroup(w, r, id, actor)
	case id != "" && r.Method == http.MethodDelete:
		s.deleteGroup(w, r, id, actor)
	default:
		w.Header().Set("Allow", allowFor(id))
		s.writeError(w, r, &scimError{status: 405, detail: "method not allowed here"})
	}
}

func (s *Service) createGroup(w http.ResponseWriter, r *http.Request, actor string) {
	_, m, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	g, err := groupFromJSON(m)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.now()
	g.ID = s.o.NewID()
	g.Version = 1
	g.Created, g.LastModified = now, now
	evs, err := s.o.Store.CreateGroup(r.Context(), g, actor)
	if err != nil {
		s.writeError(w, r, memberErr(err))
		return
	}
	if err := s.commit(r, evs, actor, "create"); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", s.baseURL+"/Groups/"+g.ID)
	w.Header().Set("ETag", etag(g.Version))
	s.writeJSON(w, http.StatusCreated, groupJSON(g, s.baseURL, true))
}

func (s *Service) getGroup(w http.ResponseWriter, r *http.Request, id string) {
	g, err := s.o.Reader.GetGroup(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(g.Version))
	if etagMatches(r.Header.Get("If-None-Match"), g.Version) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	proj, err := parseProjection(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, proj.apply(groupJSON(g, s.baseURL, proj.wants("members"))))
}

func (s *Service) updateGroup(w http.ResponseWriter, r *http.Request, id, actor, op string,
	change func(cur *store.Group) (*store.Group, error)) {
	ifMatch := r.Header.Get("If-Match")
	var result *store.Group
	evs, err := s.o.Store.UpdateGroup(r.Context(), id, func(cur *store.Group) (*store.Group, error) {
		if ifMatch != "" && !etagMatches(ifMatch, cur.Version) {
			return nil, store.ErrPrecondition
		}
		next, err := change(cur)
		if err != nil {
			return nil, err
		}
		next.ID = cur.ID
		next.Created = cur.Created
		next.Version = cur.Version + 1
		next.LastModified = s.now()
		result = next
		if sameGroup(cur, next) {
			result = cur
		}
		return next, nil
	}, actor)
	if err != nil {
		s.writeError(w, r, memberErr(err))
		return
	}
	if err := s.commit(r, evs, actor, op); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(result.Version))
	proj, err := parseProjection(r)
	if err != nil {
		proj = projection{}
	}
	s.writeJSON(w, http.StatusOK, proj.apply(groupJSON(result, s.baseURL, proj.wants("members"))))
}

func sameGroup(a, b *store.Group) bool {
	if a.DisplayName != b.DisplayName || a.ExternalID != b.ExternalID || string(a.Doc) != string(b.Doc) ||
		len(a.Members) != len(b.Members) {
		return false
	}
	set := make(map[string]struct{}, len(a.Members))
	for _, m := range a.Members {
		set[m] = struct{}{}
	}
	for _, m := range b.Members {
		if _, ok := set[m]; !ok {
			return false
		}
	}
	return true
}

func (s *Service) replaceGroup(w http.ResponseWriter, r *http.Request, id, actor string) {
	_, m, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	next, err := groupFromJSON(m)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.updateGroup(w, r, id, actor, "replace", func(*store.Group) (*store.Group, error) {
		c := *next
		return &c, nil
	})
}

func (s *Service) patchGroup(w http.ResponseWriter, r *http.Request, id, actor string) {
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
	s.updateGroup(w, r, id, actor, "patch", func(cur *store.Group) (*store.Group, error) {
		res, err := ApplyPatch(groupJSON(cur, s.baseURL, true), ops, readOnlyGroup)
		if err != nil {
			return nil, patchErr(err)
		}
		return groupFromJSON(res)
	})
}

func (s *Service) deleteGroup(w http.ResponseWriter, r *http.Request, id, actor string) {
	s.deleteResource(w, r, actor, func(ifMatch func(version int64) error) ([]store.Event, error) {
		return s.o.Store.DeleteGroup(r.Context(), id, func(cur *store.Group) error { return ifMatch(cur.Version) }, actor)
	})
}

// memberErr turns an unknown member into a 400 the IdP can act on.
func memberErr(err error) error {
	if isUnknownMember(err) {
		return badRequest("invalidValue", "a member does not name an existing user")
	}
	return err
}

func isUnknownMember(err error) bool { return errors.Is(err, store.ErrUnknownMember) }
