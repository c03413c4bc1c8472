package samlsp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dsig "github.com/russellhaering/goxmldsig"
	"go.uber.org/zap/zapcore"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/metrics"
)

// withValidUntil sets validUntil on the root EntityDescriptor of md.
func withValidUntil(md []byte, vu time.Time) []byte {
	return bytes.Replace(md, []byte("<EntityDescriptor "),
		[]byte(`<EntityDescriptor validUntil="`+vu.UTC().Format(time.RFC3339)+`" `), 1)
}

// inEntities wraps md in an EntitiesDescriptor with validUntil vu.
func inEntities(md []byte, vu time.Time) []byte {
	return append(append([]byte(`<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" validUntil="`+
		vu.UTC().Format(time.RFC3339)+`">`), md...), []byte(`</EntitiesDescriptor>`)...)
}

// The metadata fetch follows a redirect only where the configuration
// would let the URL point directly: https, or http on loopback.
func TestCheckMetadataRedirect_AppliesTheConfiguredURLRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		from, to string
		ok       bool
	}{
		{"loopback http to https elsewhere", "http://127.0.0.1:8000/md", "https://idp.example.com/md", true},
		{"loopback http to loopback http", "http://127.0.0.1:8000/md", "http://localhost:8001/md", true},
		{"https to https", "https://idp.example.com/md", "https://cdn.example.com/md", true},
		{"loopback http to plain http on another host", "http://127.0.0.1:8000/md", "http://metadata.attacker.example/md", false},
		{"loopback http to a private address", "http://[::1]:8000/md", "http://10.0.0.7/md", false},
		{"https to http", "https://idp.example.com/md", "http://idp.example.com/md", false},
		{"https to loopback http", "https://idp.example.com/md", "http://127.0.0.1/md", false},
		{"to credentials", "https://idp.example.com/md", "https://user:pass@idp.example.com/md", false},
		{"to another scheme", "https://idp.example.com/md", "ftp://idp.example.com/md", false},
	}
	for _, tt := range tests {
		req := &http.Request{URL: mustParse(t, tt.to)}
		err := checkMetadataRedirect(req, []*http.Request{{URL: mustParse(t, tt.from)}})
		if (err == nil) != tt.ok {
			t.Errorf("%s: error %v, want ok %v", tt.name, err, tt.ok)
		}
		if err != nil && strings.Contains(err.Error(), "pass") {
			t.Errorf("%s: error %q shows the credentials", tt.name, err)
		}
	}
}

// A loopback http metadata URL that redirects to plain http on another
// host: the default client does not follow it, and nothing is loaded.
func TestLoadMetadata_RefusesRedirectToPlainHTTPElsewhere(t *testing.T) {
	t.Parallel()
	idp := loadIdP(t, "idp")
	var attackerHits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host == "metadata.attacker.example" {
			attackerHits.Add(1)
			_, _ = w.Write(idp.metadata(loadIdP(t, "idp2").cert))
			return
		}
		http.Redirect(w, r, "http://metadata.attacker.example/idp.xml", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	// The default client, with every dial going to srv: the attacker's
	// name resolves to it as DNS would on the attacker's network.
	client := defaultHTTPClient()
	client.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", srv.Listener.Addr().String())
	}}
	u := mustParse(t, srv.URL+"/metadata")
	h := newHarnessWith(t, harnessOpts{noLoad: true, options: func(o *Options) { o.HTTPClient = client },
		config: func(c *config.Config) {
			c.SAML.IDPMetadataFile, c.SAML.IDPMetadataURL, c.SAML.MetadataURL = "", u.String(), u
		}})
	err := h.sp.LoadMetadata(context.Background())
	if err == nil || !strings.Contains(err.Error(), "refusing redirect to http://metadata.attacker.example/idp.xml") {
		t.Errorf("LoadMetadata error %v, want the redirect refused", err)
	}
	if n := attackerHits.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
	if h.sp.Ready() == nil {
		t.Error("metadata loaded through the refused redirect")
	}
}

