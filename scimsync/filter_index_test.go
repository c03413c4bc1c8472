package scimsync

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// queryLog is a store.Reader that records the queries of the list reads,
// to tell an index lookup from a read of the whole directory.
type queryLog struct {
	store.Reader
	mu      sync.Mutex
	queries []store.Query
}

func (l *queryLog) record(q store.Query) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queries = append(l.queries, q)
}

// take returns the queries recorded since the last take.
func (l *queryLog) take() []store.Query {
	l.mu.Lock()
	defer l.mu.Unlock()
	qs := l.queries
	l.queries = nil
	return qs
}

func (l *queryLog) ListUsers(ctx context.Context, q store.Query) ([]*store.User, int, error) {
	l.record(q)
	return l.Reader.ListUsers(ctx, q)
}

func (l *queryLog) EachUser(ctx context.Context, q store.Query, fn func(*store.User) error) error {
	l.record(q)
	return l.Reader.EachUser(ctx, q, fn)
}

func (l *queryLog) ListGroups(ctx context.Context, q store.Query, withMembers bool) ([]*store.Group, int, error) {
	l.record(q)
	return l.Reader.ListGroups(ctx, q, withMembers)
}

// names lists the userName or displayName of a list response's resources.
func names(t *testing.T, r scimResp) []string {
	t.Helper()
	res, _ := r.body["Resources"].([]any)
	out := []string{}
	for _, e := range res {
		m := e.(map[string]any)
		if n, ok := m["userName"].(string); ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprint(m["displayName"]))
		}
	}
	slices.Sort(out)
	return out
}

