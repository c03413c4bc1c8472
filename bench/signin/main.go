// Command signin signs in once, the way a browser would, and prints the
// cookies the proxy set as one Cookie header value. The benchmark uses it to
// get a real session for each proxy it measures.
//
// It follows redirects and fills in the forms of the IdPs the benchmark
// uses: the demo IdP of `portcullis demo` (a button per user),
// SimpleSAMLphp's username/password form, and any SAML auto-post form
// (SAMLResponse, RelayState). An OIDC sign-in is redirects only.
//
//	signin -url http://127.0.0.1:8080/ [-user alice] [-password alicepass] [-cookie-prefix portcullis]
package main

import (
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

func main() {
	target := flag.String("url", "", "a protected page behind the proxy (required)")
	user := flag.String("user", "alice", "user to sign in as")
	password := flag.String("password", "alicepass", "password, for an IdP that asks (SimpleSAMLphp)")
	prefix := flag.String("cookie-prefix", "", "print only cookies whose name starts with this (default: all)")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "signin: -url is required")
		os.Exit(2)
	}
	cookie, err := signIn(*target, *user, *password, *prefix)
	if err != nil {
		fmt.Fprintf(os.Stderr, "signin: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(cookie)
}

var (
	reDemoRequest = regexp.MustCompile(`name="request" value="([^"]*)"`)
	reAuthState   = regexp.MustCompile(`name="AuthState" value="([^"]*)"`)
	reAction      = regexp.MustCompile(`<form[^>]*action="([^"]*)"`)
	reResponse    = regexp.MustCompile(`name="SAMLResponse" value="([^"]*)"`)
	reRelay       = regexp.MustCompile(`name="RelayState" value="([^"]*)"`)
)

func signIn(target, user, password, prefix string) (string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "text/html")
	resp, body, err := do(c, req)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", target, err)
	}
	for step := 0; ; step++ {
		if step == 10 {
			return "", errors.New("no end to the sign-in after 10 forms")
		}
		here := resp.Request.URL
		var action string
		form := url.Values{}
		switch {
		case reResponse.MatchString(body): // SAML auto-post to the SP's ACS
			form.Set("SAMLResponse", html.UnescapeString(reResponse.FindStringSubmatch(body)[1]))
			if m := reRelay.FindStringSubmatch(body); m != nil {
				form.Set("RelayState", html.UnescapeString(m[1]))
			}
			action = formAction(body)
		case reDemoRequest.MatchString(body): // demo IdP: pick the user
			form.Set("request", html.UnescapeString(reDemoRequest.FindStringSubmatch(body)[1]))
			form.Set("user", user)
			action = "/login"
		case reAuthState.MatchString(body): // SimpleSAMLphp: username and password
			form.Set("AuthState", html.UnescapeString(reAuthState.FindStringSubmatch(body)[1]))
			form.Set("username", user)
			form.Set("password", password)
			action = formAction(body)
		default:
			if resp.StatusCode != http.StatusOK {
				return "", fmt.Errorf("sign-in ended at %s with status %d", here, resp.StatusCode)
			}
			return cookieHeader(jar, target, prefix)
		}
		next, err := here.Parse(action)
		if err != nil {
			return "", fmt.Errorf("form action %q: %w", action, err)
		}
		if resp, body, err = postForm(c, next.String(), form); err != nil {
			return "", fmt.Errorf("post to %s: %w", next.Redacted(), err)
		}
	}
}

func formAction(body string) string {
	if m := reAction.FindStringSubmatch(body); m != nil {
		return html.UnescapeString(m[1])
	}
	return ""
}

func cookieHeader(jar http.CookieJar, target, prefix string) (string, error) {
	u, _ := url.Parse(target)
	var parts []string
	for _, ck := range jar.Cookies(u) {
		if strings.HasPrefix(ck.Name, prefix) {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
	}
	if len(parts) == 0 {
		return "", errors.New("signed in, but the proxy set no session cookie")
	}
	return strings.Join(parts, "; "), nil
}

func postForm(c *http.Client, u string, v url.Values) (*http.Response, string, error) {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(v.Encode()))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	return do(c, req)
}

func do(c *http.Client, req *http.Request) (*http.Response, string, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, string(b), err
}
