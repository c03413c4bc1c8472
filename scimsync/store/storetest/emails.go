package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

var emailTests = []struct {
	name string
	fn   func(t *testing.T, st store.Store)
}{
	{"ListUsers_EmailsFindsEveryEmailOfTheDocument", testEmailsIndex},
	{"ListUsers_EmailsFollowsUpdatesAndDeletes", testEmailsIndexFollowsWrites},
	{"Query_AnyIsAnOrOfAnds", testQueryAny},
}

// emailUser is a user whose document holds emails.
func emailUser(id, userName, primary, doc string) *store.User {
	u := NewUser(id, userName)
	u.Email = primary
	u.Doc = []byte(doc)
	return u
}

// EmailUsers are users whose documents hold emails in every form the
// index must see: several values, primary or not, the attribute and its
// value sub-attribute in other cases, a bare string element.
func EmailUsers() []*store.User {
	return []*store.User{
		emailUser("u1", "alice", "alice@work.example",
			`{"userName":"alice","emails":[{"value":"alice@work.example","type":"work","primary":true},{"value":"Alice@Home.example","type":"home"}]}`),
		emailUser("u2", "bob", "", `{"userName":"bob","Emails":[{"VALUE":"bob@work.example","type":"work"}]}`),
		emailUser("u3", "carol", "", `{"userName":"carol","emails":["carol@bare.example"]}`),
		emailUser("u4", "dave", "", `{"userName":"dave"}`),
	}
}

// CheckEmails checks that st's email index answers for EmailUsers: every
// value finds its user, whatever the ASCII case of the query.
func CheckEmails(t *testing.T, st store.Store) {
	t.Helper()
	for _, tc := range []struct{ value, want string }{
		{"alice@work.example", "u1"},
		{"ALICE@HOME.EXAMPLE", "u1"}, // not the primary; ASCII case ignored
		{"bob@work.example", "u2"},
		{"carol@bare.example", "u3"},
		{"dave", ""},
		{"nobody@example.com", ""},
	} {
		got := userIDs(t, st, store.Query{Attr: "emails", Value: tc.value})
		var want []string
		if tc.want != "" {
			want = []string{tc.want}
		}
		if !slices.Equal(got, want) {
			t.Errorf("emails %q: %v, want %v", tc.value, got, want)
		}
	}
}

// userIDs lists the IDs of the users q selects, checking the total.
func userIDs(t *testing.T, st store.Store, q store.Query) []string {
	t.Helper()
	rd := as[store.Reader](t, st)
	us, total, err := rd.ListUsers(context.Background(), q)
	if err != nil {
		t.Fatalf("ListUsers %+v: %v", q, err)
	}
	var ids []string
	for _, u := range us {
		ids = append(ids, u.ID)
	}
	if total != len(ids) {
		t.Errorf("ListUsers %+v: total %d for %d users", q, total, len(ids))
	}
	var scanned []string
	if err := rd.EachUser(context.Background(), q, func(u *store.User) error {
		scanned = append(scanned, u.ID)
		return nil
	}); err != nil || !slices.Equal(scanned, ids) {
		t.Errorf("EachUser %+v: %v %v, want the list's %v", q, scanned, err, ids)
	}
	return ids
}

func testEmailsIndex(t *testing.T, st store.Store) {
	createUsers(t, st, EmailUsers()...)
	CheckEmails(t, st)
}

