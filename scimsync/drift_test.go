package scimsync

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/internal/web"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// viewsOf is the default organization's view d alone.
func viewsOf(d *Directory) *Directories {
	ds := NewDirectories()
	ds.Set(identity.DefaultOrg, d)
	return ds
}

// A login is compared with its own organization's directory: alice of
// the default organization is known there, an alice of acme is not known
// in acme's (empty) directory, and an organization without a directory
// has nothing to disagree with.
func TestDrift_ComparesWithTheLoginsOwnOrganization(t *testing.T) {
	t.Parallel()
	ds := viewsOf(driftDir(t, "userName"))
	acme, err := NewDirectory("userName")
	if err != nil {
		t.Fatal(err)
	}
	ds.Set("acme", acme)
	d := NewDriftDetector(ds, driftConfig("user", "userName", ""), nil, nil)
	alice := identity.Principal{User: "alice", Email: "alice@example.com"}
	if got := d.Compare(alice); got != nil {
		t.Errorf("default alice: %+v, want no drift", got)
	}
	alice.Org = "acme"
	if got := kinds(d.Compare(alice)); !cmp.Equal(got, []string{metrics.DriftUnprovisioned}) {
		t.Errorf("acme alice: %v, want unprovisioned (acme's directory does not know her)", got)
	}
	alice.Org = "globex"
	if got := d.Compare(alice); got != nil {
		t.Errorf("globex (no directory) alice: %+v, want nothing", got)
	}
}

// driftDir is a directory with alice (active, in staff and Admins), bob
// (deactivated) and carol (deleted), matched on userName.
func driftDir(t *testing.T, matchAttr string) *Directory {
	t.Helper()
	d, err := NewDirectory(matchAttr)
	if err != nil {
		t.Fatal(err)
	}
	d.now = func() time.Time { return dt0.Add(time.Minute) } // carol's tombstone has not expired
	user := func(seq int64, kind, id, userName, email string, active bool) store.Event {
		return store.Event{Seq: seq, Time: dt0, Kind: kind, ResourceType: "User", ResourceID: id,
			User: &store.User{ID: id, UserName: userName, Email: email, ExternalID: "ext-" + id, Active: active}}
	}
	d.Apply([]store.Event{
		user(1, store.EventUserCreated, "u1", "alice", "alice@example.com", true),
		user(2, store.EventUserCreated, "u2", "bob", "bob@example.com", false),
		user(3, store.EventUserCreated, "u3", "carol", "carol@example.com", true),
		{Seq: 4, Time: dt0, Kind: store.EventUserDeleted, ResourceType: "User", ResourceID: "u3"},
		{Seq: 5, Time: dt0, Kind: store.EventGroupCreated, ResourceType: "Group", ResourceID: "g1", Group: &store.Group{ID: "g1", DisplayName: "staff"}},
		{Seq: 6, Time: dt0, Kind: store.EventGroupCreated, ResourceType: "Group", ResourceID: "g2", Group: &store.Group{ID: "g2", DisplayName: "Admins"}},
		{Seq: 7, Time: dt0, Kind: store.EventGroupMemberAdded, ResourceType: "Group", ResourceID: "g1", Members: []string{"u1"}},
		{Seq: 8, Time: dt0, Kind: store.EventGroupMemberAdded, ResourceType: "Group", ResourceID: "g2", Members: []string{"u1"}},
	})
	return d
}

func driftConfig(identityField, scimAttr, groupsAttr string) *config.Config {
	return &config.Config{
		SAML: config.SAML{Attributes: config.Attributes{User: "uid", Email: "mail", Groups: groupsAttr}},
		SCIM: config.SCIM{Enabled: true, Match: config.Match{IdentityField: identityField, SCIMAttribute: scimAttr}},
	}
}

func kinds(ds []Drift) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Kind)
	}
	return out
}

