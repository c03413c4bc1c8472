package scimsync

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

var dt0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func dirUserEvent(seq int64, kind, id, userName string, active bool) store.Event {
	return store.Event{Seq: seq, Time: dt0.Add(time.Duration(seq) * time.Second), Kind: kind, ResourceType: "User", ResourceID: id,
		User: &store.User{ID: id, UserName: userName, Email: "mail-" + userName, ExternalID: "ext-" + id, Active: active,
			ValidAfter: dt0.Add(time.Duration(seq) * time.Second)}}
}

func TestDirectory_AppliesEventsInOrder(t *testing.T) {
	t.Parallel()
	d, err := NewDirectory("userName")
	if err != nil {
		t.Fatal(err)
	}
	d.now = func() time.Time { return dt0.Add(time.Minute) } // the tombstone has not expired
	var revoked []string
	d.OnRevoke(func(k string) { revoked = append(revoked, k) })
	d.Apply([]store.Event{
		dirUserEvent(1, store.EventUserCreated, "u1", "Alice", true),
		dirUserEvent(2, store.EventUserCreated, "u2", "bob", true),
		{Seq: 3, Kind: store.EventGroupCreated, ResourceType: "Group", ResourceID: "g1", Group: &store.Group{ID: "g1", DisplayName: "admins"}},
		{Seq: 4, Kind: store.EventGroupMemberAdded, ResourceType: "Group", ResourceID: "g1", Members: []string{"u1", "u2"}},
	})
	if st := d.Standing("ALICE"); st.State != identity.StateActive || len(st.Groups) != 1 || st.Groups[0] != "admins" {
		t.Fatalf("alice: %+v", st)
	}
	d.Apply([]store.Event{
		dirUserEvent(5, store.EventUserDeactivated, "u1", "Alice", false),
		{Seq: 6, Kind: store.EventGroupMemberRemoved, ResourceType: "Group", ResourceID: "g1", Members: []string{"u2"}},
		{Seq: 7, Kind: store.EventUserDeleted, ResourceType: "User", ResourceID: "u2", Time: dt0.Add(7 * time.Second)},
	})
	if st := d.Standing("alice"); st.State != identity.StateInactive {
		t.Errorf("alice after deactivation: %v", st.State)
	}
	if st := d.Standing("bob"); st.State != identity.StateDeleted || !st.ValidAfter.Equal(dt0.Add(7*time.Second)) {
		t.Errorf("bob after deletion: %+v", st)
	}
	if st := d.Standing("nobody"); st.State != identity.StateUnknown {
		t.Errorf("unknown: %v", st.State)
	}
	if fmt.Sprint(revoked) != "[alice bob]" {
		t.Errorf("revocation hooks: %v", revoked)
	}
	// Replayed events are skipped: reapplying seq 2 does not resurrect bob.
	d.Apply([]store.Event{dirUserEvent(2, store.EventUserCreated, "u2", "bob", true)})
	if st := d.Standing("bob"); st.State != identity.StateDeleted {
		t.Errorf("old event re-applied: %v", st.State)
	}
	// Recreating the same userName takes the key (its own ValidAfter, the
	// creation, voids the sessions from before).
	d.Apply([]store.Event{dirUserEvent(8, store.EventUserCreated, "u3", "BOB", true)})
	if st := d.Standing("bob"); st.State != identity.StateActive {
		t.Errorf("recreated bob: %v", st.State)
	}
	if d.Seq() != 8 {
		t.Errorf("seq %d", d.Seq())
	}
}

func TestDirectory_MatchAttribute(t *testing.T) {
	t.Parallel()
	for attr, key := range map[string]string{"userName": "alice", "email": "MAIL-alice", "externalId": "ext-u1"} {
		d, _ := NewDirectory(attr)
		d.Apply([]store.Event{dirUserEvent(1, store.EventUserCreated, "u1", "alice", true)})
		if st := d.Standing(key); st.State != identity.StateActive {
			t.Errorf("%s: lookup by %q: %v", attr, key, st.State)
		}
	}
	if _, err := NewDirectory("displayName"); err == nil {
		t.Error("unknown match attribute accepted")
	}
}

func TestDirectory_StandingDoesNotAllocate(t *testing.T) {
	d := bigDirectory(1000, 10)
	allocs := testing.AllocsPerRun(1000, func() { _ = d.Standing("user00500@example.com") })
	if allocs != 0 {
		t.Errorf("Standing allocates %.1f times per call", allocs)
	}
}

