// Package metrics owns Portcullis's Prometheus metrics: one registry per
// process (with the Go and process collectors), the collectors behind every
// portcullis_* name, and the /metrics handler of the admin listener.
//
// The library packages (proxy, samlsp, scimsync) take a *Metrics in their
// Options; every method is safe on a nil *Metrics and then does nothing, so
// code built without metrics (tests, check-config) needs no change. Label
// values are always drawn from small fixed sets: never a user name, a path
// or anything else a client chooses.
//
// The names are a contract with the dashboards, alerts and the admin status
// page: change one only together with charts/portcullis and the README.
package metrics

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names (the contract).
const (
	NameRequests            = "portcullis_requests_total"
	NameRequestOverhead     = "portcullis_request_overhead_seconds"
	NameSAMLLogins          = "portcullis_saml_logins_total"
	NameMetadataAge         = "portcullis_idp_metadata_age_seconds"
	NameMetadataFailures    = "portcullis_idp_metadata_refresh_failures_total"
	NameMetadataExpired     = "portcullis_idp_metadata_expired_total"
	NameSigningCertChanges  = "portcullis_idp_signing_cert_changes_total"
	NameSCIMRequests        = "portcullis_scim_requests_total"
	NameDirectoryEvents     = "portcullis_directory_events_total"
	NameLastEvent           = "portcullis_scim_last_event_timestamp_seconds"
	NameDirectoryUsers      = "portcullis_directory_users"
	NameDirectoryGroups     = "portcullis_directory_groups"
	NameSessionsRevoked     = "portcullis_sessions_revoked_total"
	NameStreamsClosed       = "portcullis_streams_closed_total"
	NameSessionsEnded       = "portcullis_sessions_ended_total"
	NameAppliedSeq          = "portcullis_directory_applied_seq"
	NamePropagationLag      = "portcullis_directory_propagation_lag_seconds"
	NameIdentityDrift       = "portcullis_identity_drift_total"
	NameDirectoryConfirmed  = "portcullis_directory_confirmed_timestamp_seconds"
	NameUpstreamTLSInsecure = "portcullis_upstream_tls_insecure"
)

// Outcome is what the proxy did with one request on the public listener.
type Outcome uint8

// Outcomes. The zero value is OutcomeOther, so a request the proxy did not
// classify is never counted as allowed.
const (
	// OutcomeOther: Portcullis's own routes (/saml/, the SCIM API) and
	// requests refused before any policy applied (an ambiguous path).
	OutcomeOther Outcome = iota
	// OutcomeAllowed: forwarded to the upstream (public routes included).
	OutcomeAllowed
	// OutcomeLoginRequired: no valid session (or one voided by a
	// revocation): sent to the IdP or answered 401.
	OutcomeLoginRequired
	// OutcomeDeniedInactive: the directory has deactivated or deleted the user.
	OutcomeDeniedInactive
	// OutcomeDeniedUnprovisioned: scim.requireProvisioned and SCIM never
	// provisioned the user.
	OutcomeDeniedUnprovisioned
	// OutcomeDeniedGroup: the route's allowGroups did not match.
	OutcomeDeniedGroup
	// OutcomeUpstreamError: the upstream failed or timed out (502/504).
	OutcomeUpstreamError
	// OutcomeUnavailable: the directory view is older than
	// store.maxStaleness, so the gate failed closed (503).
	OutcomeUnavailable
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	OutcomeOther:               "other",
	OutcomeAllowed:             "allowed",
	OutcomeLoginRequired:       "login_required",
	OutcomeDeniedInactive:      "denied_inactive",
	OutcomeDeniedUnprovisioned: "denied_unprovisioned",
	OutcomeDeniedGroup:         "denied_group",
	OutcomeUpstreamError:       "upstream_error",
	OutcomeUnavailable:         "unavailable",
}

func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return "other"
}

// Drift kinds: how a login's SAML assertion disagrees with the directory.
const (
	DriftUnprovisioned  = "unprovisioned"
	DriftInactive       = "inactive"
	DriftEmailMismatch  = "email_mismatch"
	DriftGroupsMismatch = "groups_mismatch"
)

// DriftKinds lists every drift kind, in a stable order.
var DriftKinds = []string{DriftUnprovisioned, DriftInactive, DriftEmailMismatch, DriftGroupsMismatch}

