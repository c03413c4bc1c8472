package samlsp

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
)

var alice = identity.Principal{
	User:   "alice",
	Email:  "alice@example.com",
	Name:   "Alice Example",
	Groups: []string{"staff", "admins"},
	Org:    identity.DefaultOrg,
}

func TestACS_AcceptsSignedResponse(t *testing.T) {
	t.Parallel()
	tests := map[string]respOpts{
		"assertion signed":                       {},
		"response signed":                        {signResponse: true, unsignedAssert: true},
		"response and assertion signed":          {signResponse: true},
		"no Destination on an unsigned response": {response: func(r *saml.Response) { r.Destination = "" }},
		"audience among several": {assertion: func(a *saml.Assertion) {
			a.Conditions.AudienceRestrictions[0] = saml.AudienceRestriction{
				Audience:            saml.Audience{Value: "https://other.example.com"},
				AdditionalAudiences: []saml.Audience{{Value: testPublic + pathMetadata}},
			}
		}},
		"NotOnOrAfter just inside the skew": {assertion: func(a *saml.Assertion) {
			a.Conditions.NotOnOrAfter = a.IssueInstant.Add(-89 * time.Second)
		}},
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			rec, _ := h.complete("/app/page?x=1", o)
			s := h.expectAccepted(t, rec, "/app/page?x=1")
			if diff := cmp.Diff(alice, s.Principal); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
			ev := h.auditEvents("login_succeeded")
			if len(ev) != 1 {
				t.Fatalf("%d login_succeeded events, want 1", len(ev))
			}
			f := ev[0].ContextMap()
			if f["user"] != "alice" || f["session_id"] != s.ID || f["request_id"] != testReqID {
				t.Errorf("login_succeeded fields: %v", f)
			}
		})
	}
}

