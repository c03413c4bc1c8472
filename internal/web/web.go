// Package web holds the request-scoped values and the plain error page that
// both the proxy and the SAML handlers need, so neither imports the other.
package web

import (
	"context"
	"html/template"
	"net/http"
)

type ctxKey int

const requestIDKey ctxKey = iota

// WithRequestID returns a context carrying the request ID.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestID returns the request ID stored by WithRequestID, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// PageStyle is the style of every page Portcullis writes itself, for
// pages with a form of their own to look the same.
const PageStyle = `body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}code{background:#f3f3f3;padding:.1rem .3rem}`

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>` + PageStyle + `</style></head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p>
{{if .RequestID}}<p>Request ID: <code>{{.RequestID}}</code></p>{{end}}</body></html>
`))

// Page writes a plain HTML page with a public title and message and the
// request ID, never any internal error text. The caller logs the cause.
func Page(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, struct{ Title, Message, RequestID string }{title, message, RequestID(r.Context())})
}
