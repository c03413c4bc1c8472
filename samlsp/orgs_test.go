package samlsp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crewjam/saml"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/web"
)

// Organizations in these tests: the default organization (the harness's
// IdP), acme (its own IdP entity, signing with the same test key as the
// default one, so only the checks on issuer, audience and ACS keep them
// apart) and globex (another key, served on its own host).
const (
	acmeIDPID   = "https://acme-idp.example.com/metadata"
	globexIDPID = "https://globex-idp.example.com/metadata"
	globexHost  = "globex.app.example.com"
)

type orgHarness struct {
	*harness
	acme, globex testIdP
}

// newOrgHarness builds an SP with the default organization (unless
// noDefault) and acme and globex.
func newOrgHarness(t *testing.T, noDefault bool) *orgHarness {
	t.Helper()
	return newOrgHarnessWith(t, noDefault, nil)
}

// newOrgHarnessWith is newOrgHarness with options set by options (nil: none).
func newOrgHarnessWith(t *testing.T, noDefault bool, options func(*Options)) *orgHarness {
	t.Helper()
	acme := loadIdP(t, "idp")
	acme.entityID, acme.ssoURL = acmeIDPID, "https://acme-idp.example.com/sso"
	globex := loadIdP(t, "idp2")
	globex.entityID, globex.ssoURL = globexIDPID, "https://globex-idp.example.com/sso"
	dir := t.TempDir()
	write := func(name string, idp testIdP) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, idp.metadata(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	acmeMD, globexMD := write("acme.xml", acme), write("globex.xml", globex)
	h := newHarnessWith(t, harnessOpts{options: options, config: func(c *config.Config) {
		if noDefault {
			c.SAML.IDPMetadataFile = ""
		}
		c.Organizations = []config.Organization{
			{ID: "acme", Name: "Acme Corp", Domains: []string{"acme.com"}, SAML: config.OrgSAML{IDPMetadataFile: acmeMD}},
			{ID: "globex", Domains: []string{"globex.com"}, Hosts: []string{globexHost},
				SAML: config.OrgSAML{IDPMetadataFile: globexMD, Attributes: config.Attributes{Email: "email"}}},
		}
		for i := range c.Organizations {
			c.Organizations[i].SAML.Attributes = c.OrgSAMLConfig(&c.Organizations[i]).Attributes
		}
	}})
	return &orgHarness{harness: h, acme: acme, globex: globex}
}

func (h *orgHarness) conn(id string) *conn { return h.sp.conns.Load().byID[id] }

// from is a response of idp for the login requestID, addressed to c (its
// ACS, audience and Destination), for email.
func from(idp testIdP, c *conn, requestID, email string) respOpts {
	return respOpts{
		requestID: requestID,
		signer:    &idp,
		assertion: func(a *saml.Assertion) {
			a.Issuer.Value = idp.entityID
			a.Subject.NameID.Value = email
			a.Subject.SubjectConfirmations[0].SubjectConfirmationData.Recipient = c.acsURL.String()
			a.Conditions.AudienceRestrictions[0].Audience.Value = c.entityID
			a.AttributeStatements[0].Attributes = []saml.Attribute{
				attribute("uid", "", strings.Split(email, "@")[0]),
				attribute("mail", "", email),
				attribute("email", "", email),
			}
		},
		response: func(r *saml.Response) {
			r.Issuer.Value = idp.entityID
			r.Destination = c.acsURL.String()
		},
	}
}

// startAt starts a login at c's IdP from a page on host.
func (h *orgHarness) startAt(c *conn, host string) *login {
	h.t.Helper()
	req := httptest.NewRequest(http.MethodGet, "https://"+host+"/page", nil)
	rec := httptest.NewRecorder()
	h.sp.startLoginAt(rec, req, c, "/page")
	if rec.Code != http.StatusSeeOther {
		h.t.Fatalf("start login at %s: status %d", c.org, rec.Code)
	}
	loc, _ := url.Parse(rec.Header().Get("Location"))
	l := &login{location: loc, rec: rec, relay: loc.Query().Get("RelayState")}
	l.authn = decodeAuthnRequest(h.t, loc.Query().Get("SAMLRequest"))
	l.requestID = l.authn.ID
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == h.sp.trackingName(l.relay) {
			l.cookie = ck
		}
	}
	return l
}

