// Package demoidp owns the two peers `portcullis demo` runs beside the proxy:
// a SAML identity provider with a page of demo users (a click signs in, no
// password) and a demo app that shows the identity headers it received and
// the webhooks Portcullis sent it, each verified with the Standard Webhooks
// Go library as the README tells an app to (hooks.go).
//
// It exists only for the demo subcommand: cmd/portcullis/demo.go is the one
// file that imports it, and no configuration key reaches it, so `serve`
// can never run an IdP that signs anyone in with a click.
//
// The IdP is crewjam's root saml.IdentityProvider with a freshly generated
// key. It accepts signed AuthnRequests from exactly one service provider,
// whose metadata it is given, and answers with signed assertions carrying
// an emailAddress NameID and the attributes uid, mail, displayName and
// groups.
package demoidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"go.uber.org/zap"
)

// Paths the IdP serves, below its base URL.
const (
	PathMetadata = "/metadata"
	pathSSO      = "/sso"
	pathLogin    = "/login"
)

// maxLoginForm bounds the login form post: it carries the AuthnRequest
// query (a few KiB) and a user name.
const maxLoginForm = 64 << 10

// User is one demo user the login page offers.
type User struct {
	Name        string // uid attribute, shown in X-Forwarded-User
	Email       string // NameID and mail attribute
	DisplayName string
	Groups      []string
}

// Users returns the demo users: alice (staff, admins), bob and carol (staff).
func Users() []User {
	return []User{
		{Name: "alice", Email: "alice@example.com", DisplayName: "Alice Anders", Groups: []string{"staff", "admins"}},
		{Name: "bob", Email: "bob@example.com", DisplayName: "Bob Berg", Groups: []string{"staff"}},
		{Name: "carol", Email: "carol@example.com", DisplayName: "Carol Chen", Groups: []string{"staff"}},
	}
}

// Options configures an IdP.
type Options struct {
	// BaseURL is where the IdP is served, e.g. http://127.0.0.1:PORT.
	BaseURL *url.URL
	// SPMetadata is the metadata of the only service provider it accepts.
	SPMetadata []byte
	// Users are offered on the login page.
	Users []User
	// AppURL is where a "start again" link points after a sign-in took too
	// long: the proxy, which starts a new sign-in.
	AppURL string
	Logger *zap.Logger
}

// IdP is the demo identity provider. It is an http.Handler.
type IdP struct {
	idp    saml.IdentityProvider
	mux    *http.ServeMux
	users  []User
	appURL string
	log    *zap.Logger
}

