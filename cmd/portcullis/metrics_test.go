package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
		`portcullis_idp_metadata_age_seconds +Inf`, // build does not load it; serve does
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	if strings.Contains(text, "alice") {
		t.Error("/metrics names a user")
	}
}
