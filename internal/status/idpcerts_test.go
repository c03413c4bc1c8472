package status

import (
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/internal/metrics"
)

// The IdP signing certificates in use, and their last change with the
// certificates it replaced, are on the page beside the change counter.
func TestHandler_ShowsIdPSigningCertificatesAndTheirLastChange(t *testing.T) {
	t.Parallel()
	const oldFP, newFP = "AA:BB", "CC:DD"
	m := metrics.New()
	m.SigningCertsChanged()
	m.MetadataExpired()
	tests := []struct {
		name          string
		certs         func() IdPCerts
		current, more string
	}{
		{"not wired", nil, absent, "1"},
		{"no change since start", func() IdPCerts { return IdPCerts{Current: []string{oldFP}} }, oldFP, "1"},
		{"changed", func() IdPCerts {
			return IdPCerts{Current: []string{newFP, oldFP}, Previous: []string{oldFP}, ChangedAt: testNow.Add(-time.Hour)}
		}, newFP + ", " + oldFP, "1; last 1h0m0s ago (" + stamp(testNow.Add(-time.Hour)) + "), replacing " + oldFP},
	}
	for _, tt := range tests {
		h := New(Options{Gatherer: m.Gatherer(), IdPCerts: tt.certs, Now: func() time.Time { return testNow }})
		_, _, body := get(t, h, "/")
		if got := cell(t, body, "idp-signing-certs"); got != tt.current {
			t.Errorf("%s: certificates %q, want %q", tt.name, got, tt.current)
		}
		if got := cell(t, body, "idp-cert-changes"); got != tt.more {
			t.Errorf("%s: changes %q, want %q", tt.name, got, tt.more)
		}
		if got := cell(t, body, "idp-metadata-expired"); got != "1" {
			t.Errorf("%s: refused as expired %q, want 1", tt.name, got)
		}
	}
}
