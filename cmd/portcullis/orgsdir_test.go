package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// organizationsDir: adding, changing and removing an organization's file
// applies within 5 s without a restart; a bad file is refused (named on
// /readyz, which stays 200) while the others are served.
func TestOrganizationsDir_AddChangeRemoveWithoutRestart(t *testing.T) {
	t.Parallel()
	path := testConfigDir(t, "organizationsDir: orgs.d\n")
	dir := filepath.Join(filepath.Dir(path), "orgs.d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) {
		t.Helper()
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	org := func(id, domain string) string {
		return "id: " + id + "\ndomains: [" + domain + "]\nsaml:\n  idpMetadataFile: ../idp.xml\n"
	}
	write("acme.yaml", org("acme", "acme.com"))
	if code, stdout, stderr := runCLI(t, "metadata", "--config", path, "--organization", "acme"); code != 0 ||
		!strings.Contains(stdout, `entityID="https://app.example.com/saml/metadata/acme"`) {
		t.Errorf("metadata --organization acme: %d %s\n%s", code, stderr, stdout)
	}
	if code, _, stderr := runCLI(t, "metadata", "--config", path, "--organization", "initech"); code != 1 || !strings.Contains(stderr, "initech") {
		t.Errorf("metadata --organization initech: %d %s", code, stderr)
	}
	pub, adm := serveInProcessBoth(t, path)
	get := func(base, p string) (int, string) {
		resp, err := http.Get("http://" + base + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second) // the promise
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5 s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if code, body := get(pub, "/saml/metadata/acme"); code != http.StatusOK || !strings.Contains(body, `entityID="https://app.example.com/saml/metadata/acme"`) {
		t.Fatalf("acme's metadata at start: %d\n%s", code, body)
	}
	write("globex.yaml", org("globex", "globex.com"))
	eventually("globex added", func() bool { code, _ := get(pub, "/saml/metadata/globex"); return code == http.StatusOK })

	write("typo.yaml", "id: typo\ndomains: [typo.com]\nsaml:\n  idpMetadataFil: ../idp.xml\n")
	eventually("typo.yaml refused on /readyz", func() bool {
		code, body := get(adm, "/readyz")
		return code == http.StatusOK && strings.Contains(body, "typo.yaml")
	})
	if code, _ := get(pub, "/saml/metadata/globex"); code != http.StatusOK {
		t.Errorf("globex after a bad file: %d", code)
	}
	if code, _ := get(pub, "/saml/metadata/typo"); code != http.StatusNotFound {
		t.Errorf("the refused organization is served: %d", code)
	}

	if err := os.Remove(filepath.Join(dir, "acme.yaml")); err != nil {
		t.Fatal(err)
	}
	eventually("acme removed", func() bool { code, _ := get(pub, "/saml/metadata/acme"); return code == http.StatusNotFound })
	if code, _ := get(pub, "/saml/metadata"); code != http.StatusOK {
		t.Errorf("the default organization after the changes: %d", code)
	}
}

// With SCIM, an organization added to organizationsDir gets its SCIM
// directory within 5 s, and once its file is removed its directory is gone:
// its token no longer works and the gate no longer knows its users. Its
// sessions end for good (organization_removed in the login ledger): adding
// the organization back serves its directory again, and new sign-ins, but
// not the sessions it had.
func TestOrganizationsDir_SCIMDirectoriesComeAndGo(t *testing.T) {
	t.Parallel()
	paths, tokens := orgTokens(t, "acme")
	orgsDir := t.TempDir()
	w := newWireApp(t, "organizationsDir: "+orgsDir+"\n", nil)
	file := filepath.Join(orgsDir, "acme.yaml")
	idp := filepath.Join(filepath.Dir(paths["acme"]), "acme-idp.xml")
	if err := os.WriteFile(idp, mustRead(t, filepath.Join(w.dir, "idp.xml")), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(file+".tmp", []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".tmp", file); err != nil {
			t.Fatal(err)
		}
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5 s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	write("id: acme\ndomains: [acme.com]\nsaml: {idpMetadataFile: " + idp + "}\nscim: {tokensFile: " + paths["acme"] + "}\n")
	var id string
	eventually("acme's SCIM directory served", func() bool {
		status, u := w.scimAs(tokens["acme"], "POST", "/acme/Users", `{"userName":"kim@acme.com"}`)
		if status == http.StatusCreated {
			id, _ = u["id"].(string)
		}
		return status == http.StatusCreated
	})
	cookie, sid := w.orgSessionWithID("acme", "kim@acme.com")
	if status, _ := w.get(cookie); status != http.StatusOK {
		t.Fatalf("acme's kim after provisioning: %d", status)
	}
	st := w.recordLogins(map[string]string{sid: "acme"}, "kim@acme.com")
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	eventually("acme's SCIM directory gone", func() bool {
		status, _ := w.scimAs(tokens["acme"], "GET", "/acme/Users/"+id, "")
		return status == http.StatusUnauthorized
	})
	if status, _ := w.get(cookie); status == http.StatusOK {
		t.Error("acme's kim still gets in after acme was removed")
	}
	snap, err := st.ForOrg("acme").Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.RevokedSessions) != 1 || snap.RevokedSessions[0].ID != sid || snap.RevokedSessions[0].Reason != store.ReasonOrganizationRemoved {
		t.Errorf("acme's revoked sessions after its removal: %+v, want kim's with reason %s", snap.RevokedSessions, store.ReasonOrganizationRemoved)
	}

	write("id: acme\ndomains: [acme.com]\nsaml: {idpMetadataFile: " + idp + "}\nscim: {tokensFile: " + paths["acme"] + "}\n")
	eventually("acme's SCIM directory served again", func() bool {
		status, _ := w.scimAs(tokens["acme"], "GET", "/acme/Users/"+id, "")
		return status == http.StatusOK
	})
	if status, _ := w.get(w.orgSession("acme", "kim@acme.com")); status != http.StatusOK {
		t.Errorf("a new session of acme's kim after acme came back: %d, want 200", status)
	}
	if status, _ := w.get(cookie); status == http.StatusOK {
		t.Error("kim's session from before acme's removal is alive again after acme came back")
	}
}
