package main

import (
	"runtime/debug"
	"testing"

	"go.uber.org/zap"
)

// serve's collector target: DefaultGCPercent unless the environment chose.
func TestTuneGC_DefaultUnlessTheEnvironmentChose(t *testing.T) {
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	for _, tc := range []struct {
		name, gogc, memlimit string
		want                 int
	}{
		{"neither set", "", "", DefaultGCPercent},
		{"GOGC set", "200", "", 100},
		{"GOMEMLIMIT set", "", "512MiB", 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOGC", tc.gogc)
			t.Setenv("GOMEMLIMIT", tc.memlimit)
			debug.SetGCPercent(100)
			tuneGC(zap.NewNop())
			if got := debug.SetGCPercent(100); got != tc.want {
				t.Errorf("GC percent %d, want %d", got, tc.want)
			}
		})
	}
}
