package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/portcullis-sso/portcullis/scimsync"
)

var readerTests = []struct {
	name string
	fn   func(t *testing.T, st scimsync.Store)
}{
	{"ListUsers_NamePrefixIgnoresCaseAndEscapesWildcards", testNamePrefix},
}

// testNamePrefix: the people-facing search matches the start of userName
// or email, ignoring case, and treats % and _ as themselves.
func testNamePrefix(t *testing.T, st scimsync.Store) {
	rd, ok := st.(scimsync.Reader)
	if !ok {
		t.Fatalf("%T does not implement scimsync.Reader", st)
	}
	createUsers(t, st, newUser("u1", "alice"), newUser("u2", "Alicia"), newUser("u3", "bob"), newUser("u4", "100%_x"), newUser("u5", "1000x"))
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
		us, total, err := rd.ListUsers(context.Background(), scimsync.Query{Attr: "nameprefix", Value: tc.prefix})
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