// postTo posts a response to c's ACS with the login's relay state and cookie.
func (h *orgHarness) postTo(c *conn, o respOpts, l *login) *httptest.ResponseRecorder {
	h.t.Helper()
	form := url.Values{"SAMLResponse": {h.makeResponse(o)}, "RelayState": {l.relay}}
	req := httptest.NewRequest(http.MethodPost, c.acsURL.String(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req = req.WithContext(web.WithRequestID(req.Context(), testReqID))
	req.AddCookie(&http.Cookie{Name: l.cookie.Name, Value: l.cookie.Value})
	rec := httptest.NewRecorder()
	h.sp.ServeHTTP(rec, req)
	return rec
}

func TestOrganizations_EachSignsInAtItsOwnACS(t *testing.T) {
	t.Parallel()
	h := newOrgHarness(t, false)
	for _, tc := range []struct {
		org, email string
		idp        testIdP
		host       string
	}{
		{"acme", "bob@acme.com", h.acme, "app.example.com"},
		{"globex", "carol@globex.com", h.globex, globexHost},
		{identity.DefaultOrg, "alice@example.com", h.idp, "app.example.com"},
	} {
		c := h.conn(tc.org)
		l := h.startAt(c, tc.host)
		if got := l.location.Host; got != strings.TrimPrefix(strings.TrimSuffix(tc.idp.ssoURL, "/sso"), "https://") {
			t.Errorf("%s: login went to %s", tc.org, l.location)
		}
		s := h.expectAccepted(t, h.postTo(c, from(tc.idp, c, l.requestID, tc.email), l), "/page")
		if s.Principal.Org != tc.org || s.Principal.Email != tc.email {
			t.Errorf("%s: session %+v", tc.org, s.Principal)
		}
	}
	if got := h.conn("globex").acsURL.String(); got != "https://"+globexHost+"/saml/acs/globex" {
		t.Errorf("globex's ACS %s: an organization with hosts is served on its first host", got)
	}
	if got := h.conn("acme").entityID; got != testPublic+"/saml/metadata/acme" {
		t.Errorf("acme's entity ID %s", got)
	}
}

// Each isolation rule of issue #15, as its own case: a response that any
// one organization's checks would accept is refused everywhere else.
func TestOrganizations_Isolation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		run    func(h *orgHarness) *httptest.ResponseRecorder
		reason string
	}{
		{"globex's IdP posts a valid assertion to acme's ACS", func(h *orgHarness) *httptest.ResponseRecorder {
			acme := h.conn("acme")
			l := h.startAt(acme, "app.example.com")
			return h.postTo(acme, from(h.globex, acme, l.requestID, "carol@acme.com"), l)
		}, reasonIssuer},
		{"globex's IdP signs with its key under acme's issuer", func(h *orgHarness) *httptest.ResponseRecorder {
			acme := h.conn("acme")
			l := h.startAt(acme, "app.example.com")
			forger := h.globex
			forger.entityID = acmeIDPID
			return h.postTo(acme, from(forger, acme, l.requestID, "carol@acme.com"), l)
		}, reasonInvalidSignature},
		{"globex's IdP, correctly addressed to globex, asserts an acme.com email", func(h *orgHarness) *httptest.ResponseRecorder {
			globex := h.conn("globex")
			l := h.startAt(globex, globexHost)
			return h.postTo(globex, from(h.globex, globex, l.requestID, "ceo@acme.com"), l)
		}, reasonDomainNotAllowed},
		{"the default IdP asserts an acme.com email", func(h *orgHarness) *httptest.ResponseRecorder {
			def := h.conn(identity.DefaultOrg)
			l := h.startAt(def, "app.example.com")
			return h.postTo(def, from(h.idp, def, l.requestID, "ceo@acme.com"), l)
		}, reasonDomainNotAllowed},
		{"acme's assertion addressed to the default organization, posted to acme's ACS", func(h *orgHarness) *httptest.ResponseRecorder {
			acme, def := h.conn("acme"), h.conn(identity.DefaultOrg)
			l := h.startAt(acme, "app.example.com")
			o := from(h.acme, acme, l.requestID, "bob@acme.com")
			inner := o.assertion
			o.assertion = func(a *saml.Assertion) {
				inner(a)
				a.Conditions.AudienceRestrictions[0].Audience.Value = def.entityID
			}
			return h.postTo(acme, o, l)
		}, reasonAudience},
		{"same key, other issuer: the default IdP's assertion at acme's ACS", func(h *orgHarness) *httptest.ResponseRecorder {
			acme := h.conn("acme")
			l := h.startAt(acme, "app.example.com")
			return h.postTo(acme, from(h.idp, acme, l.requestID, "bob@acme.com"), l)
		}, reasonIssuer},
		{"a login started for acme, answered at globex's ACS", func(h *orgHarness) *httptest.ResponseRecorder {
			acme, globex := h.conn("acme"), h.conn("globex")
			l := h.startAt(acme, "app.example.com")
			return h.postTo(globex, from(h.globex, globex, l.requestID, "carol@globex.com"), l)
		}, reasonOrganization},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newOrgHarness(t, false)
			h.expectRefused(t, tc.run(h), http.StatusForbidden, tc.reason)
		})
	}
}

