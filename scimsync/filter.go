package scimsync

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

// Filter limits. A filter arrives in a URL, so 8 KiB is far beyond anything
// an IdP sends; the nesting cap keeps the recursive parser's stack small.
const (
	maxFilterLen   = 8 << 10
	maxFilterDepth = 50
)

// corePrefix starts every core schema URN (RFC 7643 §8.7.1); an attribute
// path qualified with it names a core attribute, so the prefix is dropped.
const corePrefix = "urn:ietf:params:scim:schemas:core:"

// FilterError is a filter that cannot be parsed (RFC 7644 §3.12
// invalidFilter). Pos is the byte offset in the filter where it went wrong.
type FilterError struct {
	Pos int
	Msg string
}

func (e *FilterError) Error() string {
	return fmt.Sprintf("invalid filter at offset %d: %s", e.Pos, e.Msg)
}

// Filter is a parsed SCIM filter (RFC 7644 §3.4.2.2).
type Filter interface {
	// Matches evaluates the filter against a resource in its generic JSON
	// form (as encoding/json decodes it, with or without UseNumber).
	Matches(res map[string]any) bool
	// String is the canonical form: lowercase operators, single spaces,
	// JSON literals and only the parentheses the structure needs. It
	// parses back to the same filter.
	String() string
}

type parsedFilter struct{ root node }

func (f *parsedFilter) Matches(res map[string]any) bool { return f.root.match(res, "") }

func (f *parsedFilter) String() string {
	var b strings.Builder
	f.root.write(&b)
	return b.String()
}

// node is one node of a filter's syntax tree.
type node interface {
	// match evaluates against obj, which is an element of the multi-valued
	// attribute parent when the node sits inside a value filter's brackets.
	match(obj map[string]any, parent string) bool
	write(b *strings.Builder)
	prec() int // binding strength: or 1, and 2, the rest 3
}

// ParseFilter parses a filter expression. Attribute names and operators are
// case-insensitive; errors are *FilterError.
func ParseFilter(s string) (Filter, error) {
	if len(s) > maxFilterLen {
		return nil, &FilterError{Pos: maxFilterLen, Msg: fmt.Sprintf("filter is longer than %d bytes", maxFilterLen)}
	}
	p := &filterParser{s: s}
	p.skipSpace()
	if p.pos == len(s) {
		return nil, &FilterError{Pos: 0, Msg: "filter is empty"}
	}
	root, err := p.parseOr(false)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(s) {
		return nil, p.unexpected()
	}
	return &parsedFilter{root}, nil
}

// EqualityOn reports whether f is exactly `attr eq "string"`, so a store can
// answer it from an index. attr is lowercased and dotted ("username",
// "emails.value"; an extension attribute keeps its URN). `members[value eq
// "x"]` means the same as `members.value eq "x"` and is reported as such.
func EqualityOn(f Filter) (attr, value string, ok bool) {
	pf, _ := f.(*parsedFilter)
	if pf == nil {
		return "", "", false
	}
	switch n := pf.root.(type) {
	case *cmpNode:
		if n.op == opEq && n.lit.kind == litString {
			return n.path.key(), n.lit.s, true
		}
	case *valueNode:
		c, isCmp := n.inner.(*cmpNode)
		if n.then == nil && isCmp && c.op == opEq && c.lit.kind == litString &&
			c.path.urn == "" && c.path.sub == "" && n.attr.name != "" {
			return n.attr.key() + "." + c.path.lname, c.lit.s, true
		}
	}
	return "", "", false
}

// Comparison operators (RFC 7644 Table 3).
// FilterUses reports whether f tests the top-level attribute name (any
// case, with or without a schema URN), so that a scan can leave out an
// attribute that is costly to build when the filter never looks at it.
// Unknown filters count as using everything.
func FilterUses(f Filter, name string) bool {
	pf, ok := f.(*parsedFilter)
	if !ok {
		return true
	}
	return nodeUses(pf.root, strings.ToLower(name))
}

