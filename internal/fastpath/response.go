package fastpath

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portcullis-sso/portcullis/internal/web"
)

// response is the fast loop's http.ResponseWriter: the answer is held
// until the handler returns, then written whole with its Content-Length.
// It offers no Flush and no Hijack (http.ResponseController says so).
type response struct {
	header http.Header
	status int
	body   []byte
	head   bool // a HEAD request: the length is sent, the body is not
	tooBig bool
}

func (w *response) reset(r *http.Request) {
	w.header = make(http.Header, 8)
	w.status = 0
	w.body = w.body[:0]
	if cap(w.body) > 16<<10 {
		w.body = nil // an idle connection does not keep a large answer's buffer
	}
	w.head = r.Method == http.MethodHead
	w.tooBig = false
}

func (w *response) Header() http.Header { return w.header }

// WriteHeader keeps the first final status; informational ones are not
// sent (the handlers served here send none).
func (w *response) WriteHeader(code int) {
	if w.status != 0 || code < 200 {
		return
	}
	if code > 999 {
		code = http.StatusInternalServerError
	}
	w.status = code
}

func (w *response) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if len(w.body)+len(p) > maxBody {
		w.tooBig = true
		return 0, errTooBig
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

type tooBigError struct{}

func (tooBigError) Error() string { return "fastpath: answer body over 64 KiB" }

var errTooBig error = tooBigError{}

// closeAfter: the handler asked for Connection: close.
func (w *response) closeAfter() bool {
	for _, v := range w.header["Connection"] {
		if strings.EqualFold(strings.TrimSpace(v), "close") {
			return true
		}
	}
	return false
}

// writeTo writes the answer as net/http would: status line, the handler's
// header (names that are not tokens dropped, control characters in values
// made spaces, so no value can start a header or an answer of its own),
// Date, Content-Type sniffed when unset, Content-Length. False when the
// answer could not be sent whole.
func (w *response) writeTo(bw *bufio.Writer, closing bool) bool {
	if w.tooBig {
		return false
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(w.status))
	bw.WriteByte(' ')
	if text := http.StatusText(w.status); text != "" {
		bw.WriteString(text)
	} else {
		bw.WriteString("status code " + strconv.Itoa(w.status))
	}
	bw.WriteString("\r\n")
	bodyless := w.status == http.StatusNoContent || w.status == http.StatusNotModified
	for k, vs := range w.header {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Connection", "Trailer":
			continue // ours to write
		}
		if !web.IsToken(k) {
			continue
		}
		for _, v := range vs {
			writeHeaderLine(bw, k, v)
		}
	}
	if _, ok := w.header["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.WriteString(httpDate())
		bw.WriteString("\r\n")
	}
	if !bodyless && !(w.head && len(w.body) == 0) { // net/http sends no length for an empty HEAD answer
		if _, ok := w.header["Content-Type"]; !ok && len(w.body) > 0 {
			writeHeaderLine(bw, "Content-Type", http.DetectContentType(w.body))
		}
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.Itoa(len(w.body)))
		bw.WriteString("\r\n")
	}
	if closing {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	if !bodyless && !w.head {
		bw.Write(w.body)
	}
	return true
}

// writeHeaderLine writes "k: v", v trimmed and every control character in
// it (CR and LF above all) written as a space.
func writeHeaderLine(bw *bufio.Writer, k, v string) {
	v = strings.Trim(v, " \t\r\n")
	bw.WriteString(k)
	bw.WriteString(": ")
	if web.PlainValue(v) {
		bw.WriteString(v)
	} else {
		for i := 0; i < len(v); i++ {
			c := v[i]
			if c < ' ' && c != '\t' || c == 0x7f {
				c = ' '
			}
			bw.WriteByte(c)
		}
	}
	bw.WriteString("\r\n")
}

// httpDate is the Date header's value, formatted once a second.
func httpDate() string {
	now := time.Now()
	if d := lastDate.Load(); d != nil && d.unix == now.Unix() {
		return d.text
	}
	d := &dateText{unix: now.Unix(), text: now.UTC().Format(http.TimeFormat)}
	lastDate.Store(d)
	return d.text
}

type dateText struct {
	unix int64
	text string
}

var lastDate atomic.Pointer[dateText]