func TestACS_RefusesInvalidResponses(t *testing.T) {
	t.Parallel()
	rotated := loadIdP(t, "idp2")
	changeText := func(tag, from, to string) func(*etree.Element) {
		return func(el *etree.Element) {
			for _, e := range el.FindElements("//" + tag) {
				if e.Text() == from {
					e.SetText(to)
					return
				}
			}
			panic("no " + tag + " " + from)
		}
	}
	tests := []struct {
		name   string
		o      respOpts
		status int
		reason string
	}{
		{"attribute changed after signing", respOpts{tamper: changeText("AttributeValue", "alice", "mallory")}, 403, reasonInvalidSignature},
		{"group added after signing", respOpts{tamper: changeText("AttributeValue", "staff", "root")}, 403, reasonInvalidSignature},
		{"NameID changed after signing", respOpts{tamper: changeText("NameID", "alice@example.com", "mallory@example.com")}, 403, reasonInvalidSignature},
		{"signed response changed after signing", respOpts{signResponse: true, unsignedAssert: true, tamper: changeText("AttributeValue", "alice", "mallory")}, 403, reasonInvalidSignature},
		{"signed by a key not in the metadata", respOpts{signer: &rotated}, 403, reasonInvalidSignature},
		{"unsigned", respOpts{unsignedAssert: true}, 403, reasonUnsigned},
		{"wrong audience", respOpts{assertion: func(a *saml.Assertion) {
			a.Conditions.AudienceRestrictions[0].Audience.Value = "https://other.example.com/saml/metadata"
		}}, 403, reasonAudience},
		{"no AudienceRestriction", respOpts{assertion: func(a *saml.Assertion) {
			a.Conditions.AudienceRestrictions = nil
		}}, 403, reasonAudience},
		{"a second AudienceRestriction not naming us", respOpts{assertion: func(a *saml.Assertion) {
			a.Conditions.AudienceRestrictions = append(a.Conditions.AudienceRestrictions,
				saml.AudienceRestriction{Audience: saml.Audience{Value: "https://other.example.com"}})
		}}, 403, reasonAudience},
		{"wrong Destination", respOpts{response: func(r *saml.Response) {
			r.Destination = "https://evil.example.com/saml/acs"
		}}, 403, reasonDestination},
		{"wrong Destination on a signed response", respOpts{signResponse: true, response: func(r *saml.Response) {
			r.Destination = "https://app.example.com/other/acs"
		}}, 403, reasonDestination},
		{"wrong Recipient", respOpts{assertion: func(a *saml.Assertion) {
			a.Subject.SubjectConfirmations[0].SubjectConfirmationData.Recipient = "https://evil.example.com/saml/acs"
		}}, 403, reasonDestination},
		{"Conditions expired beyond our skew, inside crewjam's", respOpts{assertion: func(a *saml.Assertion) {
			a.Conditions.NotOnOrAfter = a.IssueInstant.Add(-91 * time.Second)
		}}, 403, reasonExpired},
		{"Conditions expired beyond crewjam's skew", respOpts{assertion: func(a *saml.Assertion) {
			a.Conditions.NotOnOrAfter = a.IssueInstant.Add(-time.Hour)
		}}, 403, reasonExpired},
		{"bearer confirmation expired beyond our skew", respOpts{assertion: func(a *saml.Assertion) {
			a.Subject.SubjectConfirmations[0].SubjectConfirmationData.NotOnOrAfter = a.IssueInstant.Add(-100 * time.Second)
		}}, 403, reasonExpired},
		{"assertion issued too long ago", respOpts{assertion: func(a *saml.Assertion) {
			a.IssueInstant = a.IssueInstant.Add(-10 * time.Minute)
		}}, 403, reasonExpired},
		{"assertion IssueInstant in the future beyond our skew", respOpts{assertion: func(a *saml.Assertion) {
			a.IssueInstant = a.IssueInstant.Add(120 * time.Second)
		}}, 403, reasonNotYetValid},
		{"response IssueInstant in the future beyond our skew", respOpts{response: func(r *saml.Response) {
			r.IssueInstant = r.IssueInstant.Add(120 * time.Second)
		}}, 403, reasonNotYetValid},
		{"NotBefore in the future beyond our skew", respOpts{assertion: func(a *saml.Assertion) {
			a.Conditions.NotBefore = a.IssueInstant.Add(120 * time.Second)
		}}, 403, reasonNotYetValid},
		{"IdP session already over", respOpts{assertion: func(a *saml.Assertion) {
			past := a.IssueInstant.Add(-time.Second)
			a.AuthnStatements[0].SessionNotOnOrAfter = &past
		}}, 403, reasonExpired},
		{"no bearer SubjectConfirmation", respOpts{assertion: func(a *saml.Assertion) {
			a.Subject.SubjectConfirmations[0].Method = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
		}}, 403, reasonMissingElement},
		{"assertion answers another request", respOpts{assertion: func(a *saml.Assertion) {
			a.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = "id-another-request"
		}}, 403, reasonInResponseTo},
		{"response answers another request", respOpts{response: func(r *saml.Response) {
			r.InResponseTo = "id-another-request"
		}}, 403, reasonInResponseTo},
		{"issuer is not the IdP", respOpts{assertion: func(a *saml.Assertion) {
			a.Issuer.Value = "https://evil.example.com/metadata"
		}}, 403, reasonIssuer},
		{"IdP status not success", respOpts{signResponse: true, response: func(r *saml.Response) {
			r.Status.StatusCode.Value = "urn:oasis:names:tc:SAML:2.0:status:Responder"
		}}, 403, reasonIDPStatus},
		{"no AuthnStatement", respOpts{assertion: func(a *saml.Assertion) {
			a.AuthnStatements = nil
		}}, 403, reasonMissingElement},
		{"no Subject (signed)", respOpts{assertion: func(a *saml.Assertion) { a.Subject = nil }}, 403, reasonMissingElement},
		{"no Conditions (signed)", respOpts{assertion: func(a *saml.Assertion) { a.Conditions = nil }}, 403, reasonMissingElement},
		{"no Subject and no Conditions (signed)", respOpts{assertion: func(a *saml.Assertion) {
			a.Subject, a.Conditions = nil, nil
		}}, 403, reasonMissingElement},
		{"no user attribute and an empty NameID", respOpts{assertion: func(a *saml.Assertion) {
			a.Subject.NameID.Value = ""
			a.AttributeStatements[0].Attributes = a.AttributeStatements[0].Attributes[1:]
		}}, 403, reasonNoUser},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			rec, l := h.complete("/app", tc.o)
			h.expectRefused(t, rec, tc.status, tc.reason)
			if !clearedCookie(rec, l.cookie.Name) {
				t.Errorf("tracking cookie %s not cleared on failure", l.cookie.Name)
			}
		})
	}
}

