package config

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

func (v *validator) routes() {
	rs := v.c.Routes
	for i, r := range rs {
		path := fmt.Sprintf("routes[%d]", i)
		if msg := routePathProblem(r.Path); msg != "" {
			v.add(path+".path", "%s", msg)
		} else if j := slices.IndexFunc(rs[:i], func(prev Route) bool { return prev.Path == r.Path }); j >= 0 {
			v.add(path+".path", "duplicate of routes[%d]", j)
		} else if j := slices.IndexFunc(rs[:i], func(prev Route) bool {
			return strings.HasSuffix(prev.Path, "/") && strings.HasPrefix(r.Path, prev.Path) && routePathProblem(prev.Path) == ""
		}); j >= 0 {
			v.add(path+".path", "never matches: routes[%d] (%s) comes first and covers it; the first match wins, so list the more specific route first", j, rs[j].Path)
		}
		if r.Public && len(r.AllowGroups) > 0 {
			v.add(path+".allowGroups", "a public route cannot restrict groups; remove public or allowGroups")
		}
		if r.Public && len(r.AllowOrganizations) > 0 {
			v.add(path+".allowOrganizations", "a public route cannot restrict organizations; remove public or allowOrganizations")
		}
		for j, o := range r.AllowOrganizations {
			if o != identity.DefaultOrg && !orgIDPattern.MatchString(o) {
				v.add(fmt.Sprintf("%s.allowOrganizations[%d]", path, j), "must be an organization id (default, or one matching ^[a-z0-9][a-z0-9-]{0,62}$); got %q", truncate(o, 70))
			}
		}
		for j, g := range r.AllowGroups {
			gp := fmt.Sprintf("%s.allowGroups[%d]", path, j)
			switch {
			case g == "":
				v.add(gp, "must not be empty")
			case g != strings.TrimSpace(g):
				v.add(gp, "must not start or end with whitespace; got %q", g)
			}
		}
	}
}

// routePathProblem says what is wrong with a route path, or "".
func routePathProblem(p string) string {
	switch {
	case p == "":
		return "required, such as /admin/"
	case !strings.HasPrefix(p, "/"):
		return fmt.Sprintf("must start with \"/\"; got %q", p)
	case strings.ContainsFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return fmt.Sprintf("must not contain whitespace or control characters; got %q", p)
	}
	for _, bad := range []string{"..", "//", `\`, "%", "?", "#", ";", ":$"} {
		if strings.Contains(p, bad) {
			return fmt.Sprintf("must not contain %q: routes match the cleaned, decoded path; got %q", bad, p)
		}
	}
	// The proxy refuses request paths with these Windows-style tricks, so a
	// route spelled with them could never match.
	for seg := range strings.SplitSeq(strings.Trim(p, "/"), "/") {
		if strings.HasSuffix(seg, ".") {
			return fmt.Sprintf("must not have a segment ending in \".\" (requests with one are refused); got %q", p)
		}
		if i := strings.IndexByte(seg, '~'); i >= 0 && i+1 < len(seg) && seg[i+1] >= '0' && seg[i+1] <= '9' {
			return fmt.Sprintf("must not contain \"~\" followed by a digit (requests with one are refused); got %q", p)
		}
	}
	for _, r := range p {
		if r > 0x7e {
			return fmt.Sprintf("must be plain ASCII; got %q", p)
		}
	}
	return ""
}
