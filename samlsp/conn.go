package samlsp

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
)

// conn is one IdP connection: the trust of one organization. It has its
// own SP entity ID, ACS URL and metadata URL (what the organization's IdP
// administrator registers), its own IdP metadata, loaded and refreshed on
// its own, and its own attribute names. Everything else (the SP key, the
// session and tracking cookies, the replay cache, the clock) is the SP's
// and shared.
type conn struct {
	sp  *SP
	org string // the organization id; identity.DefaultOrg for the top-level IdP
	// name is the organization's display name; domains its verified email
	// domains (nil for the default organization, which has every domain no
	// other organization claims).
	name    string
	domains []string
	// field is the config path of this connection's saml block, for errors:
	// "saml" or "organizations[2].saml".
	field string

	entityID     string
	acsURL       url.URL
	metadataURL  url.URL
	sloURL       url.URL // Single Logout, every binding (slo.go)
	attrs        config.Attributes
	allowIDPInit bool

	idpSource string // IdP metadata URL or file, for logs and errors
	idpField  string // the config field naming it, for errors
	idpURL    *url.URL
	idpFile   string

	// base is the ServiceProvider with everything but the IdP metadata;
	// each loaded metadata gets a copy of it.
	base saml.ServiceProvider

	state  atomic.Pointer[idpState]
	loadMu sync.Mutex // serialises metadata loads; readers use state
	// refusedExpired is the validUntil of the last document refused as
	// expired, nil once a load succeeds; certChange is the last change of
	// the signing certificates (trust.go).
	refusedExpired atomic.Pointer[time.Time]
	certChange     atomic.Pointer[certChange]
}

// newConn builds the connection of organization org from its saml block s
// (field is its config path). suffix is "" for the default organization's
// URLs (/saml/acs) and "/{org}" for another's (/saml/acs/acme); base is
// the URL they hang off (publicURL, or the organization's first host).
func (sp *SP) newConn(cfg *config.Config, org string, s config.SAML, suffix string) (*conn, error) {
	return sp.newConnAt(cfg, org, s, suffix, strings.TrimSuffix(cfg.Public.String(), "/"), "saml")
}

func (sp *SP) newConnAt(cfg *config.Config, org string, s config.SAML, suffix, base, field string) (*conn, error) {
	c := &conn{sp: sp, org: org, field: field}
	acs, err := url.Parse(base + pathACS + suffix)
	if err != nil {
		return nil, fmt.Errorf("samlsp: %s: acs url: %w", field, err)
	}
	md, err := url.Parse(base + pathMetadata + suffix)
	if err != nil {
		return nil, fmt.Errorf("samlsp: %s: metadata url: %w", field, err)
	}
	slo, err := url.Parse(base + pathSLO + suffix)
	if err != nil {
		return nil, fmt.Errorf("samlsp: %s: slo url: %w", field, err)
	}
	c.acsURL, c.metadataURL, c.sloURL = *acs, *md, *slo
	c.entityID = s.EntityID
	if c.entityID == "" {
		c.entityID = md.String()
	}
	c.attrs = s.Attributes
	c.allowIDPInit = s.AllowIDPInitiated
	if err := c.idpSourceFrom(cfg, s); err != nil {
		return nil, err
	}
	c.base = c.crewjamSP()
	return c, nil
}

// idpSourceFrom records where the IdP metadata comes from.
func (c *conn) idpSourceFrom(cfg *config.Config, s config.SAML) error {
	switch {
	case s.MetadataURL != nil:
		c.idpURL = s.MetadataURL
		c.idpSource, c.idpField = s.MetadataURL.String(), c.field+".idpMetadataURL"
	case s.IDPMetadataURL != "":
		u, err := url.Parse(s.IDPMetadataURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("%s.idpMetadataURL: not an absolute URL", c.field)
		}
		c.idpURL = u
		c.idpSource, c.idpField = u.String(), c.field+".idpMetadataURL"
	case s.IDPMetadataFile != "":
		c.idpFile = cfg.Resolve(s.IDPMetadataFile)
		c.idpSource, c.idpField = c.idpFile, c.field+".idpMetadataFile"
	default:
		return errors.New(c.field + ": one of idpMetadataURL and idpMetadataFile is required")
	}
	return nil
}

// crewjamSP is the crewjam service provider every IdP state copies.
func (c *conn) crewjamSP() saml.ServiceProvider {
	sp := c.sp
	return saml.ServiceProvider{
		EntityID:    c.entityID,
		Key:         sp.key,
		Certificate: sp.cert,
		MetadataURL: c.metadataURL,
		AcsURL:      c.acsURL,
		SloURL:      c.sloURL,
		// The metadata advertises Single Logout at SloURL in every binding
		// slo.go serves.
		LogoutBindings:                   []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding, saml.SOAPBinding},
		AuthnNameIDFormat:                sp.nameIDFormat,
		SendUnspecifiedNameIDFormat:      true,
		SignatureMethod:                  dsig.RSASHA256SignatureMethod,
		AssertionConsumerServiceBindings: []string{saml.HTTPPostBinding},
		Clock:                            sp.clock,
		HTTPClient:                       sp.httpClient,
		LimitRelayStateLength:            true,
		// SHA-1 signatures can be forged by collision; Okta, Entra ID and
		// ADFS sign with SHA-256 unless told otherwise.
		RejectSHA1Signatures: true,
		// An administrator pastes this metadata into the IdP once; a
		// validUntil (crewjam's default: two days) would expire it there.
		MetadataOmitValidUntil: true,
		// Our own replay cache is checked after our own checks (acs.go),
		// so crewjam's ReplayCache stays nil here; slo.go sets it on the
		// copy that validates a LogoutRequest.
	}
}

// ready is nil once the connection's IdP metadata is loaded.
func (c *conn) ready() error {
	if c.state.Load() == nil {
		return errors.New("saml: identity provider metadata not loaded yet")
	}
	return nil
}

// loadedAt is when the metadata in use was loaded, or the zero time.
func (c *conn) loadedAt() time.Time {
	if st := c.state.Load(); st != nil {
		return st.loadedAt
	}
	return time.Time{}
}

// replayKey scopes a replay cache key to the organization: the default
// organization's keys are unprefixed, as before organizations, and another
// organization's start with its id and a space (xs:ID values hold none).
func (c *conn) replayKey(key string) string {
	if c.org == identity.DefaultOrg {
		return key
	}
	return c.org + " " + key
}
