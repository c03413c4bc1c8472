package samlsp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
)

func TestMetadataEndpoint_Golden(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	rec := serve(h, newRequest(http.MethodGet, pathMetadata))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/samlmetadata+xml" {
		t.Errorf("Content-Type %q", ct)
	}
	got := rec.Body.Bytes()
	fromAPI, err := h.sp.MetadataXML()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, fromAPI) {
		t.Error("the endpoint and MetadataXML differ")
	}
	golden := filepath.Join("testdata", "sp-metadata.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("SP metadata differs from %s (run with -update if intended):\n%s", golden, got)
	}

	// What the IdP relies on, checked on the parsed document rather than
	// only on bytes.
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal(got, &ed); err != nil {
		t.Fatal(err)
	}
	if ed.EntityID != testPublic+"/saml/metadata" || len(ed.SPSSODescriptors) != 1 {
		t.Fatalf("entity %q with %d SP descriptors", ed.EntityID, len(ed.SPSSODescriptors))
	}
	d := ed.SPSSODescriptors[0]
	if d.AuthnRequestsSigned == nil || !*d.AuthnRequestsSigned || d.WantAssertionsSigned == nil || !*d.WantAssertionsSigned {
		t.Error("AuthnRequestsSigned and WantAssertionsSigned must both be true")
	}
	if len(d.AssertionConsumerServices) != 1 || d.AssertionConsumerServices[0].Binding != saml.HTTPPostBinding ||
		d.AssertionConsumerServices[0].Location != testPublic+"/saml/acs" {
		t.Errorf("ACS endpoints %+v, want one HTTP-POST at /saml/acs", d.AssertionConsumerServices)
	}
	if len(d.NameIDFormats) != 1 || d.NameIDFormats[0] != saml.EmailAddressNameIDFormat {
		t.Errorf("NameIDFormats %v", d.NameIDFormats)
	}
	var slo []string
	for _, e := range d.SingleLogoutServices {
		if e.Location != testPublic+"/saml/slo" {
			t.Errorf("SLO endpoint %+v: want Location %s/saml/slo", e, testPublic)
		}
		slo = append(slo, e.Binding)
	}
	if want := []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding, saml.SOAPBinding}; !slices.Equal(slo, want) {
		t.Errorf("SLO bindings %v, want %v", slo, want)
	}
	spCert, _ := parseCertificate(mustRead(t, "testdata/sp.crt"))
	signing := false
	for _, kd := range d.KeyDescriptors {
		if kd.Use == "signing" && kd.KeyInfo.X509Data.X509Certificates[0].Data == base64.StdEncoding.EncodeToString(spCert.Raw) {
			signing = true
		}
	}
	if !signing {
		t.Error("the SP certificate is not published for signing")
	}
}

func TestMetadataXML_WithoutIdPMetadata(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, harnessOpts{noLoad: true, config: func(c *config.Config) {
		c.SAML.EntityID = "urn:example:portcullis"
		c.SAML.NameIDFormat = "persistent"
	}})
	out, err := h.sp.MetadataXML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`entityID="urn:example:portcullis"`, string(saml.PersistentNameIDFormat)} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("metadata lacks %s", want)
		}
	}
}

// metadataServer serves IdP metadata; its answer can be changed.
type metadataServer struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	body   []byte
	hits   atomic.Int64
}

func newMetadataServer(t *testing.T, body []byte) *metadataServer {
	m := &metadataServer{status: http.StatusOK, body: body}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.hits.Add(1)
		m.mu.Lock()
		defer m.mu.Unlock()
		w.WriteHeader(m.status)
		_, _ = w.Write(m.body)
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *metadataServer) set(status int, body []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status, m.body = status, body
}

func metadataURLHarness(t *testing.T, m *metadataServer, refresh time.Duration) *harness {
	u, _ := url.Parse(m.URL + "/metadata")
	return newHarnessWith(t, harnessOpts{noLoad: true, config: func(c *config.Config) {
		c.SAML.IDPMetadataFile = ""
		c.SAML.IDPMetadataURL = u.String()
		c.SAML.MetadataURL = u
		c.SAML.MetadataRefresh = refresh
	}})
}

