package samlsp

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"time"

	"github.com/crewjam/saml"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

// MetadataXML returns the SP metadata of organization org (see
// conn.metadataXML); MetadataXML() is the default organization's.
func (sp *SP) MetadataXML(org ...string) ([]byte, error) {
	id := identity.DefaultOrg
	if len(org) > 0 {
		id = org[0]
	}
	c := sp.conns.Load().byID[id]
	if c == nil {
		return nil, fmt.Errorf("no organization %q", id)
	}
	return c.metadataXML()
}

// metadataXML returns the SP metadata: the entity ID, the signing and
// encryption certificate, AuthnRequestsSigned="true",
// WantAssertionsSigned="true", one HTTP-POST ACS and the NameID format. It
// needs no IdP metadata.
func (c *conn) metadataXML() ([]byte, error) {
	base := c.base
	out, err := xml.MarshalIndent(base.Metadata(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal sp metadata: %w", err)
	}
	return append(append([]byte(xml.Header), out...), '\n'), nil
}

// load fetches the IdP metadata URL (or reads the file) once, now, and on
// success puts it in use. On failure the metadata in use, if any, is kept.
func (c *conn) load(ctx context.Context) error {
	c.loadMu.Lock()
	defer c.loadMu.Unlock()
	data, err := c.readMetadata(ctx)
	if err != nil {
		return err
	}
	st, err := c.newIDPState(data)
	if err != nil {
		return fmt.Errorf("idp metadata %s: %w", c.idpSource, err)
	}
	if err := c.checkNotExpired(st); err != nil {
		return err
	}
	c.noteLoaded(c.state.Swap(st), st)
	return nil
}

// run loads the IdP metadata now and then every metadataRefresh (every
// 30 seconds while none is loaded), until ctx is done. A failed load keeps
// the last good metadata and is logged and counted.
func (c *conn) run(ctx context.Context) {
	sp := c.sp
	sp.metrics.OrganizationServed(c.org)
	for {
		if err := c.load(ctx); err != nil && ctx.Err() == nil {
			sp.metrics.MetadataRefreshFailed(c.org)
			c.logLoadFailure(err)
		}
		wait := sp.refreshEvery
		if c.state.Load() == nil {
			wait = sp.retryEvery
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (c *conn) readMetadata(ctx context.Context) ([]byte, error) {
	if c.idpURL == nil {
		f, err := os.Open(c.idpFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.idpField, err)
		}
		defer f.Close()
		data, err := readBounded(f, maxMetadataBytes)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", c.idpField, c.idpFile, err)
		}
		return data, nil
	}
	u := c.idpURL.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch idp metadata %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8")
	resp, err := c.sp.httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch idp metadata %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("fetch idp metadata %s: status %s", u, resp.Status)
	}
	data, err := readBounded(resp.Body, maxMetadataBytes)
	if err != nil {
		return nil, fmt.Errorf("fetch idp metadata %s: %w", u, err)
	}
	return data, nil
}

func readBounded(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}

var whitespace = regexp.MustCompile(`\s+`)

// newIDPState parses IdP metadata: an EntityDescriptor, or an
// EntitiesDescriptor holding exactly one entity with an IDPSSODescriptor.
// It must have an HTTP-Redirect SingleSignOnService and a signing
// certificate.
func (c *conn) newIDPState(data []byte) (*idpState, error) {
	if err := checkXMLText(data); err != nil {
		return nil, err
	}
	ed, err := parseIDPMetadata(data)
	if err != nil {
		return nil, err
	}
	if ed.EntityID == "" {
		return nil, errors.New("no entityID")
	}
	st := &idpState{loadedAt: c.sp.now(), validUntil: validUntil(ed)}
	for _, d := range ed.IDPSSODescriptors {
		for _, s := range d.SingleSignOnServices {
			if s.Binding == saml.HTTPRedirectBinding && st.ssoURL == "" {
				st.ssoURL = s.Location
			}
		}
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				cert, err := parseBase64Cert(c.Data)
				if err != nil {
					return nil, fmt.Errorf("signing certificate: %w", err)
				}
				if fp := fingerprint(cert); !slices.Contains(st.certs, fp) {
					st.certs = append(st.certs, fp)
				}
			}
		}
	}
	if st.ssoURL == "" {
		return nil, errors.New("no SingleSignOnService with the HTTP-Redirect binding")
	}
	if len(st.certs) == 0 {
		return nil, errors.New("no signing certificate")
	}
	slices.Sort(st.certs)
	idp := c.base
	idp.IDPMetadata = ed
	st.sp = &idp
	return st, nil
}

func parseBase64Cert(s string) (*x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(whitespace.ReplaceAllString(s, ""))
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	return x509.ParseCertificate(der)
}

func defaultHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 20 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConns:          2,
			ForceAttemptHTTP2:     true,
		},
		// The metadata is the trust anchor for every signature.
		CheckRedirect: checkMetadataRedirect,
	}
}

// parseIDPMetadata reads an EntityDescriptor with an IDPSSODescriptor, or
// an EntitiesDescriptor (nested ones included) holding exactly one entity
// with an IDPSSODescriptor. (crewjam's samlsp.ParseMetadata does the same,
// but importing that package would add golang-jwt to our dependencies.)
func parseIDPMetadata(data []byte) (*saml.EntityDescriptor, error) {
	root, err := rootElement(data)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if root.Space != "urn:oasis:names:tc:SAML:2.0:metadata" {
		return nil, fmt.Errorf("root element {%s}%s is not SAML metadata", root.Space, root.Local)
	}
	switch root.Local {
	case "EntityDescriptor":
		var ed saml.EntityDescriptor
		if err := xml.Unmarshal(data, &ed); err != nil {
			return nil, fmt.Errorf("parse: %w", err)
		}
		if len(ed.IDPSSODescriptors) == 0 {
			return nil, errors.New("no IDPSSODescriptor: is this the IdP's metadata?")
		}
		return &ed, nil
	case "EntitiesDescriptor":
		var all saml.EntitiesDescriptor
		if err := xml.Unmarshal(data, &all); err != nil {
			return nil, fmt.Errorf("parse: %w", err)
		}
		idps := collectIDPs(&all, time.Time{}, nil)
		if len(idps) != 1 {
			return nil, fmt.Errorf("EntitiesDescriptor holds %d entities with an IDPSSODescriptor, want exactly 1", len(idps))
		}
		return idps[0], nil
	}
	return nil, fmt.Errorf("root element %s is neither EntityDescriptor nor EntitiesDescriptor", root.Local)
}

// collectIDPs appends the entities of all with an IDPSSODescriptor to dst,
// each with its ValidUntil set to the earliest validUntil of the entity and
// of the EntitiesDescriptors enclosing it (outer: theirs so far).
func collectIDPs(all *saml.EntitiesDescriptor, outer time.Time, dst []*saml.EntityDescriptor) []*saml.EntityDescriptor {
	outer = firstValidUntil(outer, all.ValidUntil)
	for i := range all.EntityDescriptors {
		if len(all.EntityDescriptors[i].IDPSSODescriptors) > 0 {
			ed := all.EntityDescriptors[i]
			ed.ValidUntil = firstValidUntil(outer, &ed.ValidUntil)
			dst = append(dst, &ed)
		}
	}
	for i := range all.EntitiesDescriptors {
		dst = collectIDPs(&all.EntitiesDescriptors[i], outer, dst)
	}
	return dst
}

func rootElement(data []byte) (xml.Name, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			return xml.Name{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t.Name, nil
		case xml.Directive:
			return xml.Name{}, errDoctype
		}
	}
}
