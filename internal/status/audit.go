package status

import (
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// DefaultAuditSize is how many audit entries an AuditRing keeps by default.
const DefaultAuditSize = 200

// auditEvents are the audit events the ring keeps: what a person looking
// at the status page wants to see (login_succeeded and logout are not).
var auditEvents = map[string]bool{
	"user_deactivated": true,
	"user_reactivated": true,
	"user_deleted":     true,
	"access_denied":    true,
	"session_rejected": true,
	"identity_drift":   true,
	"login_failed":     true,
	"scim_write":       true,
}

// auditKeys are the only fields an AuditEntry takes from a log entry: none
// of them ever holds a secret (tokens, cookies and assertions are never
// logged, and these keys are not where they would be).
var auditKeys = map[string]bool{"event": true, "user": true, "reason": true, "kind": true, "route": true,
	"scim_op": true, "detail": true, "request_id": true, "organization": true}

// auditFieldMax bounds each kept field, so a hostile user name cannot make
// the ring large.
const auditFieldMax = 256

// AuditEntry is one audit event as the status page lists it.
type AuditEntry struct {
	Time      time.Time
	Event     string
	Org       string // the organization field: "" for none (the default organization)
	User      string
	Reason    string // reason, or the kind of a drift or SCIM write
	Detail    string // route, SCIM operation or drift detail
	RequestID string
}

// AuditRing keeps the last audit events of this process. Core returns a
// zapcore.Core to tee into the audit logger.
type AuditRing struct {
	mu   sync.Mutex
	buf  []AuditEntry
	next int // where the next entry goes once buf is full
	size int
	// keep is how long an entry is kept (0: until overwritten); now is the clock.
	keep time.Duration
	now  func() time.Time
}

// NewAuditRing keeps the last size entries (DefaultAuditSize if size <= 0).
func NewAuditRing(size int) *AuditRing {
	if size <= 0 {
		size = DefaultAuditSize
	}
	return &AuditRing{size: size, now: time.Now}
}

// ForgetAfter makes the ring forget entries older than d (0: never): they
// name users, and a deleted user's names and emails must leave the status
// page once events.retention has passed, as they leave the stored events.
// An entry is wiped from memory, not only hidden, at the next Recent or
// add.
func (r *AuditRing) ForgetAfter(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keep = d
}

// forget wipes the entries older than keep; r.mu is held.
func (r *AuditRing) forget() {
	if r.keep <= 0 {
		return
	}
	cutoff := r.now().Add(-r.keep)
	for i := range r.buf {
		if e := &r.buf[i]; !e.Time.IsZero() && e.Time.Before(cutoff) {
			*e = AuditEntry{}
		}
	}
}

// Tee returns a zap option that copies what the logger writes into the
// ring: log.WithOptions(ring.Tee()).
func (r *AuditRing) Tee() zap.Option {
	return zap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, r.Core()) })
}

// Core is the ring as a zapcore.Core: it keeps Info and above entries whose
// event field is one of the kept events.
func (r *AuditRing) Core() zapcore.Core { return &ringCore{ring: r} }

// Recent returns the kept entries, newest first.
func (r *AuditRing) Recent() []AuditEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forget()
	out := make([]AuditEntry, 0, len(r.buf))
	for _, part := range [][]AuditEntry{r.buf[r.next:], r.buf[:r.next]} {
		for _, e := range part {
			if !e.Time.IsZero() {
				out = append(out, e)
			}
		}
	}
	slices.Reverse(out)
	return out
}

func (r *AuditRing) add(e AuditEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forget()
	if len(r.buf) < r.size {
		r.buf = append(r.buf, e)
		return
	}
	r.buf[r.next] = e
	r.next = (r.next + 1) % r.size
}

type ringCore struct {
	ring   *AuditRing
	fields []zapcore.Field // from With, kept keys only
}

func (c *ringCore) Enabled(l zapcore.Level) bool { return l >= zapcore.InfoLevel }

func (c *ringCore) With(fields []zapcore.Field) zapcore.Core {
	kept := slices.Clone(c.fields)
	for _, f := range fields {
		if auditKeys[f.Key] {
			kept = append(kept, f)
		}
	}
	return &ringCore{ring: c.ring, fields: kept}
}

func (c *ringCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *ringCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	vals := map[string]string{}
	for _, fs := range [][]zapcore.Field{c.fields, fields} {
		for _, f := range fs {
			if auditKeys[f.Key] && f.Type == zapcore.StringType {
				vals[f.Key] = clip(f.String)
			}
		}
	}
	if !auditEvents[vals["event"]] {
		return nil
	}
	reason := vals["reason"]
	if reason == "" {
		reason = vals["kind"]
	}
	detail := vals["detail"]
	for _, k := range []string{"route", "scim_op"} {
		if detail == "" {
			detail = vals[k]
		}
	}
	c.ring.add(AuditEntry{Time: e.Time.UTC(), Event: vals["event"], Org: vals["organization"], User: vals["user"], Reason: reason,
		Detail: detail, RequestID: vals["request_id"]})
	return nil
}

func (c *ringCore) Sync() error { return nil }

// clip bounds s to auditFieldMax bytes, on a rune boundary.
func clip(s string) string {
	if len(s) <= auditFieldMax {
		return s
	}
	cut := auditFieldMax
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