func nodeUses(n node, lname string) bool {
	switch n := n.(type) {
	case *cmpNode:
		return n.path.lname == lname
	case *presentNode:
		return n.path.lname == lname
	case *valueNode: // the inner filter tests sub-attributes of n.attr
		return n.attr.lname == lname
	case *andNode:
		return nodeUses(n.l, lname) || nodeUses(n.r, lname)
	case *orNode:
		return nodeUses(n.l, lname) || nodeUses(n.r, lname)
	case *notNode:
		return nodeUses(n.x, lname)
	}
	return true
}

type cmpOp uint8

const (
	opEq cmpOp = iota
	opNe
	opCo
	opSw
	opEw
	opGt
	opGe
	opLt
	opLe
)

var opNames = [...]string{"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"}

func (o cmpOp) String() string { return opNames[o] }

func opByName(s string) (cmpOp, bool) {
	for i, n := range opNames {
		if strings.EqualFold(s, n) {
			return cmpOp(i), true
		}
	}
	return 0, false
}

// ordering reports whether the operator compares order (gt ge lt le).
func (o cmpOp) ordering() bool { return o >= opGt }

type litKind uint8

const (
	litString litKind = iota
	litNumber
	litTrue
	litFalse
	litNull
)

var litKeywords = map[string]litKind{"true": litTrue, "false": litFalse, "null": litNull}

// literal is a comparison value: a JSON string, number, true, false or null.
type literal struct {
	kind   litKind
	text   string    // canonical JSON: a quoted string, a number as written, true…
	s      string    // the string, or the number as written
	lower  string    // s lowercased, for case-insensitive comparison
	t      time.Time // s as an RFC 3339 timestamp, when isTime
	isTime bool
}

// attrPath is an attribute path (RFC 7644 §3.10): an optional extension
// schema URN, an attribute and an optional sub-attribute. A core schema URN
// prefix is dropped while parsing. name is "" when the path is an extension
// schema URN on its own, naming the extension's object.
type attrPath struct {
	urn, name, sub string
	lname, lsub    string // lowercased name and sub
}

func newAttrPath(urn, name, sub string) attrPath {
	return attrPath{urn: urn, name: name, sub: sub, lname: strings.ToLower(name), lsub: strings.ToLower(sub)}
}

func (p *attrPath) String() string {
	s := p.name
	if p.sub != "" {
		s += "." + p.sub
	}
	switch {
	case p.urn == "":
		return s
	case s == "":
		return p.urn
	}
	return p.urn + ":" + s
}

// key is the lowercased dotted form used by EqualityOn.
func (p *attrPath) key() string { return strings.ToLower(p.String()) }

// lookup finds the attribute (not the sub-attribute) in obj.
func (p *attrPath) lookup(obj map[string]any) (any, bool) {
	if p.urn != "" {
		ext, _, ok := lookupKey(obj, p.urn)
		if !ok || p.name == "" {
			return ext, ok
		}
		m, isMap := ext.(map[string]any)
		if !isMap {
			return nil, false
		}
		obj = m
	}
	v, _, ok := lookupKey(obj, p.name)
	return v, ok
}

// eachValue calls fn on every value the path reaches in obj: each element of
// a multi-valued attribute, and the sub-attribute of each element when the
// path has one. It stops and reports true when fn does.
func eachValue(obj map[string]any, p *attrPath, fn func(any) bool) bool {
	v, ok := p.lookup(obj)
	if !ok {
		return false
	}
	if p.sub == "" {
		return eachElem(v, fn)
	}
	return eachElem(v, func(e any) bool {
		m, ok := e.(map[string]any)
		if !ok {
			return false
		}
		sv, _, ok := lookupKey(m, p.sub)
		return ok && eachElem(sv, fn)
	})
}

func eachElem(v any, fn func(any) bool) bool {
	if list, ok := v.([]any); ok {
		for _, e := range list {
			if fn(e) {
				return true
			}
		}
		return false
	}
	return fn(v)
}

// lookupKey returns m's value for name matched case-insensitively (RFC 7643
// §2.1) and the key as spelled in m. An exact match wins; among several
// spellings the lexically smallest does, so the choice is deterministic.
func lookupKey(m map[string]any, name string) (any, string, bool) {
	if v, ok := m[name]; ok {
		return v, name, true
	}
	found, ok := "", false
	for k := range m {
		if strings.EqualFold(k, name) && (!ok || k < found) {
			found, ok = k, true
		}
	}
	if !ok {
		return nil, "", false
	}
	return m[found], found, true
}

