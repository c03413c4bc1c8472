package proxy

import (
	"bufio"
	"errors"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/portcullis-sso/portcullis/config"
)

// bypassRoutes are the routes the bypass corpus and the fuzz target attack.
var bypassRoutes = []config.Route{
	{Path: "/healthz", Public: true},
	{Path: "/public/", Public: true},
	{Path: "/admin/", AllowGroups: []string{"admins"}},
}

var admins = []string{"admins"}

func mustURL(tb testing.TB, target string) *url.URL {
	tb.Helper()
	u, err := url.ParseRequestURI(target)
	if err != nil {
		tb.Fatalf("parse %q: %v", target, err)
	}
	return u
}

func samePolicy(a, b policy) bool {
	return a.Public == b.Public && a.Route == b.Route &&
		(a.AllowGroups == nil) == (b.AllowGroups == nil) && slices.Equal(a.AllowGroups, b.AllowGroups)
}

func TestRouteTable_Decide(t *testing.T) {
	t.Parallel()
	routes := []config.Route{
		{Path: "/healthz", Public: true},
		{Path: "/public/", Public: true},
		{Path: "/admin/reports/", AllowGroups: []string{"auditors", "admins"}},
		{Path: "/admin/", AllowGroups: []string{"admins"}},
		{Path: "/api/status", Public: true},
		{Path: "/café/", AllowGroups: []string{"cooks"}},
	}
	tbl := newRouteTable(routes, config.PathParametersReject)
	pub := func(r string) policy { return policy{Public: true, Route: r} }
	login := func(r string) policy { return policy{Route: r} }
	groups := func(r string, g ...string) policy { return policy{AllowGroups: g, Route: r} }
	tests := []struct {
		name   string
		target string
		want   policy
	}{
		{"exact match", "/healthz", pub("/healthz")},
		{"exact route does not match a subpath", "/healthz/x", login("")},
		{"exact route does not match with a trailing slash", "/healthz/", login("")},
		{"exact route does not match a longer name", "/healthzx", login("")},
		{"query is ignored", "/healthz?full=1", pub("/healthz")},
		{"subtree root", "/public/", pub("/public/")},
		{"subtree without trailing slash", "/public", pub("/public/")},
		{"subtree descendant", "/public/css/site.css", pub("/public/")},
		{"subtree does not match a longer name", "/publicity", login("")},
		{"first match wins", "/admin/reports/q1", groups("/admin/reports/", "auditors", "admins")},
		{"first match wins, subtree root", "/admin/reports", groups("/admin/reports/", "auditors", "admins")},
		{"later route", "/admin/users", groups("/admin/", "admins")},
		{"restricted subtree without slash", "/admin", groups("/admin/", "admins")},
		{"unmatched needs login", "/app/page", login("")},
		{"root unmatched", "/", login("")},
		{"empty path is root", "http://h", login("")},
		{"absolute-form target", "http://h/admin/x", groups("/admin/", "admins")},
		{"doubled slashes collapsed", "//admin//users", groups("/admin/", "admins")},
		{"doubled slashes on a public route", "/public//x", pub("/public/")},
		{"uppercase restricted", "/ADMIN/users", groups("/admin/", "admins")},
		{"mixed case restricted", "/Admin/Reports/x", groups("/admin/reports/", "auditors", "admins")},
		{"case-only match of a public route needs login", "/Public/x", login("/public/")},
		{"case-only match of an exact public route", "/HEALTHZ", login("/healthz")},
		{"escaped letters decode before matching", "/%61dmin/x", groups("/admin/", "admins")},
		{"dotless i folds to i", "/adm%C4%B1n/x", groups("/admin/", "admins")},
		{"dotted capital I folds to i", "/ADM%C4%B0N/x", groups("/admin/", "admins")},
		{"non-ASCII route, encoded", "/caf%C3%A9/menu", groups("/café/", "cooks")},
		{"non-ASCII route, other case", "/CAF%C3%89/menu", groups("/café/", "cooks")},
		{"encoded space is fine mid-segment", "/My%20Files/a", login("")},
		{"dots inside a segment are fine", "/public/a..b/v1.2", pub("/public/")},
		{"colon is fine", "/wiki/Special:Search", login("")},
		{"tilde is fine", "/~user/x", login("")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tbl.decide(mustURL(t, tc.target))
			if err != nil {
				t.Fatalf("decide(%q) error %v, want %+v", tc.target, err, tc.want)
			}
			if !samePolicy(got, tc.want) {
				t.Errorf("decide(%q) = %+v, want %+v", tc.target, got, tc.want)
			}
		})
	}
}

