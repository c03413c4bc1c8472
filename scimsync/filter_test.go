package scimsync

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// loadResources reads the sample users and groups the filter tests run on.
func loadResources(t testing.TB) []map[string]any {
	t.Helper()
	data, err := os.ReadFile("testdata/filter/resources.json")
	if err != nil {
		t.Fatalf("load sample resources: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var res []map[string]any
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("decode sample resources: %v", err)
	}
	if len(res) == 0 {
		t.Fatal("no sample resources")
	}
	return res
}

// loadInvalidFilters reads the negative corpus, one filter a line.
func loadInvalidFilters(t testing.TB) []string {
	t.Helper()
	f, err := os.Open("testdata/filter/invalid.txt")
	if err != nil {
		t.Fatalf("load invalid filters: %v", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read invalid filters: %v", err)
	}
	// What a text file cannot hold conveniently.
	out = append(out,
		"",
		"   \t",
		"userName eq \"tab\traw\"", // control characters must be escaped
		strings.Repeat("(", maxFilterDepth+1)+"userName pr"+strings.Repeat(")", maxFilterDepth+1),
		strings.Repeat("not ", maxFilterDepth+1)+"userName pr",
		"emails["+strings.Repeat("(", maxFilterDepth)+"value pr"+strings.Repeat(")", maxFilterDepth)+"]",
		`userName eq "`+strings.Repeat("x", maxFilterLen)+`"`,
		"userName eq \"\xff\" and \x00",
	)
	return out
}

// evalCases are filters with the ids of the sample resources they match.
var evalCases = []struct {
	name   string
	filter string
	want   []string
}{
	// What Okta and Entra send (their SCIM provisioning docs).
	{"okta userName eq", `userName eq "alice@example.com"`, []string{"u1"}},
	{"okta externalId eq", `externalId eq "abc"`, []string{"u1"}},
	{"okta group displayName eq", `displayName eq "Engineering"`, []string{"g1"}},
	{"entra work email value", `emails[type eq "work"].value eq "a@b.c"`, []string{"u3"}},
	{"entra members value filter", `members[value eq "u1"]`, []string{"g1"}},
	{"entra id and member", `id eq "g1" and members[value eq "u2"]`, []string{"g1"}},
	{"entra id and member absent", `id eq "g3" and members[value eq "u1"]`, nil},
	{"entra validator test user", `userName eq "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081"`, []string{"u3"}},

	{"7643 2.1 attribute names are case-insensitive", `USERNAME EQ "alice@example.com"`, []string{"u1"}},
	{"7643 2.1 operator keywords are case-insensitive", `userName Eq "alice@example.com" AnD active eQ TRUE`, []string{"u1"}},
	{"7643 4.1.1 userName compares case-insensitively", `userName eq "BOB@example.ORG"`, []string{"u2"}},
	{"7643 3.1 externalId is caseExact", `externalId eq "ABC"`, []string{"u2"}},
	{"7643 3.1 id is caseExact", `id eq "U1"`, nil},
	{"7643 3.1 meta.version is caseExact", `meta.version eq "W/\"3\""`, []string{"u1"}},
	{"7643 3.1 meta.version is caseExact lower", `meta.version eq "w/\"3\""`, nil},
	{"7643 8.7.1 members.value is caseExact", `members[value eq "U1"]`, nil},
	{"7643 2.1 displayName is not caseExact", `displayName eq "ENGINEERING"`, []string{"g1"}},

	{"7644 3.4.2.2 ne", `userName ne "alice@example.com"`, []string{"u2", "u3", "g1", "g2", "g3"}},
	{"7644 3.4.2.2 co", `userName co "EXAMPLE"`, []string{"u1", "u2"}},
	{"7644 3.4.2.2 sw", `displayName sw "eng"`, []string{"g1", "g3"}},
	{"7644 3.4.2.2 ew", `userName ew ".ORG"`, []string{"u2"}},
	{"7644 3.4.2.2 gt string", `userName gt "b"`, []string{"u2", "u3"}},
	{"7644 3.4.2.2 le string", `userName le "alice@example.com"`, []string{"u1"}},
	{"7644 3.4.2.2 pr", `title pr`, []string{"u1"}},
	{"7644 3.4.2.2 pr null is absent", `nickName pr`, []string{"u2"}},
	{"7644 3.4.2.2 pr empty list", `members pr`, []string{"g1", "g3"}},
	{"7644 3.4.2.2 eq null", `nickName eq null`, []string{"u1", "u3", "g1", "g2", "g3"}},
	{"7644 3.4.2.2 ne null", `nickName ne null`, []string{"u2"}},
	{"7644 3.4.2.2 gt null never matches", `nickName gt null`, nil},

	{"7644 3.4.2.2 gt dateTime", `meta.lastModified gt "2024-06-01T12:00:00Z"`, []string{"u1", "u2"}},
	{"7644 3.4.2.2 eq dateTime across offsets", `meta.lastModified eq "2024-06-01T12:30:00Z"`, []string{"u1", "u2"}},
	{"7644 3.4.2.2 lt dateTime", `meta.created lt "2024-01-02T10:00:00.001Z"`, []string{"u1", "g1"}},
	{"7644 3.4.2.2 ge dateTime fraction", `meta.created ge "2024-03-04T08:00:00.5Z"`, []string{"u2", "u3"}},

	{"7644 3.4.2.2 gt integer", `loginCount gt 10`, []string{"u1"}},
	{"7644 3.4.2.2 le integer", `loginCount le 7`, []string{"u2"}},
	{"7644 3.4.2.2 eq decimal", `score eq 3.50`, []string{"u1"}},
	{"7644 3.4.2.2 gt exponent", `score gt -1e2`, []string{"u1", "u2"}},
	{"7644 3.4.2.2 number against string", `userName gt 1`, nil},

	{"7644 3.4.2.2 eq boolean", `active eq true`, []string{"u1", "u3"}},
	{"7644 3.4.2.2 eq false", `active eq false`, []string{"u2"}},
	{"7644 3.4.2.2 ne boolean matches absent", `active ne true`, []string{"u2", "g1", "g2", "g3"}},
	{"7644 3.4.2.2 gt boolean never matches", `active gt false`, nil},

	{"7644 3.4.2.2 precedence and over or", `userName eq "bob@example.org" or userName eq "alice@example.com" and active eq false`, []string{"u2"}},
	{"7644 3.4.2.2 precedence and over or left", `active eq false or userName sw "alice" and title eq "Engineer"`, []string{"u1", "u2"}},
	{"7644 3.4.2.2 grouping", `(userName sw "alice" or userName sw "bob") and active eq false`, []string{"u2"}},
	{"7644 3.4.2.2 not", `not (active eq true)`, []string{"u2", "g1", "g2", "g3"}},
	{"7644 3.4.2.2 not binds tighter than and", `not (userName pr) and displayName sw "Eng"`, []string{"g1", "g3"}},
	{"7644 3.4.2.2 not without parentheses", `not userName pr`, []string{"g1", "g2", "g3"}},
	{"7644 3.4.2.2 nested groups", `((userName eq "alice@example.com") or ((displayName eq "Sales")))`, []string{"u1", "g2"}},

	{"7644 3.4.2.2 sub-attribute", `name.familyName eq "liddell"`, []string{"u1"}},
	{"7644 3.4.2.2 multi-valued any element", `emails.value eq "alice@home.example"`, []string{"u1"}},
	{"7644 3.4.2.2 multi-valued implicit value", `emails co "home.example"`, []string{"u1"}},
	{"7644 3.4.2.2 members implicit value", `members eq "u1"`, []string{"g1"}},
	{"7644 3.4.2.2 members.value", `members.value eq "u3"`, []string{"g3"}},
	{"7644 3.4.2.2 value filter and", `emails[type eq "work" and primary eq true]`, []string{"u1"}},
	{"7644 3.4.2.2 value filter same element", `emails[type eq "home" and value ew "example.com"]`, nil},
	{"7644 3.4.2.2 value filter", `emails[type eq "work"]`, []string{"u1", "u2", "u3"}},
	{"7644 3.4.2.2 value filter then pr", `emails[type eq "home"].value pr`, []string{"u1"}},
	{"7644 3.4.2.2 value filter not", `emails[not (type eq "work")]`, []string{"u1"}},
	{"7644 3.4.2.2 value filter on a simple list", `schemas[value ew ":enterprise:2.0:User"]`, []string{"u1"}},

	{"7644 3.10 extension URN attribute", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "engineering"`, []string{"u1"}},
	{"7644 3.10 extension URN sub-attribute", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "u3"`, []string{"u1"}},
	{"7644 3.10 extension URN object pr", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User pr`, []string{"u1"}},
	{"7644 3.10 core URN prefix", `urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob@example.org"`, []string{"u2"}},
	{"7644 3.10 core URN prefix any case", `URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:Group:displayName eq "sales"`, []string{"g2"}},

	{"7644 3.4.2.2 string escapes", `displayName eq "Carol \"CJ\" Back\\slash Caf\u00e9"`, []string{"u3"}},
	{"7644 3.4.2.2 string escape newline", `displayName eq "a\nb"`, nil},
	{"7644 3.4.2.2 extra whitespace", "  userName \t eq   \"bob@example.org\"  ", []string{"u2"}},
}

func TestParseFilter_Evaluates(t *testing.T) {
	t.Parallel()
	res := loadResources(t)
	for _, tc := range evalCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := ParseFilter(tc.filter)
			if err != nil {
				t.Fatalf("ParseFilter(%q): %v", tc.filter, err)
			}
			var got []string
			for _, r := range res {
				if f.Matches(r) {
					got = append(got, r["id"].(string))
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s matched (-want +got):\n%s", tc.filter, diff)
			}
		})
	}
}

func TestParseFilter_CanonicalString(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"7644 3.4.2.2 operators lowercase, names kept", `USERNAME EQ "x"`, `USERNAME eq "x"`},
		{"7644 3.4.2.2 precedence needs no parentheses", `a eq "x" or b eq "y" and c eq "z"`, `a eq "x" or b eq "y" and c eq "z"`},
		{"7644 3.4.2.2 grouping kept where needed", `(a eq "x" or b eq "y") and c eq "z"`, `(a eq "x" or b eq "y") and c eq "z"`},
		{"7644 3.4.2.2 right-nested or", `a pr or (b pr or c pr)`, `a pr or (b pr or c pr)`},
		{"7644 3.4.2.2 left-nested or", `(a pr or b pr) or c pr`, `a pr or b pr or c pr`},
		{"7644 3.4.2.2 redundant parentheses dropped", `((a pr))`, `a pr`},
		{"7644 3.4.2.2 not", `NOT(a pr)`, `not (a pr)`},
		{"7644 3.4.2.2 value filter", `emails[type eq "work" and value co "@x"].value eq "y"`, `emails[type eq "work" and value co "@x"].value eq "y"`},
		{"7644 3.4.2.2 escapes canonical", `a eq "\u00e9\n\/<"`, `a eq "é\n/<"`},
		{"7644 3.4.2.2 number kept as written", `a eq -1.50e3`, `a eq -1.50e3`},
		{"7644 3.4.2.2 literals lowercase", `a EQ TRUE or b ne False or c eq NULL`, `a eq true or b ne false or c eq null`},
		{"7644 3.10 core URN dropped", `urn:ietf:params:scim:schemas:core:2.0:User:name.givenName sw "A"`, `name.givenName sw "A"`},
		{"7644 3.10 schema-shaped URN names the object", `urn:acme:scim:1.0:User pr`, `urn:acme:scim:1.0:User pr`},
		{"7644 3.10 extension URN kept", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "b"`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := ParseFilter(tc.in)
			if err != nil {
				t.Fatalf("ParseFilter(%q): %v", tc.in, err)
			}
			if got := f.String(); got != tc.want {
				t.Errorf("String() = %s, want %s", got, tc.want)
			}
			g, err := ParseFilter(f.String())
			if err != nil {
				t.Fatalf("re-parse %q: %v", f.String(), err)
			}
			if g.String() != f.String() {
				t.Errorf("re-parsed String() = %s, want %s", g.String(), f.String())
			}
		})
	}
}

func TestParseFilter_RoundTripsEvaluationTable(t *testing.T) {
	t.Parallel()
	res := loadResources(t)
	for _, tc := range evalCases {
		f, err := ParseFilter(tc.filter)
		if err != nil {
			t.Fatalf("ParseFilter(%q): %v", tc.filter, err)
		}
		g, err := ParseFilter(f.String())
		if err != nil {
			t.Fatalf("re-parse %q (from %q): %v", f.String(), tc.filter, err)
		}
		for _, r := range res {
			if f.Matches(r) != g.Matches(r) {
				t.Errorf("%q and its String %q disagree on %v", tc.filter, f.String(), r["id"])
			}
		}
	}
}

func TestEqualityOn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, filter string
		attr, value  string
		ok           bool
	}{
		{"okta userName", `userName eq "alice@example.com"`, "username", "alice@example.com", true},
		{"okta externalId", `externalId eq "abc"`, "externalid", "abc", true},
		{"okta displayName", `displayName eq "Engineering"`, "displayname", "Engineering", true},
		{"value keeps its case", `USERNAME EQ "Alice"`, "username", "Alice", true},
		{"sub-attribute", `emails.value eq "a@b.c"`, "emails.value", "a@b.c", true},
		{"members value filter", `members[value eq "u1"]`, "members.value", "u1", true},
		{"core URN dropped", `urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"`, "username", "x", true},
		{"extension URN kept", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7"`, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:employeenumber", "7", true},
		{"and", `userName eq "x" and active eq true`, "", "", false},
		{"ne", `userName ne "x"`, "", "", false},
		{"number", `loginCount eq 1`, "", "", false},
		{"not", `not (userName eq "x")`, "", "", false},
		{"entra value filter then", `emails[type eq "work"].value eq "x"`, "", "", false},
		{"value filter with and", `members[value eq "u1" and type eq "User"]`, "", "", false},
		{"co", `userName co "x"`, "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := ParseFilter(tc.filter)
			if err != nil {
				t.Fatalf("ParseFilter(%q): %v", tc.filter, err)
			}
			attr, value, ok := EqualityOn(f)
			if attr != tc.attr || value != tc.value || ok != tc.ok {
				t.Errorf("EqualityOn(%s) = %q, %q, %v; want %q, %q, %v", tc.filter, attr, value, ok, tc.attr, tc.value, tc.ok)
			}
		})
	}
}

