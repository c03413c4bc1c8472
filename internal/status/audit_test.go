package status

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestAuditRing_KeepsInterestingEventsNewestFirst(t *testing.T) {
	t.Parallel()
	ring := NewAuditRing(3)
	core, logs := observer.New(zapcore.InfoLevel)
	audit := zap.New(core).WithOptions(ring.Tee()).With(zap.String("request_id", "r1"))
	audit.Info("login succeeded", zap.String("event", "login_succeeded"), zap.String("user", "alice"))
	audit.Info("access denied", zap.String("event", "access_denied"), zap.String("user", "bob"),
		zap.String("reason", "inactive"), zap.String("route", "/admin/"))
	audit.Debug("access denied", zap.String("event", "access_denied"), zap.String("user", "debug"))
	audit.Info("identity drift", zap.String("event", "identity_drift"), zap.String("kind", "unprovisioned"),
		zap.String("user", "carol"), zap.String("detail", "no SCIM user"))
	audit.Info("user deactivated", zap.String("event", "user_deactivated"), zap.String("user", "dave"),
		zap.String("kind", "user.deactivated"), zap.String("scim_op", "patch"), zap.String("token", "s3cr3t"))
	audit.Info("login failed", zap.String("event", "login_failed"), zap.String("reason", "bad_signature"))

	if logs.Len() != 5 {
		t.Errorf("the tee changed what the audit log gets: %d entries, want 5", logs.Len())
	}
	want := []AuditEntry{
		{Event: "login_failed", Reason: "bad_signature", RequestID: "r1"},
		{Event: "user_deactivated", User: "dave", Reason: "user.deactivated", Detail: "patch", RequestID: "r1"},
		{Event: "identity_drift", User: "carol", Reason: "unprovisioned", Detail: "no SCIM user", RequestID: "r1"},
	}
	got := ring.Recent()
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(AuditEntry{}, "Time")); diff != "" {
		t.Errorf("Recent (-want +got):\n%s", diff)
	}
	if strings.Contains(fmt.Sprint(got), "s3cr3t") {
		t.Error("a field outside the allowlist reached the ring")
	}
	for _, e := range got {
		if e.Time.IsZero() {
			t.Errorf("%s has no time", e.Event)
		}
	}
}

func TestAuditRing_BoundsFieldLength(t *testing.T) {
	t.Parallel()
	ring := NewAuditRing(0)
	long := strings.Repeat("é", 1000)
	zap.New(ring.Core()).Info("access denied", zap.String("event", "access_denied"), zap.String("user", long))
	u := ring.Recent()[0].User
	if len(u) > auditFieldMax+len("…") || !strings.HasSuffix(u, "…") || !strings.HasPrefix(long, strings.TrimSuffix(u, "…")) {
		t.Errorf("clipped user is %d bytes: %q", len(u), u[:20])
	}
}

// Entries older than ForgetAfter's age leave the ring: the status page
// names a deleted user no longer than the stored events do.
func TestAuditRing_ForgetsEntriesOlderThanTheRetention(t *testing.T) {
	t.Parallel()
	ring := NewAuditRing(10)
	now := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	ring.now = func() time.Time { return now }
	ring.ForgetAfter(time.Hour)
	write := func(at time.Time, user string) {
		_ = ring.Core().Write(zapcore.Entry{Level: zapcore.InfoLevel, Time: at},
			[]zapcore.Field{zap.String("event", "user_deleted"), zap.String("user", user)})
	}
	write(now.Add(-90*time.Minute), "old@example.com")
	write(now.Add(-30*time.Minute), "young@example.com")
	users := func() (out []string) {
		for _, e := range ring.Recent() {
			out = append(out, e.User)
		}
		return out
	}
	if diff := cmp.Diff([]string{"young@example.com"}, users()); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	now = now.Add(time.Hour)
	if got := users(); len(got) != 0 {
		t.Errorf("after another hour: %v, want none", got)
	}
	ring.mu.Lock()
	defer ring.mu.Unlock()
	for _, e := range ring.buf {
		if e.User != "" {
			t.Errorf("a forgotten entry is still in memory: %+v", e)
		}
	}
}
