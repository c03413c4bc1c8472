package proxy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

func TestGroupsHeader_LeavesOutNamesASplitWouldChange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		groups []string
		want   string
	}{
		{"none", nil, ""},
		{"one", []string{"staff"}, "staff"},
		{"plain names joined", []string{"staff", "Ventes Équipe", "a;b=c", `back\slash`}, `staff,Ventes Équipe,a;b=c,back\slash`},
		{"comma left out", []string{"sales,admins", "staff"}, "staff"},
		{"two commas left out", []string{"x,admins,y"}, ""},
		{"leading space left out", []string{" admins", "staff"}, "staff"},
		{"trailing tab left out", []string{"admins\t"}, ""},
		{"double quote left out", []string{`"admins"`, "staff"}, "staff"},
		{"control character left out", []string{"admins\x00", "staff", "x\ny"}, "staff"},
		{"empty name left out", []string{"", "staff"}, "staff"},
		{"unicode white space at an end left out", []string{"\u00a0admins", "admins\u2003", "\ufeffadmins", "staff"}, "staff"},
		{"unicode white space inside kept", []string{"a\u00a0b"}, "a\u00a0b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, leftOut := groupsHeader(tc.groups)
			if got != tc.want {
				t.Errorf("groupsHeader(%q) = %q, want %q", tc.groups, got, tc.want)
			}
			carried := 0
			if tc.want != "" {
				carried = len(strings.Split(tc.want, ","))
			}
			if wantLeftOut := carried < len(tc.groups); leftOut != wantLeftOut {
				t.Errorf("groupsHeader(%q) left out %v, want %v", tc.groups, leftOut, wantLeftOut)
			}
		})
	}
}

// No group name, however hostile, makes an app that splits the header on
// commas and trims see a name the user is not in, and every name the
// header carries comes back exactly.
func FuzzGroupsHeader(f *testing.F) {
	for _, seed := range [][2]string{
		{"sales,admins", "staff"}, {" admins", "x"}, {`a"b`, `\`}, {"admins\x00", "ok"}, {"", "é, ü"}, {"a,admins,b", "admins "},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		groups := []string{a, b}
		h, _ := groupsHeader(groups)
		if h == "" {
			return
		}
		var pieces []string
		for p := range strings.SplitSeq(h, ",") {
			pieces = append(pieces, strings.TrimSpace(sanitizeHeaderValue(p)))
		}
		var carried []string
		for _, g := range groups {
			if identity.HeaderSafeGroup(g) {
				carried = append(carried, g)
			}
		}
		if !slices.Equal(pieces, carried) {
			t.Fatalf("groups %q: header %q reads as %q, want exactly %q", groups, h, pieces, carried)
		}
	})
}

// A left-out group is logged once, whatever the number of requests.
func TestProxy_LeftOutGroupIsLoggedOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newEcho(t).URL, nil)
	user := identity.Principal{User: "eve", Groups: []string{"sales,admins", "staff"}}
	for range 3 {
		e := decodeEcho(t, h.do("GET", "/app", nil, h.sessionCookies(user, time.Now().Add(time.Hour))))
		if got := e.Header.Get("X-Forwarded-Groups"); got != "staff" {
			t.Fatalf("groups header %q, want staff", got)
		}
	}
	if n := h.logs.FilterMessageSnippet("group left out").FilterField(zap.String("group", "sales,admins")).Len(); n != 1 {
		t.Errorf("%d warnings for the left-out group, want 1", n)
	}
}