// cmpNode is `attrPath op value`.
type cmpNode struct {
	path attrPath
	op   cmpOp
	lit  literal
}

func (n *cmpNode) prec() int { return 3 }

func (n *cmpNode) write(b *strings.Builder) {
	b.WriteString(n.path.String())
	b.WriteByte(' ')
	b.WriteString(n.op.String())
	b.WriteByte(' ')
	b.WriteString(n.lit.text)
}

func (n *cmpNode) match(obj map[string]any, parent string) bool {
	if n.lit.kind == litNull {
		// Absent and null are the same (RFC 7643 §2.5).
		has := eachValue(obj, &n.path, func(c any) bool { return implicitValue(c) != nil })
		switch n.op {
		case opEq:
			return !has
		case opNe:
			return has
		}
		return false
	}
	if n.op == opNe {
		// ne is the negation of eq: true when no value equals, including
		// when the attribute is absent.
		return !n.any(obj, parent, opEq)
	}
	return n.any(obj, parent, n.op)
}

// any reports whether some value of the path compares true under op.
func (n *cmpNode) any(obj map[string]any, parent string, op cmpOp) bool {
	return eachValue(obj, &n.path, func(c any) bool {
		implicit := false
		if m, ok := c.(map[string]any); ok {
			// A complex value compares by its "value" sub-attribute
			// (`emails co "example.com"`, RFC 7644 §3.4.2.2).
			c, _, _ = lookupKey(m, "value")
			implicit = true
		}
		top, sub := n.path.lname, n.path.lsub
		if parent != "" {
			top, sub = parent, n.path.lname
			if n.path.lsub != "" {
				top = "" // deeper than SCIM goes
			}
		} else if n.path.urn != "" {
			top = "" // extension attributes are never caseExact
		}
		if implicit && sub == "" {
			sub = "value"
		}
		return compareValue(op, c, &n.lit, filterFold(top, sub), dateAttr(top, sub))
	})
}

// implicitValue is c, or its "value" sub-attribute when c is complex.
func implicitValue(c any) any {
	if m, ok := c.(map[string]any); ok {
		v, _, _ := lookupKey(m, "value")
		return v
	}
	return c
}

// compareValue compares one attribute value with a literal. Values of the
// wrong type never match, and nor do ordering operators on booleans.
func compareValue(op cmpOp, c any, lit *literal, f fold, date bool) bool {
	switch lit.kind {
	case litString:
		s, ok := c.(string)
		if !ok {
			return false
		}
		if date && lit.isTime && (op == opEq || op.ordering()) {
			if t, err := time.Parse(time.RFC3339, s); err == nil {
				return ordered(op, t.Compare(lit.t))
			}
		}
		want := lit.s
		switch f {
		case foldMatchKey:
			s, want = identity.MatchKey(s), identity.MatchKey(want)
		case foldCase:
			if op == opEq {
				return strings.EqualFold(s, want)
			}
			s, want = strings.ToLower(s), lit.lower
		}
		switch op {
		case opCo:
			return strings.Contains(s, want)
		case opSw:
			return strings.HasPrefix(s, want)
		case opEw:
			return strings.HasSuffix(s, want)
		}
		return ordered(op, strings.Compare(s, want))
	case litNumber:
		if op != opEq && !op.ordering() {
			return false
		}
		var text string
		switch x := c.(type) {
		case json.Number:
			text = string(x)
		case float64:
			text = strconv.FormatFloat(x, 'g', -1, 64)
		case int:
			text = strconv.Itoa(x)
		case int64:
			text = strconv.FormatInt(x, 10)
		default:
			return false
		}
		r, ok := compareNumbers(text, lit.s)
		return ok && ordered(op, r)
	case litTrue, litFalse:
		b, ok := c.(bool)
		return ok && op == opEq && b == (lit.kind == litTrue)
	}
	return false
}

// ordered turns a three-way comparison into the operator's answer.
func ordered(op cmpOp, r int) bool {
	switch op {
	case opEq:
		return r == 0
	case opGt:
		return r > 0
	case opGe:
		return r >= 0
	case opLt:
		return r < 0
	case opLe:
		return r <= 0
	}
	return false
}