// SCIM label values.
var (
	scimResources  = []string{"Users", "Groups", "Bulk", "ServiceProviderConfig", "ResourceTypes", "Schemas", "other"}
	scimOperations = []string{"create", "get", "list", "replace", "patch", "delete", "other"}
)

// DirectoryView is what the directory gauges read at each scrape
// (scimsync.Directory satisfies it).
type DirectoryView interface {
	Counts() (active, inactive, groups int)
	Seq() int64
	LastEventTime() time.Time
}

// Metrics holds every collector. Build it with New; a nil *Metrics is a
// valid no-op.
type Metrics struct {
	reg *prometheus.Registry

	requests [numOutcomes]prometheus.Counter // resolved once: no lookup on the hot path
	overhead prometheus.Histogram

	logins           *prometheus.CounterVec
	loginOK          prometheus.Counter // the default organization's
	metadataFailures *prometheus.CounterVec
	metadataExpired  prometheus.Counter
	certChanges      prometheus.Counter

	scim     *prometheus.CounterVec
	events   *prometheus.CounterVec
	lag      prometheus.Histogram
	revoked  prometheus.Counter
	ended    *prometheus.CounterVec
	streams  prometheus.Counter
	drift    *prometheus.CounterVec
	insecure prometheus.Gauge
	wh       webhookMetrics  // webhooks.go
	fp       fastPathMetrics // fastpath.go
	watchMu  sync.Mutex
	watching map[string]bool
}

// New builds the registry with the Go and process collectors and every
// portcullis_* collector. Counters with a fixed label set start at zero,
// so that rate() and absent() work from the first scrape.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m := &Metrics{reg: reg, watching: map[string]bool{}}

	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameRequests,
		Help: "Requests on the public listener by outcome: allowed, login_required, denied_inactive, denied_unprovisioned, denied_group, upstream_error, unavailable, other (own routes).",
	}, []string{"outcome"})
	for o := range numOutcomes {
		m.requests[o] = reqs.WithLabelValues(outcomeNames[o])
	}
	m.overhead = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    NameRequestOverhead,
		Help:    "Time Portcullis spends on a request of the public listener, excluding the upstream round trip and the streaming of its response.",
		Buckets: []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1},
	})

	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameSAMLLogins,
		Help: "SAML logins at the ACS by result (succeeded, failed), failure reason (samlsp's reason codes; empty on success) and organization (an id from the config; empty when none was chosen yet).",
	}, []string{"result", "reason", "organization"})
	m.loginOK = m.logins.WithLabelValues("succeeded", "", "default")
	m.metadataFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameMetadataFailures,
		Help: "Failed loads of the IdP metadata (the last good copy stays in use), by organization.",
	}, []string{"organization"})
	m.metadataExpired = prometheus.NewCounter(prometheus.CounterOpts{
		Name: NameMetadataExpired,
		Help: "IdP metadata documents refused because their validUntil had passed (each is also a failed load).",
	})
	m.certChanges = prometheus.NewCounter(prometheus.CounterOpts{
		Name: NameSigningCertChanges,
		Help: "IdP metadata loads that changed the set of IdP signing certificates trusted.",
	})

	m.scim = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameSCIMRequests,
		Help: "SCIM API requests by resource, operation and HTTP status.",
	}, []string{"resource", "operation", "status"})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameDirectoryEvents,
		Help: "Directory events applied to this replica's view, by kind.",
	}, []string{"kind"})
	m.lag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    NamePropagationLag,
		Help:    "Time from an event being written to the store until this replica's follower applied it to its view.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	})
	m.revoked = prometheus.NewCounter(prometheus.CounterOpts{
		Name: NameSessionsRevoked,
		Help: "Sessions refused as revoked: issued before the user's latest SCIM reactivation or re-creation.",
	})
	m.ended = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameSessionsEnded,
		Help: "Sessions ended, by reason: logout, idp_logout, admin, deactivated, deleted, reactivated, organization_removed, expired.",
	}, []string{"reason"})
	for _, r := range SessionEndReasons {
		m.ended.WithLabelValues(r)
	}
	m.streams = prometheus.NewCounter(prometheus.CounterOpts{
		Name: NameStreamsClosed,
		Help: "WebSocket and server-sent-event streams closed because their user lost access.",
	})
	m.drift = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameIdentityDrift,
		Help: "Logins whose SAML assertion disagrees with the SCIM directory, by kind: unprovisioned, inactive, email_mismatch, groups_mismatch.",
	}, []string{"kind"})
	for _, k := range DriftKinds {
		m.drift.WithLabelValues(k)
	}
	m.insecure = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: NameUpstreamTLSInsecure,
		Help: "1 when upstreamTLS.insecureSkipVerify is on: the upstream's certificate is not verified.",
	})
	m.wh = newWebhookMetrics(reg)
	m.fp = newFastPathMetrics(reg)
	reg.MustRegister(reqs, m.overhead, m.logins, m.metadataFailures, m.metadataExpired, m.certChanges, m.scim, m.events, m.lag, m.revoked, m.ended, m.streams, m.drift, m.insecure)
	return m
}

