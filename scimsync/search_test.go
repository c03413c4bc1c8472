package scimsync

import (
	"net/url"
	"slices"
	"testing"
)

// TestRFC7644_3_4_2_2_OrderingOperatorsCheckedAgainstTypes: gt, ge, lt and
// le on a boolean, binary or complex attribute, or against true, false or
// null, are 400 invalidFilter with an RFC 7644 error body; on strings,
// numbers, dates and attributes the schemas do not name they work.
func TestRFC7644_3_4_2_2_OrderingOperatorsCheckedAgainstTypes(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	h.createUser("alice@example.com")
	for _, tc := range []struct {
		path, filter string
		ok           bool
	}{
		{"Users", `active gt true`, false},
		{"Users", `active le false`, false},
		{"Users", `emails.primary ge true`, false},
		{"Users", `emails[type eq "work" and primary lt true]`, false},
		{"Users", `name gt "a"`, false},                              // complex
		{"Users", `emails lt "b"`, false},                            // complex, multi-valued
		{"Users", `x509Certificates.value gt "MII"`, false},          // binary
		{"Users", `meta gt "2020-01-01T00:00:00Z"`, false},           // complex
		{"Users", `meta.created gt null`, false},                     // null
		{"Users", `userName eq "a" or not (active gt false)`, false}, // anywhere in the filter
		{"Users", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager gt "x"`, false},
		{"Groups", `members gt "x"`, false},
		{"Users", `userName gt "a"`, true},
		{"Users", `meta.lastModified gt "2011-05-13T04:42:34Z"`, true},
		{"Users", `emails[type eq "work"].value ge "a"`, true},
		{"Users", `active eq true`, true},
		{"Users", `urn:example:custom:level gt 3`, true}, // not in the schemas: not checked
		{"Groups", `displayName lt "z"`, true},
	} {
		r := h.req("GET", "/"+tc.path+"?"+url.Values{"filter": {tc.filter}}.Encode(), "")
		if tc.ok {
			if r.status != 200 {
				t.Errorf("%s: %d %s, want 200", tc.filter, r.status, r.raw)
			}
			continue
		}
		t.Run(tc.filter, func(t *testing.T) { assertSCIMError(t, r, 400, "invalidFilter") })
	}
}

// TestRFC7644_3_4_3_SearchWithPOST: POST /Users/.search and /Groups/.search
// take a SearchRequest body (filter, startIndex, count, sortBy,
// sortOrder, attributes, excludedAttributes) and answer as GET does;
// anything else about .search is refused cleanly.
func TestRFC7644_3_4_3_SearchWithPOST(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	for _, n := range []string{"carol", "alice", "bob", "dave"} {
		h.createUser(n + "@example.com")
	}
	h.mustStatus(h.req("POST", "/Groups", `{"schemas":["`+SchemaGroup+`"],"displayName":"Staff"}`), 201)
	search := func(path, body string) scimResp {
		t.Helper()
		return h.req("POST", path, body)
	}
	r := h.mustStatus(search("/Users/.search", `{"schemas":["`+SchemaSearchRequest+`"],"filter":"userName ew \"example.com\"",
		"sortBy":"userName","sortOrder":"descending","startIndex":2,"count":2,"attributes":["userName"]}`), 200)
	if got := names(t, r); !slices.Equal(got, []string{"bob@example.com", "carol@example.com"}) {
		t.Errorf("page: %v", got)
	}
	if r.body["totalResults"] != float64(4) || r.body["startIndex"] != float64(2) || r.body["itemsPerPage"] != float64(2) {
		t.Errorf("list: total %v start %v per page %v", r.body["totalResults"], r.body["startIndex"], r.body["itemsPerPage"])
	}
	res := r.body["Resources"].([]any)
	if first := res[0].(map[string]any); first["userName"] != "carol@example.com" || first["emails"] != nil || first["id"] == nil {
		t.Errorf("first of page 2 descending with attributes=userName: %v", first)
	}
	// excludedAttributes, and a body without a filter lists everything.
	r = h.mustStatus(search("/Users/.search", `{"schemas":["`+SchemaSearchRequest+`"],"excludedAttributes":["emails","name"]}`), 200)
	for _, e := range r.body["Resources"].([]any) {
		if m := e.(map[string]any); m["emails"] != nil || m["name"] != nil || m["userName"] == nil {
			t.Errorf("excludedAttributes emails,name: %v", m)
		}
	}
	if r.body["totalResults"] != float64(4) {
		t.Errorf("no filter: totalResults %v", r.body["totalResults"])
	}
	r = h.mustStatus(search("/Groups/.search", `{"schemas":["`+SchemaSearchRequest+`"],"filter":"displayName eq \"staff\""}`), 200)
	if got := names(t, r); !slices.Equal(got, []string{"Staff"}) {
		t.Errorf("groups: %v", got)
	}
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		scimType                 string
	}{
		{"no schemas", "POST", "/Users/.search", `{"filter":"userName eq \"a\""}`, 400, "invalidSyntax"},
		{"wrong schema", "POST", "/Users/.search", `{"schemas":["` + SchemaPatchOp + `"]}`, 400, "invalidSyntax"},
		{"bad filter", "POST", "/Users/.search", `{"schemas":["` + SchemaSearchRequest + `"],"filter":"userName eq"}`, 400, "invalidFilter"},
		{"filter type", "POST", "/Users/.search", `{"schemas":["` + SchemaSearchRequest + `"],"filter":"active gt true"}`, 400, "invalidFilter"},
		{"count a string", "POST", "/Users/.search", `{"schemas":["` + SchemaSearchRequest + `"],"count":"2"}`, 400, "invalidValue"},
		{"attributes not a list", "POST", "/Users/.search", `{"schemas":["` + SchemaSearchRequest + `"],"attributes":{}}`, 400, "invalidValue"},
		{"both projections", "POST", "/Users/.search", `{"schemas":["` + SchemaSearchRequest + `"],"attributes":["a"],"excludedAttributes":["b"]}`, 400, "invalidValue"},
		{"not JSON", "POST", "/Groups/.search", `{`, 400, "invalidSyntax"},
		{"GET .search", "GET", "/Users/.search", "", 405, ""},
		{"root", "POST", "/.search", `{"schemas":["` + SchemaSearchRequest + `"]}`, 400, "tooMany"},
	} {
		t.Run(tc.name, func(t *testing.T) { assertSCIMError(t, h.req(tc.method, tc.path, tc.body), tc.status, tc.scimType) })
	}
}
