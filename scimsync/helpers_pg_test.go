package scimsync_test

import (
	"context"
	"testing"

	"github.com/portcullis-sso/portcullis/scimsync/store/postgres"
)

// openPostgres opens the store in the schema dsn names, closed when t ends.
func openPostgres(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
