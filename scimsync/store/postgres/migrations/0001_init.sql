-- 0001: users, groups, memberships, the event log and the replay cache.
--
-- The same shape as the SQLite schema: resources carry a surrogate bigint
-- key (pk, in insertion order) beside their SCIM id, so memberships are two
-- integers and go with their user or group by ON DELETE CASCADE. The
-- lowercased columns are computed in Go (strings.ToLower), exactly as for
-- SQLite, so both stores agree on what "the same userName" means whatever
-- the database's collation. Documents are bytea: they come back byte for
-- byte. NULL is the zero time.

CREATE TABLE users (
	pk              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id              text        NOT NULL UNIQUE,
	user_name       text        NOT NULL,
	user_name_lower text        NOT NULL UNIQUE,
	external_id     text        NOT NULL,
	email           text        NOT NULL,
	email_lower     text        NOT NULL,
	active          boolean     NOT NULL,
	doc             bytea,
	version         bigint      NOT NULL,
	created         timestamptz,
	last_modified   timestamptz,
	valid_after     timestamptz
);

CREATE INDEX users_email_lower ON users (email_lower);
CREATE INDEX users_external_id ON users (external_id);

CREATE TABLE groups (
	pk                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id                 text        NOT NULL UNIQUE,
	display_name       text        NOT NULL,
	display_name_lower text        NOT NULL,
	external_id        text        NOT NULL,
	doc                bytea,
	version            bigint      NOT NULL,
	created            timestamptz,
	last_modified      timestamptz
);

CREATE INDEX groups_display_name_lower ON groups (display_name_lower);
CREATE INDEX groups_external_id ON groups (external_id);

CREATE TABLE group_members (
	group_pk bigint NOT NULL REFERENCES groups (pk) ON DELETE CASCADE,
	user_pk  bigint NOT NULL REFERENCES users (pk) ON DELETE CASCADE,
	PRIMARY KEY (group_pk, user_pk)
);

-- For the cascade when a user is deleted, and for "groups of this member".
CREATE INDEX group_members_user ON group_members (user_pk);

-- seq comes from the identity's sequence: never reused, even once old
-- events are pruned, so a follower's position stays meaningful. Appends
-- serialise on an advisory lock (see PostgresStore), so seq order is commit
-- order. data is json, not jsonb: json keeps the text exactly as written,
-- which the documents inside it need.
CREATE TABLE events (
	seq           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time          timestamptz NOT NULL,
	kind          text        NOT NULL,
	resource_type text        NOT NULL,
	resource_id   text        NOT NULL,
	actor         text        NOT NULL,
	data          json -- {"user": …} | {"group": …} | {"members": […]}
);

-- SAML assertion and AuthnRequest IDs already accepted, shared by every
-- replica (samlsp.ReplayCache). A row whose expiry has passed counts as
-- absent and is pruned from time to time.
CREATE TABLE replay_cache (
	id      text        PRIMARY KEY,
	expires timestamptz NOT NULL
);

CREATE INDEX replay_cache_expires ON replay_cache (expires);
