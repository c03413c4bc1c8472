package status

import (
	"strings"
	"time"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

// Organization is one organization served, as the page lists it (cmd maps
// samlsp.SP.OrganizationStates to it).
type Organization struct {
	ID, Name string
	Domains  []string // nil for the default organization
	// MetadataLoadedAt is when the IdP metadata in use was loaded; zero
	// while none is.
	MetadataLoadedAt time.Time
	// Degraded is why sign-in does not work as it should; "" when it does.
	Degraded string
}

// maxOrgs bounds the organizations listed; the filter finds the others.
const maxOrgs = 100

// orgView is one row of the Organizations section.
type orgView struct {
	ID, Name, Domains, Metadata, State, StateClass string
}

// orgsView is the Organizations section and the audit list's filter.
type orgsView struct {
	Shown   bool // more than the default organization is served
	Rows    []orgView
	More    int    // organizations not listed
	Filter  string // the organization the page is filtered to; "" for all
	Unknown bool   // Filter names no organization served
}

// organizations fills the Organizations section, filtered to filter when
// it is set.
func (h *Handler) organizations(p *page, filter string, now time.Time) {
	if h.o.Organizations == nil {
		return
	}
	orgs := h.o.Organizations()
	v := orgsView{Shown: len(orgs) > 1 || (len(orgs) == 1 && orgs[0].ID != "default"), Filter: filter}
	if !v.Shown {
		return
	}
	v.Unknown = filter != ""
	for _, o := range orgs {
		if filter != "" && o.ID != filter {
			continue
		}
		v.Unknown = false
		if len(v.Rows) == maxOrgs {
			v.More++
			continue
		}
		r := orgView{ID: o.ID, Name: o.Name, Domains: strings.Join(o.Domains, ", "), State: "ok", StateClass: "ok"}
		if o.Domains == nil {
			r.Domains = "every domain no other organization claims"
		}
		r.Metadata = "loaded " + age(now, o.MetadataLoadedAt)
		if o.MetadataLoadedAt.IsZero() {
			r.Metadata = "never loaded"
		}
		if o.Degraded != "" {
			r.State, r.StateClass = "degraded: "+o.Degraded, "degraded"
		}
		v.Rows = append(v.Rows, r)
	}
	p.Orgs = v
}

// auditOrg reports whether an audit entry of organization org is shown
// under filter: every entry without a filter; "" is the default
// organization's.
func auditOrg(filter, org string) bool {
	if filter == "" {
		return true
	}
	if org == "" {
		org = "default"
	}
	return org == filter
}

// maxOrgID bounds an organization id the page takes from a request
// (config's ids are at most 63 characters).
const maxOrgID = 64

// scopeOf is the organization that the user search, "Sign out everywhere"
// and the IdP metadata rows are about on a page filtered to filter: that
// organization, or the default one when the page is not filtered.
func scopeOf(filter string) string {
	if filter == "" {
		return identity.DefaultOrg
	}
	return filter
}

// directoryOf is organization org's directory, nil when it has none here:
// an organization not served, one without SCIM, or a default organization
// that the config does not have.
func (h *Handler) directoryOf(org string) Directory {
	switch {
	case org == identity.DefaultOrg:
		return h.o.Directory
	case h.o.DirectoryOf == nil || org == "" || len(org) > maxOrgID:
		return nil
	}
	return h.o.DirectoryOf(org)
}
