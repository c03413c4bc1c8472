package main

import (
	"os"
	"runtime/debug"

	"go.uber.org/zap"
)

// DefaultGCPercent is the garbage collector's target for `serve` when the
// environment sets neither GOGC nor GOMEMLIMIT: the heap may grow to 1.4×
// what is live (the Go default is 2×). Most of a large deployment's live
// heap is the directory view, which lives as long as the process; doubling
// it for headroom would spend memory on nothing. With 100,000 users and
// 10,000 groups this keeps the resident memory under 110 MB after a period
// of traffic (README "Performance", bench/scim-memory.sh), for more
// frequent collections: the collector's share of the CPU in that
// measurement was 8 % (5 % at GOGC=50, 2–3 % at the default 100).
const DefaultGCPercent = 40

// tuneGC applies DefaultGCPercent unless the operator chose a policy of
// their own through the runtime's environment variables.
func tuneGC(log *zap.Logger) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		log.Info("garbage collector tuned by the environment",
			zap.String("gogc", os.Getenv("GOGC")), zap.String("gomemlimit", os.Getenv("GOMEMLIMIT")))
		return
	}
	debug.SetGCPercent(DefaultGCPercent)
}
