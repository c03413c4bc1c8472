package scimsync

import (
	"context"
	"testing"

	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/sqlite"
)

// openSQLite opens a SQLite store in the test's temporary directory and
// closes it when the test ends.
func openSQLite(t *testing.T, opts ...store.Option) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/dir.db", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
