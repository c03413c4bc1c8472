package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Delivery defaults (the ones not in config).
const (
	// Timeout bounds one attempt, response headers and body included.
	Timeout = 15 * time.Second
	// LeaseName is the store lease of the replica that delivers.
	LeaseName      = "webhooks"
	defaultLease   = 10 * time.Second
	defaultPoll    = 100 * time.Millisecond
	defaultMinWait = 5 * time.Second
	defaultMaxWait = time.Hour
	// maxRetryAfter caps how long a Retry-After may hold an endpoint.
	maxRetryAfter = 6 * time.Hour
	batchSize     = 500
	pruneEvery    = 10 * time.Minute
)

// Endpoint is one configured webhook endpoint.
type Endpoint struct {
	URL   string
	Types []string // event types; nil: every type
	// Secrets sign every request, one signature each (rotation). Hash is
	// of the whole config entry, secrets included: a change re-enables an
	// endpoint a 410 disabled.
	Secrets [][]byte
}

// Name is how logs, metrics and the status page name the endpoint: its
// URL without user information, query or fragment, which may hold secrets.
func (e Endpoint) Name() string { return RedactURL(e.URL) }

// RedactURL is u without user information, query or fragment.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(invalid URL)"
	}
	return (&url.URL{Scheme: p.Scheme, Host: p.Host, Path: p.Path}).String()
}

// hash identifies the endpoint's config entry.
func (e Endpoint) hash() string {
	h := sha256.New()
	h.Write([]byte(e.URL))
	h.Write([]byte{0})
	h.Write([]byte(strings.Join(e.Types, ",")))
	for _, s := range e.Secrets {
		h.Write([]byte{0})
		h.Write(s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Options configure a Deliverer.
type Options struct {
	Store     store.Deliveries
	Endpoints []Endpoint
	// Holder names this replica in the lease: unique per process.
	Holder string
	// Retention: events older than this, and done with by every enabled
	// endpoint, are pruned. 0: never.
	Retention time.Duration
	// MaxAge: an event older than this that fails is given up on.
	MaxAge time.Duration
	// Organizations: organizations are configured, so every body names
	// its event's organization, the default one included.
	Organizations bool
	Logger        *zap.Logger
	// Metrics, if set, counts deliveries.
	Metrics *metrics.Metrics
	// Client sends the requests; default: 15 s timeout, no redirects.
	Client *http.Client
	Now    func() time.Time
	// Tests shorten these; zero: the defaults above.
	LeaseTTL, Poll, MinBackoff, MaxBackoff time.Duration
}

// Deliverer delivers the event log to the endpoints while it holds the lease.
type Deliverer struct {
	o    Options
	log  *zap.Logger
	wake chan struct{}
	held atomic.Bool
	// secrets are each endpoint's current secrets (SetSecrets), by index.
	secrets []atomic.Pointer[[][]byte]
}

// New builds a Deliverer; Run starts it.
func New(o Options) *Deliverer {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Client == nil {
		o.Client = NewClient()
	}
	o.LeaseTTL = orDefault(o.LeaseTTL, defaultLease)
	o.Poll = orDefault(o.Poll, defaultPoll)
	o.MinBackoff = orDefault(o.MinBackoff, defaultMinWait)
	o.MaxBackoff = orDefault(o.MaxBackoff, defaultMaxWait)
	d := &Deliverer{o: o, log: o.Logger, wake: make(chan struct{}, 1), secrets: make([]atomic.Pointer[[][]byte], len(o.Endpoints))}
	for i, ep := range o.Endpoints {
		d.secrets[i].Store(&ep.Secrets)
	}
	return d
}

// SetSecrets makes secrets sign the requests to the endpoint url from its
// next delivery on (a re-read secret file: rotation without a restart).
// Like a changed config entry, it enables again an endpoint a 410
// disabled. It reports whether url is a configured endpoint.
func (d *Deliverer) SetSecrets(url string, secrets [][]byte) bool {
	found := false
	for i, ep := range d.o.Endpoints {
		if ep.URL == url {
			s := slices.Clone(secrets)
			d.secrets[i].Store(&s)
			found = true
		}
	}
	if found {
		d.Wake()
	}
	return found
}

// endpoint is endpoint i with its current secrets, and those secrets.
func (d *Deliverer) endpoint(i int) (Endpoint, *[][]byte) {
	ep, s := d.o.Endpoints[i], d.secrets[i].Load()
	ep.Secrets = *s
	return ep, s
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// NewClient is the delivery client: Timeout per attempt, redirects
// answered as failures, never followed.
func NewClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 4
	return &http.Client{Transport: t, Timeout: Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Wake makes the endpoints look for new events now rather than at the next poll.
func (d *Deliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Holding reports whether this replica holds the lease and delivers.
func (d *Deliverer) Holding() bool { return d.held.Load() }

// Run takes the lease whenever it is free and delivers while it holds it,
// until ctx ends; then it gives the lease up.
func (d *Deliverer) Run(ctx context.Context) {
	for ctx.Err() == nil {
		ok, err := d.o.Store.Lease(ctx, LeaseName, d.o.Holder, d.o.LeaseTTL)
		if err != nil && ctx.Err() == nil {
			d.log.Warn("take webhook lease", zap.Error(err))
		}
		if ok {
			d.log.Info("webhook lease taken: this replica delivers", zap.String("holder", d.o.Holder))
			d.deliverWhileHeld(ctx)
			d.log.Info("webhook lease ended", zap.String("holder", d.o.Holder))
			continue
		}
		sleep(ctx, jitter(d.o.LeaseTTL/3))
	}
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = d.o.Store.ReleaseLease(rctx, LeaseName, d.o.Holder)
}

// deliverWhileHeld runs every endpoint and the pruner, renewing the lease,
// and stops them all when a renewal fails or ctx ends.
func (d *Deliverer) deliverWhileHeld(ctx context.Context) {
	d.held.Store(true)
	defer d.held.Store(false)
	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wakes := make([]chan struct{}, len(d.o.Endpoints))
	for i := range d.o.Endpoints {
		wakes[i] = make(chan struct{}, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.runEndpoint(lctx, i, wakes[i])
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.prune(lctx)
	}()
	d.renew(lctx, wakes)
	cancel()
	wg.Wait()
}

// renew renews the lease every third of its TTL and fans wakes out, until
// a renewal fails or ctx ends.
func (d *Deliverer) renew(ctx context.Context, wakes []chan struct{}) {
	t := time.NewTicker(d.o.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
			for _, w := range wakes {
				select {
				case w <- struct{}{}:
				default:
				}
			}
		case <-t.C:
			ok, err := d.o.Store.Lease(ctx, LeaseName, d.o.Holder, d.o.LeaseTTL)
			if err != nil || !ok {
				if ctx.Err() == nil {
					d.log.Warn("webhook lease lost: delivery stops on this replica", zap.Error(err))
				}
				return
			}
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// jitter is between half d and d.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}