func TestRouteTable_DecideRefusesAmbiguousPaths(t *testing.T) {
	t.Parallel()
	tbl := newRouteTable(bypassRoutes, config.PathParametersReject)
	tests := []struct{ name, target string }{
		{"encoded slash", "/admin%2Fx"},
		{"encoded backslash", "/a%5Cb"},
		{"raw backslash", `/a\b`},
		{"encoded dot", "/a%2Eb"},
		{"encoded percent", "/a%25b"},
		{"encoded question mark", "/a%3Fb"},
		{"encoded hash", "/a%23b"},
		{"encoded NUL", "/a%00"},
		{"encoded newline", "/a%0A"},
		{"encoded DEL", "/a%7F"},
		{"raw semicolon", "/a;b"},
		{"encoded semicolon", "/a%3Bb"},
		{"dot segment", "/a/./b"},
		{"dot-dot segment", "/a/../b"},
		{"trailing dot segment", "/a/."},
		{"segment ending in a dot", "/a./b"},
		{"segment ending in a space", "/a%20/b"},
		{"NTFS stream", "/a::$DATA"},
		{"8.3 short name", "/PROGRA~1/x"},
		{"invalid utf-8", "/%FF"},
		{"overlong slash", "/%C0%AF"},
		{"fullwidth letter", "/%EF%BD%81"},
		{"ideographic full stop", "/a%E3%80%82b"},
		{"zero-width space", "/a%E2%80%8Bb"},
		{"no-break space", "/a%C2%A0b"},
		{"C1 control", "/a%C2%85b"},
		{"asterisk", "*"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tbl.decide(mustURL(t, tc.target))
			if !errors.Is(err, errAmbiguousPath) {
				t.Errorf("decide(%q) = %+v, %v; want errAmbiguousPath", tc.target, got, err)
			}
		})
	}
	t.Run("invalid escape in a hand-built RawPath is not trusted", func(t *testing.T) {
		t.Parallel()
		u := &url.URL{Path: "/admin/x", RawPath: "/admin%zz"}
		got, err := tbl.decide(u)
		if err != nil || !slices.Equal(got.AllowGroups, admins) {
			t.Errorf("decide = %+v, %v; want admins", got, err)
		}
	})
	t.Run("opaque", func(t *testing.T) {
		t.Parallel()
		if _, err := tbl.decide(&url.URL{Scheme: "http", Opaque: "admin/x"}); !errors.Is(err, errAmbiguousPath) {
			t.Errorf("decide(opaque) error %v, want errAmbiguousPath", err)
		}
	})
}

