-- Leases: which worker runs which source, and holds which host meanwhile. A lease past
-- its expiry is held by nobody (its worker died); a released one has no worker.
CREATE TABLE source_leases (
    source     TEXT PRIMARY KEY,
    worker     TEXT,      -- NULL when free
    tick       INTEGER,   -- unix ms; the due tick the run in flight is for
    expires_at INTEGER,   -- unix ms
    done_tick  INTEGER    -- unix ms; the latest due tick a run finished for
);

CREATE TABLE host_leases (
    host            TEXT PRIMARY KEY,   -- host:port
    worker          TEXT,               -- NULL when free
    expires_at      INTEGER,            -- unix ms
    next_request_at INTEGER             -- unix ms; the last holder's politeness, for the next
);
