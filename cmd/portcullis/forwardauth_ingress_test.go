package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"
)

// The ingresses of the forward-auth end-to-end test: private nginx and
// Caddy instances whose configurations are the README's snippets
// (TestREADME_NginxAndCaddySnippetsAreTheTestedOnes keeps them equal).

type ingressVars struct {
	Dir, Portcullis, PublicURL, Upstream, Domain string
	NginxPort, CaddyPort                         int
}

// nginxConf is the README's nginx snippet inside a private instance.
var nginxConf = template.Must(template.New("nginx").Parse(`worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/nginx-error.log info;
events { worker_connections 64; }
http {
  access_log {{.Dir}}/nginx-access.log;
  client_body_temp_path {{.Dir}}/nginx-tmp;
  proxy_temp_path {{.Dir}}/nginx-tmp;
  fastcgi_temp_path {{.Dir}}/nginx-tmp;
  uwsgi_temp_path {{.Dir}}/nginx-tmp;
  scgi_temp_path {{.Dir}}/nginx-tmp;
  # --- README nginx-upstream begins
  # Connections to Portcullis stay open, so its fast loop answers the
  # questions (without keepalive nginx opens one HTTP/1.0 connection each).
  upstream portcullis {
    server {{.Portcullis}};
    keepalive 16;
  }
  # --- README nginx-upstream ends
  server {
    listen 127.0.0.1:{{.NginxPort}};
    server_name app.{{.Domain}};
    # --- README nginx begins
    # underscores_in_headers stays off (the default): nginx drops every
    # client header spelled with "_", such as X_Forwarded_User.
    location / {
      auth_request /.portcullis/auth;
      auth_request_set $pc_user   $upstream_http_x_forwarded_user;
      auth_request_set $pc_email  $upstream_http_x_forwarded_email;
      auth_request_set $pc_groups $upstream_http_x_forwarded_groups;
      auth_request_set $pc_name   $upstream_http_x_forwarded_preferred_username;
      auth_request_set $pc_token  $upstream_http_x_portcullis_identity;
      auth_request_set $pc_signin $upstream_http_x_portcullis_signin;
      error_page 401 = @portcullis_signin;
      # These replace a client's header of the same name in any case.
      proxy_set_header X-Forwarded-User               $pc_user;
      proxy_set_header X-Forwarded-Email              $pc_email;
      proxy_set_header X-Forwarded-Groups             $pc_groups;
      proxy_set_header X-Forwarded-Preferred-Username $pc_name;
      proxy_set_header X-Portcullis-Identity          $pc_token;
      proxy_pass http://{{.Upstream}};
    }
    location = /.portcullis/auth {
      internal;
      proxy_pass http://portcullis;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Forwarded-Uri "";
    }
    location @portcullis_signin {
      return 302 $pc_signin;
    }
    # --- README nginx ends
  }
}
`))

// caddyConf is the README's Caddy snippet inside a private instance.
var caddyConf = template.Must(template.New("caddy").Parse(`{
	admin off
	auto_https off
	storage file_system {{.Dir}}/caddy
}
http://app2.{{.Domain}}:{{.CaddyPort}} {
	bind 127.0.0.1
	# --- README caddy begins
	route {
		# A client's identity headers go first, in every spelling: every
		# name with "_", and ours in any case.
		request_header -*_*
		request_header -X-Forwarded-User
		request_header -X-Forwarded-Email
		request_header -X-Forwarded-Groups
		request_header -X-Forwarded-Preferred-Username
		request_header -X-Portcullis-Identity
		forward_auth {{.Portcullis}} {
			uri /.portcullis/auth
			copy_headers X-Forwarded-User X-Forwarded-Email X-Forwarded-Groups X-Forwarded-Preferred-Username X-Portcullis-Identity
		}
		reverse_proxy {{.Upstream}}
	}
	# --- README caddy ends
}
`))

func startNginx(t *testing.T, dir string, v ingressVars) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "nginx-tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	writeTemplate(t, conf, nginxConf, v)
	startPeer(t, v.NginxPort, filepath.Join(dir, "nginx-error.log"),
		exec.Command(nginxPath, "-p", dir, "-e", filepath.Join(dir, "nginx-error.log"), "-c", conf, "-g", "daemon off;"))
}

func startCaddy(t *testing.T, dir string, v ingressVars) {
	t.Helper()
	conf := filepath.Join(dir, "Caddyfile")
	writeTemplate(t, conf, caddyConf, v)
	cmd := exec.Command(caddyPath, "run", "--config", conf, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	startPeer(t, v.CaddyPort, filepath.Join(dir, "caddy.log"), cmd)
}

// startPeer runs cmd with its output in logPath until the test ends and
// waits for its port.
func startPeer(t *testing.T, port int, logPath string, cmd *exec.Cmd) {
	t.Helper()
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("--- %s:\n%s", logPath, b)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s exited early:\n%s", cmd.Path, b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s not listening on %d after 20s:\n%s", cmd.Path, port, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func writeTemplate(t *testing.T, path string, tmpl *template.Template, v any) {
	t.Helper()
	var b strings.Builder
	if err := tmpl.Execute(&b, v); err != nil {
		t.Fatal(err)
	}
	writeFileT(t, path, b.String())
}