// Metadata whose validUntil has passed is never put in use: at start
// nothing loads (with the field named); on a refresh the last good copy
// stays, the refusal is counted and the SP reports itself degraded.
func TestLoadMetadata_RefusesExpiredMetadata(t *testing.T) {
	t.Parallel()
	idp := loadIdP(t, "idp")
	past, future := t0.Add(-time.Minute), t0.Add(24*time.Hour)
	tests := []struct {
		name string
		md   []byte
	}{
		{"EntityDescriptor validUntil", withValidUntil(idp.metadata(), past)},
		{"enclosing EntitiesDescriptor validUntil", inEntities(withValidUntil(idp.metadata(), future), past)},
		{"IDPSSODescriptor validUntil", bytes.Replace(idp.metadata(), []byte("<IDPSSODescriptor "),
			[]byte(`<IDPSSODescriptor validUntil="`+past.Format(time.RFC3339)+`" `), 1)},
		{"validUntil now", withValidUntil(idp.metadata(), t0)},
	}
	for _, tc := range tests {
		t.Run(tc.name+", at start", func(t *testing.T) {
			t.Parallel()
			m := newMetadataServer(t, tc.md)
			h := metadataURLHarness(t, m, time.Hour)
			err := h.sp.LoadMetadata(context.Background())
			if !errors.Is(err, ErrMetadataExpired) || !strings.Contains(err.Error(), "saml.idpMetadataURL "+m.URL) {
				t.Fatalf("error %v, want ErrMetadataExpired naming saml.idpMetadataURL", err)
			}
			if h.sp.Ready() == nil {
				t.Error("expired metadata put in use")
			}
		})
		t.Run(tc.name+", on refresh", func(t *testing.T) {
			t.Parallel()
			mt := metrics.New()
			m := newMetadataServer(t, withValidUntil(idp.metadata(), future))
			u := mustParse(t, m.URL+"/metadata")
			h := newHarnessWith(t, harnessOpts{noLoad: true, options: func(o *Options) { o.Metrics = mt },
				config: func(c *config.Config) {
					c.SAML.IDPMetadataFile, c.SAML.IDPMetadataURL, c.SAML.MetadataURL = "", u.String(), u
				}})
			if err := h.sp.LoadMetadata(context.Background()); err != nil {
				t.Fatal(err)
			}
			good := h.sp.defConn().state.Load()
			if d := h.sp.Degraded(); d != "" {
				t.Errorf("degraded with current metadata: %s", d)
			}
			m.set(http.StatusOK, tc.md)
			if err := h.sp.LoadMetadata(context.Background()); !errors.Is(err, ErrMetadataExpired) {
				t.Fatalf("refresh error %v, want ErrMetadataExpired", err)
			}
			if h.sp.defConn().state.Load() != good {
				t.Error("expired metadata replaced the good copy")
			}
			if got := metricValue(t, mt, metrics.NameMetadataExpired); got != 1 {
				t.Errorf("%s = %v, want 1", metrics.NameMetadataExpired, got)
			}
			if d := h.sp.Degraded(); !strings.Contains(d, "validUntil") || !strings.Contains(d, "stays in use") {
				t.Errorf("Degraded() = %q, want the refused copy explained", d)
			}
			rec, _ := h.complete("/", respOpts{})
			h.expectAccepted(t, rec, "/")
			m.set(http.StatusOK, idp.metadata())
			if err := h.sp.LoadMetadata(context.Background()); err != nil || h.sp.Degraded() != "" {
				t.Errorf("after a current copy: error %v, degraded %q", err, h.sp.Degraded())
			}
		})
	}
}

