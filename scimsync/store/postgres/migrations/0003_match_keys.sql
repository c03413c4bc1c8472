-- 0003: match keys (scimsync/matchkey.go). Additive only: the previous
-- binary neither reads nor needs any of it.
--
-- match_key_cutoffs holds, per match key, the time before which every
-- session under that key is void, left by a user write that moved the key
-- (a rename, a delete) and kept for session.lifetime (expires); deleted
-- marks a tombstone (the key's user was deleted). The key is
-- identity.MatchKey of the attribute value, computed in Go.

CREATE TABLE match_key_cutoffs (
	match_key    text        PRIMARY KEY,
	voids_before timestamptz NOT NULL,
	expires      timestamptz NOT NULL,
	deleted      boolean     NOT NULL
);

CREATE INDEX match_key_cutoffs_expires ON match_key_cutoffs (expires);

-- Lookups by match key, for uniqueness and for SCIM userName filters.
-- translate() folds the ASCII letters only, exactly as identity.MatchKey
-- does, whatever the database's collation (the *_lower columns hold
-- strings.ToLower, which also maps U+0130 to i and U+212A to k). The
-- expressions must stay exactly those of pgKeyExpr.
CREATE INDEX users_user_name_key ON users (translate(user_name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'));
CREATE INDEX users_email_key ON users (translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'));
CREATE INDEX users_external_id_key ON users (translate(external_id, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'));
