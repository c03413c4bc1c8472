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

// The target lets the heap grow by DefaultGCPercent of what is live, or by
// gcHeadroom when that is more, within maxGCPercent.
func TestGCPercentFor(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, maxGCPercent},
		{1 << 20, maxGCPercent},      // 16 MiB of headroom would be 1600 %
		{8 << 20, 200},               // a sidecar's small heap
		{16 << 20, 100},              // the Go default
		{46 << 20, DefaultGCPercent}, // the 100,000-user directory: as before
		{1 << 30, DefaultGCPercent},
	} {
		if got := gcPercentFor(tc.live); got != tc.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", tc.live>>20, got, tc.want)
		}
	}
}
