package scimsync

import (
	"net/http"
	"strings"
)

// Discovery endpoints (RFC 7644 §4): what this service provider supports.

func (s *Service) serviceProviderConfig(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.writeError(w, r, &scimError{status: 405, detail: "method not allowed here"})
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{
		"schemas":          []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"documentationUri": "https://github.com/portcullis-sso/portcullis#scim",
		"patch":            map[string]any{"supported": true},
		"bulk": map[string]any{"supported": true, "maxOperations": s.o.Config.SCIM.Bulk.MaxOperations,
			"maxPayloadSize": s.o.Config.SCIM.Bulk.MaxPayloadSize},
		"filter":         map[string]any{"supported": true, "maxResults": s.o.Config.SCIM.MaxPageSize},
		"changePassword": map[string]any{"supported": false},
		"sort":           map[string]any{"supported": true},
		"etag":           map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type":        "oauthbearertoken",
			"name":        "Bearer token",
			"description": "A static bearer token from scim.tokensFile",
			"primary":     true,
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": s.baseURL + "/ServiceProviderConfig"},
	})
}

func (s *Service) resourceTypes(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodGet {
		s.writeError(w, r, &scimError{status: 405, detail: "method not allowed here"})
		return
	}
	user := map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"},
		"id":          "User",
		"name":        "User",
		"endpoint":    "/Users",
		"description": "User Account",
		"schema":      SchemaUser,
		"schemaExtensions": []any{map[string]any{
			"schema": SchemaEnterprise, "required": false,
		}},
		"meta": map[string]any{"resourceType": "ResourceType", "location": s.baseURL + "/ResourceTypes/User"},
	}
	group := map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"},
		"id":          "Group",
		"name":        "Group",
		"endpoint":    "/Groups",
		"description": "Group",
		"schema":      SchemaGroup,
		"meta":        map[string]any{"resourceType": "ResourceType", "location": s.baseURL + "/ResourceTypes/Group"},
	}
	switch name {
	case "":
		s.writeList(w, &listParams{startIndex: 1}, 2, []map[string]any{user, group})
	case "User":
		s.writeJSON(w, http.StatusOK, user)
	case "Group":
		s.writeJSON(w, http.StatusOK, group)
	default:
		s.writeError(w, r, &scimError{status: 404, detail: "no such resource type"})
	}
}

func (s *Service) schemas(w http.ResponseWriter, r *http.Request, id string) {
	if r.Method != http.MethodGet {
		s.writeError(w, r, &scimError{status: 405, detail: "method not allowed here"})
		return
	}
	all := []map[string]any{s.schema(SchemaUser, "User", userAttributes), s.schema(SchemaGroup, "Group", groupAttributes),
		s.schema(SchemaEnterprise, "EnterpriseUser", enterpriseAttributes)}
	if id == "" {
		s.writeList(w, &listParams{startIndex: 1}, len(all), all)
		return
	}
	for _, sc := range all {
		if strings.EqualFold(sc["id"].(string), id) {
			s.writeJSON(w, http.StatusOK, sc)
			return
		}
	}
	s.writeError(w, r, &scimError{status: 404, detail: "no such schema"})
}

func (s *Service) schema(id, name string, attrs []map[string]any) map[string]any {
	return map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:schemas:core:2.0:Schema"},
		"id":         id,
		"name":       name,
		"attributes": attrs,
		"meta":       map[string]any{"resourceType": "Schema", "location": s.baseURL + "/Schemas/" + id},
	}
}

// attr describes one attribute in the RFC 7643 §7 form.
func attr(name, typ string, multi, required bool, mutability, returned, uniqueness string, sub ...map[string]any) map[string]any {
	a := map[string]any{
		"name": name, "type": typ, "multiValued": multi, "required": required,
		"caseExact": false, "mutability": mutability, "returned": returned, "uniqueness": uniqueness,
	}
	if len(sub) > 0 {
		a["subAttributes"] = sub
	}
	return a
}

func str(name string) map[string]any {
	return attr(name, "string", false, false, "readWrite", "default", "none")
}

var primarySub = attr("primary", "boolean", false, false, "readWrite", "default", "none")

var multiSub = []map[string]any{str("value"), str("display"), str("type"), primarySub}

var userAttributes = []map[string]any{
	attr("userName", "string", false, true, "readWrite", "default", "server"),
	attr("name", "complex", false, false, "readWrite", "default", "none",
		str("formatted"), str("familyName"), str("givenName"), str("middleName"), str("honorificPrefix"), str("honorificSuffix")),
	str("displayName"), str("nickName"), str("profileUrl"), str("title"), str("userType"),
	str("preferredLanguage"), str("locale"), str("timezone"),
	attr("active", "boolean", false, false, "readWrite", "default", "none"),
	// Accepted on every write and dropped at once (writeOnlyUser): never
	// stored in any form, never returned.
	attr("password", "string", false, false, "writeOnly", "never", "none"),
	attr("emails", "complex", true, false, "readWrite", "default", "none", multiSub...),
	attr("phoneNumbers", "complex", true, false, "readWrite", "default", "none", multiSub...),
	attr("addresses", "complex", true, false, "readWrite", "default", "none",
		str("formatted"), str("streetAddress"), str("locality"), str("region"), str("postalCode"), str("country"), str("type")),
	attr("groups", "complex", true, false, "readOnly", "default", "none", str("value"), str("$ref"), str("display"), str("type")),
	attr("ims", "complex", true, false, "readWrite", "default", "none", multiSub...),
	attr("photos", "complex", true, false, "readWrite", "default", "none",
		attr("value", "reference", false, false, "readWrite", "default", "none"), str("display"), str("type"), primarySub),
	attr("entitlements", "complex", true, false, "readWrite", "default", "none", multiSub...),
	attr("roles", "complex", true, false, "readWrite", "default", "none", multiSub...),
	attr("x509Certificates", "complex", true, false, "readWrite", "default", "none",
		attr("value", "binary", false, false, "readWrite", "default", "none"), str("display"), str("type"), primarySub),
	str("externalId"),
}

var groupAttributes = []map[string]any{
	attr("displayName", "string", false, true, "readWrite", "default", "none"),
	attr("members", "complex", true, false, "readWrite", "default", "none", str("value"), str("$ref"), str("type"), str("display")),
	str("externalId"),
}

var enterpriseAttributes = []map[string]any{
	str("employeeNumber"), str("costCenter"), str("organization"), str("division"), str("department"),
	attr("manager", "complex", false, false, "readWrite", "default", "none", str("value"), str("$ref"), str("displayName")),
}
