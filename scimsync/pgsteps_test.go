package scimsync

import (
	"testing"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// A Go step is keyed by its migration's file name without the number: a
// renamed file must not silently lose its step.
func TestMigrationSteps_EachNamesAnEmbeddedMigration(t *testing.T) {
	t.Parallel()
	keys := func(load func() ([]store.Migration, error)) map[string]bool {
		migs, err := load()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, m := range migs {
			out[m.Key] = true
		}
		return out
	}
	pgKeys := keys(pgMigrations)
	for k := range pgSteps {
		if !pgKeys[k] {
			t.Errorf("pgSteps[%q] names no file in migrations_postgres", k)
		}
	}
}
