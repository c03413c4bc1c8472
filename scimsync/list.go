package scimsync

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// listParams are the query parameters of a list request (RFC 7644 §3.4.2).
type listParams struct {
	filter     Filter
	startIndex int // 1-based
	count      int
	sortBy     string
	descending bool
	proj       projection
}

func (s *Service) parseList(q url.Values) (*listParams, error) {
	p := &listParams{startIndex: 1, count: s.o.Config.SCIM.MaxPageSize}
	if f := q.Get("filter"); f != "" {
		flt, err := ParseFilter(f)
		if err != nil {
			return nil, badRequest("invalidFilter", "%s", err.Error())
		}
		p.filter = flt
	}
	if v := q.Get("startIndex"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, badRequest("invalidValue", "startIndex must be an integer")
		}
		if n > 1 {
			p.startIndex = n
		}
	}
	if v := q.Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, badRequest("invalidValue", "count must be an integer")
		}
		p.count = min(max(n, 0), s.o.Config.SCIM.MaxPageSize)
	}
	p.sortBy = q.Get("sortBy")
	switch strings.ToLower(q.Get("sortOrder")) {
	case "", "ascending":
	case "descending":
		p.descending = true
	default:
		return nil, badRequest("invalidValue", "sortOrder must be ascending or descending")
	}
	proj, err := projectionOf(q)
	if err != nil {
		return nil, err
	}
	p.proj = proj
	return p, nil
}

