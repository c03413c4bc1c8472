package scimsync

import (
	"fmt"
	"strings"
)

// Filters are checked against the attribute types of the schemas that
// /Schemas publishes (discovery.go): RFC 7644 §3.4.2.2 Table 3 has gt, ge,
// lt and le compare strings, numbers and dates, and a comparison of a
// boolean or binary attribute by order "SHALL" fail with 400 invalidFilter.
// So does one of a complex attribute (`name gt "a"`, `emails lt "b"`), and
// one against true, false or null. Attributes the schemas do not name (an
// IdP's own extension) are not checked.

// attrTypes maps an attribute path, lowercased and dotted as attrPath.key
// spells it ("username", "emails.primary", "urn:…:user:manager.value"), to
// its SCIM type.
type attrTypes map[string]string

// commonTypes are the attributes of every resource (RFC 7643 §3.1).
var commonTypes = attrTypes{
	"id": "string", "externalid": "string", "schemas": "reference", "meta": "complex",
	"meta.resourcetype": "string", "meta.created": "dateTime", "meta.lastmodified": "dateTime",
	"meta.location": "reference", "meta.version": "string",
}

// typesOf collects the types of a schema's attributes (RFC 7643 §7 form),
// their names prefixed with prefix (an extension's lowercased URN and ":").
func typesOf(into attrTypes, prefix string, attrs []map[string]any) attrTypes {
	for k, v := range commonTypes {
		into[k] = v
	}
	for _, a := range attrs {
		name := prefix + strings.ToLower(a["name"].(string))
		into[name] = a["type"].(string)
		subs, _ := a["subAttributes"].([]map[string]any)
		for _, sa := range subs {
			into[name+"."+strings.ToLower(sa["name"].(string))] = sa["type"].(string)
		}
	}
	return into
}

var (
	userTypes = typesOf(typesOf(attrTypes{}, "", userAttributes),
		strings.ToLower(SchemaEnterprise)+":", enterpriseAttributes)
	groupTypes = typesOf(attrTypes{}, "", groupAttributes)
)

// checkFilterTypes reports the first comparison of f that its attribute's
// type does not allow, as a 400 invalidFilter; nil when there is none.
func checkFilterTypes(f Filter, types attrTypes) error {
	pf, ok := f.(*parsedFilter)
	if !ok || types == nil {
		return nil
	}
	if msg := checkNode(pf.root, "", types); msg != "" {
		return badRequest("invalidFilter", "%s", msg)
	}
	return nil
}

func checkNode(n node, parent string, types attrTypes) string {
	switch n := n.(type) {
	case *cmpNode:
		return checkCmp(n, parent, types)
	case *valueNode:
		if msg := checkNode(n.inner, n.attr.key(), types); msg != "" {
			return msg
		}
		if n.then != nil {
			return checkNode(n.then, n.attr.key(), types)
		}
	case *andNode:
		if msg := checkNode(n.l, parent, types); msg != "" {
			return msg
		}
		return checkNode(n.r, parent, types)
	case *orNode:
		if msg := checkNode(n.l, parent, types); msg != "" {
			return msg
		}
		return checkNode(n.r, parent, types)
	case *notNode:
		return checkNode(n.x, parent, types)
	}
	return ""
}

// checkCmp checks one comparison; parent is the key of the multi-valued
// attribute whose brackets it sits in, or "".
func checkCmp(n *cmpNode, parent string, types attrTypes) string {
	if !n.op.ordering() {
		return ""
	}
	key := n.path.key()
	if parent != "" {
		key = parent + "." + key
	}
	switch n.lit.kind {
	case litTrue, litFalse, litNull:
		return fmt.Sprintf("%s cannot compare %s with %s: it orders strings, numbers and dates", n.op, key, n.lit.text)
	}
	switch t := types[key]; t {
	case "boolean", "binary", "complex":
		return fmt.Sprintf("%s cannot compare %s, a %s attribute (RFC 7644 §3.4.2.2)", n.op, key, t)
	}
	return ""
}
