-- Scheduling state that must outlive a restart: when each source is due next and the
-- backoff that put it there, and the hold-backs sites asked for with Retry-After.
ALTER TABLE source_state ADD COLUMN next_due INTEGER;    -- unix ms; no run before it
ALTER TABLE source_state ADD COLUMN backoff_ms INTEGER;  -- NULL while healthy

CREATE TABLE held_back (
    key   TEXT PRIMARY KEY,   -- a URL, or a host as host:port
    until INTEGER NOT NULL    -- unix ms; no request to key before it
);
