-- Requests in flight on hosts that workers ask through store slots (a host none of
-- their runs holds): at most the per-host concurrency of them at once, whichever
-- workers send them. A row is deleted when its request ends; one whose worker died
-- counts until `ends_at`. IF NOT EXISTS, as in 0007: a store taken back to an older
-- schema may keep the table.
CREATE TABLE IF NOT EXISTS host_requests (
    id      BIGSERIAL PRIMARY KEY,
    host    TEXT NOT NULL,      -- host:port
    worker  TEXT NOT NULL,
    ends_at BIGINT NOT NULL     -- unix ms; the slot's time plus the request timeout
);
CREATE INDEX IF NOT EXISTS host_requests_by_host ON host_requests (host, ends_at);
