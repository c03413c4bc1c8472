package web

import (
	"strings"
	"testing"
)

// PlainValue's eight-bytes-at-a-time test agrees with the byte loop for
// every byte value at every position of values up to 17 bytes long,
// around plain and high (obs-text) neighbours.
func TestPlainValue_AgreesWithTheByteLoop(t *testing.T) {
	slow := func(v string) bool {
		for i := 0; i < len(v); i++ {
			if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
				return false
			}
		}
		return true
	}
	for _, fill := range []string{"a", "\xff", "\t", " ", "~"} {
		for n := 1; n <= 17; n++ {
			for pos := 0; pos < n; pos++ {
				for c := 0; c < 256; c++ {
					b := []byte(strings.Repeat(fill, n))
					b[pos] = byte(c)
					if v := string(b); PlainValue(v) != slow(v) {
						t.Fatalf("PlainValue(%q) = %v, want %v", v, PlainValue(v), slow(v))
					}
				}
			}
		}
	}
}

func TestIsToken(t *testing.T) {
	for s, want := range map[string]bool{"GET": true, "X-Forwarded-User": true, "x_y!#$%&'*+.^`|~": true,
		"": false, "a b": false, "a:b": false, "a\x00": false, "caf\xc3\xa9": false, "(a)": false} {
		if IsToken(s) != want {
			t.Errorf("IsToken(%q) = %v, want %v", s, !want, want)
		}
	}
}
