-- 0006: sessions become revocable one by one (Single Logout, an admin's
-- "sign out everywhere"). Additive: the binary before this one writes and
-- reads login_sessions as before and the new columns take their defaults.
--
-- idp, name_id and session_index are the IdP's names for the session (its
-- entity ID, the assertion's NameID and its AuthnStatement SessionIndex),
-- so that an IdP's LogoutRequest finds the sessions it names and no other
-- IdP's. revoked is when the session was ended (NULL: live); revoked
-- sessions stay until they expire, so that a replica starting up loads
-- them. org is the organization (default until organizations exist).
-- Every statement is IF NOT EXISTS, so that running it again changes nothing.

ALTER TABLE login_sessions ADD COLUMN IF NOT EXISTS org TEXT NOT NULL DEFAULT 'default';
ALTER TABLE login_sessions ADD COLUMN IF NOT EXISTS idp TEXT NOT NULL DEFAULT '';
ALTER TABLE login_sessions ADD COLUMN IF NOT EXISTS name_id TEXT NOT NULL DEFAULT '';
ALTER TABLE login_sessions ADD COLUMN IF NOT EXISTS session_index TEXT NOT NULL DEFAULT '';
ALTER TABLE login_sessions ADD COLUMN IF NOT EXISTS revoked timestamptz;
ALTER TABLE login_sessions ADD COLUMN IF NOT EXISTS revoke_reason TEXT NOT NULL DEFAULT '';

CREATE INDEX IF NOT EXISTS login_sessions_name_id ON login_sessions (idp, name_id);
CREATE INDEX IF NOT EXISTS login_sessions_revoked ON login_sessions (revoked) WHERE revoked IS NOT NULL;
