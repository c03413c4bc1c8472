package scimsync

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// multiValued are the core multi-valued attributes (RFC 7643 §4.1.2,
// §4.2): a single value written to one is stored as a one-element list.
var multiValued = map[string]bool{
	"emails": true, "phonenumbers": true, "ims": true, "photos": true, "addresses": true,
	"groups": true, "entitlements": true, "roles": true, "x509certificates": true, "members": true,
}

// ApplyPatch applies ops to a deep copy of res and returns it; res is never
// modified, and on error nothing is returned, so a PATCH is all or nothing.
// readOnly holds lowercased attribute names the client may not write
// (id, meta, groups); an extension attribute is named "urn:…:attr".
func ApplyPatch(res map[string]any, ops []PatchOp, readOnly map[string]bool) (map[string]any, error) {
	a := &applier{res: cloneMap(res), readOnly: readOnly}
	primariesOf(a.res).keepFirst()
	for i, op := range ops {
		before := primariesOf(a.res)
		if err := a.apply(op); err != nil {
			err.Msg = fmt.Sprintf("operation %d: %s", i+1, err.Msg)
			return nil, err
		}
		before.clearOld(primariesOf(a.res)) // RFC 7644 §3.5.2
	}
	a.flushMembers()
	return a.res, nil
}

type applier struct {
	res      map[string]any
	readOnly map[string]bool
	members  *memberSet // the group's members while member ops run; see memberOp
}

func (a *applier) apply(op PatchOp) *PatchError {
	kind := strings.ToLower(op.Op)
	if kind != "add" && kind != "replace" && kind != "remove" {
		return patchErrorf("invalidSyntax", "unknown op %q (want add, replace or remove)", clip(op.Op))
	}
	value := cloneValue(op.Value) // the result must not share the op's maps
	path := strings.TrimSpace(op.Path)
	if path == "" {
		if kind == "remove" {
			return patchErrorf("noTarget", "remove needs a path")
		}
		obj, ok := value.(map[string]any)
		if !ok {
			return patchErrorf("invalidValue", "without a path the value must be an object of attributes")
		}
		return a.mergeRoot(kind, obj)
	}
	pp, err := parsePatchPath(path)
	if err != nil {
		return err
	}
	if a.isReadOnly(pp.attr) {
		return patchErrorf("mutability", "%s is read-only", pp.attr.String())
	}
	return a.applyPath(kind, pp, value)
}

func (a *applier) isReadOnly(p attrPath) bool {
	if len(a.readOnly) == 0 {
		return false
	}
	if p.urn == "" {
		return a.readOnly[p.lname]
	}
	urn := strings.ToLower(p.urn)
	return a.readOnly[urn] || p.name != "" && a.readOnly[urn+":"+p.lname]
}

// mergeRoot applies an add or replace without a path: each key of obj is an
// attribute, a dotted or URN-qualified path (Entra sends {"name.givenName":
// "x"}), or an extension schema's object. Keys go in sorted order so the
// result never depends on map order. A read-only attribute whose value is
// unchanged is skipped: Okta sends the group's own id back.
func (a *applier) mergeRoot(kind string, obj map[string]any) *PatchError {
	a.flushMembers()
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		v := obj[k]
		var pp patchPath
		if strings.ContainsAny(k, ".:[") {
			var err *PatchError
			if pp, err = parsePatchPath(k); err != nil {
				return err
			}
		} else {
			if !validAttrName(k) {
				return patchErrorf("invalidValue", "%q is not an attribute name", clip(k))
			}
			pp.attr = newAttrPath("", k, "")
		}
		if a.isReadOnly(pp.attr) {
			if cur, ok := pp.attr.lookup(a.res); ok && pp.filter == nil && reflect.DeepEqual(cur, v) {
				continue
			}
			return patchErrorf("mutability", "%s is read-only", pp.attr.String())
		}
		if err := a.applyPath(kind, pp, v); err != nil {
			return err
		}
	}
	return nil
}

