package scimsync

// Member operations of a group PATCH, indexed so that large groups stay
// linear.

// memberSet is a group's members indexed by value, so that a PATCH of many
// member adds and removes on a large group costs O(members + ops), not
// O(members × ops). Removed elements become tombstones until the flush.
type memberSet struct {
	items   []any
	index   map[string][]int // member value → positions in items
	changed bool
}

var memberGone any = new(int) // tombstone: a pointer no JSON value equals

// memberOp applies the common member operations through the index: add
// members, remove listed members, remove members[value eq "id"]. It
// reports false, changing nothing, for any other operation.
func (a *applier) memberOp(kind string, pp patchPath, value any) bool {
	if pp.attr.sub != "" {
		return false
	}
	var values []string
	switch {
	case pp.filter == nil && (kind == "add" || kind == "remove" && value != nil):
		for _, item := range asList(value) {
			if _, isMap := item.(map[string]any); !isMap && kind == "add" {
				return false // a member is an object; let the general path store it
			}
			v, ok := memberValue(item)
			if !ok {
				return false
			}
			values = append(values, v)
		}
	case pp.filter != nil && kind == "remove":
		attr, v, ok := EqualityOn(&parsedFilter{pp.filter})
		if !ok || attr != "value" {
			return false
		}
		values = []string{v}
	default:
		return false
	}
	ms := a.memberList()
	if ms == nil {
		return false
	}
	if kind == "add" {
		for i, item := range asList(value) {
			if len(ms.index[values[i]]) > 0 {
				continue // already a member
			}
			ms.index[values[i]] = []int{len(ms.items)}
			ms.items = append(ms.items, item)
			ms.changed = true
		}
		return true
	}
	for _, v := range values {
		for _, i := range ms.index[v] {
			ms.items[i] = memberGone
			ms.changed = true
		}
		delete(ms.index, v)
	}
	return true
}

// memberList indexes the current members, or returns nil when members is
// not a list (the general path then reports the error).
func (a *applier) memberList() *memberSet {
	if a.members != nil {
		return a.members
	}
	cur, _, _ := lookupKey(a.res, "members")
	list, ok := cur.([]any)
	if cur != nil && !ok {
		return nil
	}
	ms := &memberSet{items: list, index: make(map[string][]int, len(list))}
	for i, e := range list {
		if v, ok := memberValue(e); ok {
			ms.index[v] = append(ms.index[v], i)
		}
	}
	a.members = ms
	return ms
}

// flushMembers writes the indexed members back into the resource.
func (a *applier) flushMembers() {
	ms := a.members
	a.members = nil
	if ms == nil || !ms.changed {
		return
	}
	kept := make([]any, 0, len(ms.items))
	for _, e := range ms.items {
		if e != memberGone {
			kept = append(kept, e)
		}
	}
	setOrDelete(a.res, "members", kept)
}

// memberValue is a member's value: the "value" of an object, or a string.
func memberValue(e any) (string, bool) {
	if m, ok := e.(map[string]any); ok {
		e, _, _ = lookupKey(m, "value")
	}
	s, ok := e.(string)
	return s, ok
}
