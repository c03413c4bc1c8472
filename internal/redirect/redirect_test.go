package redirect

import (
	"bufio"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
)

const payloadFile = "testdata/open-redirect-payloads.txt"

// loadPayloads reads the open-redirect corpus; see the file's header for
// the format. A file that fails to load fails the test.
func loadPayloads(tb testing.TB) []string {
	tb.Helper()
	f, err := os.Open(payloadFile)
	if err != nil {
		tb.Fatalf("open payload corpus: %v", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, `"`) {
			s, err := strconv.Unquote(line)
			if err != nil {
				tb.Fatalf("%s:%d: bad quoted payload %s: %v", payloadFile, n, line, err)
			}
			line = s
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("read payload corpus: %v", err)
	}
	return out
}

// legitimate targets must pass unchanged.
var legitimate = []struct {
	name, target string
}{
	{"root", "/"},
	{"path", "/app"},
	{"trailing slash", "/app/"},
	{"nested with query", "/app/page?x=1&y=2"},
	{"fragment", "/a/b#frag"},
	{"query and fragment", "/app?x=1#y"},
	{"plus in query", "/search?q=a+b"},
	{"encoded slash in query", "/app?return=%2Fhome"},
	{"absolute URL in query", "/login/done?next=https://evil.com"},
	{"double slash in query", "/app?x=//y"},
	{"file with extension", "/static/app.min.js"},
	{"dots inside a segment", "/a/..b/c.../v1.2"},
	{"colon in path", "/wiki/Special:Search"},
	{"scheme-like segment", "/https:evil.com"},
	{"tilde", "/~user/page"},
	{"encoded utf-8 letter", "/caf%C3%A9"},
	{"raw utf-8 letters", "/日本語/ページ"},
	{"encoded question mark", "/what%3F"},
	{"long but within limit", "/" + strings.Repeat("a", MaxLen-1)},
}

// refused holds targets that look harmless but are refused on purpose; each
// documents a decision.
var refused = []struct {
	name, target string
}{
	{"empty", ""},
	{"relative", "app"},
	{"encoded space is whitespace once decoded", "/path%20with%20space"},
	{"raw space", "/path with space"},
	{"encoded space in query", "/search?q=a%20b"},
	{"double slash inside path", "/a//b"},
	{"dot segment", "/a/./b"},
	{"dot-dot segment", "/a/../b"},
	{"trailing dot segment", "/a/.."},
	{"bare percent", "/100%"},
	{"encoded percent decodes to a bare percent", "/100%25"},
	{"invalid escape", "/%zz"},
	{"invalid utf-8", "/\xff"},
	{"encoded invalid utf-8", "/%FF"},
	{"symbol in path", "/☃"},
	{"fullwidth solidus in path", "/a／b"},
	{"backslash in query", "/app?x=\\"},
	{"control in fragment", "/app#\x01"},
	{"replacement character", "/\ufffd"},
	{"four layers of encoding", "/%25252541"},
	{"too long", "/" + strings.Repeat("a", MaxLen)},
}

func TestSafe_AcceptsLegitimateTargetsUnchanged(t *testing.T) {
	t.Parallel()
	for _, tc := range legitimate {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := Safe(tc.target)
			if !ok || got != tc.target {
				t.Errorf("Safe(%q) = (%q, %v), want (%q, true)", tc.target, got, ok, tc.target)
			}
		})
	}
}

func TestSafe_RefusesDocumentedEdgeCases(t *testing.T) {
	t.Parallel()
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got, ok := Safe(tc.target); ok || got != "/" {
				t.Errorf("Safe(%q) = (%q, %v), want (\"/\", false)", tc.target, got, ok)
			}
		})
	}
}

func TestSafe_RefusesOpenRedirectPayloads(t *testing.T) {
	t.Parallel()
	payloads := loadPayloads(t)
	if len(payloads) < 50 {
		t.Fatalf("%s has %d payloads, want at least 50", payloadFile, len(payloads))
	}
	for _, p := range payloads {
		if got, ok := Safe(p); ok || got != "/" {
			t.Errorf("Safe(%q) = (%q, %v), want (\"/\", false)", p, got, ok)
		}
	}
}

// checkInvariants asserts what every accepted result must satisfy.
func checkInvariants(t *testing.T, in string) {
	got, ok := Safe(in)
	if !ok {
		if got != "/" {
			t.Fatalf("Safe(%q) refused but returned %q, want \"/\"", in, got)
		}
		return
	}
	if got != in {
		t.Fatalf("Safe(%q) accepted but returned %q", in, got)
	}
	form := got
	for round := 0; round < 3; round++ {
		if !strings.HasPrefix(form, "/") {
			t.Fatalf("Safe(%q) accepted; form %d %q does not start with /", in, round, form)
		}
		if len(form) > 1 && (form[1] == '/' || form[1] == '\\') {
			t.Fatalf("Safe(%q) accepted; form %d %q starts with %q", in, round, form, form[:2])
		}
		for _, r := range form {
			if r < 0x20 || r == 0x7f || r == '\\' {
				t.Fatalf("Safe(%q) accepted; form %d %q contains %q", in, round, form, r)
			}
		}
		u, err := url.Parse(form)
		if err != nil {
			t.Fatalf("Safe(%q) accepted; form %d %q does not parse: %v", in, round, form, err)
		}
		if u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
			t.Fatalf("Safe(%q) accepted; form %d %q has scheme %q host %q user %v opaque %q",
				in, round, form, u.Scheme, u.Host, u.User, u.Opaque)
		}
		d, err := url.PathUnescape(form)
		if err != nil {
			t.Fatalf("Safe(%q) accepted; form %d %q does not decode: %v", in, round, form, err)
		}
		form = d
	}
}

func FuzzSafe(f *testing.F) {
	for _, tc := range legitimate {
		f.Add(tc.target)
	}
	for _, tc := range refused {
		f.Add(tc.target)
	}
	for _, p := range loadPayloads(f) {
		f.Add(p)
	}
	f.Fuzz(checkInvariants)
}
