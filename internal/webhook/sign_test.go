package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/portcullis-sso/portcullis/internal/webhook"
)

func headers(id string, ts int64, sig string) http.Header {
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", sig)
	return h
}

// TestSign_AsTheSpecSays: a tampered body or id fails, a timestamp older
// than the library's tolerance (5 minutes) fails though its signature is
// right, and during a rotation a receiver that knows either secret verifies.
func TestSign_AsTheSpecSays(t *testing.T) {
	oldText, oldKey := newSecret(t)
	newText, newKey := newSecret(t)
	body := []byte(`{"type":"user.deactivated","timestamp":"2026-12-05T04:00:00.000Z","data":{"id":"u1","active":false}}`)
	now := time.Now().Unix()
	rotated := webhook.Sign([][]byte{oldKey, newKey}, "evt_7", now, body)
	if n := len(strings.Fields(rotated)); n != 2 {
		t.Fatalf("signature with two secrets has %d entries: %q", n, rotated)
	}
	for _, secret := range []string{oldText, newText} {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, headers("evt_7", now, rotated)); err != nil {
			t.Errorf("rotation: a receiver with one of the two secrets fails: %v", err)
		}
		tampered := []byte(strings.Replace(string(body), `"active":false`, `"active":true`, 1))
		if err := wh.Verify(tampered, headers("evt_7", now, rotated)); err == nil {
			t.Error("a tampered body verified")
		}
		if err := wh.Verify(body, headers("evt_8", now, rotated)); err == nil {
			t.Error("another id verified with the same signature")
		}
		old := now - 600
		sig := webhook.Sign([][]byte{oldKey, newKey}, "evt_7", old, body)
		if err := wh.Verify(body, headers("evt_7", old, sig)); err == nil {
			t.Error("a timestamp 10 minutes old verified")
		}
		if err := wh.VerifyIgnoringTimestamp(body, headers("evt_7", old, sig)); err != nil {
			t.Errorf("the old request's signature itself is wrong: %v", err)
		}
	}
	other, _ := newSecret(t)
	wh, _ := standardwebhooks.NewWebhook(other)
	if err := wh.Verify(body, headers("evt_7", now, rotated)); err == nil {
		t.Error("a receiver with neither secret verified")
	}
}

func TestParseSecrets_RejectsWhatIsNotAStandardWebhooksSecret(t *testing.T) {
	good, _ := newSecret(t)
	for name, in := range map[string]string{
		"empty":     "\n# only a comment\n",
		"no prefix": strings.TrimPrefix(good, "whsec_"),
		"not b64":   "whsec_!!!!",
		"too short": "whsec_c2hvcnQ=",
	} {
		if _, err := webhook.ParseSecrets([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), strings.TrimPrefix(good, "whsec_")) {
			t.Errorf("%s: the error shows the secret: %v", name, err)
		}
	}
	keys, err := webhook.ParseSecrets([]byte(good + "\n\n" + good + "\n"))
	if err != nil || len(keys) != 2 {
		t.Errorf("two lines = %d keys, %v; want 2", len(keys), err)
	}
}

// TestDeliver_RetryCarriesTheAttemptsTimestamp: an event written long ago
// is signed with the time of the attempt, so the receiver's tolerance
// does not refuse a late retry; the id stays the event's.
func TestDeliver_RetryCarriesTheAttemptsTimestamp(t *testing.T) {
	st := openStore(t)
	secret, key := newSecret(t)
	rcv := newReceiver(t, secret)
	rcv.fail = func(n int) (int, string) {
		if n <= 2 {
			return http.StatusBadGateway, ""
		}
		return 0, ""
	}
	start(t, webhook.Options{Store: st.Deliveries(), Endpoints: []webhook.Endpoint{{URL: rcv.srv.URL, Secrets: [][]byte{key}}}})
	if _, err := st.CreateUser(context.Background(), user("u1"), "test"); err != nil {
		t.Fatal(err)
	}
	got := rcv.waitFor(t, 1, 10*time.Second)
	if got[0].ID != "evt_1" || rcv.bad != 0 {
		t.Errorf("got %+v with %d unverified attempts", got, rcv.bad)
	}
}

func TestDeliver_GoneDisablesTheEndpointUntilItsConfigChanges(t *testing.T) {
	st := openStore(t)
	secret, key := newSecret(t)
	rcv := newReceiver(t, secret)
	var gone atomic.Bool
	gone.Store(true)
	rcv.fail = func(int) (int, string) {
		if gone.Load() {
			return http.StatusGone, ""
		}
		return 0, ""
	}
	ep := webhook.Endpoint{URL: rcv.srv.URL, Secrets: [][]byte{key}}
	ctx := context.Background()
	stop := startStoppable(t, webhook.Options{Store: st.Deliveries(), Endpoints: []webhook.Endpoint{ep}})
	if _, err := st.CreateUser(ctx, user("u1"), "test"); err != nil {
		t.Fatal(err)
	}
	waitState(t, st, func(e webhookState) bool { return !e.Disabled.IsZero() && e.DisabledStatus == 410 })
	gone.Store(false)
	time.Sleep(100 * time.Millisecond)
	if n := len(rcv.accepted()); n != 0 {
		t.Fatalf("a disabled endpoint got %d deliveries", n)
	}
	stop()
	// The same entry again: still disabled.
	stop = startStoppable(t, webhook.Options{Store: st.Deliveries(), Endpoints: []webhook.Endpoint{ep}})
	time.Sleep(200 * time.Millisecond)
	if n := len(rcv.accepted()); n != 0 {
		t.Fatalf("an unchanged config re-enabled the endpoint: %d deliveries", n)
	}
	stop()
	ep.Types = []string{"user.created"}
	startStoppable(t, webhook.Options{Store: st.Deliveries(), Endpoints: []webhook.Endpoint{ep}})
	if got := rcv.waitFor(t, 1, 5*time.Second); got[0].ID != "evt_1" {
		t.Errorf("after the config change: %+v, want the event that met the 410 again", got)
	}
}

