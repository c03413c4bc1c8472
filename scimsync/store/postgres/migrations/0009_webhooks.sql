-- 0009: webhook delivery and the event feed's retention (as on SQLite).
--
-- webhook_endpoints holds each configured endpoint's place in the event log:
-- cursor is the last seq it is done with (delivered, filtered out or given
-- up on), and the retry state of the event after it. webhook_leases lets
-- one replica at a time deliver. event_retention remembers how far old
-- events were pruned, so the feed can tell "gone" (410) from "none yet".

CREATE TABLE IF NOT EXISTS webhook_endpoints (
	org             text        NOT NULL DEFAULT 'default',
	url             text        NOT NULL,
	config_hash     text        NOT NULL,
	cursor          bigint      NOT NULL,
	attempts        integer     NOT NULL DEFAULT 0,
	first_failure   timestamptz,
	next_attempt    timestamptz,
	disabled        timestamptz,
	disabled_status integer     NOT NULL DEFAULT 0,
	last_success    timestamptz,
	last_failure    timestamptz,
	last_status     integer     NOT NULL DEFAULT 0,
	last_error      text        NOT NULL DEFAULT '',
	delivered       bigint      NOT NULL DEFAULT 0,
	failed          bigint      NOT NULL DEFAULT 0,
	PRIMARY KEY (org, url)
);

CREATE TABLE IF NOT EXISTS webhook_leases (
	org     text        NOT NULL DEFAULT 'default',
	name    text        NOT NULL,
	holder  text        NOT NULL,
	expires timestamptz NOT NULL,
	PRIMARY KEY (org, name)
);

CREATE TABLE IF NOT EXISTS event_retention (
	org            text   NOT NULL DEFAULT 'default' PRIMARY KEY,
	pruned_through bigint NOT NULL
);

-- Pruning by age.
CREATE INDEX IF NOT EXISTS events_time ON events (time);