// TestRouteTable_CaseOnlyMatchNeverLoosensALaterExactRoute covers routes
// that differ only in case: the stricter of the case-insensitive first match
// and the case-sensitive first match applies.
func TestRouteTable_CaseOnlyMatchNeverLoosensALaterExactRoute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		routes  []config.Route
		target  string
		want    policy
		wantErr bool
	}{
		{
			name:   "broader login-only route in other case",
			routes: []config.Route{{Path: "/Docs/"}, {Path: "/docs/internal/", AllowGroups: []string{"staff"}}},
			target: "/docs/internal/x",
			want:   policy{AllowGroups: []string{"staff"}, Route: "/docs/internal/"},
		},
		{
			name:   "exact case still takes the first route",
			routes: []config.Route{{Path: "/Docs/"}, {Path: "/docs/internal/", AllowGroups: []string{"staff"}}},
			target: "/Docs/internal/x",
			want:   policy{Route: "/Docs/"},
		},
		{
			name:   "earlier route is stricter",
			routes: []config.Route{{Path: "/DOCS/", AllowGroups: []string{"a"}}, {Path: "/docs/", Public: true}},
			target: "/docs/x",
			want:   policy{AllowGroups: []string{"a"}, Route: "/DOCS/"},
		},
		{
			name:   "later route is stricter",
			routes: []config.Route{{Path: "/DOCS/", AllowGroups: []string{"a", "b"}}, {Path: "/docs/", AllowGroups: []string{"b"}}},
			target: "/docs/x",
			want:   policy{AllowGroups: []string{"b"}, Route: "/docs/"},
		},
		{
			name:    "incomparable groups are refused",
			routes:  []config.Route{{Path: "/DOCS/", AllowGroups: []string{"a"}}, {Path: "/docs/", AllowGroups: []string{"b"}}},
			target:  "/docs/x",
			wantErr: true,
		},
		{
			name:   "loose fold of a dotted capital I",
			routes: []config.Route{{Path: "/İnfo/"}, {Path: "/info/", AllowGroups: []string{"x"}}},
			target: "/info/a",
			want:   policy{AllowGroups: []string{"x"}, Route: "/info/"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := newRouteTable(tc.routes, config.PathParametersReject).decide(mustURL(t, tc.target))
			if tc.wantErr {
				if !errors.Is(err, errAmbiguousPath) {
					t.Errorf("decide(%q) = %+v, %v; want errAmbiguousPath", tc.target, got, err)
				}
				return
			}
			if err != nil || !samePolicy(got, tc.want) {
				t.Errorf("decide(%q) = %+v, %v; want %+v", tc.target, got, err, tc.want)
			}
		})
	}
}

func TestNewRouteTable_NormalisesConfig(t *testing.T) {
	t.Parallel()
	groups := []string{"g"}
	tbl := newRouteTable([]config.Route{
		{Path: "/empty/", AllowGroups: []string{}},
		{Path: "/both/", Public: true, AllowGroups: groups},
		{Path: "//double//", Public: true},
	}, config.PathParametersReject)
	groups[0] = "changed" // the table keeps its own copy
	tests := []struct {
		target string
		want   policy
	}{
		{"/empty/x", policy{Route: "/empty/"}}, // [] means any signed-in user, reported as nil
		{"/both/x", policy{AllowGroups: []string{"g"}, Route: "/both/"}},
		{"/double/x", policy{Public: true, Route: "//double//"}},
	}
	for _, tc := range tests {
		got, err := tbl.decide(mustURL(t, tc.target))
		if err != nil || !samePolicy(got, tc.want) {
			t.Errorf("decide(%q) = %+v, %v; want %+v", tc.target, got, err, tc.want)
		}
	}
}

func TestRouteTable_DecideDoesNotAllocateForPlainPaths(t *testing.T) {
	tbl := newRouteTable(bypassRoutes, config.PathParametersReject)
	for _, target := range []string{"/app/page", "/admin/users", "/ADMIN/users", "/public/site.css"} {
		u := mustURL(t, target)
		if n := testing.AllocsPerRun(100, func() { _, _ = tbl.decide(u) }); n != 0 {
			t.Errorf("decide(%q) allocates %v times, want 0", target, n)
		}
	}
}

const bypassFile = "testdata/route-bypass.txt"