// bigDirectory builds a view of n users and n/10 groups of 50 members each.
func bigDirectory(n, groupsPer int) *Directory {
	snap := &store.Snapshot{Seq: 1}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
		snap.Users = append(snap.Users, &store.User{ID: id, UserName: fmt.Sprintf("user%05d@example.com", i), Active: i%10 != 0, ValidAfter: dt0})
	}
	for g := 0; g < n/groupsPer; g++ {
		grp := &store.Group{ID: fmt.Sprintf("g%06d", g), DisplayName: fmt.Sprintf("group-%d", g)}
		for m := 0; m < 50; m++ {
			grp.Members = append(grp.Members, snap.Users[(g*7+m*13)%n].ID)
		}
		snap.Groups = append(snap.Groups, grp)
	}
	d, _ := NewDirectory("userName")
	d.Load(snap)
	return d
}

func BenchmarkDirectoryStanding(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			d := bigDirectory(n, 10)
			key := fmt.Sprintf("user%05d@example.com", n/2)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if d.Standing(key).State == identity.StateUnknown {
					b.Fatal("not found")
				}
			}
		})
	}
}

// BenchmarkDirectoryMemory reports the heap the view needs per directory size.
func BenchmarkDirectoryMemory(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				d := bigDirectory(n, 10)
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB-heap")
				runtime.KeepAlive(d)
			}
		})
	}
}

// Group events keep each member's groups and group names right, from a
// loaded snapshot on: a rename, a repeated add, a removal, the deletion of
// a member and of a group.
func TestDirectory_GroupEventsAfterLoad(t *testing.T) {
	t.Parallel()
	d, err := NewDirectory("userName")
	if err != nil {
		t.Fatal(err)
	}
	d.Load(&store.Snapshot{Seq: 3,
		Users: []*store.User{{ID: "u1", UserName: "alice", Active: true}, {ID: "u2", UserName: "bob", Active: true},
			{ID: "u3", UserName: "carol", Active: true}},
		Groups: []*store.Group{{ID: "g1", DisplayName: "staff", Members: []string{"u1", "u2", "nobody"}},
			{ID: "g2", DisplayName: "admins", Members: []string{"u1"}}}})
	groups := func(user string) string { return fmt.Sprint(d.Standing(user).Groups) }
	refs := func(id string) string { return fmt.Sprint(d.GroupsOf(id)) }
	if groups("alice") != "[admins staff]" || groups("bob") != "[staff]" || groups("carol") != "[]" {
		t.Fatalf("after load: alice %s, bob %s, carol %s", groups("alice"), groups("bob"), groups("carol"))
	}
	before := d.Standing("alice").Groups // handed out: must never change under the caller
	ev := func(seq int64, kind, id string, members ...string) store.Event {
		e := store.Event{Seq: seq, Kind: kind, ResourceType: "Group", ResourceID: id, Members: members}
		if kind == store.EventGroupUpdated || kind == store.EventGroupCreated {
			e.Group = &store.Group{ID: id, DisplayName: members[0]}
			e.Members = nil
		}
		return e
	}
	d.Apply([]store.Event{
		ev(4, store.EventGroupUpdated, "g1", "employees"),
		ev(5, store.EventGroupMemberAdded, "g1", "u1", "u3", "u3"), // u1 already in: no change
		ev(6, store.EventGroupMemberRemoved, "g2", "u1", "u2"),     // u2 was not in
	})
	if groups("alice") != "[employees]" || groups("bob") != "[employees]" || groups("carol") != "[employees]" {
		t.Errorf("after rename, add, remove: alice %s, bob %s, carol %s", groups("alice"), groups("bob"), groups("carol"))
	}
	if fmt.Sprint(before) != "[admins staff]" {
		t.Errorf("a Standing's groups changed after it was returned: %v", before)
	}
	if refs("u3") != "[{g1 employees}]" {
		t.Errorf("GroupsOf(u3) = %s", refs("u3"))
	}
	d.Apply([]store.Event{
		{Seq: 7, Kind: store.EventUserDeleted, ResourceType: "User", ResourceID: "u2"},
		ev(8, store.EventGroupCreated, "g3", "ops"),
		ev(9, store.EventGroupMemberAdded, "g3", "u1"),
		ev(10, store.EventGroupDeleted, "g1"),
	})
	if groups("alice") != "[ops]" || groups("carol") != "[]" || refs("u1") != "[{g3 ops}]" {
		t.Errorf("after group deletion: alice %s, carol %s, GroupsOf(u1) %s", groups("alice"), groups("carol"), refs("u1"))
	}
	// The deleted user left g3's and g1's member lists: re-adding a user of
	// the same id is not possible, so check the group through a rename.
	d.Apply([]store.Event{ev(11, store.EventGroupUpdated, "g3", "operations")})
	if groups("alice") != "[operations]" {
		t.Errorf("after renaming g3: %s", groups("alice"))
	}
}
