package main

// SCIM Bulk (RFC 7644 §3.7) through the app that `portcullis serve` builds:
// a deactivation inside a Bulk request blocks the user on the next proxied
// request, as the single PATCH does.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

func TestBulk_RFC7644_3_7_DeactivationBlocksTheNextProxiedRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("demo: skipped with -short")
	}
	d := startDemo(t)
	alice, status := demoSignIn(t, d, "alice")
	if status != http.StatusOK {
		t.Fatalf("alice's sign-in ended with %d, want the app's 200", status)
	}
	bob, status := demoSignIn(t, d, "bob")
	if status != http.StatusOK {
		t.Fatalf("bob's sign-in ended with %d, want the app's 200", status)
	}
	get := func(c *http.Client) int {
		t.Helper()
		resp, err := c.Get(d.info.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(alice); got != http.StatusOK {
		t.Fatalf("alice before the Bulk request: %d, want 200", got)
	}
	var aliceID string
	for _, u := range d.info.Users {
		if u.Name == "alice" {
			aliceID = u.ID
		}
	}

	// A new user, a group naming her by bulkId and alice, and alice's
	// deactivation: one Bulk request.
	req := map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:BulkRequest"},
		"Operations": []any{
			map[string]any{"method": "POST", "path": "/Users", "bulkId": "dave", "data": map[string]any{
				"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "dave@example.com",
				"emails": []any{map[string]any{"value": "dave@example.com", "primary": true}}, "active": true}},
			map[string]any{"method": "POST", "path": "/Groups", "bulkId": "g", "data": map[string]any{
				"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "Bulk Team",
				"members": []any{map[string]any{"value": "bulkId:dave"}, map[string]any{"value": aliceID}}}},
			map[string]any{"method": "PATCH", "path": "/Users/" + aliceID, "data": map[string]any{
				"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
				"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": false}}}}},
		},
	}
	body, _ := json.Marshal(req)
	hreq, _ := http.NewRequest("POST", d.info.SCIMURL+"/Bulk", bytes.NewReader(body))
	hreq.Header.Set("Authorization", "Bearer "+d.info.Token)
	hreq.Header.Set("Content-Type", "application/scim+json")
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}).Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out struct {
		Operations []struct{ Status, Location string }
	}
	if err := json.Unmarshal(raw, &out); resp.StatusCode != 200 || err != nil || len(out.Operations) != 3 {
		t.Fatalf("Bulk: status %d, body %s", resp.StatusCode, raw)
	}
	for i, want := range []string{"201", "201", "200"} {
		if out.Operations[i].Status != want {
			t.Errorf("operation %d: status %s, want %s (%s)", i, out.Operations[i].Status, want, raw)
		}
	}

	if got := get(alice); got != http.StatusForbidden {
		t.Errorf("alice's next proxied request after the Bulk deactivation: %d, want the gate's 403", got)
	}
	if n := d.logs.countAudit("access_denied", "alice"); n == 0 {
		t.Errorf("no access_denied audit event for alice")
	}
	deactivated := 0
	for _, e := range d.logs.logEntries() {
		if e["logger"] == "audit" && e["event"] == "user_deactivated" {
			deactivated++
		}
	}
	if deactivated != 1 {
		t.Errorf("%d user_deactivated audit events, want 1", deactivated)
	}
	if got := get(bob); got != http.StatusOK {
		t.Errorf("bob, whom the Bulk request did not touch: %d, want 200", got)
	}
}