// An IdP error response carries no assertion and is often unsigned.
func TestACS_IdPErrorResponse(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	l := h.startLogin("/")
	r := h.response(l.requestID)
	r.Status.StatusCode.Value = "urn:oasis:names:tc:SAML:2.0:status:Responder"
	rec := h.postACS(encodeElement(t, r.Element()), l.relay, l.cookie)
	h.expectRefused(t, rec, http.StatusForbidden, reasonIDPStatus)
}

func TestACS_SessionExpiryCappedBySessionNotOnOrAfter(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		sessionEnd time.Duration // after now; 0 = none
		want       time.Duration
	}{
		"no SessionNotOnOrAfter":         {0, 8 * time.Hour},
		"IdP session ends first":         {time.Hour, time.Hour},
		"our lifetime ends first":        {20 * time.Hour, 8 * time.Hour},
		"IdP session ends in one minute": {time.Minute, time.Minute},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			rec, _ := h.complete("/", respOpts{assertion: func(a *saml.Assertion) {
				if tc.sessionEnd != 0 {
					end := a.IssueInstant.Add(tc.sessionEnd)
					a.AuthnStatements[0].SessionNotOnOrAfter = &end
				}
			}})
			s := h.expectAccepted(t, rec, "/")
			if want := t0.Add(tc.want); !s.Expires.Equal(want) {
				t.Errorf("Expires %s, want %s", s.Expires, want)
			}
			if !s.IssuedAt.Equal(t0) {
				t.Errorf("IssuedAt %s, want %s", s.IssuedAt, t0)
			}
		})
	}
}

func TestACS_AttributeMapping(t *testing.T) {
	t.Parallel()
	nilValue := saml.Attribute{Name: "groups", Values: []saml.AttributeValue{{Nil: true}, {Value: "ops"}}}
	tests := []struct {
		name  string
		attrs config.Attributes
		set   []saml.Attribute // nil = the default attributes
		want  identity.Principal
	}{
		{
			name:  "all mapped by Name",
			attrs: config.Attributes{User: "uid", Email: "mail", Name: "displayName", Groups: "groups"},
			want:  alice,
		},
		{
			name:  "user unset: the NameID",
			attrs: config.Attributes{Email: "mail"},
			want:  identity.Principal{User: "alice@example.com", Email: "alice@example.com"},
		},
		{
			name:  "user attribute missing: the NameID",
			attrs: config.Attributes{User: "employeeNumber", Groups: "groups"},
			want:  identity.Principal{User: "alice@example.com", Groups: []string{"staff", "admins"}},
		},
		{
			name:  "matched by FriendlyName",
			attrs: config.Attributes{User: "uid", Email: "mail", Groups: "memberOf"},
			set: []saml.Attribute{
				attribute("urn:oid:0.9.2342.19200300.100.1.1", "uid", "alice"),
				attribute("urn:oid:0.9.2342.19200300.100.1.3", "mail", "alice@example.com"),
				attribute("urn:oid:1.2.840.113556.1.2.102", "memberOf", "staff"),
			},
			want: identity.Principal{User: "alice", Email: "alice@example.com", Groups: []string{"staff"}},
		},
		{
			name:  "Name wins over another attribute's FriendlyName",
			attrs: config.Attributes{User: "uid"},
			set: []saml.Attribute{
				attribute("urn:example:spoof", "uid", "mallory"),
				attribute("uid", "", "alice"),
			},
			want: identity.Principal{User: "alice"},
		},
		{
			name:  "groups from every value of every matching attribute, deduplicated",
			attrs: config.Attributes{Groups: "groups", Email: "mail"},
			set: []saml.Attribute{
				attribute("groups", "", "staff", "admins"),
				attribute("mail", "", "first@example.com", "second@example.com"),
				attribute("groups", "", "admins", "ops", " "),
			},
			want: identity.Principal{User: "alice@example.com", Email: "first@example.com", Groups: []string{"staff", "admins", "ops"}},
		},
		{
			name:  "nil values skipped",
			attrs: config.Attributes{Groups: "groups"},
			set:   []saml.Attribute{nilValue},
			want:  identity.Principal{User: "alice@example.com", Groups: []string{"ops"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(c *config.Config) { c.SAML.Attributes = tc.attrs })
			rec, _ := h.complete("/", respOpts{assertion: func(a *saml.Assertion) {
				if tc.set != nil {
					a.AttributeStatements[0].Attributes = tc.set
				}
			}})
			s := h.expectAccepted(t, rec, "/")
			tc.want.Org = identity.DefaultOrg // the top-level IdP's sessions
			if diff := cmp.Diff(tc.want, s.Principal); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
		})
	}
}

