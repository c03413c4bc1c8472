// Command signin signs in once through a SAML IdP with a login form, the
// way a browser would, and prints the session cookies the proxy set as one
// Cookie header value. The benchmark uses it to get a real session.
//
// It knows the two IdPs the benchmark uses: the demo IdP of `portcullis
// demo` (a form with a hidden "request" field and a button per user) and
// any IdP that answers with crewjam/saml's or a similar auto-post form
// carrying SAMLResponse and RelayState.
//
//	signin -url http://127.0.0.1:8080/ -user alice [-cookie-prefix portcullis]
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
	user := flag.String("user", "alice", "demo IdP user to sign in as")
	prefix := flag.String("cookie-prefix", "", "print only cookies whose name starts with this (default: all)")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "signin: -url is required")
		os.Exit(2)
	}
	cookie, err := signIn(*target, *user, *prefix)
	if err != nil {
		fmt.Fprintf(os.Stderr, "signin: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(cookie)
}

var (
	reRequest  = regexp.MustCompile(`name="request" value="([^"]*)"`)
	reAction   = regexp.MustCompile(`<form[^>]*action="([^"]*)"`)
	reResponse = regexp.MustCompile(`name="SAMLResponse" value="([^"]*)"`)
	reRelay    = regexp.MustCompile(`name="RelayState" value="([^"]*)"`)
)

func signIn(target, user, prefix string) (string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
	get := func(u string) (*http.Response, string, error) {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			return nil, "", err
		}
		req.Header.Set("Accept", "text/html")
		return do(c, req)
	}
	// 1. The protected page sends a browser to the IdP.
	resp, body, err := get(target)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", target, err)
	}
	// 2. The demo IdP's login page: pick the user.
	m := reRequest.FindStringSubmatch(body)
	if m == nil {
		return "", fmt.Errorf("no demo IdP login form at %s (status %d)", resp.Request.URL, resp.StatusCode)
	}
	login := resp.Request.URL.ResolveReference(&url.URL{Path: "/login"})
	resp, body, err = postForm(c, login.String(), url.Values{"request": {html.UnescapeString(m[1])}, "user": {user}})
	if err != nil {
		return "", fmt.Errorf("idp login: %w", err)
	}
	// 3. The auto-post form carries the signed response to the proxy's ACS.
	act, sr := reAction.FindStringSubmatch(body), reResponse.FindStringSubmatch(body)
	if act == nil || sr == nil {
		return "", fmt.Errorf("idp answered status %d without a SAMLResponse form", resp.StatusCode)
	}
	form := url.Values{"SAMLResponse": {html.UnescapeString(sr[1])}}
	if rs := reRelay.FindStringSubmatch(body); rs != nil {
		form.Set("RelayState", html.UnescapeString(rs[1]))
	}
	acs, err := resp.Request.URL.Parse(html.UnescapeString(act[1]))
	if err != nil {
		return "", fmt.Errorf("acs url: %w", err)
	}
	resp, _, err = postForm(c, acs.String(), form)
	if err != nil {
		return "", fmt.Errorf("post to acs: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("after sign-in %s answered %d, want 200", resp.Request.URL, resp.StatusCode)
	}
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
