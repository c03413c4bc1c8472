package scimsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// POST /Bulk (RFC 7644 §3.7). Each operation is served by the very handler
// of its single-request form (users.serve, groups.serve) on a request of
// its own, so it has the same validation, store transaction, events, view
// update (the gate) and audit lines, and is all-or-nothing on its own: a
// failed operation changes nothing, the operations before it stay done.

const (
	SchemaBulkRequest  = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	SchemaBulkResponse = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
	bulkIDPrefix       = "bulkId:"
)

// bulkOp is one entry of a BulkRequest's Operations.
type bulkOp struct {
	method, bulkID, path, version string
	data                          any      // the decoded "data" value, nil if absent
	refs                          []string // the bulkIds that path and data reference
	invalid                       error    // what is wrong with the entry itself
}

// bulkResult is one entry of a BulkResponse's Operations (§3.7.3).
type bulkResult struct {
	Location string          `json:"location,omitempty"`
	Method   string          `json:"method"`
	BulkID   string          `json:"bulkId,omitempty"`
	Version  string          `json:"version,omitempty"`
	Status   string          `json:"status"`
	Response json.RawMessage `json:"response,omitempty"`
}

func (s *Service) bulk(w http.ResponseWriter, r *http.Request, actor string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		s.writeError(w, r, &scimError{status: 405, detail: "method not allowed here"})
		return
	}
	ops, failOnErrors, err := s.readBulk(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	results := s.runBulk(r, ops, failOnErrors, actor)
	s.writeJSON(w, http.StatusOK, map[string]any{
		"schemas":    []string{SchemaBulkResponse},
		"Operations": results,
	})
}

// tooLarge is the 413 of §3.7.4, naming the limit exceeded.
func tooLarge(limit string, n int64) error {
	return &scimError{status: 413, detail: fmt.Sprintf("The size of the bulk operation exceeds the %s (%d).", limit, n)}
}

// readBulk reads and checks a BulkRequest: the limits of §3.7.4, the
// message schema, unique bulkIds. What is wrong with one operation is kept
// in that operation, to be answered in its place.
func (s *Service) readBulk(w http.ResponseWriter, r *http.Request) ([]*bulkOp, int, error) {
	lim := s.o.Config.SCIM.Bulk
	if r.ContentLength > lim.MaxPayloadSize {
		return nil, 0, tooLarge("maxPayloadSize", lim.MaxPayloadSize)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, lim.MaxPayloadSize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, 0, tooLarge("maxPayloadSize", lim.MaxPayloadSize)
		}
		return nil, 0, badRequest("invalidSyntax", "could not read the request body")
	}
	m, err := decodeObject(body)
	if err != nil {
		return nil, 0, err
	}
	if err := checkNoNUL(m); err != nil {
		return nil, 0, err
	}
	if !hasSchema(m, SchemaBulkRequest) {
		return nil, 0, badRequest("invalidSyntax", "schemas must be [%q]", SchemaBulkRequest)
	}
	if depthExceeds(m, maxPatchDepth+3) { // Operations[i].data is a PATCH body at most
		return nil, 0, badRequest("invalidValue", "request body nests deeper than %d levels", maxPatchDepth+3)
	}
	v, _, _ := lookupKey(m, "failOnErrors")
	failOnErrors, err := bulkFailOnErrors(v)
	if err != nil {
		return nil, 0, err
	}
	v, _, _ = lookupKey(m, "Operations")
	list, ok := v.([]any)
	if !ok {
		return nil, 0, badRequest("invalidSyntax", "Operations must be an array of operations")
	}
	if len(list) > lim.MaxOperations {
		return nil, 0, &scimError{status: 413, detail: fmt.Sprintf(
			"The number of operations exceeds the maxOperations (%d).", lim.MaxOperations)}
	}
	ops := make([]*bulkOp, len(list))
	seen := map[string]bool{}
	for i, v := range list {
		op, ok := v.(map[string]any)
		if !ok {
			return nil, 0, badRequest("invalidSyntax", "Operations[%d] must be an object", i)
		}
		ops[i] = parseBulkOp(op)
		if id := ops[i].bulkID; id != "" && ops[i].method == http.MethodPost {
			if seen[id] {
				return nil, 0, badRequest("invalidValue", "bulkId %q is used by two operations; it must be unique in the request", clip(id))
			}
			seen[id] = true
		}
	}
	return ops, failOnErrors, nil
}

// bulkFailOnErrors reads failOnErrors: absent means go on past any number
// of errors (0 here); otherwise an integer of at least 1.
func bulkFailOnErrors(v any) (int, error) {
	if v == nil {
		return 0, nil
	}
	n, ok := v.(json.Number)
	if ok {
		i, err := strconv.ParseInt(n.String(), 10, 32)
		if err == nil && i >= 1 {
			return int(i), nil
		}
	}
	return 0, badRequest("invalidValue", "failOnErrors must be an integer of at least 1")
}

