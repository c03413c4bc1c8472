package scimsync

// The SCIM service's group tests: membership, concurrent PATCHes and a
// large group's changes.

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

func TestSCIM_Groups(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	u1, u2, u3 := h.createUser("u1@example.com"), h.createUser("u2@example.com"), h.createUser("u3@example.com")
	g := h.mustStatus(h.req("POST", "/Groups", fmt.Sprintf(`{"schemas":[%q],"displayName":"admins","members":[{"value":%q},{"value":%q}]}`, SchemaGroup, u1, u2)), 201)
	gid := g.body["id"].(string)
	groupsOf := func(userName string) []string { return h.standing(userName).Groups }
	if got := groupsOf("u1@example.com"); len(got) != 1 || got[0] != "admins" {
		t.Fatalf("u1 groups %v", got)
	}
	t.Run("Entra add member", func(t *testing.T) {
		h.mustStatus(h.req("PATCH", "/Groups/"+gid, fmt.Sprintf(`{"schemas":[%q],"Operations":[{"op":"Add","path":"members","value":[{"value":%q}]}]}`, SchemaPatchOp, u3)), 200)
		if got := groupsOf("u3@example.com"); len(got) != 1 {
			t.Errorf("u3 groups %v", got)
		}
	})
	t.Run("remove with a value list removes only those", func(t *testing.T) {
		h.mustStatus(h.req("PATCH", "/Groups/"+gid, fmt.Sprintf(`{"schemas":[%q],"Operations":[{"op":"Remove","path":"members","value":[{"value":%q}]}]}`, SchemaPatchOp, u1)), 200)
		if len(groupsOf("u1@example.com")) != 0 || len(groupsOf("u2@example.com")) != 1 || len(groupsOf("u3@example.com")) != 1 {
			t.Errorf("after remove: u1 %v u2 %v u3 %v", groupsOf("u1@example.com"), groupsOf("u2@example.com"), groupsOf("u3@example.com"))
		}
	})
	t.Run("Okta remove by value filter", func(t *testing.T) {
		h.mustStatus(h.req("PATCH", "/Groups/"+gid, fmt.Sprintf(`{"schemas":[%q],"Operations":[{"op":"remove","path":"members[value eq \"%s\"]"}]}`, SchemaPatchOp, u2)), 200)
		if len(groupsOf("u2@example.com")) != 0 || len(groupsOf("u3@example.com")) != 1 {
			t.Error("value-filter remove wrong")
		}
	})
	t.Run("rename applies to users at once", func(t *testing.T) {
		h.mustStatus(h.req("PATCH", "/Groups/"+gid, fmt.Sprintf(`{"schemas":[%q],"Operations":[{"op":"replace","value":{"id":%q,"displayName":"superusers"}}]}`, SchemaPatchOp, gid)), 200)
		if got := groupsOf("u3@example.com"); len(got) != 1 || got[0] != "superusers" {
			t.Errorf("u3 groups %v", got)
		}
	})
	t.Run("excludedAttributes=members", func(t *testing.T) {
		r := h.mustStatus(h.req("GET", "/Groups?excludedAttributes=members", ""), 200)
		for _, res := range r.body["Resources"].([]any) {
			if res.(map[string]any)["members"] != nil {
				t.Error("members returned")
			}
		}
		r = h.mustStatus(h.req("GET", "/Groups/"+gid, ""), 200)
		if len(r.body["members"].([]any)) != 1 {
			t.Errorf("members %v", r.body["members"])
		}
	})
	t.Run("filter by displayName", func(t *testing.T) {
		r := h.mustStatus(h.req("GET", "/Groups?filter="+url.QueryEscape(`displayName eq "superusers"`), ""), 200)
		if r.body["totalResults"] != float64(1) {
			t.Errorf("totalResults %v", r.body["totalResults"])
		}
	})
	t.Run("unknown member", func(t *testing.T) {
		assertSCIMError(t, h.req("POST", "/Groups", `{"displayName":"x","members":[{"value":"nobody"}]}`), 400, "invalidValue")
	})
	t.Run("user shows its groups read-only", func(t *testing.T) {
		r := h.mustStatus(h.req("GET", "/Users/"+u3, ""), 200)
		gs, _ := r.body["groups"].([]any)
		if len(gs) != 1 || gs[0].(map[string]any)["value"] != gid {
			t.Errorf("groups %v", r.body["groups"])
		}
	})
	t.Run("delete", func(t *testing.T) {
		h.mustStatus(h.req("DELETE", "/Groups/"+gid, ""), 204)
		if len(groupsOf("u3@example.com")) != 0 {
			t.Error("deleted group still applies")
		}
	})
}

func TestSCIM_ConcurrentPatchesLoseNothing(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	var users []string
	for i := 0; i < 20; i++ {
		users = append(users, h.createUser(fmt.Sprintf("c%d@example.com", i)))
	}
	gid := h.mustStatus(h.req("POST", "/Groups", `{"displayName":"team"}`), 201).body["id"].(string)
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.req("PATCH", "/Groups/"+gid, fmt.Sprintf(`{"schemas":[%q],"Operations":[{"op":"add","path":"members","value":[{"value":%q}]}]}`, SchemaPatchOp, u))
			if r.status != 200 {
				t.Errorf("status %d: %s", r.status, r.raw)
			}
		}()
	}
	wg.Wait()
	r := h.mustStatus(h.req("GET", "/Groups/"+gid, ""), 200)
	if n := len(r.body["members"].([]any)); n != 20 {
		t.Errorf("members after 20 concurrent adds: %d", n)
	}
}

func TestSCIM_LargeGroupMembershipChange(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 10,000-member group")
	}
	t.Parallel()
	h := newSCIM(t)
	ctx := context.Background()
	now := time.Now().UTC()
	members := make([]string, 0, 10000)
	for i := 0; i < 10000; i++ {
		u := &store.User{ID: fmt.Sprintf("u%05d", i), UserName: fmt.Sprintf("u%05d@example.com", i), Active: true, Doc: []byte(`{}`),
			Version: 1, Created: now, LastModified: now, ValidAfter: now}
		if _, err := h.store.CreateUser(ctx, u, "test"); err != nil {
			t.Fatal(err)
		}
		members = append(members, u.ID)
	}
	extra := h.createUser("extra@example.com")
	if _, err := h.store.CreateGroup(ctx, &store.Group{ID: "big", DisplayName: "everyone", Doc: []byte(`{}`), Members: members,
		Version: 1, Created: now, LastModified: now}, "test"); err != nil {
		t.Fatal(err)
	}
	if err := h.dir.CatchUp(ctx, h.store); err != nil {
		t.Fatal(err)
	}
	h.mustStatus(h.req("PATCH", "/Groups/big?excludedAttributes=members", fmt.Sprintf(`{"schemas":[%q],"Operations":[{"op":"add","path":"members","value":[{"value":%q}]}]}`, SchemaPatchOp, extra)), 200)
	if got := h.standing("extra@example.com").Groups; len(got) != 1 {
		t.Errorf("extra groups %v", got)
	}
	h.mustStatus(h.req("PATCH", "/Groups/big?excludedAttributes=members", fmt.Sprintf(`{"schemas":[%q],"Operations":[{"op":"remove","path":"members[value eq \"u00042\"]"}]}`, SchemaPatchOp)), 200)
	if got := h.standing("u00042@example.com").Groups; len(got) != 0 {
		t.Errorf("u00042 groups %v", got)
	}
	if got := h.standing("u00043@example.com").Groups; len(got) != 1 {
		t.Errorf("u00043 groups %v", got)
	}
}
