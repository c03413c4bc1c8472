-- 0008: organizations. Every directory row belongs to one organization
-- (config organizations[].id; 'default' for the top-level IdP's, which is
-- every row written before this migration). Additive: the binary before
-- this one keeps reading and writing the default organization's rows as
-- before, and its new rows take the default.
--
-- Keys that a UNIQUE constraint or a primary key covers stay unique across
-- the whole table, so another organization's are qualified: the
-- organization id, the unit separator (chr(31), which SCIM values may not
-- hold: scimsync's edge refuses control characters) and the key. The
-- default organization's keys are unqualified, exactly as before
-- (users.user_name_lower, match_key_cutoffs.match_key, last_logins.subject).
-- Every read and write names its organization (scimsync/store, SQLStore.org).

ALTER TABLE users ADD COLUMN IF NOT EXISTS org text NOT NULL DEFAULT 'default';
ALTER TABLE groups ADD COLUMN IF NOT EXISTS org text NOT NULL DEFAULT 'default';
ALTER TABLE events ADD COLUMN IF NOT EXISTS org text NOT NULL DEFAULT 'default';
ALTER TABLE match_key_cutoffs ADD COLUMN IF NOT EXISTS org text NOT NULL DEFAULT 'default';
ALTER TABLE last_logins ADD COLUMN IF NOT EXISTS org text NOT NULL DEFAULT 'default';

CREATE INDEX IF NOT EXISTS users_org ON users (org, pk);
CREATE INDEX IF NOT EXISTS groups_org ON groups (org, pk);
CREATE INDEX IF NOT EXISTS events_org ON events (org, seq);
CREATE INDEX IF NOT EXISTS match_key_cutoffs_org ON match_key_cutoffs (org, expires);
