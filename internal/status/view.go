package status

import (
	"context"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// page is what the template renders. Every string is plain text; the
// template escapes it.
type page struct {
	Title   string
	Message string // set: a refusal, nothing else is shown
	Replica string
	Now     string
	Style   template.CSS

	Problems []string // sources that could not be read, summarised

	SCIM     bool // the directory sections apply
	Sync     syncView
	Drift    []kv
	Dir      dirView
	Query    string
	Ended    string // "Sign out everywhere" ended this many sessions ("" if it did not run)
	Searched bool
	Results  []userView
	More     bool // more matches than shown
	Unknown  *loginOnly
	// Filter is the organization the page is filtered to ("" for none),
	// which the search and sign-out forms carry; Scope is the organization
	// they act on: Filter, or the default one.
	Filter, Scope string
	OrgScoped     bool // say which organization the search covers
	// Of names the organization after the labels of the rows that follow
	// the filter (" (organization acme)"); "" on an unfiltered page.
	Of          string
	NoDirectory bool // Scope has no SCIM directory to search here

	Events eventsView
	Audit  []auditView
	Orgs   orgsView

	Health []checkView
	Proxy  []kv
}

type kv struct {
	ID, Key, Value string
}

type syncView struct {
	Last          []lastView
	EventsPerHour string
	SCIMRequests  string
	SCIMErrorRate string
	Token         string
	TokenWhen     string
}

type lastView struct {
	Kind, When, At, Seq, Actor string
}

type dirView struct {
	Active, Inactive, Groups, AppliedSeq, LastEvent string
}

type userView struct {
	ID, UserName, Email, State, StateClass string
	Groups                                 []string
	GroupsMore                             bool
	LastModified, LastLogin                string
	LiveTotal                              int
	Live                                   []sessionView
	// MatchKey and CSRF fill the "Sign out everywhere" form; CSRF is ""
	// when the page does not offer it.
	MatchKey, CSRF string
}

type sessionView struct {
	ID, Issued, Expires string
	IdPInitiated        bool
}

// loginOnly is a searched name the directory does not know but the ledger
// does: someone the IdP signs in that SCIM never provisioned.
type loginOnly struct {
	MatchKey, LastLogin string
	LiveTotal           int
}

type auditView struct {
	When, At, Event, Org, User, Reason, Detail, RequestID string
}

type checkView struct {
	Name, State, StateClass, Reason string
}

// build reads every source once and fills the page.
func (h *Handler) build(ctx context.Context, query, org string) *page {
	now := h.o.Now()
	p := &page{Title: "Portcullis status", Replica: h.o.Replica, Now: stamp(now),
		SCIM: h.o.Directory != nil || h.o.DirectoryOf != nil, Filter: org, Scope: scopeOf(org), OrgScoped: org != ""}
	if p.OrgScoped {
		p.Of = " (organization " + p.Scope + ")"
	}
	s, err := gather(h.o.Gatherer)
	if err != nil {
		h.problem(p, "metrics", err)
	}
	h.health(p, s, now)
	if p.SCIM {
		h.sync(ctx, p, s, now)
		h.search(ctx, p, query, now)
	}
	p.Dir = h.directory(p, s, now)
	for _, k := range metrics.DriftKinds {
		p.Drift = append(p.Drift, kv{ID: "drift-" + k, Key: k, Value: count(s.value(metrics.NameIdentityDrift, "kind", k))})
	}
	h.organizations(p, org, now)
	h.events(ctx, p, now)
	if h.o.Audit != nil {
		for _, e := range h.o.Audit.Recent() {
			if len(p.Audit) == maxAudit {
				break
			}
			if !auditOrg(org, e.Org) {
				continue
			}
			p.Audit = append(p.Audit, auditView{When: age(now, e.Time), At: stamp(e.Time), Event: e.Event, Org: e.Org,
				User: e.User, Reason: e.Reason, Detail: e.Detail, RequestID: e.RequestID})
		}
	}
	return p
}

// problem logs err and notes on the page that source could not be read;
// the page never shows error text, which may name hosts or internals.
func (h *Handler) problem(p *page, source string, err error) {
	h.o.Logger.Warn("status page source failed", zap.String("source", source), zap.Error(err))
	p.Problems = append(p.Problems, source+": could not be read (the log has the cause)")
}

// health fills the proxy's own health: /readyz checks and IdP and replica figures.
func (h *Handler) health(p *page, s samples, now time.Time) {
	for _, c := range h.o.Checks {
		state, ok, reason := c.Check()
		if ok {
			reason = ""
		}
		p.Health = append(p.Health, checkView{Name: c.Name, State: state,
			StateClass: strings.ReplaceAll(state, " ", "-"), Reason: reason})
	}
	age, ok := s.value(metrics.NameMetadataAge, "organization", p.Scope)
	fails, fok := s.value(metrics.NameMetadataFailures, "organization", p.Scope)
	lag, n, lok := s.mean(metrics.NamePropagationLag)
	lagText := absent
	if lok {
		lagText = "no events followed yet"
		if n > 0 {
			lagText = roughDuration(time.Duration(lag*float64(time.Second))) + " mean over " + strconv.FormatUint(n, 10) + " events"
		}
	}
	confirmed, cok := s.value(metrics.NameDirectoryConfirmed)
	certs := h.idpCerts(s, now)
	of := p.Of // the rows are the default organization's unless the page is filtered
	p.Proxy = []kv{
		{ID: "idp-metadata-age", Key: "IdP metadata age" + of, Value: secondsAge(age, ok)},
		{ID: "idp-metadata-failures", Key: "IdP metadata load failures" + of, Value: count(fails, fok)},
		{ID: "idp-metadata-expired", Key: "IdP metadata refused as expired", Value: count(s.value(metrics.NameMetadataExpired))},
		{ID: "idp-signing-certs", Key: "IdP signing certificates (SHA-256)", Value: certs.current},
		{ID: "idp-cert-changes", Key: "IdP signing certificate changes", Value: certs.changes},
		{ID: "replica-lag", Key: "Replica lag (event written → applied here)", Value: lagText},
		{ID: "directory-confirmed", Key: "Directory last confirmed against the store", Value: unixAge(now, confirmed, cok)},
	}
	for _, o := range []string{"allowed", "login_required", "denied_inactive", "denied_unprovisioned", "denied_group", "unavailable"} {
		p.Proxy = append(p.Proxy, kv{ID: "requests-" + o, Key: "Requests " + strings.ReplaceAll(o, "_", " "),
			Value: count(s.value(metrics.NameRequests, "outcome", o))})
	}
}

// certRows are the page's text for the IdP signing certificates.
type certRows struct{ current, changes string }

// idpCerts renders the signing certificates in use, and how often and
// when they last changed, from what.
func (h *Handler) idpCerts(s samples, now time.Time) certRows {
	r := certRows{current: absent, changes: count(s.value(metrics.NameSigningCertChanges))}
	if h.o.IdPCerts == nil {
		return r
	}
	c := h.o.IdPCerts()
	if len(c.Current) > 0 {
		r.current = strings.Join(c.Current, ", ")
	}
	if !c.ChangedAt.IsZero() {
		r.changes += "; last " + age(now, c.ChangedAt) + " (" + stamp(c.ChangedAt) + "), replacing " + strings.Join(c.Previous, ", ")
	}
	return r
}

// sync fills sync health: the event log summary, SCIM requests, the token.
func (h *Handler) sync(ctx context.Context, p *page, s samples, now time.Time) {
	p.Sync.EventsPerHour = absent
	if h.o.Events != nil {
		// Unfiltered (p.Filter ""), every organization's events, as before
		// organizations; filtered, that organization's only.
		st, err := h.o.Events.EventStats(ctx, p.Filter, now.Add(-time.Hour))
		if err != nil {
			h.problem(p, "event log", err)
		} else {
			p.Sync.EventsPerHour = strconv.Itoa(st.Since)
			for _, e := range st.Last {
				p.Sync.Last = append(p.Sync.Last, lastView{Kind: e.Kind, When: age(now, e.Time), At: stamp(e.Time),
					Seq: strconv.FormatInt(e.Seq, 10), Actor: e.Actor})
			}
		}
	}
	total, tok := s.sum(metrics.NameSCIMRequests, "status", func(string) bool { return true })
	// Errors as the PortcullisSCIMErrorsRising alert counts them: the
	// store failed (5xx) or the IdP's token is wrong (401, 403). A 404 or
	// 409 is the IdP asking about or sending something Portcullis refused.
	bad, _ := s.sum(metrics.NameSCIMRequests, "status", func(v string) bool {
		code, err := strconv.Atoi(v)
		return err == nil && (code >= 500 || code == 401 || code == 403)
	})
	p.Sync.SCIMRequests = count(total, tok)
	p.Sync.SCIMErrorRate = absent
	if tok && total > 0 {
		p.Sync.SCIMErrorRate = strconv.FormatFloat(100*bad/total, 'f', 1, 64) + "% (" + count(bad, true) + " answered 5xx, 401 or 403)"
	}
	p.Sync.Token, p.Sync.TokenWhen = "none since this replica started", absent
	if h.o.LastToken != nil && len(p.Scope) <= maxOrgID {
		if label, at, ok := h.o.LastToken(p.Scope); ok {
			p.Sync.Token, p.Sync.TokenWhen = label, age(now, at)
		}
	}
}

// search looks query up, in the directory and login ledger of the page's
// organization (p.Scope) only, as the start of a userName or email
// (ignoring case), an externalId or a SCIM id (exact), and in the ledger.
func (h *Handler) search(ctx context.Context, p *page, query string, now time.Time) {
	query = strings.TrimSpace(query)
	if len(query) > maxQuery {
		query = query[:maxQuery]
	}
	p.Query = query
	dir := h.directoryOf(p.Scope)
	if dir == nil {
		p.NoDirectory = true
		return
	}
	if query == "" {
		return
	}
	p.Searched = true
	var found []*store.User
	for _, attr := range []string{"nameprefix", "externalid", "id"} {
		us, total, err := dir.ListUsers(ctx, store.Query{Attr: attr, Value: query, Limit: maxResults + 1})
		if err != nil {
			h.problem(p, "directory search", err)
			return
		}
		if total > len(us) {
			p.More = true
		}
		for _, u := range us {
			if !slices.ContainsFunc(found, func(f *store.User) bool { return f.ID == u.ID }) {
				found = append(found, u)
			}
		}
	}
	if len(found) > maxResults {
		found, p.More = found[:maxResults], true
	}
	for _, u := range found {
		p.Results = append(p.Results, h.user(ctx, p, dir, u, now))
	}
	if len(found) == 0 && h.o.Ledger != nil {
		key := identity.MatchKey(query)
		lg, err := h.o.Ledger.LoginsOf(ctx, p.Scope, key, time.Time{}, now)
		if err != nil {
			h.problem(p, "login ledger", err)
		} else if !lg.Last.IsZero() {
			p.Unknown = &loginOnly{MatchKey: key, LastLogin: age(now, lg.Last), LiveTotal: lg.LiveTotal}
		}
	}
}

// user fills one search result, u of dir, the directory of p.Scope.
func (h *Handler) user(ctx context.Context, p *page, dir Directory, u *store.User, now time.Time) userView {
	v := userView{ID: u.ID, UserName: u.UserName, Email: u.Email, State: "active", StateClass: "ok",
		LastModified: age(now, u.LastModified) + " (" + stamp(u.LastModified) + ")", LastLogin: absent}
	if !u.Active {
		v.State, v.StateClass = "deactivated", "bad"
	}
	gs, total, err := dir.ListGroups(ctx, store.Query{Attr: "member", Value: u.ID, Limit: maxGroups}, false)
	if err != nil {
		h.problem(p, "groups of "+u.ID, err)
	}
	for _, g := range gs {
		v.Groups = append(v.Groups, g.DisplayName)
	}
	slices.Sort(v.Groups)
	v.GroupsMore = total > len(gs)
	if h.o.Ledger == nil || h.o.MatchKey == nil {
		return v
	}
	lg, err := h.o.Ledger.LoginsOf(ctx, p.Scope, h.o.MatchKey(u), u.ValidAfter, now)
	if err != nil {
		h.problem(p, "login ledger", err)
		return v
	}
	if !lg.Last.IsZero() {
		v.LastLogin = age(now, lg.Last) + " (" + stamp(lg.Last) + ")"
	}
	v.LiveTotal = lg.LiveTotal
	if h.canSignOut() && lg.LiveTotal > 0 {
		v.MatchKey = h.o.MatchKey(u)
		v.CSRF = h.csrfToken(p.Scope, v.MatchKey)
	}
	if !u.Active {
		v.LiveTotal = 0 // the gate refuses every session of a deactivated user
		return v
	}
	for _, l := range lg.Live {
		v.Live = append(v.Live, sessionView{ID: shortID(l.SessionID), Issued: stamp(l.Issued),
			Expires: stamp(l.Expires), IdPInitiated: l.IdPInitiated})
	}
	return v
}

// shortID shows enough of a session ID to tell sessions apart, not all of it.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}