func TestOrganizations_Endpoints(t *testing.T) {
	t.Parallel()
	h := newOrgHarness(t, false)
	for _, tc := range []struct {
		target string
		status int
		entity string
	}{
		{"/saml/metadata", http.StatusOK, testPublic + "/saml/metadata"},
		{"/saml/metadata/acme", http.StatusOK, testPublic + "/saml/metadata/acme"},
		{"/saml/metadata/globex", http.StatusOK, "https://" + globexHost + "/saml/metadata/globex"},
		{"/saml/metadata/default", http.StatusNotFound, ""},
		{"/saml/metadata/initech", http.StatusNotFound, ""},
		{"/saml/metadata/acme/", http.StatusNotFound, ""},
		{"/saml/acs/initech", http.StatusNotFound, ""},
	} {
		rec := serve(h.harness, newRequest(http.MethodGet, tc.target))
		if rec.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.target, rec.Code, tc.status)
		}
		if tc.entity != "" && !strings.Contains(rec.Body.String(), `entityID="`+tc.entity+`"`) {
			t.Errorf("%s: metadata lacks entityID %s", tc.target, tc.entity)
		}
	}
}

func TestOrganizations_IdentifierFirstPage(t *testing.T) {
	t.Parallel()
	h := newOrgHarness(t, true) // no default organization: unknown domains match nothing
	get := func(target, host string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "https://"+host+target, nil)
		req.RemoteAddr = "192.0.2.7:1234"
		rec := httptest.NewRecorder()
		h.sp.ServeHTTP(rec, req)
		return rec
	}
	post := func(email string) *httptest.ResponseRecorder {
		form := url.Values{"email": {email}, "rd": {"/after"}}
		req := httptest.NewRequest(http.MethodPost, testPublic+"/saml/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = "192.0.2.8:1234"
		rec := httptest.NewRecorder()
		h.sp.ServeHTTP(rec, req)
		return rec
	}
	page := get("/saml/login?rd=/after", "app.example.com")
	body := page.Body.String()
	if page.Code != http.StatusOK || !strings.Contains(body, `name="email"`) || !strings.Contains(body, `value="/after"`) {
		t.Fatalf("identifier-first page: %d\n%s", page.Code, body)
	}
	for _, secret := range []string{"acme", "Acme", "globex"} {
		if strings.Contains(body, secret) {
			t.Errorf("the page names an organization (%q)", secret)
		}
	}
	if rec := post("Bob@ACME.com"); rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), h.acme.ssoURL) {
		t.Errorf("bob@acme.com: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	// globex is served on its own host, where its ACS and so its login are.
	for _, target := range []string{"/saml/login?organization=globex&rd=/after", "/saml/login?login_hint=x@globex.com&rd=/after", "/saml/login?domain_hint=globex.com&rd=/after"} {
		if rec := get(target, "app.example.com"); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "https://"+globexHost+"/saml/login?rd=%2Fafter" {
			t.Errorf("%s: %d %s", target, rec.Code, rec.Header().Get("Location"))
		}
	}
	if rec := get("/saml/login", globexHost); rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), h.globex.ssoURL) {
		t.Errorf("globex's host: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	unknown := post("eve@initech.com").Body.String()
	for _, target := range []string{"/saml/login?organization=initech", "/saml/login?domain_hint=initech.com"} {
		rec := get(target, "app.example.com")
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), messageNoSSO) {
			t.Errorf("%s: %d, want the generic answer", target, rec.Code)
		}
	}
	if !strings.Contains(unknown, messageNoSSO) {
		t.Errorf("unknown domain: no generic answer\n%s", unknown)
	}
	// The proxy's unauthenticated navigation on the shared host goes to the page.
	rec := httptest.NewRecorder()
	h.sp.StartLogin(rec, httptest.NewRequest(http.MethodGet, testPublic+"/app", nil), "/app?x=1")
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/saml/login?rd=%2Fapp%3Fx%3D1" {
		t.Errorf("StartLogin on the shared host: %d %s", rec.Code, rec.Header().Get("Location"))
	}
}

