package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestReplicas_IdPLogoutOnAEndsTheSessionOnB: the IdP's back-channel
// LogoutRequest reaches replica A; replica B, which never saw it, refuses
// the session within a second, by the store's event log. Forged, unsigned
// and replayed requests change nothing.
func TestReplicas_IdPLogoutOnAEndsTheSessionOnB(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two proxies on PostgreSQL")
	}
	dsn := testPostgresSchema(t)
	rs := newReplicaSet(t, "")
	idp := newSLOIdP(t, rs.dir)
	forger := newSLOIdP(t, t.TempDir())
	a, b := rs.start("a", dsn).public, rs.start("b", dsn).public
	lg := openLedger(t, dsn)
	ctx := context.Background()
	alice := recordedSession(t, ctx, lg, rs.codec, idp, "alice@example.com", "idx-1")
	other := recordedSession(t, ctx, lg, rs.codec, idp, "alice@example.com", "idx-2") // alice on another device
	rs.createUser(a, "alice@example.com")
	waitFor(t, "B to see the new user", 5*time.Second, func() bool { c, _ := rs.get(b, alice); return c == 200 })
	client := http.DefaultClient
	for name, lr := range map[string][]byte{
		"forged":   idp.logoutRequestXML(t, "alice@example.com", "idx-1", &forger),
		"unsigned": idp.logoutRequestXML(t, "alice@example.com", "idx-1", nil),
	} {
		if code, body := postSOAPLogout(t, client, a, lr); code != http.StatusInternalServerError || !strings.Contains(body, "Fault") {
			t.Errorf("%s LogoutRequest: %d %s, want a SOAP fault", name, code, body)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if c, _ := rs.get(b, alice); c != http.StatusOK {
		t.Fatalf("B after refused LogoutRequests: %d, want the session still good", c)
	}

	lr := idp.logoutRequestXML(t, "alice@example.com", "idx-1", &idp)
	sent := time.Now()
	code, body := postSOAPLogout(t, client, a, lr)
	if code != http.StatusOK || !strings.Contains(body, "urn:oasis:names:tc:SAML:2.0:status:Success") ||
		strings.Contains(body, "PartialLogout") || !strings.Contains(body, "SignatureValue") {
		t.Fatalf("LogoutRequest on A: %d %s", code, body)
	}
	if c, _ := rs.get(a, alice); c != http.StatusUnauthorized {
		t.Errorf("A after its own logout: %d, want 401 at once", c)
	}
	waitFor(t, "B to refuse the ended session", time.Second, func() bool { c, _ := rs.get(b, alice); return c == http.StatusUnauthorized })
	t.Logf("IdP logout through A refused on B after %s", time.Since(sent))
	if c, _ := rs.get(b, other); c != http.StatusOK {
		t.Errorf("alice's other session (another SessionIndex) on B: %d, want still good", c)
	}
	if code, body := postSOAPLogout(t, client, a, lr); code != http.StatusInternalServerError {
		t.Errorf("replayed LogoutRequest: %d %s, want a SOAP fault", code, body)
	}
}

// TestCLI_SessionsRevokeSignsTheUserOutEverywhere: `portcullis sessions
// revoke` ends every session of the user (both devices) on a running
// replica, and no one else's.
func TestCLI_SessionsRevokeSignsTheUserOutEverywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a proxy on PostgreSQL")
	}
	dsn := testPostgresSchema(t)
	rs := newReplicaSet(t, "")
	idp := newSLOIdP(t, rs.dir)
	a := rs.start("a", dsn).public
	lg := openLedger(t, dsn)
	ctx := context.Background()
	rs.createUser(a, "alice@example.com")
	rs.createUser(a, "bob@example.com")
	alice1 := recordedSession(t, ctx, lg, rs.codec, idp, "alice@example.com", "1")
	alice2 := recordedSession(t, ctx, lg, rs.codec, idp, "alice@example.com", "2")
	bob := recordedSession(t, ctx, lg, rs.codec, idp, "bob@example.com", "3")
	code, out, stderr := runCLI(t, "sessions", "revoke", "--user", "Alice@Example.com", "--config", rs.dir+"/a.yaml")
	if code != 0 || !strings.Contains(out, "ended 2 session(s) of Alice@Example.com in organization default") || !strings.Contains(stderr, `"event":"session_revoked"`) {
		t.Fatalf("sessions revoke: exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
	for _, s := range []string{alice1, alice2} {
		waitFor(t, "the replica to refuse alice's sessions", time.Second, func() bool { c, _ := rs.get(a, s); return c == http.StatusUnauthorized })
	}
	if c, _ := rs.get(a, bob); c != http.StatusOK {
		t.Errorf("bob after alice's revocation: %d, want 200", c)
	}
	if code, _, _ := runCLI(t, "sessions", "revoke", "--config", rs.dir+"/a.yaml"); code != 2 {
		t.Errorf("without --user: exit %d, want 2", code)
	}
}
