package session

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func mustKeys(t testing.TB) []KeyPair {
	t.Helper()
	k, err := ParseKeys(GenerateKeys())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestCodec(t testing.TB, keys []KeyPair) *Codec {
	t.Helper()
	c, err := NewCodec("portcullis", keys, true, 8*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c.SetClock(func() time.Time { return t0.Add(time.Minute) })
	return c
}

func testSession(groups int) *Session {
	s := &Session{
		ID:        NewID(),
		Principal: identity.Principal{User: "alice", Email: "alice@example.com", Name: "Alice Ä", Groups: []string{"staff"}, Org: "acme"},
		IssuedAt:  t0,
		Expires:   t0.Add(8 * time.Hour),
	}
	for i := 0; i < groups; i++ {
		s.Principal.Groups = append(s.Principal.Groups, fmt.Sprintf("group-with-a-long-name-%04d", i))
	}
	return s
}

// roundTrip writes s as cookies, then reads them back as a browser would send them.
func roundTrip(t *testing.T, w, r *Codec, s *Session) (*Session, []*http.Cookie, error) {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := w.Write(rec, nil, s); err != nil {
		t.Fatalf("Write: %v", err)
	}
	cookies := rec.Result().Cookies()
	req := httptest.NewRequest("GET", "/", nil)
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	got, err := r.Read(req)
	return got, cookies, err
}

func TestCodec_RoundTrip(t *testing.T) {
	t.Parallel()
	c := newTestCodec(t, mustKeys(t))
	s := testSession(0)
	got, cookies, err := roundTrip(t, c, c, s)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, got); diff != "" {
		t.Errorf("session (-want +got):\n%s", diff)
	}
	ck := cookies[0]
	if !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" {
		t.Errorf("cookie attributes: %+v", ck)
	}
}

// The IdP's names for the session survive the cookie, and a version 3
// cookie (before they were kept) still decodes, without them.
func TestSerializer_CarriesTheSAMLSession(t *testing.T) {
	t.Parallel()
	s := testSession(1)
	s.SAML = SAMLSession{IdP: "https://idp.example.com", NameID: "alice@example.com",
		NameIDFormat: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress", SessionIndex: "_abc123"}
	b, err := binarySerializer{}.Serialize(s)
	if err != nil {
		t.Fatal(err)
	}
	var got Session
	if err := (binarySerializer{}).Deserialize(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, &got); diff != "" {
		t.Errorf("session (-want +got):\n%s", diff)
	}
	tail := 0
	for _, x := range []string{s.SAML.IdP, s.SAML.NameID, s.SAML.NameIDFormat, s.SAML.SessionIndex} {
		tail += 1 + len(x)
	}
	v3 := append([]byte{serialVersionV3}, b[1:len(b)-tail]...)
	got = Session{}
	if err := (binarySerializer{}).Deserialize(v3, &got); err != nil {
		t.Fatalf("version 3: %v", err)
	}
	want := *s
	want.SAML = SAMLSession{}
	if diff := cmp.Diff(&want, &got); diff != "" {
		t.Errorf("version 3 session (-want +got):\n%s", diff)
	}
}

// A cookie written before organizations (serialisation version 2) still
// decodes, as a session of the default organization: upgrading signs no one
// out, and such a cookie can never claim another organization.
func TestSerializer_Version2DecodesAsDefaultOrganization(t *testing.T) {
	t.Parallel()
	s := testSession(1)
	b, err := binarySerializer{}.Serialize(s)
	if err != nil {
		t.Fatal(err)
	}
	// Version 3 is version 2 with the organization appended, version 4
	// version 3 with the SAML session (four empty strings here).
	tail := 1 + len(s.Principal.Org) + 4
	v2 := append([]byte{serialVersionV2}, b[1:len(b)-tail]...)
	var got Session
	if err := (binarySerializer{}).Deserialize(v2, &got); err != nil {
		t.Fatalf("version 2: %v", err)
	}
	want := *s
	want.Principal.Org = identity.DefaultOrg
	if diff := cmp.Diff(&want, &got); diff != "" {
		t.Errorf("version 2 session (-want +got):\n%s", diff)
	}
	// The same bytes labelled version 3 lack the organization: refused.
	v3short := append([]byte{serialVersionV3}, v2[1:]...)
	if err := (binarySerializer{}).Deserialize(v3short, &got); err == nil {
		t.Error("a version 3 cookie without its organization decoded")
	}
	// A version 2 cookie with anything after the groups is refused.
	if err := (binarySerializer{}).Deserialize(append(v2, 0), &got); err == nil {
		t.Error("a version 2 cookie with trailing bytes decoded")
	}
}

func TestCodec_TwoHundredGroupsSplitsUnder4KB(t *testing.T) {
	t.Parallel()
	c := newTestCodec(t, mustKeys(t))
	s := testSession(200)
	got, cookies, err := roundTrip(t, c, c, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Principal.Groups) != 201 {
		t.Fatalf("groups: got %d", len(got.Principal.Groups))
	}
	if len(cookies) < 2 {
		t.Fatalf("expected the session to be split, got %d cookie(s)", len(cookies))
	}
	for _, ck := range cookies {
		if n := len(ck.String()); n > 4000 {
			t.Errorf("cookie %s is %d bytes, over the browser limit", ck.Name, n)
		}
		if !c.IsSessionCookie(ck.Name) {
			t.Errorf("chunk %q not recognised as ours", ck.Name)
		}
	}
}

// A session that needs more than MaxChunks cookies is ErrTooLarge, which
// the ACS turns into a refusal rather than a 500; nothing is set.
func TestCodec_WriteTooLargeIsErrTooLargeAndSetsNothing(t *testing.T) {
	t.Parallel()
	c := newTestCodec(t, mustKeys(t))
	s := testSession(2000)
	rec := httptest.NewRecorder()
	err := c.Write(rec, nil, s)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Write of %d groups: %v, want ErrTooLarge", len(s.Principal.Groups), err)
	}
	if _, err := c.Encode(s); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Encode: %v, want ErrTooLarge", err)
	}
	if n := len(rec.Result().Cookies()); n != 0 {
		t.Errorf("a refused Write set %d cookies", n)
	}
	// A large session that fits still round-trips.
	s = testSession(600)
	if _, _, err := roundTrip(t, c, c, s); err != nil {
		t.Errorf("a session of %d groups: %v", len(s.Principal.Groups), err)
	}
}