func TestACS_ReplayedAssertionRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	l := h.startLogin("/app")
	resp := h.makeResponse(respOpts{requestID: l.requestID})
	h.expectAccepted(t, h.postACS(resp, l.relay, l.cookie), "/app")

	// The same response again, with the tracking cookie a careless or
	// hostile browser kept: the assertion ID is known.
	h.clock.Advance(10 * time.Second)
	h.expectRefused(t, h.postACS(resp, l.relay, l.cookie), http.StatusForbidden, reasonReplay)

	// A second, different assertion for the same AuthnRequest.
	other := h.makeResponse(respOpts{requestID: l.requestID})
	h.expectRefused(t, h.postACS(other, l.relay, l.cookie), http.StatusForbidden, reasonRequestReused)
}

type failingReplay struct{}

func (failingReplay) Seen(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("database unreachable")
}

func TestACS_ReplayCacheErrorRefuses(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, harnessOpts{options: func(o *Options) { o.Replay = failingReplay{} }})
	rec, _ := h.complete("/", respOpts{})
	h.expectRefused(t, rec, http.StatusServiceUnavailable, reasonReplayCache)
}

func TestACS_Tracking(t *testing.T) {
	t.Parallel()
	t.Run("no tracking cookie", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		l := h.startLogin("/app")
		rec := h.postACS(h.makeResponse(respOpts{requestID: l.requestID}), l.relay)
		h.expectRefused(t, rec, http.StatusForbidden, reasonNoTracking)
	})
	t.Run("no RelayState", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		l := h.startLogin("/app")
		rec := h.postACS(h.makeResponse(respOpts{requestID: l.requestID}), "", l.cookie)
		h.expectRefused(t, rec, http.StatusForbidden, reasonNoTracking)
	})
	t.Run("tracking cookie from a different request", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		a := h.startLogin("/a")
		b := h.startLogin("/b")
		// The response answers b, but comes back with a's RelayState and cookie.
		rec := h.postACS(h.makeResponse(respOpts{requestID: b.requestID}), a.relay, a.cookie)
		h.expectRefused(t, rec, http.StatusForbidden, reasonInResponseTo)
	})
	t.Run("tracking cookie value moved to another name", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		a := h.startLogin("/a")
		b := h.startLogin("/b")
		moved := &http.Cookie{Name: b.cookie.Name, Value: a.cookie.Value}
		rec := h.postACS(h.makeResponse(respOpts{requestID: a.requestID}), b.relay, moved)
		h.expectRefused(t, rec, http.StatusForbidden, reasonTrackingInvalid)
	})
	t.Run("tracking cookie older than the login window", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		l := h.startLogin("/app")
		h.clock.Advance(10*time.Minute + time.Second)
		rec := h.postACS(h.makeResponse(respOpts{requestID: l.requestID}), l.relay, l.cookie)
		h.expectRefused(t, rec, http.StatusForbidden, reasonTrackingExpired)
	})
	t.Run("a slow MFA inside the login window", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		l := h.startLogin("/app")
		h.clock.Advance(9 * time.Minute)
		rec := h.postACS(h.makeResponse(respOpts{requestID: l.requestID}), l.relay, l.cookie)
		h.expectAccepted(t, rec, "/app")
		if !clearedCookie(rec, l.cookie.Name) {
			t.Errorf("tracking cookie %s not cleared on success", l.cookie.Name)
		}
	})
	t.Run("unsafe return path stored as /", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		rec, l := h.complete("//evil.example.com/phish", respOpts{})
		h.expectAccepted(t, rec, "/")
		if strings.Contains(l.location.String(), "evil") {
			t.Errorf("the return path reached the IdP: %s", l.location)
		}
	})
}