// compareNumbers compares two JSON numbers: exactly as integers when both
// are, else as float64.
func compareNumbers(a, b string) (int, bool) {
	if x, err := strconv.ParseInt(a, 10, 64); err == nil {
		if y, err := strconv.ParseInt(b, 10, 64); err == nil {
			return cmp.Compare(x, y), true
		}
	}
	x, err := strconv.ParseFloat(a, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	y, err := strconv.ParseFloat(b, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return cmp.Compare(x, y), true
}

// presentNode is `attrPath pr`: some value is neither null nor empty.
type presentNode struct{ path attrPath }

func (n *presentNode) prec() int { return 3 }

func (n *presentNode) write(b *strings.Builder) {
	b.WriteString(n.path.String())
	b.WriteString(" pr")
}

func (n *presentNode) match(obj map[string]any, _ string) bool {
	return eachValue(obj, &n.path, func(c any) bool {
		switch x := c.(type) {
		case nil:
			return false
		case string:
			return x != ""
		case []any:
			return len(x) > 0
		case map[string]any:
			return len(x) > 0
		}
		return true
	})
}

// valueNode is `attr[valFilter]`, optionally followed by `.sub op value` or
// `.sub pr` (Entra's extension): some element matches the inner filter (and
// the trailing comparison on that same element).
type valueNode struct {
	attr  attrPath
	inner node
	then  node // *cmpNode or *presentNode on the element; nil if none
}

func (n *valueNode) prec() int { return 3 }

func (n *valueNode) write(b *strings.Builder) {
	b.WriteString(n.attr.String())
	b.WriteByte('[')
	n.inner.write(b)
	b.WriteByte(']')
	if n.then != nil {
		b.WriteByte('.')
		n.then.write(b)
	}
}

func (n *valueNode) match(obj map[string]any, _ string) bool {
	v, ok := n.attr.lookup(obj)
	if !ok {
		return false
	}
	return eachElem(v, func(e any) bool {
		return matchElement(n.inner, e, n.attr.lname) &&
			(n.then == nil || matchElement(n.then, e, n.attr.lname))
	})
}

// matchElement evaluates a value filter's inside on one element of the
// multi-valued attribute parent (lowercased). A simple element acts as an
// object whose "value" it is.
func matchElement(f node, e any, parent string) bool {
	m, ok := e.(map[string]any)
	if !ok {
		m = map[string]any{"value": e}
	}
	return f.match(m, parent)
}

type andNode struct{ l, r node }

func (n *andNode) prec() int { return 2 }
func (n *andNode) match(obj map[string]any, parent string) bool {
	return n.l.match(obj, parent) && n.r.match(obj, parent)
}
func (n *andNode) write(b *strings.Builder) {
	writeChild(b, n.l, 2)
	b.WriteString(" and ")
	writeChild(b, n.r, 3)
}

type orNode struct{ l, r node }

func (n *orNode) prec() int { return 1 }
func (n *orNode) match(obj map[string]any, parent string) bool {
	return n.l.match(obj, parent) || n.r.match(obj, parent)
}
func (n *orNode) write(b *strings.Builder) {
	writeChild(b, n.l, 1)
	b.WriteString(" or ")
	writeChild(b, n.r, 2)
}

type notNode struct{ x node }

func (n *notNode) prec() int { return 3 }
func (n *notNode) match(obj map[string]any, parent string) bool {
	return !n.x.match(obj, parent)
}
func (n *notNode) write(b *strings.Builder) {
	b.WriteString("not (")
	n.x.write(b)
	b.WriteByte(')')
}

// writeChild writes f, in parentheses when it binds looser than min. Both
// logical operators associate to the left, so a right operand of the same
// precedence is parenthesised (min is one higher on the right).
func writeChild(b *strings.Builder, f node, min int) {
	if f.prec() < min {
		b.WriteByte('(')
		f.write(b)
		b.WriteByte(')')
		return
	}
	f.write(b)
}

// jsonQuote writes s as a JSON string, leaving <, > and & alone.
func jsonQuote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}
