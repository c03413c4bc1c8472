-- 0003: match keys (scimsync/matchkey.go). Additive only: the previous
-- binary neither reads nor needs any of it.
--
-- match_key_cutoffs holds, per match key, the time before which every
-- session under that key is void, left by a user write that moved the key
-- (a rename, a delete) and kept for session.lifetime (expires); deleted
-- marks a tombstone (the key's user was deleted). The key is
-- identity.MatchKey of the attribute value, computed in Go.

CREATE TABLE match_key_cutoffs (
	match_key    TEXT    PRIMARY KEY,
	voids_before INTEGER NOT NULL, -- unix ms
	expires      INTEGER NOT NULL, -- unix ms
	deleted      INTEGER NOT NULL  -- 0 or 1
) STRICT, WITHOUT ROWID;

CREATE INDEX match_key_cutoffs_expires ON match_key_cutoffs (expires);

-- Lookups by match key, for uniqueness and for SCIM userName filters.
-- SQLite's built-in lower() folds the ASCII letters only, exactly as
-- identity.MatchKey does (the *_lower columns hold strings.ToLower, which
-- also maps U+0130 to i and U+212A to k).
CREATE INDEX users_user_name_key ON users (lower(user_name));
CREATE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_external_id_key ON users (lower(external_id));
