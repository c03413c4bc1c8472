package storetest

import (
	"database/sql"
	"io"
	"testing"
)

// Opened takes what an Open returned and gives, for a test t, the store,
// closed when t ends; an error fails t:
//
//	st := storetest.Opened(postgres.Open(ctx, dsn))(t)
func Opened[S io.Closer](st S, err error) func(t testing.TB) S {
	return func(t testing.TB) S {
		t.Helper()
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
}

// SQLiteFile opens the SQLite database at path directly, beside any store
// (the caller imports a driver named "sqlite": store/sqlite does), and
// closes it when t ends.
func SQLiteFile(t testing.TB, path string) *sql.DB {
	t.Helper()
	return Opened(sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)"))(t)
}
