package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// runner delivers to one endpoint, strictly in event order: the event after
// the cursor is retried until it is delivered or given up on, and no later
// event overtakes it.
type runner struct {
	d       *Deliverer
	i       int // the endpoint's index in the Deliverer's
	ep      Endpoint
	secrets *[][]byte // ep.Secrets as the Deliverer held them at open
	name    string
	kinds   []string
	st      store.Endpoint
	wake    <-chan struct{}
}

// runEndpoint delivers to endpoint i until ctx ends.
func (d *Deliverer) runEndpoint(ctx context.Context, i int, wake <-chan struct{}) {
	r := &runner{d: d, i: i, wake: wake}
	r.ep, r.secrets = d.endpoint(i)
	r.name = r.ep.Name()
	var err error
	if r.kinds, err = KindsOf(r.ep.Types); err != nil { // config validated the types
		d.log.Error("webhook endpoint has an unknown type", zap.String("endpoint", r.name), zap.Error(err))
		return
	}
	for ctx.Err() == nil {
		if err = r.open(ctx); err == nil {
			break
		}
		d.log.Warn("open webhook endpoint", zap.String("endpoint", r.name), zap.Error(err))
		sleep(ctx, jitter(time.Second))
	}
	for ctx.Err() == nil {
		wait, err := r.step(ctx)
		if err != nil && ctx.Err() == nil {
			d.log.Warn("webhook delivery step", zap.String("endpoint", r.name), zap.Error(err))
			wait = jitter(time.Second)
		}
		r.idle(ctx, wait)
	}
}

// open loads the endpoint's state, creating it at the end of the event log:
// a new endpoint gets the events from now on (the feed has the older ones).
func (r *runner) open(ctx context.Context) error {
	last, err := r.d.o.Store.LastSeq(ctx)
	if err != nil {
		return err
	}
	st, err := r.d.o.Store.OpenEndpoint(ctx, r.ep.URL, r.ep.hash(), last)
	if err != nil {
		return err
	}
	r.st = st
	if !st.Disabled.IsZero() {
		r.d.log.Warn("webhook endpoint is disabled: it answered 410 Gone; change its config entry to enable it again",
			zap.String("endpoint", r.name), zap.Time("disabled", st.Disabled))
	}
	return nil
}

// idle waits wait (0: the poll interval; negative: not at all), or until woken.
func (r *runner) idle(ctx context.Context, wait time.Duration) {
	if wait < 0 {
		return
	}
	if wait == 0 {
		wait = r.d.o.Poll
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-r.wake:
	}
}

// step delivers what is pending and says how long to wait before the next
// step: 0 for the poll interval, negative for none.
func (r *runner) step(ctx context.Context) (time.Duration, error) {
	if ep, secrets := r.d.endpoint(r.i); secrets != r.secrets {
		// New secrets: a new config hash, which re-enables the endpoint
		// if a 410 disabled it, as a restart with them would.
		r.ep, r.secrets = ep, secrets
		if err := r.open(ctx); err != nil {
			r.secrets = nil // open again at the next step
			return 0, err
		}
	}
	now := r.d.o.Now()
	if !r.st.Disabled.IsZero() {
		return time.Minute, nil
	}
	if wait := r.st.NextAttempt.Sub(now); wait > 0 {
		return wait, nil
	}
	upto, err := r.d.o.Store.LastSeq(ctx)
	if err != nil || upto <= r.st.Cursor {
		return 0, err
	}
	evs, err := r.d.o.Store.FeedEvents(ctx, r.st.Cursor, upto, r.kinds, batchSize)
	if errors.Is(err, store.ErrGone) {
		r.d.log.Error("webhook endpoint fell behind the retention: the pruned events are skipped",
			zap.String("endpoint", r.name), zap.Int64("cursor", r.st.Cursor))
		r.st.Cursor = upto
		return 0, r.save(ctx)
	}
	if err != nil {
		return 0, err
	}
	for i := range evs {
		if wait, ok := r.deliver(ctx, &evs[i]); !ok {
			return wait, r.save(ctx)
		}
	}
	if len(evs) == batchSize {
		return -1, r.save(ctx) // more are waiting: no pause
	}
	r.st.Cursor = max(r.st.Cursor, upto) // the rest are of other types
	return 0, r.save(ctx)
}

// save stores the endpoint's state. It outlives ctx (a stop or a lost
// lease ends ctx right after a delivery, whose progress should not be
// redelivered for nothing); the lease check in SaveEndpoint keeps a late
// save from overwriting a successor's.
func (r *runner) save(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return r.d.o.Store.SaveEndpoint(sctx, r.st, LeaseName, r.d.o.Holder)
}

