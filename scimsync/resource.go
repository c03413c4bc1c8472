package scimsync

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Schema URNs (RFC 7643 §8.7, RFC 7644 §3.12, §5).
const (
	SchemaUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaList       = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	SchemaError      = "urn:ietf:params:scim:api:messages:2.0:Error"
	SchemaPatchOp    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

// scimError is an RFC 7644 §3.12 error: an HTTP status, a scimType (may be
// empty) and a detail safe to show the client.
type scimError struct {
	status   int
	scimType string
	detail   string
}

func (e *scimError) Error() string { return e.detail }

func badRequest(scimType, format string, args ...any) *scimError {
	return &scimError{status: 400, scimType: scimType, detail: fmt.Sprintf(format, args...)}
}

// decodeObject parses a JSON object, keeping numbers exact, and refuses
// trailing data.
func decodeObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, badRequest("invalidSyntax", "request body is not a JSON object: %s", jsonErrText(err))
	}
	if m == nil {
		return nil, badRequest("invalidSyntax", "request body must be a JSON object")
	}
	if dec.More() {
		return nil, badRequest("invalidSyntax", "request body has data after the JSON object")
	}
	return m, nil
}

// jsonErrText keeps the JSON decoder's message short and free of our types.
func jsonErrText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("wrong type at byte %d", te.Offset)
	case err.Error() == "EOF" || err.Error() == "unexpected EOF":
		return "unexpected end of input"
	}
	return "malformed JSON"
}

// getCI returns m's value for key, matching the key case-insensitively, and
// the key as spelled in m.
func getCI(m map[string]any, key string) (any, string, bool) {
	if v, ok := m[key]; ok {
		return v, key, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, k, true
		}
	}
	return nil, "", false
}

func deleteCI(m map[string]any, key string) {
	for k := range m {
		if strings.EqualFold(k, key) {
			delete(m, k)
		}
	}
}

// boolValue accepts JSON booleans and the strings "true"/"false" in any case
// (Entra sends "False").
func boolValue(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		switch strings.ToLower(x) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}

// userFromJSON validates a user representation (from POST, PUT or the
// result of a PATCH) and returns the stored fields. The attributes we own
// (id, meta, groups) and the write-only ones (password) are dropped from
// the document.
func userFromJSON(m map[string]any) (*store.User, error) {
	m = cloneMap(m)
	for _, k := range []string{"id", "meta", "groups"} {
		deleteCI(m, k)
	}
	store.DropWriteOnly(m)
	if err := normaliseMultiValued(m); err != nil {
		return nil, err
	}
	v, key, ok := getCI(m, "userName")
	un, isStr := v.(string)
	if !ok || !isStr || strings.TrimSpace(un) == "" {
		return nil, badRequest("invalidValue", "userName is required and must be a non-empty string")
	}
	if len(un) > 512 {
		return nil, badRequest("invalidValue", "userName is longer than 512 bytes")
	}
	if key != "userName" {
		delete(m, key)
		m["userName"] = un
	}
	u := &store.User{UserName: un, Active: true}
	if v, key, ok := getCI(m, "active"); ok && v != nil {
		b, ok := boolValue(v)
		if !ok {
			return nil, badRequest("invalidValue", "active must be a boolean")
		}
		u.Active = b
		delete(m, key)
		m["active"] = b
	}
	if v, _, ok := getCI(m, "externalId"); ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return nil, badRequest("invalidValue", "externalId must be a string")
		}
		u.ExternalID = s
	}
	email, err := primaryEmail(m)
	if err != nil {
		return nil, err
	}
	u.Email = email
	if err := normaliseEnterprise(m); err != nil {
		return nil, err
	}
	u.Doc, err = encodeDoc(m, SchemaUser, "user")
	if err != nil {
		return nil, err
	}
	return u, nil
}

// primaryEmail returns the email marked primary, or else the first one.
func primaryEmail(m map[string]any) (string, error) {
	v, _, ok := getCI(m, "emails")
	if !ok || v == nil {
		return "", nil
	}
	list, ok := v.([]any)
	if !ok {
		return "", badRequest("invalidValue", "emails must be a list")
	}
	first := ""
	for _, item := range list {
		em, ok := item.(map[string]any)
		if !ok {
			return "", badRequest("invalidValue", "each email must be an object")
		}
		val, _, _ := getCI(em, "value")
		s, _ := val.(string)
		if p, _, ok := getCI(em, "primary"); ok {
			if b, ok := boolValue(p); ok {
				for k := range em {
					if strings.EqualFold(k, "primary") {
						em[k] = b
					}
				}
				if b && s != "" {
					return s, nil
				}
			}
		}
		if first == "" {
			first = s
		}
	}
	return first, nil
}

// normaliseEnterprise accepts the enterprise extension's manager as a bare
// string (as some IdPs send it) and stores it as {"value": id}.
func normaliseEnterprise(m map[string]any) error {
	v, _, ok := getCI(m, SchemaEnterprise)
	if !ok || v == nil {
		return nil
	}
	ext, ok := v.(map[string]any)
	if !ok {
		return badRequest("invalidValue", "%s must be an object", SchemaEnterprise)
	}
	if mv, key, ok := getCI(ext, "manager"); ok {
		switch x := mv.(type) {
		case string:
			ext[key] = map[string]any{"value": x}
		case map[string]any, nil:
		default:
			return badRequest("invalidValue", "manager must be an object or a string")
		}
	}
	return nil
}