func TestParseFilter_RejectsGarbage(t *testing.T) {
	t.Parallel()
	inputs := loadInvalidFilters(t)
	if len(inputs) < 25 {
		t.Fatalf("negative corpus has %d inputs, want at least 25", len(inputs))
	}
	for _, in := range inputs {
		f, err := ParseFilter(in)
		var fe *FilterError
		if !errors.As(err, &fe) {
			t.Errorf("ParseFilter(%.60q) = %v, %v; want a *FilterError", in, f, err)
			continue
		}
		if fe.Pos < 0 || fe.Pos > len(in) || fe.Msg == "" {
			t.Errorf("ParseFilter(%.60q): error %+v has a bad position or no message", in, fe)
		}
	}
}

func TestParseFilter_ErrorPosition(t *testing.T) {
	t.Parallel()
	_, err := ParseFilter(`userName eqq "x"`)
	var fe *FilterError
	if !errors.As(err, &fe) || fe.Pos != 9 {
		t.Fatalf("error = %v, want a *FilterError at offset 9", err)
	}
	if !strings.Contains(fe.Error(), `unknown operator "eqq"`) {
		t.Errorf("Error() = %q, want it to name the operator", fe.Error())
	}
}

func TestParseFilter_AcceptsMaximumNesting(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("(", maxFilterDepth) + "userName pr" + strings.Repeat(")", maxFilterDepth)
	if _, err := ParseFilter(in); err != nil {
		t.Fatalf("%d levels: %v", maxFilterDepth, err)
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, tc := range evalCases {
		f.Add(tc.filter)
	}
	for _, in := range loadInvalidFilters(f) {
		if len(in) < 1024 {
			f.Add(in)
		}
	}
	res := loadResources(f)
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(s)
		if err != nil {
			var fe *FilterError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FilterError", err)
			}
			return
		}
		for _, r := range res {
			flt.Matches(r)
		}
		canon := flt.String()
		if len(canon) > maxFilterLen {
			return // the canonical form can be longer than the input
		}
		again, err := ParseFilter(canon)
		if err != nil {
			t.Fatalf("String() %q of %q does not parse: %v", canon, s, err)
		}
		if again.String() != canon {
			t.Fatalf("String() not stable: %q → %q → %q", s, canon, again.String())
		}
		for _, r := range res {
			if flt.Matches(r) != again.Matches(r) {
				t.Fatalf("%q and its String %q disagree on %v", s, canon, r["id"])
			}
		}
	})
}

func BenchmarkFilterEval(b *testing.B) {
	res := loadResources(b)[0]
	f, err := ParseFilter(`userName eq "x"`)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		f.Matches(res)
	}
}

func TestFilterUses(t *testing.T) {
	for _, tc := range []struct {
		filter string
		want   bool
	}{
		{`groups.value eq "g1"`, true},
		{`GROUPS[value eq "g1"]`, true},
		{`urn:ietf:params:scim:schemas:core:2.0:User:groups.display sw "Eng"`, true},
		{`userName eq "a" or not (groups pr)`, true},
		{`emails[type eq "work"].value eq "a@example.com"`, false},
		{`userName eq "a" and (active eq true or name.givenName sw "b")`, false},
		{`meta.lastModified gt "2025-01-01T00:00:00Z"`, false},
	} {
		f, err := ParseFilter(tc.filter)
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		if got := FilterUses(f, "groups"); got != tc.want {
			t.Errorf("FilterUses(%s, groups) = %v, want %v", tc.filter, got, tc.want)
		}
	}
}