// parseBulkOp reads one operation; a malformed one keeps its error.
func parseBulkOp(m map[string]any) *bulkOp {
	op := &bulkOp{}
	op.data, _, _ = lookupKey(m, "data")
	str := func(name string) string {
		v, _, present := lookupKey(m, name)
		s, ok := v.(string)
		if present && !ok && op.invalid == nil {
			op.invalid = badRequest("invalidSyntax", "%s must be a string", name)
		}
		return s
	}
	op.method = strings.ToUpper(str("method"))
	op.bulkID, op.path, op.version = str("bulkId"), str("path"), str("version")
	if op.invalid != nil {
		return op
	}
	switch op.method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		if _, ok := op.data.(map[string]any); !ok {
			op.invalid = badRequest("invalidSyntax", "data must be an object for %s", op.method)
		}
	case http.MethodDelete:
	default:
		op.invalid = badRequest("invalidValue", "method must be POST, PUT, PATCH or DELETE")
		return op
	}
	if op.method == http.MethodPost && op.bulkID == "" {
		op.invalid = badRequest("invalidSyntax", "bulkId is required for POST (RFC 7644 §3.7)")
	}
	op.refs = bulkRefs(op.path, op.data, nil)
	return op
}

// bulkRefs appends the bulkIds that the path and the values of data name
// ("bulkId:qwerty" names qwerty) to refs.
func bulkRefs(path string, data any, refs []string) []string {
	if _, id, ok := strings.Cut(path, "/"+bulkIDPrefix); ok {
		refs = append(refs, id)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			if id, ok := strings.CutPrefix(x, bulkIDPrefix); ok {
				refs = append(refs, id)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(data)
	return refs
}

// resolveRefs returns a copy of v with every "bulkId:x" value replaced by
// the id of the resource that the operation with bulkId x created.
func resolveRefs(v any, ids map[string]string) any {
	switch x := v.(type) {
	case string:
		if id, ok := strings.CutPrefix(x, bulkIDPrefix); ok {
			return ids[id]
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = resolveRefs(e, ids)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = resolveRefs(e, ids)
		}
		return out
	}
	return v
}

// bulkRun is the state of one Bulk request's operations.
type bulkRun struct {
	ops     []*bulkOp
	results []*bulkResult
	defines map[string]int    // bulkId → index of the POST that defines it
	ids     map[string]string // bulkId → id of the resource its POST created
	errors  int
}

// runBulk runs the operations in order, except that an operation whose
// references name a POST further on waits for it (§3.7: the client's
// intent is kept). References that no POST of the request defines, that
// name a failed POST, or that form a cycle (which Portcullis, whose group
// members are users only, can never resolve) fail with 409 (§3.7.1,
// §3.7.2). With failOnErrors, processing stops at that many errors; the
// answer lists the operations processed, in request order.
func (s *Service) runBulk(r *http.Request, ops []*bulkOp, failOnErrors int, actor string) []*bulkResult {
	b := &bulkRun{ops: ops, results: make([]*bulkResult, len(ops)),
		defines: map[string]int{}, ids: map[string]string{}}
	for i, op := range ops {
		if op.method == http.MethodPost && op.bulkID != "" && op.invalid == nil {
			b.defines[op.bulkID] = i
		}
	}
	stop := func() bool { return failOnErrors > 0 && b.errors >= failOnErrors }
	for progress := true; progress && !stop(); {
		progress = false
		for i := 0; i < len(ops) && !stop(); i++ {
			if b.results[i] != nil {
				continue
			}
			if conflict, wait := b.blocked(i); wait {
				continue
			} else if conflict != nil {
				b.finish(i, s.failed(r, ops[i], conflict))
			} else {
				b.finish(i, s.runBulkOp(r, ops[i], b.ids, actor))
			}
			progress = true
			i = -1 // a deferred operation may be ready now: start again from the first left
		}
	}
	for i := range ops { // what is left waits on itself: a cycle
		if b.results[i] == nil && !stop() {
			b.finish(i, s.failed(r, ops[i], &scimError{status: 409, scimType: "invalidValue",
				detail: "circular bulkId references: the operations reference each other and cannot be resolved"}))
		}
	}
	out := make([]*bulkResult, 0, len(ops))
	for _, res := range b.results {
		if res != nil {
			out = append(out, res)
		}
	}
	return out
}

// blocked reports whether operation i must wait for a POST not yet run
// (wait), or cannot run because of a reference (conflict).
func (b *bulkRun) blocked(i int) (conflict error, wait bool) {
	for _, ref := range b.ops[i].refs {
		j, ok := b.defines[ref]
		switch {
		case !ok:
			return &scimError{status: 409, scimType: "invalidValue",
				detail: fmt.Sprintf("bulkId %q is not the bulkId of a POST in this request", clip(ref))}, false
		case j == i:
			return &scimError{status: 409, scimType: "invalidValue",
				detail: fmt.Sprintf("the operation with bulkId %q references itself", clip(ref))}, false
		case b.results[j] == nil:
			wait = true
		case b.ids[ref] == "":
			return &scimError{status: 409, scimType: "invalidValue",
				detail: fmt.Sprintf("the operation with bulkId %q failed, so the reference cannot be resolved", clip(ref))}, false
		}
	}
	return nil, wait
}

// finish records operation i's result and what a POST created.
func (b *bulkRun) finish(i int, res *bulkResult) {
	b.results[i] = res
	status, _ := strconv.Atoi(res.Status)
	if status >= 400 {
		b.errors++
		return
	}
	if op := b.ops[i]; op.method == http.MethodPost && op.bulkID != "" {
		b.ids[op.bulkID] = res.Location[strings.LastIndexByte(res.Location, '/')+1:]
	}
}

// failed is the result of an operation that did not run: err as the
// single request would have answered it. A PUT, PATCH or DELETE whose path
// names a resource keeps its location.
func (s *Service) failed(r *http.Request, op *bulkOp, err error) *bulkResult {
	rec := newBulkRecorder()
	s.writeError(rec, r, err)
	res := &bulkResult{Method: op.method, BulkID: op.bulkID, Status: strconv.Itoa(rec.status), Response: rec.body.Bytes()}
	if resource, id, err := bulkPath(op, op.path); err == nil && op.method != http.MethodPost &&
		!strings.HasPrefix(id, bulkIDPrefix) {
		res.Location = s.baseURL + "/" + resource + "/" + id
	}
	return res
}

// runBulkOp serves one operation through its endpoint's handler, on a
// request of its own with its own RequestTimeout, and turns the answer
// into the operation's result.
func (s *Service) runBulkOp(r *http.Request, op *bulkOp, ids map[string]string, actor string) *bulkResult {
	res := &bulkResult{Method: op.method, BulkID: op.bulkID}
	path := op.path
	if before, id, ok := strings.Cut(path, "/"+bulkIDPrefix); ok {
		path = before + "/" + ids[id]
	}
	resource, id, err := bulkPath(op, path)
	if err == nil {
		err = op.invalid
	}
	if err != nil {
		return s.failed(r, op, err)
	}
	var body io.Reader = http.NoBody
	if op.data != nil && op.method != http.MethodDelete {
		b, err := json.Marshal(resolveRefs(op.data, ids))
		if err != nil {
			return s.failed(r, op, badRequest("invalidValue", "data cannot be encoded"))
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.RequestTimeout)
	defer cancel()
	sub, err := http.NewRequestWithContext(ctx, op.method, s.base+"/"+resource+"/"+id, body)
	if err != nil {
		return s.failed(r, op, badRequest("invalidValue", "path is not a valid resource path"))
	}
	sub.Header.Set("Content-Type", "application/scim+json")
	if op.version != "" {
		sub.Header.Set("If-Match", op.version)
	}
	rec := newBulkRecorder()
	if resource == "Users" {
		users.serve(s, rec, sub, id, actor)
	} else {
		groups.serve(s, rec, sub, id, actor)
	}
	if s.o.Metrics != nil {
		_, label := scimLabels(s.base, sub.Method, sub.URL.Path)
		s.o.Metrics.SCIMRequest(resource, label, rec.status)
	}
	res.Status = strconv.Itoa(rec.status)
	res.Version = rec.header.Get("ETag")
	switch {
	case rec.status >= 400:
		res.Response = rec.body.Bytes()
		if op.method != http.MethodPost {
			res.Location = s.baseURL + "/" + resource + "/" + id
		}
	case op.method == http.MethodPost:
		res.Location = rec.header.Get("Location")
	default:
		res.Location = s.baseURL + "/" + resource + "/" + id
	}
	return res
}

// bulkPath splits an operation's path (references resolved) into its
// resource and id: POST names /Users or /Groups, the others one resource.
func bulkPath(op *bulkOp, path string) (resource, id string, err error) {
	rest, ok := strings.CutPrefix(path, "/")
	resource, id, _ = strings.Cut(rest, "/")
	switch {
	case !ok || (resource != "Users" && resource != "Groups") || strings.ContainsAny(id, "/?#"):
		return "", "", badRequest("invalidValue", "path must be /Users or /Groups, or one resource under them, such as /Users/{id}")
	case op.method == http.MethodPost && id != "":
		return "", "", badRequest("invalidValue", "a POST's path names the resource type, such as /Users")
	case op.method != http.MethodPost && (id == "" || id == ".search" || !validResourceID(id)):
		return "", "", badRequest("invalidValue", "a %s's path names one resource, such as /Users/{id}", op.method)
	}
	return resource, id, nil
}

// bulkRecorder is the http.ResponseWriter an operation's handler answers
// into.
type bulkRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newBulkRecorder() *bulkRecorder { return &bulkRecorder{header: http.Header{}} }

func (w *bulkRecorder) Header() http.Header { return w.header }

func (w *bulkRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *bulkRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}
