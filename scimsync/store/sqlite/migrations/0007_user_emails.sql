-- 0007: the email index (scimsync/store/emails.go). Additive only: the
-- previous binary neither reads nor writes it.
--
-- One row per email value of a user's document (every one, not only the
-- primary one users.email keeps), as its match key (identity.MatchKey,
-- computed in Go), so that a SCIM filter on any email is an index lookup.
-- Rows go with their user by ON DELETE CASCADE. The Go step keyed
-- "user_emails.sql" fills it from the users already stored, in this
-- migration's transaction. org is for organizations (#15): every row of
-- today belongs to the default one.

CREATE TABLE IF NOT EXISTS user_emails (
	user_pk   INTEGER NOT NULL REFERENCES users (pk) ON DELETE CASCADE,
	value_key TEXT    NOT NULL,
	org       TEXT    NOT NULL DEFAULT 'default',
	PRIMARY KEY (user_pk, value_key)
) STRICT, WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS user_emails_value_key ON user_emails (value_key);
