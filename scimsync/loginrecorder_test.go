package scimsync

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/sqlite"
)

func TestLoginRecorder_RecordsUnderTheMatchKey(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/dir.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC().Truncate(time.Millisecond)
	p := identity.Principal{User: "Alice", Email: "Alice@Example.com"}
	gone, cancel := context.WithCancel(context.Background())
	cancel() // the browser went away after the ACS answered: the login still counts
	for field, subject := range map[string]string{"email": "alice@example.com", "user": "alice"} {
		NewLoginRecorder(st.Ledger(), field, nil).Record(gone, p, store.Login{SessionID: "s-" + field, Issued: now, Expires: now.Add(time.Hour)})
		got, err := st.Ledger().LoginsOf(context.Background(), "", subject, time.Time{}, now)
		if err != nil {
			t.Fatal(err)
		}
		if got.LiveTotal != 1 || got.Live[0].SessionID != "s-"+field || got.Live[0].User != "Alice" {
			t.Errorf("identityField %s: LoginsOf(%s) = %+v, want session s-%s of Alice", field, subject, got, field)
		}
	}
}

func TestLoginRecorder_StoreFailureIsLoggedNotRaised(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/dir.db")
	if err != nil {
		t.Fatal(err)
	}
	st.Close() // every write now fails
	core, logs := observer.New(zapcore.WarnLevel)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the browser went away: the write does not depend on it
	var nilRecorder *LoginRecorder
	nilRecorder.Record(ctx, identity.Principal{User: "x"}, store.Login{SessionID: "s", Issued: time.Now(), Expires: time.Now()}) // no ledger: nothing
	NewLoginRecorder(st.Ledger(), "email", zap.New(core)).Record(ctx, identity.Principal{User: "bob", Email: "bob@example.com"},
		store.Login{SessionID: "s1", Issued: time.Now(), Expires: time.Now().Add(time.Hour)})
	entries := logs.All()
	if len(entries) != 1 || entries[0].ContextMap()["user"] != "bob" || !strings.Contains(entries[0].Message, "ledger") {
		t.Errorf("want one warning naming bob, got %+v", entries)
	}
}
