-- wrk reporter: one machine-readable line the benchmark script parses.
-- Latencies are in microseconds; errors are socket errors and timeouts,
-- non2xx counts responses with a status outside 2xx/3xx.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d errors=%d non2xx=%d requests=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status, summary.requests))
end
