package scimsync

import (
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

// bulk sends a BulkRequest of ops (JSON objects) and returns the answer.
func (h *scimHarness) bulk(failOnErrors string, ops ...string) scimResp {
	h.t.Helper()
	body := `{"schemas":["` + SchemaBulkRequest + `"],` + failOnErrors + `"Operations":[` + strings.Join(ops, ",") + `]}`
	return h.req("POST", "/Bulk", body)
}

// bulkOps checks the BulkResponse envelope and returns its operations.
func bulkOps(t *testing.T, r scimResp) []map[string]any {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("bulk status %d, want 200: %s", r.status, r.raw)
	}
	if s, _ := r.body["schemas"].([]any); len(s) != 1 || s[0] != SchemaBulkResponse {
		t.Errorf("schemas %v, want [%s]", r.body["schemas"], SchemaBulkResponse)
	}
	list, _ := r.body["Operations"].([]any)
	out := make([]map[string]any, len(list))
	for i, v := range list {
		out[i] = v.(map[string]any)
	}
	return out
}

// wantOpError checks a failed operation's status and its RFC 7644 §3.12 body.
func wantOpError(t *testing.T, op map[string]any, status int, scimType string) {
	t.Helper()
	if op["status"] != fmt.Sprint(status) {
		t.Fatalf("operation status %v, want %d: %v", op["status"], status, op)
	}
	resp, _ := op["response"].(map[string]any)
	if resp == nil {
		t.Fatalf("failed operation has no response body: %v", op)
	}
	if s, _ := resp["schemas"].([]any); len(s) != 1 || s[0] != SchemaError {
		t.Errorf("response schemas %v", resp["schemas"])
	}
	if resp["status"] != fmt.Sprint(status) || resp["detail"] == "" {
		t.Errorf("response %v, want status %q and a detail", resp, fmt.Sprint(status))
	}
	if scimType != "" && resp["scimType"] != scimType {
		t.Errorf("response scimType %v, want %s", resp["scimType"], scimType)
	}
}

func postUserOp(bulkID, userName string) string {
	return `{"method":"POST","path":"/Users","bulkId":"` + bulkID + `","data":` + userBody(userName, true) + `}`
}

func TestSCIM_RFC7644_3_7_BulkOperations(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	bob := h.createUser("bob@example.com")
	carol := h.createUser("carol@example.com")
	deactivate := `{"schemas":["` + SchemaPatchOp + `"],"Operations":[{"op":"replace","path":"active","value":false}]}`
	ops := bulkOps(t, h.bulk("",
		postUserOp("a1", "alice@example.com"),
		`{"method":"PUT","path":"/Users/`+bob+`","version":"W/\"1\"","data":`+
			strings.Replace(userBody("bob@example.com", true), `"A B"`, `"Bob B"`, 1)+`}`,
		`{"method":"patch","path":"/Users/`+carol+`","data":`+deactivate+`}`,
		`{"method":"DELETE","path":"/Users/`+bob+`","version":"W/\"2\""}`,
	))
	if len(ops) != 4 {
		t.Fatalf("%d operations answered, want 4", len(ops))
	}
	want := []struct{ method, status, version, location string }{
		{"POST", "201", `W/"1"`, ""},
		{"PUT", "200", `W/"2"`, "https://app.example.com/scim/v2/Users/" + bob},
		{"PATCH", "200", `W/"2"`, "https://app.example.com/scim/v2/Users/" + carol},
		{"DELETE", "204", "", "https://app.example.com/scim/v2/Users/" + bob},
	}
	for i, w := range want {
		op := ops[i]
		if op["method"] != w.method || op["status"] != w.status || fmt.Sprint(op["version"]) != w.version && w.version != "" {
			t.Errorf("operation %d: %v, want method %s status %s version %s", i, op, w.method, w.status, w.version)
		}
		if w.location != "" && op["location"] != w.location {
			t.Errorf("operation %d: location %v, want %s", i, op["location"], w.location)
		}
		if op["response"] != nil {
			t.Errorf("operation %d succeeded but carries a response: %v", i, op["response"])
		}
	}
	// The POST's location names the new user, who is there; the bulkId is echoed.
	loc, _ := ops[0]["location"].(string)
	id := loc[strings.LastIndexByte(loc, '/')+1:]
	if !strings.HasPrefix(loc, "https://app.example.com/scim/v2/Users/") || ops[0]["bulkId"] != "a1" {
		t.Errorf("POST result %v", ops[0])
	}
	if got := h.mustStatus(h.req("GET", "/Users/"+id, ""), 200); got.body["userName"] != "alice@example.com" {
		t.Errorf("created user %v", got.body)
	}
	// The same gate effects and audit lines as the single requests.
	if st := h.standing("carol@example.com").State; st != identity.StateInactive {
		t.Errorf("carol after a Bulk PATCH active=false: %v, want inactive", st)
	}
	if st := h.standing("bob@example.com").State; st != identity.StateDeleted {
		t.Errorf("bob after a Bulk DELETE: %v, want deleted", st)
	}
	if n := h.logs.FilterField(zap.String("event", "user_deactivated")).Len(); n != 1 {
		t.Errorf("%d user_deactivated audit lines, want 1", n)
	}
	if n := h.logs.FilterField(zap.String("event", "user_deleted")).Len(); n != 1 {
		t.Errorf("%d user_deleted audit lines, want 1", n)
	}
}

