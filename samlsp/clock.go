package samlsp

import (
	"time"

	"github.com/crewjam/saml"

	"github.com/portcullis-sso/portcullis/config"
)

// IssueDelay is how long a browser may take to post a response it has just
// been given: an assertion's IssueInstant may be this much older than the
// clock skew allows.
const IssueDelay = 90 * time.Second

// saml.clockSkew is the one setting that governs every time check of a
// sign-in. crewjam's own checks use package globals (MaxIssueDelay 90 s,
// MaxClockSkew 180 s), which would refuse an IdP clock more than ~90 s
// behind whatever clockSkew says, and which one process cannot set per SP.
// So they are set here, once, wide enough that they never refuse what
// clockSkew allows (clockSkew is at most config.MaxClockSkew), and the SP
// applies its own skew to every time in the response (checkAssertion and
// the response IssueInstant check in consume).
func init() {
	saml.MaxClockSkew = config.MaxClockSkew
	saml.MaxIssueDelay = config.MaxClockSkew + IssueDelay
}