// A failed reload keeps the metadata in use, whatever went wrong.
func TestLoadMetadata_KeepsLastGoodCopy(t *testing.T) {
	t.Parallel()
	idp := loadIdP(t, "idp")
	good := idp.metadata()
	spMetadata, _ := newHarness(t, nil).sp.MetadataXML()
	tests := []struct {
		name   string
		status int
		body   []byte
		want   string // in the error
	}{
		{"server error", http.StatusInternalServerError, good, "500"},
		{"not found", http.StatusNotFound, nil, "404"},
		{"not XML", http.StatusOK, []byte("<html>maintenance</html>"), "not SAML metadata"},
		{"empty", http.StatusOK, nil, "parse"},
		{"DOCTYPE", http.StatusOK, append([]byte(`<!DOCTYPE x [<!ENTITY a "b">]>`), good...), "DOCTYPE"},
		{"too large", http.StatusOK, bytes.Repeat([]byte(" "), maxMetadataBytes+1), "larger than"},
		{"SP metadata instead", http.StatusOK, spMetadata, "no IDPSSODescriptor"},
		{"no HTTP-Redirect SSO", http.StatusOK, bytes.ReplaceAll(good, []byte(saml.HTTPRedirectBinding), []byte(saml.HTTPArtifactBinding)), "HTTP-Redirect"},
		{"no signing certificate", http.StatusOK, bytes.ReplaceAll(good, []byte(`use="signing"`), []byte(`use="encryption"`)), "no signing certificate"},
		{"broken certificate", http.StatusOK, bytes.Replace(good, []byte(`#">MII`), []byte(`#">AAAAMII`), 1), "signing certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newMetadataServer(t, good)
			h := metadataURLHarness(t, m, time.Hour)
			if err := h.sp.LoadMetadata(context.Background()); err != nil {
				t.Fatal(err)
			}
			before := h.sp.defConn().state.Load()
			if !h.sp.MetadataLoadedAt().Equal(t0) {
				t.Errorf("MetadataLoadedAt %s, want %s", h.sp.MetadataLoadedAt(), t0)
			}

			m.set(tc.status, tc.body)
			h.clock.Advance(time.Hour)
			err := h.sp.LoadMetadata(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
			if h.sp.Ready() != nil || h.sp.defConn().state.Load() != before || !h.sp.MetadataLoadedAt().Equal(t0) {
				t.Error("the last good metadata was not kept")
			}
			rec, _ := h.complete("/", respOpts{})
			h.expectAccepted(t, rec, "/")
		})
	}
}

func TestLoadMetadata_File(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, harnessOpts{noLoad: true})
	if err := h.sp.LoadMetadata(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.sp.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if err := os.WriteFile(h.mdFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.sp.LoadMetadata(context.Background()); err == nil || !strings.Contains(err.Error(), h.mdFile) {
		t.Errorf("error %v does not name the file", err)
	}
	if h.sp.Ready() != nil {
		t.Error("a failed reload unloaded the metadata")
	}
	if err := os.Remove(h.mdFile); err != nil {
		t.Fatal(err)
	}
	if err := h.sp.LoadMetadata(context.Background()); err == nil || !strings.Contains(err.Error(), "saml.idpMetadataFile") {
		t.Errorf("missing file: %v", err)
	}
	rec, _ := h.complete("/", respOpts{})
	h.expectAccepted(t, rec, "/")
}

func TestParseIDPMetadata(t *testing.T) {
	t.Parallel()
	idp := loadIdP(t, "idp")
	entity := idp.metadata()
	other := loadIdP(t, "idp2")
	other.entityID = "https://other-idp.example.com"
	spEntity := `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp.example.com"><SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></EntityDescriptor>`
	aggregate := func(entities ...[]byte) []byte {
		return []byte(`<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata">` + string(bytes.Join(entities, nil)) + `</EntitiesDescriptor>`)
	}
	nested := []byte(`<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata">` + spEntity + string(aggregate(entity)) + `</EntitiesDescriptor>`)
	tests := []struct {
		name    string
		data    []byte
		wantErr string // "" = accepted with the test IdP's entity ID
	}{
		{"EntityDescriptor", entity, ""},
		{"aggregate with one IdP and an SP", aggregate([]byte(spEntity), entity), ""},
		{"nested aggregate", nested, ""},
		{"aggregate with two IdPs", aggregate(entity, other.metadata()), "2 entities"},
		{"aggregate without an IdP", aggregate([]byte(spEntity)), "0 entities"},
		{"SP entity", []byte(spEntity), "no IDPSSODescriptor"},
		{"wrong namespace", []byte(`<EntityDescriptor entityID="x"/>`), "not SAML metadata"},
		{"DOCTYPE", append([]byte("<!DOCTYPE x>"), entity...), "DOCTYPE"},
	}
	h := newHarnessWith(t, harnessOpts{noLoad: true})
	for _, tc := range tests {
		st, err := h.sp.defConn().newIDPState(tc.data)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr == "" && st.sp.IDPMetadata.EntityID != testIDPID:
			t.Errorf("%s: entity %q", tc.name, st.sp.IDPMetadata.EntityID)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.wantErr)
		}
	}
}