// A failed operation changes nothing; those before and after it stand
// (all-or-nothing per operation, not per request), and the answer carries
// the error body the single request would have had.
func TestSCIM_RFC7644_3_7_AllOrNothingPerOperation(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	bob := h.createUser("bob@example.com")
	seq := h.dir.Seq()
	// The second PATCH operation fails (immutable id), so the first
	// (displayName) must not be applied either.
	badPatch := `{"schemas":["` + SchemaPatchOp + `"],"Operations":[` +
		`{"op":"replace","path":"displayName","value":"Changed"},{"op":"replace","path":"id","value":"x"}]}`
	ops := bulkOps(t, h.bulk("",
		postUserOp("a", "alice@example.com"),
		`{"method":"PATCH","path":"/Users/`+bob+`","data":`+badPatch+`}`,
		`{"method":"PUT","path":"/Users/`+bob+`","version":"W/\"7\"","data":`+userBody("bob@example.com", false)+`}`,
		postUserOp("b", "alice@example.com"), // userName taken by the first
		postUserOp("c", "dave@example.com"),
	))
	if len(ops) != 5 {
		t.Fatalf("%d operations answered, want 5: %v", len(ops), ops)
	}
	if ops[0]["status"] != "201" || ops[4]["status"] != "201" {
		t.Errorf("the good POSTs: %v, %v", ops[0], ops[4])
	}
	wantOpError(t, ops[1], 400, "mutability")
	wantOpError(t, ops[2], 412, "")
	wantOpError(t, ops[3], 409, "uniqueness")
	if ops[1]["location"] != "https://app.example.com/scim/v2/Users/"+bob {
		t.Errorf("a failed PATCH keeps its location: %v", ops[1])
	}
	if _, ok := ops[3]["location"]; ok {
		t.Errorf("a failed POST has no location: %v", ops[3])
	}
	got := h.mustStatus(h.req("GET", "/Users/"+bob, ""), 200)
	if got.body["displayName"] != "A B" || got.body["active"] != true {
		t.Errorf("bob after failed operations: %v", got.body)
	}
	if d := h.dir.Seq() - seq; d != 2 {
		t.Errorf("%d events written, want 2 (the two creates)", d)
	}
}

