package scimsync_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/scimsync"
	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/postgres"
	"github.com/portcullis-sso/portcullis/scimsync/store/sqlite"
	"github.com/portcullis-sso/portcullis/scimsync/store/storetest"
)

const edgeToken = "edge-0123456789abcdef"

// storeReader is what a SCIM service needs of a backend.
type storeReader interface {
	store.Store
	store.Reader
}

// backends open a fresh store of each kind; PostgreSQL skips without a
// server (and fails with PORTCULLIS_REQUIRE_PEERS).
var backends = []struct {
	name string
	open func(t *testing.T) storeReader
}{
	{"sqlite", func(t *testing.T) storeReader {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "portcullis.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
	{"postgres", func(t *testing.T) storeReader {
		dsn, _ := storetest.PostgresSchema(t)
		return storetest.Opened(postgres.Open(context.Background(), dsn))(t)
	}},
}

// scimClient talks to a real SCIM service over HTTP.
type scimClient struct {
	t   *testing.T
	url string
}

// newSCIMServer serves the SCIM API on st over a real socket.
func newSCIMServer(t *testing.T, st storeReader) *scimClient {
	t.Helper()
	ctx := context.Background()
	dir, err := scimsync.NewDirectory("userName")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir.Load(snap)
	tokens, err := scimsync.ParseTokens([]byte("edge " + edgeToken + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := url.Parse("https://app.example.com")
	svc, err := scimsync.NewService(scimsync.Options{
		Config: &config.Config{Public: pub, SCIM: config.SCIM{Enabled: true, BasePath: "/scim/v2",
			MaxBodyBytes: config.DefaultSCIMMaxBodyBytes, MaxPageSize: config.DefaultSCIMMaxPageSize}},
		Store: st, Reader: st, Directory: dir, Tokens: tokens,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	return &scimClient{t: t, url: srv.URL + "/scim/v2"}
}

// do sends a request (path may carry a raw query) and decodes the JSON answer.
func (c *scimClient) do(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+edgeToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			c.t.Fatalf("%s %s: answer is not JSON: %s", method, path, raw)
		}
	}
	return resp.StatusCode, m
}

// TestSCIM_NULInAnyValueIsRefusedAlikeOnEveryBackend: U+0000 cannot be
// stored in PostgreSQL text, so a SCIM value holding it used to be a 500
// there (and was stored on SQLite). Both now refuse it at the protocol
// edge: 400 invalidValue in a body, 400 invalidFilter in a filter, 404 in
// a resource ID; nothing is written.
func TestSCIM_NULInAnyValueIsRefusedAlikeOnEveryBackend(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			c := newSCIMServer(t, b.open(t))
			status, u := c.do("POST", "/Users", `{"userName":"dee@example.com","emails":[{"value":"dee@example.com","primary":true}]}`)
			if status != 201 {
				t.Fatalf("create: %d %v", status, u)
			}
			uid := u["id"].(string)
			status, g := c.do("POST", "/Groups", `{"displayName":"staff"}`)
			if status != 201 {
				t.Fatalf("create group: %d %v", status, g)
			}
			gid := g["id"].(string)
			patch := func(ops string) string {
				return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + ops + `]}`
			}
			filter := func(res, f string) string { return "/" + res + "?filter=" + url.QueryEscape(f) }
			tests := []struct {
				name, method, path, body string
				status                   int
				scimType                 string
			}{
				{"POST userName", "POST", "/Users", `{"userName":"a\u0000b@example.com"}`, 400, "invalidValue"},
				{"POST externalId", "POST", "/Users", `{"userName":"x@example.com","externalId":"e\u0000"}`, 400, "invalidValue"},
				{"POST email", "POST", "/Users", `{"userName":"y@example.com","emails":[{"value":"y\u0000@example.com"}]}`, 400, "invalidValue"},
				{"POST an attribute of our own", "POST", "/Users", `{"userName":"z@example.com","nickName":"\u0000"}`, 400, "invalidValue"},
				{"POST an attribute name", "POST", "/Users", `{"userName":"w@example.com","a\u0000b":"x"}`, 400, "invalidValue"},
				{"POST userName with U+001F", "POST", "/Users", `{"userName":"acme\u001fv@example.com"}`, 400, "invalidValue"},
				{"POST email with U+0007", "POST", "/Users", `{"userName":"u@example.com","emails":[{"value":"u\u0007@example.com"}]}`, 400, "invalidValue"},
				{"PUT userName", "PUT", "/Users/" + uid, `{"userName":"dee\u0000@example.com"}`, 400, "invalidValue"},
				{"PATCH replace userName", "PATCH", "/Users/" + uid, patch(`{"op":"replace","path":"userName","value":"dee\u0000"}`), 400, "invalidValue"},
				{"PATCH without a path", "PATCH", "/Users/" + uid, patch(`{"op":"replace","value":{"userName":"dee\u0000"}}`), 400, "invalidValue"},
				{"PATCH a path", "PATCH", "/Users/" + uid, patch(`{"op":"replace","path":"emails[value eq \"a\u0000\"].value","value":"x"}`), 400, "invalidValue"},
				{"POST group displayName", "POST", "/Groups", `{"displayName":"ops\u0000"}`, 400, "invalidValue"},
				{"POST group member", "POST", "/Groups", `{"displayName":"ops","members":[{"value":"\u0000"}]}`, 400, "invalidValue"},
				{"PATCH group member", "PATCH", "/Groups/" + gid, patch(`{"op":"add","path":"members","value":[{"value":"x\u0000"}]}`), 400, "invalidValue"},
				{"filter userName (indexed)", "GET", filter("Users", `userName eq "dee@example.com\u0000"`), "", 400, "invalidFilter"},
				{"filter externalId (indexed)", "GET", filter("Users", `externalId eq "\u0000"`), "", 400, "invalidFilter"},
				{"filter id (indexed)", "GET", filter("Users", `id eq "a\u0000"`), "", 400, "invalidFilter"},
				{"filter emails (scanned)", "GET", filter("Users", `emails[value eq "a\u0000"]`), "", 400, "invalidFilter"},
				{"filter a raw NUL byte", "GET", filter("Users", "userName eq \"a\x00b\""), "", 400, "invalidFilter"},
				{"filter group displayName", "GET", filter("Groups", `displayName eq "ops\u0000"`), "", 400, "invalidFilter"},
				{"filter group member", "GET", filter("Groups", `members[value eq "\u0000"]`), "", 400, "invalidFilter"},
				{"GET user id", "GET", "/Users/a%00b", "", 404, ""},
				{"PUT user id", "PUT", "/Users/a%00b", `{"userName":"v@example.com"}`, 404, ""},
				{"PATCH user id", "PATCH", "/Users/a%00b", patch(`{"op":"replace","path":"active","value":false}`), 404, ""},
				{"DELETE user id", "DELETE", "/Users/a%00b", "", 404, ""},
				{"GET group id", "GET", "/Groups/%00", "", 404, ""},
				{"GET user id not UTF-8", "GET", "/Users/%ff", "", 404, ""},
			}
			for _, tc := range tests {
				status, body := c.do(tc.method, tc.path, tc.body)
				if status != tc.status {
					t.Errorf("%s: status %d, want %d: %v", tc.name, status, tc.status, body)
					continue
				}
				if body["status"] != strconv.Itoa(tc.status) || body["detail"] == "" {
					t.Errorf("%s: not an RFC 7644 error body: %v", tc.name, body)
				}
				if tc.scimType != "" && body["scimType"] != tc.scimType {
					t.Errorf("%s: scimType %v, want %s", tc.name, body["scimType"], tc.scimType)
				}
			}
			// Nothing was written: one user, unchanged, and one group without members.
			status, list := c.do("GET", "/Users", "")
			if status != 200 || list["totalResults"] != float64(1) {
				t.Errorf("users after the refusals: %d %v", status, list)
			}
			if status, u := c.do("GET", "/Users/"+uid, ""); status != 200 || u["userName"] != "dee@example.com" {
				t.Errorf("user after the refusals: %d %v", status, u)
			}
			if status, g := c.do("GET", "/Groups/"+gid, ""); status != 200 || len(g["members"].([]any)) != 0 {
				t.Errorf("group after the refusals: %d %v", status, g)
			}
		})
	}
}