// Gatherer is the registry, for the status page and tests.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Handler serves the registry in the Prometheus text (or OpenMetrics) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Request counts one request of the public listener and its overhead. It
// does not allocate.
func (m *Metrics) Request(o Outcome, overhead time.Duration) {
	if m == nil {
		return
	}
	if o >= numOutcomes {
		o = OutcomeOther
	}
	m.requests[o].Inc()
	m.overhead.Observe(overhead.Seconds())
}

// Login counts a login of organization org ("default" for the top-level
// IdP, "" when none was chosen yet): reason "" is a success, anything else
// one of samlsp's fixed reason codes. org comes from the config, never
// from a client, so the label stays bounded.
func (m *Metrics) Login(org, reason string) {
	if m == nil {
		return
	}
	if reason == "" {
		if org == "default" {
			m.loginOK.Inc()
			return
		}
		m.logins.WithLabelValues("succeeded", "", org).Inc()
		return
	}
	m.logins.WithLabelValues("failed", reason, org).Inc()
}

// OrganizationServed starts organization org's failed-refresh counter at
// zero, so that increase() sees its first failure (samlsp calls it as an
// organization's metadata refresh starts).
func (m *Metrics) OrganizationServed(org string) {
	if m == nil {
		return
	}
	m.metadataFailures.WithLabelValues(org)
}

// MetadataRefreshFailed counts a failed IdP metadata load of organization
// org (an id from the config).
func (m *Metrics) MetadataRefreshFailed(org string) {
	if m == nil {
		return
	}
	m.metadataFailures.WithLabelValues(org).Inc()
}

// MetadataExpired counts an IdP metadata document refused because its
// validUntil had passed.
func (m *Metrics) MetadataExpired() {
	if m == nil {
		return
	}
	m.metadataExpired.Inc()
}

// SigningCertsChanged counts a metadata load that changed the IdP signing
// certificates trusted.
func (m *Metrics) SigningCertsChanged() {
	if m == nil {
		return
	}
	m.certChanges.Inc()
}

// SCIMRequest counts a SCIM request. resource and operation outside their
// fixed sets are counted as "other".
func (m *Metrics) SCIMRequest(resource, operation string, status int) {
	if m == nil {
		return
	}
	m.scim.WithLabelValues(oneOf(resource, scimResources), oneOf(operation, scimOperations), statusText(status)).Inc()
}

// DirectoryEvent counts an event applied to the view. kind must come from
// the fixed set of event kinds (the caller maps anything else to "other").
func (m *Metrics) DirectoryEvent(kind string) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(kind).Inc()
}

// PropagationLag records how long an event written elsewhere took to reach
// this replica's view. A negative lag (clocks apart) counts as zero.
func (m *Metrics) PropagationLag(d time.Duration) {
	if m == nil {
		return
	}
	m.lag.Observe(max(d, 0).Seconds())
}

// SessionRevoked counts a session the gate refused as revoked.
func (m *Metrics) SessionRevoked() {
	if m == nil {
		return
	}
	m.revoked.Inc()
}

// SessionEndReasons are the reasons a session ends, one list across the
// product: the reason label of portcullis_sessions_ended_total and the
// reason of session_revoked audit events.
var SessionEndReasons = []string{
	"logout", "idp_logout", "admin", "deactivated", "deleted", "reactivated", "organization_removed", "expired",
}

