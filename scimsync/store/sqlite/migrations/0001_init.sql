-- 0001: users, groups, memberships and the event log.
--
-- Resources carry a surrogate integer key (pk, the rowid) beside their SCIM
-- id, so memberships are two integers: a group of 10,000 members is a small
-- clustered range of group_members, and a user's memberships go with it by
-- ON DELETE CASCADE. Times are unix milliseconds; NULL is the zero time.
-- Tables are STRICT, so a value of the wrong type is an error, not a surprise.

CREATE TABLE users (
	pk              INTEGER PRIMARY KEY,
	id              TEXT    NOT NULL UNIQUE,
	user_name       TEXT    NOT NULL,
	user_name_lower TEXT    NOT NULL UNIQUE, -- strings.ToLower(user_name), computed in Go
	external_id     TEXT    NOT NULL,
	email           TEXT    NOT NULL,
	email_lower     TEXT    NOT NULL,        -- strings.ToLower(email)
	active          INTEGER NOT NULL,
	doc             BLOB,
	version         INTEGER NOT NULL,
	created         INTEGER,
	last_modified   INTEGER,
	valid_after     INTEGER
) STRICT;

-- Lookups for SCIM filters (userName eq has the unique index above). The
-- lowercased columns are computed in Go: SQLite's lower() folds ASCII only.
CREATE INDEX users_email_lower ON users (email_lower);
CREATE INDEX users_external_id ON users (external_id);

CREATE TABLE groups (
	pk                 INTEGER PRIMARY KEY,
	id                 TEXT    NOT NULL UNIQUE,
	display_name       TEXT    NOT NULL,
	display_name_lower TEXT    NOT NULL, -- strings.ToLower(display_name)
	external_id        TEXT    NOT NULL,
	doc                BLOB,
	version            INTEGER NOT NULL,
	created            INTEGER,
	last_modified      INTEGER
) STRICT;

CREATE INDEX groups_display_name_lower ON groups (display_name_lower);
CREATE INDEX groups_external_id ON groups (external_id);

CREATE TABLE group_members (
	group_pk INTEGER NOT NULL REFERENCES groups (pk) ON DELETE CASCADE,
	user_pk  INTEGER NOT NULL REFERENCES users (pk) ON DELETE CASCADE,
	PRIMARY KEY (group_pk, user_pk)
) STRICT, WITHOUT ROWID;

-- For the cascade when a user is deleted.
CREATE INDEX group_members_user ON group_members (user_pk);

-- AUTOINCREMENT: a seq is never reused, even once old events are pruned, so
-- a follower's position stays meaningful.
CREATE TABLE events (
	seq           INTEGER PRIMARY KEY AUTOINCREMENT,
	time          INTEGER NOT NULL,
	kind          TEXT    NOT NULL,
	resource_type TEXT    NOT NULL,
	resource_id   TEXT    NOT NULL,
	actor         TEXT    NOT NULL,
	data          TEXT -- JSON: {"user": …} | {"group": …} | {"members": […]}
) STRICT;
