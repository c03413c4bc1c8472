package status

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// fakeView is the default organization's directory view as the metrics
// read it.
type fakeView struct{ c DirectoryCounts }

func (v fakeView) Counts() (int, int, int)  { return v.c.Active, v.c.Inactive, v.c.Groups }
func (v fakeView) Seq() int64               { return v.c.AppliedSeq }
func (v fakeView) LastEventTime() time.Time { return v.c.LastEvent }

// The Directory and Sync health sections follow the organization filter:
// the filtered organization's view's counts, its events in the log and its
// SCIM service's token; unfiltered, the default organization's view (by
// the metrics), every organization's events and the default's token.
func TestHandler_DirectoryAndSyncFollowTheOrganizationFilter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	// In this order: the log's newest user.created is acme's.
	for _, ou := range [][2]string{{"", "d-alice"}, {"acme", "a-anna"}, {"acme", "a-bob"}} {
		org, id := ou[0], ou[1]
		u := &store.User{ID: id, UserName: id, Active: true, Version: 1,
			Created: testNow.Add(-time.Hour), LastModified: testNow.Add(-time.Hour), ValidAfter: testNow.Add(-time.Hour)}
		if _, err := st.ForOrg(org).CreateUser(ctx, u, "token-of-"+store.OrgOrDefault(org)); err != nil {
			t.Fatal(err)
		}
	}
	views := map[string]DirectoryCounts{
		"default": {Active: 7, Inactive: 1, Groups: 3, AppliedSeq: 3, LastEvent: testNow.Add(-90 * time.Second)},
		"acme":    {Active: 2, Inactive: 5, Groups: 4, AppliedSeq: 3, LastEvent: testNow.Add(-30 * time.Minute)},
	}
	m := metrics.New()
	m.WatchDirectory(fakeView{views["default"]})
	h := New(Options{Gatherer: m.Gatherer(), Directory: st, Events: st, Organizations: orgsSource,
		DirectoryCountsOf: func(org string) (DirectoryCounts, bool) { c, ok := views[org]; return c, ok },
		LastToken: func(org string) (string, time.Time, bool) {
			if _, ok := views[org]; !ok {
				return "", time.Time{}, false
			}
			return "label-of-" + org, testNow.Add(-time.Minute), true
		},
		Now: func() time.Time { return testNow }})

	type want struct{ active, inactive, groups, lastEvent, events, token, actors, of string }
	for target, w := range map[string]want{
		"/":                      {"7", "1", "3", age(testNow, views["default"].LastEvent), "3", "label-of-default", "token-of-acme", ""},
		"/?organization=default": {"7", "1", "3", age(testNow, views["default"].LastEvent), "1", "label-of-default", "token-of-default", "default"},
		"/?organization=acme":    {"2", "5", "4", age(testNow, views["acme"].LastEvent), "2", "label-of-acme", "token-of-acme", "acme"},
		"/?organization=globex":  {absent, absent, absent, absent, "0", "none since this replica started", "", "globex"},
	} {
		_, _, body := get(t, h, target)
		got := want{cell(t, body, "users-active"), cell(t, body, "users-inactive"), cell(t, body, "groups"), "",
			cell(t, body, "events-per-hour"), cell(t, body, "scim-token"), "", ""}
		if _, rest, ok := strings.Cut(body, `id="applied-seq">`); ok {
			_, rest, _ = strings.Cut(rest, "</span>, ")
			got.lastEvent, _, _ = strings.Cut(rest, "<")
		}
		last, _, _ := strings.Cut(body[strings.Index(body, `id="last-events"`):], "</table>")
		for _, a := range []string{"token-of-default", "token-of-acme"} {
			if strings.Contains(last, a) {
				got.actors = strings.TrimSpace(got.actors + " " + a)
			}
		}
		for _, label := range []string{"Events in the last hour", "Token in use", "Users active / inactive", "Groups", "Last event applied here"} {
			named := strings.Contains(body, label+" (organization "+w.of+")")
			if named != (w.of != "") {
				t.Errorf("%s: %q names organization %q: %v", target, label, w.of, named)
			}
		}
		got.of = w.of
		if got != w {
			t.Errorf("%s:\n got %+v\nwant %+v", target, got, w)
		}
	}
}
