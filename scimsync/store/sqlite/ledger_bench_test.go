package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/storetest"
)

// benchLedgerEvents is the event log size of the ledger benchmarks: years
// of changes for a 100k-user directory.
const benchLedgerEvents = 1_000_000

// benchLedgerStore is a SQLite store whose event log holds n events spread
// over the last 30 days, kinds in rotation, every storetest.BenchOrgEvery-th
// of organization storetest.BenchOrg, written raw in one transaction
// (events only: EventStats reads nothing else).
func benchLedgerStore(b *testing.B, n int) *Store {
	b.Helper()
	began := time.Now()
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(b.TempDir(), "portcullis.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	tx, err := st.w.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO events (time, kind, resource_type, resource_id, actor, data, org) VALUES (?, ?, 'User', ?, 'okta', NULL, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now().Add(-30 * 24 * time.Hour).UnixMilli()
	step := (30 * 24 * time.Hour).Milliseconds() / int64(n)
	for i := range n {
		org := store.DefaultOrg
		if i%storetest.BenchOrgEvery == 0 {
			org = storetest.BenchOrg
		}
		if _, err := ins.ExecContext(ctx, start+int64(i)*step, store.EventKinds[i%len(store.EventKinds)], fmt.Sprintf("u%d", i), org); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d events written in %s", n, time.Since(began).Round(time.Millisecond))
	return st
}

// BenchmarkEventStats_SQLite1M is what the status page's sync section costs
// on a large event log: the last event of each kind and the last hour's count.
func BenchmarkEventStats_SQLite1M(b *testing.B) {
	storetest.BenchEventStats(b, benchLedgerStore(b, benchLedgerEvents))
}

// BenchmarkRecordLogin_SQLite is the ledger write each sign-in adds (one
// synced transaction), with 10k live sessions already recorded.
func BenchmarkRecordLogin_SQLite(b *testing.B) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(b.TempDir(), "portcullis.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	now := time.Now()
	for i := range 10_000 {
		if err := st.Ledger().RecordLogin(ctx, store.Login{MatchKey: fmt.Sprintf("user%05d@example.com", i%1000), User: "u",
			SessionID: fmt.Sprintf("warm-%d", i), Issued: now, Expires: now.Add(8 * time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	b.ResetTimer()
	for b.Loop() {
		i++
		if err := st.Ledger().RecordLogin(ctx, store.Login{MatchKey: fmt.Sprintf("user%05d@example.com", i%1000), User: "u",
			SessionID: fmt.Sprintf("s-%d", i), Issued: now, Expires: now.Add(8 * time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
}
