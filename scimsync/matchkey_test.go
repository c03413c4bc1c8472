package scimsync

import (
	"net/url"
	"testing"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/scimsync/store"
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
				d.Apply([]store.Event{{Seq: 1, Time: dt0, Kind: store.EventUserCreated, ResourceType: "User", ResourceID: "u1",
					User: &store.User{ID: "u1", UserName: tc.directory, Email: tc.directory, ExternalID: tc.directory, Active: true}}})
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
	dd := NewDriftDetector(viewsOf(d), driftConfig("email", "email", ""), nil, nil)
	if got := dd.Compare(identity.Principal{User: "alice", Email: "alİce@example.com"}); len(got) != 1 || got[0].Kind != "unprovisioned" {
		t.Errorf("assertion alİce@ against SCIM alice@ (email match): %+v, want unprovisioned", got)
	}
	dd = NewDriftDetector(viewsOf(driftDir(t, "userName")), driftConfig("user", "userName", ""), nil, nil)
	got := dd.Compare(identity.Principal{User: "alice", Email: "alİce@example.com"})
	if len(got) != 1 || got[0].Kind != "email_mismatch" {
		t.Errorf("assertion email alİce@ against SCIM email alice@: %+v, want email_mismatch", got)
	}
}

func TestPrincipalMatchKey_FoldsASCIIOnly(t *testing.T) {
	t.Parallel()
	for _, tc := range lookalikes {
		p := identity.Principal{User: tc.assertion, Email: tc.assertion}
		for _, field := range []string{"user", "email"} {
			if got := PrincipalMatchKey(p, field); got == tc.directory {
				t.Errorf("PrincipalMatchKey(%q, %s) = %q: the look-alike's logins would be shown as %q's", tc.assertion, field, got, tc.directory)
			}
		}
	}
	if got := PrincipalMatchKey(identity.Principal{Email: "Alice@Example.COM"}, "email"); got != "alice@example.com" {
		t.Errorf("LoginSubject folds ASCII to %q, want alice@example.com", got)
	}
}

// Filters on the attributes a match key comes from compare as match keys:
// a look-alike is not the ASCII value (the index path and the scan agree).
func TestFilter_MatchKeyAttributesFoldASCIIOnly(t *testing.T) {
	t.Parallel()
	user := map[string]any{
		"userName":    "alice@example.com",
		"displayName": "Émile",
		"emails":      []any{map[string]any{"value": "kim@example.com", "primary": true}},
	}
	for _, tc := range []struct {
		filter string
		want   bool
	}{
		{`userName eq "ALICE@example.com"`, true},
		{`userName eq "alİce@example.com"`, false},
		{`userName sw "ALİ"`, false},
		{`emails.value eq "KIM@example.com"`, true},
		{`emails[value eq "\u212Aim@example.com"]`, false},
		{`emails eq "\u212Aim@example.com"`, false},
		{`displayName eq "ÉMILE"`, true}, // not a match key attribute: Unicode case still folds
	} {
		f, err := ParseFilter(tc.filter)
		if err != nil {
			t.Fatalf("ParseFilter(%q): %v", tc.filter, err)
		}
		if got := f.Matches(user); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.filter, got, tc.want)
		}
	}
}

func TestSCIM_UserNameFilterFoldsASCIIOnly(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	h.createUser("alice@example.com")
	for filter, want := range map[string]float64{
		`userName eq "ALICE@example.com"`:                    1,
		`userName eq "alİce@example.com"`:                    0,
		`userName eq "alİce@example.com" and active eq true`: 0, // a scan, not the index
		`userName eq "Alice@Example.com" and active eq true`: 1,
	} {
		r := h.mustStatus(h.req("GET", "/Users?filter="+url.QueryEscape(filter), ""), 200)
		if got := r.body["totalResults"]; got != want {
			t.Errorf("%s: totalResults %v, want %v", filter, got, want)
		}
	}
}