func TestACS_Unsolicited(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		allow    bool
		relay    string
		o        respOpts
		location string // "" = refused
		reason   string
	}{
		{name: "refused when not allowed", relay: "/app", reason: reasonUnsolicited},
		{name: "accepted, open-redirect RelayState becomes /", allow: true, relay: "//evil.example.com", location: "/"},
		{name: "accepted, backslash RelayState becomes /", allow: true, relay: `/\evil.example.com`, location: "/"},
		{name: "accepted, absolute URL RelayState becomes /", allow: true, relay: "https://evil.example.com/", location: "/"},
		{name: "accepted, safe RelayState kept", allow: true, relay: "/dashboard?tab=2", location: "/dashboard?tab=2"},
		{name: "accepted, no RelayState", allow: true, location: "/"},
		{name: "assertion for some request passed off as unsolicited", allow: true, relay: "/app",
			o: respOpts{assertion: func(a *saml.Assertion) {
				a.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = "id-stolen"
			}}, reason: reasonInResponseTo},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(c *config.Config) { c.SAML.AllowIDPInitiated = tc.allow })
			rec := h.postACS(h.makeResponse(tc.o), tc.relay)
			if tc.location == "" {
				h.expectRefused(t, rec, http.StatusForbidden, tc.reason)
				return
			}
			s := h.expectAccepted(t, rec, tc.location)
			if s.Principal.User != "alice" {
				t.Errorf("user %q", s.Principal.User)
			}
			if f := h.auditEvents("login_succeeded")[0].ContextMap(); f["idp_initiated"] != true {
				t.Errorf("idp_initiated not recorded: %v", f)
			}
		})
	}
}

func TestACS_RefusesHostileInput(t *testing.T) {
	t.Parallel()
	h0 := newHarness(t, nil)
	valid := string(elementBytes(t, h0.buildResponse(respOpts{requestID: "id-x"})))
	tests := []struct {
		name   string
		doc    string // decoded SAMLResponse; base64-encoded unless raw
		raw    bool
		status int
		reason string
	}{
		{"XXE entity", `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&x;</samlp:Response>`, false, 400, reasonDoctype},
		{"billion laughs", `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&lol2;</samlp:Response>`, false, 400, reasonDoctype},
		{"lowercase doctype", `<!doctype r><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>`, false, 400, reasonDoctype},
		{"DOCTYPE before a validly signed response", `<!DOCTYPE samlp:Response>` + valid, false, 400, reasonDoctype},
		{"ENTITY declaration alone", `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><!ENTITY x "y"></samlp:Response>`, false, 400, reasonDoctype},
		{"UTF-16", "\xff\xfe<\x00s\x00/\x00>\x00", false, 400, reasonMalformed},
		{"invalid UTF-8", "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">\xc3\x28</samlp:Response>", false, 400, reasonMalformed},
		{"declared non-UTF-8 encoding", `<?xml version="1.0" encoding="ISO-8859-1"?><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>`, false, 400, reasonMalformed},
		{"not XML", "hello", false, 400, reasonMalformed},
		{"not base64", "%%%not base64%%%", true, 400, reasonMalformed},
		{"an Assertion as the root", `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"/>`, false, 400, reasonMalformed},
		{"two roots", valid + valid, false, 400, reasonMalformed},
		{"deep nesting", `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">` + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + `</samlp:Response>`, false, 400, reasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			l := h.startLogin("/")
			v := tc.doc
			if !tc.raw {
				v = b64(tc.doc)
			}
			rec := h.postACS(v, l.relay, l.cookie)
			h.expectRefused(t, rec, tc.status, tc.reason)
		})
	}
}

