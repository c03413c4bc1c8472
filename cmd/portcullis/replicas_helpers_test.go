package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/session"
)

// replicaSet is a config directory shared by in-process replicas on one
// PostgreSQL schema: same session keys, same SCIM token, an upstream that
// echoes the user it was sent.
type replicaSet struct {
	t     *testing.T
	dir   string
	token string
	codec *session.Codec
}

const replicaToken = "replica-test-token-0123456789"

// newReplicaSet writes the shared files; storeExtra is added under store:
// in every replica's config (e.g. "  maxStaleness: 5s\n").
func newReplicaSet(t *testing.T, storeExtra string) *replicaSet {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/events" { // a server-sent event stream that lasts until the client goes
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: hello "+r.Header.Get("X-Forwarded-User")+"\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		_, _ = io.WriteString(w, "hello "+r.Header.Get("X-Forwarded-User"))
	}))
	t.Cleanup(up.Close)
	path := testConfigDir(t, "scim:\n  enabled: true\n  tokensFile: scim.tokens\nstore:\n  driver: postgres\n  dsnFile: store.dsn\n"+storeExtra)
	dir := filepath.Dir(path)
	_ = os.WriteFile(filepath.Join(dir, "scim.tokens"), []byte(replicaToken+"\n"), 0o600)
	raw, _ := os.ReadFile(path)
	_ = os.WriteFile(path, []byte(strings.Replace(string(raw), "http://127.0.0.1:3000", up.URL, 1)), 0o600)
	keys, _ := session.ParseKeys(mustRead(t, filepath.Join(dir, "session.keys")))
	codec, _ := session.NewCodec(httpsCookieName, keys, true, time.Hour)
	return &replicaSet{t: t, dir: dir, token: replicaToken, codec: codec}
}

// replicaURLs are where one replica listens.
type replicaURLs struct{ public, admin string }

// start builds and serves one replica on dsn until the test ends.
func (rs *replicaSet) start(name, dsn string) replicaURLs {
	rs.t.Helper()
	return rs.startOn(name, dsn, nil)
}

// editConfig rewrites the shared config (every replica started after sees
// the change).
func (rs *replicaSet) editConfig(edit func(string) string) {
	rs.t.Helper()
	path := filepath.Join(rs.dir, "portcullis.yaml")
	if err := os.WriteFile(path, []byte(edit(string(mustRead(rs.t, path)))), 0o600); err != nil {
		rs.t.Fatal(err)
	}
}

// startOn is start with the public listener given (nil: a new one), for a
// replica whose address a peer (the IdP) must know before it starts.
func (rs *replicaSet) startOn(name, dsn string, pub net.Listener) replicaURLs {
	t := rs.t
	t.Helper()
	raw := mustRead(t, filepath.Join(rs.dir, "portcullis.yaml"))
	cfg := filepath.Join(rs.dir, name+".yaml")
	dsnFile := name + ".dsn"
	_ = os.WriteFile(filepath.Join(rs.dir, dsnFile), []byte(dsn+"\n"), 0o600)
	_ = os.WriteFile(cfg, []byte(strings.Replace(string(raw), "dsnFile: store.dsn", "dsnFile: "+dsnFile, 1)), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := build(ctx, cfg, zap.NewNop())
	if err != nil {
		t.Fatalf("replica %s: %v", name, err)
	}
	if pub == nil {
		pub, _ = net.Listen("tcp", "127.0.0.1:0")
	}
	adm, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan struct{})
	go func() { _ = serveOn(ctx, a, pub, adm, zap.NewNop()); close(done) }()
	t.Cleanup(func() { cancel(); <-done; a.Close() })
	return replicaURLs{public: "http://" + pub.Addr().String(), admin: "http://" + adm.Addr().String()}
}

// scim sends a SCIM request with the shared token.
func (rs *replicaSet) scim(method, u, body string) (int, http.Header, string) {
	rs.t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+rs.token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		rs.t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(rb)
}

// createUser creates userName through base's SCIM API and returns its id.
func (rs *replicaSet) createUser(base, userName string) string {
	rs.t.Helper()
	code, _, body := rs.scim("POST", base+"/scim/v2/Users",
		`{"userName":"`+userName+`","emails":[{"value":"`+userName+`","primary":true}]}`)
	if code != 201 {
		rs.t.Fatalf("create %s on %s: %d %s", userName, base, code, body)
	}
	id := body[strings.Index(body, `"id":"`)+6:]
	return id[:strings.Index(id, `"`)]
}

// setActive deactivates or reactivates a user through base's SCIM API.
func (rs *replicaSet) setActive(base, id string, active bool) {
	rs.t.Helper()
	v := "false"
	if active {
		v = "true"
	}
	code, _, body := rs.scim("PATCH", base+"/scim/v2/Users/"+id,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":`+v+`}}]}`)
	if code != 200 {
		rs.t.Fatalf("set active=%s on %s: %d %s", v, base, code, body)
	}
}

// sessionFor mints a session cookie value as the SAML ACS would issue it.
func (rs *replicaSet) sessionFor(user, email string) string {
	rs.t.Helper()
	now := time.Now()
	v, err := rs.codec.Encode(&session.Session{ID: session.NewID(), IssuedAt: now.Add(time.Second),
		Expires: now.Add(time.Hour), Principal: identity.Principal{User: user, Email: email}})
	if err != nil {
		rs.t.Fatal(err)
	}
	return v
}

// get requests /app on base with a session cookie and returns the status
// and the body.
func (rs *replicaSet) get(base, cookie string) (int, string) {
	rs.t.Helper()
	req, _ := http.NewRequest("GET", base+"/app", nil)
	req.AddCookie(&http.Cookie{Name: httpsCookieName, Value: cookie})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		rs.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// openStream opens base/events as an SSE client with a session cookie and
// returns a channel closed when the stream ends.
func (rs *replicaSet) openStream(base, cookie string) <-chan struct{} {
	rs.t.Helper()
	req, _ := http.NewRequest("GET", base+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.AddCookie(&http.Cookie{Name: httpsCookieName, Value: cookie})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		rs.t.Fatal(err)
	}
	rs.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		rs.t.Fatalf("open stream on %s: %d", base, resp.StatusCode)
	}
	first := make([]byte, 64)
	if _, err := resp.Body.Read(first); err != nil {
		rs.t.Fatalf("first event: %v", err)
	}
	ended := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, resp.Body); close(ended) }()
	return ended
}

// readyz returns the admin /readyz answer.
func readyz(t *testing.T, admin string) (int, string) {
	t.Helper()
	resp, err := http.Get(admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