func TestCodec_RotationOlderKeyStillDecodes(t *testing.T) {
	t.Parallel()
	old := mustKeys(t)
	newer := mustKeys(t)
	oldCodec := newTestCodec(t, old)
	rotated := newTestCodec(t, append(append([]KeyPair{}, newer...), old...))
	if _, _, err := roundTrip(t, oldCodec, rotated, testSession(0)); err != nil {
		t.Fatalf("cookie from the older pair no longer decodes: %v", err)
	}
	// And a codec that dropped the old pair refuses it.
	if _, _, err := roundTrip(t, oldCodec, newTestCodec(t, newer), testSession(0)); err == nil {
		t.Fatal("cookie from a removed key pair still decodes")
	}
}

func TestCodec_RejectsTamperedAndExpired(t *testing.T) {
	t.Parallel()
	c := newTestCodec(t, mustKeys(t))
	v, err := c.Encode(testSession(0))
	if err != nil {
		t.Fatal(err)
	}
	flipped := []byte(v)
	flipped[len(flipped)/2] ^= 0x01
	if flipped[len(flipped)/2] == '=' {
		flipped[len(flipped)/2] = 'A'
	}
	for name, val := range map[string]string{
		"bit flipped": string(flipped),
		"truncated":   v[:len(v)-4],
		"empty":       "",
		"garbage":     "not-a-cookie",
	} {
		if _, err := c.Decode(val); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	exp := testSession(0)
	exp.Expires = t0 // before the codec's clock
	v, err = c.Encode(exp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decode(v); err != ErrExpired {
		t.Errorf("expired session: got %v, want ErrExpired", err)
	}
}

func TestCodec_WriteExpiresLeftoverChunks(t *testing.T) {
	t.Parallel()
	c := newTestCodec(t, mustKeys(t))
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: "portcullis", Value: "x"})
	req.AddCookie(&http.Cookie{Name: "portcullis_1", Value: "y"})
	req.AddCookie(&http.Cookie{Name: "portcullis_2", Value: "z"})
	rec := httptest.NewRecorder()
	if err := c.Write(rec, req, testSession(0)); err != nil {
		t.Fatal(err)
	}
	expired := map[string]bool{}
	for _, ck := range rec.Result().Cookies() {
		if ck.MaxAge < 0 {
			expired[ck.Name] = true
		}
	}
	if !expired["portcullis_1"] || !expired["portcullis_2"] {
		t.Errorf("leftover chunks not expired: %v", expired)
	}
}

