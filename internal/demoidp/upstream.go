package demoidp

import (
	"html/template"
	"net/http"
)

// IdentityHeaders are the headers the demo app shows, in the order shown:
// the four the proxy sets by default, and the organization.
var IdentityHeaders = []string{
	"X-Forwarded-User",
	"X-Forwarded-Email",
	"X-Forwarded-Groups",
	"X-Forwarded-Preferred-Username",
	"X-Forwarded-Org", // shown only when sent: with organizations
}

// DeactivateHint returns the command that deactivates the user with this
// email through SCIM, or "" if there is none (yet).
type DeactivateHint func(email string) string

var upstreamTmpl = template.Must(template.New("upstream").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo app</title>` + style + `</head>
<body><h1>Demo app: you are signed in</h1>
<p>This page is the app behind Portcullis. It knows nothing about SAML: it reads who you are from the
headers the proxy added to <code>{{.Method}} {{.Path}}</code>.</p>
<table id="identity"><tr><th>header</th><th>value</th></tr>
{{range .Headers}}<tr><td><code>{{.Name}}</code></td><td id="{{.Name}}">{{if .Sent}}{{.Value}}{{else}}<em>(not sent)</em>{{end}}</td></tr>
{{end}}</table>
<p><a href="/admin/">/admin/</a> is open to the group <code>admins</code> only.
<a href="/saml/logout?rd=/">Sign out</a> to sign in as someone else.</p>
{{if .Events}}<p><a id="events-link" href="/hooks/">Events this app received</a> from Portcullis's webhooks, each verified.</p>{{end}}
{{if .Hint}}<h2>Remove your access through SCIM</h2>
<p>Run this in a terminal, as your IdP's provisioning would, then reload this page:</p>
<pre id="hint">{{.Hint}}</pre>{{end}}
</body></html>
`))

type shownHeader struct {
	Name, Value string
	Sent        bool
}

// Upstream is the demo app: a page showing the identity headers of each
// request it receives, and how to deactivate the signed-in user.
func Upstream(hint DeactivateHint) http.Handler { return upstream(hint, false) }

// upstream is Upstream, linking the events page if events.
func upstream(hint DeactivateHint, events bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" {
			http.NotFound(w, r)
			return
		}
		data := struct {
			Method, Path, Hint string
			Headers            []shownHeader
			Events             bool
		}{Method: r.Method, Path: r.URL.Path, Events: events}
		for _, name := range IdentityHeaders {
			v, sent := r.Header[name]
			if !sent && name == "X-Forwarded-Org" {
				continue
			}
			h := shownHeader{Name: name, Sent: sent}
			if sent && len(v) > 0 {
				h.Value = v[0]
			}
			data.Headers = append(data.Headers, h)
		}
		if hint != nil {
			data.Hint = hint(r.Header.Get("X-Forwarded-Email"))
		}
		securityHeaders(w)
		w.WriteHeader(http.StatusOK)
		_ = upstreamTmpl.Execute(w, data)
	})
}
