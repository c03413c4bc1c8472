package scimsync

import "github.com/portcullis-sso/portcullis/scimsync/store"

func matchKeyOf(attr string, u *User) string { return store.MatchKeyOf(attr, u) }
