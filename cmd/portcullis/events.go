package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/filewatch"
	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/internal/status"
	"github.com/portcullis-sso/portcullis/internal/webhook"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// webhookEndpoints reads each events.webhooks entry's secret file.
func webhookEndpoints(cfg *config.Config) ([]webhook.Endpoint, error) {
	var eps []webhook.Endpoint
	for i, w := range cfg.Events.Webhooks {
		field := fmt.Sprintf("events.webhooks[%d].secretFile", i)
		text, err := os.ReadFile(cfg.Resolve(w.SecretFile))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		secrets, err := webhook.ParseSecrets(text)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", field, w.SecretFile, err)
		}
		eps = append(eps, webhook.Endpoint{URL: w.URL, Types: w.Types, Secrets: secrets})
	}
	return eps, nil
}

// secretsRecheck is how often a webhook secret file is checked for a
// change, as the SCIM tokens files are.
const secretsRecheck = tokensRecheck

// eventRunners are the background loops of the event log: the deliverer
// (which also prunes past events.retention) and the backlog gauges; and
// the watchers that re-read the webhook secret files when they change.
func eventRunners(cfg *config.Config, d store.Deliveries, m *metrics.Metrics, log *zap.Logger) ([]func(context.Context), []*filewatch.Watcher, error) {
	eps, err := webhookEndpoints(cfg)
	if err != nil {
		return nil, nil, err
	}
	deliverer := webhook.New(webhook.Options{Store: d, Endpoints: eps, Holder: leaseHolder(),
		Retention: cfg.Events.Retention, MaxAge: cfg.Events.WebhookMaxAge, Organizations: cfg.HasOrganizations(), Logger: log, Metrics: m})
	// A write on this replica (or, on PostgreSQL, one heard from another)
	// wakes the deliverer at once rather than at its next look.
	d.OnEvents(deliverer.Wake)
	runs := []func(context.Context){deliverer.Run}
	if len(eps) > 0 {
		runs = append(runs, func(ctx context.Context) { webhook.Observe(ctx, d, eps, m, time.Now, log) })
	}
	var watches []*filewatch.Watcher
	for i, w := range cfg.Events.Webhooks {
		watches = append(watches, secretsWatcher(cfg.Resolve(w.SecretFile), fmt.Sprintf("events.webhooks[%d].secretFile", i),
			eps[i], deliverer, log))
	}
	return runs, watches, nil
}

// secretsWatcher re-reads ep's secret file when it changes: rotation
// (a second line) without a restart. A file that does not parse is
// refused, logged with its path, and the secrets in use stay.
func secretsWatcher(path, field string, ep webhook.Endpoint, d *webhook.Deliverer, log *zap.Logger) *filewatch.Watcher {
	return filewatch.New(path, secretsRecheck, func(b []byte) error {
		secrets, err := webhook.ParseSecrets(b)
		if err != nil {
			return fmt.Errorf("%s %s: %w", field, path, err)
		}
		d.SetSecrets(ep.URL, secrets)
		log.Info("webhook secrets reloaded", zap.String("endpoint", ep.Name()), zap.Int("secrets", len(secrets)))
		return nil
	}, log)
}

// leaseHolder names this process in the delivery lease: host, pid and a
// random part, so that a restarted process is a new holder.
func leaseHolder() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", hostname(), os.Getpid(), hex.EncodeToString(b))
}

// eventFeed is GET /events on the admin listener, or nil without SCIM;
// orgs: organizations are configured (every element names its own).
func eventFeed(sc scimParts, orgs bool, adminToken []byte, log *zap.Logger) http.Handler {
	if sc.deliveries == nil {
		return nil
	}
	return &webhook.Feed{Store: sc.deliveries, Token: adminToken, Log: log.Named("webhook"), Organizations: orgs}
}

// webhookStatus is the status page's Events section: each endpoint's state
// and backlog, and the last 24 hours of events, per hour.
func webhookStatus(d store.Deliveries, eps []webhook.Endpoint) status.Webhooks {
	return func(ctx context.Context) ([]status.WebhookEndpoint, []status.EventHour, error) {
		now := time.Now()
		var out []status.WebhookEndpoint
		done := int64(1<<63 - 1)
		for _, b := range webhook.Backlogs(ctx, d, eps, time.Now) {
			if b.Err != nil {
				return nil, nil, b.Err
			}
			s := b.State
			out = append(out, status.WebhookEndpoint{Name: b.Name, LastSuccess: s.LastSuccess, LastFailure: s.LastFailure,
				LastStatus: s.LastStatus, LastError: s.LastError, Disabled: s.Disabled, Pending: b.Pending,
				OldestPending: b.OldestAge, Delivered: s.Delivered, Failed: s.Failed})
			done = min(done, s.Cursor)
		}
		start := now.Truncate(time.Hour).Add(-23 * time.Hour)
		times, err := d.EventTimes(ctx, start)
		if err != nil {
			return nil, nil, err
		}
		hours := make([]status.EventHour, 24)
		for i := range hours {
			hours[i].Start = start.Add(time.Duration(i) * time.Hour)
		}
		for _, e := range times {
			i := int(e.Time.Sub(start) / time.Hour)
			if i < 0 || i >= len(hours) {
				continue
			}
			hours[i].Written++
			if len(eps) > 0 && e.Seq <= done {
				hours[i].Delivered++
			}
		}
		return out, hours, nil
	}
}
