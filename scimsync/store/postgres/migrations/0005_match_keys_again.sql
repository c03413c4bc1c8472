-- 0005: migration 0003 again, for databases that missed it. Additive and
-- a no-op where 0003 ran: every statement is IF NOT EXISTS.
--
-- From cce1afb to 99af8fe main numbered the password scrub 0003; merging
-- match keys renumbered the scrub 0004 and gave 0003 to match keys. A
-- database main built in between recorded version 3 for the scrub, so
-- the merged binary skipped 0003: no match_key_cutoffs table (a rename or
-- delete, and a snapshot, then fail) and no match key indexes. Where they
-- are missing, building the indexes holds SCIM writes (not reads) for as
-- long as it takes: about half a second for 100,000 users.

CREATE TABLE IF NOT EXISTS match_key_cutoffs (
	match_key    text        PRIMARY KEY,
	voids_before timestamptz NOT NULL,
	expires      timestamptz NOT NULL,
	deleted      boolean     NOT NULL
);

CREATE INDEX IF NOT EXISTS match_key_cutoffs_expires ON match_key_cutoffs (expires);

CREATE INDEX IF NOT EXISTS users_user_name_key ON users (translate(user_name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'));
CREATE INDEX IF NOT EXISTS users_email_key ON users (translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'));
CREATE INDEX IF NOT EXISTS users_external_id_key ON users (translate(external_id, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'));