// Metadata that expires while in use stays in use, reported degraded.
func TestDegraded_MetadataExpiringInUse(t *testing.T) {
	t.Parallel()
	idp := loadIdP(t, "idp")
	m := newMetadataServer(t, withValidUntil(idp.metadata(), t0.Add(time.Hour)))
	h := metadataURLHarness(t, m, time.Hour)
	if err := h.sp.LoadMetadata(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := h.sp.Degraded(); d != "" {
		t.Fatalf("degraded before validUntil: %s", d)
	}
	h.clock.Advance(2 * time.Hour)
	if d := h.sp.Degraded(); !strings.Contains(d, "expired at "+t0.Add(time.Hour).Format(time.RFC3339)) {
		t.Errorf("Degraded() = %q, want the expiry named", d)
	}
}

// A refresh that changes the IdP's signing certificates is logged at warn
// with both sets of fingerprints, counted, and kept for the status page; a
// refresh with the same certificates is not.
func TestLoadMetadata_SigningCertificateChangeIsLoudAndCounted(t *testing.T) {
	t.Parallel()
	idp, other := loadIdP(t, "idp"), loadIdP(t, "idp2")
	mt := metrics.New()
	m := newMetadataServer(t, idp.metadata())
	u := mustParse(t, m.URL+"/metadata")
	h := newHarnessWith(t, harnessOpts{noLoad: true, options: func(o *Options) { o.Metrics = mt },
		config: func(c *config.Config) {
			c.SAML.IDPMetadataFile, c.SAML.IDPMetadataURL, c.SAML.MetadataURL = "", u.String(), u
		}})
	oldFP, newFP := fingerprint(idp.cert), fingerprint(other.cert)
	if len(oldFP) != 95 || oldFP == newFP {
		t.Fatalf("fingerprints %q, %q", oldFP, newFP)
	}
	load := func() {
		t.Helper()
		if err := h.sp.LoadMetadata(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	warned := func() int {
		return h.logs.FilterMessageSnippet("idp signing certificates changed").FilterLevelExact(zapcore.WarnLevel).Len()
	}
	load()
	h.clock.Advance(time.Hour)
	load() // the same certificate
	if n := warned(); n != 0 || metricValue(t, mt, metrics.NameSigningCertChanges) != 0 {
		t.Fatalf("unchanged certificates: %d warnings", n)
	}
	if c := h.sp.SigningCerts(); len(c.Current) != 1 || c.Current[0] != oldFP || !c.ChangedAt.IsZero() {
		t.Errorf("SigningCerts() = %+v before any change", c)
	}

	m.set(http.StatusOK, idp.metadata(other.cert))
	h.clock.Advance(time.Hour)
	load()
	entries := h.logs.FilterMessageSnippet("idp signing certificates changed").FilterLevelExact(zapcore.WarnLevel).All()
	if len(entries) != 1 {
		t.Fatalf("%d warnings for a replaced certificate, want 1", len(entries))
	}
	f := entries[0].ContextMap()
	if prev, cur := f["previous_sha256"], f["current_sha256"]; !sameStrings(prev, oldFP) || !sameStrings(cur, newFP) {
		t.Errorf("warning fields previous %v current %v, want %s and %s", prev, cur, oldFP, newFP)
	}
	if got := metricValue(t, mt, metrics.NameSigningCertChanges); got != 1 {
		t.Errorf("%s = %v, want 1", metrics.NameSigningCertChanges, got)
	}
	c := h.sp.SigningCerts()
	if len(c.Current) != 1 || c.Current[0] != newFP || len(c.Previous) != 1 || c.Previous[0] != oldFP || !c.ChangedAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("SigningCerts() = %+v", c)
	}
	// The old key no longer signs a valid response.
	rec, _ := h.complete("/", respOpts{})
	h.expectRefused(t, rec, http.StatusForbidden, reasonInvalidSignature)
}

func sameStrings(v any, want ...string) bool {
	got, ok := v.([]any)
	if !ok || len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// A response whose assertion is signed with rsa-sha1 (and sha1 digests) by
// the trusted IdP key is refused: RejectSHA1Signatures is set.
func TestACS_RefusesSHA1Signatures(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	if !h.sp.defConn().base.RejectSHA1Signatures {
		t.Error("RejectSHA1Signatures is off")
	}
	l := h.startLogin("/")
	a := h.assertion(l.requestID)
	ctx := h.idp.signingContext(t)
	if err := ctx.SetSignatureMethod(dsig.RSASHA1SignatureMethod); err != nil {
		t.Fatal(err)
	}
	signed, err := ctx.SignEnveloped(a.Element())
	if err != nil {
		t.Fatal(err)
	}
	a.Signature = signed.ChildElements()[len(signed.ChildElements())-1]
	if alg := a.Signature.FindElement(".//SignatureMethod").SelectAttrValue("Algorithm", ""); alg != dsig.RSASHA1SignatureMethod {
		t.Fatalf("signed with %s", alg)
	}
	resp := h.response(l.requestID).Element()
	resp.AddChild(a.Element())
	rec := h.postACS(encodeElement(t, resp), l.relay, l.cookie)
	h.expectRefused(t, rec, http.StatusForbidden, reasonInvalidSignature)

	// An assertion signed with rsa-sha256 by the same key is accepted.
	l = h.startLogin("/")
	rec = h.postACS(h.makeResponse(respOpts{requestID: l.requestID}), l.relay, l.cookie)
	h.expectAccepted(t, rec, "/")
}
