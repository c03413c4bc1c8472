package identity

import "testing"

func TestMatchKey_FoldsASCIILettersOnly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"ascii upper case folds", "Alice@Example.COM", "alice@example.com"},
		{"already folded is unchanged", "bob@example.com", "bob@example.com"},
		{"empty", "", ""},
		{"dotted capital I (U+0130) is kept", "alİce@example.com", "alİce@example.com"},
		{"Kelvin sign (U+212A) is kept", "\u212Aim@example.com", "\u212Aim@example.com"},
		{"long s (U+017F) is kept", "\u017Fam@example.com", "\u017Fam@example.com"},
		{"non-ASCII upper case is kept beside folded ASCII", "ÉMILE@X.ORG", "Émile@x.org"},
		{"bytes around the letters are kept", "@[`{Z", "@[`{z"},
		{"invalid UTF-8 is kept", "A\xffB", "a\xffb"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := MatchKey(tc.in); got != tc.want {
				t.Errorf("MatchKey(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestMatchKey_LookalikesDoNotMatchASCII(t *testing.T) {
	t.Parallel()
	for _, pair := range [][2]string{
		{"alİce@example.com", "alice@example.com"},
		{"\u212Aim@example.com", "kim@example.com"},
		{"\u017Fam@example.com", "sam@example.com"},
	} {
		if MatchKey(pair[0]) == MatchKey(pair[1]) {
			t.Errorf("MatchKey(%q) == MatchKey(%q): a look-alike matches the ASCII identity", pair[0], pair[1])
		}
	}
}

func TestMatchKey_NoAllocationWhenAlreadyFolded(t *testing.T) {
	s := "alice@example.com"
	if n := testing.AllocsPerRun(100, func() { _ = MatchKey(s) }); n != 0 {
		t.Errorf("MatchKey of a folded key allocates %v times, want 0", n)
	}
}

func FuzzMatchKey(f *testing.F) {
	for _, s := range []string{"Alice@Example.com", "alİce", "\u212Aim", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k := MatchKey(s)
		if len(k) != len(s) {
			t.Fatalf("MatchKey(%q) changed the length", s)
		}
		if MatchKey(k) != k {
			t.Fatalf("MatchKey is not idempotent on %q", s)
		}
		for i := 0; i < len(s); i++ {
			if c := s[i]; (c < 'A' || c > 'Z') && k[i] != c {
				t.Fatalf("MatchKey(%q) changed byte %d (%q), which is not an ASCII capital", s, i, c)
			}
		}
	})
}
