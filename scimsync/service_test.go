package scimsync

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/sqlite"
)

const (
	testToken  = "okta-0123456789abcdef"
	otherToken = "entra-0123456789abcdef"
)

type scimHarness struct {
	t     *testing.T
	srv   *httptest.Server
	dir   *Directory
	store *sqlite.Store
	path  string // the store's database file
	logs  *observer.ObservedLogs
	clock *fakeClock
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond) // every call moves on, like a real clock
	return c.now
}

func newSCIM(t *testing.T) *scimHarness { t.Helper(); return newSCIMMatch(t, "userName") }

// newSCIMMatch is newSCIM with scim.match.scimAttribute attr.
func newSCIMMatch(t *testing.T, attr string) *scimHarness {
	t.Helper()
	return newSCIMWith(t, attr, nil)
}

// newSCIMWith is newSCIMMatch whose handlers read through wrap(store),
// unless wrap is nil.
func newSCIMWith(t *testing.T, attr string, wrap func(store.Reader) store.Reader) *scimHarness {
	t.Helper()
	ctx := context.Background()
	clock := &fakeClock{now: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	path := t.TempDir() + "/dir.db"
	// The store's times (events, match key cut-offs) on the same clock.
	st, err := sqlite.Open(ctx, path, store.WithMatchRule(store.MatchRule{Attribute: attr}), store.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir, err := NewDirectory(attr)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir.Load(snap)
	tokens, err := ParseTokens([]byte("okta " + testToken + "\n" + otherToken + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := url.Parse("https://app.example.com")
	cfg := &config.Config{Public: pub, SCIM: config.SCIM{Enabled: true, BasePath: "/scim/v2", MaxBodyBytes: 64 << 10, MaxPageSize: 100,
		Bulk:  config.Bulk{MaxOperations: 20, MaxPayloadSize: 64 << 10},
		Match: config.Match{IdentityField: "email", SCIMAttribute: attr}}}
	core, logs := observer.New(zapcore.DebugLevel)
	dir.now = clock.Now
	var rd store.Reader = st
	if wrap != nil {
		rd = wrap(st)
	}
	ender, err := NewSessionEnder(st, viewsOf(dir), zap.New(core).Named("audit"), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(Options{
		Config: cfg, Store: st, Reader: rd, Directory: dir, Tokens: tokens,
		Logger: zap.New(core).Named("scimsync"), Audit: zap.New(core).Named("audit"), Now: clock.Now,
		Ender: ender,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	return &scimHarness{t: t, srv: srv, dir: dir, store: st, path: path, logs: logs, clock: clock}
}

type scimResp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (h *scimHarness) req(method, path, body string, hdr ...string) scimResp {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+"/scim/v2"+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := scimResp{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			h.t.Fatalf("%s %s: response is not JSON: %s", method, path, raw)
		}
	}
	if resp.StatusCode != http.StatusNotModified && resp.StatusCode != http.StatusNoContent &&
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/scim+json") {
		h.t.Errorf("%s %s: Content-Type %q", method, path, resp.Header.Get("Content-Type"))
	}
	return r
}

func (h *scimHarness) mustStatus(r scimResp, want int) scimResp {
	h.t.Helper()
	if r.status != want {
		h.t.Fatalf("status %d, want %d: %s", r.status, want, r.raw)
	}
	return r
}

func userBody(userName string, active bool) string {
	return fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,
	"name":{"givenName":"A","familyName":"B"},"emails":[{"primary":true,"value":%q,"type":"work"}],
	"displayName":"A B","externalId":"ext-%s","active":%v}`, userName, userName, userName, active)
}

func (h *scimHarness) createUser(userName string) string {
	h.t.Helper()
	r := h.mustStatus(h.req("POST", "/Users", userBody(userName, true)), 201)
	return r.body["id"].(string)
}

func assertSCIMError(t *testing.T, r scimResp, status int, scimType string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if r.body["status"] != fmt.Sprint(status) {
		t.Errorf("error body status %v, want the string %q", r.body["status"], fmt.Sprint(status))
	}
	if d, _ := r.body["detail"].(string); d == "" {
		t.Error("error body has no detail")
	}
	if scimType != "" && r.body["scimType"] != scimType {
		t.Errorf("scimType %v, want %s", r.body["scimType"], scimType)
	}
	schemas, _ := r.body["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != SchemaError {
		t.Errorf("schemas %v", schemas)
	}
}

func TestSCIM_RFC7644_2_Authentication(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	for name, auth := range map[string]string{
		"no header": "", "wrong token": "Bearer nope-nope-nope-nope", "basic": "Basic " + testToken, "empty bearer": "Bearer ",
	} {
		t.Run(name, func(t *testing.T) {
			r := h.req("GET", "/Users", "", "Authorization", auth)
			assertSCIMError(t, r, 401, "")
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	// The second line of the tokens file works too (rotation).
	h.mustStatus(h.req("GET", "/Users", "", "Authorization", "Bearer "+otherToken), 200)
	for _, e := range h.logs.All() {
		if strings.Contains(fmt.Sprint(e.ContextMap()), testToken) {
			t.Errorf("a token reached the logs: %v", e.ContextMap())
		}
	}
}

func TestSCIM_RFC7644_3_1_MediaTypes(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	h.mustStatus(h.req("POST", "/Users", userBody("a@example.com", true), "Content-Type", "application/json"), 201)
	h.mustStatus(h.req("POST", "/Users", userBody("b@example.com", true), "Content-Type", ""), 201)
	h.mustStatus(h.req("POST", "/Users", userBody("c@example.com", true), "Content-Type", "application/scim+json; charset=utf-8"), 201)
	assertSCIMError(t, h.req("POST", "/Users", userBody("d@example.com", true), "Content-Type", "text/plain"), 415, "")
}

func TestSCIM_RFC7644_3_3_CreateUser(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	r := h.mustStatus(h.req("POST", "/Users", userBody("Alice@Example.com", true)), 201)
	id, _ := r.body["id"].(string)
	if id == "" {
		t.Fatal("no id")
	}
	if r.header.Get("Location") != "https://app.example.com/scim/v2/Users/"+id {
		t.Errorf("Location %q", r.header.Get("Location"))
	}
	meta, _ := r.body["meta"].(map[string]any)
	for _, k := range []string{"created", "lastModified", "location", "version", "resourceType"} {
		if meta[k] == nil || meta[k] == "" {
			t.Errorf("meta.%s missing", k)
		}
	}
	if r.header.Get("ETag") != meta["version"] {
		t.Errorf("ETag %q != meta.version %v", r.header.Get("ETag"), meta["version"])
	}
	t.Run("userName unique case-insensitively", func(t *testing.T) {
		assertSCIMError(t, h.req("POST", "/Users", userBody("alice@example.COM", true)), 409, "uniqueness")
	})
	t.Run("retried create makes no duplicate", func(t *testing.T) {
		assertSCIMError(t, h.req("POST", "/Users", userBody("Alice@Example.com", true)), 409, "uniqueness")
		l := h.mustStatus(h.req("GET", `/Users?filter=userName%20eq%20"alice@example.com"`, ""), 200)
		if l.body["totalResults"] != float64(1) {
			t.Errorf("totalResults %v", l.body["totalResults"])
		}
	})
	t.Run("client id and meta ignored", func(t *testing.T) {
		r := h.mustStatus(h.req("POST", "/Users", `{"id":"mine","meta":{"version":"x"},"userName":"z@example.com"}`), 201)
		if r.body["id"] == "mine" {
			t.Error("client chose the id")
		}
	})
	t.Run("userName required", func(t *testing.T) {
		assertSCIMError(t, h.req("POST", "/Users", `{"displayName":"x"}`), 400, "invalidValue")
	})
	t.Run("enterprise manager as a bare string", func(t *testing.T) {
		r := h.mustStatus(h.req("POST", "/Users", `{"userName":"m@example.com","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":"boss-1","department":"R&D"}}`), 201)
		ext, _ := r.body[SchemaEnterprise].(map[string]any)
		mgr, _ := ext["manager"].(map[string]any)
		if mgr["value"] != "boss-1" {
			t.Errorf("manager %v", ext["manager"])
		}
	})
}

func TestSCIM_RFC7644_3_12_BadInput(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	assertSCIMError(t, h.req("POST", "/Users", `{"userName": `), 400, "invalidSyntax")
	assertSCIMError(t, h.req("POST", "/Users", `[1,2]`), 400, "invalidSyntax")
	assertSCIMError(t, h.req("POST", "/Users", `{"userName":"x@y.z"} trailing`), 400, "invalidSyntax")
	big := `{"userName":"big@example.com","displayName":"` + strings.Repeat("x", 70<<10) + `"}`
	assertSCIMError(t, h.req("POST", "/Users", big), 413, "")
	assertSCIMError(t, h.req("GET", `/Users?filter=userName%20eq`, ""), 400, "invalidFilter")
	assertSCIMError(t, h.req("GET", "/Users/does-not-exist", ""), 404, "")
	assertSCIMError(t, h.req("POST", "/Bulk", `{}`), 400, "invalidSyntax") // bulk_test.go
	assertSCIMError(t, h.req("GET", "/Me", ""), 501, "")
	assertSCIMError(t, h.req("GET", "/Nope", ""), 404, "")
}

func TestSCIM_RFC7644_3_4_GetAndList(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, h.createUser(fmt.Sprintf("user%d@example.com", 4-i)))
	}
	t.Run("get, trailing slash, unknown parameter", func(t *testing.T) {
		r := h.mustStatus(h.req("GET", "/Users/"+ids[0]+"/?foo=bar", ""), 200)
		if r.body["userName"] != "user4@example.com" {
			t.Errorf("userName %v", r.body["userName"])
		}
	})
	t.Run("3.14 If-None-Match", func(t *testing.T) {
		r := h.mustStatus(h.req("GET", "/Users/"+ids[0], ""), 200)
		h.mustStatus(h.req("GET", "/Users/"+ids[0], "", "If-None-Match", r.header.Get("ETag")), 304)
	})
	t.Run("filter userName eq is case-insensitive", func(t *testing.T) {
		r := h.mustStatus(h.req("GET", "/Users?filter="+url.QueryEscape(`userName eq "USER2@example.com"`), ""), 200)
		if r.body["totalResults"] != float64(1) {
			t.Fatalf("totalResults %v", r.body["totalResults"])
		}
	})
	t.Run("general filter", func(t *testing.T) {
		r := h.mustStatus(h.req("GET", "/Users?filter="+url.QueryEscape(`emails[type eq "work"].value sw "user1" or userName eq "user3@example.com"`), ""), 200)
		if r.body["totalResults"] != float64(2) {
			t.Fatalf("totalResults %v: %s", r.body["totalResults"], r.raw)
		}
	})
	t.Run("3.4.2.4 pagination", func(t *testing.T) {
		r := h.mustStatus(h.req("GET", "/Users?startIndex=2&count=2", ""), 200)
		if r.body["totalResults"] != float64(5) || r.body["itemsPerPage"] != float64(2) || r.body["startIndex"] != float64(2) {
			t.Fatalf("page: %v %v %v", r.body["totalResults"], r.body["itemsPerPage"], r.body["startIndex"])
		}
		res := r.body["Resources"].([]any)
		if len(res) != 2 || res[0].(map[string]any)["id"] != ids[1] {
			t.Errorf("page content: %v", res)
		}
		r = h.mustStatus(h.req("GET", "/Users?count=0", ""), 200)
		if r.body["totalResults"] != float64(5) || r.body["itemsPerPage"] != float64(0) {
			t.Errorf("count=0: %s", r.raw)
		}
	})
	t.Run("pagination of a scanned filter", func(t *testing.T) {
		// No index answers this filter: the users are streamed through it
		// and only the page is kept, with the total still exact.
		q := "/Users?filter=" + url.QueryEscape(`emails[type eq "work"].value ew "@example.com"`)
		r := h.mustStatus(h.req("GET", q+"&startIndex=2&count=2", ""), 200)
		res, _ := r.body["Resources"].([]any)
		if r.body["totalResults"] != float64(5) || len(res) != 2 || res[0].(map[string]any)["id"] != ids[1] || res[1].(map[string]any)["id"] != ids[2] {
			t.Fatalf("page 2 of a scanned filter: %s", r.raw)
		}
		r = h.mustStatus(h.req("GET", q+"&startIndex=5&count=10", ""), 200)
		res, _ = r.body["Resources"].([]any)
		if r.body["totalResults"] != float64(5) || len(res) != 1 || res[0].(map[string]any)["id"] != ids[4] {
			t.Errorf("last page of a scanned filter: %s", r.raw)
		}
		r = h.mustStatus(h.req("GET", q+"&count=0", ""), 200)
		if r.body["totalResults"] != float64(5) || r.body["Resources"] != nil && len(r.body["Resources"].([]any)) != 0 {
			t.Errorf("count=0 on a scanned filter: %s", r.raw)
		}
	})
	t.Run("3.4.2.3 sortBy", func(t *testing.T) {
		r := h.mustStatus(h.req("GET", "/Users?sortBy=userName&sortOrder=ascending&count=1", ""), 200)
		if first := r.body["Resources"].([]any)[0].(map[string]any)["userName"]; first != "user0@example.com" {
			t.Errorf("first ascending %v", first)
		}
		r = h.mustStatus(h.req("GET", "/Users?sortBy=userName&sortOrder=descending&count=1", ""), 200)
		if first := r.body["Resources"].([]any)[0].(map[string]any)["userName"]; first != "user4@example.com" {
			t.Errorf("first descending %v", first)
		}
	})
	t.Run("3.4.2.5 attributes and excludedAttributes", func(t *testing.T) {
		r := h.mustStatus(h.req("GET", "/Users/"+ids[0]+"?attributes=userName,emails.value", ""), 200)
		if r.body["displayName"] != nil || r.body["userName"] == nil || r.body["id"] == nil {
			t.Errorf("attributes projection: %s", r.raw)
		}
		em := r.body["emails"].([]any)[0].(map[string]any)
		if em["value"] == nil || em["type"] != nil {
			t.Errorf("emails.value projection: %v", em)
		}
		r = h.mustStatus(h.req("GET", "/Users/"+ids[0]+"?excludedAttributes=name,emails", ""), 200)
		if r.body["name"] != nil || r.body["emails"] != nil || r.body["userName"] == nil {
			t.Errorf("excludedAttributes: %s", r.raw)
		}
	})
}

// standing is the gate's view of a user, by userName.
func (h *scimHarness) standing(userName string) identity.Standing { return h.dir.Standing(userName) }

func TestSCIM_Deactivation_AsOktaAndEntraSendIt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		method string
		body   func(userName string) string
		gone   bool
	}{
		{"Okta PATCH replace with value object", "PATCH", func(string) string {
			return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`
		}, false},
		{"Entra PATCH Replace active \"False\"", "PATCH", func(string) string {
			return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`
		}, false},
		{"PUT with active false", "PUT", func(u string) string { return userBody(u, false) }, false},
		{"DELETE", "DELETE", func(string) string { return "" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newSCIM(t)
			id := h.createUser("bob@example.com")
			before := h.standing("bob@example.com")
			if before.State != identity.StateActive {
				t.Fatalf("before: %v", before.State)
			}
			r := h.req(tt.method, "/Users/"+id, tt.body("bob@example.com"))
			want := 200
			if tt.gone {
				want = 204
			}
			h.mustStatus(r, want)
			// No waiting: the 2xx means the gate already sees it.
			after := h.standing("BOB@example.com")
			wantState := identity.StateInactive
			if tt.gone {
				wantState = identity.StateDeleted
			}
			if after.State != wantState {
				t.Fatalf("after: %v, want %v", after.State, wantState)
			}
			if !after.ValidAfter.After(before.ValidAfter) {
				t.Error("ValidAfter did not move: earlier sessions stay valid")
			}
			event := "user_deactivated"
			if tt.gone {
				event = "user_deleted"
			}
			if h.logs.FilterField(zap.String("event", event)).Len() != 1 {
				t.Errorf("no %s audit event", event)
			}
			if !tt.gone && r.body["active"] != false {
				t.Errorf("response active = %v", r.body["active"])
			}
		})
	}
}

func TestSCIM_ReactivationVoidsEarlierSessions(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	id := h.createUser("carol@example.com")
	h.mustStatus(h.req("PATCH", "/Users/"+id, `{"schemas":["`+SchemaPatchOp+`"],"Operations":[{"op":"replace","path":"active","value":false}]}`), 200)
	deact := h.standing("carol@example.com").ValidAfter
	h.mustStatus(h.req("PATCH", "/Users/"+id, `{"schemas":["`+SchemaPatchOp+`"],"Operations":[{"op":"replace","path":"active","value":true}]}`), 200)
	st := h.standing("carol@example.com")
	if st.State != identity.StateActive || !st.ValidAfter.After(deact) {
		t.Errorf("after reactivation: %v, ValidAfter %v (deactivated at %v)", st.State, st.ValidAfter, deact)
	}
	if h.logs.FilterField(zap.String("event", "user_reactivated")).Len() != 1 {
		t.Error("no user_reactivated audit event")
	}
}

func TestSCIM_RFC7644_3_5_ReplayIsIdempotent(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	id := h.createUser("dan@example.com")
	patch := `{"schemas":["` + SchemaPatchOp + `"],"Operations":[{"op":"replace","path":"displayName","value":"Dan"}]}`
	r1 := h.mustStatus(h.req("PATCH", "/Users/"+id, patch), 200)
	r2 := h.mustStatus(h.req("PATCH", "/Users/"+id, patch), 200)
	if r1.header.Get("ETag") != r2.header.Get("ETag") {
		t.Errorf("replayed PATCH changed the version: %s -> %s", r1.header.Get("ETag"), r2.header.Get("ETag"))
	}
	p1 := h.mustStatus(h.req("PUT", "/Users/"+id, userBody("dan@example.com", true)), 200)
	p2 := h.mustStatus(h.req("PUT", "/Users/"+id, userBody("dan@example.com", true)), 200)
	if p1.header.Get("ETag") != p2.header.Get("ETag") {
		t.Errorf("replayed PUT changed the version")
	}
}

func TestSCIM_RFC7644_3_14_IfMatch(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	id := h.createUser("eve@example.com")
	assertSCIMError(t, h.req("PUT", "/Users/"+id, userBody("eve@example.com", false), "If-Match", `W/"999"`), 412, "")
	if h.standing("eve@example.com").State != identity.StateActive {
		t.Fatal("a 412 changed the user")
	}
	cur := h.mustStatus(h.req("GET", "/Users/"+id, ""), 200)
	h.mustStatus(h.req("PUT", "/Users/"+id, userBody("eve@example.com", false), "If-Match", cur.header.Get("ETag")), 200)
	assertSCIMError(t, h.req("DELETE", "/Users/"+id, "", "If-Match", cur.header.Get("ETag")), 412, "")
}

func TestSCIM_PatchFailingPartwayChangesNothing(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	id := h.createUser("fay@example.com")
	before := h.mustStatus(h.req("GET", "/Users/"+id, ""), 200)
	r := h.req("PATCH", "/Users/"+id, `{"schemas":["`+SchemaPatchOp+`"],"Operations":[
		{"op":"replace","path":"active","value":false},
		{"op":"replace","path":"displayName","value":"Changed"},
		{"op":"replace","path":"id","value":"stolen"}]}`)
	if r.status != 400 {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	after := h.mustStatus(h.req("GET", "/Users/"+id, ""), 200)
	if before.raw != after.raw || h.standing("fay@example.com").State != identity.StateActive {
		t.Errorf("a failed PATCH changed the user:\n%s\n%s", before.raw, after.raw)
	}
}

func TestSCIM_RFC7644_4_Discovery(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	spc := h.mustStatus(h.req("GET", "/ServiceProviderConfig", ""), 200)
	if f, _ := spc.body["filter"].(map[string]any); f["supported"] != true || f["maxResults"] != float64(100) {
		t.Errorf("filter %v", spc.body["filter"])
	}
	rt := h.mustStatus(h.req("GET", "/ResourceTypes", ""), 200)
	if rt.body["totalResults"] != float64(2) {
		t.Errorf("resource types %v", rt.body["totalResults"])
	}
	h.mustStatus(h.req("GET", "/ResourceTypes/User", ""), 200)
	sc := h.mustStatus(h.req("GET", "/Schemas", ""), 200)
	if sc.body["totalResults"] != float64(3) {
		t.Errorf("schemas %v", sc.body["totalResults"])
	}
	h.mustStatus(h.req("GET", "/Schemas/"+SchemaUser, ""), 200)
}

// A scanned filter that does not test groups still answers with each
// user's groups; one that tests them finds the members.
func TestSCIM_ScannedFilterAndGroups(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	a, b := h.createUser("ann@example.com"), h.createUser("ben@example.com")
	g := h.mustStatus(h.req("POST", "/Groups", `{"displayName":"eng","members":[{"value":"`+a+`"}]}`), 201)
	gid := g.body["id"].(string)

	r := h.mustStatus(h.req("GET", "/Users?filter="+url.QueryEscape(`userName sw "ann"`), ""), 200)
	res, _ := r.body["Resources"].([]any)
	if len(res) != 1 {
		t.Fatalf("userName sw ann: %s", r.raw)
	}
	groups, _ := res[0].(map[string]any)["groups"].([]any)
	if len(groups) != 1 || groups[0].(map[string]any)["value"] != gid {
		t.Errorf("the matched user lacks its groups: %s", r.raw)
	}

	r = h.mustStatus(h.req("GET", "/Users?filter="+url.QueryEscape(`groups[value eq "`+gid+`"]`), ""), 200)
	res, _ = r.body["Resources"].([]any)
	if r.body["totalResults"] != float64(1) || len(res) != 1 || res[0].(map[string]any)["id"] != a {
		t.Errorf("members of eng by filter: %s", r.raw)
	}
	r = h.mustStatus(h.req("GET", "/Users?filter="+url.QueryEscape(`not (groups pr)`), ""), 200)
	res, _ = r.body["Resources"].([]any)
	if r.body["totalResults"] != float64(1) || len(res) != 1 || res[0].(map[string]any)["id"] != b {
		t.Errorf("users in no group: %s", r.raw)
	}
}

// RFC 7644 §3.1 names the media type application/scim+json; strict clients
// compare the string, so every answer carries exactly that, with no charset
// parameter (JSON is UTF-8 by definition, RFC 8259 §8.1).
func TestSCIM_RFC7644_3_1_ContentTypeIsExactlyApplicationSCIMJSON(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/ServiceProviderConfig"},
		{"GET", "/Users"},
		{"GET", "/Users/does-not-exist"},
		{"POST", "/Users"},
		{"DELETE", "/Groups/does-not-exist"},
	} {
		var body string
		if tc.method == "POST" {
			body = userBody("ct@example.com", true)
		}
		resp := h.req(tc.method, tc.path, body)
		if got := resp.header.Get("Content-Type"); got != "application/scim+json" {
			t.Errorf("%s %s: Content-Type %q, want exactly application/scim+json", tc.method, tc.path, got)
		}
	}
}