func loadBypassCorpus(tb testing.TB) []string {
	tb.Helper()
	f, err := os.Open(bypassFile)
	if err != nil {
		tb.Fatalf("open bypass corpus: %v", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, `"`) {
			s, err := strconv.Unquote(line)
			if err != nil {
				tb.Fatalf("%s:%d: bad quoted line %s: %v", bypassFile, n, line, err)
			}
			line = s
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("read bypass corpus: %v", err)
	}
	if len(out) < 30 {
		tb.Fatalf("%s has %d entries, want at least 30", bypassFile, len(out))
	}
	return out
}

// looseLower folds s the way a lenient upstream might: Unicode case
// folding through upper case (so "ı" and "İ" become "i") and fullwidth
// ASCII to ASCII.
func looseLower(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 0xFF01 && r <= 0xFF5E {
			r -= 0xFEE0
		}
		return unicode.ToLower(unicode.ToUpper(r))
	}, s)
}

// mentionsAdmin reports whether target could be aimed at /admin by any
// reading: decoded up to three times, loosely case-folded.
func mentionsAdmin(target string) bool {
	s := target
	for range 3 {
		if d, err := url.PathUnescape(s); err == nil {
			s = d
		}
	}
	return strings.Contains(looseLower(s), "adm")
}

// corpusURLs returns the URLs a target line is tried as.
func corpusURLs(target string) []*url.URL {
	us := []*url.URL{{Path: target}}
	if u, err := url.ParseRequestURI(target); err == nil {
		us = append(us, u)
	}
	return us
}

func TestRouteTable_BypassCorpus(t *testing.T) {
	t.Parallel()
	tbl := newRouteTable(bypassRoutes, config.PathParametersReject)
	for _, target := range loadBypassCorpus(t) {
		for _, u := range corpusURLs(target) {
			got, err := tbl.decide(u)
			if errors.Is(err, errAmbiguousPath) {
				continue
			}
			if err != nil {
				t.Errorf("decide(%q) unexpected error %v", u.EscapedPath(), err)
				continue
			}
			if got.Public {
				t.Errorf("line %q as %q: decided public (%+v)", target, u.EscapedPath(), got)
			}
			if mentionsAdmin(target) && !slices.Equal(got.AllowGroups, admins) {
				t.Errorf("line %q as %q: decided %+v, want refusal or groups %v", target, u.EscapedPath(), got, admins)
			}
		}
	}
}

// With upstreamPathParameters: strip-for-matching every corpus line must
// still be refused, or decided the way a Servlet container maps it.
func TestRouteTable_BypassCorpusStripForMatching(t *testing.T) {
	t.Parallel()
	tbl := newRouteTable(bypassRoutes, config.PathParametersStripForMatching)
	for _, target := range loadBypassCorpus(t) {
		for _, u := range corpusURLs(target) {
			checkRouteInvariants(t, tbl, u)
		}
	}
}

// checkRouteInvariants asserts the fuzz properties for one URL: a path the
// upstream reads as /admin… (any case; for a table that strips path
// parameters, with ";…" removed from each segment, as a Servlet container
// maps it) is refused or restricted to admins, and only /healthz and
// /public/ are public.
func checkRouteInvariants(t *testing.T, tbl *routeTable, u *url.URL) {
	got, err := tbl.decide(u)
	if err != nil {
		if !errors.Is(err, errAmbiguousPath) {
			t.Fatalf("decide(%q) unexpected error %v", u.EscapedPath(), err)
		}
		return
	}
	p := u.Path
	if p == "" {
		p = "/"
	}
	if tbl.stripParams {
		p = stripPathParams(p)
	}
	cleaned := path.Clean(p)
	if l := looseLower(cleaned); l == "/admin" || strings.HasPrefix(l, "/admin/") {
		if got.Public || !slices.Equal(got.AllowGroups, admins) {
			t.Fatalf("decide(%q) (cleaned %q) = %+v, want refusal or groups %v", u.EscapedPath(), cleaned, got, admins)
		}
	}
	if got.Public && cleaned != "/healthz" && cleaned != "/public" && !strings.HasPrefix(cleaned, "/public/") {
		t.Fatalf("decide(%q) (cleaned %q) = %+v: public outside /healthz and /public/", u.EscapedPath(), cleaned, got)
	}
}