func TestDeliver_RedirectIsAFailureNotFollowed(t *testing.T) {
	st := openStore(t)
	var followed atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed.Add(1) }))
	defer target.Close()
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer redirect.Close()
	_, key := newSecret(t)
	start(t, webhook.Options{Store: st.Deliveries(), Endpoints: []webhook.Endpoint{{URL: redirect.URL, Secrets: [][]byte{key}}}})
	if _, err := st.CreateUser(context.Background(), user("u1"), "test"); err != nil {
		t.Fatal(err)
	}
	waitState(t, st, func(e webhookState) bool { return e.Attempts >= 2 && e.LastStatus == http.StatusTemporaryRedirect })
	if n := followed.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}

// TestDeliver_OneHolderAtATimeAndTheNextTakesOver: two deliverers on one
// store; one holds the lease; when it stops, the other delivers the rest.
func TestDeliver_OneHolderAtATimeAndTheNextTakesOver(t *testing.T) {
	st := openStore(t)
	secret, key := newSecret(t)
	rcv := newReceiver(t, secret)
	eps := []webhook.Endpoint{{URL: rcv.srv.URL, Secrets: [][]byte{key}}}
	stopA := startStoppable(t, webhook.Options{Store: st.Deliveries(), Endpoints: eps, Holder: "a", LeaseTTL: 300 * time.Millisecond})
	b := webhook.New(webhook.Options{Store: st.Deliveries(), Endpoints: eps, Holder: "b", LeaseTTL: 300 * time.Millisecond,
		Poll: 10 * time.Millisecond, MaxAge: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx)
	if _, err := st.CreateUser(context.Background(), user("u1"), "test"); err != nil {
		t.Fatal(err)
	}
	rcv.waitFor(t, 1, 5*time.Second)
	if b.Holding() {
		t.Error("b delivers while a holds the lease")
	}
	stopA()
	if _, err := st.CreateUser(context.Background(), user("u2"), "test"); err != nil {
		t.Fatal(err)
	}
	// At least once: a stopped right after evt_1 arrived, maybe before it
	// saved that, so b may deliver evt_1 again before evt_2.
	var got []received
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = rcv.accepted(); len(got) > 0 && got[len(got)-1].ID == "evt_2" {
			break
		}
	}
	if len(got) == 0 || got[len(got)-1].ID != "evt_2" || len(got) > 3 || !b.Holding() {
		t.Errorf("after a stopped: %+v, b holding %v; want evt_2 last (evt_1 at most redelivered once), b holding", got, b.Holding())
	}
}

// TestDeliver_SetSecretsRotatesWithoutARestart: new secrets sign from the
// next delivery on; during a rotation both sign, so an app that already
// switched to the new secret verifies.
func TestDeliver_SetSecretsRotatesWithoutARestart(t *testing.T) {
	st := openStore(t)
	oldSecret, oldKey := newSecret(t)
	newSecretText, newKey := newSecret(t)
	rcv := newReceiver(t, oldSecret)
	d := start(t, webhook.Options{Store: st.Deliveries(), Endpoints: []webhook.Endpoint{{URL: rcv.srv.URL, Secrets: [][]byte{oldKey}}}})
	ctx := context.Background()
	if _, err := st.CreateUser(ctx, user("u1"), "test"); err != nil {
		t.Fatal(err)
	}
	rcv.waitFor(t, 1, 10*time.Second)
	if !d.SetSecrets(rcv.srv.URL, [][]byte{oldKey, newKey}) || d.SetSecrets("http://elsewhere/", [][]byte{newKey}) {
		t.Fatal("SetSecrets: want true for the endpoint, false for an unknown URL")
	}
	whNew, err := standardwebhooks.NewWebhook(newSecretText)
	if err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	rcv.wh = whNew // the app has switched; the receiver fails the test on a delivery that does not verify
	rcv.mu.Unlock()
	if _, err := st.CreateUser(ctx, user("u2"), "test"); err != nil {
		t.Fatal(err)
	}
	if got := rcv.waitFor(t, 2, 10*time.Second); got[1].ID != "evt_2" {
		t.Errorf("after the rotation: %+v, want evt_2 verified with the new secret", got)
	}
	d.SetSecrets(rcv.srv.URL, [][]byte{newKey})
	if _, err := st.CreateUser(ctx, user("u3"), "test"); err != nil {
		t.Fatal(err)
	}
	if got := rcv.waitFor(t, 3, 10*time.Second); got[2].ID != "evt_3" {
		t.Errorf("with the new secret alone: %+v, want evt_3", got)
	}
}