func TestParseKeys_Errors(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"empty":           "",
		"one field":       "abc\n",
		"not base64":      "!!! ???\n",
		"short hash key":  "c2hvcnQ= " + strings.Repeat("A", 44) + "\n",
		"short block key": strings.Repeat("A", 44) + " c2hvcnQ=\n",
		"only comments":   "# nothing\n",
	}
	for name, in := range tests {
		if _, err := ParseKeys([]byte(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	keys := mustKeys(f)
	c := newTestCodec(f, keys)
	v, _ := c.Encode(testSession(3))
	f.Add(v)
	f.Add("")
	f.Add(v[:10])
	f.Fuzz(func(t *testing.T, in string) {
		s, err := c.Decode(in)
		if err == nil && in != v {
			// Only a value we encoded can decode; the fuzzer cannot forge the HMAC.
			t.Fatalf("forged cookie decoded: %+v", s)
		}
	})
}

func FuzzDeserialize(f *testing.F) {
	b, _ := binarySerializer{}.Serialize(testSession(5))
	f.Add(b)
	f.Add([]byte{serialVersion})
	f.Add([]byte{serialVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, in []byte) {
		var s Session
		if err := (binarySerializer{}).Deserialize(in, &s); err != nil {
			return
		}
		out, err := binarySerializer{}.Serialize(&s)
		if err != nil {
			t.Fatal(err)
		}
		var s2 Session
		if err := (binarySerializer{}).Deserialize(out, &s2); err != nil {
			t.Fatalf("re-encoded session does not decode: %v", err)
		}
		if diff := cmp.Diff(s, s2); diff != "" {
			t.Fatalf("not stable (-first +second):\n%s", diff)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	c := newTestCodec(b, mustKeys(b))
	v, _ := c.Encode(testSession(10))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(v); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCookieValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		lines []string
		want  string
		ok    bool
		dup   bool
	}{
		{"only", []string{"portcullis=abc"}, "abc", true, false},
		{"among others", []string{"a=1; portcullis=abc; b=2"}, "abc", true, false},
		{"second line", []string{"a=1", "b=2;portcullis=xyz"}, "xyz", true, false},
		{"quoted", []string{`portcullis="abc"`}, "abc", true, false},
		{"prefix is not a match", []string{"portcullis_1=abc; xportcullis=d"}, "", false, false},
		{"absent", []string{"a=1"}, "", false, false},
		{"same value twice is one", []string{"portcullis=one; portcullis=one"}, "one", true, false},
		{"two values are a duplicate", []string{"portcullis=one; portcullis=two"}, "", true, true},
		{"two values on two lines", []string{"portcullis=one", "portcullis=two"}, "", true, true},
	}
	for _, tt := range tests {
		got, ok, dup := cookieValue(tt.lines, "portcullis")
		if got != tt.want || ok != tt.ok || dup != tt.dup {
			t.Errorf("%s: got %q %v %v, want %q %v %v", tt.name, got, ok, dup, tt.want, tt.ok, tt.dup)
		}
	}
}

// Clear expires the app's own cookies (session.expireUpstreamCookies) that
// the browser sent, at each configured path, and leaves the others alone.
func TestCodec_ClearExpiresUpstreamCookies(t *testing.T) {
	t.Parallel()
	keys, err := ParseKeys(GenerateKeys())
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCodec("portcullis", keys, true, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c.SetUpstreamCookies([]string{"JSESSIONID", "absent"}, []string{"/", "/erp"})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", "JSESSIONID=abc; theme=dark")
	rec := httptest.NewRecorder()
	c.Clear(rec, r)
	var paths []string
	for _, ck := range rec.Result().Cookies() {
		switch ck.Name {
		case "JSESSIONID":
			if ck.MaxAge >= 0 || ck.Domain != "" {
				t.Errorf("JSESSIONID not expired host-only: %+v", ck)
			}
			paths = append(paths, ck.Path)
		case "absent", "theme":
			t.Errorf("cookie %s touched", ck.Name)
		}
	}
	if len(paths) != 2 || paths[0] != "/" || paths[1] != "/erp" {
		t.Errorf("JSESSIONID expired at %v, want / and /erp", paths)
	}
}
