-- 0010: the status page filtered to one organization reads that
-- organization's newest event of each kind and counts its events of the
-- last hour (EventStats with an organization). events_kind_time alone
-- walks every other organization's events of a kind to find one of its
-- own (2.3 s on a million-event log for an organization with none); this
-- index makes it one short walk per kind, as the unfiltered page has.
-- IF NOT EXISTS: the migration tests roll back migrations and rerun them.

CREATE INDEX IF NOT EXISTS events_org_kind_time ON events (org, kind, time, seq);
