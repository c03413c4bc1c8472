package samlsp

import (
	"slices"
	"time"
)

// OrgState is one organization as an operator sees it: the status page's
// Organizations section and the per-organization metrics.
type OrgState struct {
	ID      string // identity.DefaultOrg for the top-level IdP
	Name    string
	Domains []string // nil for the default organization: every domain no other claims
	// MetadataLoadedAt is when the IdP metadata in use was loaded; zero
	// while none is.
	MetadataLoadedAt time.Time
	// Degraded is why sign-in to the organization does not work as it
	// should ("" when it does): no metadata loaded, or metadata past its
	// validUntil.
	Degraded string
}

// OrganizationStates lists every organization served, default first, with
// its IdP metadata state.
func (sp *SP) OrganizationStates() []OrgState {
	set := sp.conns.Load()
	ids := sp.Organizations()
	out := make([]OrgState, 0, len(ids))
	for _, id := range ids {
		c := set.byID[id]
		if c == nil { // removed between the two reads
			continue
		}
		st := OrgState{ID: id, Name: c.name, Domains: slices.Clone(c.domains), MetadataLoadedAt: c.loadedAt()}
		if c.ready() != nil {
			st.Degraded = "no idp metadata loaded"
		} else {
			st.Degraded = c.degraded()
		}
		out = append(out, st)
	}
	return out
}

// EachMetadataLoadedAt calls fn with every organization served and when
// its IdP metadata in use was loaded (zero while none is), in no order and
// without allocating: a metrics scrape reads it.
func (sp *SP) EachMetadataLoadedAt(fn func(org string, loadedAt time.Time)) {
	for id, c := range sp.conns.Load().byID {
		fn(id, c.loadedAt())
	}
}
