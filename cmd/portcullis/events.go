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
	"github.com/portcullis-sso/portcullis/internal/metrics"
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

// eventRunners are the background loops of the event log: the deliverer
// (which also prunes past events.retention) and the backlog gauges.
func eventRunners(cfg *config.Config, d store.Deliveries, m *metrics.Metrics, log *zap.Logger) ([]func(context.Context), error) {
	eps, err := webhookEndpoints(cfg)
	if err != nil {
		return nil, err
	}
	deliverer := webhook.New(webhook.Options{Store: d, Endpoints: eps, Holder: leaseHolder(),
		Retention: cfg.Events.Retention, MaxAge: cfg.Events.WebhookMaxAge, Logger: log, Metrics: m})
	runs := []func(context.Context){deliverer.Run}
	if len(eps) > 0 {
		runs = append(runs, func(ctx context.Context) { webhook.Observe(ctx, d, eps, m, time.Now, log) })
	}
	return runs, nil
}

// leaseHolder names this process in the delivery lease: host, pid and a
// random part, so that a restarted process is a new holder.
func leaseHolder() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", hostname(), os.Getpid(), hex.EncodeToString(b))
}

// eventFeed is GET /events on the admin listener, or nil without SCIM.
func eventFeed(sc scimParts, adminToken []byte, log *zap.Logger) http.Handler {
	if sc.deliveries == nil {
		return nil
	}
	return &webhook.Feed{Store: sc.deliveries, Token: adminToken, Log: log.Named("webhook")}
}
