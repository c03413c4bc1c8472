-- 0002: the login ledger (samlsp's OnLogin) and an index for event stats.
--
-- last_logins keeps each subject's newest login for as long as the database
-- lives; login_sessions keeps one row per session until it expires (rows
-- are pruned). subject is the key the directory matches on (the
-- assertion's email or user, per scim.match.identityField), lowercased in Go.

CREATE TABLE last_logins (
	subject   TEXT    PRIMARY KEY,
	user_name TEXT    NOT NULL, -- the principal's user as the IdP sent it
	time      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE login_sessions (
	session_id    TEXT    PRIMARY KEY,
	subject       TEXT    NOT NULL,
	user_name     TEXT    NOT NULL,
	issued        INTEGER NOT NULL,
	expires       INTEGER NOT NULL,
	idp_initiated INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX login_sessions_subject ON login_sessions (subject, expires);
CREATE INDEX login_sessions_expires ON login_sessions (expires);

-- The status page's last event of each kind and events per hour. The rowid
-- (seq) is part of every SQLite index, so newest-first is one index walk.
CREATE INDEX events_kind_time ON events (kind, time);
