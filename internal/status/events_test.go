package status

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestEvents_EndpointsAndAChartWithoutScript(t *testing.T) {
	now := time.Now()
	hours := make([]EventHour, 24)
	for i := range hours {
		hours[i] = EventHour{Start: now.Add(time.Duration(i-23) * time.Hour), Written: i, Delivered: i / 2}
	}
	h := New(Options{Webhooks: func(context.Context) ([]WebhookEndpoint, []EventHour, error) {
		return []WebhookEndpoint{
			{Name: "http://app/hooks", LastSuccess: now.Add(-time.Minute), LastFailure: now.Add(-time.Hour), LastStatus: 503,
				Pending: 3, OldestPending: 90 * time.Second, Delivered: 42},
			{Name: "http://gone/hooks", Disabled: now, LastStatus: 410, LastFailure: now},
		}, hours, nil
	}})
	code, hdr, body := get(t, h, "/")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{`id="events"`, "http://app/hooks", "HTTP 503", "3, oldest 1m30s", "disabled by 410 Gone",
		`<svg id="events-chart"`, "peak 23/h"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script") || !strings.Contains(hdr.Get("Content-Security-Policy"), "default-src") {
		t.Errorf("the page has a script or lost its CSP: %q", hdr.Get("Content-Security-Policy"))
	}
}