func TestSCIM_RFC7644_3_7_2_BulkIdReference(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	group := func(bulkID, name string, members ...string) string {
		var m []string
		for _, v := range members {
			m = append(m, `{"value":"`+v+`"}`)
		}
		return `{"method":"POST","path":"/Groups","bulkId":"` + bulkID + `","data":{"schemas":["` + SchemaGroup +
			`"],"displayName":"` + name + `","members":[` + strings.Join(m, ",") + `]}}`
	}
	deactivate := `{"schemas":["` + SchemaPatchOp + `"],"Operations":[{"op":"replace","path":"active","value":false}]}`
	ops := bulkOps(t, h.bulk("",
		// A group naming a user created further on: it waits for that POST.
		group("g1", "Tour Guides", "bulkId:u1", "bulkId:u2"),
		postUserOp("u1", "alice@example.com"),
		postUserOp("u2", "bob@example.com"),
		// The path may name a new resource too.
		`{"method":"PATCH","path":"/Users/bulkId:u2","data":`+deactivate+`}`,
		group("g2", "Nobody", "bulkId:nope"),            // no such bulkId
		postUserOp("u3", "alice@example.com"),           // fails: taken
		group("g3", "Late", "bulkId:u3"),                // names the failed POST
		`{"method":"DELETE","path":"/Users/bulkId:u3"}`, // likewise, by its path
		group("g4", "Self", "bulkId:g4"),                // names itself
	))
	byID := map[string]map[string]any{}
	for _, op := range ops {
		byID[fmt.Sprint(op["bulkId"])+" "+fmt.Sprint(op["method"])] = op
	}
	if len(ops) != 9 {
		t.Fatalf("%d operations answered, want 9: %v", len(ops), ops)
	}
	g1 := byID["g1 POST"]
	if g1["status"] != "201" {
		t.Fatalf("group with forward references: %v", g1)
	}
	loc := func(op map[string]any) string {
		l, _ := op["location"].(string)
		return l[strings.LastIndexByte(l, '/')+1:]
	}
	u1, u2 := loc(byID["u1 POST"]), loc(byID["u2 POST"])
	got := h.mustStatus(h.req("GET", "/Groups/"+loc(g1), ""), 200)
	members, _ := got.body["members"].([]any)
	var ids []string
	for _, m := range members {
		ids = append(ids, m.(map[string]any)["value"].(string))
	}
	if strings.Join(ids, ",") != u1+","+u2 && strings.Join(ids, ",") != u2+","+u1 {
		t.Errorf("group members %v, want the new users %s and %s", ids, u1, u2)
	}
	if p := ops[3]; p["status"] != "200" || p["location"] != "https://app.example.com/scim/v2/Users/"+u2 {
		t.Errorf("PATCH /Users/bulkId:u2: %v", p)
	}
	if st := h.standing("bob@example.com").State; st != identity.StateInactive {
		t.Errorf("bob after PATCH through his bulkId: %v", st)
	}
	if sg := h.standing("alice@example.com"); len(sg.Groups) != 1 || sg.Groups[0] != "Tour Guides" {
		t.Errorf("alice's groups in the view: %v", sg.Groups)
	}
	wantOpError(t, byID["g2 POST"], 409, "invalidValue")
	wantOpError(t, byID["u3 POST"], 409, "uniqueness")
	wantOpError(t, byID["g3 POST"], 409, "invalidValue")
	wantOpError(t, ops[7], 409, "invalidValue")
	wantOpError(t, byID["g4 POST"], 409, "invalidValue")
	// Request order in the answer, though g1 ran after u1 and u2.
	if ops[0]["bulkId"] != "g1" || ops[1]["bulkId"] != "u1" {
		t.Errorf("answer order: %v, %v", ops[0]["bulkId"], ops[1]["bulkId"])
	}
}

// Circular references cannot be resolved here (a group's members are
// users, who reference nothing): every operation of the cycle fails with
// 409, as §3.7.1 allows, and creates nothing.
func TestSCIM_RFC7644_3_7_1_CircularReferences(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	seq := h.dir.Seq()
	group := func(bulkID, member string) string {
		return `{"method":"POST","path":"/Groups","bulkId":"` + bulkID + `","data":{"schemas":["` + SchemaGroup +
			`"],"displayName":"G ` + bulkID + `","members":[{"value":"bulkId:` + member + `","type":"Group"}]}}`
	}
	ops := bulkOps(t, h.bulk("", group("qwerty", "ytrewq"), group("ytrewq", "qwerty"), postUserOp("u", "x@example.com")))
	if len(ops) != 3 {
		t.Fatalf("%d operations answered: %v", len(ops), ops)
	}
	wantOpError(t, ops[0], 409, "invalidValue")
	wantOpError(t, ops[1], 409, "invalidValue")
	if ops[2]["status"] != "201" {
		t.Errorf("the unrelated POST: %v", ops[2])
	}
	if d := h.dir.Seq() - seq; d != 1 {
		t.Errorf("%d events, want 1", d)
	}
}

func TestSCIM_RFC7644_3_7_3_FailOnErrors(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	ops := bulkOps(t, h.bulk(`"failOnErrors":1,`,
		postUserOp("a", "alice@example.com"),
		`{"method":"DELETE","path":"/Users/no-such-user"}`,
		postUserOp("b", "bob@example.com"),
	))
	if len(ops) != 2 {
		t.Fatalf("failOnErrors 1: %d operations answered, want 2 (stop at the first error): %v", len(ops), ops)
	}
	wantOpError(t, ops[1], 404, "")
	if h.standing("bob@example.com").State != identity.StateUnknown {
		t.Error("an operation after failOnErrors was reached ran")
	}
	// failOnErrors 2 goes on past one error; without it, past all.
	ops = bulkOps(t, h.bulk(`"failOnErrors":2,`,
		`{"method":"DELETE","path":"/Users/no-such-user"}`, postUserOp("b", "bob@example.com"),
		`{"method":"DELETE","path":"/Users/no-such-user"}`, postUserOp("c", "carol@example.com")))
	if len(ops) != 3 {
		t.Errorf("failOnErrors 2: %d operations answered, want 3", len(ops))
	}
	ops = bulkOps(t, h.bulk("",
		`{"method":"DELETE","path":"/Users/x1"}`, `{"method":"DELETE","path":"/Users/x2"}`, postUserOp("c", "carol@example.com")))
	if len(ops) != 3 || ops[2]["status"] != "201" {
		t.Errorf("without failOnErrors: %v", ops)
	}
	assertSCIMError(t, h.bulk(`"failOnErrors":0,`, postUserOp("d", "d@example.com")), 400, "invalidValue")
}

