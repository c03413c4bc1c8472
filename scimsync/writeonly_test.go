package scimsync

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/portcullis-sso/portcullis/scimsync/store/storetest"
)

// TestSCIM_RFC7643_4_1_1_PasswordIsWriteOnly: a password (Okta sends one
// with "sync password") is accepted on every write and then forgotten: never
// returned, not even when asked for, never matched by a filter, and never
// written to the user row, the event log, the database file or a log line.
func TestSCIM_RFC7643_4_1_1_PasswordIsWriteOnly(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	n := 0
	var secrets []string
	secret := func() string {
		n++
		s := fmt.Sprintf("Pl4nted-S3cret-%d-hunter2", n)
		secrets = append(secrets, s)
		return s
	}
	noSecret := func(what, raw string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(raw, s) {
				t.Errorf("%s holds a password: %s", what, raw)
			}
		}
		if strings.Contains(strings.ToLower(raw), `"password"`) {
			t.Errorf("%s names a password attribute: %s", what, raw)
		}
	}
	patch := func(ops string) string {
		return `{"schemas":["` + SchemaPatchOp + `"],"Operations":[` + ops + `]}`
	}

	r := h.mustStatus(h.req("POST", "/Users", fmt.Sprintf(`{"schemas":["`+SchemaUser+`"],"userName":"okta@example.com","password":%q,"displayName":"O","active":true}`, secret())), 201)
	noSecret("POST answer", r.raw)
	id := r.body["id"].(string)
	version := r.body["meta"].(map[string]any)["version"]

	t.Run("a PATCH that only sets a password changes nothing", func(t *testing.T) {
		events := countEvents(t, h)
		r := h.mustStatus(h.req("PATCH", "/Users/"+id, patch(fmt.Sprintf(`{"op":"replace","path":"password","value":%q}`, secret()))), 200)
		noSecret("PATCH answer", r.raw)
		if v := r.body["meta"].(map[string]any)["version"]; v != version {
			t.Errorf("version %v after a password-only PATCH, want %v", v, version)
		}
		if got := countEvents(t, h); got != events {
			t.Errorf("%d events after a password-only PATCH, want %d", got, events)
		}
	})

	writes := []struct{ name, method, body string }{
		{"PUT", "PUT", fmt.Sprintf(`{"userName":"okta@example.com","Password":%q,"displayName":"P"}`, secret())},
		{"PATCH add path", "PATCH", patch(fmt.Sprintf(`{"op":"add","path":"password","value":%q},{"op":"replace","path":"displayName","value":"Q"}`, secret()))},
		{"PATCH replace URN path", "PATCH", patch(fmt.Sprintf(`{"op":"replace","path":"%s:password","value":%q},{"op":"replace","path":"displayName","value":"R"}`, SchemaUser, secret()))},
		{"PATCH value object", "PATCH", patch(fmt.Sprintf(`{"op":"replace","value":{"PASSWORD":%q,"displayName":"S"}}`, secret()))},
		{"PATCH value object with URN name", "PATCH", patch(fmt.Sprintf(`{"op":"add","value":{"%s:password":%q,"displayName":"T"}}`, SchemaUser, secret()))},
		{"PATCH remove", "PATCH", patch(`{"op":"remove","path":"password"},{"op":"replace","path":"displayName","value":"U"}`)},
	}
	for _, w := range writes {
		r := h.req(w.method, "/Users/"+id, w.body)
		if r.status != 200 {
			t.Errorf("%s: status %d, want 200: %s", w.name, r.status, r.raw)
		}
		noSecret(w.name+" answer", r.raw)
	}

	reads := []string{
		"/Users/" + id,
		"/Users/" + id + "?attributes=password",
		"/Users/" + id + "?attributes=" + url.QueryEscape(SchemaUser+":password"),
		"/Users",
		"/Users?attributes=password,userName",
		"/Users?filter=" + url.QueryEscape(`userName eq "okta@example.com"`),
		"/Users?filter=" + url.QueryEscape(`displayName pr`) + "&attributes=password",
	}
	for _, path := range reads {
		r := h.mustStatus(h.req("GET", path, ""), 200)
		noSecret("GET "+path, r.raw)
	}
	for _, f := range []string{`password pr`, fmt.Sprintf(`password eq %q`, secrets[0])} {
		r := h.mustStatus(h.req("GET", "/Users?filter="+url.QueryEscape(f), ""), 200)
		if r.body["totalResults"] != float64(0) {
			t.Errorf("filter %s matched %v users", f, r.body["totalResults"])
		}
	}

	h.mustStatus(h.req("DELETE", "/Users/"+id, ""), 204)
	for _, table := range []string{"users", "events"} {
		col := map[string]string{"users": "doc", "events": "data"}[table]
		rows, err := storetest.SQLiteFile(t, h.path).Query(`SELECT CAST(` + col + ` AS TEXT) FROM ` + table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s *string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			if s != nil {
				noSecret(table+" row", *s)
			}
		}
		rows.Close()
	}
	for _, f := range sqliteFiles(t, h.path) {
		for _, s := range secrets {
			if bytes.Contains(f.data, []byte(s)) {
				t.Errorf("%s holds password %q", f.name, s)
			}
		}
	}
	for _, e := range h.logs.AllUntimed() {
		noSecret("log line "+e.Message, fmt.Sprint(e.ContextMap()))
	}
}

func TestSCIM_RFC7643_7_SchemaSaysPasswordIsWriteOnly(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	sc := h.mustStatus(h.req("GET", "/Schemas/"+SchemaUser, ""), 200)
	for _, a := range sc.body["attributes"].([]any) {
		a := a.(map[string]any)
		if a["name"] != "password" {
			continue
		}
		if a["mutability"] != "writeOnly" || a["returned"] != "never" || a["type"] != "string" {
			t.Errorf("password attribute %v, want mutability writeOnly, returned never, type string", a)
		}
		return
	}
	t.Error("the User schema does not describe password")
}

func countEvents(t *testing.T, h *scimHarness) int {
	t.Helper()
	var n int
	if err := storetest.SQLiteFile(t, h.path).QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

type rawFile struct {
	name string
	data []byte
}

// sqliteFiles reads the store's database file and its WAL as they are on disk.
func sqliteFiles(t *testing.T, path string) []rawFile {
	t.Helper()
	var out []rawFile
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		out = append(out, rawFile{name: p, data: b})
	}
	return out
}
