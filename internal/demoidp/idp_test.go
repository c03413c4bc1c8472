package demoidp

import (
	"encoding/xml"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// testSP is a crewjam service provider shaped like ours: signed
// HTTP-Redirect AuthnRequests with RSA-SHA256, emailAddress NameIDs.
func testSP(t *testing.T, entityID string) *saml.ServiceProvider {
	t.Helper()
	key, cert, err := newSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	md, _ := url.Parse("http://127.0.0.1:8080/saml/metadata")
	acs, _ := url.Parse("http://127.0.0.1:8080/saml/acs")
	return &saml.ServiceProvider{
		EntityID:          entityID,
		Key:               key,
		Certificate:       cert,
		MetadataURL:       *md,
		AcsURL:            *acs,
		AuthnNameIDFormat: saml.EmailAddressNameIDFormat,
		SignatureMethod:   dsig.RSASHA256SignatureMethod,
	}
}

// newTestIdP serves an IdP that knows only sp.
func newTestIdP(t *testing.T, sp *saml.ServiceProvider) (*IdP, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base, _ := url.Parse("http://" + srv.Listener.Addr().String())
	spMeta, err := xml.Marshal(sp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{BaseURL: base, SPMetadata: spMeta, Users: Users(), AppURL: "http://127.0.0.1:8080/"})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = p
	srv.Start()
	t.Cleanup(srv.Close)
	return p, srv
}

// authnRequest returns the IdP URL sp's browser would be sent to.
func authnRequest(t *testing.T, sp *saml.ServiceProvider, p *IdP, signed bool) (string, string) {
	t.Helper()
	sp.IDPMetadata = p.idp.Metadata()
	if !signed {
		sp.SignatureMethod = ""
	}
	req, err := sp.MakeAuthenticationRequest(p.idp.SSOURL.String(), saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		t.Fatal(err)
	}
	u, err := req.Redirect("relay", sp)
	if err != nil {
		t.Fatal(err)
	}
	return u.String(), req.ID
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestIdP_AcceptsOnlySignedRequestsFromItsSP(t *testing.T) {
	ours := testSP(t, "http://127.0.0.1:8080/saml/metadata")
	p, _ := newTestIdP(t, ours)
	for _, tc := range []struct {
		name   string
		sp     *saml.ServiceProvider
		signed bool
		want   int
	}{
		{"OurSPSigned", ours, true, http.StatusOK},
		{"OurSPUnsigned", testSP(t, ours.EntityID), false, http.StatusBadRequest},
		// Same entity ID, another key: the signature does not verify.
		{"ImpostorKey", testSP(t, ours.EntityID), true, http.StatusBadRequest},
		{"OtherSP", testSP(t, "http://127.0.0.1:9999/saml/metadata"), true, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := authnRequest(t, tc.sp, p, tc.signed)
			status, body := get(t, u)
			if status != tc.want {
				t.Fatalf("GET sso: status %d, want %d; body:\n%s", status, tc.want, body)
			}
			if hasPicker := strings.Contains(body, `id="user-alice"`); hasPicker != (tc.want == http.StatusOK) {
				t.Errorf("login page shown = %v, want %v", hasPicker, tc.want == http.StatusOK)
			}
		})
	}
}

var formValue = regexp.MustCompile(`name="SAMLResponse" value="([^"]+)"`)

func TestIdP_ClickSignsAssertionWithAttributes(t *testing.T) {
	sp := testSP(t, "http://127.0.0.1:8080/saml/metadata")
	p, srv := newTestIdP(t, sp)
	u, reqID := authnRequest(t, sp, p, true)
	parsed, _ := url.Parse(u)

	resp, err := http.PostForm(srv.URL+pathLogin, url.Values{"user": {"alice"}, "request": {parsed.RawQuery}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := formValue.FindStringSubmatch(string(body))
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("POST /login: status %d, no SAMLResponse form; body:\n%s", resp.StatusCode, body)
	}

	// Consume it as the SP would: signature, audience, recipient, request ID.
	acs := httptest.NewRequest(http.MethodPost, sp.AcsURL.String(),
		strings.NewReader(url.Values{"SAMLResponse": {html.UnescapeString(m[1])}}.Encode()))
	acs.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if err := acs.ParseForm(); err != nil {
		t.Fatal(err)
	}
	a, err := sp.ParseResponse(acs, []string{reqID})
	if err != nil {
		var ire *saml.InvalidResponseError
		if errors.As(err, &ire) {
			err = ire.PrivateErr
		}
		t.Fatalf("SP refused the response: %v", err)
	}
	if a.Signature == nil {
		t.Errorf("assertion is not signed")
	}
	if n := a.Subject.NameID; n.Format != string(saml.EmailAddressNameIDFormat) || n.Value != "alice@example.com" {
		t.Errorf("NameID = %q (%s), want alice@example.com (emailAddress)", n.Value, n.Format)
	}
	got := map[string][]string{}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			for _, v := range at.Values {
				got[at.Name] = append(got[at.Name], v.Value)
			}
		}
	}
	want := map[string][]string{
		"uid": {"alice"}, "mail": {"alice@example.com"}, "displayName": {"Alice Anders"}, "groups": {"staff", "admins"},
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("attribute %s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("attributes %v, want exactly %v", got, want)
	}
}

func TestIdP_LoginRefusesUnknownUser(t *testing.T) {
	sp := testSP(t, "http://127.0.0.1:8080/saml/metadata")
	p, srv := newTestIdP(t, sp)
	u, _ := authnRequest(t, sp, p, true)
	parsed, _ := url.Parse(u)
	resp, err := http.PostForm(srv.URL+pathLogin, url.Values{"user": {"mallory"}, "request": {parsed.RawQuery}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown user: status %d, want 400", resp.StatusCode)
	}
}

func TestUpstream_ShowsIdentityHeadersAndHint(t *testing.T) {
	h := Upstream(func(email string) string { return "curl for " + email })
	r := httptest.NewRequest(http.MethodGet, "/reports", nil)
	r.Header.Set("X-Forwarded-User", "alice")
	r.Header.Set("X-Forwarded-Email", "alice@example.com")
	r.Header.Set("X-Forwarded-Groups", "staff,<admins>")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body := w.Body.String()
	for _, want := range []string{
		`<td id="X-Forwarded-User">alice</td>`,
		`<td id="X-Forwarded-Groups">staff,&lt;admins&gt;</td>`,
		`<td id="X-Forwarded-Preferred-Username"><em>(not sent)</em></td>`,
		`<pre id="hint">curl for alice@example.com</pre>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s; page:\n%s", want, body)
		}
	}
}
