package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, and that its result is
// consistent: a Config and no error, or a *ValidationError and no Config.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files in testdata (err %v)", err)
	}
	for _, name := range files {
		f.Add(readFixture(f, name))
	}
	for _, s := range []string{
		minimal,
		minimal + "headers: {}\nroutes: [{path: /a/, allowGroups: [x]}, {path: /a/b}]\n",
		minimal + "listen: ${SET}\nupstream: ${UNSET}\n",
		"a: &a [*a]\nversion: *a\n",
		"version: &v 1\nlisten: *v\nsaml: &s {certFile: *s}\n",
		"headers: &h {X-A: *h}\n",
		"<<: {version: 1}\n",
		"? [a]\n: b\n",
		"--- 1\n--- 2\n",
		"version: !!binary aGk=\n",
	} {
		f.Add([]byte(s))
	}
	env := func(name string) (string, bool) {
		if strings.HasPrefix(name, "SET") {
			return "value: ${SET}\n- x", true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseWithEnv(data, "/etc/portcullis", env)
		if err != nil {
			if c != nil {
				t.Fatal("got a Config along with an error")
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("error %v (%T) is not a non-empty *ValidationError", err, err)
			}
			return
		}
		if c == nil {
			t.Fatal("nil Config without an error")
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("a parsed Config fails Validate again: %v", err)
		}
		_ = c.Warnings()
	})
}
