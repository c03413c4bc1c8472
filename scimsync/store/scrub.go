package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// SchemaUser is the core User schema URN (RFC 7643 §8.7.1), under which a
// user document may nest its attributes.
const SchemaUser = "urn:ietf:params:scim:schemas:core:2.0:User"

// writeOnlyUser are the User attributes a client may write and never read
// back (RFC 7643 §4.1.1: password, mutability writeOnly, returned never).
// Portcullis needs none of them, so they are dropped on arrival: never
// stored, hashed, logged or returned in any form.
var writeOnlyUser = []string{"password"}

// DropWriteOnly removes the write-only attributes from a user
// representation, in any spelling of their name: the attribute itself, its
// URN-qualified form, or inside an object under the core schema's URN. It
// reports whether anything was removed. The SCIM edge applies it to every
// write; migration 0004 applied it to what earlier versions had stored.
func DropWriteOnly(m map[string]any) bool {
	dropped := false
	for k, v := range m {
		if isWriteOnly(k) {
			delete(m, k)
			dropped = true
			continue
		}
		if sub, ok := v.(map[string]any); ok && strings.EqualFold(k, SchemaUser) && DropWriteOnly(sub) {
			dropped = true
		}
	}
	return dropped
}

func isWriteOnly(name string) bool {
	for _, w := range writeOnlyUser {
		if strings.EqualFold(name, w) || strings.EqualFold(name, SchemaUser+":"+w) {
			return true
		}
	}
	return false
}

// DropPasswords removes the write-only attributes from every user
// document and every user event, as versions before they were dropped at
// the edge had stored them: migration 0004's step on every backend.
// selectUsers and selectEvents are the backend's queries of the candidate
// (pk, doc) and (seq, data) rows: a cheap filter; the decision is
// DropWriteOnly's.
func DropPasswords(ctx context.Context, tx DB, d Dialect, selectUsers, selectEvents string) error {
	for _, t := range []struct {
		what, query, update string
		scrub               func([]byte) (any, bool, error)
	}{
		{"user", selectUsers, `UPDATE users SET doc = $1 WHERE pk = $2`, scrubUserRow},
		{"event", selectEvents, `UPDATE events SET data = $1 WHERE seq = $2`, scrubEventRow},
	} {
		changed, err := scrubRows(ctx, tx, t.query, t.scrub)
		if err != nil {
			return d.Err(ctx, "drop passwords: read "+t.what+"s", err)
		}
		for _, c := range changed {
			if err := tx.Exec(ctx, t.update, c.data, c.key); err != nil {
				return d.Err(ctx, "drop passwords: update "+t.what, err)
			}
		}
	}
	return nil
}

// scrubbed is one stored value rewritten without write-only attributes.
type scrubbed struct {
	key  int64 // pk of a user, seq of an event
	data any   // the new doc ([]byte) or event data (string)
}

// scrubRows reads every (key, value) row of query and returns those scrub
// changed; the rows are read in full before any is written.
func scrubRows(ctx context.Context, tx DB, query string, scrub func([]byte) (any, bool, error)) ([]scrubbed, error) {
	rows, err := tx.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []scrubbed
	for rows.Next() {
		var key int64
		var v []byte
		if err := rows.Scan(&key, &v); err != nil {
			return nil, err
		}
		data, changed, err := scrub(v)
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", key, err)
		}
		if changed {
			out = append(out, scrubbed{key: key, data: data})
		}
	}
	return out, rows.Err()
}

// scrubUserRow returns doc without its write-only attributes, re-encoded as
// the SCIM edge encodes documents (json.Marshal of the decoded object), so
// nothing else in it changes. A document that is not a JSON object is left
// alone: none was ever written.
func scrubUserRow(doc []byte) (any, bool, error) {
	out, changed := scrubUserDoc(doc)
	return out, changed, nil
}

func scrubUserDoc(doc []byte) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil || m == nil || !DropWriteOnly(m) {
		return doc, false
	}
	out, err := json.Marshal(m)
	if err != nil {
		return doc, false
	}
	return out, true
}

// scrubEventRow rewrites one event's data with its user document scrubbed,
// re-encoded by EncodeEventData.
func scrubEventRow(data []byte) (any, bool, error) {
	var e Event
	if err := DecodeEventData(data, &e); err != nil {
		return nil, false, fmt.Errorf("decode event data: %w", err)
	}
	if e.User == nil {
		return nil, false, nil
	}
	doc, changed := scrubUserDoc(e.User.Doc)
	if !changed {
		return nil, false, nil
	}
	e.User.Doc = doc
	out, err := EncodeEventData(&e)
	return out, err == nil, err
}
