package scimsync

// Parsing a PATCH request body (RFC 7644 §3.5.2) into operations and
// their paths; patch.go applies them.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// PATCH limits: no IdP sends more than a few hundred operations at once
// (Entra batches group members by 100s), and a resource nests three deep.
const (
	maxPatchOps   = 1000
	maxPatchDepth = 32
)

// PatchOp is one operation of a PATCH request (RFC 7644 §3.5.2).
type PatchOp struct {
	Op    string // add, replace or remove, in any case
	Path  string // "" when absent
	Value any    // decoded with UseNumber; nil when absent or null
}

// PatchError is a PATCH that cannot be parsed or applied. ScimType is the
// RFC 7644 §3.12 error type: invalidSyntax, invalidPath, invalidValue,
// noTarget or mutability.
type PatchError struct {
	ScimType string
	Msg      string
}

func (e *PatchError) Error() string { return e.ScimType + ": " + e.Msg }

func patchErrorf(scimType, format string, args ...any) *PatchError {
	return &PatchError{ScimType: scimType, Msg: fmt.Sprintf(format, args...)}
}

// ParsePatch decodes and checks a PatchOp message: its schemas, and each
// operation's op, path syntax and value presence. Errors are *PatchError.
func ParsePatch(body []byte) ([]PatchOp, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, patchErrorf("invalidSyntax", "request body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, patchErrorf("invalidSyntax", "request body has data after the JSON object")
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, patchErrorf("invalidSyntax", "request body must be a JSON object")
	}
	if depthExceeds(m, maxPatchDepth) {
		return nil, patchErrorf("invalidValue", "request body nests deeper than %d levels", maxPatchDepth)
	}
	if !hasSchema(m, SchemaPatchOp) {
		return nil, patchErrorf("invalidSyntax", "schemas must contain %q", SchemaPatchOp)
	}
	v, _, _ := lookupKey(m, "Operations")
	list, ok := v.([]any)
	switch {
	case v == nil:
		return nil, patchErrorf("invalidSyntax", "Operations is required")
	case !ok:
		return nil, patchErrorf("invalidSyntax", "Operations must be a list")
	case len(list) == 0:
		return nil, patchErrorf("invalidSyntax", "Operations must not be empty")
	case len(list) > maxPatchOps:
		return nil, patchErrorf("invalidValue", "more than %d operations", maxPatchOps)
	}
	ops := make([]PatchOp, 0, len(list))
	for i, item := range list {
		op, err := parseOp(item)
		if err != nil {
			err.Msg = fmt.Sprintf("operation %d: %s", i+1, err.Msg)
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func parseOp(item any) (PatchOp, *PatchError) {
	m, ok := item.(map[string]any)
	if !ok {
		return PatchOp{}, patchErrorf("invalidSyntax", "not an object")
	}
	v, _, _ := lookupKey(m, "op")
	name, ok := v.(string)
	if !ok {
		return PatchOp{}, patchErrorf("invalidSyntax", "op must be a string")
	}
	kind := strings.ToLower(name)
	if kind != "add" && kind != "replace" && kind != "remove" {
		return PatchOp{}, patchErrorf("invalidSyntax", "unknown op %q (want add, replace or remove)", clip(name))
	}
	op := PatchOp{Op: name}
	if v, _, _ := lookupKey(m, "path"); v != nil {
		s, ok := v.(string)
		if !ok {
			return PatchOp{}, patchErrorf("invalidPath", "path must be a string")
		}
		op.Path = strings.TrimSpace(s)
		if _, err := parsePatchPath(op.Path); err != nil {
			return PatchOp{}, err
		}
	}
	value, _, has := lookupKey(m, "value")
	switch {
	case kind != "remove" && !has:
		return PatchOp{}, patchErrorf("invalidValue", "%s needs a value", kind)
	case kind == "remove" && op.Path == "":
		return PatchOp{}, patchErrorf("noTarget", "remove needs a path")
	}
	op.Value = value
	return op, nil
}

func hasSchema(m map[string]any, urn string) bool {
	v, _, _ := lookupKey(m, "schemas")
	list, _ := v.([]any)
	for _, s := range list {
		if str, ok := s.(string); ok && strings.EqualFold(str, urn) {
			return true
		}
	}
	return false
}

func depthExceeds(v any, limit int) bool {
	if limit < 0 {
		return true
	}
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			if depthExceeds(e, limit-1) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if depthExceeds(e, limit-1) {
				return true
			}
		}
	}
	return false
}

// patchPath is a PATCH target (RFC 7644 §3.5.2 PATH): an attribute path,
// or attr[valFilter] with an optional .sub, kept in attr.sub.
type patchPath struct {
	attr   attrPath
	filter node // nil unless the path has a value filter
}

func parsePatchPath(s string) (patchPath, *PatchError) {
	fail := func(msg string) (patchPath, *PatchError) {
		return patchPath{}, patchErrorf("invalidPath", "path %q: %s", clip(s), msg)
	}
	p := &filterParser{s: s}
	w, _ := p.word()
	if w == "" {
		return fail("expected an attribute")
	}
	attr, msg := parseAttrPath(w)
	if msg != "" {
		return fail(msg)
	}
	pp := patchPath{attr: attr}
	p.skipSpace()
	if p.pos < len(s) && s[p.pos] == '[' {
		if attr.sub != "" || attr.name == "" {
			return fail("a value filter must follow an attribute")
		}
		p.pos++ // [
		inner, err := p.parseGroup(']', true)
		if err != nil {
			var fe *FilterError
			if errors.As(err, &fe) {
				return fail(fe.Msg)
			}
			return fail(err.Error())
		}
		pp.filter = inner
		if p.pos < len(s) && s[p.pos] == '.' {
			p.pos++
			sub, _ := p.word()
			if !validAttrName(sub) {
				return fail("expected a sub-attribute after \"].\"")
			}
			pp.attr = newAttrPath(attr.urn, attr.name, sub)
		}
	}
	p.skipSpace()
	if p.pos < len(s) {
		return fail(p.unexpected().Msg)
	}
	return pp, nil
}