// applyPath applies one operation to a parsed path.
func (a *applier) applyPath(kind string, pp patchPath, value any) *PatchError {
	attr := pp.attr
	switch {
	case value == nil && kind == "add":
		return nil // adding nothing
	case value == nil && kind == "replace":
		kind = "remove" // replacing with null unassigns (RFC 7643 §2.5)
	}
	if attr.name == "" {
		return a.applySchema(kind, attr.urn, value)
	}
	cont := a.res
	if attr.urn != "" {
		ext, key, ok := lookupKey(a.res, attr.urn)
		switch {
		case ext == nil && kind == "remove":
			return nil
		case ext == nil:
			m := map[string]any{}
			if !ok {
				key = attr.urn
			}
			a.res[key] = m
			cont = m
		default:
			m, isMap := ext.(map[string]any)
			if !isMap {
				return patchErrorf("invalidPath", "%s is not an object", attr.urn)
			}
			cont = m
		}
		if strings.EqualFold(attr.urn, SchemaEnterprise) && attr.lname == "manager" && attr.sub == "" && pp.filter == nil {
			// The enterprise manager is complex (RFC 7643 §4.3); Entra
			// sends the manager's id as a bare string.
			if s, ok := value.(string); ok {
				value = map[string]any{"value": s}
			}
		}
	}
	leaf := attr.lname
	if attr.sub != "" {
		leaf = attr.lsub
	}
	value = coerceBools(leaf, value)
	if attr.urn == "" && attr.lname == "members" {
		if a.memberOp(kind, pp, value) {
			return nil
		}
		a.flushMembers()
	}
	return a.applyAttr(kind, target{
		cont: cont, name: attr.name, lname: attr.lname, sub: attr.sub, filter: pp.filter,
		multi: attr.urn == "" && multiValued[attr.lname],
	}, value)
}

// applySchema applies an operation whose path is a schema URN: the core
// schema means the resource itself, an extension its object.
func (a *applier) applySchema(kind, urn string, value any) *PatchError {
	obj, isObj := value.(map[string]any)
	if hasPrefixFold(urn, corePrefix) {
		if kind == "remove" || !isObj {
			return patchErrorf("invalidPath", "%s names the whole resource", urn)
		}
		return a.mergeRoot(kind, obj)
	}
	if kind == "remove" || value == nil {
		deleteKeys(a.res, urn)
		return nil
	}
	if !isObj {
		return patchErrorf("invalidValue", "%s must be an object", urn)
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		name, sub, ok := splitAttrNames(k)
		if !ok {
			return patchErrorf("invalidPath", "%q is not an attribute of %s", clip(k), urn)
		}
		pp := patchPath{attr: newAttrPath(urn, name, sub)}
		if a.isReadOnly(pp.attr) {
			return patchErrorf("mutability", "%s is read-only", pp.attr.String())
		}
		if err := a.applyPath(kind, pp, obj[k]); err != nil {
			return err
		}
	}
	return nil
}

// target is where an operation lands: attribute name of cont, optionally
// narrowed by a value filter and a sub-attribute.
type target struct {
	cont   map[string]any
	name   string
	lname  string
	sub    string
	filter node
	multi  bool // a core multi-valued attribute: always stored as a list
}

func subTarget(m map[string]any, sub string) target {
	return target{cont: m, name: sub, lname: strings.ToLower(sub)}
}

func (a *applier) applyAttr(kind string, t target, value any) *PatchError {
	if value == nil && kind != "remove" {
		if kind == "add" {
			return nil // adding nothing
		}
		kind = "remove" // replacing with null unassigns (RFC 7643 §2.5)
	}
	cur, _, exists := lookupKey(t.cont, t.name)
	exists = exists && cur != nil
	switch {
	case t.filter != nil:
		return a.applyFiltered(kind, t, cur, exists, value)
	case t.sub != "":
		return a.applySub(kind, t, cur, exists, value)
	}
	switch kind {
	case "remove":
		if list, ok := cur.([]any); ok && value != nil {
			// Remove only the listed values (Entra removes members so).
			items := asList(value)
			kept := slices.DeleteFunc(list, func(e any) bool {
				return slices.ContainsFunc(items, func(item any) bool { return sameItem(e, item, t.lname) })
			})
			setOrDelete(t.cont, t.name, kept)
			return nil
		}
		deleteKeys(t.cont, t.name)
	default:
		if list, ok := cur.([]any); ok && kind == "add" {
			// add appends to a multi-valued attribute, skipping values
			// already there (RFC 7644 §3.5.2.1).
			for _, item := range asList(value) {
				if !slices.ContainsFunc(list, func(e any) bool { return duplicate(e, item, t.lname) }) {
					list = append(list, item)
				}
			}
			setKey(t.cont, t.name, list)
			return nil
		}
		if vm, ok := value.(map[string]any); ok && !t.multi {
			// A complex value merges: sub-attributes not given are left
			// alone (RFC 7644 §3.5.2.1, §3.5.2.3), and nulls unassign.
			cm, isMap := cur.(map[string]any)
			if !isMap {
				cm = map[string]any{}
				setKey(t.cont, t.name, cm)
			}
			return a.mergeInto(kind, cm, vm)
		}
		setKey(t.cont, t.name, t.store(value, cur))
	}
	return nil
}

