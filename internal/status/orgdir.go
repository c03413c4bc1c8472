package status

import (
	"strconv"
	"time"

	"github.com/portcullis-sso/portcullis/internal/metrics"
)

// directory fills the Directory section. Unfiltered, it reads the metrics,
// which the default organization's view feeds; filtered, the organization's
// own view (Options.DirectoryCountsOf), every figure absent when it has
// none here.
func (h *Handler) directory(p *page, s samples, now time.Time) dirView {
	if !p.OrgScoped {
		lastEv, ok := s.value(metrics.NameLastEvent)
		return dirView{
			Active:     count(s.value(metrics.NameDirectoryUsers, "state", "active")),
			Inactive:   count(s.value(metrics.NameDirectoryUsers, "state", "inactive")),
			Groups:     count(s.value(metrics.NameDirectoryGroups)),
			AppliedSeq: count(s.value(metrics.NameAppliedSeq)),
			LastEvent:  unixAge(now, lastEv, ok),
		}
	}
	none := dirView{Active: absent, Inactive: absent, Groups: absent, AppliedSeq: absent, LastEvent: absent}
	if h.o.DirectoryCountsOf == nil || len(p.Scope) > maxOrgID {
		return none
	}
	c, ok := h.o.DirectoryCountsOf(p.Scope)
	if !ok {
		return none
	}
	v := dirView{Active: strconv.Itoa(c.Active), Inactive: strconv.Itoa(c.Inactive), Groups: strconv.Itoa(c.Groups),
		AppliedSeq: strconv.FormatInt(c.AppliedSeq, 10), LastEvent: "never"}
	if !c.LastEvent.IsZero() {
		v.LastEvent = age(now, c.LastEvent)
	}
	return v
}
