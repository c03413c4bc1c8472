package webhook_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/portcullis-sso/portcullis/internal/webhook"
	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/sqlite"
)

// The Standard Webhooks Go library is a test-only dependency: the
// receivers here verify every delivery with it, as an app would, so that
// our signing is checked against an implementation we did not write.

func newSecret(t testing.TB) (string, []byte) {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key), key
}

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// received is one delivery a receiver accepted.
type received struct {
	ID, Type, Subject string
	Organization      string
	Data              map[string]any
}

// receiver verifies every request with the Standard Webhooks library and
// accepts it (204) unless fail says otherwise; it keeps what it accepted.
type receiver struct {
	t        *testing.T
	wh       *standardwebhooks.Webhook
	mu       sync.Mutex
	got      []received
	attempts int
	bad      int
	fail     func(attempt int) (status int, retryAfter string) // nil: never
	srv      *httptest.Server
}

func newReceiver(t *testing.T, secret string) *receiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, wh: wh}
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if err := r.wh.Verify(body, req.Header); err != nil {
		r.bad++
		r.t.Errorf("delivery %s does not verify: %v", req.Header.Get("webhook-id"), err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if r.fail != nil {
		if status, ra := r.fail(r.attempts); status != 0 {
			if ra != "" {
				w.Header().Set("Retry-After", ra)
			}
			w.WriteHeader(status)
			return
		}
	}
	var m struct {
		Type         string         `json:"type"`
		Timestamp    string         `json:"timestamp"`
		Organization string         `json:"organization"`
		Data         map[string]any `json:"data"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.Type == "" || m.Timestamp == "" {
		r.t.Errorf("body %s: %v", body, err)
	}
	subject, _ := m.Data["id"].(string)
	if u, ok := m.Data["user"].(map[string]any); ok {
		subject, _ = u["id"].(string)
	}
	r.got = append(r.got, received{ID: req.Header.Get("webhook-id"), Type: m.Type, Subject: subject, Organization: m.Organization, Data: m.Data})
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) accepted() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// waitFor waits until the receiver accepted n deliveries.
func (r *receiver) waitFor(t *testing.T, n int, within time.Duration) []received {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if got := r.accepted(); len(got) >= n {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := r.accepted()
	t.Fatalf("receiver accepted %d deliveries within %s, want %d: %+v", len(got), within, n, got)
	return nil
}

func start(t *testing.T, o webhook.Options) *webhook.Deliverer {
	t.Helper()
	if o.Holder == "" {
		o.Holder = "test"
	}
	if o.MaxAge == 0 {
		o.MaxAge = time.Hour
	}
	o.Poll, o.MinBackoff, o.MaxBackoff = 10*time.Millisecond, 20*time.Millisecond, 100*time.Millisecond
	if o.LeaseTTL == 0 {
		o.LeaseTTL = time.Second
	}
	d := webhook.New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitHolding(t, d)
	return d
}

func waitHolding(t *testing.T, d *webhook.Deliverer) {
	t.Helper()
	for range 300 {
		if d.Holding() {
			time.Sleep(50 * time.Millisecond) // the endpoints open
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the deliverer never took the lease")
}

func user(id string) *store.User {
	now := time.Now()
	return &store.User{ID: id, UserName: id + "@example.com", Email: id + "@example.com", Active: true,
		Doc:     []byte(`{"name":{"givenName":"` + id + `"},"emails":[{"value":"` + id + `@example.com","primary":true}],"password":"hunter2"}`),
		Version: 1, Created: now, LastModified: now, ValidAfter: now}
}

func setActive(t testing.TB, st store.Store, id string, active bool) {
	t.Helper()
	_, err := st.UpdateUser(context.Background(), id, func(cur *store.User) (*store.User, error) {
		cur.Active, cur.Version = active, cur.Version+1
		return cur, nil
	}, "test")
	if err != nil {
		t.Fatal(err)
	}
}

func TestDeliver_EveryDeliveryVerifiesWithTheStandardWebhooksLibrary(t *testing.T) {
	st := openStore(t)
	secret, key := newSecret(t)
	rcv := newReceiver(t, secret)
	start(t, webhook.Options{Store: st.Deliveries(), Endpoints: []webhook.Endpoint{{URL: rcv.srv.URL, Secrets: [][]byte{key}}}})
	ctx := context.Background()
	if _, err := st.CreateUser(ctx, user("u1"), "test"); err != nil {
		t.Fatal(err)
	}
	setActive(t, st, "u1", false)
	setActive(t, st, "u1", true)
	if _, err := st.CreateGroup(ctx, &store.Group{ID: "g1", DisplayName: "staff", Members: []string{"u1"}}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DeleteUser(ctx, "u1", func(*store.User) error { return nil }, "test"); err != nil {
		t.Fatal(err)
	}
	got := rcv.waitFor(t, 6, 10*time.Second)
	var types []string
	for i, g := range got {
		types = append(types, g.Type)
		if want := fmt.Sprintf("evt_%d", i+1); g.ID != want {
			t.Errorf("delivery %d has id %s, want %s", i, g.ID, want)
		}
	}
	want := []string{"user.created", "user.deactivated", "user.reactivated", "group.created", "group.user_added", "user.deleted"}
	if !slices.Equal(types, want) {
		t.Errorf("types = %v, want %v", types, want)
	}
	d := got[1].Data
	if d["active"] != false || d["userName"] != "u1@example.com" || d["password"] != nil || d["emails"] == nil || d["name"] == nil {
		t.Errorf("user.deactivated data = %v: want active false, userName, emails, name and no password", d)
	}
	if g, ok := d["groups"].([]any); !ok || len(g) != 0 {
		t.Errorf("user.deactivated groups = %#v, want [] (in none yet)", d["groups"])
	}
	// user.deleted tells the app who went, and from which groups.
	d = got[5].Data
	groups, _ := json.Marshal(d["groups"])
	if d["id"] != "u1" || d["userName"] != "u1@example.com" || d["emails"] == nil ||
		string(groups) != `[{"displayName":"staff","id":"g1"}]` {
		t.Errorf("user.deleted data = %v: want the user as it was, with its group staff", d)
	}
}

func TestDeliver_ReceiverFailingThenRecoveringGetsEveryEventOnceInOrder(t *testing.T) {
	st := openStore(t)
	secret, key := newSecret(t)
	rcv := newReceiver(t, secret)
	rcv.fail = func(n int) (int, string) {
		switch {
		case n <= 3:
			return http.StatusServiceUnavailable, ""
		case n == 4:
			return http.StatusTooManyRequests, "1" // honoured: no attempt for a second
		case n%7 == 0 && n < 40:
			return http.StatusInternalServerError, ""
		}
		return 0, ""
	}
	ctx := context.Background()
	users := []string{"a", "b", "c"}
	for _, u := range users {
		if _, err := st.CreateUser(ctx, user(u), "test"); err != nil {
			t.Fatal(err)
		}
	}
	start(t, webhook.Options{Store: st.Deliveries(), Endpoints: []webhook.Endpoint{{URL: rcv.srv.URL, Secrets: [][]byte{key}}}})
	began := time.Now()
	for i := range 10 {
		for _, u := range users {
			setActive(t, st, u, i%2 == 1)
		}
	}
	got := rcv.waitFor(t, 30, 30*time.Second)
	if time.Since(began) < time.Second {
		t.Errorf("all delivered in %s: the Retry-After of 1 s was not honoured", time.Since(began))
	}
	seen := map[string]bool{}
	last := map[string]int{}
	for i, g := range got {
		if seen[g.ID] {
			t.Errorf("event %s accepted twice", g.ID)
		}
		seen[g.ID] = true
		seq, _ := webhook.ParseEventID(g.ID)
		if int(seq) <= last[g.Subject] {
			t.Errorf("delivery %d: %s for %s came after event %d of the same user", i, g.ID, g.Subject, last[g.Subject])
		}
		last[g.Subject] = int(seq)
		wantType := "user.deactivated"
		if seq > 3 && (seq-4)/3%2 == 1 {
			wantType = "user.reactivated"
		}
		if g.Type != wantType {
			t.Errorf("%s is %s, want %s", g.ID, g.Type, wantType)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(rcv.accepted()); n != 30 {
		t.Errorf("receiver accepted %d deliveries, want exactly 30", n)
	}
}

type webhookState = store.Endpoint

// waitState waits until the only endpoint's stored state satisfies ok.
func waitState(t *testing.T, st *sqlite.Store, ok func(webhookState) bool) {
	t.Helper()
	var last []store.Endpoint
	for range 500 {
		es, err := st.Deliveries().Endpoints(context.Background())
		if err == nil && len(es) == 1 && ok(es[0]) {
			return
		}
		last = es
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("endpoint state never got there: %+v", last)
}

// startStoppable is start with a stop function that waits for Run to end.
func startStoppable(t *testing.T, o webhook.Options) (stop func()) {
	t.Helper()
	if o.Holder == "" {
		o.Holder = "test"
	}
	o.MaxAge, o.Poll, o.MinBackoff, o.MaxBackoff = time.Hour, 10*time.Millisecond, 20*time.Millisecond, 100*time.Millisecond
	if o.LeaseTTL == 0 {
		o.LeaseTTL = time.Second
	}
	d := webhook.New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	var once bool
	stop = func() {
		if !once {
			once = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	waitHolding(t, d)
	return stop
}

// With organizations configured every body names its event's
// organization, the default one included, so an app serving several
// customers never applies one customer's event to another's user of the
// same address; without them only a non-default organization would be
// named (there is none).
func TestDeliver_EveryBodyNamesItsOrganizationWhenOrganizationsExist(t *testing.T) {
	for _, orgs := range []bool{true, false} {
		st := openStore(t)
		secret, key := newSecret(t)
		rcv := newReceiver(t, secret)
		start(t, webhook.Options{Store: st.Deliveries(), Endpoints: []webhook.Endpoint{{URL: rcv.srv.URL, Secrets: [][]byte{key}}},
			Organizations: orgs})
		ctx := context.Background()
		if _, err := st.CreateUser(ctx, user("pat"), "test"); err != nil {
			t.Fatal(err)
		}
		acmePat := user("acme-pat") // ids are unique across organizations, userNames are not
		acmePat.UserName, acmePat.Email = "pat@example.com", "pat@example.com"
		if _, err := st.ForOrg("acme").CreateUser(ctx, acmePat, "test"); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, g := range rcv.waitFor(t, 2, 10*time.Second) {
			names = append(names, g.Organization)
		}
		want := []string{"default", "acme"}
		if !orgs {
			want = []string{"", "acme"}
		}
		if !slices.Equal(names, want) {
			t.Errorf("organizations configured %v: bodies name %q, want %q", orgs, names, want)
		}
	}
}
