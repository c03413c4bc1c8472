package scimsync

// The filter parser: from the text of a filter parameter to the node tree
// that filter.go evaluates.

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// filterParser is a recursive-descent parser for RFC 7644's filter ABNF:
//
//	filter  = or
//	or      = and *("or" and)
//	and     = unary *("and" unary)
//	unary   = "not" ["("] filter [")"] / "(" filter ")" / primary
//	primary = attrPath "[" filter "]" ["." ATTRNAME (compOp value / "pr")]
//	        / attrPath (compOp value / "pr")
//
// `not` without parentheses is accepted (the RFC requires them).
type filterParser struct {
	s     string
	pos   int
	depth int
}

func (p *filterParser) errorf(pos int, format string, args ...any) *FilterError {
	return &FilterError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *filterParser) skipSpace() {
	for p.pos < len(p.s) && isFilterSpace(p.s[p.pos]) {
		p.pos++
	}
}

func isFilterSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// isWordChar reports the bytes of attribute paths, operators and keywords.
func isWordChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == ':' || c == '$'
}

// word skips spaces and reads a word; it returns "" when there is none.
func (p *filterParser) word() (string, int) {
	p.skipSpace()
	start := p.pos
	for p.pos < len(p.s) && isWordChar(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos], start
}

// keyword consumes the next word if it is kw (in any case).
func (p *filterParser) keyword(kw string) bool {
	save := p.pos
	if w, _ := p.word(); strings.EqualFold(w, kw) {
		return true
	}
	p.pos = save
	return false
}

// unexpected describes what stands at pos.
func (p *filterParser) unexpected() *FilterError {
	p.skipSpace()
	if p.pos >= len(p.s) {
		return p.errorf(p.pos, "unexpected end of filter")
	}
	end := p.pos + 1
	for end < len(p.s) && end-p.pos < 24 && isWordChar(p.s[end]) && isWordChar(p.s[p.pos]) {
		end++
	}
	return p.errorf(p.pos, "unexpected %q", p.s[p.pos:end])
}

func (p *filterParser) enter() error {
	p.depth++
	if p.depth > maxFilterDepth {
		return p.errorf(p.pos, "filter nests deeper than %d levels", maxFilterDepth)
	}
	return nil
}

func (p *filterParser) parseOr(inBracket bool) (node, error) {
	l, err := p.parseAnd(inBracket)
	if err != nil {
		return nil, err
	}
	for p.keyword("or") {
		r, err := p.parseAnd(inBracket)
		if err != nil {
			return nil, err
		}
		l = &orNode{l, r}
	}
	return l, nil
}

func (p *filterParser) parseAnd(inBracket bool) (node, error) {
	l, err := p.parseUnary(inBracket)
	if err != nil {
		return nil, err
	}
	for p.keyword("and") {
		r, err := p.parseUnary(inBracket)
		if err != nil {
			return nil, err
		}
		l = &andNode{l, r}
	}
	return l, nil
}

func (p *filterParser) parseUnary(inBracket bool) (node, error) {
	p.skipSpace()
	if p.pos >= len(p.s) {
		return nil, p.errorf(p.pos, "missing expression at end of filter")
	}
	if p.s[p.pos] == '(' {
		p.pos++
		return p.parseGroup(')', inBracket)
	}
	w, start := p.word()
	if w == "" {
		return nil, p.unexpected()
	}
	if strings.EqualFold(w, "not") {
		p.skipSpace()
		var x node
		var err error
		if p.pos < len(p.s) && p.s[p.pos] == '(' {
			p.pos++
			x, err = p.parseGroup(')', inBracket)
		} else {
			if err := p.enter(); err != nil {
				return nil, err
			}
			x, err = p.parseUnary(inBracket)
			p.depth--
		}
		if err != nil {
			return nil, err
		}
		return &notNode{x}, nil
	}
	path, msg := parseAttrPath(w)
	if msg != "" {
		return nil, p.errorf(start, "%s", msg)
	}
	if path.name == "" && hasPrefixFold(path.urn, corePrefix) {
		return nil, p.errorf(start, "%q is a schema, not an attribute", w)
	}
	p.skipSpace()
	if p.pos < len(p.s) && p.s[p.pos] == '[' {
		return p.parseValueFilter(path, start, inBracket)
	}
	return p.parseComparison(path)
}

// parseGroup parses a filter up to the closing byte (")" or "]"), the
// parser standing after the opening one.
func (p *filterParser) parseGroup(closing byte, inBracket bool) (node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	f, err := p.parseOr(inBracket)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos >= len(p.s) || p.s[p.pos] != closing {
		return nil, p.errorf(p.pos, "missing %q", string(closing))
	}
	p.pos++
	p.depth--
	return f, nil
}

// parseValueFilter parses `[valFilter]` and an optional `.sub op value`
// after the attribute path.
func (p *filterParser) parseValueFilter(path attrPath, start int, inBracket bool) (node, error) {
	if inBracket {
		return nil, p.errorf(p.pos, "value filters cannot nest")
	}
	if path.sub != "" || path.name == "" {
		return nil, p.errorf(start, "a value filter must follow an attribute, not %q", path.String())
	}
	p.pos++ // [
	inner, err := p.parseGroup(']', true)
	if err != nil {
		return nil, err
	}
	n := &valueNode{attr: path, inner: inner}
	if p.pos < len(p.s) && p.s[p.pos] == '.' {
		p.pos++
		w, at := p.word()
		if !validAttrName(w) {
			return nil, p.errorf(at, "expected a sub-attribute name after \"]. \"")
		}
		n.then, err = p.parseComparison(newAttrPath("", w, ""))
		if err != nil {
			return nil, err
		}
	}
	return n, nil
}

