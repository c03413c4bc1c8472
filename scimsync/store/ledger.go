package store

import (
	"context"
	"errors"
	"time"
)

// The login ledger: accepted sign-ins, kept so that the status page can
// show a user's last login and live sessions on every replica that shares
// the database. It is not SCIM: it has its own types and interface, and
// shares only the database with the directory.

// Login is one accepted sign-in in the login ledger. MatchKey is the
// signed-in identity's match key (identity.MatchKey of its email or user,
// per scim.match.identityField), the key the directory user is found by;
// User is the principal's user as the IdP sent it, for display.
type Login struct {
	MatchKey     string
	User         string
	SessionID    string
	Issued       time.Time
	Expires      time.Time
	IdPInitiated bool
	// Org is the organization ("" or "default": the default one).
	Org string
	// IdP, NameID and SessionIndex are the IdP's names for the session
	// (its entity ID, the assertion's NameID and the AuthnStatement's
	// SessionIndex), by which a LogoutRequest finds it.
	IdP, NameID, SessionIndex string
}

// Logins is what the ledger knows of one match key.
type Logins struct {
	Last time.Time // the newest login ever recorded; zero if none
	// Live are the sessions that have not expired and were issued at or
	// after the validAfter given to LoginsOf, newest first, at most
	// LedgerMaxLive of them; LiveTotal counts them all.
	Live      []Login
	LiveTotal int
}

// LedgerMaxLive bounds Logins.Live.
const LedgerMaxLive = 50

// LedgerPruneBatch is how many expired sessions one RecordLogin deletes at
// most: each login adds one row and takes away up to this many dead ones,
// so the table stays near the number of live sessions even when no
// replica sweeps (SessionExpirer).
const LedgerPruneBatch = 100

// LedgerPruneGrace is how long after its expiry RecordLogin may delete a
// session: the sweep (SessionExpirer, every minute on every replica) is
// what deletes and reports expired sessions; RecordLogin's prune is the
// backstop for sessions no sweep reached, which end unreported.
const LedgerPruneGrace = time.Hour

// Ledger records accepted logins and answers what it knows of one match key.
type Ledger interface {
	// RecordLogin records l; recording the same session again is not an
	// error. Expired sessions are pruned from time to time.
	RecordLogin(ctx context.Context, l Login) error
	// LoginsOf returns matchKey's last login in organization org ("" is
	// the default one) and its sessions there live at now that validAfter
	// (the user's ValidAfter) has not voided. Another organization's
	// logins of the same key are never part of it.
	LoginsOf(ctx context.Context, org, matchKey string, validAfter, now time.Time) (Logins, error)
}

// Statement is one SQL statement and its arguments.
type Statement struct {
	SQL  string
	Args []any
}

// SQLLedger implements Ledger for every backend: the same statements, run
// together as the backend runs several statements at once (a transaction,
// a batch).
type SQLLedger struct {
	d    Dialect
	pool DB
	run  func(ctx context.Context, op string, stmts []Statement) error
	now  func() time.Time
}

var _ Ledger = (*SQLLedger)(nil)

// NewSQLLedger is the ledger in the database of pool; run executes
// statements atomically; now is the clock that prunes.
func NewSQLLedger(d Dialect, pool DB, run func(ctx context.Context, op string, stmts []Statement) error,
	now func() time.Time) *SQLLedger {
	return &SQLLedger{d: d, pool: pool, run: run, now: now}
}

// RecordLogin implements Ledger: in one transaction, the match key's last
// login (unless a later one is recorded), the session, and a prune of up
// to LedgerPruneBatch sessions expired more than LedgerPruneGrace ago.
func (l *SQLLedger) RecordLogin(ctx context.Context, in Login) error {
	if in.MatchKey == "" || in.SessionID == "" {
		return errors.New("record login: match key and session ID are required")
	}
	return l.run(ctx, "record login", []Statement{
		{`INSERT INTO last_logins AS ll (subject, user_name, time, org) VALUES ($1, $2, $3, $4)
			ON CONFLICT (subject) DO UPDATE SET user_name = excluded.user_name, time = excluded.time
			WHERE excluded.time >= ll.time`, []any{QualifyKey(in.Org, in.MatchKey), in.User, l.d.Time(in.Issued), OrgOrDefault(in.Org)}},
		{`INSERT INTO login_sessions (session_id, subject, user_name, issued, expires, idp_initiated,
				org, idp, name_id, session_index)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (session_id) DO NOTHING`,
			[]any{in.SessionID, in.MatchKey, in.User, l.d.Time(in.Issued), l.d.Time(in.Expires), in.IdPInitiated,
				OrgOrDefault(in.Org), in.IdP, in.NameID, in.SessionIndex}},
		{`DELETE FROM login_sessions WHERE session_id IN
			(SELECT session_id FROM login_sessions WHERE expires <= $1 LIMIT $2)`, []any{l.d.Time(l.now().Add(-LedgerPruneGrace)), LedgerPruneBatch}},
	})
}

// LoginsOf implements Ledger. (The tables name the match key subject;
// last_logins qualifies another organization's, as RecordLogin writes it.)
func (l *SQLLedger) LoginsOf(ctx context.Context, org, matchKey string, validAfter, now time.Time) (Logins, error) {
	var out Logins
	ts := l.d.Times()
	org = OrgOrDefault(org)
	err := queryRow(ctx, l.pool, `SELECT time FROM last_logins WHERE subject = $1 AND org = $2`,
		QualifyKey(org, matchKey), org).Scan(ts.Dest(0))
	if err != nil && !errors.Is(err, errNoRows) {
		return Logins{}, l.d.Err(ctx, "read logins", err)
	}
	if err == nil {
		out.Last = ts.At(0)
	}
	query, args := `SELECT session_id, user_name, issued, expires, idp_initiated FROM login_sessions
		WHERE subject = $1 AND expires > $2 AND revoked IS NULL AND org = $3`, []any{matchKey, l.d.Time(now), org}
	if !validAfter.IsZero() {
		query, args = query+` AND issued >= $4`, append(args, l.d.Time(validAfter))
	}
	rows, err := l.pool.Query(ctx, query+` ORDER BY issued DESC, session_id`, args...)
	if err != nil {
		return Logins{}, l.d.Err(ctx, "read logins", err)
	}
	defer rows.Close()
	for rows.Next() {
		in := Login{MatchKey: matchKey}
		if err := rows.Scan(&in.SessionID, &in.User, ts.Dest(0), ts.Dest(1), &in.IdPInitiated); err != nil {
			return Logins{}, l.d.Err(ctx, "read logins", err)
		}
		out.LiveTotal++
		if len(out.Live) < LedgerMaxLive {
			in.Issued, in.Expires = ts.At(0), ts.At(1)
			out.Live = append(out.Live, in)
		}
	}
	if err := rows.Err(); err != nil {
		return Logins{}, l.d.Err(ctx, "read logins", err)
	}
	return out, nil
}
