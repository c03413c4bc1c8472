-- 0005: migration 0003 again, for databases that missed it. Additive and
-- a no-op where 0003 ran: every statement is IF NOT EXISTS.
--
-- From cce1afb to 99af8fe main numbered the password scrub 0003; merging
-- match keys renumbered the scrub 0004 and gave 0003 to match keys. A
-- database main built in between recorded version 3 for the scrub, so
-- the merged binary skipped 0003: no match_key_cutoffs table (a rename or
-- delete, and a snapshot, then fail) and no match key indexes.

CREATE TABLE IF NOT EXISTS match_key_cutoffs (
	match_key    TEXT    PRIMARY KEY,
	voids_before INTEGER NOT NULL, -- unix ms
	expires      INTEGER NOT NULL, -- unix ms
	deleted      INTEGER NOT NULL  -- 0 or 1
) STRICT, WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS match_key_cutoffs_expires ON match_key_cutoffs (expires);

CREATE INDEX IF NOT EXISTS users_user_name_key ON users (lower(user_name));
CREATE INDEX IF NOT EXISTS users_email_key ON users (lower(email));
CREATE INDEX IF NOT EXISTS users_external_id_key ON users (lower(external_id));
