package config

import (
	"errors"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// minimal is the smallest valid config; tests append top-level keys to it.
const minimal = `version: 1
publicURL: https://app.example.com
upstream: http://127.0.0.1:3000
saml:
  idpMetadataURL: https://idp.example.com/metadata
  certFile: sp.crt
  keyFile: sp.key
session:
  keysFile: session.keys
`

func readFixture(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return data
}

func noEnv(string) (string, bool) { return "", false }

func envFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// problemLines returns the rendered problems of err, failing the test when
// err is not a *ValidationError.
func problemLines(t *testing.T, err error) []string {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	out := make([]string, len(ve.Problems))
	for i, p := range ve.Problems {
		out[i] = p.String()
	}
	return out
}

// parseExample parses testdata/example.yaml, failing the test if it does not load.
func parseExample(t *testing.T) *Config {
	t.Helper()
	c, err := ParseWithEnv(readFixture(t, "testdata/example.yaml"), "/etc/portcullis", noEnv)
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	return c
}
