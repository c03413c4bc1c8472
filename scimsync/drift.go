package scimsync

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/internal/web"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Drift is one way a login's SAML assertion disagrees with the directory.
// Kind is one of metrics.DriftKinds; Detail is for operators and holds no
// secret (it may name e-mail addresses and groups).
type Drift struct {
	Kind   string
	Detail string
}

// driftListMax bounds the group names a groups_mismatch detail lists.
const driftListMax = 10

// DriftDetector compares each accepted login with the directory view: SSO
// and SCIM should describe the same people. It only reports; whether a
// login the directory disagrees with may use the application is the gate's
// decision on every request (scim.requireProvisioned, scim.groupsSource).
type DriftDetector struct {
	dirs           *Directories
	identityField  string // user | email: which assertion field is matched
	matchAttribute string // userName | email | externalId: against which SCIM attribute
	samlGroups     bool   // the assertion carries groups (saml.attributes.groups is set)
	audit          *zap.Logger
	metrics        *metrics.Metrics
}

// NewDriftDetector builds a detector for the views in dirs (a login is
// compared with its own organization's directory) under cfg's match rule.
// audit and m may be nil.
func NewDriftDetector(dirs *Directories, cfg *config.Config, audit *zap.Logger, m *metrics.Metrics) *DriftDetector {
	if audit == nil {
		audit = zap.NewNop()
	}
	return &DriftDetector{
		dirs:           dirs,
		identityField:  cfg.SCIM.Match.IdentityField,
		matchAttribute: cfg.SCIM.Match.SCIMAttribute,
		samlGroups:     cfg.SAML.Attributes.Groups != "",
		audit:          audit,
		metrics:        m,
	}
}

// Compare reports how p disagrees with its organization's directory, in
// the order unprovisioned or inactive (then nothing else is compared),
// email, groups. An organization without a directory has nothing to
// disagree with.
// Keys and emails compare by identity.MatchKey, as the gate matches them; groups compare
// case-sensitively, as routes' allowGroups do.
func (d *DriftDetector) Compare(p identity.Principal) []Drift {
	dir := d.dirs.Get(p.Org)
	if dir == nil {
		return nil
	}
	key := PrincipalMatchKey(p, d.identityField)
	if key == "" {
		return []Drift{{Kind: metrics.DriftUnprovisioned,
			Detail: fmt.Sprintf("the assertion has no %s to match against SCIM %s", d.identityField, d.matchAttribute)}}
	}
	u, state := dir.profile(key)
	switch state {
	case identity.StateUnknown:
		return []Drift{{Kind: metrics.DriftUnprovisioned,
			Detail: fmt.Sprintf("no SCIM user has %s equal to the assertion's %s", d.matchAttribute, d.identityField)}}
	case identity.StateDeleted:
		return []Drift{{Kind: metrics.DriftInactive, Detail: "SCIM deleted this user; the IdP still signs them in"}}
	case identity.StateAmbiguous:
		return []Drift{{Kind: metrics.DriftUnprovisioned,
			Detail: fmt.Sprintf("more than one SCIM user has %s equal to the assertion's %s; the gate denies it", d.matchAttribute, d.identityField)}}
	case identity.StateInactive:
		return []Drift{{Kind: metrics.DriftInactive, Detail: "SCIM deactivated this user; the IdP still signs them in"}}
	}
	var out []Drift
	if p.Email != "" && u.email != "" && identity.MatchKey(p.Email) != identity.MatchKey(u.email) {
		out = append(out, Drift{Kind: metrics.DriftEmailMismatch,
			Detail: fmt.Sprintf("assertion email %q, SCIM email %q", p.Email, u.email)})
	}
	if d.samlGroups {
		onlySAML, onlySCIM := setDiff(p.Groups, u.groups), setDiff(u.groups, p.Groups)
		if len(onlySAML)+len(onlySCIM) > 0 {
			out = append(out, Drift{Kind: metrics.DriftGroupsMismatch,
				Detail: fmt.Sprintf("only in the assertion: %s; only in SCIM: %s", listOf(onlySAML), listOf(onlySCIM))})
		}
	}
	return out
}

// Check compares p with the directory, counts each drift and writes one
// identity_drift audit event per drift (the status page shows both). It is
// samlsp's OnLogin hook (cmd wires it): cheap, and it never refuses.
func (d *DriftDetector) Check(ctx context.Context, p identity.Principal) []Drift {
	drifts := d.Compare(p)
	if len(drifts) == 0 {
		return nil
	}
	rid := web.RequestID(ctx)
	for _, dr := range drifts {
		d.metrics.Drift(dr.Kind)
		d.audit.Info("identity drift",
			zap.String("event", "identity_drift"),
			zap.String("kind", dr.Kind),
			zap.String("user", p.User),
			zap.String("organization", store.OrgOrDefault(p.Org)),
			zap.String("detail", dr.Detail),
			zap.String("request_id", rid))
	}
	return drifts
}

// driftProfile is what drift detection reads of one user.
type driftProfile struct {
	email  string
	groups []string
}

// profile looks key up as Standing does and returns the user's email and
// group names as well.
func (d *Directory) profile(key string) (driftProfile, identity.State) {
	k := identity.MatchKey(key)
	d.mu.RLock()
	defer d.mu.RUnlock()
	u, state, _ := d.find(k)
	if u == nil {
		return driftProfile{}, state
	}
	return driftProfile{email: u.email, groups: u.groupNames}, state
}

// setDiff returns the members of a not in b, sorted, without duplicates.
func setDiff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

// listOf renders names for a detail, at most driftListMax of them.
func listOf(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	if len(names) > driftListMax {
		return fmt.Sprintf("%s and %d more", strings.Join(names[:driftListMax], ", "), len(names)-driftListMax)
	}
	return strings.Join(names, ", ")
}