func TestACS_FormShape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		form   func(resp, relay string) url.Values
		status int
		reason string
	}{
		{"two SAMLResponse fields", func(resp, relay string) url.Values {
			return url.Values{"SAMLResponse": {resp, resp}, "RelayState": {relay}}
		}, 400, reasonMalformed},
		{"two RelayState fields", func(resp, relay string) url.Values {
			return url.Values{"SAMLResponse": {resp}, "RelayState": {relay, "/x"}}
		}, 400, reasonMalformed},
		{"no SAMLResponse", func(_, relay string) url.Values {
			return url.Values{"RelayState": {relay}}
		}, 400, reasonMalformed},
		{"artifact binding", func(_, relay string) url.Values {
			return url.Values{"SAMLart": {"AAQAAA"}, "RelayState": {relay}}
		}, 400, reasonBinding},
		{"SimpleSign binding", func(resp, relay string) url.Values {
			return url.Values{"SAMLResponse": {resp}, "RelayState": {relay}, "SigAlg": {dsigRSASHA256}, "Signature": {"AAAA"}}
		}, 400, reasonBinding},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			l := h.startLogin("/")
			resp := h.makeResponse(respOpts{requestID: l.requestID})
			rec := h.postForm(tc.form(resp, l.relay), l.cookie)
			h.expectRefused(t, rec, tc.status, tc.reason)
			if !clearedCookie(rec, l.cookie.Name) {
				t.Errorf("tracking cookie not cleared")
			}
		})
	}
}

func TestACS_OversizedBody(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.Server.ACSBodyLimit = 8 << 10 })
	l := h.startLogin("/")
	rec := h.postACS(strings.Repeat("A", 8<<10), l.relay, l.cookie)
	h.expectRefused(t, rec, http.StatusRequestEntityTooLarge, reasonTooLarge)

	// Just under the limit, a real response still works.
	rec, _ = h.complete("/", respOpts{})
	h.expectAccepted(t, rec, "/")
}

// A panic inside the parser becomes an ordinary failure. crewjam v0.6.3
// refuses an assertion without Subject or Conditions cleanly (see the
// "no Subject" cases above), so the panic is injected here.
func TestACS_ParserPanicContained(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.sp.parse = func(*saml.ServiceProvider, []byte, []string) (*saml.Assertion, error) {
		var a *saml.Assertion
		_ = a.Subject.NameID // nil pointer dereference, as the old crewjam did
		return a, nil
	}
	rec, _ := h.complete("/", respOpts{})
	h.expectRefused(t, rec, http.StatusForbidden, reasonParserPanic)
	if n := h.logs.FilterMessage("saml parser panic").Len(); n != 1 {
		t.Errorf("%d parser panic log lines, want 1", n)
	}
}

func TestACS_NotReady(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, harnessOpts{noLoad: true})
	rec := h.postACS(b64("x"), "")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), titleNotReady) {
		t.Errorf("status %d, body %s", rec.Code, rec.Body)
	}
	if h.lastReason() != reasonNotReady {
		t.Errorf("reason %q", h.lastReason())
	}
}

func TestACS_MethodNotAllowed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodHead} {
		req := newRequest(m, pathACS)
		rec := serve(h, req)
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" {
			t.Errorf("%s %s: status %d, Allow %q", m, pathACS, rec.Code, rec.Header().Get("Allow"))
		}
	}
}

func TestACS_OnLoginSeesAcceptedLoginsOnly(t *testing.T) {
	t.Parallel()
	var got []Login
	h := newHarnessWith(t, harnessOpts{options: func(o *Options) {
		o.OnLogin = func(_ context.Context, l Login) { got = append(got, l) }
	}})
	rec, _ := h.complete("/app", respOpts{})
	s := h.expectAccepted(t, rec, "/app")
	if len(got) != 1 {
		t.Fatalf("OnLogin called %d times after one login, want 1", len(got))
	}
	l := got[0]
	if l.SessionID != s.ID || !l.Expires.Equal(s.Expires) || !l.Issued.Equal(s.IssuedAt) || l.IdPInitiated {
		t.Errorf("OnLogin got %+v, session %+v", l, s)
	}
	if diff := cmp.Diff(alice, l.Principal); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}
	rotated := loadIdP(t, "idp2")
	rec, _ = h.complete("/app", respOpts{signer: &rotated})
	if rec.Code != http.StatusForbidden {
		t.Fatalf("badly signed response: status %d, want 403", rec.Code)
	}
	if len(got) != 1 {
		t.Errorf("OnLogin called for a refused login")
	}
}
