package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// readmeSnippet returns the code block after "<!-- snippet: name -->".
func readmeSnippet(t *testing.T, name string) string {
	t.Helper()
	text, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- snippet: " + regexp.QuoteMeta(name) + " -->\n```[a-z]*\n(.*?)\n```").FindSubmatch(text)
	if m == nil {
		t.Fatalf("README.md has no snippet %q", name)
	}
	return string(m[1])
}

// TestREADME_NginxAndCaddySnippetsAreTheTestedOnes: the README shows
// exactly what the end-to-end test runs, with its addresses filled in.
func TestREADME_NginxAndCaddySnippetsAreTheTestedOnes(t *testing.T) {
	src, err := os.ReadFile("forwardauth_ingress_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nginx", "nginx-upstream", "caddy"} {
		m := regexp.MustCompile(`(?s)# --- README ` + name + ` begins\n(.*?)\n\s*# --- README ` + name + ` ends`).FindSubmatch(src)
		if m == nil {
			t.Fatalf("no %s markers in the e2e test", name)
		}
		tested := strings.NewReplacer("{{.Portcullis}}", "portcullis.auth.svc.cluster.local:8080", "{{.Upstream}}", "app:3000").Replace(dedent(string(m[1])))
		if got := readmeSnippet(t, name); got != tested {
			t.Errorf("README %s snippet differs from the one the e2e test runs:\n--- README\n%s\n--- tested\n%s", name, got, tested)
		}
	}
}

// TestREADME_IngressSnippets parses the Kubernetes snippets and checks the
// keys they rely on, and that each drops every spelling it must.
func TestREADME_IngressSnippets(t *testing.T) {
	want := []string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username", "X-Portcullis-Identity"}
	t.Run("ingress-nginx", func(t *testing.T) {
		docs := yamlDocs(t, readmeSnippet(t, "ingress-nginx"))
		ann := dig(t, docs[0], "metadata", "annotations").(map[string]any)
		if u := ann["nginx.ingress.kubernetes.io/auth-url"].(string); !strings.HasSuffix(u, "/.portcullis/auth") {
			t.Errorf("auth-url %q", u)
		}
		if got := strings.Split(ann["nginx.ingress.kubernetes.io/auth-response-headers"].(string), ","); !slices.Equal(got, want) {
			t.Errorf("auth-response-headers %q", got)
		}
		if s := ann["nginx.ingress.kubernetes.io/auth-signin"].(string); !strings.HasSuffix(s, "/saml/login") {
			t.Errorf("auth-signin %q", s)
		}
		if k, _ := ann["nginx.ingress.kubernetes.io/auth-keepalive"].(string); k == "" || strings.Trim(k, "0123456789") != "" || k == "0" {
			t.Errorf("auth-keepalive %q: want a number of connections, so the fast loop answers", k)
		}
		if docs[0]["apiVersion"] != "networking.k8s.io/v1" || docs[0]["kind"] != "Ingress" {
			t.Errorf("not an Ingress: %v", docs[0])
		}
	})
	t.Run("traefik", func(t *testing.T) {
		docs := yamlDocs(t, readmeSnippet(t, "traefik"))
		drop := dig(t, docs[0], "spec", "headers", "customRequestHeaders").(map[string]any)
		for _, name := range want {
			for _, v := range underscoreSpellings(name) {
				if val, ok := drop[v]; !ok || val != "" {
					t.Errorf("customRequestHeaders does not delete %s", v)
				}
			}
		}
		fa := dig(t, docs[1], "spec", "forwardAuth").(map[string]any)
		if !strings.HasSuffix(fa["address"].(string), "/.portcullis/auth") || fa["trustForwardHeader"] != false {
			t.Errorf("forwardAuth %v", fa)
		}
		if got := toStrings(fa["authResponseHeaders"]); !slices.Equal(got, want) {
			t.Errorf("authResponseHeaders %q", got)
		}
		for _, d := range docs {
			if d["apiVersion"] != "traefik.io/v1alpha1" || d["kind"] != "Middleware" {
				t.Errorf("not a Traefik Middleware: %v", d)
			}
		}
	})
	t.Run("envoy-gateway", func(t *testing.T) {
		docs := yamlDocs(t, readmeSnippet(t, "envoy-gateway"))
		ext := dig(t, docs[0], "spec", "extAuth").(map[string]any)
		if p := dig(t, ext, "http", "path"); p != "/.portcullis/auth/envoy" {
			t.Errorf("path %v", p)
		}
		if got := toStrings(dig(t, ext, "http", "headersToBackend")); !slices.Equal(got, want) {
			t.Errorf("headersToBackend %q", got)
		}
		if got := toStrings(ext["headersToExtAuth"]); !slices.Contains(got, "Cookie") || !slices.Contains(got, "Accept") {
			t.Errorf("headersToExtAuth %q: Portcullis needs the cookie and Accept", got)
		}
		if a := dig(t, docs[1], "spec", "headers", "withUnderscoresAction"); a != "DropHeader" {
			t.Errorf("withUnderscoresAction %v", a)
		}
		if docs[0]["kind"] != "SecurityPolicy" || docs[1]["kind"] != "ClientTrafficPolicy" ||
			docs[0]["apiVersion"] != "gateway.envoyproxy.io/v1alpha1" {
			t.Errorf("kinds %v, %v", docs[0]["kind"], docs[1]["kind"])
		}
	})
}

// underscoreSpellings are the spellings of name with at least one "_" for
// "-" (case aside: proxies compare names without it).
func underscoreSpellings(name string) []string {
	parts := strings.Split(name, "-")
	var out []string
	for mask := 1; mask < 1<<(len(parts)-1); mask++ {
		s := parts[0]
		for i, p := range parts[1:] {
			if mask&(1<<i) != 0 {
				s += "_" + p
			} else {
				s += "-" + p
			}
		}
		out = append(out, s)
	}
	return out
}

func yamlDocs(t *testing.T, text string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(text)))
	dec.KnownFields(true)
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("parse: %v\n%s", err, text)
		}
		docs = append(docs, d)
	}
}

func dig(t *testing.T, m map[string]any, keys ...string) any {
	t.Helper()
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v: no key %s", keys, k)
		}
		v = mm[k]
	}
	return v
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func dedent(s string) string {
	lines := strings.Split(s, "\n")
	ind := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " \t"))
		if ind < 0 || n < ind {
			ind = n
		}
	}
	for i, l := range lines {
		if len(l) >= ind {
			lines[i] = l[ind:]
		}
	}
	return strings.Join(lines, "\n")
}
