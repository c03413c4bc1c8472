package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

var testHeaders = map[string]string{
	"X-Forwarded-User":               "user",
	"X-Forwarded-Email":              "email",
	"X-Forwarded-Groups":             "groups",
	"X-Forwarded-Preferred-Username": "name",
}

func testCookieFilter() cookieFilter {
	return cookieFilter{
		session:  func(n string) bool { return n == "portcullis" || n == "portcullis_1" },
		prefixes: []string{"portcullis_t_"},
	}
}

func TestApplyIdentity(t *testing.T) {
	t.Parallel()
	alice := &identity.Principal{User: "alice", Email: "alice@example.com", Name: "Alice A", Groups: []string{"staff", "admins"}}
	tests := []struct {
		name string
		in   http.Header
		p    *identity.Principal
		want http.Header
	}{
		{
			name: "sets identity headers",
			in:   http.Header{"Accept": {"text/html"}},
			p:    alice,
			want: http.Header{
				"Accept":                         {"text/html"},
				"X-Forwarded-User":               {"alice"},
				"X-Forwarded-Email":              {"alice@example.com"},
				"X-Forwarded-Groups":             {"staff,admins"},
				"X-Forwarded-Preferred-Username": {"Alice A"},
			},
		},
		{
			name: "replaces a spoofed header in canonical spelling",
			in:   http.Header{"X-Forwarded-User": {"root"}},
			p:    alice,
			want: http.Header{
				"X-Forwarded-User":               {"alice"},
				"X-Forwarded-Email":              {"alice@example.com"},
				"X-Forwarded-Groups":             {"staff,admins"},
				"X-Forwarded-Preferred-Username": {"Alice A"},
			},
		},
		{
			name: "strips underscore and case variants",
			in: http.Header{
				"X_forwarded_user":               {"root"},
				"X_Forwarded_User":               {"root"},
				"x-forwarded-email":              {"root@evil"},
				"X-FORWARDED-GROUPS":             {"admins"},
				"X-Forwarded_Preferred-Username": {"Root"},
			},
			p: &identity.Principal{User: "bob"},
			want: http.Header{
				"X-Forwarded-User": {"bob"},
			},
		},
		{
			name: "anonymous on a public route: stripped, nothing set",
			in: http.Header{
				"X-Forwarded-User": {"root"},
				"X_Forwarded_User": {"root"},
				"Accept":           {"*/*"},
			},
			p:    nil,
			want: http.Header{"Accept": {"*/*"}},
		},
		{
			name: "our cookies removed, others kept byte for byte",
			in: http.Header{"Cookie": {
				"a=1; portcullis=SECRET; b=\"quoted value\"",
				"portcullis_1=MORE; portcullis_t_abc=TRACK; c=3",
			}},
			p:    nil,
			want: http.Header{"Cookie": {"a=1; b=\"quoted value\"; c=3"}},
		},
		{
			name: "only our cookies: Cookie header removed",
			in:   http.Header{"Cookie": {"portcullis=SECRET"}},
			p:    nil,
			want: http.Header{},
		},
		{
			name: "lookalike cookie names pass",
			in:   http.Header{"Cookie": {"portcullisx=1; xportcullis=2; portcullis_12=3"}},
			p:    nil,
			want: http.Header{"Cookie": {"portcullisx=1; xportcullis=2; portcullis_12=3"}},
		},
		{
			name: "control characters in attributes cannot split headers",
			in:   http.Header{},
			p:    &identity.Principal{User: "eve\r\nX-Admin: yes", Groups: []string{"a\nb", "staff"}},
			want: http.Header{
				"X-Forwarded-User": {"eveX-Admin: yes"},
				// a group with a control character is left out, not
				// rewritten into another name ("ab")
				"X-Forwarded-Groups": {"staff"},
			},
		},
	}
	plan := newHeaderPlan(testHeaders)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := tt.in.Clone()
			applyIdentity(h, plan, testCookieFilter(), tt.p)
			if diff := cmp.Diff(tt.want, h); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyIdentity_StripsUnderscoreVariants(t *testing.T) {
	t.Parallel()
	plan := newHeaderPlan(testHeaders)
	for _, spelled := range []string{
		"X-Forwarded-User", "x-forwarded-user", "X_Forwarded_User", "x_forwarded_user",
		"X-FORWARDED-USER", "X_FORWARDED-USER", "x-Forwarded_uSer",
	} {
		h := http.Header{spelled: {"root"}}
		applyIdentity(h, plan, testCookieFilter(), nil)
		if len(h) != 0 {
			t.Errorf("%q survived: %v", spelled, h)
		}
	}
}

func FuzzNormalizeHeaderName(f *testing.F) {
	for name := range testHeaders {
		f.Add(name)
		f.Add(strings.ReplaceAll(name, "-", "_"))
		f.Add(strings.ToLower(name))
	}
	f.Add("")
	f.Add("X-\x00-User")
	plan := newHeaderPlan(testHeaders)
	f.Fuzz(func(t *testing.T, name string) {
		n := normalizeHeaderName(name)
		if len(n) != len(name) {
			t.Fatalf("length changed: %q -> %q", name, n)
		}
		if strings.ContainsAny(n, "_ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			t.Fatalf("not normalised: %q", n)
		}
		if normalizeHeaderName(n) != n {
			t.Fatalf("not idempotent: %q", n)
		}
		// Any spelling that normalises to one of ours must be stripped.
		h := http.Header{name: {"spoof"}}
		applyIdentity(h, plan, testCookieFilter(), nil)
		_, ours := plan.strip[n]
		if ours && len(h) != 0 {
			t.Fatalf("identity header %q survived", name)
		}
		if !ours && len(h) != 1 {
			t.Fatalf("unrelated header %q was stripped", name)
		}
	})
}
