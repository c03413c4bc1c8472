package webhook

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Feed page sizes.
const (
	DefaultFeedLimit = 100
	MaxFeedLimit     = 1000
)

// Feed serves GET /events?after=<id>&limit=<n>&types=<a,b>: the event log
// as the webhooks carry it, oldest first, cursor-paged. It always needs
// the admin token as a bearer token, even on loopback: a sidecar shares
// loopback with the app.
type Feed struct {
	Store store.Deliveries
	// Token is the admin token; without one the feed answers 403.
	Token []byte
	Log   *zap.Logger
	// Organizations: as Options.Organizations.
	Organizations bool
}

// feedPage is the answer: data, and next unless this is the last page.
type feedPage struct {
	Data []message `json:"data"`
	Next string    `json:"next,omitempty"`
}

func (f *Feed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !f.authorized(w, r) {
		return
	}
	q := r.URL.Query()
	after, err := ParseEventID(q.Get("after"))
	if err != nil {
		feedError(w, http.StatusBadRequest, "after: "+err.Error())
		return
	}
	if q.Get("after") == "" {
		after = -1 // from the oldest event kept
	}
	limit := DefaultFeedLimit
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > MaxFeedLimit {
			feedError(w, http.StatusBadRequest, "limit: must be a number from 1 to 1000")
			return
		}
	}
	var types []string
	if v := q.Get("types"); v != "" {
		types = strings.Split(v, ",")
	}
	kinds, err := KindsOf(types)
	if err != nil {
		feedError(w, http.StatusBadRequest, "types: "+err.Error())
		return
	}
	// One more than asked tells whether there is a next page.
	evs, err := f.Store.FeedEvents(r.Context(), after, 0, kinds, limit+1)
	if errors.Is(err, store.ErrGone) {
		feedError(w, http.StatusGone, "after: the events after this id are older than events.retention and were deleted; "+
			"start again without after")
		return
	}
	if err != nil {
		if f.Log != nil {
			f.Log.Error("read event feed", zap.Error(err))
		}
		feedError(w, http.StatusServiceUnavailable, "the store is unavailable; retry")
		return
	}
	page := feedPage{Data: make([]message, 0, min(len(evs), limit))}
	for i := range evs {
		if i == limit {
			page.Next = EventID(evs[i-1].Seq)
			break
		}
		page.Data = append(page.Data, feedItem(&evs[i], f.Organizations))
	}
	body, err := encode(page)
	if err != nil {
		feedError(w, http.StatusInternalServerError, "encode events")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(body, '\n'))
}

// authorized checks the bearer token, answering 401 or 403 itself.
func (f *Feed) authorized(w http.ResponseWriter, r *http.Request) bool {
	if len(f.Token) == 0 {
		feedError(w, http.StatusForbidden, "the event feed needs an admin token: set adminTokenFile and send it as a bearer token")
		return false
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	want, got := sha256.Sum256(f.Token), sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare(want[:], got[:]) == 1 {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis admin"`)
	feedError(w, http.StatusUnauthorized, "the event feed needs the admin token as a bearer token")
	return false
}

// feedError answers status with {"error": msg}; msg never holds a secret.
func feedError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
