package main

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// The built app serves /metrics on the admin listener, and a SCIM write
// through the public handler shows up in the SCIM, directory and request
// metrics of the same registry.
func TestMetrics_AdminServesTheWiredRegistry(t *testing.T) {
	t.Parallel()
	sc := writeServeConfig(t, t.TempDir())
	a, err := build(context.Background(), sc.path, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if a.drift == nil {
		t.Fatal("SCIM is on but no drift detector is wired")
	}
	pub := httptest.NewServer(a.proxy)
	t.Cleanup(pub.Close)
	admin := httptest.NewServer(a.admin)
	t.Cleanup(admin.Close)

	req, _ := http.NewRequest("POST", pub.URL+"/scim/v2/Users", strings.NewReader(
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice@example.com","active":true}`))
	req.Header.Set("Authorization", "Bearer "+sc.token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("SCIM create: status %d", resp.StatusCode)
	}

	resp, err = http.Get(admin.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: status %d", resp.StatusCode)
	}
	text := string(body)
	for _, line := range []string{
		`portcullis_scim_requests_total{operation="create",resource="Users",status="201"} 1`,
		`portcullis_directory_events_total{kind="user.created"} 1`,
		`portcullis_directory_users{state="active"} 1`,
		`portcullis_directory_applied_seq 1`,
		`portcullis_requests_total{outcome="other"} 1`,
		`portcullis_identity_drift_total{kind="unprovisioned"} 0`,
		`portcullis_idp_metadata_age_seconds{organization="default"} +Inf`, // build does not load it; serve does
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	if strings.Contains(text, "alice") {
		t.Error("/metrics names a user")
	}
}

// signInOverHTTP signs in at the demo as user without a browser: the
// proxy's redirect to the demo IdP, the IdP's login form, its auto-posting
// SAMLResponse form, and the ACS. It returns the final status.
func signInOverHTTP(t *testing.T, d *demoRun, user string) int {
	t.Helper()
	_, status := demoSignIn(t, d, user)
	return status
}

// demoSignIn is signInOverHTTP, also returning the client whose cookie jar
// holds the session.
func demoSignIn(t *testing.T, d *demoRun, user string) (*http.Client, int) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	get := func(u string) string {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	field := func(page, name string) string {
		m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no %s field in:\n%s", name, page)
		}
		return html.UnescapeString(m[1])
	}
	login := get(d.info.URL + "/")
	resp, err := client.PostForm(d.info.IdPURL+"/login", url.Values{"user": {user}, "request": {field(login, "request")}})
	if err != nil {
		t.Fatal(err)
	}
	post, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	action := regexp.MustCompile(`action="([^"]*)"`).FindStringSubmatch(string(post))
	if action == nil {
		t.Fatalf("no SAMLResponse form from the IdP:\n%s", post)
	}
	form := url.Values{"SAMLResponse": {field(string(post), "SAMLResponse")}}
	if rs := regexp.MustCompile(`name="RelayState" value="([^"]*)"`).FindStringSubmatch(string(post)); rs != nil {
		form.Set("RelayState", html.UnescapeString(rs[1]))
	}
	resp, err = client.PostForm(html.UnescapeString(action[1]), form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return client, resp.StatusCode
}

// Drift detection runs on every real sign-in through the wiring of
// `portcullis serve` (the demo builds the same app): a sign-in that agrees
// with SCIM writes no identity_drift event; after SCIM deactivates the
// user, the IdP still signs them in, and that is reported as inactive
// drift while the gate refuses the request.
func TestMetrics_DriftOnRealSignIn(t *testing.T) {
	if testing.Short() {
		t.Skip("demo: skipped with -short")
	}
	d := startDemo(t)
	if got := signInOverHTTP(t, d, "alice"); got != http.StatusOK {
		t.Fatalf("alice's sign-in ended with %d, want the app's 200", got)
	}
	if n := d.logs.countAudit("login_succeeded", "alice"); n != 1 {
		t.Fatalf("%d login_succeeded events for alice, want 1", n)
	}
	if n := d.logs.countAudit("identity_drift", "alice"); n != 0 {
		t.Errorf("a sign-in that agrees with SCIM wrote %d identity_drift events:\n%s", n, d.logs)
	}

	if status, _ := parseCurl(t, d.out.String()).run(t); status != http.StatusOK { // deactivates alice
		t.Fatalf("deactivating alice: status %d", status)
	}
	if got := signInOverHTTP(t, d, "alice"); got != http.StatusForbidden {
		t.Errorf("deactivated alice's sign-in ended with %d, want the gate's 403", got)
	}
	var drift map[string]any
	for _, e := range d.logs.logEntries() {
		if e["event"] == "identity_drift" && e["user"] == "alice" {
			drift = e
		}
	}
	if drift == nil {
		t.Fatalf("no identity_drift event for the deactivated alice's sign-in")
	}
	if drift["kind"] != "inactive" || drift["request_id"] == "" || drift["detail"] == "" {
		t.Errorf("identity_drift event %v, want kind inactive with a detail and the request ID", drift)
	}
}
