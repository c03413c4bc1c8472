package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Strict decoding. yaml.v3's KnownFields(true) only applies when a Decoder
// decodes text straight into a struct, but ${VAR} expansion happens on the
// parsed node tree (so comments are never expanded and variables cannot
// inject YAML), and yaml.Node.Decode has no strict mode. So before decoding,
// walker checks the node tree against the Config type itself: unknown keys
// (with a "did you mean"), duplicate keys, merge keys, and scalars that do not
// fit the field's type, each reported with its field path and line. It also
// records the line of every key for Validate's messages. What it rejects it
// removes from the tree (a bad value becomes null, a bad key is dropped), so
// that decoding and validation can still run and report the rest. The walk follows the
// Config type, which is a few levels deep, so aliases cannot make it loop or
// blow up.

var (
	configType   = reflect.TypeFor[Config]()
	orgType      = reflect.TypeFor[Organization]()
	durationType = reflect.TypeFor[time.Duration]()
)

type walker struct {
	lines    map[string]int  // field path → line of its key (or list item)
	explicit map[string]bool // field paths whose value is present and not null
	problems problems
	meant    []string // field paths that an unknown key was probably meant to be
}

func newWalker() *walker {
	return &walker{lines: map[string]int{}, explicit: map[string]bool{}}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		n = n.Alias
	}
	if isNull(n) {
		return // leaves the zero value, like an absent key
	}
	w.explicit[path] = true
	switch {
	case t == durationType:
		w.scalar(n, t, path)
	case t.Kind() == reflect.Struct:
		w.structure(n, t, path)
	case t.Kind() == reflect.Map:
		w.mapping(n, t, path)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.problems.add(path, n.Line, "must be a list")
			setNull(n)
			return
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.lines[p] = item.Line
			w.walk(item, t.Elem(), p)
		}
	default:
		w.scalar(n, t, path)
	}
}

// key returns the text of a mapping key, or false after reporting a problem.
func (w *walker) key(k *yaml.Node, path string) (string, bool) {
	if k.Kind == yaml.AliasNode && k.Alias != nil {
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode {
		w.problems.add(path, k.Line, "keys must be plain strings")
		return "", false
	}
	if k.Tag == "!!merge" || (k.Value == "<<" && k.Style == 0) {
		w.problems.add(path, k.Line, "merge keys (<<) are not supported; write the keys out")
		return "", false
	}
	return k.Value, true
}

func (w *walker) structure(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		w.problems.add(path, n.Line, "must be a mapping")
		setNull(n)
		return
	}
	fields := yamlFields(t)
	seen := map[string]int{}
	kept := n.Content[:0]
	defer func() {
		if n.Kind == yaml.MappingNode { // an alias below may have nulled n
			n.Content = kept
		}
	}()
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name, ok := w.key(k, path)
		if !ok {
			continue
		}
		p := joinKey(path, name)
		if first, dup := seen[name]; dup {
			w.problems.add(p, k.Line, "duplicate key; first set at line %d", first)
			continue
		}
		seen[name] = k.Line
		f, ok := fields[name]
		if !ok {
			hint, sibling := suggest(name, path, fields)
			w.problems.add(p, k.Line, "unknown field%s", hint)
			if sibling != "" {
				// Most likely the operator meant sibling, so a "required"
				// for it would only repeat this problem.
				w.meant = append(w.meant, joinKey(path, sibling))
			}
			continue
		}
		w.lines[p] = k.Line
		w.walk(v, f.Type, p)
		kept = append(kept, k, v)
	}
}

func (w *walker) mapping(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		w.problems.add(path, n.Line, "must be a mapping")
		setNull(n)
		return
	}
	seen := map[string]int{}
	kept := n.Content[:0]
	defer func() {
		if n.Kind == yaml.MappingNode { // an alias below may have nulled n
			n.Content = kept
		}
	}()
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name, ok := w.key(k, path)
		if !ok {
			continue
		}
		p := joinKey(path, name)
		if first, dup := seen[name]; dup {
			w.problems.add(p, k.Line, "duplicate key; first set at line %d", first)
			continue
		}
		seen[name] = k.Line
		w.lines[p] = k.Line
		w.walk(v, t.Elem(), p)
		kept = append(kept, k, v)
	}
}

// scalar checks that n decodes into a value of type t, using yaml.v3's own
// conversion, and is stricter about integers (yaml.v3 truncates 1.5 to 1).
func (w *walker) scalar(n *yaml.Node, t reflect.Type, path string) {
	want := describe(t)
	if n.Kind != yaml.ScalarNode {
		w.problems.add(path, n.Line, "must be %s, not a %s", want, kindName(n.Kind))
		setNull(n)
		return
	}
	ok := n.Decode(reflect.New(t).Interface()) == nil
	if ok && t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64 && t != durationType {
		var v any
		ok = n.Decode(&v) == nil
		switch v.(type) {
		case int, int64, uint64:
		default:
			ok = false
		}
	}
	if !ok {
		w.problems.add(path, n.Line, "must be %s; got %q", want, truncate(n.Value, 40))
		setNull(n)
	}
}

func describe(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 90s, 10m or 1h"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "a whole number"
	case t.Kind() == reflect.String:
		return "a string"
	}
	return t.String()
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}

// yamlFields maps the YAML key of each decodable field of struct type t to
// the field.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	m := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f
	}
	return m
}

// suggest returns " (did you mean X?)" for an unknown key: a field of the same
// mapping spelled alike (case-insensitively equal or within two edits), else
// the same name elsewhere in the config ("cookieName" at the top level →
// session.cookieName), else "". sibling is the field of the same mapping it
// suggests, if any.
func suggest(name, path string, fields map[string]reflect.StructField) (hint, sibling string) {
	best, bestDist := "", 3
	for _, f := range sortedKeys(fields) {
		if strings.EqualFold(f, name) {
			return fmt.Sprintf(" (did you mean %s?)", f), f
		}
		if d := editDistance(strings.ToLower(f), strings.ToLower(name)); d < bestDist && d < len(f)/2+1 {
			best, bestDist = f, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best), best
	}
	for _, p := range allFieldPaths() {
		leaf := p[strings.LastIndexByte(p, '.')+1:]
		if strings.EqualFold(leaf, name) && parentPath(p) != path {
			return fmt.Sprintf(" (did you mean %s?)", p), ""
		}
	}
	return "", ""
}

// allFieldPaths lists the paths of every struct field of Config that is not
// inside a list, such as "session.cookieName".
func allFieldPaths() []string {
	var out []string
	var visit func(t reflect.Type, prefix string)
	visit = func(t reflect.Type, prefix string) {
		fields := yamlFields(t)
		for _, name := range sortedKeys(fields) {
			p := joinKey(prefix, name)
			out = append(out, p)
			if ft := fields[name].Type; ft.Kind() == reflect.Struct && ft != durationType {
				visit(ft, p)
			}
		}
	}
	visit(configType, "")
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