// SessionEnded counts one session ended for reason (one of
// SessionEndReasons; oneOf bounds the label).
func (m *Metrics) SessionEnded(reason string) {
	if m == nil {
		return
	}
	m.ended.WithLabelValues(oneOf(reason, SessionEndReasons)).Inc()
}

// StreamsClosed counts n streams closed because their user lost access.
func (m *Metrics) StreamsClosed(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.streams.Add(float64(n))
}

// Drift counts a login that disagrees with the directory; kind is one of
// DriftKinds.
func (m *Metrics) Drift(kind string) {
	if m == nil {
		return
	}
	m.drift.WithLabelValues(oneOf(kind, DriftKinds)).Inc()
}

// WatchMetadata exports the age of each organization's IdP metadata in
// use, read from each at every scrape (each calls its argument once per
// organization served): +Inf while none is loaded, so an age alert fires
// then too. An organization no longer served drops out at the next
// scrape. Calling it twice is a no-op.
func (m *Metrics) WatchMetadata(each func(fn func(org string, loadedAt time.Time))) {
	if m == nil || !m.watch("metadata") {
		return
	}
	m.reg.MustRegister(&metadataCollector{each: each, desc: prometheus.NewDesc(NameMetadataAge,
		"Seconds since the IdP metadata in use was loaded, by organization; +Inf while none is.",
		[]string{"organization"}, nil)})
}

// metadataCollector reads every organization's metadata age at a scrape.
type metadataCollector struct {
	each func(fn func(org string, loadedAt time.Time))
	desc *prometheus.Desc
}

func (c *metadataCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *metadataCollector) Collect(ch chan<- prometheus.Metric) {
	c.each(func(org string, t time.Time) {
		age := math.Inf(1)
		if !t.IsZero() {
			age = time.Since(t).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, age, org)
	})
}

// WatchDirectory exports the view's user and group counts, the last applied
// event sequence and the time of the newest event, read at each scrape.
func (m *Metrics) WatchDirectory(v DirectoryView) {
	if m == nil || !m.watch("directory") {
		return
	}
	users := &usersCollector{
		v: v,
		desc: prometheus.NewDesc(NameDirectoryUsers,
			"Users in this replica's directory view by state (active, inactive).", []string{"state"}, nil),
	}
	m.reg.MustRegister(users,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: NameDirectoryGroups,
			Help: "Groups in this replica's directory view.",
		}, func() float64 { _, _, g := v.Counts(); return float64(g) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: NameAppliedSeq,
			Help: "Sequence number of the last directory event applied to this replica's view.",
		}, func() float64 { return float64(v.Seq()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: NameLastEvent,
			Help: "Unix time of the newest SCIM event in this replica's view; 0 if none.",
		}, func() float64 { return unixSeconds(v.LastEventTime()) }),
	)
}

// WatchFreshness exports when the view was last confirmed to match a
// shared store (proxy.Freshness / scimsync.Follower.ConfirmedAt).
func (m *Metrics) WatchFreshness(confirmedAt func() time.Time) {
	if m == nil || !m.watch("freshness") {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: NameDirectoryConfirmed,
		Help: "Unix time this replica's directory view was last confirmed current against the shared store; 0 before the first.",
	}, func() float64 { return unixSeconds(confirmedAt()) }))
}

func (m *Metrics) watch(name string) bool {
	m.watchMu.Lock()
	defer m.watchMu.Unlock()
	if m.watching[name] {
		return false
	}
	m.watching[name] = true
	return true
}

// usersCollector reads Counts once a scrape for both states.
type usersCollector struct {
	v    DirectoryView
	desc *prometheus.Desc
}

func (c *usersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *usersCollector) Collect(ch chan<- prometheus.Metric) {
	active, inactive, _ := c.v.Counts()
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(active), "active")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(inactive), "inactive")
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func oneOf(v string, set []string) string {
	for _, s := range set {
		if s == v {
			return v
		}
	}
	return "other"
}

// statusText is the status code as a label; anything outside 100–599 is
// "other".
func statusText(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code)
}

// UpstreamTLSInsecure records whether the upstream's certificate goes
// unverified (upstreamTLS.insecureSkipVerify).
func (m *Metrics) UpstreamTLSInsecure(on bool) {
	if m == nil {
		return
	}
	if on {
		m.insecure.Set(1)
	} else {
		m.insecure.Set(0)
	}
}
