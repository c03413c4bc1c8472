package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

// filterCookiesRebuilt is filterCookies without the keptSpan shortcut: the
// reference the shortcut must agree with.
func filterCookiesRebuilt(lines []string, f cookieFilter) string {
	var b strings.Builder
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ";") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			name, _, _ := strings.Cut(part, "=")
			if f.ours(strings.TrimSpace(name)) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(part)
		}
	}
	return b.String()
}

var cookieLines = []string{
	"",
	"portcullis=SECRET",
	"theme=dark; portcullis=SECRET",
	"portcullis=SECRET; theme=dark; lang=en",
	"a=1; portcullis=SECRET; b=2",
	"a=1;b=2; portcullis=S",
	"a=1;  b=2",
	" a=1; b=2 ",
	"a=1; ; b=2",
	";;portcullis_t_x=1;a=1",
	"portcullis_1=MORE; portcullis_t_abc=TRACK; c=3",
	"portcullisx=1; xportcullis=2; portcullis_12=3",
	"a=\"quoted; value\"; portcullis=S",
	"a=1;\tb=2",
	"portcullis =S; a=1",
}

func TestFilterCookies_ShortcutAgreesWithRebuild(t *testing.T) {
	t.Parallel()
	f := testCookieFilter()
	for _, line := range cookieLines {
		if got, want := filterCookies([]string{line}, f), filterCookiesRebuilt([]string{line}, f); got != want {
			t.Errorf("filterCookies(%q) = %q, want %q", line, got, want)
		}
	}
}

func FuzzFilterCookies_ShortcutAgreesWithRebuild(f *testing.F) {
	for _, line := range cookieLines {
		f.Add(line)
	}
	cf := testCookieFilter()
	f.Fuzz(func(t *testing.T, line string) {
		if got, want := filterCookies([]string{line}, cf), filterCookiesRebuilt([]string{line}, cf); got != want {
			t.Errorf("filterCookies(%q) = %q, want %q", line, got, want)
		}
	})
}

// The header rewrite runs on every proxied request; its allocations are
// part of the hot-path budget (bench/alloc-budget.txt), and these are the
// ones it must never make again.
func TestApplyIdentity_Allocations(t *testing.T) {
	plan := newHeaderPlan(testHeaders)
	cf := testCookieFilter()
	p := &identity.Principal{User: "alice", Email: "alice@example.com", Name: "Alice", Groups: []string{"staff"}}
	in := http.Header{
		"Accept":           {"text/html"},
		"Accept-Language":  {"en"},
		"User-Agent":       {"bench"},
		"Cookie":           {"theme=dark; portcullis=abcdef"},
		"X-Forwarded-User": {"spoof"},
		"X_forwarded_user": {"spoof"},
	}
	hs := make([]http.Header, 0, 200)
	for range 201 {
		hs = append(hs, in.Clone())
	}
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		applyIdentity(hs[i], plan, cf, p)
		i++
	})
	// One backing array for the identity header values, nothing per
	// inbound header and nothing for the Cookie line.
	if allocs > 1 {
		t.Errorf("applyIdentity allocates %.0f times per request, want at most 1", allocs)
	}
	h := hs[0]
	if h.Get("X-Forwarded-User") != "alice" || h["X_forwarded_user"] != nil || h.Get("Cookie") != "theme=dark" {
		t.Errorf("rewritten headers wrong: %v", h)
	}
}