func TestSCIM_RFC7644_3_7_4_Limits(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	spc := h.mustStatus(h.req("GET", "/ServiceProviderConfig", ""), 200)
	if b, _ := spc.body["bulk"].(map[string]any); b["supported"] != true || b["maxOperations"] != float64(20) ||
		b["maxPayloadSize"] != float64(64<<10) {
		t.Errorf("bulk in /ServiceProviderConfig: %v", spc.body["bulk"])
	}
	var many []string
	for i := range 21 {
		many = append(many, postUserOp(fmt.Sprint(i), fmt.Sprintf("u%d@example.com", i)))
	}
	r := h.bulk("", many...)
	assertSCIMError(t, r, 413, "")
	if r.body["detail"] != "The number of operations exceeds the maxOperations (20)." {
		t.Errorf("detail %q does not name the limit", r.body["detail"])
	}
	big := `{"method":"POST","path":"/Users","bulkId":"x","data":{"userName":"x@example.com","displayName":"` +
		strings.Repeat("x", 65<<10) + `"}}`
	r = h.bulk("", big)
	assertSCIMError(t, r, 413, "")
	if r.body["detail"] != "The size of the bulk operation exceeds the maxPayloadSize (65536)." {
		t.Errorf("detail %q does not name the limit", r.body["detail"])
	}
	if n := h.dir.Seq(); n != 0 {
		t.Errorf("a refused request wrote %d events", n)
	}
}

// What is wrong with the request as a whole is a 400 for it; what is wrong
// with one operation is answered in that operation's place.
func TestSCIM_RFC7644_3_7_BadRequests(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	for name, body := range map[string]string{
		"no schemas":        `{"Operations":[]}`,
		"no Operations":     `{"schemas":["` + SchemaBulkRequest + `"]}`,
		"Operations object": `{"schemas":["` + SchemaBulkRequest + `"],"Operations":{}}`,
		"operation string":  `{"schemas":["` + SchemaBulkRequest + `"],"Operations":["x"]}`,
		"not JSON":          `{"schemas":`,
	} {
		t.Run(name, func(t *testing.T) { assertSCIMError(t, h.req("POST", "/Bulk", body), 400, "invalidSyntax") })
	}
	assertSCIMError(t, h.bulk("", postUserOp("a", "a@example.com"), postUserOp("a", "b@example.com")), 400, "invalidValue")
	if r := h.req("GET", "/Bulk", ""); r.status != 405 {
		t.Errorf("GET /Bulk: %d", r.status)
	}
	ops := bulkOps(t, h.bulk("",
		`{"method":"POST","path":"/Users","data":`+userBody("a@example.com", true)+`}`, // no bulkId
		`{"method":"GET","path":"/Users"}`,
		`{"method":"POST","path":"/Schemas","bulkId":"s","data":{}}`,
		`{"method":"POST","path":"/Users/x","bulkId":"t","data":{}}`,
		`{"method":"PUT","path":"/Users","data":{}}`,
		`{"method":"PATCH","path":"/Users/x"}`,
		`{"method":"DELETE","path":"/Users/x/y"}`,
		`{"method":"POST","path":"/Users","bulkId":"v","data":{"userName":7}}`,
	))
	if len(ops) != 8 {
		t.Fatalf("%d operations answered: %v", len(ops), ops)
	}
	for i, scimType := range []string{"invalidSyntax", "invalidValue", "invalidValue", "invalidValue", "invalidValue",
		"invalidSyntax", "invalidValue", ""} {
		t.Run(fmt.Sprint("operation ", i), func(t *testing.T) { wantOpError(t, ops[i], 400, scimType) })
	}
	// U+0000 anywhere is refused for the whole request, as in a single one.
	assertSCIMError(t, h.bulk("", `{"method":"POST","path":"/Users","bulkId":"u","data":{"userName":"u\u0000@example.com"}}`),
		400, "invalidValue")
	if h.dir.Seq() != 0 {
		t.Errorf("bad operations wrote events")
	}
}
