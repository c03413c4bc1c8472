package scimsync

import (
	"context"
	"testing"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// countingStore counts EventsAfter reads and serves a log of n events.
type countingStore struct {
	store.Store
	n     int64
	reads int
}

func (c *countingStore) EventsAfter(_ context.Context, seq int64, limit int) ([]store.Event, error) {
	c.reads++
	var evs []store.Event
	for s := seq + 1; s <= c.n && len(evs) < limit; s++ {
		org := "acme"
		if s%2 == 0 {
			org = identity.DefaultOrg
		}
		evs = append(evs, store.Event{Seq: s, Org: org, Kind: "test.noop"})
	}
	return evs, nil
}

// Directories hands one read of the log to every view: each ends at the
// log's end, and with no view at all nothing is read (a position of 0
// would otherwise re-read the whole log forever).
func TestDirectories_CatchUpReadsOnceForEveryViewAndNeverSpinsEmpty(t *testing.T) {
	t.Parallel()
	st := &countingStore{n: 2500}
	ds := NewDirectories()
	if err := ds.catchUpFrom(context.Background(), st, false); err != nil || st.reads != 0 {
		t.Fatalf("no views: err %v, %d reads; want none", err, st.reads)
	}
	for _, org := range []string{identity.DefaultOrg, "acme"} {
		d, err := NewDirectory("userName")
		if err != nil {
			t.Fatal(err)
		}
		ds.Set(org, d)
	}
	if err := ds.catchUpFrom(context.Background(), st, false); err != nil {
		t.Fatal(err)
	}
	if st.reads != 3 { // 1000 + 1000 + 500
		t.Errorf("%d reads of the log, want 3 (one per page, shared by both views)", st.reads)
	}
	for _, org := range ds.Orgs() {
		if got := ds.Get(org).Seq(); got != 2500 {
			t.Errorf("%s's view at seq %d, want 2500", org, got)
		}
	}
}