func TestOrganizations_LookupsAreRateLimitedPerClient(t *testing.T) {
	t.Parallel()
	h := newOrgHarness(t, true)
	lookup := func(addr string) int {
		req := httptest.NewRequest(http.MethodGet, testPublic+"/saml/login?domain_hint=guess.com", nil)
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		h.sp.ServeHTTP(rec, req)
		return rec.Code
	}
	for i := range hintBurst {
		if code := lookup("198.51.100.1:1000"); code != http.StatusOK {
			t.Fatalf("lookup %d: %d", i+1, code)
		}
	}
	if code := lookup("198.51.100.1:1001"); code != http.StatusTooManyRequests {
		t.Errorf("lookup %d from one client: %d, want 429", hintBurst+1, code)
	}
	if code := lookup("198.51.100.2:1000"); code != http.StatusOK {
		t.Errorf("another client: %d", code)
	}
	h.clock.Advance(hintEvery)
	if code := lookup("198.51.100.1:1002"); code != http.StatusOK {
		t.Errorf("after %s: %d", hintEvery, code)
	}
}

func TestOrganizations_SetOrganizationsKeepsUnchangedConnections(t *testing.T) {
	t.Parallel()
	h := newOrgHarness(t, false)
	acme, globex := h.conn("acme"), h.conn("globex")
	orgs := h.cfg.Organizations[:1] // globex removed
	if err := h.sp.SetOrganizations(orgs); err != nil {
		t.Fatal(err)
	}
	if h.conn("acme") != acme || acme.ready() != nil {
		t.Error("acme's connection (and its loaded metadata) was not kept")
	}
	if h.conn("globex") != nil || h.sp.HostOrg(globexHost) != "" {
		t.Error("globex still served after its removal")
	}
	if err := h.sp.SetOrganizations(h.cfg.Organizations); err != nil {
		t.Fatal(err)
	}
	if c := h.conn("globex"); c == nil || c == globex || c.ready() == nil {
		t.Error("globex came back with its old connection, or already loaded")
	}
	if err := h.sp.LoadMetadata(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.sp.Degraded() != "" {
		t.Errorf("degraded after loading: %s", h.sp.Degraded())
	}
}
