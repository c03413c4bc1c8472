package postgres

import "testing"

// A Go step is keyed by its migration's file name without the number: a
// renamed file must not silently lose its step.
func TestMigrationSteps_EachNamesAnEmbeddedMigration(t *testing.T) {
	t.Parallel()
	migs, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, m := range migs {
		keys[m.Key] = true
	}
	for k := range steps {
		if !keys[k] {
			t.Errorf("steps[%q] names no file in migrations", k)
		}
	}
}
