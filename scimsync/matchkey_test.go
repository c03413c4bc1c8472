package scimsync

import (
	"testing"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

// lookalikes are assertion values that strings.ToLower or EqualFold would
// turn into the ASCII identity of a directory user, and that must not
// match it: U+0130 (İ), the Kelvin sign U+212A and the long s U+017F.
var lookalikes = []struct{ name, assertion, directory string }{
	{"dotted capital I", "alİce@example.com", "alice@example.com"},
	{"Kelvin sign", "\u212Aim@example.com", "kim@example.com"},
	{"long s", "\u017Fam@example.com", "sam@example.com"},
}

func TestDirectory_StandingFoldsASCIIOnly(t *testing.T) {
	t.Parallel()
	for _, attr := range []string{"userName", "email", "externalId"} {
		for _, tc := range lookalikes {
			t.Run(attr+"/"+tc.name, func(t *testing.T) {
				d, _ := NewDirectory(attr)
				d.Apply([]Event{{Seq: 1, Time: dt0, Kind: EventUserCreated, ResourceType: "User", ResourceID: "u1",
					User: &User{ID: "u1", UserName: tc.directory, Email: tc.directory, ExternalID: tc.directory, Active: true}}})
				if st := d.Standing(tc.assertion); st.State != identity.StateUnknown {
					t.Errorf("Standing(%q) = %v, want unknown: a look-alike matched the directory's %q", tc.assertion, st.State, tc.directory)
				}
				if st := d.Standing(tc.directory); st.State != identity.StateActive {
					t.Errorf("Standing(%q) = %v, want active", tc.directory, st.State)
				}
				upper := []byte(tc.directory)
				upper[0] -= 'a' - 'A'
				if st := d.Standing(string(upper)); st.State != identity.StateActive {
					t.Errorf("Standing(%q) = %v, want active: ASCII case must still fold", upper, st.State)
				}
			})
		}
	}
}

func TestDrift_LookalikeEmailIsUnprovisionedAndMismatched(t *testing.T) {
	t.Parallel()
	d := driftDir(t, "email")
	dd := NewDriftDetector(d, driftConfig("email", "email", ""), nil, nil)
	if got := dd.Compare(identity.Principal{User: "alice", Email: "alİce@example.com"}); len(got) != 1 || got[0].Kind != "unprovisioned" {
		t.Errorf("assertion alİce@ against SCIM alice@ (email match): %+v, want unprovisioned", got)
	}
	dd = NewDriftDetector(driftDir(t, "userName"), driftConfig("user", "userName", ""), nil, nil)
	got := dd.Compare(identity.Principal{User: "alice", Email: "alİce@example.com"})
	if len(got) != 1 || got[0].Kind != "email_mismatch" {
		t.Errorf("assertion email alİce@ against SCIM email alice@: %+v, want email_mismatch", got)
	}
}

func TestLoginSubject_FoldsASCIIOnly(t *testing.T) {
	t.Parallel()
	for _, tc := range lookalikes {
		p := identity.Principal{User: tc.assertion, Email: tc.assertion}
		for _, field := range []string{"user", "email"} {
			if got := LoginSubject(p, field); got == tc.directory {
				t.Errorf("LoginSubject(%q, %s) = %q: the look-alike's logins would be shown as %q's", tc.assertion, field, got, tc.directory)
			}
		}
	}
	if got := LoginSubject(identity.Principal{Email: "Alice@Example.COM"}, "email"); got != "alice@example.com" {
		t.Errorf("LoginSubject folds ASCII to %q, want alice@example.com", got)
	}
}
