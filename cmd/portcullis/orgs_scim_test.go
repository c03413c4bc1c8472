package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/session"
	"github.com/portcullis-sso/portcullis/scimsync"
	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/sqlite"
)

// orgTokens writes a tokens file for each organization and returns their
// paths and tokens.
func orgTokens(t *testing.T, orgs ...string) (paths, tokens map[string]string) {
	t.Helper()
	dir := t.TempDir()
	paths, tokens = map[string]string{}, map[string]string{}
	for _, o := range orgs {
		tokens[o] = scimsync.GenerateToken()
		paths[o] = filepath.Join(dir, o+".tokens")
		if err := os.WriteFile(paths[o], []byte(o+"-idp "+tokens[o]+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return paths, tokens
}

func orgsYAML(paths map[string]string, ids ...string) string {
	var b strings.Builder
	b.WriteString("organizations:\n")
	for _, id := range ids {
		b.WriteString("  - id: " + id + "\n    domains: [" + id + ".com]\n    saml: {idpMetadataFile: idp.xml}\n" +
			"    scim: {tokensFile: " + paths[id] + "}\n")
	}
	return b.String()
}

// orgSession mints a session of org's user with email.
func (w *wireApp) orgSession(org, email string) string {
	v, _ := w.orgSessionWithID(org, email)
	return v
}

// orgSessionWithID is orgSession, and the session's id.
func (w *wireApp) orgSessionWithID(org, email string) (cookie string, id string) {
	s := &session.Session{ID: session.NewID(), IssuedAt: time.Now(), Expires: time.Now().Add(time.Hour),
		Principal: identity.Principal{User: email, Email: email, Org: org}}
	v, err := w.codec.Encode(s)
	if err != nil {
		w.t.Fatal(err)
	}
	return v, s.ID
}

func (w *wireApp) scimAs(token, method, path, body string) (int, map[string]any) {
	req, _ := http.NewRequest(method, w.pub+"/scim/v2"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// Each organization has its own SCIM directory at {basePath}/{id} with its
// own tokens, and the gate asks the signed-in user's organization only: the
// same address deactivated in one organization says nothing about the
// other's user.
func TestOrganizations_SCIMDirectoryPerOrganization(t *testing.T) {
	t.Parallel()
	paths, tokens := orgTokens(t, "acme", "globex")
	w := newWireApp(t, orgsYAML(paths, "acme", "globex"), nil)

	create := func(org, token, userName string) string {
		t.Helper()
		status, u := w.scimAs(token, "POST", "/"+org+"/Users", `{"userName":"`+userName+`","emails":[{"value":"`+userName+`","primary":true}]}`)
		if status != http.StatusCreated {
			t.Fatalf("%s: create %s: %d %v", org, userName, status, u)
		}
		loc, _ := u["meta"].(map[string]any)["location"].(string)
		if !strings.Contains(loc, "/scim/v2/"+org+"/Users/") {
			t.Errorf("%s: meta.location %q is not under its base path", org, loc)
		}
		return u["id"].(string)
	}
	acmeID := create("acme", tokens["acme"], "pat@shared.com")
	create("globex", tokens["globex"], "pat@shared.com") // the same userName in another organization

	// Tokens are per organization.
	for _, tc := range []struct{ token, path string }{
		{tokens["acme"], "/globex/Users"},
		{tokens["globex"], "/acme/Users"},
		{w.token, "/acme/Users"},
		{tokens["acme"], "/Users"},
	} {
		if status, _ := w.scimAs(tc.token, "GET", tc.path, ""); status != http.StatusUnauthorized {
			t.Errorf("GET %s with another organization's token: %d, want 401", tc.path, status)
		}
	}
	if status, body := w.scimAs(tokens["globex"], "GET", "/globex/Users/"+acmeID, ""); status != http.StatusNotFound {
		t.Errorf("globex reads acme's user by id: %d %v", status, body)
	}
	if status, list := w.scimAs(w.token, "GET", "/Users", ""); status != 200 || list["totalResults"] != float64(0) {
		t.Errorf("the default organization's list: %d %v", status, list["totalResults"])
	}

	acmeCookie, acmeSID := w.orgSessionWithID("acme", "pat@shared.com")
	globexCookie, globexSID := w.orgSessionWithID("globex", "pat@shared.com")
	st := w.recordLogins(map[string]string{acmeSID: "acme", globexSID: "globex"}, "pat@shared.com")
	for name, c := range map[string]string{"acme": acmeCookie, "globex": globexCookie} {
		if status, body := w.get(c); status != 200 || !strings.Contains(body, "pat@shared.com") {
			t.Fatalf("%s's pat before: %d %s", name, status, body)
		}
	}
	if status, _ := w.get(w.orgSession(identity.DefaultOrg, "pat@shared.com")); status == 200 {
		t.Error("the default organization's pat, never provisioned there, got in")
	}
	status, _ := w.scimAs(tokens["acme"], "PATCH", "/acme/Users/"+acmeID,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`)
	if status != 200 {
		t.Fatalf("deactivate acme's pat: %d", status)
	}
	if status, _ := w.get(acmeCookie); status == 200 {
		t.Error("acme's pat still gets in after acme deactivated them")
	}
	if status, _ := w.get(globexCookie); status != 200 {
		t.Errorf("globex's pat refused after acme deactivated its own pat: %d", status)
	}
	if status, _ := w.get(w.orgSession("initech", "pat@shared.com")); status == 200 {
		t.Error("a session of an organization that does not exist got in")
	}
	// The deactivation ended acme's pat's recorded session, with its
	// session.revoked event in acme, and nothing of globex's.
	for org, want := range map[string][]string{"acme": {acmeSID}, "globex": nil} {
		snap, err := st.ForOrg(org).Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, rs := range snap.RevokedSessions {
			got = append(got, rs.ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s's ended sessions: %v, want %v", org, got, want)
		}
	}
	evs, err := st.EventsAfter(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var revoked []string
	for _, e := range evs {
		if e.Kind == store.EventSessionRevoked {
			revoked = append(revoked, e.Org+":"+e.ResourceID+":"+e.Session.Reason)
		}
	}
	if want := []string{"acme:" + acmeSID + ":deactivated"}; !slices.Equal(revoked, want) {
		t.Errorf("session.revoked events: %v, want %v", revoked, want)
	}
}

// recordLogins writes a login-ledger row for each session id (of its
// organization) of the user with email, as a sign-in does, and returns a
// handle on the app's store.
func (w *wireApp) recordLogins(orgOf map[string]string, email string) *sqlite.Store {
	w.t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(w.dir, "store", "portcullis.db"))
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { st.Close() })
	now := time.Now()
	for id, org := range orgOf {
		if err := st.Ledger().RecordLogin(context.Background(), store.Login{Org: org, MatchKey: identity.MatchKey(email), User: email,
			SessionID: id, Issued: now, Expires: now.Add(time.Hour)}); err != nil {
			w.t.Fatal(err)
		}
	}
	return st
}

// A SCIM token listed for two organizations is a config error naming both.
func TestOrganizations_SharedSCIMTokenIsAConfigError(t *testing.T) {
	t.Parallel()
	paths, tokens := orgTokens(t, "acme", "globex")
	if err := os.WriteFile(paths["globex"], []byte("copy "+tokens["acme"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sc := writeServeConfigStore(t, dir, orgsYAML(paths, "acme", "globex")+"store:\n  driver: sqlite\n  dsn: store/portcullis.db\n")
	_, err := build(context.Background(), sc.path, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "organizations[globex].scim.tokensFile") ||
		!strings.Contains(err.Error(), "organizations[acme].scim.tokensFile") {
		t.Fatalf("build: %v, want an error naming both tokens files", err)
	}
}

// `portcullis sessions revoke --organization acme` ends the user's
// sessions in acme only; the same address in globex keeps its session, and
// an organization the config does not serve is an error.
func TestCLI_SessionsRevokeInOneOrganization(t *testing.T) {
	t.Parallel()
	paths, _ := orgTokens(t, "acme", "globex")
	w := newWireApp(t, orgsYAML(paths, "acme", "globex"), nil)
	st := w.recordLogins(map[string]string{"s-acme": "acme", "s-globex": "globex"}, "pat@shared.com")
	cfg := filepath.Join(w.dir, "portcullis.yaml")
	if code, _, stderr := runCLI(t, "sessions", "revoke", "--user", "pat@shared.com", "--organization", "initech", "--config", cfg); code != 1 ||
		!strings.Contains(stderr, "--organization initech") {
		t.Errorf("an unknown organization: exit %d %s, want 1 naming it", code, stderr)
	}
	code, out, stderr := runCLI(t, "sessions", "revoke", "--user", "Pat@Shared.com", "--organization", "acme", "--config", cfg)
	if code != 0 || !strings.Contains(out, "ended 1 session(s) of Pat@Shared.com in organization acme") {
		t.Fatalf("sessions revoke --organization acme: exit %d\n%s\n%s", code, out, stderr)
	}
	for org, want := range map[string]int{"acme": 1, "globex": 0} {
		snap, err := st.ForOrg(org).Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.RevokedSessions) != want {
			t.Errorf("%s's ended sessions: %+v, want %d", org, snap.RevokedSessions, want)
		}
	}
}
