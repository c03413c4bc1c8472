package scimsync

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// emailsOf returns a user's emails as "value/type/primary" strings, in order.
func emailsOf(t *testing.T, h *scimHarness, id string) []string {
	t.Helper()
	return valuesOf(t, h, id, "emails")
}

func valuesOf(t *testing.T, h *scimHarness, id, attr string) []string {
	t.Helper()
	r := h.mustStatus(h.req("GET", "/Users/"+id, ""), 200)
	list, _ := r.body[attr].([]any)
	var out []string
	for _, e := range list {
		m := e.(map[string]any)
		out = append(out, fmt.Sprintf("%v/%v/%v", m["value"], m["type"], m["primary"]))
	}
	return out
}

func userWith(userName, attrs string) string {
	return fmt.Sprintf(`{"schemas":[%q],"userName":%q,%s}`, SchemaUser, userName, attrs)
}

// TestRFC7643_2_4_AtMostOnePrimary: a POST or PUT whose multi-valued
// attribute has two values marked primary is 400 invalidValue with an RFC
// 7644 error body, and nothing is written.
func TestRFC7643_2_4_AtMostOnePrimary(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	id := h.mustStatus(h.req("POST", "/Users", userWith("keep", `"emails":[{"value":"k@example.com","primary":true}]`)), 201).body["id"].(string)
	for _, tc := range []struct{ name, attrs string }{
		{"emails", `"emails":[{"value":"a@example.com","type":"work","primary":true},{"value":"b@example.com","type":"home","primary":true}]`},
		{"emails as Entra's strings", `"emails":[{"value":"a@example.com","primary":"True"},{"value":"b@example.com","primary":"true"}]`},
		{"phoneNumbers", `"phoneNumbers":[{"value":"+1 555 0100","primary":true},{"value":"+1 555 0101","primary":true}]`},
		{"addresses", `"addresses":[{"locality":"A","primary":true},{"locality":"B","primary":true}]`},
		{"roles", `"roles":[{"value":"a","primary":true},{"value":"b","primary":true}]`},
		{"x509Certificates", `"x509Certificates":[{"value":"TUlJ","primary":true},{"value":"TUlK","primary":true}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertSCIMError(t, h.req("POST", "/Users", userWith("new-"+strings.ReplaceAll(tc.name, " ", "-"), tc.attrs)), 400, "invalidValue")
			assertSCIMError(t, h.req("PUT", "/Users/"+id, userWith("keep", tc.attrs)), 400, "invalidValue")
		})
	}
	if got := emailsOf(t, h, id); len(got) != 1 || got[0] != "k@example.com/<nil>/true" {
		t.Errorf("after refused PUTs the user's emails are %v", got)
	}
	r := h.mustStatus(h.req("GET", "/Users?filter="+strings.ReplaceAll(`userName sw "new-"`, " ", "%20"), ""), 200)
	if r.body["totalResults"] != float64(0) {
		t.Errorf("refused POSTs created %v users", r.body["totalResults"])
	}
	// One primary, or none, is fine.
	h.mustStatus(h.req("POST", "/Users", userWith("one", `"emails":[{"value":"a@example.com","primary":true},{"value":"b@example.com","primary":false}]`)), 201)
}

// TestRFC7644_3_5_2_PatchSettingPrimaryClearsTheOld: a PATCH that marks a
// value primary unmarks the one that was (RFC 7644 §3.5.2), whether it
// adds the value or sets primary on one already there; a PATCH that would
// leave two new primaries is 400.
func TestRFC7644_3_5_2_PatchSettingPrimaryClearsTheOld(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	id := h.mustStatus(h.req("POST", "/Users", userWith("alice",
		`"emails":[{"value":"a@work.example","type":"work","primary":true}],"phoneNumbers":[{"value":"1","type":"work","primary":true},{"value":"2","type":"home"}]`)), 201).body["id"].(string)
	patch := func(ops ...string) scimResp {
		return h.req("PATCH", "/Users/"+id, patchBody(ops...))
	}
	h.mustStatus(patch(`{"op":"add","path":"emails","value":[{"value":"a@home.example","type":"home","primary":true}]}`), 200)
	want := []string{"a@work.example/work/false", "a@home.example/home/true"}
	if got := emailsOf(t, h, id); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("add of a primary: %v, want %v", got, want)
	}
	h.mustStatus(patch(`{"op":"replace","path":"emails[type eq \"work\"].primary","value":"True"}`), 200)
	want = []string{"a@work.example/work/true", "a@home.example/home/false"}
	if got := emailsOf(t, h, id); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("replace of primary on the work email: %v, want %v", got, want)
	}
	h.mustStatus(patch(`{"op":"replace","value":{"phoneNumbers":[{"value":"2","type":"home","primary":true}]}}`), 200)
	if got := valuesOf(t, h, id, "phoneNumbers"); fmt.Sprint(got) != "[2/home/true]" {
		t.Errorf("replace of the whole list: %v", got)
	}
	h.mustStatus(patch(`{"op":"add","path":"phoneNumbers","value":[{"value":"3","primary":true}]}`,
		`{"op":"add","path":"phoneNumbers","value":[{"value":"4","primary":true}]}`), 200)
	if got := valuesOf(t, h, id, "phoneNumbers"); fmt.Sprint(got) != "[2/home/false 3/<nil>/false 4/<nil>/true]" {
		t.Errorf("two operations, each a new primary: %v, want the last one primary", got)
	}
	assertSCIMError(t, patch(`{"op":"add","path":"emails","value":[{"value":"x@example.com","primary":true},{"value":"y@example.com","primary":true}]}`), 400, "invalidValue")
	if got := emailsOf(t, h, id); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the refused PATCH: %v, want %v", got, want)
	}
}

// TestRFC7643_2_4_DuplicateValuesStoredOnce: values of a multi-valued
// attribute with the same type and value (compared as the attribute's
// filters compare them) are stored once; a primary mark on a dropped copy
// moves to the kept one.
func TestRFC7643_2_4_DuplicateValuesStoredOnce(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	id := h.mustStatus(h.req("POST", "/Users", userWith("alice", `"emails":[{"value":"a@example.com","type":"work"},
		{"value":"A@EXAMPLE.COM","type":"Work","primary":true},{"value":"a@example.com","type":"home"}],
		"phoneNumbers":[{"value":"+1 555","type":"work"},{"value":"+1 555","type":"work"}],
		"addresses":[{"locality":"X"},{"locality":"X"},{"locality":"Y"}]`)), 201).body["id"].(string)
	want := []string{"a@example.com/work/true", "a@example.com/home/<nil>"}
	if got := emailsOf(t, h, id); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("emails: %v, want %v", got, want)
	}
	if got := valuesOf(t, h, id, "phoneNumbers"); len(got) != 1 {
		t.Errorf("phoneNumbers: %v, want one", got)
	}
	if got := valuesOf(t, h, id, "addresses"); len(got) != 2 {
		t.Errorf("addresses: %v, want two", got)
	}
	// A PATCH adding a value already there in another spelling adds nothing.
	h.mustStatus(h.req("PATCH", "/Users/"+id, patchBody(`{"op":"add","path":"emails","value":[{"value":"A@example.com","type":"home"}]}`)), 200)
	if got := emailsOf(t, h, id); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the PATCH: %v, want %v", got, want)
	}
}

// TestPatch_StoredTwoPrimariesKeepsTheFirst: a user stored with two
// primaries (by a version before the rule) can still be patched: the
// first stays primary.
func TestPatch_StoredTwoPrimariesKeepsTheFirst(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	if _, err := h.store.CreateUser(context.Background(), &store.User{ID: "legacy", UserName: "old", Active: true, Version: 1,
		Doc:     []byte(`{"userName":"old","emails":[{"value":"a@x.example","primary":true},{"value":"b@x.example","primary":true}]}`),
		Created: now, LastModified: now, ValidAfter: now}, "test"); err != nil {
		t.Fatal(err)
	}
	h.mustStatus(h.req("PATCH", "/Users/legacy", patchBody(`{"op":"replace","path":"displayName","value":"Old"}`)), 200)
	if got := emailsOf(t, h, "legacy"); fmt.Sprint(got) != "[a@x.example/<nil>/true b@x.example/<nil>/false]" {
		t.Errorf("emails: %v", got)
	}
}
