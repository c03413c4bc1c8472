package samlsp

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
)

// What the SP does with the trust the IdP metadata carries: the rule its
// fetch's redirects must meet, its validUntil, and changes of the signing
// certificates from one load to the next.

// ErrMetadataExpired is a metadata document whose validUntil has passed.
// LoadMetadata refuses it: at start nothing is loaded (sign-in stays
// unavailable, check-config fails); on a refresh the last good copy stays
// in use and the SP reports itself degraded.
var ErrMetadataExpired = errors.New("metadata expired")

// SigningCerts describes the IdP signing certificates trusted and their
// last change, by SHA-256 fingerprint (as `openssl x509 -noout
// -fingerprint -sha256` prints it).
type SigningCerts struct {
	Current   []string  // in use, sorted; nil before the first load
	Previous  []string  // before the last change; nil if none since start
	ChangedAt time.Time // of the last change; zero if none since start
}

// certChange is the last change of the signing certificates.
type certChange struct {
	at       time.Time
	previous []string
}

// SigningCerts returns the signing certificates in use and their last change.
func (sp *SP) SigningCerts() SigningCerts {
	if def := sp.conns.Load().def; def != nil {
		return def.signingCerts()
	}
	return SigningCerts{}
}

func (c *conn) signingCerts() SigningCerts {
	var out SigningCerts
	if st := c.state.Load(); st != nil {
		out.Current = st.certs
	}
	if ch := c.certChange.Load(); ch != nil {
		out.Previous, out.ChangedAt = ch.previous, ch.at
	}
	return out
}

// Degraded is why sign-in works but not as it should, or "": the metadata
// in use has passed its validUntil, or the latest copy read was refused
// because it had. /readyz reports the idp check degraded with it.
//
// With organizations it also names every organization whose IdP metadata is
// not loaded or is itself degraded: only their sign-ins are affected.
func (sp *SP) Degraded() string {
	set := sp.conns.Load()
	var parts []string
	if set.def != nil {
		if d := set.def.degraded(); d != "" {
			parts = append(parts, d)
		}
	}
	var missing []string
	for _, id := range sp.Organizations() {
		c := set.byID[id]
		if id == identity.DefaultOrg {
			continue
		}
		if c.ready() != nil {
			missing = append(missing, id)
		} else if d := c.degraded(); d != "" {
			parts = append(parts, "organization "+id+": "+d)
		}
	}
	if len(missing) > 0 {
		parts = append(parts, "no idp metadata loaded for organization "+strings.Join(missing, ", "))
	}
	return strings.Join(parts, "; ")
}

func (c *conn) degraded() string {
	st := c.state.Load()
	if st == nil {
		return ""
	}
	if !st.validUntil.IsZero() && !c.sp.now().Before(st.validUntil) {
		return fmt.Sprintf("the idp metadata in use expired at %s (validUntil) and no newer copy has loaded",
			st.validUntil.UTC().Format(time.RFC3339))
	}
	if vu := c.refusedExpired.Load(); vu != nil {
		return fmt.Sprintf("the idp's latest metadata was refused: its validUntil %s has passed; the copy loaded at %s stays in use",
			vu.UTC().Format(time.RFC3339), st.loadedAt.UTC().Format(time.RFC3339))
	}
	return ""
}

// checkNotExpired refuses a loaded document whose validUntil has passed,
// counting it and keeping its validUntil for Degraded; a current document
// clears that.
func (c *conn) checkNotExpired(st *idpState) error {
	if st.validUntil.IsZero() || c.sp.now().Before(st.validUntil) {
		c.refusedExpired.Store(nil)
		return nil
	}
	c.sp.metrics.MetadataExpired()
	vu := st.validUntil
	c.refusedExpired.Store(&vu)
	return fmt.Errorf("%s %s: %w: its validUntil %s has passed; the IdP must publish current metadata",
		c.idpField, c.idpSource, ErrMetadataExpired, vu.UTC().Format(time.RFC3339))
}

// noteLoaded logs a load that replaced prev (nil: the first) with st, and
// a change of the signing certificates at warn, counted.
func (c *conn) noteLoaded(prev, st *idpState) {
	sp := c.sp
	entityID := st.sp.IDPMetadata.EntityID
	switch {
	case prev == nil || prev.sp.IDPMetadata.EntityID != entityID:
		sp.log.Info("idp metadata loaded", zap.String("source", c.idpSource),
			zap.String("entity_id", entityID), zap.Strings("signing_sha256", st.certs))
	default:
		if ce := sp.log.Check(zap.DebugLevel, "idp metadata refreshed"); ce != nil {
			ce.Write(zap.String("source", c.idpSource))
		}
	}
	if prev == nil || slices.Equal(prev.certs, st.certs) {
		return
	}
	sp.metrics.SigningCertsChanged()
	c.certChange.Store(&certChange{at: st.loadedAt, previous: prev.certs})
	sp.log.Warn("idp signing certificates changed: signatures are now checked against the new set",
		zap.String("source", c.idpSource), zap.String("entity_id", entityID),
		zap.Strings("previous_sha256", prev.certs), zap.Strings("current_sha256", st.certs))
}

// logLoadFailure logs a failed load as Run sees it.
func (c *conn) logLoadFailure(err error) {
	sp := c.sp
	switch {
	case c.state.Load() == nil:
		sp.log.Error("idp metadata load failed; sign-in unavailable until it succeeds",
			zap.String("source", c.idpSource), zap.Error(err))
	case errors.Is(err, ErrMetadataExpired):
		sp.log.Warn("idp metadata expired; keeping the last good copy",
			zap.String("source", c.idpSource), zap.Error(err))
	default:
		sp.log.Error("idp metadata refresh failed; keeping the last good copy",
			zap.String("source", c.idpSource), zap.Error(err))
	}
}

// fingerprint is the SHA-256 of a certificate as openssl prints it:
// upper-case hex pairs joined by colons.
func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}

// validUntil is the earliest validUntil of the entity (enclosing
// EntitiesDescriptors included, see parseIDPMetadata) and of its
// IDPSSODescriptors; zero if none has one.
func validUntil(ed *saml.EntityDescriptor) time.Time {
	vu := ed.ValidUntil
	for _, d := range ed.IDPSSODescriptors {
		vu = firstValidUntil(vu, d.ValidUntil)
	}
	return vu
}

// firstValidUntil is the earlier of a and *b, where zero or nil is "none".
func firstValidUntil(a time.Time, b *time.Time) time.Time {
	if b == nil || b.IsZero() || (!a.IsZero() && a.Before(*b)) {
		return a
	}
	return *b
}

// checkMetadataRedirect lets the metadata fetch follow a redirect only to a
// URL the configuration would accept written directly
// (config.CheckMetadataURL), never back to http once on https, and at most
// five.
func checkMetadataRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("stopped after 5 redirects")
	}
	if req.URL.Scheme != "https" && slices.ContainsFunc(via, func(r *http.Request) bool { return r.URL.Scheme == "https" }) {
		return fmt.Errorf("refusing redirect from https to %s", req.URL.Scheme)
	}
	if err := config.CheckMetadataURL(req.URL); err != nil {
		return fmt.Errorf("refusing redirect to %s: %w", req.URL.Redacted(), err)
	}
	return nil
}