// TestRFC7644_3_4_2_2_IdPFiltersAnsweredFromAnIndex: every filter Okta and
// Entra send to look a user or group up is answered from the store's
// indexes (the store query selects rows; it is never a read of every
// resource), gives the right answer, and POST .search (RFC 7644 §3.4.3)
// answers it the same. An unindexed filter is the control: it reads all.
func TestRFC7644_3_4_2_2_IdPFiltersAnsweredFromAnIndex(t *testing.T) {
	t.Parallel()
	log := &queryLog{}
	h := newSCIMWith(t, "userName", func(rd store.Reader) store.Reader { log.Reader = rd; return log })
	mk := func(userName, emails string) string {
		body := fmt.Sprintf(`{"schemas":[%q],"userName":%q,"externalId":"ext-%s","emails":%s}`, SchemaUser, userName, userName, emails)
		return h.mustStatus(h.req("POST", "/Users", body), 201).body["id"].(string)
	}
	alice := mk("alice", `[{"value":"alice@corp.example","type":"work","primary":true},{"value":"alice@home.example","type":"home"}]`)
	bob := mk("bob", `[{"value":"bob@corp.example","type":"work"}]`)
	mk("carol", `[{"value":"shared@corp.example","type":"home"}]`)
	mk("dave", `[{"value":"Shared@Corp.example","type":"work"}]`)
	group := func(name string, members ...string) string {
		var ms []map[string]string
		for _, m := range members {
			ms = append(ms, map[string]string{"value": m})
		}
		b, _ := json.Marshal(map[string]any{"schemas": []string{SchemaGroup}, "displayName": name, "members": ms})
		return h.mustStatus(h.req("POST", "/Groups", string(b)), 201).body["id"].(string)
	}
	staff := group("Staff", alice, bob)
	admins := group("Admins", alice)

	for _, tc := range []struct {
		path, filter string
		want         []string
	}{
		{"Users", `userName eq "ALICE"`, []string{"alice"}},
		{"Users", `externalId eq "ext-bob"`, []string{"bob"}},
		{"Users", `id eq "` + alice + `"`, []string{"alice"}},
		{"Users", `emails[type eq "work"].value eq "shared@corp.example"`, []string{"dave"}}, // Entra
		{"Users", `emails[type eq "work"].value eq "alice@home.example"`, []string{}},
		{"Users", `emails[type eq "work" and value eq "bob@corp.example"]`, []string{"bob"}},
		{"Users", `emails.value eq "alice@home.example"`, []string{"alice"}},
		{"Users", `emails[value eq "BOB@corp.example"]`, []string{"bob"}},
		{"Users", `emails eq "bob@corp.example"`, []string{"bob"}},
		{"Users", `emails.value eq "shared@corp.example"`, []string{"carol", "dave"}},
		{"Users", `userName eq "alice" or userName eq "bob"`, []string{"alice", "bob"}},
		{"Users", `userName eq "alice" and active eq true`, []string{"alice"}},
		{"Users", `(userName eq "carol" or externalId eq "ext-dave") and emails[type eq "work"]`, []string{"dave"}},
		{"Groups", `displayName eq "staff"`, []string{"Staff"}},
		{"Groups", `members[value eq "` + bob + `"]`, []string{"Staff"}},
		{"Groups", `members.value eq "` + alice + `"`, []string{"Admins", "Staff"}},
		{"Groups", `id eq "` + staff + `" and members[value eq "` + bob + `"]`, []string{"Staff"}}, // Entra
		{"Groups", `id eq "` + admins + `" and members[value eq "` + bob + `"]`, []string{}},
		{"Groups", `displayName eq "Admins" and members.value eq "` + alice + `"`, []string{"Admins"}},
		{"Groups", `externalId eq "none"`, []string{}},
	} {
		t.Run(tc.path+" "+tc.filter, func(t *testing.T) {
			log.take()
			r := h.mustStatus(h.req("GET", "/"+tc.path+"?"+url.Values{"filter": {tc.filter}}.Encode(), ""), 200)
			if got := names(t, r); !slices.Equal(got, tc.want) {
				t.Errorf("GET: %v, want %v", got, tc.want)
			}
			if r.body["totalResults"] != float64(len(tc.want)) {
				t.Errorf("totalResults %v, want %d", r.body["totalResults"], len(tc.want))
			}
			for _, q := range log.take() {
				if q.Attr == "" && len(q.Any) == 0 {
					t.Errorf("the store read every resource (query %+v)", q)
				}
			}
			b, _ := json.Marshal(map[string]any{"schemas": []string{SchemaSearchRequest}, "filter": tc.filter})
			s := h.mustStatus(h.req("POST", "/"+tc.path+"/.search", string(b)), 200)
			if diff := cmp.Diff(r.body["Resources"], s.body["Resources"]); diff != "" {
				t.Errorf("POST .search differs from GET (-get +search):\n%s", diff)
			}
		})
	}
	log.take()
	h.mustStatus(h.req("GET", "/Users?"+url.Values{"filter": {`displayName co "x"`}}.Encode(), ""), 200)
	if qs := log.take(); len(qs) != 1 || qs[0].Attr != "" || len(qs[0].Any) != 0 {
		t.Errorf("control: an unindexed filter made the queries %+v, want one read of everything", qs)
	}
}