// testEmailsIndexFollowsWrites: an update that changes the emails moves
// the user in the index, one that keeps them keeps it, a delete removes it.
func testEmailsIndexFollowsWrites(t *testing.T, st store.Store) {
	ctx := context.Background()
	createUsers(t, st, EmailUsers()...)
	update := func(id, primary, doc string) {
		t.Helper()
		if _, err := st.UpdateUser(ctx, id, func(cur *store.User) (*store.User, error) {
			n := next(cur)
			n.Email, n.Doc = primary, []byte(doc)
			return n, nil
		}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	update("u1", "alice@new.example", `{"userName":"alice","emails":[{"value":"alice@new.example","primary":true}]}`)
	update("u2", "", `{"userName":"bob","Emails":[{"VALUE":"bob@work.example","type":"work"}],"title":"x"}`)
	for _, tc := range []struct {
		value string
		want  []string
	}{
		{"alice@work.example", nil},
		{"alice@home.example", nil},
		{"alice@new.example", []string{"u1"}},
		{"bob@work.example", []string{"u2"}},
	} {
		if got := userIDs(t, st, store.Query{Attr: "emails", Value: tc.value}); !slices.Equal(got, tc.want) {
			t.Errorf("after updates, emails %q: %v, want %v", tc.value, got, tc.want)
		}
	}
	if _, err := st.DeleteUser(ctx, "u2", func(*store.User) error { return nil }, "test"); err != nil {
		t.Fatal(err)
	}
	if got := userIDs(t, st, store.Query{Attr: "emails", Value: "bob@work.example"}); got != nil {
		t.Errorf("after the delete, emails bob@work.example: %v", got)
	}
}

// testQueryAny: Any selects the resources meeting every equality of one of
// its lists, for users and for groups (Entra's `id eq … and members[value
// eq …]`).
func testQueryAny(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "alice"), NewUser("u2", "bob"), NewUser("u3", "carol"))
	createGroup(t, st, NewGroup("g1", "Staff", "u1", "u2"))
	createGroup(t, st, NewGroup("g2", "Admins", "u1"))
	and := func(cs ...store.Cond) []store.Cond { return cs }
	un := func(v string) store.Cond { return store.Cond{Attr: "username", Value: v} }
	for _, tc := range []struct {
		name string
		q    [][]store.Cond
		want []string
	}{
		{"or", [][]store.Cond{and(un("ALICE")), and(un("carol"))}, []string{"u1", "u3"}},
		{"and", [][]store.Cond{and(un("bob"), store.Cond{Attr: "externalid", Value: "ext-u2"})}, []string{"u2"}},
		{"and, one false", [][]store.Cond{and(un("bob"), store.Cond{Attr: "externalid", Value: "ext-u1"})}, nil},
		{"or of ands", [][]store.Cond{and(un("bob"), store.Cond{Attr: "id", Value: "u1"}), and(store.Cond{Attr: "id", Value: "u3"})}, []string{"u3"}},
	} {
		if got := userIDs(t, st, store.Query{Any: tc.q}); !slices.Equal(got, tc.want) {
			t.Errorf("users %s: %v, want %v", tc.name, got, tc.want)
		}
	}
	rd := st.(store.Reader)
	member := func(v string) store.Cond { return store.Cond{Attr: "member", Value: v} }
	for _, tc := range []struct {
		name string
		q    [][]store.Cond
		want []string
	}{
		{"id and member", [][]store.Cond{and(store.Cond{Attr: "id", Value: "g1"}, member("u2"))}, []string{"g1"}},
		{"id and not a member", [][]store.Cond{and(store.Cond{Attr: "id", Value: "g2"}, member("u2"))}, nil},
		{"displayName and member", [][]store.Cond{and(store.Cond{Attr: "displayname", Value: "admins"}, member("u1"))}, []string{"g2"}},
		{"member or member", [][]store.Cond{and(member("u2")), and(member("u1"))}, []string{"g1", "g2"}},
	} {
		gs, total, err := rd.ListGroups(context.Background(), store.Query{Any: tc.q}, false)
		if err != nil {
			t.Fatalf("groups %s: %v", tc.name, err)
		}
		var got []string
		for _, g := range gs {
			got = append(got, g.ID)
		}
		if !slices.Equal(got, tc.want) || total != len(tc.want) {
			t.Errorf("groups %s: %v (total %d), want %v", tc.name, got, total, tc.want)
		}
	}
	if _, _, err := rd.ListUsers(context.Background(), store.Query{Any: [][]store.Cond{and(store.Cond{Attr: "nickname", Value: "x"})}}); err == nil {
		t.Error("a query on an attribute without an index: no error")
	}
}

// BeforeEmailIndex turns a database into one the version before the email
// index left (run it after MigrationNumber's version and later are deleted
// from schema_migrations): no user_emails table.
var BeforeEmailIndex = []string{`DROP TABLE user_emails`}

// PlantEmailUsers writes EmailUsers into st through its own write methods.
func PlantEmailUsers(t *testing.T, st store.Store) {
	t.Helper()
	createUsers(t, st, EmailUsers()...)
}