// New generates the IdP's signing key and certificate and registers the
// service provider from opts.SPMetadata.
func New(opts Options) (*IdP, error) {
	if opts.BaseURL == nil {
		return nil, errors.New("demoidp: no base URL")
	}
	var spMeta saml.EntityDescriptor
	if err := xml.Unmarshal(opts.SPMetadata, &spMeta); err != nil {
		return nil, fmt.Errorf("demoidp: parse sp metadata: %w", err)
	}
	if spMeta.EntityID == "" || len(spMeta.SPSSODescriptors) == 0 {
		return nil, errors.New("demoidp: sp metadata has no entity ID or SPSSODescriptor")
	}
	key, cert, err := newSigningKey()
	if err != nil {
		return nil, fmt.Errorf("demoidp: generate signing key: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	p := &IdP{users: opts.Users, appURL: opts.AppURL, log: log, mux: http.NewServeMux()}
	base := strings.TrimSuffix(opts.BaseURL.String(), "/")
	mdURL, err := url.Parse(base + PathMetadata)
	if err != nil {
		return nil, fmt.Errorf("demoidp: metadata url: %w", err)
	}
	ssoURL, err := url.Parse(base + pathSSO)
	if err != nil {
		return nil, fmt.Errorf("demoidp: sso url: %w", err)
	}
	p.idp = saml.IdentityProvider{
		Key:                     key,
		Certificate:             cert,
		Logger:                  zap.NewStdLog(log),
		MetadataURL:             *mdURL,
		SSOURL:                  *ssoURL,
		ServiceProviderProvider: oneSP{&spMeta},
		SessionProvider:         sessions{p},
		AssertionMaker:          assertionMaker{},
		NameIDFormats:           []saml.NameIDFormat{saml.EmailAddressNameIDFormat},
		WantAuthnRequestsSigned: true,
		RejectSHA1Signatures:    true,
		OnError:                 p.onError,
	}
	p.mux.HandleFunc("GET "+PathMetadata, p.idp.ServeMetadata)
	p.mux.HandleFunc("GET "+pathSSO, p.idp.ServeSSO)
	p.mux.HandleFunc("POST "+pathLogin, p.serveLogin)
	p.mux.HandleFunc("GET /{$}", p.serveHome)
	return p, nil
}

// MetadataURL is the URL of the IdP metadata, for saml.idpMetadataURL.
func (p *IdP) MetadataURL() string { return p.idp.MetadataURL.String() }

func (p *IdP) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.mux.ServeHTTP(w, r) }

// oneSP is the service provider store: exactly one SP.
type oneSP struct{ md *saml.EntityDescriptor }

func (s oneSP) GetServiceProvider(_ *http.Request, id string) (*saml.EntityDescriptor, error) {
	if id != s.md.EntityID {
		return nil, os.ErrNotExist
	}
	return s.md, nil
}

type userKey struct{}

// sessions is the SessionProvider. There is no IdP session: every sign-in
// shows the login page, so switching users needs nothing but a sign-out at
// the app. A click on a user posts to /login, which answers the same
// AuthnRequest again with the chosen user in the request context.
type sessions struct{ p *IdP }

func (s sessions) GetSession(w http.ResponseWriter, r *http.Request, req *saml.IdpAuthnRequest) *saml.Session {
	u, ok := r.Context().Value(userKey{}).(User)
	if !ok {
		s.p.renderLogin(w, r, req)
		return nil
	}
	return &saml.Session{
		ID:           randomHex(16),
		CreateTime:   req.Now,
		ExpireTime:   req.Now.Add(8 * time.Hour),
		Index:        randomHex(16),
		NameID:       u.Email,
		NameIDFormat: string(saml.EmailAddressNameIDFormat),
		CustomAttributes: []saml.Attribute{
			attribute("uid", u.Name),
			attribute("mail", u.Email),
			attribute("displayName", u.DisplayName),
			attribute("groups", u.Groups...),
		},
	}
}

// assertionMaker is crewjam's DefaultAssertionMaker with the attribute
// statement replaced by exactly the session's attributes, so the SP gets
// uid, mail, displayName and groups and nothing it has to ignore.
type assertionMaker struct{}

func (assertionMaker) MakeAssertion(req *saml.IdpAuthnRequest, s *saml.Session) error {
	if err := (saml.DefaultAssertionMaker{}).MakeAssertion(req, s); err != nil {
		return err
	}
	req.Assertion.AttributeStatements = []saml.AttributeStatement{{Attributes: s.CustomAttributes}}
	return nil
}

func attribute(name string, values ...string) saml.Attribute {
	a := saml.Attribute{Name: name, NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"}
	for _, v := range values {
		a.Values = append(a.Values, saml.AttributeValue{Type: "xs:string", Value: v})
	}
	return a
}

// serveLogin is the click on a user: it answers the AuthnRequest carried
// in the form (validated again, signature included) as that user.
func (p *IdP) serveLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	if err := r.ParseForm(); err != nil {
		p.page(w, http.StatusBadRequest, "Sign-in refused", "The sign-in form could not be read.", "")
		return
	}
	name := r.PostForm.Get("user")
	var user *User
	for i := range p.users {
		if p.users[i].Name == name {
			user = &p.users[i]
		}
	}
	if user == nil {
		p.page(w, http.StatusBadRequest, "Sign-in refused", "There is no demo user by that name.", "")
		return
	}
	sso := r.Clone(context.WithValue(r.Context(), userKey{}, *user))
	sso.Method = http.MethodGet
	sso.URL = &url.URL{Path: pathSSO, RawQuery: r.PostForm.Get("request")}
	sso.Body, sso.ContentLength = http.NoBody, 0
	sso.Form, sso.PostForm = nil, nil
	p.log.Info("demo idp sign-in", zap.String("user", user.Name))
	p.idp.ServeSSO(w, sso)
}

// onError logs what the IdP refused and shows a page without the details.
func (p *IdP) onError(w http.ResponseWriter, r *http.Request, status int, err error) {
	p.log.Warn("demo idp refused a request", zap.String("path", r.URL.Path), zap.Int("status", status), zap.Error(err))
	if errors.Is(err, saml.ErrExpired) {
		p.page(w, status, "Sign-in took too long",
			"A sign-in request is valid for 90 seconds. Go back to the app to start again.", p.appURL)
		return
	}
	p.page(w, status, "Sign-in refused",
		"The demo IdP only answers signed requests from the Portcullis demo proxy.", p.appURL)
}

func (p *IdP) serveHome(w http.ResponseWriter, _ *http.Request) {
	p.page(w, http.StatusOK, "Portcullis demo IdP",
		"Sign-in starts at the app: open it and you are sent here to pick a user.", p.appURL)
}

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo IdP: sign in</title>` + style + `</head>
<body><h1>Demo IdP: sign in</h1>
<p>This is the identity provider of <code>portcullis demo</code>. Pick a user: there is no password.
The service provider asking is <code>{{.SP}}</code>.</p>
<form method="post" action="/login">
<input type="hidden" name="request" value="{{.Request}}">
<table><tr><th></th><th>uid</th><th>mail</th><th>groups</th></tr>
{{range .Users}}<tr><td><button type="submit" name="user" value="{{.Name}}" id="user-{{.Name}}">Sign in as {{.DisplayName}}</button></td>
<td><code>{{.Name}}</code></td><td>{{.Email}}</td><td>{{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{end}}</td></tr>
{{end}}</table></form></body></html>
`))

func (p *IdP) renderLogin(w http.ResponseWriter, r *http.Request, req *saml.IdpAuthnRequest) {
	securityHeaders(w)
	w.WriteHeader(http.StatusOK)
	_ = loginTmpl.Execute(w, struct {
		SP, Request string
		Users       []User
	}{req.ServiceProviderMetadata.EntityID, r.URL.RawQuery, p.users})
}

const style = `<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}code,pre{background:#f3f3f3;padding:.1rem .3rem}pre{padding:.6rem;white-space:pre-wrap;word-break:break-all}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}</style>`

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>` + style + `</head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p>{{if .Link}}<p><a href="{{.Link}}">Open the app</a></p>{{end}}</body></html>
`))

func (p *IdP) page(w http.ResponseWriter, status int, title, message, link string) {
	securityHeaders(w)
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, struct{ Title, Message, Link string }{title, message, link})
}

func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
}

// newSigningKey makes an RSA 2048 key and a self-signed certificate valid
// for a year: the IdP lives as long as one demo run.
func newSigningKey() (*rsa.PrivateKey, *x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "portcullis demo idp"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
