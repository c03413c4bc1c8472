package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	Path string // field path as written in YAML: "saml.clockSkew", "routes[1].allowGroups", "headers.X-Forwarded-User"
	Line int    // 1-based line in the file; 0 when unknown
	Msg  string // what is wrong, lowercase
}

// String renders the problem as "line 5: saml.idpMetadataURL: must be an
// absolute https URL", leaving out the line or the path when unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// ValidationError is every problem found in a configuration, from YAML
// syntax and unknown keys to invalid values. Parse, Load and Validate return
// it (Load wraps it with the file name); use errors.As to get at the list.
type ValidationError struct {
	Problems []Problem
}

// Error renders one problem per line, ordered by line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects Problems and turns them into an error.
type problems []Problem

func (ps *problems) add(path string, line int, format string, args ...any) {
	*ps = append(*ps, Problem{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// err returns nil when there are no problems, otherwise a *ValidationError
// with the problems sorted.
func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps.sorted()}
}

// sorted returns a copy ordered by line, problems without a line last, ties
// in the order found.
func (ps problems) sorted() []Problem {
	out := append([]Problem(nil), ps...)
	sort.SliceStable(out, func(i, j int) bool {
		li, lj := out[i].Line, out[j].Line
		if li == 0 || lj == 0 {
			return li != 0 && lj == 0
		}
		return li < lj
	})
	return out
}
