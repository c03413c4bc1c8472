package scimsync

import (
	"slices"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// How a filter becomes a store query (RFC 7644 §3.4.2.2 filters, answered
// from the store's indexes): every filter an IdP sends to look a resource
// up — Okta's and Entra's userName, externalId, id, emails and
// displayName equalities, members[value eq …], and and/or of them — is
// turned into indexed equalities, so that it reads a few rows, not the
// whole directory.
//
// The plan is exact when the store's equalities select exactly what the
// filter does: the store then counts and pages the answer itself. Else it
// is a superset, the candidates, to which the handler applies the whole
// filter; a filter with no plan reads every resource.

// Plan limits: an and of ors multiplies out, and a filter may be long.
const (
	maxPlanAlternatives = 16
	maxPlanConds        = 8
)

// candidateAttrs are the store attributes whose equality only narrows:
// the email index holds every spelling of a user's emails, the filter
// looks at one (lookupKey), so the filter decides.
var candidateAttrs = map[string]bool{"emails": true}

// planQuery is the store query of f under an endpoint's index (filter
// attribute → store attribute): ok false when f has no plan (read
// everything); exact when the query selects exactly f's matches.
func planQuery(f Filter, index map[string]string) (q store.Query, exact, ok bool) {
	if f == nil {
		return store.Query{}, true, true
	}
	pf, _ := f.(*parsedFilter)
	if pf == nil {
		return store.Query{}, false, false
	}
	alts, exact, ok := planNode(pf.root, "", index)
	if !ok {
		return store.Query{}, false, false
	}
	if len(alts) == 1 && len(alts[0]) == 1 {
		return store.Query{Attr: alts[0][0].Attr, Value: alts[0][0].Value}, exact, true
	}
	return store.Query{Any: alts}, exact, true
}

// planNode plans one node: an or of ands of store equalities. parent is
// the multi-valued attribute (its key) inside whose brackets n sits.
func planNode(n node, parent string, index map[string]string) ([][]store.Cond, bool, bool) {
	switch n := n.(type) {
	case *cmpNode:
		if n.op != opEq || n.lit.kind != litString || n.lit.s == "" {
			// The store keeps an absent externalId as "", which `eq ""`
			// must not match: an empty value has no index.
			return nil, false, false
		}
		key := n.path.key()
		if parent != "" {
			if n.path.urn != "" || n.path.sub != "" {
				return nil, false, false
			}
			key = parent + "." + n.path.lname
		}
		attr, ok := index[key]
		if !ok {
			return nil, false, false
		}
		return [][]store.Cond{{{Attr: attr, Value: n.lit.s}}}, !candidateAttrs[attr], true
	case *valueNode:
		return planValue(n, index)
	case *andNode:
		l, lexact, lok := planNode(n.l, parent, index)
		r, rexact, rok := planNode(n.r, parent, index)
		switch {
		case lok && rok:
			if both, ok := planAnd(l, r); ok {
				return both, lexact && rexact, true
			}
			return l, false, true // the left side's candidates
		case lok:
			return l, false, true
		case rok:
			return r, false, true
		}
	case *orNode:
		l, lexact, lok := planNode(n.l, parent, index)
		r, rexact, rok := planNode(n.r, parent, index)
		if lok && rok && len(l)+len(r) <= maxPlanAlternatives {
			return append(slices.Clip(l), r...), lexact && rexact, true
		}
	}
	return nil, false, false // not, pr, and the rest: no index
}

// planValue plans attr[inner] and attr[inner].then. The inner filter and
// the comparison after the brackets hold for one element; the store's
// equalities may each hold for another, so only a lone equality in the
// brackets is exact (members[value eq "…"]).
func planValue(n *valueNode, index map[string]string) ([][]store.Cond, bool, bool) {
	if n.attr.urn != "" || n.attr.name == "" || n.attr.sub != "" {
		return nil, false, false
	}
	parent := n.attr.lname
	inner, exact, ok := planNode(n.inner, parent, index)
	if n.then == nil {
		_, single := n.inner.(*cmpNode)
		return inner, exact && single, ok
	}
	then, _, thenOK := planNode(n.then, parent, index)
	switch {
	case ok && thenOK:
		if both, ok := planAnd(inner, then); ok {
			return both, false, true
		}
		return then, false, true
	case thenOK:
		return then, false, true
	}
	return inner, false, ok
}

// planAnd multiplies out (a1 or a2) and (b1 or b2), false when the result
// would pass the plan limits.
func planAnd(l, r [][]store.Cond) ([][]store.Cond, bool) {
	if len(l)*len(r) > maxPlanAlternatives {
		return nil, false
	}
	out := make([][]store.Cond, 0, len(l)*len(r))
	for _, a := range l {
		for _, b := range r {
			if len(a)+len(b) > maxPlanConds {
				return nil, false
			}
			out = append(out, append(slices.Clip(a), b...))
		}
	}
	return out, true
}
