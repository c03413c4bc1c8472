package metrics

import (
	"os"
	"regexp"
	"slices"
	"testing"
	"time"
)

// TestREADME_ReferenceListsEveryMetric keeps the README's metrics reference
// and the registry in step: every portcullis_* name the registry exports
// has a row, and every row names a metric that exists.
func TestREADME_ReferenceListsEveryMetric(t *testing.T) {
	text, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(portcullis_[a-z_]+)` \\|").FindAllStringSubmatch(string(text), -1) {
		documented = append(documented, m[1])
	}
	if len(documented) == 0 {
		t.Fatal("README has no metrics reference rows")
	}
	m := New()
	m.WatchMetadata(func(fn func(string, time.Time)) { fn("default", time.Now()) })
	m.WatchDirectory(&fakeView{})
	m.WatchFreshness(time.Now)
	m.SCIMRequest("Users", "get", 200) // vectors without children are not gathered
	m.DirectoryEvent("user.created")
	m.OrganizationServed("default")
	m.PropagationLag(0)
	m.WebhookEndpoint("http://app/hooks")
	m.WebhookDelivered("http://app/hooks", time.Second)
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var exported []string
	for _, f := range fams {
		if n := f.GetName(); len(n) > 11 && n[:11] == "portcullis_" {
			exported = append(exported, n)
		}
	}
	slices.Sort(exported)
	slices.Sort(documented)
	for _, n := range exported {
		if !slices.Contains(documented, n) {
			t.Errorf("%s is exported but has no row in the README's metrics reference", n)
		}
	}
	for _, n := range documented {
		if !slices.Contains(exported, n) {
			t.Errorf("the README documents %s, which is not exported", n)
		}
	}
}