func FuzzRouteDecide(f *testing.F) {
	for _, target := range loadBypassCorpus(f) {
		f.Add(target)
	}
	for _, s := range []string{"/", "/app/page", "/healthz", "/public/x", "/admin/x", "/Public/x", "/adm%C4%B1n/"} {
		f.Add(s)
	}
	tables := []*routeTable{
		newRouteTable(bypassRoutes, config.PathParametersReject),
		newRouteTable(bypassRoutes, config.PathParametersStripForMatching),
	}
	f.Fuzz(func(t *testing.T, target string) {
		for _, u := range corpusURLs(target) {
			for _, tbl := range tables {
				checkRouteInvariants(t, tbl, u)
			}
		}
	})
}

func BenchmarkRouteDecide(b *testing.B) {
	tbl := newRouteTable([]config.Route{
		{Path: "/healthz", Public: true},
		{Path: "/public/", Public: true},
		{Path: "/static/", Public: true},
		{Path: "/admin/reports/", AllowGroups: []string{"auditors"}},
		{Path: "/admin/", AllowGroups: []string{"admins"}},
		{Path: "/api/v1/status", Public: true},
	}, config.PathParametersReject)
	for _, bc := range []struct{ name, target string }{
		{"plain", "/app/page"},
		{"restricted", "/admin/users/42"},
		{"uppercase", "/ADMIN/users/42"},
		{"escaped", "/files/My%20Report.pdf"},
	} {
		u, err := url.ParseRequestURI(bc.target)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = tbl.decide(u)
			}
		})
	}
}

func TestRouteTable_StripForMatchingJudgesAsServletContainers(t *testing.T) {
	t.Parallel()
	strip := newRouteTable(bypassRoutes, config.PathParametersStripForMatching)
	reject := newRouteTable(bypassRoutes, config.PathParametersReject)
	for _, tc := range []struct {
		target string
		want   policy
		refuse bool
	}{
		{target: "/shop/cart;jsessionid=ABC123?x=1", want: policy{}},
		{target: "/public/site.css;jsessionid=ABC123", want: policy{Public: true, Route: "/public/"}},
		{target: "/orders;matrix=1;b=2/42", want: policy{}},
		{target: "/admin;x/", want: policy{AllowGroups: admins, Route: "/admin/"}},
		{target: "/admin/;/", want: policy{AllowGroups: admins, Route: "/admin/"}},
		{target: "/;/admin/", want: policy{AllowGroups: admins, Route: "/admin/"}},
		{target: "/healthz;x", want: policy{Public: true, Route: "/healthz"}},
		{target: "/public/..;/admin/", refuse: true},
		{target: "/public;/../admin/", refuse: true},
		{target: "/..;/..;/admin/", refuse: true},
		{target: "/.;/admin/", refuse: true},
		{target: "/%3Badmin/", refuse: true},
		{target: "/admin%3B/", refuse: true},
		{target: "/admin;x\\/", refuse: true},
	} {
		u := &url.URL{Path: tc.target}
		if pu, err := url.ParseRequestURI(tc.target); err == nil {
			u = pu
		}
		got, err := strip.decide(u)
		switch {
		case tc.refuse && !errors.Is(err, errAmbiguousPath):
			t.Errorf("strip %q: %+v, %v; want refused", tc.target, got, err)
		case !tc.refuse && (err != nil || !samePolicy(got, tc.want)):
			t.Errorf("strip %q: %+v, %v; want %+v", tc.target, got, err, tc.want)
		}
		if _, err := reject.decide(u); !errors.Is(err, errAmbiguousPath) {
			t.Errorf("reject %q: %v; want refused (the default refuses every ';')", tc.target, err)
		}
	}
}
