package scimsync

import (
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

func matchKeyOf(attr string, u *store.User) string { return store.MatchKeyOf(attr, u) }
