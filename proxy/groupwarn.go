package proxy

import (
	"sync"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

// maxGroupWarnings bounds how many distinct left-out group names are
// remembered (and so warned about once each).
const maxGroupWarnings = 1000

// groupWarner logs, once per name, a group the groups header leaves out
// (identity.HeaderSafeGroup), so an operator learns why an app does not see
// it. It runs only when a request's header left a name out.
type groupWarner struct {
	log  *zap.Logger
	mu   sync.Mutex
	seen map[string]struct{}
}

func (g *groupWarner) note(groups []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, name := range groups {
		if identity.HeaderSafeGroup(name) || len(g.seen) >= maxGroupWarnings {
			continue
		}
		if _, ok := g.seen[name]; ok {
			continue
		}
		g.seen[name] = struct{}{}
		g.log.Warn("group left out of the groups header: a comma split or a trim would change its name",
			zap.String("group", name))
	}
}
