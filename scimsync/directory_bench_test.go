package scimsync

import (
	"fmt"
	"testing"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// BenchmarkDirectoryGroupRename100k is the cost of the rare group events
// that walk every user (the view keeps no member list per group): the
// rename of a 50-member group in a view of 100,000 users, under the write
// lock.
func BenchmarkDirectoryGroupRename100k(b *testing.B) {
	d, _ := NewDirectory("userName")
	d.Load(benchSnapshot(bench100kUsers, bench100kGroups))
	g := benchSnapshot(1, 2).Groups[1].ID // the ID of the second group, as benchSnapshot names it
	seq := d.Seq()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		seq++
		d.Apply([]store.Event{{Seq: seq, Kind: store.EventGroupUpdated, ResourceType: "Group", ResourceID: g,
			Group: &store.Group{ID: g, DisplayName: fmt.Sprint("renamed-", i)}}})
	}
}
