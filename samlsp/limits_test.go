package samlsp

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/crewjam/saml"

	"github.com/portcullis-sso/portcullis/config"
)

// setAttr replaces the values of the named attribute in the assertion.
func setAttr(name string, values ...string) func(*saml.Assertion) {
	return func(a *saml.Assertion) {
		attrs := a.AttributeStatements[0].Attributes
		for i := range attrs {
			if attrs[i].Name == name {
				attrs[i] = attribute(name, "", values...)
				return
			}
		}
		panic("no attribute " + name)
	}
}

// groupNames returns n distinct group names of size bytes each.
func groupNames(n, size int) []string {
	out := make([]string, n)
	for i := range out {
		p := fmt.Sprintf("g%05d-", i)
		out[i] = p + strings.Repeat("x", size-len(p))
	}
	return out
}

// TestACS_RefusesAssertionsOverTheLimits: a validly signed assertion with
// thousands of groups or a huge attribute used to end in a 500 (the session
// cookie overflowed its chunks), which IdPs and browsers retry. It is a
// sign-in failure page with a reason now, and no session.
func TestACS_RefusesAssertionsOverTheLimits(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("a", 64<<10)
	tests := []struct {
		name   string
		mutate func(*saml.Assertion)
		reason string
	}{
		{"5,000 groups", setAttr("groups", groupNames(5000, 24)...), reasonTooManyGroups},
		{"one group over MaxGroups", setAttr("groups", groupNames(MaxGroups+1, 8)...), reasonTooManyGroups},
		{"a 64 KB display name", setAttr("displayName", big), reasonAttributeTooLarge},
		{"a 64 KB email", setAttr("mail", big+"@example.com"), reasonAttributeTooLarge},
		{"a 64 KB user attribute", setAttr("uid", big), reasonAttributeTooLarge},
		{"a 64 KB group", setAttr("groups", "staff", big), reasonAttributeTooLarge},
		{"a value one byte over MaxValueBytes", setAttr("displayName", strings.Repeat("n", MaxValueBytes+1)), reasonAttributeTooLarge},
		{"a 64 KB NameID and no user attribute", func(a *saml.Assertion) {
			a.Subject.NameID.Value = big
			a.AttributeStatements[0].Attributes = a.AttributeStatements[0].Attributes[1:]
		}, reasonAttributeTooLarge},
		{"groups within the limits that overflow the cookie", setAttr("groups", groupNames(900, 100)...), reasonSessionTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			rec, _ := h.complete("/app", respOpts{assertion: tc.mutate})
			h.expectRefused(t, rec, http.StatusForbidden, tc.reason)
		})
	}
}

func TestACS_AcceptsAssertionsAtTheLimits(t *testing.T) {
	t.Parallel()
	many := append(groupNames(MaxGroups, 8), groupNames(MaxGroups, 8)...) // each twice: duplicates do not count
	tests := []struct {
		name   string
		mutate func(*saml.Assertion)
		groups int
	}{
		{"MaxGroups distinct groups, each sent twice", setAttr("groups", many...), MaxGroups},
		{"a value of MaxValueBytes", setAttr("displayName", strings.Repeat("n", MaxValueBytes)), 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			rec, _ := h.complete("/app", respOpts{assertion: tc.mutate})
			s := h.expectAccepted(t, rec, "/app")
			if len(s.Principal.Groups) != tc.groups {
				t.Errorf("%d groups in the session, want %d", len(s.Principal.Groups), tc.groups)
			}
		})
	}
}

// TestACS_GroupsTheDirectoryProvidesStayOutOfTheCookie: with SCIM on and
// groupsSource scim the gate takes every request's groups from the
// directory, so the cookie does not carry the assertion's, however many;
// OnLogin (drift detection) still sees them. With saml or both, or without
// SCIM, the cookie keeps them.
func TestACS_GroupsTheDirectoryProvidesStayOutOfTheCookie(t *testing.T) {
	t.Parallel()
	groups := groupNames(900, 40) // about 36 KB: more than the cookie holds
	tests := []struct {
		name       string
		scim       config.SCIM
		groups     []string
		wantCookie int // groups in the session cookie
	}{
		{"scim, many groups", config.SCIM{Enabled: true, GroupsSource: "scim"}, groups, 0},
		{"scim as config defaults it", config.SCIM{Enabled: true, GroupsSource: config.DefaultGroupsSource}, []string{"staff", "admins"}, 0},
		{"both", config.SCIM{Enabled: true, GroupsSource: "both"}, []string{"staff", "admins"}, 2},
		{"saml", config.SCIM{Enabled: true, GroupsSource: "saml"}, []string{"staff", "admins"}, 2},
		{"no SCIM", config.SCIM{GroupsSource: "scim"}, []string{"staff", "admins"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []Login
			h := newHarnessWith(t, harnessOpts{
				config:  func(c *config.Config) { c.SCIM = tc.scim },
				options: func(o *Options) { o.OnLogin = func(_ context.Context, l Login) { got = append(got, l) } },
			})
			rec, _ := h.complete("/app", respOpts{assertion: setAttr("groups", tc.groups...)})
			s := h.expectAccepted(t, rec, "/app")
			if len(s.Principal.Groups) != tc.wantCookie {
				t.Errorf("%d groups in the session cookie, want %d", len(s.Principal.Groups), tc.wantCookie)
			}
			if s.Principal.User != "alice" || s.Principal.Email != "alice@example.com" {
				t.Errorf("session principal %+v", s.Principal)
			}
			if len(got) != 1 || len(got[0].Principal.Groups) != len(tc.groups) {
				t.Fatalf("OnLogin saw %d logins, want 1 with all %d groups", len(got), len(tc.groups))
			}
			if tc.wantCookie == 0 {
				if n := sessionCookies(h, rec); n != 1 {
					t.Errorf("the session took %d cookies, want 1", n)
				}
			}
		})
	}
}

func sessionCookies(h *harness, rec interface{ Result() *http.Response }) int {
	n := 0
	for _, c := range rec.Result().Cookies() {
		if h.codec.IsSessionCookie(c.Name) && c.MaxAge >= 0 {
			n++
		}
	}
	return n
}