// store is value as the attribute keeps it: a list for a multi-valued one.
func (t *target) store(value, cur any) any {
	if _, isList := value.([]any); isList {
		return value
	}
	if _, curList := cur.([]any); curList || t.multi {
		return []any{value}
	}
	return value
}

// mergeInto applies each sub-attribute of vm to the complex value cm.
func (a *applier) mergeInto(kind string, cm, vm map[string]any) *PatchError {
	for _, k := range slices.Sorted(maps.Keys(vm)) {
		if err := a.applyAttr(kind, subTarget(cm, k), vm[k]); err != nil {
			return err
		}
	}
	return nil
}

// applySub handles attr.sub without a value filter. On a multi-valued
// attribute it reaches every element.
func (a *applier) applySub(kind string, t target, cur any, exists bool, value any) *PatchError {
	if !exists {
		if kind == "remove" {
			return nil
		}
		elem := map[string]any{}
		if err := a.applyAttr(kind, subTarget(elem, t.sub), value); err != nil {
			return err
		}
		setKey(t.cont, t.name, t.store(elem, nil))
		return nil
	}
	switch c := cur.(type) {
	case map[string]any:
		return a.applyAttr(kind, subTarget(c, t.sub), value)
	case []any:
		if len(c) == 0 && kind != "remove" {
			elem := map[string]any{}
			if err := a.applyAttr(kind, subTarget(elem, t.sub), value); err != nil {
				return err
			}
			setKey(t.cont, t.name, []any{elem})
			return nil
		}
		for _, e := range c {
			if m, ok := e.(map[string]any); ok {
				if err := a.applyAttr(kind, subTarget(m, t.sub), cloneValue(value)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if kind == "remove" {
		return nil
	}
	return patchErrorf("invalidPath", "%s has no sub-attributes", t.name)
}

// applyFiltered handles attr[filter] and attr[filter].sub.
func (a *applier) applyFiltered(kind string, t target, cur any, exists bool, value any) *PatchError {
	var list []any
	if exists {
		l, ok := cur.([]any)
		if !ok {
			return patchErrorf("invalidPath", "%s is not multi-valued", t.name)
		}
		list = l
	}
	var hits []int
	for i, e := range list {
		if matchElement(t.filter, e, t.lname) {
			hits = append(hits, i)
		}
	}
	if len(hits) == 0 {
		switch kind {
		case "remove":
			return nil // lenient: the IdP's view may be stale
		case "replace":
			return patchErrorf("noTarget", "no value of %s matches the filter", t.name)
		}
		// add: create the element the filter describes (Entra adds
		// emails[type eq "work"].value to a user without a work email).
		elem, ok := elementFromFilter(t.filter)
		if !ok {
			return patchErrorf("noTarget", "no value of %s matches the filter", t.name)
		}
		if err := a.fill(kind, elem, t.sub, value); err != nil {
			return err
		}
		setKey(t.cont, t.name, append(list, elem))
		return nil
	}
	if kind == "remove" && t.sub == "" {
		kept := make([]any, 0, len(list)-len(hits))
		for i, e := range list {
			if _, hit := slices.BinarySearch(hits, i); !hit {
				kept = append(kept, e)
			}
		}
		setOrDelete(t.cont, t.name, kept)
		return nil
	}
	for _, i := range hits {
		m, isMap := list[i].(map[string]any)
		switch {
		case kind == "remove":
			if isMap {
				deleteKeys(m, t.sub)
			}
		case isMap:
			if err := a.fill(kind, m, t.sub, cloneValue(value)); err != nil {
				return err
			}
		case t.sub == "":
			list[i] = cloneValue(value) // a simple element is replaced whole
		}
	}
	return nil
}

// fill writes value into the element m: to its sub-attribute sub, or, with
// no sub, each sub-attribute of the object value.
func (a *applier) fill(kind string, m map[string]any, sub string, value any) *PatchError {
	if sub != "" {
		return a.applyAttr(kind, subTarget(m, sub), value)
	}
	vm, ok := value.(map[string]any)
	if !ok {
		return patchErrorf("invalidValue", "the value for a filtered element must be an object")
	}
	return a.mergeInto(kind, m, vm)
}

// elementFromFilter builds the element a filter of `a eq v [and b eq w]`
// selects, for an add that matches nothing.
func elementFromFilter(f node) (map[string]any, bool) {
	switch n := f.(type) {
	case *andNode:
		l, ok := elementFromFilter(n.l)
		if !ok {
			return nil, false
		}
		r, ok := elementFromFilter(n.r)
		if !ok {
			return nil, false
		}
		for k, v := range r {
			if lv, dup := l[k]; dup && !reflect.DeepEqual(lv, v) {
				return nil, false
			}
			l[k] = v
		}
		return l, true
	case *cmpNode:
		if n.op != opEq || n.path.urn != "" || n.path.sub != "" {
			return nil, false
		}
		var v any
		switch n.lit.kind {
		case litString:
			v = n.lit.s
		case litNumber:
			v = json.Number(n.lit.s)
		case litTrue:
			v = true
		case litFalse:
			v = false
		default:
			return nil, false
		}
		return map[string]any{n.path.name: v}, true
	}
	return nil, false
}

// sameItem reports whether e, an element of the multi-valued attribute
// lname, is what a remove's value item names: equal whole, or by value
// ({"value": "x"} or "x"; exact for references to resources, else ignoring
// case).
func sameItem(e, item any, lname string) bool {
	if reflect.DeepEqual(e, item) {
		return true
	}
	iv := item
	if im, ok := item.(map[string]any); ok {
		v, _, has := lookupKey(im, "value")
		if !has {
			return false
		}
		iv = v
	}
	ev := implicitValue(e)
	es, eok := ev.(string)
	is, iok := iv.(string)
	if eok && iok {
		if caseExactAttr(lname, "value") {
			return es == is
		}
		return strings.EqualFold(es, is)
	}
	return ev != nil && reflect.DeepEqual(ev, iv)
}

// duplicate reports whether adding item to a list holding e adds nothing:
// e is item exactly, or both name the same member or group.
func duplicate(e, item any, lname string) bool {
	if lname == "members" || lname == "groups" {
		ev, eok := memberValue(e)
		iv, iok := memberValue(item)
		if eok && iok {
			return ev == iv
		}
	}
	return reflect.DeepEqual(e, item)
}

func asList(v any) []any {
	if list, ok := v.([]any); ok {
		return list
	}
	return []any{v}
}

// coerceBools turns "True"/"false" strings into booleans for the boolean
// attributes IdPs send as strings (Entra: active, primary), at any depth.
func coerceBools(lname string, v any) any {
	switch x := v.(type) {
	case string:
		if lname == "active" || lname == "primary" {
			if b, ok := boolValue(x); ok {
				return b
			}
		}
	case map[string]any:
		for k, e := range x {
			x[k] = coerceBools(strings.ToLower(k), e)
		}
	case []any:
		for i, e := range x {
			x[i] = coerceBools(lname, e)
		}
	}
	return v
}

// setKey sets m's attribute name, keeping an existing key's spelling and
// dropping any other spellings of it.
func setKey(m map[string]any, name string, v any) {
	_, key, ok := lookupKey(m, name)
	if !ok {
		m[name] = v
		return
	}
	for k := range m {
		if k != key && strings.EqualFold(k, name) {
			delete(m, k)
		}
	}
	m[key] = v
}

func deleteKeys(m map[string]any, name string) {
	for k := range m {
		if strings.EqualFold(k, name) {
			delete(m, k)
		}
	}
}

// setOrDelete stores a list, or removes the attribute when it is empty (an
// empty list and an absent attribute are the same, RFC 7643 §2.5).
func setOrDelete(m map[string]any, name string, list []any) {
	if len(list) == 0 {
		deleteKeys(m, name)
		return
	}
	setKey(m, name, list)
}
