package storetest_test

// The conformance suite against both backends, and the two backends
// against each other.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/postgres"
	"github.com/portcullis-sso/portcullis/scimsync/store/sqlite"
	"github.com/portcullis-sso/portcullis/scimsync/store/storetest"
)

// Both backends are every interface the store offers.
var (
	_ backend = (*sqlite.Store)(nil)
	_ backend = (*postgres.Store)(nil)
)

type backend interface {
	store.Backend
	store.Store
	store.Reader
	store.EventSummary
	Ledger() store.Ledger
}

func TestSQLite_Conformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts ...store.Option) store.Store {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "portcullis.db"), opts...)
		return must(t, st, err)
	})
}

func TestPostgres_Conformance(t *testing.T) {
	storetest.PostgresAdmin(t) // skip the whole suite at once when there is no server
	storetest.Run(t, func(t *testing.T, opts ...store.Option) store.Store {
		dsn, _ := storetest.PostgresSchema(t)
		st, err := postgres.Open(context.Background(), dsn, opts...)
		return must(t, st, err)
	})
}

// must is st, or fails t with err. (Run closes the stores it opens.)
func must[S any](t *testing.T, st S, err error) S {
	t.Helper()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return st
}

// TestReader_PostgresMatchesSQLite writes the same directory to both
// stores and compares every Reader answer.
func TestReader_PostgresMatchesSQLite(t *testing.T) {
	t.Parallel()
	dsn, _ := storetest.PostgresSchema(t)
	pg := storetest.Opened(postgres.Open(context.Background(), dsn))(t)
	lite := storetest.Opened(sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "portcullis.db")))(t)
	ctx := context.Background()
	for _, st := range []store.Store{pg, lite} {
		for i := range 7 {
			u := storetest.NewUser(fmt.Sprintf("u%d", i), fmt.Sprintf("User%d", i))
			u.Email = fmt.Sprintf("Shared%d@Example.com", i%2)
			if _, err := st.CreateUser(ctx, u, "t"); err != nil {
				t.Fatal(err)
			}
		}
		for i, members := range [][]string{{"u3", "u1"}, {"u1"}, nil} {
			g := &store.Group{ID: fmt.Sprintf("g%d", i), DisplayName: fmt.Sprintf("Staff %d", i%2), ExternalID: "x",
				Members: members, Version: 1, Created: time.UnixMilli(1e12).UTC()}
			if _, err := st.CreateGroup(ctx, g, "t"); err != nil {
				t.Fatal(err)
			}
		}
	}
	type answer struct {
		Users  []*store.User
		Groups []*store.Group
		Total  int
		Err    bool
	}
	same := func(what string, lite, pg answer) {
		t.Helper()
		if diff := cmp.Diff(lite, pg); diff != "" {
			t.Errorf("%s: PostgreSQL differs from SQLite (-sqlite +postgres):\n%s", what, diff)
		}
	}
	for _, q := range []store.Query{
		{}, {Limit: 3}, {Offset: 5}, {Offset: 2, Limit: 2}, {Offset: 10},
		{Attr: "username", Value: "USER3"}, {Attr: "email", Value: "shared1@example.COM", Limit: 2},
		{Attr: "externalid", Value: "ext-u4"}, {Attr: "id", Value: "u5"}, {Attr: "id", Value: "nobody"}, {Attr: "bogus"},
	} {
		var a [2]answer
		for i, r := range []store.Reader{lite, pg} {
			users, n, err := r.ListUsers(ctx, q)
			a[i] = answer{Users: users, Total: n, Err: err != nil}
		}
		same(fmt.Sprintf("ListUsers(%+v)", q), a[0], a[1])
	}
	for _, q := range []store.Query{
		{}, {Limit: 2}, {Offset: 1}, {Attr: "displayname", Value: "staff 1"}, {Attr: "externalid", Value: "x", Offset: 1},
		{Attr: "id", Value: "g0"}, {Attr: "member", Value: "u1"}, {Attr: "member", Value: "u3", Limit: 1}, {Attr: "username"},
	} {
		for _, withMembers := range []bool{false, true} {
			var a [2]answer
			for i, r := range []store.Reader{lite, pg} {
				groups, n, err := r.ListGroups(ctx, q, withMembers)
				a[i] = answer{Groups: groups, Total: n, Err: err != nil}
			}
			same(fmt.Sprintf("ListGroups(%+v, %v)", q, withMembers), a[0], a[1])
		}
	}
	for _, id := range []string{"u2", "g0", "nobody"} {
		var a [2]answer
		for i, r := range []store.Reader{lite, pg} {
			u, uerr := r.GetUser(ctx, id)
			g, gerr := r.GetGroup(ctx, id)
			if u != nil {
				a[i].Users = []*store.User{u}
			}
			if g != nil {
				a[i].Groups = []*store.Group{g}
			}
			a[i].Err = (uerr != nil && !errors.Is(uerr, store.ErrNotFound)) || (gerr != nil && !errors.Is(gerr, store.ErrNotFound))
		}
		same("Get "+id, a[0], a[1])
	}
}

func TestSQLite_Organizations(t *testing.T) {
	storetest.RunOrganizations(t, func(t *testing.T, opts ...store.Option) store.Store {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "portcullis.db"), opts...)
		return must(t, st, err)
	})
}

func TestPostgres_Organizations(t *testing.T) {
	storetest.PostgresAdmin(t)
	storetest.RunOrganizations(t, func(t *testing.T, opts ...store.Option) store.Store {
		dsn, _ := storetest.PostgresSchema(t)
		st, err := postgres.Open(context.Background(), dsn, opts...)
		return must(t, st, err)
	})
}
