package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// PlantedPasswords is what a version that kept passwords wrote: users whose
// documents hold a password in the spellings it stored them under, their
// user.created and user.updated events, and a deleted user whose events
// outlive it. Documents are json.Marshal of the object, as the SCIM edge
// wrote them, but for one written with spaces, which the event log keeps in
// base64.
type PlantedPasswords struct {
	Secrets []string
	clean   []byte // a document without a password, which must not change
	ids     []string
}

// PlantPasswords writes them into st through its own write methods.
func PlantPasswords(t *testing.T, st store.Store) PlantedPasswords {
	t.Helper()
	ctx := context.Background()
	var p PlantedPasswords
	secret := func() string {
		s := "Pl4nted-" + strconv.Itoa(len(p.Secrets)+1) + "-hunter2"
		p.Secrets = append(p.Secrets, s)
		return s
	}
	doc := func(m map[string]any) []byte {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	create := func(id, userName string, d []byte) {
		u := &store.User{ID: id, UserName: userName, Active: true, Doc: d, Version: 1, Created: now, LastModified: now, ValidAfter: now}
		if _, err := st.CreateUser(ctx, u, "okta"); err != nil {
			t.Fatal(err)
		}
		p.ids = append(p.ids, id)
	}
	schemas := []any{"urn:ietf:params:scim:schemas:core:2.0:User"}
	create("u1", "okta@example.com", doc(map[string]any{"schemas": schemas, "userName": "okta@example.com", "password": secret(), "displayName": "O <&>"}))
	if _, err := st.UpdateUser(ctx, "u1", func(cur *store.User) (*store.User, error) {
		next := *cur
		next.Version++
		next.Doc = doc(map[string]any{"schemas": schemas, "userName": "okta@example.com", "Password": secret(), "displayName": "O2"})
		return &next, nil
	}, "okta"); err != nil {
		t.Fatal(err)
	}
	create("u2", "urn@example.com", doc(map[string]any{"userName": "urn@example.com",
		"urn:ietf:params:scim:schemas:core:2.0:User:password": secret(),
		"urn:ietf:params:scim:schemas:core:2.0:User":          map[string]any{"password": secret(), "nickName": "n"}}))
	create("u3", "spaced@example.com", []byte(`{"userName": "spaced@example.com", "PASSWORD": "`+secret()+`"}`))
	create("u4", "gone@example.com", doc(map[string]any{"userName": "gone@example.com", "password": secret()}))
	if _, err := st.DeleteUser(ctx, "u4", func(*store.User) error { return nil }, "okta"); err != nil {
		t.Fatal(err)
	}
	p.clean = doc(map[string]any{"userName": "clean@example.com", "title": "password policy owner", "n": json.Number("1.50")})
	create("u5", "clean@example.com", p.clean)
	return p
}

// MigrationCount is how many migrations the calling test's package has in
// migrations/*.sql.
func MigrationCount(t testing.TB) int {
	t.Helper()
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	return len(files)
}

// MigrationNumber is the number of the migration dir/*_key (key
// "drop_passwords.sql" for the one that drops passwords).
func MigrationNumber(t *testing.T, dir, key string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*_"+key))
	if err != nil || len(files) != 1 {
		t.Fatalf("want one %s/*_%s, got %v (%v)", dir, key, files, err)
	}
	num, _, _ := strings.Cut(filepath.Base(files[0]), "_")
	v, err := strconv.Atoi(num)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// checkScrubbed reads every user and event back through the store: no
// secret, no password attribute, the clean document byte for byte.
func (p PlantedPasswords) CheckScrubbed(t *testing.T, st store.Store) {
	t.Helper()
	ctx := context.Background()
	snap, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := st.EventsAfter(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, su := range snap.Users {
		u, err := storedUser(t, st, su.ID) // the snapshot carries no documents
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, u.Doc)
		if u.UserName == "clean@example.com" && !bytes.Equal(u.Doc, p.clean) {
			t.Errorf("a document without a password changed: %s, want %s", u.Doc, p.clean)
		}
	}
	for _, e := range evs {
		if e.User != nil {
			docs = append(docs, e.User.Doc)
		}
	}
	if len(snap.Users) != 4 || len(evs) != 7 {
		t.Errorf("%d users and %d events after the migration, want 4 and 7", len(snap.Users), len(evs))
	}
	for _, d := range docs {
		if strings.Contains(strings.ToLower(string(d)), `password"`) {
			t.Errorf("a document still holds a password: %s", d)
		}
		if !json.Valid(d) {
			t.Errorf("a document is no longer JSON: %s", d)
		}
	}
}

// FindIn returns the planted secrets b holds.
func (p PlantedPasswords) FindIn(b []byte) []string {
	var found []string
	for _, s := range p.Secrets {
		if bytes.Contains(b, []byte(s)) {
			found = append(found, s)
		}
	}
	return found
}