func (p *filterParser) parseComparison(path attrPath) (node, error) {
	w, at := p.word()
	if w == "" {
		return nil, p.errorf(p.pos, "missing operator after %q", path.String())
	}
	if strings.EqualFold(w, "pr") {
		return &presentNode{path}, nil
	}
	op, ok := opByName(w)
	if !ok {
		return nil, p.errorf(at, "unknown operator %q", clip(w))
	}
	lit, err := p.parseLiteral()
	if err != nil {
		return nil, err
	}
	return &cmpNode{path: path, op: op, lit: lit}, nil
}

func (p *filterParser) parseLiteral() (literal, error) {
	p.skipSpace()
	if p.pos >= len(p.s) {
		return literal{}, p.errorf(p.pos, "missing value at end of filter")
	}
	start := p.pos
	c := p.s[p.pos]
	switch {
	case c == '"':
		i := p.pos + 1
		for ; i < len(p.s); i++ {
			if p.s[i] == '\\' {
				i++
				continue
			}
			if p.s[i] == '"' {
				break
			}
		}
		if i >= len(p.s) {
			return literal{}, p.errorf(start, "unterminated string")
		}
		var s string
		if err := json.Unmarshal([]byte(p.s[start:i+1]), &s); err != nil {
			return literal{}, p.errorf(start, "invalid string (bad escape or control character)")
		}
		if strings.IndexByte(s, 0) >= 0 {
			return literal{}, p.errorf(start, "a string must not contain U+0000")
		}
		p.pos = i + 1
		l := literal{kind: litString, text: jsonQuote(s), s: s, lower: strings.ToLower(s)}
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			l.t, l.isTime = t, true
		}
		return l, nil
	case c == '-' || c >= '0' && c <= '9':
		end, ok := scanNumber(p.s, p.pos)
		if !ok {
			return literal{}, p.errorf(start, "malformed number")
		}
		p.pos = end
		return literal{kind: litNumber, text: p.s[start:end], s: p.s[start:end]}, nil
	}
	w, _ := p.word()
	if k, ok := litKeywords[strings.ToLower(w)]; ok {
		return literal{kind: k, text: strings.ToLower(w)}, nil
	}
	if w == "" {
		return literal{}, p.errorf(start, "expected a value, found %q", string(c))
	}
	return literal{}, p.errorf(start, "expected a value (string, number, true, false or null), found %q", clip(w))
}

// scanNumber reads a JSON number (RFC 8259 §6) at i and returns its end. The
// number must not run into a word.
func scanNumber(s string, i int) (int, bool) {
	end := i
	for end < len(s) && strings.IndexByte("0123456789+-.eE", s[end]) >= 0 {
		end++
	}
	var n json.Number
	ok := json.Unmarshal([]byte(s[i:end]), &n) == nil && (end == len(s) || !isWordChar(s[end]))
	return end, ok
}

// schemaURN reports whether a path is a schema URN on its own, naming the
// schema's object rather than an attribute of a shorter URN: one of ours
// (RFC 7643 §8.7), or one shaped like them, ending ":<version>:<Resource>"
// (urn:acme:scim:1.0:User). The answer never depends on the resource, so a
// path means the same before and after any PATCH.
func schemaURN(s string) bool {
	if strings.EqualFold(s, SchemaUser) || strings.EqualFold(s, SchemaGroup) ||
		strings.EqualFold(s, SchemaEnterprise) {
		return true
	}
	segs := strings.Split(s, ":")
	if !validURN(s) || len(segs) < 3 {
		return false
	}
	v := segs[len(segs)-2]
	return v != "" && v[0] >= '0' && v[0] <= '9' && strings.Trim(v, "0123456789.") == ""
}

// parseAttrPath splits a word into an attribute path, or returns why not.
// "urn:…:User:name.givenName" is the attribute name.givenName of the schema
// before the last colon. A schema URN on its own, or a URN whose last
// segment cannot be an attribute (urn:acme:ext:1.0), names the schema's
// object.
func parseAttrPath(w string) (attrPath, string) {
	if schemaURN(w) {
		return attrPath{urn: w}, ""
	}
	i := strings.LastIndexByte(w, ':')
	if i < 0 {
		name, sub, ok := splitAttrNames(w)
		if !ok {
			return attrPath{}, fmt.Sprintf("malformed attribute path %q", clip(w))
		}
		return newAttrPath("", name, sub), ""
	}
	urn, rest := w[:i], w[i+1:]
	if !validURN(urn) {
		return attrPath{}, fmt.Sprintf("malformed schema URN in %q", clip(w))
	}
	name, sub, ok := splitAttrNames(rest)
	if !ok {
		if rest != "" && validURN(w) {
			return attrPath{urn: w}, ""
		}
		return attrPath{}, fmt.Sprintf("malformed attribute path %q", clip(w))
	}
	if hasPrefixFold(urn, corePrefix) {
		urn = ""
	}
	return newAttrPath(urn, name, sub), ""
}

func splitAttrNames(s string) (name, sub string, ok bool) {
	name, sub, dotted := strings.Cut(s, ".")
	if !validAttrName(name) || dotted && !validAttrName(sub) {
		return "", "", false
	}
	return name, sub, true
}

// validAttrName is RFC 7643 §2.1's ATTRNAME, plus a leading "$" for $ref.
func validAttrName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case i == 0 && c == '$':
		case i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func validURN(s string) bool {
	if len(s) < 5 || !hasPrefixFold(s, "urn:") || s[len(s)-1] == ':' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == ':' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// clip shortens client text quoted in an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
