package redirect

import (
	"strings"
	"testing"
)

func TestPolicy_AllowsListedHostsOnly(t *testing.T) {
	t.Parallel()
	p := NewPolicy([]string{"app2.example.com", "App3.example.com:8443"}, false)
	accepted := []string{
		"https://app2.example.com",
		"https://app2.example.com/",
		"https://app2.example.com/x?y=1#z",
		"https://APP2.example.com/x",
		"https://app3.example.com:8443/x",
		"/same-origin/path",
	}
	for _, s := range accepted {
		if got, ok := p.Safe(s); !ok || got != s {
			t.Errorf("Safe(%q) = (%q, %v), want it unchanged", s, got, ok)
		}
	}
	refusedTargets := []string{
		"http://app2.example.com/x",                 // http on an https site
		"https://app3.example.com/x",                // the listed entry has a port
		"https://app2.example.com:443/x",            // not the listed spelling
		"https://app2.example.com./x",               // trailing dot
		"https://evil.com/x",                        // not listed
		"https://app2.example.com.evil.com/x",       // suffix
		"https://evil.com@app2.example.com/x",       // user info
		"https://app2.example.com@evil.com/x",       // user info
		"https://app2%2eexample.com/x",              // escaped
		"https://app2.example.com\\@evil.com/",      // backslash
		"https://app2.example.com//evil.com",        // path fails Safe
		"https://app2.example.com/a/../b",           // dot-segment
		"https://app2.example.com/%2F%2Fevil.com",   // decodes to //
		"https://app2.example.com/ x",               // space
		"https://app2.example.com/\u200bx",          // format character
		"https://*.example.com/x",                   // no wildcards
		"//app2.example.com/x",                      // scheme-relative
		"javascript://app2.example.com/%0aalert(1)", // other scheme
		"HTTPS://app2.example.com/x",                // scheme spelled otherwise
		"https://app2.example.com?x=1",              // query without a path
		"https://app2.example.com/" + strings.Repeat("a", MaxLen),
	}
	for _, s := range refusedTargets {
		if got, ok := p.Safe(s); ok || got != "/" {
			t.Errorf("Safe(%q) = (%q, %v), want (\"/\", false)", s, got, ok)
		}
	}
}

func TestPolicy_HTTPOnlyWhenAllowed(t *testing.T) {
	t.Parallel()
	if _, ok := NewPolicy([]string{"app2.localhost:8080"}, true).Safe("http://app2.localhost:8080/x"); !ok {
		t.Error("http target refused on an http site")
	}
}

// TestPolicy_CorpusStillRefused: with hosts listed, every open-redirect
// payload of the corpus is still refused (none names a listed host).
func TestPolicy_CorpusStillRefused(t *testing.T) {
	t.Parallel()
	p := NewPolicy([]string{"app.example.com", "example.com"}, true)
	for _, s := range loadPayloads(t) {
		if got, ok := p.Safe(s); ok {
			t.Errorf("Safe(%q) = (%q, true) with hosts listed", s, got)
		}
	}
	for _, tc := range refused {
		if _, ok := p.Safe(tc.target); ok {
			t.Errorf("Safe(%q) accepted with hosts listed", tc.target)
		}
	}
}

// TestPolicy_WithoutHostsIsSafe: no hosts, no absolute target.
func TestPolicy_WithoutHostsIsSafe(t *testing.T) {
	t.Parallel()
	for _, p := range []*Policy{nil, NewPolicy(nil, false)} {
		if _, ok := p.Safe("https://app.example.com/"); ok {
			t.Error("absolute target accepted without allowedRedirectHosts")
		}
	}
}

func FuzzPolicySafe(f *testing.F) {
	p := NewPolicy([]string{"app2.example.com"}, false)
	f.Add("https://app2.example.com/x")
	for _, s := range loadPayloads(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := p.Safe(s)
		if !ok {
			return
		}
		const base = "https://app2.example.com"
		if strings.HasPrefix(strings.ToLower(got), base) {
			rest := got[len(base):]
			if rest != "" && (rest[0] != '/' || strings.HasPrefix(rest, "//")) {
				t.Fatalf("Safe(%q) accepted with path %q", s, rest)
			}
			return
		}
		checkInvariants(t, got)
	})
}