func TestDrift_Compare(t *testing.T) {
	t.Parallel()
	alice := identity.Principal{User: "alice", Email: "alice@example.com", Groups: []string{"Admins", "staff"}}
	for _, tc := range []struct {
		name      string
		cfg       *config.Config
		matchAttr string
		p         identity.Principal
		want      []string
	}{
		{"consistent: no drift", driftConfig("user", "userName", "groups"), "userName", alice, nil},
		{"user key matches case-insensitively, as the gate does", driftConfig("user", "userName", "groups"), "userName",
			identity.Principal{User: "ALICE", Email: "Alice@Example.com", Groups: []string{"staff", "Admins"}}, nil},
		{"never provisioned", driftConfig("user", "userName", "groups"), "userName",
			identity.Principal{User: "mallory", Email: "mallory@example.com"}, []string{metrics.DriftUnprovisioned}},
		{"assertion lacks the match field", driftConfig("email", "email", "groups"), "email",
			identity.Principal{User: "alice"}, []string{metrics.DriftUnprovisioned}},
		{"deactivated in SCIM", driftConfig("user", "userName", "groups"), "userName",
			identity.Principal{User: "bob", Email: "bob@example.com"}, []string{metrics.DriftInactive}},
		{"deleted in SCIM", driftConfig("user", "userName", "groups"), "userName",
			identity.Principal{User: "carol", Email: "carol@example.com"}, []string{metrics.DriftInactive}},
		{"email differs", driftConfig("user", "userName", "groups"), "userName",
			identity.Principal{User: "alice", Email: "alice.smith@example.com", Groups: alice.Groups}, []string{metrics.DriftEmailMismatch}},
		{"groups differ only in case: a mismatch, since allowGroups compares case-sensitively", driftConfig("user", "userName", "groups"), "userName",
			identity.Principal{User: "alice", Email: "alice@example.com", Groups: []string{"admins", "staff"}}, []string{metrics.DriftGroupsMismatch}},
		{"a group missing from the assertion", driftConfig("user", "userName", "groups"), "userName",
			identity.Principal{User: "alice", Email: "alice@example.com", Groups: []string{"staff"}}, []string{metrics.DriftGroupsMismatch}},
		{"groups not compared when the assertion carries none", driftConfig("user", "userName", ""), "userName",
			identity.Principal{User: "alice", Email: "alice@example.com"}, nil},
		{"email and groups both differ", driftConfig("user", "userName", "groups"), "userName",
			identity.Principal{User: "alice", Email: "a@example.org"}, []string{metrics.DriftEmailMismatch, metrics.DriftGroupsMismatch}},
		{"matched by email against externalId", driftConfig("email", "externalId", ""), "externalId",
			identity.Principal{User: "x", Email: "ext-u1"}, []string{metrics.DriftEmailMismatch}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := NewDriftDetector(viewsOf(driftDir(t, tc.matchAttr)), tc.cfg, nil, nil)
			got := d.Compare(tc.p)
			if diff := cmp.Diff(tc.want, kinds(got)); diff != "" {
				t.Errorf("drift kinds (-want +got):\n%s\n%+v", diff, got)
			}
		})
	}
}

// Check counts each drift and writes one identity_drift audit event per
// drift with the request ID; a consistent login does neither.
func TestDrift_CheckAuditsAndCounts(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.InfoLevel)
	m := metrics.New()
	d := NewDriftDetector(viewsOf(driftDir(t, "userName")), driftConfig("user", "userName", "groups"), zap.New(core).Named("audit"), m)
	ctx := web.WithRequestID(context.Background(), "req-1")

	if got := d.Check(ctx, identity.Principal{User: "alice", Email: "alice@example.com", Groups: []string{"Admins", "staff"}}); got != nil {
		t.Fatalf("consistent login reported %+v", got)
	}
	if logs.Len() != 0 {
		t.Fatalf("consistent login logged %d entries", logs.Len())
	}
	d.Check(ctx, identity.Principal{User: "mallory", Email: "mallory@example.com"})
	d.Check(ctx, identity.Principal{User: "alice", Email: "alice.smith@example.com", Groups: []string{"staff"}})

	for kind, want := range map[string]float64{metrics.DriftUnprovisioned: 1, metrics.DriftEmailMismatch: 1,
		metrics.DriftGroupsMismatch: 1, metrics.DriftInactive: 0} {
		if got, _, _ := metrics.Value(m.Gatherer(), metrics.NameIdentityDrift, "kind", kind); got != want {
			t.Errorf("identity_drift{%s} = %v, want %v", kind, got, want)
		}
	}
	events := logs.FilterField(zap.String("event", "identity_drift")).All()
	if len(events) != 3 {
		t.Fatalf("%d identity_drift events, want 3", len(events))
	}
	e := events[2].ContextMap()
	want := map[string]any{"event": "identity_drift", "kind": metrics.DriftGroupsMismatch, "user": "alice", "organization": "default",
		"detail": "only in the assertion: none; only in SCIM: Admins", "request_id": "req-1"}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("audit event (-want +got):\n%s", diff)
	}
}
