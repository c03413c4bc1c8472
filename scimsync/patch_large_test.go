package scimsync

// PATCH on large groups, and the PATCH engine's fuzz target and benchmark.

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// bigGroup is a group with n members, as groupJSON renders one.
func bigGroup(n int) map[string]any {
	members := make([]any, n)
	for i := range members {
		id := fmt.Sprintf("user-%05d", i)
		members[i] = map[string]any{"value": id, "$ref": "https://sp.example/scim/v2/Users/" + id, "type": "User"}
	}
	return map[string]any{
		"schemas":     []any{SchemaGroup},
		"id":          "g1",
		"displayName": "Everyone",
		"members":     members,
	}
}

func TestApplyPatch_ManyMemberOpsOnLargeGroup(t *testing.T) {
	t.Parallel()
	const n = 10000
	res := bigGroup(n)
	var list []PatchOp
	for i := range 500 {
		list = append(list,
			PatchOp{Op: "add", Path: "members", Value: []any{map[string]any{"value": fmt.Sprintf("new-%d", i)}}},
			PatchOp{Op: "remove", Path: fmt.Sprintf(`members[value eq "user-%05d"]`, i)},
			PatchOp{Op: "Remove", Path: "members", Value: []any{map[string]any{"value": fmt.Sprintf("user-%05d", n-1-i)}}},
		)
	}
	got, err := ApplyPatch(res, list, testReadOnlyGroup)
	if err != nil {
		t.Fatal(err)
	}
	members := got["members"].([]any)
	if len(members) != n-500 {
		t.Fatalf("%d members, want %d", len(members), n-500)
	}
	if v, _ := memberValue(members[0]); v != "user-00500" {
		t.Errorf("first member %s, want user-00500", v)
	}
	if v, _ := memberValue(members[len(members)-1]); v != "new-499" {
		t.Errorf("last member %s, want new-499", v)
	}
}

// isReplaceOnly reports ops that only replace, with no value filter in a
// path or in a key of a path-less value: replaying those on their own
// result changes nothing. (A value filter selects by state, so an op like
// replace emails[primary eq true].type can hit a different element the
// second time.)
func isReplaceOnly(list []PatchOp) bool {
	for _, op := range list {
		if !strings.EqualFold(op.Op, "replace") || strings.Contains(op.Path, "[") {
			return false
		}
		if m, ok := op.Value.(map[string]any); ok && op.Path == "" {
			for k := range m {
				if strings.Contains(k, "[") {
					return false
				}
			}
		}
	}
	return true
}

func FuzzApplyPatch(f *testing.F) {
	for _, tc := range patchCases {
		f.Add([]byte(tc.body))
	}
	for _, tc := range patchErrorCases {
		if len(tc.body) < 4096 {
			f.Add([]byte(tc.body))
		}
	}
	resources := map[string]map[string]any{
		"user":  loadPatchResource(f, "user"),
		"group": loadPatchResource(f, "group"),
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		list, err := ParsePatch(body)
		if err != nil {
			var pe *PatchError
			if !errors.As(err, &pe) {
				t.Fatalf("ParsePatch error %v is not a *PatchError", err)
			}
			return
		}
		for name, res := range resources {
			before := cloneMap(res)
			got, err := ApplyPatch(res, list, readOnlyFor(name))
			if diff := cmp.Diff(before, res); diff != "" {
				t.Fatalf("%s: input modified (-before +after):\n%s", name, diff)
			}
			if err != nil {
				var pe *PatchError
				if !errors.As(err, &pe) {
					t.Fatalf("%s: ApplyPatch error %v is not a *PatchError", name, err)
				}
				continue
			}
			// Deterministic, and the result shares nothing with the ops.
			again, err := ApplyPatch(res, list, readOnlyFor(name))
			if err != nil {
				t.Fatalf("%s: second run failed: %v", name, err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Fatalf("%s: two runs differ (-first +second):\n%s", name, diff)
			}
			if !isReplaceOnly(list) {
				continue
			}
			twice, err := ApplyPatch(got, list, readOnlyFor(name))
			if err != nil {
				// A replace can turn a value into one a later replace
				// cannot descend into (x, then x.sub on a string).
				continue
			}
			if diff := cmp.Diff(got, twice); diff != "" {
				t.Fatalf("%s: replace is not idempotent (-once +twice):\n%s", name, diff)
			}
		}
	})
}

func BenchmarkPatchAddMember10k(b *testing.B) {
	for _, nops := range []int{1, 100} {
		b.Run(fmt.Sprintf("ops=%d", nops), func(b *testing.B) {
			res := bigGroup(10000)
			list := make([]PatchOp, nops)
			for i := range list {
				list[i] = PatchOp{Op: "Add", Path: "members", Value: []any{map[string]any{"value": fmt.Sprintf("new-%d", i)}}}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ApplyPatch(res, list, testReadOnlyGroup); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
