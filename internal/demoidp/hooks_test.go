package demoidp

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// The receiver accepts a well-signed delivery, refuses a tampered body and
// an old timestamp, and shows each with its verdict.
func TestHooks_VerifiesAndShowsEachDelivery(t *testing.T) {
	h, err := NewHooks(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := standardwebhooks.NewWebhook(testSecret)
	app := App(nil, h)
	send := func(id string, ts time.Time, body, sent string) int {
		sig, err := signer.Sign(id, ts, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, PathHooks, strings.NewReader(sent))
		r.Header.Set("webhook-id", id)
		r.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
		r.Header.Set("webhook-signature", sig)
		w := httptest.NewRecorder()
		app.ServeHTTP(w, r)
		return w.Code
	}
	good := `{"type":"user.deactivated","timestamp":"2026-12-05T04:12:09.118Z","data":{"id":"u1","userName":"<bob>","active":false}}`
	if c := send("evt_1", time.Now(), good, good); c != http.StatusNoContent {
		t.Errorf("signed delivery: %d, want 204", c)
	}
	if c := send("evt_2", time.Now(), good, strings.Replace(good, "false", "true", 1)); c != http.StatusBadRequest {
		t.Errorf("tampered body: %d, want 400", c)
	}
	if c := send("evt_3", time.Now().Add(-10*time.Minute), good, good); c != http.StatusBadRequest {
		t.Errorf("old timestamp: %d, want 400", c)
	}
	got := h.Received()
	if len(got) != 3 || !got[0].Verified || got[1].Verified || got[2].Verified ||
		got[0].Type != "user.deactivated" || got[0].Subject != "<bob>" || got[0].ID != "evt_1" {
		t.Errorf("received %+v; want evt_1 verified, evt_2 and evt_3 not", got)
	}
	w := httptest.NewRecorder()
	app.ServeHTTP(w, httptest.NewRequest(http.MethodGet, PathEvents, nil))
	page := w.Body.String()
	for _, want := range []string{"<code>evt_1</code>", "&lt;bob&gt;", `<td class="verified">yes</td>`, `<td class="verified">no: `} {
		if !strings.Contains(page, want) {
			t.Errorf("events page lacks %s:\n%s", want, page)
		}
	}
	w = httptest.NewRecorder()
	app.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/reports", nil))
	if !strings.Contains(w.Body.String(), `href="/hooks/"`) {
		t.Errorf("the app's page does not link the events page")
	}
}