// list answers GET on the collection.
func (e *endpoint[T]) list(s *Service, w http.ResponseWriter, r *http.Request) {
	p, err := s.parseList(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	e.answer(s, w, r, p)
}

// answer answers a query, from GET or POST .search: the store pages a
// filter it answers exactly from its indexes; scan applies the filter to
// the candidates an index gives, or to everything when none does.
func (e *endpoint[T]) answer(s *Service, w http.ResponseWriter, r *http.Request, p *listParams) {
	if err := checkFilterTypes(p.filter, e.types); err != nil {
		s.writeError(w, r, err)
		return
	}
	q, exact, _ := planQuery(p.filter, e.index)
	if !exact || p.sortBy != "" {
		e.scan(s, w, r, p, q)
		return
	}
	q.Offset, q.Limit = p.startIndex-1, p.count
	if p.count == 0 {
		q.Limit = 1 // only the total is needed; a limit of 0 means "all"
	}
	vs, total, err := e.page(s.o.Reader, r.Context(), q, p.proj)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if p.count == 0 {
		vs = nil
	}
	res := make([]map[string]any, 0, len(vs))
	for _, v := range vs {
		res = append(res, p.proj.apply(e.rep(s, v, p.proj)))
	}
	s.writeList(w, p, total, res)
}

// scanUsers answers a user filter no index answers: it streams the users
// through it, keeping only what the answer needs (every match when
// sorting, else the page), so a scan of a large directory holds one user
// at a time, not all of them. A user's groups are the costliest part of
// the representation; they are built for the filter only when it tests
// them, and for what is kept.
func scanUsers(s *Service, w http.ResponseWriter, r *http.Request, p *listParams, q store.Query) {
	sorting := p.sortBy != ""
	from, to := p.startIndex-1, p.startIndex-1+p.count
	filterGroups := p.filter == nil || FilterUses(p.filter, "groups")
	var kept []map[string]any
	total := 0
	err := s.o.Reader.EachUser(r.Context(), q, func(u *store.User) error {
		var rep map[string]any
		if filterGroups {
			rep = s.userRepresentation(u)
		} else {
			rep = userJSON(u, s.baseURL, nil)
		}
		if p.filter != nil && !p.filter.Matches(rep) {
			return nil
		}
		if sorting || total >= from && total < to {
			if !filterGroups {
				rep = s.userRepresentation(u)
			}
			kept = append(kept, rep)
		}
		total++
		return nil
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if sorting {
		s.writePage(w, p, kept)
		return
	}
	page := make([]map[string]any, 0, len(kept))
	for _, rep := range kept {
		page = append(page, p.proj.apply(rep))
	}
	s.writeList(w, p, total, page)
}

// scanGroups answers a group filter no index answers exactly, or a sorted
// list. It loads the members (the costly part) only when the filter, the
// sort or the answer needs them.
func scanGroups(s *Service, w http.ResponseWriter, r *http.Request, p *listParams, q store.Query) {
	load := p.filter != nil && FilterUses(p.filter, "members") || p.proj.wants("members") ||
		strings.HasPrefix(strings.ToLower(p.sortBy), "members")
	groups, _, err := s.o.Reader.ListGroups(r.Context(), q, load)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	withMembers := p.proj.wants("members")
	var matched []map[string]any
	for _, g := range groups {
		rep := groupJSON(g, s.baseURL, load)
		if p.filter == nil || p.filter.Matches(rep) {
			if !withMembers {
				delete(rep, "members")
			}
			matched = append(matched, rep)
		}
	}
	s.writePage(w, p, matched)
}

// writePage sorts and pages resources filtered in memory.
func (s *Service) writePage(w http.ResponseWriter, p *listParams, matched []map[string]any) {
	if p.sortBy != "" {
		slices.SortStableFunc(matched, func(a, b map[string]any) int {
			av, aok := sortValue(a, p.sortBy)
			bv, bok := sortValue(b, p.sortBy)
			c := compareSortValues(av, aok, bv, bok)
			if p.descending {
				return -c
			}
			return c
		})
	}
	total := len(matched)
	from := min(p.startIndex-1, total)
	to := min(from+p.count, total)
	page := make([]map[string]any, 0, to-from)
	for _, rep := range matched[from:to] {
		page = append(page, p.proj.apply(rep))
	}
	s.writeList(w, p, total, page)
}

func (s *Service) writeList(w http.ResponseWriter, p *listParams, total int, res []map[string]any) {
	body := map[string]any{
		"schemas":      []string{SchemaList},
		"totalResults": total,
		"startIndex":   p.startIndex,
		"itemsPerPage": len(res),
		"Resources":    res,
	}
	s.writeJSON(w, http.StatusOK, body)
}

// sortValue is the value of a (possibly dotted) attribute used for sorting;
// for a multi-valued attribute, the primary value or else the first.
func sortValue(m map[string]any, path string) (string, bool) {
	var cur any = m
	for part := range strings.SplitSeq(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return "", false
		}
		v, _, ok := getCI(obj, part)
		if !ok {
			return "", false
		}
		if list, ok := v.([]any); ok {
			v = pickPrimary(list)
		}
		cur = v
	}
	switch x := cur.(type) {
	case string:
		return strings.ToLower(x), true
	case nil:
		return "", false
	default:
		return strings.ToLower(fmt.Sprint(x)), true
	}
}

func pickPrimary(list []any) any {
	for _, e := range list {
		if obj, ok := e.(map[string]any); ok {
			if p, _, _ := getCI(obj, "primary"); p == true {
				return obj
			}
		}
	}
	if len(list) > 0 {
		return list[0]
	}
	return nil
}

// compareSortValues orders present values first, missing ones last (RFC 7644 §3.4.2.3).
func compareSortValues(a string, aok bool, b string, bok bool) int {
	switch {
	case aok && !bok:
		return -1
	case !aok && bok:
		return 1
	}
	return cmp.Compare(a, b)
}

// projection is attributes / excludedAttributes (RFC 7644 §3.4.2.5).
type projection struct {
	include []string // lowercased paths; empty = default set
	exclude []string
}

func parseProjection(r *http.Request) (projection, error) { return projectionOf(r.URL.Query()) }

func projectionOf(q url.Values) (projection, error) {
	split := func(v string) []string {
		var out []string
		for part := range strings.SplitSeq(v, ",") {
			if p := strings.ToLower(strings.TrimSpace(part)); p != "" {
				out = append(out, stripCoreURN(p))
			}
		}
		return out
	}
	p := projection{include: split(q.Get("attributes")), exclude: split(q.Get("excludedAttributes"))}
	if len(p.include) > 0 && len(p.exclude) > 0 {
		return p, badRequest("invalidValue", "use attributes or excludedAttributes, not both")
	}
	return p, nil
}

// stripCoreURN removes a core schema URN prefix from a lowercased path.
func stripCoreURN(p string) string {
	for _, urn := range []string{strings.ToLower(SchemaUser) + ":", strings.ToLower(SchemaGroup) + ":"} {
		if rest, ok := strings.CutPrefix(p, urn); ok {
			return rest
		}
	}
	return p
}

// wants reports whether the top-level attribute name is returned.
func (p projection) wants(name string) bool {
	name = strings.ToLower(name)
	if len(p.include) > 0 {
		for _, a := range p.include {
			top, _, _ := splitAttrPath(a)
			if top == name {
				return true
			}
		}
		return false
	}
	return !slices.Contains(p.exclude, name)
}

// apply returns m reduced to what the client asked for; id and schemas are
// always returned.
func (p projection) apply(m map[string]any) map[string]any {
	if len(p.include) == 0 && len(p.exclude) == 0 {
		return m
	}
	if len(p.include) > 0 {
		out := map[string]any{}
		for k, v := range m {
			lk := strings.ToLower(k)
			if lk == "id" || lk == "schemas" {
				out[k] = v
				continue
			}
			for _, a := range p.include {
				top, sub, hasSub := splitAttrPath(a)
				if top != lk {
					continue
				}
				if !hasSub {
					out[k] = v
					break
				}
				if reduced, ok := keepSub(v, sub, out[k]); ok {
					out[k] = reduced
				}
			}
		}
		return out
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for _, a := range p.exclude {
		top, sub, hasSub := splitAttrPath(a)
		for k, v := range out {
			if strings.ToLower(k) != top || k == "id" || k == "schemas" {
				continue
			}
			if !hasSub {
				delete(out, k)
			} else {
				out[k] = dropSub(v, sub)
			}
		}
	}
	return out
}

// keepSub keeps only sub-attribute sub of a complex or multi-valued value,
// merging into prev (an earlier reduction of the same attribute).
func keepSub(v any, sub string, prev any) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		out, _ := prev.(map[string]any)
		if out == nil {
			out = map[string]any{}
		}
		if sv, k, ok := getCI(x, sub); ok {
			out[k] = sv
		}
		return out, true
	case []any:
		prevList, _ := prev.([]any)
		out := make([]any, len(x))
		for i, e := range x {
			var pe any
			if i < len(prevList) {
				pe = prevList[i]
			}
			out[i], _ = keepSub(e, sub, pe)
		}
		return out, true
	}
	return nil, false
}

func dropSub(v any, sub string) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if !strings.EqualFold(k, sub) {
				out[k] = e
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = dropSub(e, sub)
		}
		return out
	}
	return v
}

// splitAttrPath splits a lowercased attribute path into its top-level
// attribute and sub-attribute. An extension attribute such as
// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:manager.value"
// has the extension URN as its top level (the URN itself contains a dot).
func splitAttrPath(a string) (top, sub string, hasSub bool) {
	ent := strings.ToLower(SchemaEnterprise)
	if rest, ok := strings.CutPrefix(a, ent); ok {
		rest = strings.TrimPrefix(rest, ":")
		return ent, rest, rest != ""
	}
	return strings.Cut(a, ".")
}
