-- 0009: webhook delivery and the event feed's retention.
--
-- webhook_endpoints holds each configured endpoint's place in the event log:
-- cursor is the last seq it is done with (delivered, filtered out or given
-- up on), and the retry state of the event after it. webhook_leases lets
-- one replica at a time deliver. event_retention remembers how far old
-- events were pruned, so the feed can tell "gone" (410) from "none yet".
-- Times are unix milliseconds; NULL is the zero time. IF NOT EXISTS: the
-- migration tests roll back every migration from 0004 on and rerun them.

CREATE TABLE IF NOT EXISTS webhook_endpoints (
	org             TEXT    NOT NULL DEFAULT 'default',
	url             TEXT    NOT NULL,
	config_hash     TEXT    NOT NULL,
	cursor          INTEGER NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	first_failure   INTEGER,
	next_attempt    INTEGER,
	disabled        INTEGER,
	disabled_status INTEGER NOT NULL DEFAULT 0,
	last_success    INTEGER,
	last_failure    INTEGER,
	last_status     INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT    NOT NULL DEFAULT '',
	delivered       INTEGER NOT NULL DEFAULT 0,
	failed          INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (org, url)
) STRICT;

CREATE TABLE IF NOT EXISTS webhook_leases (
	org     TEXT    NOT NULL DEFAULT 'default',
	name    TEXT    NOT NULL,
	holder  TEXT    NOT NULL,
	expires INTEGER NOT NULL,
	PRIMARY KEY (org, name)
) STRICT;

CREATE TABLE IF NOT EXISTS event_retention (
	org            TEXT    NOT NULL DEFAULT 'default' PRIMARY KEY,
	pruned_through INTEGER NOT NULL
) STRICT;

-- Pruning by age.
CREATE INDEX IF NOT EXISTS events_time ON events (time);
