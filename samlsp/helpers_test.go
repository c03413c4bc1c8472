package samlsp

import (
	"context"
	"encoding/base64"
	"flag"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/session"
	"github.com/portcullis-sso/portcullis/internal/web"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// t0 is the pinned time of every test; the test certificates are valid
// from 2026-01-01 to 2036-01-01.
var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

const (
	testPublic   = "https://app.example.com"
	testIDPID    = "https://idp.example.com/metadata"
	testSSO      = "https://idp.example.com/sso"
	testSLO      = "https://idp.example.com/slo"
	testReqID    = "req-test-1"
	testAttrUser = "uid"
)

// testClock is a settable clock shared by the SP, the session codec and the test IdP.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: t0} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is one SP with its own clock, IdP metadata file and logs.
type harness struct {
	t      testing.TB
	sp     *SP
	cfg    *config.Config
	idp    testIdP
	codec  *session.Codec
	clock  *testClock
	logs   *observer.ObservedLogs
	mdFile string
	keys   []session.KeyPair
}

type harnessOpts struct {
	config  func(*config.Config)
	options func(*Options)
	ssoURL  string
	noLoad  bool
	noSLO   bool // the IdP's metadata has no SingleLogoutService
	postSLO bool // the IdP's metadata has only an HTTP-POST SingleLogoutService
}

func newHarness(t testing.TB, mutate func(*config.Config)) *harness {
	t.Helper()
	return newHarnessWith(t, harnessOpts{config: mutate})
}

func newHarnessWith(t testing.TB, ho harnessOpts) *harness {
	t.Helper()
	idp := loadIdP(t, "idp")
	if ho.ssoURL != "" {
		idp.ssoURL = ho.ssoURL
	}
	idp.noSLO, idp.postSLO = ho.noSLO, ho.postSLO
	mdFile := filepath.Join(t.TempDir(), "idp-metadata.xml")
	if err := os.WriteFile(mdFile, idp.metadata(), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, _ := url.Parse(testPublic)
	cfg := &config.Config{
		Public: pub,
		SAML: config.SAML{
			IDPMetadataFile: mdFile,
			CertFile:        "testdata/sp.crt",
			KeyFile:         "testdata/sp.key",
			NameIDFormat:    "emailAddress",
			ClockSkew:       90 * time.Second,
			LoginWindow:     10 * time.Minute,
			MetadataRefresh: time.Hour,
			Attributes:      config.Attributes{User: testAttrUser, Email: "mail", Name: "displayName", Groups: "groups"},
		},
		Session: config.Session{CookieName: "portcullis", Lifetime: 8 * time.Hour},
		Server:  config.Server{ACSBodyLimit: 1 << 20},
	}
	if ho.config != nil {
		ho.config(cfg)
	}
	clock := newTestClock()
	keys, err := session.ParseKeys(session.GenerateKeys())
	if err != nil {
		t.Fatal(err)
	}
	codec, err := session.NewCodec(cfg.Session.CookieName, keys, cfg.Public.Scheme == "https", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	codec.SetClock(clock.Now)
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	opts := Options{
		Config:      cfg,
		Sessions:    codec,
		SessionKeys: keys,
		Logger:      log.Named("samlsp"),
		Audit:       log.Named("audit"),
		Now:         clock.Now,
	}
	if ho.options != nil {
		ho.options(&opts)
	}
	sp, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !ho.noLoad {
		if err := sp.LoadMetadata(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return &harness{t: t, sp: sp, cfg: cfg, idp: idp, codec: codec, clock: clock, logs: logs, mdFile: mdFile, keys: keys}
}

// login is a started login as the browser and the IdP see it.
type login struct {
	requestID string
	relay     string
	cookie    *http.Cookie
	location  *url.URL
	authn     saml.AuthnRequest
	rec       *httptest.ResponseRecorder
}

// startLogin runs StartLogin for returnTo with the given cookies present.
func (h *harness) startLogin(returnTo string, present ...*http.Cookie) *login {
	h.t.Helper()
	req := httptest.NewRequest(http.MethodGet, testPublic+"/some/page", nil)
	for _, c := range present {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	rec := httptest.NewRecorder()
	h.sp.StartLogin(rec, req, returnTo)
	if rec.Code != http.StatusSeeOther {
		h.t.Fatalf("StartLogin: status %d, want 303", rec.Code)
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		h.t.Fatal(err)
	}
	l := &login{location: loc, rec: rec, relay: loc.Query().Get("RelayState")}
	l.authn = decodeAuthnRequest(h.t, loc.Query().Get("SAMLRequest"))
	l.requestID = l.authn.ID
	for _, c := range rec.Result().Cookies() {
		if c.Name == h.sp.trackingName(l.relay) {
			l.cookie = c
		}
	}
	if l.cookie == nil {
		h.t.Fatalf("StartLogin set no tracking cookie for relay state %q", l.relay)
	}
	return l
}

// postACS posts a SAMLResponse to the ACS as a browser would.
func (h *harness) postACS(samlResponse, relay string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	h.t.Helper()
	form := url.Values{"SAMLResponse": {samlResponse}}
	if relay != "" {
		form.Set("RelayState", relay)
	}
	return h.postForm(form, cookies...)
}

func (h *harness) postForm(form url.Values, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	h.t.Helper()
	req := httptest.NewRequest(http.MethodPost, testPublic+pathACS, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req = req.WithContext(web.WithRequestID(req.Context(), testReqID))
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	rec := httptest.NewRecorder()
	h.sp.ServeHTTP(rec, req)
	return rec
}

// complete runs a whole SP-initiated login with the response o describes
// (its requestID is filled in) and returns the ACS answer.
func (h *harness) complete(returnTo string, o respOpts) (*httptest.ResponseRecorder, *login) {
	h.t.Helper()
	l := h.startLogin(returnTo)
	o.requestID = l.requestID
	return h.postACS(h.makeResponse(o), l.relay, l.cookie), l
}

// session decodes the session cookie(s) an ACS answer set.
func (h *harness) session(rec *httptest.ResponseRecorder) *session.Session {
	h.t.Helper()
	req := httptest.NewRequest(http.MethodGet, testPublic+"/", nil)
	for _, c := range rec.Result().Cookies() {
		if h.codec.IsSessionCookie(c.Name) && c.MaxAge >= 0 {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
	s, err := h.codec.Read(req)
	if err != nil {
		h.t.Fatalf("no valid session cookie: %v", err)
	}
	return s
}

// auditEvents returns the login events in the audit log.
func (h *harness) auditEvents(event string) []observer.LoggedEntry {
	return h.logs.FilterLoggerName("audit").FilterField(zap.String("event", event)).AllUntimed()
}

// lastReason is the reason of the last login_failed event, or "".
func (h *harness) lastReason() string {
	ev := h.auditEvents("login_failed")
	if len(ev) == 0 {
		return ""
	}
	return ev[len(ev)-1].ContextMap()["reason"].(string)
}

// expectRefused checks a refused login: status, the public page with the
// request ID and no internals, no session cookie, and the audit reason.
func (h *harness) expectRefused(t testing.TB, rec *httptest.ResponseRecorder, status int, reason string) {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status %d, want %d (reason %q)", rec.Code, status, h.lastReason())
	}
	body := rec.Body.String()
	if !strings.Contains(body, titleFailed) || !strings.Contains(body, testReqID) {
		t.Errorf("failure page lacks the title or request ID:\n%s", body)
	}
	for _, leak := range []string{"saml", "Assertion", "InResponseTo", "signature"} {
		if strings.Contains(strings.ToLower(body), strings.ToLower(leak)) {
			t.Errorf("failure page mentions %q:\n%s", leak, body)
		}
	}
	for _, c := range rec.Result().Cookies() {
		if h.codec.IsSessionCookie(c.Name) && c.MaxAge >= 0 {
			t.Errorf("a refused login set session cookie %s", c.Name)
		}
	}
	audit := h.logs.FilterLoggerName("audit").AllUntimed()
	if len(audit) == 0 {
		t.Fatal("no audit event")
	}
	last := audit[len(audit)-1].ContextMap()
	if last["event"] != "login_failed" || last["reason"] != reason {
		t.Errorf("last audit event %v %v, want login_failed %q", last["event"], last["reason"], reason)
	}
	if last["request_id"] != testReqID {
		t.Errorf("audit request_id %v", last["request_id"])
	}
}

// expectAccepted checks a successful login and returns its session.
func (h *harness) expectAccepted(t testing.TB, rec *httptest.ResponseRecorder, location string) *session.Session {
	t.Helper()
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("status %d, want 303; audit reason %q", rec.Code, h.lastReason())
	}
	if got := rec.Header().Get("Location"); got != location {
		t.Errorf("Location %q, want %q", got, location)
	}
	return h.session(rec)
}

// clearedCookie reports whether rec expires the cookie named name.
func clearedCookie(rec *httptest.ResponseRecorder, name string) bool {
	for _, c := range rec.Result().Cookies() {
		if c.Name == name && c.MaxAge < 0 {
			return true
		}
	}
	return false
}

const dsigRSASHA256 = dsig.RSASHA256SignatureMethod

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func newRequest(method, target string) *http.Request {
	req := httptest.NewRequest(method, testPublic+target, nil)
	return req.WithContext(web.WithRequestID(req.Context(), testReqID))
}

func serve(h *harness, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.sp.ServeHTTP(rec, req)
	return rec
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// defConn is the default organization's connection.
func (sp *SP) defConn() *conn { return sp.conns.Load().def }