// Run refreshes on its interval, keeps the last good copy through
// failures (logging them), and picks up a rotated IdP key.
func TestRun_RefreshesAndKeepsLastGood(t *testing.T) {
	t.Parallel()
	idp := loadIdP(t, "idp")
	rotated := loadIdP(t, "idp2")
	m := newMetadataServer(t, idp.metadata())
	h := metadataURLHarness(t, m, 20*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.sp.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	waitFor(t, "first load", func() bool { return h.sp.Ready() == nil })
	first := h.sp.defConn().state.Load()

	m.set(http.StatusBadGateway, nil)
	hits := m.hits.Load()
	waitFor(t, "two failed refreshes", func() bool { return m.hits.Load() >= hits+2 })
	if h.sp.Ready() != nil || h.sp.defConn().state.Load() != first {
		t.Error("a failed refresh replaced the metadata")
	}
	if n := h.logs.FilterMessageSnippet("refresh failed").FilterField(zap.String("source", m.URL+"/metadata")).Len(); n == 0 {
		t.Error("failed refresh not logged")
	}
	rec, _ := h.complete("/", respOpts{})
	h.expectAccepted(t, rec, "/")

	// The IdP rotates its key: it publishes both, then signs with the new one.
	m.set(http.StatusOK, idp.metadata(idp.cert, rotated.cert))
	waitFor(t, "rotated metadata", func() bool {
		return len(h.sp.defConn().state.Load().sp.IDPMetadata.IDPSSODescriptors[0].KeyDescriptors) == 2
	})
	rec, _ = h.complete("/", respOpts{signer: &rotated})
	h.expectAccepted(t, rec, "/")
}

func TestRun_RetriesUntilFirstLoad(t *testing.T) {
	t.Parallel()
	idp := loadIdP(t, "idp")
	m := newMetadataServer(t, nil)
	m.set(http.StatusServiceUnavailable, nil)
	h := metadataURLHarness(t, m, time.Hour)
	h.sp.retryEvery = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.sp.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	waitFor(t, "failed attempts", func() bool { return m.hits.Load() >= 2 })
	if h.sp.Ready() == nil {
		t.Fatal("ready without metadata")
	}
	if h.logs.FilterMessageSnippet("sign-in unavailable").Len() == 0 {
		t.Error("the failed first load was not logged")
	}
	m.set(http.StatusOK, idp.metadata())
	waitFor(t, "load after retries", func() bool { return h.sp.Ready() == nil })
}

func TestDefaultHTTPClient_RefusesDowngradeRedirect(t *testing.T) {
	t.Parallel()
	c := defaultHTTPClient()
	mk := func(s string) *http.Request { return &http.Request{URL: mustParse(t, s)} }
	if err := c.CheckRedirect(mk("http://idp.example.com/md"), []*http.Request{mk("https://idp.example.com/md")}); err == nil {
		t.Error("https → http redirect followed")
	}
	if err := c.CheckRedirect(mk("https://cdn.example.com/md"), []*http.Request{mk("https://idp.example.com/md")}); err != nil {
		t.Errorf("https → https redirect refused: %v", err)
	}
	if c.Timeout == 0 {
		t.Error("no timeout")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