// TestPlanQuery checks the store query of filters: exact ones are paged by
// the store, the others give candidates the filter then decides on.
func TestPlanQuery(t *testing.T) {
	t.Parallel()
	c := func(attr, v string) store.Cond { return store.Cond{Attr: attr, Value: v} }
	for _, tc := range []struct {
		filter    string
		want      store.Query
		exact, ok bool
	}{
		{`userName eq "a"`, store.Query{Attr: "username", Value: "a"}, true, true},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a"`, store.Query{Attr: "username", Value: "a"}, true, true},
		{`emails.value eq "a"`, store.Query{Attr: "emails", Value: "a"}, false, true},
		{`emails[type eq "work"].value eq "a"`, store.Query{Attr: "emails", Value: "a"}, false, true},
		{`userName eq "a" and externalId eq "b"`, store.Query{Any: [][]store.Cond{{c("username", "a"), c("externalid", "b")}}}, true, true},
		{`userName eq "a" or userName eq "b"`, store.Query{Any: [][]store.Cond{{c("username", "a")}, {c("username", "b")}}}, true, true},
		{`userName eq "a" and title eq "b"`, store.Query{Attr: "username", Value: "a"}, false, true},
		{`userName eq "a" or title eq "b"`, store.Query{}, false, false},
		{`not (userName eq "a")`, store.Query{}, false, false},
		{`userName sw "a"`, store.Query{}, false, false},
		{`userName pr`, store.Query{}, false, false},
		{`emails[type eq "work"]`, store.Query{}, false, false},
	} {
		f, err := ParseFilter(tc.filter)
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		q, exact, ok := planQuery(f, users.index)
		if diff := cmp.Diff(tc.want, q); diff != "" || exact != tc.exact || ok != tc.ok {
			t.Errorf("%s: exact %v ok %v, want %v %v; query (-want +got):\n%s", tc.filter, exact, ok, tc.exact, tc.ok, diff)
		}
	}
	// An and of ors multiplies out, within limits.
	f, _ := ParseFilter(`(userName eq "a" or userName eq "b") and (externalId eq "x" or externalId eq "y")`)
	if q, exact, _ := planQuery(f, users.index); len(q.Any) != 4 || !exact {
		t.Errorf("and of ors: %+v exact %v, want 4 alternatives, exact", q, exact)
	}
}

// storeHolds is what the store answers for one equality on a user
// representation r (sqlread.go's userCond, emails.go's EmailKeys).
func storeHolds(c store.Cond, r map[string]any) bool {
	str := func(k string) string { v, _, _ := lookupKey(r, k); s, _ := v.(string); return s }
	switch c.Attr {
	case "username":
		return identity.MatchKey(str("userName")) == identity.MatchKey(c.Value)
	case "externalid":
		return str("externalId") == c.Value
	case "id":
		return str("id") == c.Value
	case "emails":
		doc, _ := json.Marshal(r)
		return slices.Contains(store.EmailKeys(doc), identity.MatchKey(c.Value))
	}
	return false
}

// FuzzPlanQuery_IsASuperset: whatever the filter, every resource it
// matches is selected by its store plan (an exact plan selects nothing
// more), and planning and type checks never panic.
func FuzzPlanQuery_IsASuperset(f *testing.F) {
	for _, tc := range evalCases {
		f.Add(tc.filter)
	}
	for _, s := range []string{`emails[type eq "work"].value eq "alice@example.com"`, `userName eq "BOB@example.org" or externalId eq "abc"`,
		`emails[value eq "ALICE@home.example"] and active eq true`, `emails eq "bob@example.org"`} {
		f.Add(s)
	}
	var res []map[string]any // the users: the plan is users.index's
	for _, r := range loadResources(f) {
		if _, _, ok := lookupKey(r, "userName"); ok {
			res = append(res, r)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(s)
		if err != nil {
			return
		}
		_ = checkFilterTypes(flt, userTypes)
		q, exact, ok := planQuery(flt, users.index)
		if !ok {
			return
		}
		alts := q.Any
		if len(alts) == 0 {
			alts = [][]store.Cond{{{Attr: q.Attr, Value: q.Value}}}
		}
		if len(alts) > maxPlanAlternatives {
			t.Fatalf("%q: %d alternatives", s, len(alts))
		}
		for _, r := range res {
			selected := slices.ContainsFunc(alts, func(all []store.Cond) bool {
				return !slices.ContainsFunc(all, func(c store.Cond) bool { return !storeHolds(c, r) })
			})
			if matched := flt.Matches(r); matched && !selected || exact && selected && !matched {
				t.Fatalf("%q on %v: filter %v, plan %+v (exact %v) selects %v", s, r["id"], matched, q, exact, selected)
			}
		}
	})
}
