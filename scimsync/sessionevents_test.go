package scimsync

import (
	"context"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// TestSessionEvents_CreatedInTheSignInsOrganization: a sign-in writes
// session.created in the principal's organization, naming the SCIM id
// that organization's directory holds for the user (the same address is
// another user, with another id, in another organization).
func TestSessionEvents_CreatedInTheSignInsOrganization(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openSQLite(t)
	dirs := NewDirectories()
	for org, id := range map[string]string{identity.DefaultOrg: "u-default", "acme": "u-acme"} {
		ost := st.ForOrg(org)
		if _, err := ost.CreateUser(ctx, &store.User{ID: id, UserName: "pat@shared.com", Email: "pat@shared.com", Active: true,
			Doc: []byte(`{}`)}, "test"); err != nil {
			t.Fatal(err)
		}
		d, err := NewDirectory("email")
		if err != nil {
			t.Fatal(err)
		}
		snap, err := ost.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d.Load(snap)
		dirs.Set(org, d)
	}
	se := NewSessionEvents(st.Deliveries(), dirs, "email", nil, nil)
	now := time.Now()
	for _, org := range []string{"acme", identity.DefaultOrg, "initech"} {
		se.Created(ctx, identity.Principal{User: "pat", Email: "pat@shared.com", Org: org}, "s-"+org, now, now.Add(time.Hour))
	}
	evs, err := st.EventsAfter(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range evs {
		if e.Kind == store.EventSessionCreated && e.Session != nil {
			got[store.OrgOrDefault(e.Org)+"/"+e.Session.ID] = e.Session.UserID
		}
	}
	want := map[string]string{"acme/s-acme": "u-acme", "default/s-default": "u-default", "initech/s-initech": ""}
	for k, v := range want {
		if id, ok := got[k]; !ok || id != v {
			t.Errorf("session.created %s: user id %q (written %v), want %q", k, id, ok, v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("session.created events: %v, want %v", got, want)
	}
}
