package main

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"go.uber.org/zap"
)

// DefaultGCPercent is the garbage collector's target for `serve` when the
// environment sets neither GOGC nor GOMEMLIMIT and the live heap is large:
// the heap may grow to 1.4× what is live (the Go default is 2×). Most of a
// large deployment's live heap is the directory view, which lives as long
// as the process; doubling it for headroom would spend memory on nothing.
// With 100,000 users and 10,000 groups this keeps the resident memory
// under 110 MB after a period of traffic (README "Performance",
// bench/scim-memory.sh), for more frequent collections: the collector's
// share of the CPU in that measurement was 8 % (5 % at GOGC=50, 2–3 % at
// the default 100).
const DefaultGCPercent = 40

// gcHeadroom is how far the heap may grow past what is live before the
// next collection when DefaultGCPercent of the live heap would be less.
// The runtime's own floor is 4 MB × GOGC/100: at 40 a small heap (a
// sidecar with a small directory, forward-auth) was collected every 1.6 MB
// allocated, dozens of times a second under load, a fifth of the CPU of a
// forward-auth answer in a profile. 16 MiB is less than 40 % of the
// 100,000-user directory's live heap (46–48 MiB in bench/scim-memory.sh's
// gctrace), so that case, and its memory figures, are unchanged.
const gcHeadroom = 16 << 20

// maxGCPercent bounds the target for a nearly empty heap.
const maxGCPercent = 1000

// gcAdaptEvery is how often adaptGC looks at the live heap.
const gcAdaptEvery = 5 * time.Second

// tuneGC applies DefaultGCPercent unless the operator chose a policy of
// their own through the runtime's environment variables; it reports
// whether the policy is ours (then adaptGC keeps it).
func tuneGC(log *zap.Logger) bool {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		log.Info("garbage collector tuned by the environment",
			zap.String("gogc", os.Getenv("GOGC")), zap.String("gomemlimit", os.Getenv("GOMEMLIMIT")))
		return false
	}
	debug.SetGCPercent(DefaultGCPercent)
	return true
}

// gcPercentFor is the target that lets a heap with live bytes grow by
// DefaultGCPercent, or by gcHeadroom if that is more.
func gcPercentFor(live uint64) int {
	if live == 0 {
		return maxGCPercent
	}
	p := (gcHeadroom*100 + live - 1) / live
	return int(min(max(p, DefaultGCPercent), maxGCPercent))
}

// adaptGC sets the collector's target from the live heap every
// gcAdaptEvery until ctx ends (only when it moves by more than a tenth, so
// the target is not rewritten for noise).
func adaptGC(ctx context.Context) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	cur := DefaultGCPercent
	t := time.NewTicker(gcAdaptEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return // a runtime without the metric: keep DefaultGCPercent
		}
		if p := gcPercentFor(sample[0].Value.Uint64()); p*10 > cur*11 || p*10 < cur*9 {
			debug.SetGCPercent(p)
			cur = p
		}
	}
}
