package scimsync

// BenchmarkGateLookupScale is how the gate's cost grows with the directory:
// the lookup time and allocations per request, and the heap the in-memory
// view holds, at 10k, 100k and (with PORTCULLIS_BENCH_1M=1, since building
// it takes a while and about 1 GiB) 1M users, each with groups of 50
// members (n/10 groups). Lookups walk a spread of users, as real traffic
// does, rather than one hot key.

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

func BenchmarkGateLookupScale(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if os.Getenv("PORTCULLIS_BENCH_1M") == "1" {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			d := bigDirectory(n, 10)
			runtime.GC()
			runtime.ReadMemStats(&after)
			keys := make([]string, 4096)
			for i := range keys {
				keys[i] = fmt.Sprintf("user%05d@example.com", (i*7919)%n)
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				if d.Standing(keys[i&4095]).State == identity.StateUnknown {
					b.Fatal("not found")
				}
				i++
			}
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB-view")
			runtime.KeepAlive(d)
		})
	}
}

// BenchmarkSessionRevoked is the per-request question whether a session
// was ended one by one, with 100,000 ended sessions in the view: a read
// lock and a map lookup, no allocation.
func BenchmarkSessionRevoked(b *testing.B) {
	d, _ := NewDirectory("email")
	exp := time.Now().Add(time.Hour)
	for i := range 100_000 {
		d.sessions.add(&store.RevokedSession{ID: "ended-" + strconv.Itoa(i), Expires: exp}, time.Now())
	}
	b.ReportAllocs()
	for b.Loop() {
		if d.SessionRevoked("live-session-id-xyz") {
			b.Fatal("revoked")
		}
	}
}
