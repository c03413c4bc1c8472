package demoidp

// The demo app's webhook receiver: it verifies every delivery as the
// README tells an app to (the Standard Webhooks Go library: signature and
// timestamp) and shows what it received on a page.

import (
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Paths of the demo app's webhook receiver.
const (
	// PathHooks receives Portcullis's webhooks (POST).
	PathHooks = "/hooks/identity"
	// PathEvents is the page of the events received (GET).
	PathEvents = "/hooks/"
)

// Bounds of what the receiver keeps and reads.
const (
	maxReceived  = 200
	maxHookBytes = 1 << 20
)

// Received is one webhook request the demo app got.
type Received struct {
	ID        string // webhook-id
	Type      string // the body's type
	Timestamp string // the body's timestamp: when the event happened
	Subject   string // what it is about: data.userName, else data.id
	Org       string // the body's organization ("" for the default one)
	At        time.Time
	Verified  bool
	Problem   string // why it was refused, when not verified
}

// Hooks receives and keeps the demo app's webhooks.
type Hooks struct {
	wh  *standardwebhooks.Webhook
	now func() time.Time
	mu  sync.Mutex
	got []Received // oldest first, at most maxReceived
}

// NewHooks is a receiver verifying with secret (whsec_…).
func NewHooks(secret string) (*Hooks, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, err
	}
	return &Hooks{wh: wh, now: time.Now}, nil
}

// Received returns what the receiver got, oldest first.
func (h *Hooks) Received() []Received {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Received(nil), h.got...)
}

func (h *Hooks) keep(r Received) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.got) == maxReceived {
		h.got = append(h.got[:0], h.got[1:]...)
	}
	h.got = append(h.got, r)
}

// receive verifies one delivery: 204 if the signature and timestamp hold,
// else 400 (Portcullis retries it). Either way it is shown.
func (h *Hooks) receive(w http.ResponseWriter, r *http.Request) {
	got := Received{ID: r.Header.Get("webhook-id"), At: h.now()}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHookBytes))
	if err == nil {
		err = h.wh.Verify(body, r.Header)
	}
	var msg struct {
		Type         string `json:"type"`
		Timestamp    string `json:"timestamp"`
		Organization string `json:"organization"`
		Data         struct {
			ID       string `json:"id"`
			UserName string `json:"userName"`
			Group    struct {
				ID string `json:"id"`
			} `json:"group"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &msg) // shown as received, verified or not
	got.Type, got.Timestamp, got.Org = msg.Type, msg.Timestamp, msg.Organization
	switch {
	case msg.Data.UserName != "":
		got.Subject = msg.Data.UserName
	case msg.Data.ID != "":
		got.Subject = msg.Data.ID
	default:
		got.Subject = msg.Data.Group.ID
	}
	got.Verified = err == nil
	if err != nil {
		got.Problem = err.Error()
	}
	h.keep(got)
	if err != nil {
		http.Error(w, "invalid webhook", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

var eventsTmpl = template.Must(template.New("events").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo app: events received</title>` + style + `</head>
<body><h1>Demo app: events Portcullis sent</h1>
<p>Portcullis POSTs every directory and session event to <code>` + PathHooks + `</code>, signed with the
secret in the demo's <code>webhook.secret</code>. This app verifies each one with the Standard Webhooks
Go library (the signature, and a timestamp within 5 minutes) before it trusts it. Newest first;
reload to see more.</p>
<table id="events"><tr><th>id</th><th>type</th><th>about</th><th>event time</th><th>received</th><th>verified</th></tr>
{{range .}}<tr class="event"><td class="id"><code>{{.ID}}</code></td><td class="type">{{.Type}}</td><td>{{.Subject}}{{if .Org}} <em class="org">({{.Org}})</em>{{end}}</td>
<td>{{.Timestamp}}</td><td>{{.At.UTC.Format "15:04:05.000"}}</td>
<td class="verified">{{if .Verified}}yes{{else}}no: {{.Problem}}{{end}}</td></tr>
{{else}}<tr><td colspan="6"><em>nothing yet</em></td></tr>
{{end}}</table>
<p><a href="/">Back to the app</a></p>
</body></html>
`))

// page shows the events received, newest first.
func (h *Hooks) page(w http.ResponseWriter, _ *http.Request) {
	got := h.Received()
	for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
		got[i], got[j] = got[j], got[i]
	}
	securityHeaders(w)
	w.WriteHeader(http.StatusOK)
	_ = eventsTmpl.Execute(w, got)
}

// App is the demo app with its webhook receiver: POST PathHooks, the page
// at PathEvents (linked from every other page), and Upstream's page.
func App(hint DeactivateHint, hooks *Hooks) http.Handler {
	up := upstream(hint, true)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == PathHooks && r.Method == http.MethodPost:
			hooks.receive(w, r)
		case r.URL.Path == PathEvents && r.Method == http.MethodGet:
			hooks.page(w, r)
		default:
			up.ServeHTTP(w, r)
		}
	})
}