func ensureSchemas(m map[string]any, core string) {
	var schemas []any
	if v, key, ok := getCI(m, "schemas"); ok {
		delete(m, key)
		if list, ok := v.([]any); ok {
			schemas = list
		}
	}
	has := func(s string) bool {
		for _, x := range schemas {
			if str, ok := x.(string); ok && strings.EqualFold(str, s) {
				return true
			}
		}
		return false
	}
	if !has(core) {
		schemas = append([]any{core}, schemas...)
	}
	if _, _, ok := getCI(m, SchemaEnterprise); ok && !has(SchemaEnterprise) {
		schemas = append(schemas, SchemaEnterprise)
	}
	m["schemas"] = schemas
}

// groupFromJSON validates a group representation and returns the stored
// fields; members become a list of user IDs.
func groupFromJSON(m map[string]any) (*store.Group, error) {
	m = cloneMap(m)
	for _, k := range []string{"id", "meta"} {
		deleteCI(m, k)
	}
	v, key, ok := getCI(m, "displayName")
	dn, isStr := v.(string)
	if !ok || !isStr || strings.TrimSpace(dn) == "" {
		return nil, badRequest("invalidValue", "displayName is required and must be a non-empty string")
	}
	if key != "displayName" {
		delete(m, key)
		m["displayName"] = dn
	}
	g := &store.Group{DisplayName: dn}
	if v, _, ok := getCI(m, "externalId"); ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return nil, badRequest("invalidValue", "externalId must be a string")
		}
		g.ExternalID = s
	}
	if v, key, ok := getCI(m, "members"); ok {
		delete(m, key)
		if v != nil {
			list, ok := v.([]any)
			if !ok {
				return nil, badRequest("invalidValue", "members must be a list")
			}
			seen := make(map[string]struct{}, len(list))
			g.Members = make([]string, 0, len(list))
			for _, item := range list {
				mm, ok := item.(map[string]any)
				if !ok {
					return nil, badRequest("invalidValue", "each member must be an object with a value")
				}
				val, _, _ := getCI(mm, "value")
				id, ok := val.(string)
				if !ok || id == "" {
					return nil, badRequest("invalidValue", "each member must have a string value (a user id)")
				}
				if _, dup := seen[id]; dup {
					continue
				}
				seen[id] = struct{}{}
				g.Members = append(g.Members, id)
			}
		}
	}
	if err := normaliseMultiValued(m); err != nil {
		return nil, err
	}
	var err error
	if g.Doc, err = encodeDoc(m, SchemaGroup, "group"); err != nil {
		return nil, err
	}
	return g, nil
}

// encodeDoc is the stored document of a representation m of schema.
func encodeDoc(m map[string]any, schema, what string) ([]byte, error) {
	ensureSchemas(m, schema)
	doc, err := json.Marshal(m)
	if err != nil {
		return nil, badRequest("invalidValue", "%s cannot be encoded", what)
	}
	return doc, nil
}

// etag is the weak entity tag of a version.
func etag(version int64) string { return fmt.Sprintf(`W/"%d"`, version) }

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// resourceJSON is the representation of a stored resource: its document
// with id and meta set.
func resourceJSON(doc []byte, resourceType, id, base string, created, modified time.Time, version int64) map[string]any {
	m := map[string]any{}
	if len(doc) > 0 {
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		_ = dec.Decode(&m) // we wrote it; it decodes
	}
	m["id"] = id
	m["meta"] = map[string]any{
		"resourceType": resourceType,
		"created":      formatTime(created),
		"lastModified": formatTime(modified),
		"location":     base + "/" + resourceType + "s/" + id,
		"version":      etag(version),
	}
	return m
}

// userJSON is the full representation of a stored user.
func userJSON(u *store.User, base string, groups []GroupRef) map[string]any {
	m := resourceJSON(u.Doc, "User", u.ID, base, u.Created, u.LastModified, u.Version)
	// The indexed columns are authoritative for what the gate uses.
	m["userName"] = u.UserName
	m["active"] = u.Active
	if len(groups) > 0 {
		list := make([]any, 0, len(groups))
		for _, g := range groups {
			list = append(list, map[string]any{
				"value":   g.ID,
				"display": g.Name,
				"$ref":    base + "/Groups/" + g.ID,
				"type":    "direct",
			})
		}
		m["groups"] = list
	}
	return m
}

// groupJSON is the full representation of a stored group; members only when
// withMembers.
func groupJSON(g *store.Group, base string, withMembers bool) map[string]any {
	m := resourceJSON(g.Doc, "Group", g.ID, base, g.Created, g.LastModified, g.Version)
	m["displayName"] = g.DisplayName
	if withMembers {
		list := make([]any, 0, len(g.Members))
		for _, id := range g.Members {
			list = append(list, map[string]any{"value": id, "$ref": base + "/Users/" + id, "type": "User"})
		}
		m["members"] = list
	}
	return m
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneValue(e)
		}
		return out
	}
	return v
}
