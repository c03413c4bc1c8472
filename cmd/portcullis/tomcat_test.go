package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/session"
)

const tomcatHome = "/usr/share/tomcat10"

// tomcatApp is a Servlet app with a restricted area: /admin/ (index.jsp,
// the welcome file) counts every time it runs, /public/count.jsp tells the
// count, and /shop/cart.jsp echoes what the container made of the request.
var tomcatApp = map[string]string{
	"admin/index.jsp": `<%@ page contentType="text/plain" %><%
Integer n = (Integer) application.getAttribute("adminHits");
application.setAttribute("adminHits", n == null ? 1 : n + 1);
%>ADMIN-PAGE servlet=<%= request.getServletPath() %> user=<%= request.getHeader("X-Forwarded-User") %>`,
	"public/count.jsp": `<%@ page contentType="text/plain" %>admin-hits=<%= application.getAttribute("adminHits") == null ? 0 : application.getAttribute("adminHits") %>`,
	"shop/cart.jsp":    `<%@ page contentType="text/plain" %>CART servlet=<%= request.getServletPath() %> session=<%= request.getRequestedSessionId() %> fromURL=<%= request.isRequestedSessionIdFromURL() %> query=<%= request.getQueryString() %> user=<%= request.getHeader("X-Forwarded-User") %>`,
}

// startTomcat runs a private Tomcat 10 (Debian's tomcat10: CATALINA_HOME
// from the package, CATALINA_BASE a temporary directory) on a free loopback
// port and returns its base URL.
func startTomcat(t *testing.T) string {
	t.Helper()
	_, err := os.Stat(filepath.Join(tomcatHome, "bin", "catalina.sh"))
	_, javaErr := exec.LookPath("java")
	requirePeer(t, "tomcat10 (Debian package)", err == nil && javaErr == nil)
	base := t.TempDir()
	port := freePort(t)
	for _, d := range []string{"conf", "logs", "temp", "work", "webapps/ROOT"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"web.xml", "catalina.properties", "context.xml", "logging.properties"} {
		b, err := os.ReadFile(filepath.Join("/etc/tomcat10", f))
		if err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, filepath.Join(base, "conf", f), b)
	}
	writeTestFile(t, filepath.Join(base, "conf", "server.xml"), []byte(fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Server port="-1" shutdown="SHUTDOWN">
  <Service name="Catalina">
    <Connector port="%d" address="127.0.0.1" protocol="HTTP/1.1" connectionTimeout="20000"/>
    <Engine name="Catalina" defaultHost="localhost">
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false"/>
    </Engine>
  </Service>
</Server>
`, port)))
	for name, body := range tomcatApp {
		p := filepath.Join(base, "webapps", "ROOT", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, p, []byte(body))
	}
	var out bytes.Buffer
	cmd := exec.Command(filepath.Join(tomcatHome, "bin", "catalina.sh"), "run")
	cmd.Env = append(os.Environ(), "CATALINA_HOME="+tomcatHome, "CATALINA_BASE="+base, "CATALINA_PID=")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	u := "http://127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get(u + "/public/count.jsp"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return u
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("tomcat did not start:\n%s", out.String())
		}
	}
}

func writeTestFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rawGet sends target byte for byte (no client-side cleaning) and returns
// the status and body.
func rawGet(t *testing.T, addr, target, cookie string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: app.example.com\r\nCookie: %s\r\nConnection: close\r\n\r\n", target, cookie)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A real Tomcat behind Portcullis with upstreamPathParameters:
// strip-for-matching: no form of path parameters reaches the restricted
// servlet without the group, and ;jsessionid URLs work for a signed-in
// user.
func TestTomcat_PathParametersNeverReachARestrictedServlet(t *testing.T) {
	tomcat := startTomcat(t)
	path := testConfigDir(t, "upstreamPathParameters: strip-for-matching\n"+
		"routes:\n  - path: /public/\n    public: true\n  - path: /admin/\n    allowGroups: [admins]\n")
	raw, _ := os.ReadFile(path)
	writeTestFile(t, path, bytes.Replace(raw, []byte("http://127.0.0.1:3000"), []byte(tomcat), 1))
	addr := serveInProcess(t, path)

	keys, err := session.ParseKeys(mustRead(t, filepath.Join(filepath.Dir(path), "session.keys")))
	if err != nil {
		t.Fatal(err)
	}
	codec, _ := session.NewCodec(httpsCookieName, keys, true, time.Hour)
	cookie := func(p identity.Principal) string {
		v, err := codec.Encode(&session.Session{ID: session.NewID(), Principal: p, IssuedAt: time.Now(), Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return httpsCookieName + "=" + v
	}
	alice := cookie(identity.Principal{User: "alice", Email: "alice@example.com", Groups: []string{"staff", "admins"}})
	bob := cookie(identity.Principal{User: "bob", Email: "bob@example.com", Groups: []string{"staff"}})

	adminHits := func() string {
		_, body := rawGet(t, addr, "/public/count.jsp", "")
		return body
	}
	if got := adminHits(); got != "admin-hits=0" {
		t.Fatalf("before: %q", got)
	}
	// Bob tries every form of the bypass corpus (the ';' forms included).
	corpus, err := os.ReadFile("../../proxy/testdata/route-bypass.txt")
	if err != nil {
		t.Fatal(err)
	}
	tried := 0
	for _, line := range strings.Split(string(corpus), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if s, err := strconv.Unquote(line); err == nil {
			line = s
		}
		if strings.ContainsAny(line, " \r\n") {
			continue // cannot be one request-target
		}
		tried++
		if code, body := rawGet(t, addr, line, bob); strings.Contains(body, "ADMIN-PAGE") {
			t.Errorf("bob reached the admin servlet with %q (status %d): %s", line, code, body)
		}
	}
	for _, target := range []string{"/admin;x/", "/admin;x/index.jsp", "/ADMIN;x=1/index.jsp", "/;/admin/"} {
		if code, _ := rawGet(t, addr, target, bob); code != http.StatusForbidden {
			t.Errorf("bob %s: %d, want 403", target, code)
		}
	}
	for _, target := range []string{"/public/..;/admin/", "/public;/../admin/", "/..;/..;/admin/", "/.;/admin/", "/admin%3B/"} {
		if code, _ := rawGet(t, addr, target, bob); code != http.StatusBadRequest {
			t.Errorf("bob %s: %d, want 400", target, code)
		}
	}
	if got := adminHits(); got != "admin-hits=0" {
		t.Fatalf("after %d attempts without the group: %q; the restricted servlet ran", tried, got)
	}

	// Alice, in admins, gets there; a ;jsessionid URL reaches Tomcat as is.
	if code, body := rawGet(t, addr, "/admin;jsessionid=ABC123/", alice); code != 200 || !strings.Contains(body, "ADMIN-PAGE servlet=/admin/index.jsp user=alice") {
		t.Errorf("alice /admin;jsessionid=ABC123/: %d %q", code, body)
	}
	want := "CART servlet=/shop/cart.jsp session=ABC123 fromURL=true query=x=1 user=alice"
	if code, body := rawGet(t, addr, "/shop/cart.jsp;jsessionid=ABC123?x=1", alice); code != 200 || body != want {
		t.Errorf("alice's ;jsessionid URL: %d %q, want %q", code, body, want)
	}
	if got := adminHits(); got != "admin-hits=1" {
		t.Errorf("after alice: %q, want 1", got)
	}
}
