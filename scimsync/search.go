package scimsync

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// SchemaSearchRequest is the schema of a POST .search body (RFC 7644 §3.4.3).
const SchemaSearchRequest = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

// search answers POST /Users/.search and /Groups/.search (RFC 7644
// §3.4.3): the query parameters of a GET, in a JSON body, answered by the
// same engine. Search at the service root, across resource types, is not
// offered (service.go answers it 400 tooMany).
func (e *endpoint[T]) search(s *Service, w http.ResponseWriter, r *http.Request) {
	_, m, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q, err := searchValues(m)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.parseList(q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	e.answer(s, w, r, p)
}

// searchValues turns a SearchRequest body into the query parameters a GET
// would carry. Attribute names are case-insensitive (RFC 7643 §2.1); unknown
// ones are ignored.
func searchValues(m map[string]any) (url.Values, error) {
	if !hasSchema(m, SchemaSearchRequest) {
		return nil, badRequest("invalidSyntax", "the body's schemas must include %s", SchemaSearchRequest)
	}
	q := url.Values{}
	for _, name := range []string{"filter", "sortBy", "sortOrder"} {
		if v, _, ok := getCI(m, name); ok && v != nil {
			str, isStr := v.(string)
			if !isStr {
				return nil, badRequest("invalidValue", "%s must be a string", name)
			}
			q.Set(name, str)
		}
	}
	for _, name := range []string{"startIndex", "count"} {
		if v, _, ok := getCI(m, name); ok && v != nil {
			n, isNum := v.(json.Number)
			if !isNum {
				return nil, badRequest("invalidValue", "%s must be an integer", name)
			}
			q.Set(name, n.String())
		}
	}
	for _, name := range []string{"attributes", "excludedAttributes"} {
		if v, _, ok := getCI(m, name); ok && v != nil {
			list, err := stringList(v, name)
			if err != nil {
				return nil, err
			}
			q.Set(name, strings.Join(list, ","))
		}
	}
	return q, nil
}

// stringList is a JSON list of strings (a lone string is accepted too).
func stringList(v any, name string) ([]string, error) {
	if str, ok := v.(string); ok {
		return []string{str}, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, badRequest("invalidValue", "%s must be a list of attribute names", name)
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		str, ok := e.(string)
		if !ok || strings.Contains(str, ",") {
			return nil, badRequest("invalidValue", "%s must be a list of attribute names", name)
		}
		out = append(out, str)
	}
	return out, nil
}
