-- 0002: the login ledger (samlsp's OnLogin), shared by every replica, and an
-- index for event stats.
--
-- last_logins keeps each subject's newest login for as long as the database
-- lives; login_sessions keeps one row per session until it expires (rows
-- are pruned). subject is the key the directory matches on (the
-- assertion's email or user, per scim.match.identityField), lowercased in Go.

CREATE TABLE last_logins (
	subject   text        PRIMARY KEY,
	user_name text        NOT NULL, -- the principal's user as the IdP sent it
	time      timestamptz NOT NULL
);

CREATE TABLE login_sessions (
	session_id    text        PRIMARY KEY,
	subject       text        NOT NULL,
	user_name     text        NOT NULL,
	issued        timestamptz NOT NULL,
	expires       timestamptz NOT NULL,
	idp_initiated boolean     NOT NULL
);

CREATE INDEX login_sessions_subject ON login_sessions (subject, expires);
CREATE INDEX login_sessions_expires ON login_sessions (expires);

-- The status page's last event of each kind and events per hour.
CREATE INDEX events_kind_time ON events (kind, time, seq);
