package samlsp

import (
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/portcullis-sso/portcullis/config"
)

// saml.clockSkew governs every time check, whatever crewjam's defaults
// are: with 180 s, an IdP whose clock is 150 s behind works, and each bound
// holds to the second.
func TestACS_ClockSkewGovernsEveryTimeCheck(t *testing.T) {
	t.Parallel()
	const skew = 180 * time.Second
	sec := time.Second
	shiftAll := func(d time.Duration) respOpts {
		return respOpts{
			assertion: func(a *saml.Assertion) {
				a.IssueInstant = a.IssueInstant.Add(d)
				a.Conditions.NotBefore = a.Conditions.NotBefore.Add(d)
				a.Conditions.NotOnOrAfter = a.Conditions.NotOnOrAfter.Add(d)
				a.AuthnStatements[0].AuthnInstant = a.AuthnStatements[0].AuthnInstant.Add(d)
				scd := a.Subject.SubjectConfirmations[0].SubjectConfirmationData
				scd.NotOnOrAfter = scd.NotOnOrAfter.Add(d)
			},
			response: func(r *saml.Response) { r.IssueInstant = r.IssueInstant.Add(d) },
		}
	}
	assertionIssued := func(d time.Duration) respOpts {
		return respOpts{assertion: func(a *saml.Assertion) { a.IssueInstant = a.IssueInstant.Add(d) }}
	}
	responseIssued := func(d time.Duration) respOpts {
		return respOpts{response: func(r *saml.Response) { r.IssueInstant = r.IssueInstant.Add(d) }}
	}
	// now is the harness clock: every time below is relative to it (the
	// assertion's own IssueInstant before any change).
	conditionsNotOnOrAfter := func(d time.Duration) respOpts {
		return respOpts{assertion: func(a *saml.Assertion) { a.Conditions.NotOnOrAfter = a.IssueInstant.Add(d) }}
	}
	conditionsNotBefore := func(d time.Duration) respOpts {
		return respOpts{assertion: func(a *saml.Assertion) { a.Conditions.NotBefore = a.IssueInstant.Add(d) }}
	}
	bearerNotOnOrAfter := func(d time.Duration) respOpts {
		return respOpts{assertion: func(a *saml.Assertion) {
			a.Subject.SubjectConfirmations[0].SubjectConfirmationData.NotOnOrAfter = a.IssueInstant.Add(d)
		}}
	}
	bearerNotBefore := func(d time.Duration) respOpts {
		return respOpts{assertion: func(a *saml.Assertion) {
			a.Subject.SubjectConfirmations[0].SubjectConfirmationData.NotBefore = a.IssueInstant.Add(d)
		}}
	}
	for _, tc := range []struct {
		name   string
		o      respOpts
		reason string // "" = accepted
	}{
		{"IdP clock 150 s behind", shiftAll(-150 * sec), ""},
		{"IdP clock 150 s ahead", shiftAll(150 * sec), ""},
		{"assertion IssueInstant at now − (skew + 90 s)", assertionIssued(-skew - IssueDelay), ""},
		{"assertion IssueInstant 1 s older", assertionIssued(-skew - IssueDelay - sec), reasonExpired},
		{"assertion IssueInstant 330 s old", assertionIssued(-330 * sec), reasonExpired},
		{"assertion IssueInstant at now + skew", assertionIssued(skew), ""},
		{"assertion IssueInstant 1 s later", assertionIssued(skew + sec), reasonNotYetValid},
		{"response IssueInstant at now − (skew + 90 s)", responseIssued(-skew - IssueDelay), ""},
		{"response IssueInstant 1 s older", responseIssued(-skew - IssueDelay - sec), reasonExpired},
		{"response IssueInstant at now + skew", responseIssued(skew), ""},
		{"response IssueInstant 1 s later", responseIssued(skew + sec), reasonNotYetValid},
		{"Conditions NotOnOrAfter 1 s inside the skew", conditionsNotOnOrAfter(-skew + sec), ""},
		{"Conditions NotOnOrAfter 1 s beyond the skew", conditionsNotOnOrAfter(-skew - sec), reasonExpired},
		{"Conditions NotBefore at now + skew", conditionsNotBefore(skew), ""},
		{"Conditions NotBefore 1 s beyond", conditionsNotBefore(skew + sec), reasonNotYetValid},
		{"bearer NotOnOrAfter 1 s inside the skew", bearerNotOnOrAfter(-skew + sec), ""},
		{"bearer NotOnOrAfter 1 s beyond the skew", bearerNotOnOrAfter(-skew - sec), reasonExpired},
		{"bearer NotBefore at now + skew", bearerNotBefore(skew), ""},
		{"bearer NotBefore 1 s beyond", bearerNotBefore(skew + sec), reasonExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(c *config.Config) { c.SAML.ClockSkew = skew })
			rec, _ := h.complete("/app", tc.o)
			if tc.reason == "" {
				h.expectAccepted(t, rec, "/app")
			} else {
				h.expectRefused(t, rec, 403, tc.reason)
			}
		})
	}
}