// deliver makes one attempt at e. It reports whether the endpoint may go
// on to the next event, and otherwise how long to wait.
func (r *runner) deliver(ctx context.Context, e *store.Event) (time.Duration, bool) {
	status, retryAfter, err := r.attempt(ctx, e)
	now := r.d.o.Now()
	if ctx.Err() != nil {
		return 0, false // the lease ended: the next holder redelivers e
	}
	if err == nil {
		r.st.Cursor, r.st.Delivered, r.st.LastSuccess = e.Seq, r.st.Delivered+1, now
		r.st.Attempts, r.st.FirstFailure, r.st.NextAttempt = 0, time.Time{}, time.Time{}
		r.d.o.Metrics.WebhookDelivered(r.name, now.Sub(e.Time))
		return 0, true
	}
	r.st.LastFailure, r.st.LastStatus, r.st.LastError = now, status, truncate(err.Error(), 300)
	r.d.o.Metrics.WebhookAttemptFailed(r.name)
	if status == http.StatusGone {
		r.st.Disabled, r.st.DisabledStatus = now, status
		r.d.log.Error("webhook endpoint answered 410 Gone: disabled until its config entry changes",
			zap.String("endpoint", r.name), zap.String("event_id", EventID(e.Seq)))
		return 0, false
	}
	if r.st.FirstFailure.IsZero() {
		r.st.FirstFailure = now
	}
	r.st.Attempts++
	if now.Sub(e.Time) >= r.d.o.MaxAge {
		r.d.log.Error("webhook event given up: it is older than events.webhookMaxAge and its endpoint still fails",
			zap.String("endpoint", r.name), zap.String("event_id", EventID(e.Seq)), zap.Int("attempts", r.st.Attempts),
			zap.Int("status", status), zap.Error(err))
		r.st.Cursor, r.st.Failed = e.Seq, r.st.Failed+1
		r.st.Attempts, r.st.FirstFailure, r.st.NextAttempt = 0, time.Time{}, time.Time{}
		r.d.o.Metrics.WebhookGivenUp(r.name)
		return 0, true
	}
	wait := max(r.backoff(r.st.Attempts), min(retryAfter, maxRetryAfter))
	r.st.NextAttempt = now.Add(wait)
	r.d.log.Warn("webhook delivery failed; will retry", zap.String("endpoint", r.name),
		zap.String("event_id", EventID(e.Seq)), zap.Int("attempts", r.st.Attempts), zap.Int("status", status),
		zap.Duration("retry_in", wait), zap.Error(err))
	return wait, false
}

// backoff is the wait after n failed attempts: doubling from MinBackoff
// to MaxBackoff, each between half and the whole of it.
func (r *runner) backoff(n int) time.Duration {
	d := r.d.o.MaxBackoff
	if n < 30 {
		d = min(r.d.o.MinBackoff<<(n-1), r.d.o.MaxBackoff)
	}
	return jitter(d)
}

// attempt sends e once. It returns the HTTP status (0 if none), the
// Retry-After the endpoint asked for, and an error unless it answered 2xx.
func (r *runner) attempt(ctx context.Context, e *store.Event) (int, time.Duration, error) {
	body, err := Body(e, r.d.o.Organizations)
	if err != nil {
		return 0, 0, fmt.Errorf("encode event: %w", err)
	}
	id, ts := EventID(e.Seq), r.d.o.Now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.ep.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("build request: %w", err)
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Portcullis-Webhooks/1")
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", Sign(r.ep.Secrets, id, ts, body))
	resp, err := r.d.o.Client.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("send: %w", redactErr(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, 0, nil
	}
	ra := retryAfter(resp.Header.Get("Retry-After"), r.d.o.Now())
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return resp.StatusCode, ra, fmt.Errorf("answered %d: redirects are not followed; configure the final URL", resp.StatusCode)
	}
	return resp.StatusCode, ra, fmt.Errorf("answered %d", resp.StatusCode)
}

// redactErr keeps a *url.Error's cause without its URL, which may hold a secret.
func redactErr(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// retryAfter parses a Retry-After header: seconds or an HTTP date; 0 if absent or invalid.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// prune deletes, every pruneEvery, the events older than the retention
// that every enabled endpoint is done with.
func (d *Deliverer) prune(ctx context.Context) {
	if d.o.Retention <= 0 {
		return
	}
	for ctx.Err() == nil {
		if err := d.pruneOnce(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("prune events", zap.Error(err))
		}
		sleep(ctx, jitter(pruneEvery))
	}
}

func (d *Deliverer) pruneOnce(ctx context.Context) error {
	upto, err := d.o.Store.LastSeq(ctx)
	if err != nil {
		return err
	}
	eps, err := d.o.Store.Endpoints(ctx)
	if err != nil {
		return err
	}
	for _, e := range eps {
		if e.Disabled.IsZero() && d.configured(e.URL) {
			upto = min(upto, e.Cursor)
		}
	}
	for {
		n, err := d.o.Store.Prune(ctx, d.o.Now().Add(-d.o.Retention), upto)
		if err != nil || n < store.PruneBatch {
			if n > 0 {
				d.log.Info("pruned events older than events.retention", zap.Int("events", n))
			}
			return err
		}
	}
}

// configured reports whether url is a configured endpoint (a removed
// one's old row holds nothing back).
func (d *Deliverer) configured(url string) bool {
	for _, e := range d.o.Endpoints {
		if e.URL == url {
			return true
		}
	}
	return false
}
