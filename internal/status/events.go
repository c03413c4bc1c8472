package status

import (
	"context"
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"
)

// WebhookEndpoint is one webhook endpoint as the Events section shows it.
type WebhookEndpoint struct {
	Name          string // the URL without user information, query or fragment
	LastSuccess   time.Time
	LastFailure   time.Time
	LastStatus    int // of the last failure; 0: a network error
	LastError     string
	Disabled      time.Time // a 410 disabled it; zero: enabled
	Pending       int
	OldestPending time.Duration
	Delivered     int64
	Failed        int64 // given up on
}

// EventHour counts the events written in one hour and, of those, the ones
// every endpoint is done with.
type EventHour struct {
	Start              time.Time
	Written, Delivered int
}

// Webhooks is the Events section's source: the endpoints and the last 24
// hours, oldest first.
type Webhooks func(ctx context.Context) ([]WebhookEndpoint, []EventHour, error)

// eventsView is the Events section.
type eventsView struct {
	Shown     bool
	Endpoints []endpointView
	Chart     template.HTML // the server-rendered SVG; no script, no style
}

type endpointView struct {
	Name, LastSuccess, LastFailure, Backlog, State, StateClass, Delivered, Failed string
}

// events fills the Events section.
func (h *Handler) events(ctx context.Context, p *page, now time.Time) {
	if h.o.Webhooks == nil {
		return
	}
	eps, hours, err := h.o.Webhooks(ctx)
	if err != nil {
		h.problem(p, "webhooks", err)
		return
	}
	v := eventsView{Shown: true, Chart: chart(hours)}
	for _, e := range eps {
		r := endpointView{Name: e.Name, LastSuccess: "never", LastFailure: "none", State: "delivering", StateClass: "ok",
			Delivered: strconv.FormatInt(e.Delivered, 10), Failed: strconv.FormatInt(e.Failed, 10),
			Backlog: strconv.Itoa(e.Pending)}
		if !e.LastSuccess.IsZero() {
			r.LastSuccess = age(now, e.LastSuccess)
		}
		if !e.LastFailure.IsZero() {
			status := "network error or timeout"
			if e.LastStatus != 0 {
				status = "HTTP " + strconv.Itoa(e.LastStatus)
			}
			r.LastFailure = age(now, e.LastFailure) + ": " + status
		}
		if e.Pending > 0 {
			r.Backlog += ", oldest " + e.OldestPending.Round(time.Second).String()
		}
		if !e.Disabled.IsZero() {
			r.State, r.StateClass = "disabled by 410 Gone "+age(now, e.Disabled)+"; change its config entry to enable it", "degraded"
		}
		v.Endpoints = append(v.Endpoints, r)
	}
	p.Events = v
}

// chart draws events written (grey) and delivered everywhere (green) per
// hour as an SVG bar chart.
func chart(hours []EventHour) template.HTML {
	const w, h, bar = 480, 120, 20
	peak := 1
	for _, x := range hours {
		peak = max(peak, x.Written)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="events-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="Events written and delivered per hour, last 24 hours (peak %d)">`, w, h+14, peak)
	for i, x := range hours {
		hw := h * x.Written / peak
		hd := h * x.Delivered / peak
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#bbb"><title>%s: %d written, %d delivered</title></rect>`,
			i*bar, h-hw, bar-4, hw, x.Start.UTC().Format("15:04"), x.Written, x.Delivered)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#2a7"></rect>`, i*bar+4, h-hd, bar-12, hd)
	}
	fmt.Fprintf(&b, `<text x="0" y="%d" font-size="10">24 h ago</text><text x="%d" y="%d" font-size="10" text-anchor="end">now · peak %d/h</text></svg>`,
		h+12, w, h+12, peak)
	return template.HTML(b.String()) // only numbers and our own times: nothing from a client
}
