package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

var readerTests = []struct {
	name string
	fn   func(t *testing.T, st store.Store)
}{
	{"ListUsers_NamePrefixIgnoresCaseAndEscapesWildcards", testNamePrefix},
	{"EachUser_StreamsInOrderAndStopsOnError", testEachUser},
}

// testNamePrefix: the people-facing search matches the start of userName
// or email, ignoring case, and treats % and _ as themselves.
func testNamePrefix(t *testing.T, st store.Store) {
	rd := as[store.Reader](t, st)
	createUsers(t, st, NewUser("u1", "alice"), NewUser("u2", "Alicia"), NewUser("u3", "bob"), NewUser("u4", "100%_x"), NewUser("u5", "1000x"))
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"ali", []string{"Alicia", "alice"}}, // sorted bytewise
		{"ALI", []string{"Alicia", "alice"}},
		{"alice@example", []string{"alice"}}, // the email
		{"bob@", []string{"bob"}},
		{"100%", []string{"100%_x"}}, // not 1000x
		{"100%_", []string{"100%_x"}},
		{"%", nil},
		{"_", nil},
		{"zed", nil},
	} {
		us, total, err := rd.ListUsers(context.Background(), store.Query{Attr: "nameprefix", Value: tc.prefix})
		if err != nil {
			t.Fatalf("nameprefix %q: %v", tc.prefix, err)
		}
		var got []string
		for _, u := range us {
			got = append(got, u.UserName)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) || total != len(tc.want) {
			t.Errorf("nameprefix %q: %v (total %d), want %v", tc.prefix, got, total, tc.want)
		}
	}
}

// testEachUser: a scan sees every matching user once, in the store's
// order, and stops with fn's error.
func testEachUser(t *testing.T, st store.Store) {
	rd := as[store.Reader](t, st)
	createUsers(t, st, NewUser("u1", "carol"), NewUser("u2", "alice"), NewUser("u3", "bob"))
	var got []string
	if err := rd.EachUser(context.Background(), store.Query{}, func(u *store.User) error {
		got = append(got, u.UserName)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"carol", "alice", "bob"}; !slices.Equal(got, want) {
		t.Errorf("scan: %v, want creation order %v", got, want)
	}
	got = nil
	if err := rd.EachUser(context.Background(), store.Query{Attr: "username", Value: "ALICE"}, func(u *store.User) error {
		got = append(got, u.ID)
		return nil
	}); err != nil || !slices.Equal(got, []string{"u2"}) {
		t.Errorf("scan username ALICE: %v %v, want [u2]", got, err)
	}
	stop := errors.New("enough")
	n := 0
	err := rd.EachUser(context.Background(), store.Query{}, func(*store.User) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("fn's error: scan returned %v after %d users, want it as is after 1", err, n)
	}
}
