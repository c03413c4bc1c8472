package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// RenumberedMain turns a fresh database into what main built from
// cce1afb to 99af8fe left: migrations 1 and 2, and as version 3 the drop
// of passwords, which a merge later renumbered 0004 while match keys
// became 0003. A binary of that era applied no match key table or index,
// and the merged binary, seeing version 3 applied, skipped them.
var RenumberedMain = []string{
	`DROP TABLE match_key_cutoffs`,
	`DROP INDEX users_user_name_key`,
	`DROP INDEX users_email_key`,
	`DROP INDEX users_external_id_key`,
	`DELETE FROM schema_migrations WHERE version > 3`,
}

// CheckMatchKeys checks that st keeps match keys: a second user cannot
// take a key, and a rename leaves cut-offs a snapshot carries.
func CheckMatchKeys(t *testing.T, st store.Store) {
	t.Helper()
	ctx := context.Background()
	createUsers(t, st, NewUser("u1", "alice"))
	if _, err := st.CreateUser(ctx, NewUser("u2", "ALICE"), "test"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a second user with alice's key: %v, want a conflict", err)
	}
	if _, err := st.UpdateUser(ctx, "u1", func(cur *store.User) (*store.User, error) {
		n := next(cur)
		n.UserName = "alicia"
		return n, nil
	}, "test"); err != nil {
		t.Fatalf("rename: %v", err)
	}
	if s := snapshot(t, st); len(s.Cutoffs) != 2 {
		t.Errorf("after a rename the snapshot has cut-offs %+v, want the old and the new key's", s.Cutoffs)
	}
}
