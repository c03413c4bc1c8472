package store

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

// The email index: table user_emails holds, for each user, the match key
// (identity.MatchKey) of every email value in its document — all of them,
// not only the primary one the users.email column keeps — so that a SCIM
// filter on any email (Entra's `emails[type eq "work"].value eq "x"`) is
// answered from an index instead of reading every user. Each user write
// keeps it in the same transaction; migration 0007 filled it for the users
// stored before.
//
// The index narrows, the SCIM filter decides: Query "emails" returns the
// users whose document names the email in any spelling (the core
// attribute "emails" in any case, each element's "value", or a bare string
// element) and the handler applies the whole filter to those few.

// EmailKeys returns the match keys of every email value in a user
// document, sorted and without repeats. A document that is not JSON, or has
// no emails, has none.
func EmailKeys(doc []byte) []string {
	var top map[string]json.RawMessage
	if len(doc) == 0 || json.Unmarshal(doc, &top) != nil {
		return nil
	}
	var keys []string
	for k, raw := range top {
		if !strings.EqualFold(k, "emails") {
			continue
		}
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil {
			continue
		}
		for _, e := range list {
			if v, ok := emailValue(e); ok && v != "" {
				keys = append(keys, identity.MatchKey(v))
			}
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// emailValue is the value of one element of emails: its "value" (any case)
// or the element itself when it is a bare string.
func emailValue(e json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(e, &s) == nil {
		return s, true
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(e, &obj) != nil {
		return "", false
	}
	for k, raw := range obj {
		if strings.EqualFold(k, "value") && json.Unmarshal(raw, &s) == nil {
			return s, true
		}
	}
	return "", false
}

// writeEmails replaces the index rows of the user upk, of the store's
// organization, with keys. fresh: the user has none yet (just inserted).
func (s SQLStore) writeEmails(ctx context.Context, tx DB, upk int64, keys []string, fresh bool) error {
	if !fresh {
		if err := tx.Exec(ctx, `DELETE FROM user_emails WHERE user_pk = $1`, upk); err != nil {
			return s.err(ctx, "write user emails", err)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	var b strings.Builder
	args := make([]any, 0, len(keys)+2)
	args = append(args, upk, OrgOrDefault(s.org))
	b.WriteString(`INSERT INTO user_emails (user_pk, org, value_key) VALUES `)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("($1, $2, $" + strconv.Itoa(i+3) + ")")
		args = append(args, k)
	}
	return s.err(ctx, "write user emails", tx.Exec(ctx, b.String(), args...))
}

// BackfillEmails fills the email index from every stored user document:
// migration 0007's step on every backend, run in its transaction (before
// organizations: every row is the default organization's). It
// replaces what is there, so running it again changes nothing. Rows go in
// batches, one statement for many users, which matters on PostgreSQL
// where each statement is a round trip.
func BackfillEmails(ctx context.Context, tx DB, d Dialect) error {
	s := SQLStore{d: d}
	var args []any // user_pk, value_key pairs
	err := s.each(ctx, tx, "backfill user emails", func(r Rows) error {
		var pk int64
		var doc []byte
		if err := r.Scan(&pk, &doc); err != nil {
			return s.err(ctx, "backfill user emails", err)
		}
		for _, k := range EmailKeys(doc) {
			args = append(args, pk, k)
		}
		return nil
	}, `SELECT pk, doc FROM users ORDER BY pk`)
	if err != nil {
		return err
	}
	if err := tx.Exec(ctx, `DELETE FROM user_emails`); err != nil {
		return s.err(ctx, "backfill user emails", err)
	}
	const batch = 500 // rows per statement: 1,000 parameters
	for len(args) > 0 {
		n := min(len(args), 2*batch)
		var b strings.Builder
		b.WriteString(`INSERT INTO user_emails (user_pk, value_key) VALUES `)
		for i := 0; i < n; i += 2 {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("($" + strconv.Itoa(i+1) + ", $" + strconv.Itoa(i+2) + ")")
		}
		if err := tx.Exec(ctx, b.String(), args[:n]...); err != nil {
			return s.err(ctx, "backfill user emails", err)
		}
		args = args[n:]
	}
	return nil
}
